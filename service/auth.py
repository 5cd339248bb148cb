"""Users, bearer tokens and the caller of a request.

A token is shown once, when the user is made, and stored only as an HMAC-SHA256 of it
keyed by the server's pepper (``RISKMAP_TOKEN_PEPPER``), so a copy of the store does not
give anyone a working token. A request names its caller with ``Authorization: Bearer …``
or, in a browser, the ``riskmap_session`` cookie that ``/login`` sets: a random session id
(stored only as its keyed hash) that ends after ``SESSION_IDLE`` unused, after
``SESSION_MAX`` in all, at ``/logout`` and when the user is disabled. The token itself never
goes into a cookie. A state-changing request authenticated by the cookie must carry the
session's CSRF token in ``X-CSRF-Token`` (SameSite=Strict is not relied on alone).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Request

from geo.regions import UnknownRegion, resolve_region
from service.caches import VerifiedTokens
from service.deps import CachesDep, SettingsDep, StoreDep
from service.errors import Forbidden, Unauthorized, bilingual
from service.store.base import Session, Store, User

COOKIE = "riskmap_session"
CSRF_HEADER = "x-csrf-token"
TOKEN_PREFIX = "rmk_"
SESSION_IDLE = timedelta(hours=8)   # a working day's pause ends the session
SESSION_MAX = timedelta(hours=12)   # and no session outlives a long working day
TOUCH_EVERY = timedelta(minutes=5)  # last use is recorded at most this often (idle ± 5 min)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Role(StrEnum):
    REGULATOR = "regulator"        # scope: an adcode (province, city or county)
    GRID_OFFICER = "grid_officer"  # scope: an officer id (their cells)
    PARK_ADMIN = "park_admin"      # scope: a park id
    PLANNER = "planner"            # scope: an adcode; reads and exports
    ADMIN = "admin"                # no scope


ROLE_ZH = {Role.REGULATOR: "监管人员", Role.GRID_OFFICER: "网格员", Role.PARK_ADMIN: "园区管理员",
           Role.PLANNER: "规划人员", Role.ADMIN: "系统管理员"}
ADCODE_ROLES = frozenset({Role.REGULATOR, Role.PLANNER})
# what each role's scope is, as the CLI's --scope takes it
_REGION_FORM = ("行政区划代码，如 410100 或 4101", "a region code, e.g. 410100 or 4101")
SCOPE_FORM = {Role.REGULATOR: _REGION_FORM, Role.PLANNER: _REGION_FORM,
              Role.GRID_OFFICER: ("网格员编号", "an officer id"),
              Role.PARK_ADMIN: ("园区编号", "a park id")}
_CODE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


@dataclass(frozen=True)
class Principal:
    """The caller of a request. ``cells`` are a grid officer's H3 cells, resolved for each
    request from the store (their scope); empty for the other roles."""

    user_id: str
    name: str
    role: Role
    scope: str | None
    cells: tuple[str, ...] = ()

    @property
    def admin_level(self) -> str | None:
        """province / city / county for adcode scopes, else None."""
        return adcode_level(self.scope) if self.role in ADCODE_ROLES and self.scope else None


def adcode_level(adcode: str) -> str:
    if adcode.endswith("0000"):
        return "province"
    return "city" if adcode.endswith("00") or adcode == "419001" else "county"


def hash_token(token: str, pepper: str) -> str:
    return hmac.new(pepper.encode(), token.encode(), hashlib.sha256).hexdigest()


def check_scope(role: Role, scope: str | None, provinces: list[str]) -> str | None:
    """The scope a user of ``role`` may hold, normalised; ValueError (Chinese) if not."""
    scope = scope.strip() if scope else None
    if role == Role.ADMIN:
        if scope:
            raise ValueError(bilingual("系统管理员不设范围（--scope 留空）",
                                       "an administrator has no scope: leave --scope out"))
        return None
    zh, en = SCOPE_FORM[role]
    if not scope:
        raise ValueError(bilingual(f"{ROLE_ZH[role]}须指定范围 --scope：{zh}",
                                   f"a {role.value} needs a scope: give --scope, {en}"))
    if role in ADCODE_ROLES:  # 410100 or 4101: the same city, stored as 410100
        try:
            return resolve_region(scope, provinces).adcode
        except UnknownRegion as exc:
            raise ValueError(exc.named("范围的行政区划代码", "--scope")) from None
    if not _CODE.match(scope):
        raise ValueError(bilingual(
            f"范围（--scope）{scope!r} 不是有效的编号：{zh}须为 1–64 位字母、数字、下划线或连字符",
            f"--scope {scope!r} is not a valid id: 1–64 letters, digits, _ or -"))
    return scope.upper()


def create_user(store: Store, *, name: str, role: Role, scope: str | None, pepper: str,
                provinces: list[str], actor: str = "cli") -> tuple[User, str]:
    """A new user and their token (returned once, stored only hashed); the audit trail
    records ``actor`` adding them (``cli``, ``cli:<login>`` or an administrator's id)."""
    scope = check_scope(role, scope, provinces)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user = User(user_id=f"u-{uuid.uuid4().hex[:12]}", name=name.strip() or role.value,
                role=role.value, scope=scope, token_hash=hash_token(token, pepper),
                created_at=datetime.now(UTC))
    store.add_user(user, actor=actor)
    return user, token


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def current_caller(request: Request, store: StoreDep, settings: SettingsDep,
                   caches: CachesDep) -> Principal:
    pepper = settings.token_pepper.get_secret_value()
    token = bearer_token(request)
    if token:
        caller = _token_caller(store, caches.tokens, hash_token(token, pepper))
    else:
        session_id = request.cookies.get(COOKIE)
        if not session_id:
            raise Unauthorized(bilingual(
                "需要登录：请在请求头 Authorization 中提供 Bearer 令牌，或先在 /login 登录",
                "sign in first: send the header Authorization: Bearer <token>, or log in at "
                "/login"))
        caller = _session_caller(store, caches.tokens, hash_token(session_id, pepper))
        if request.method not in SAFE_METHODS and not hmac.compare_digest(
                request.headers.get(CSRF_HEADER, ""), csrf_token(session_id, pepper)):
            raise Forbidden(bilingual(
                "缺少或错误的 CSRF 令牌（请求头 X-CSRF-Token），请刷新页面后重试",
                "missing or wrong CSRF token (header X-CSRF-Token): reload the page and retry"))
    if caller.role == Role.GRID_OFFICER:
        return replace(caller, cells=caches.officer_cells.of(store, caller.scope or ""))
    return caller


def _token_caller(store: Store, known: VerifiedTokens, token_hash: str) -> Principal:
    caller = known.get(token_hash)
    if caller is not None:
        return caller
    user = store.user_by_token_hash(token_hash)
    if user is None:
        raise Unauthorized(bilingual(
            "Bearer 令牌（Authorization）无效或已停用：请核对令牌，或请管理员新建用户",
            "the bearer token (Authorization) is invalid or disabled: check it, or ask an "
            "administrator for a new user"))
    caller = Principal(user.user_id, user.name, Role(user.role), user.scope)
    known.put(token_hash, caller)
    return caller


def _session_caller(store: Store, known: VerifiedTokens, session_hash: str) -> Principal:
    """The caller of a live session; its last use is recorded every TOUCH_EVERY."""
    key = "session:" + session_hash
    caller = known.get(key)
    if caller is not None:
        return caller
    found = store.session_user(session_hash)
    now = datetime.now(UTC).replace(tzinfo=None)
    if found is None or not _alive(found[0], now):
        raise Unauthorized(bilingual(f"登录已过期（会话 Cookie {COOKIE}），请在 /login 重新登录",
                                     f"the session ({COOKIE} cookie) has expired: log in "
                                     "again at /login"))
    session, user = found
    if now - session.last_seen >= TOUCH_EVERY:
        store.touch_session(session_hash, now)
    caller = Principal(user.user_id, user.name, Role(user.role), user.scope)
    known.put(key, caller)
    return caller


def _alive(session: Session, now: datetime) -> bool:
    return (not session.ended and now < session.expires_at
            and now - session.last_seen < SESSION_IDLE)


def start_session(store: Store, user: User, pepper: str) -> str:
    """A new session for ``user``; returns its id (for the cookie, stored only hashed)."""
    session_id = secrets.token_urlsafe(32)
    now = datetime.now(UTC).replace(tzinfo=None)
    store.add_session(Session(hash_token(session_id, pepper), user.user_id, now, now,
                              now + SESSION_MAX))
    return session_id


def end_session(store: Store, known: VerifiedTokens, session_id: str, pepper: str) -> None:
    session_hash = hash_token(session_id, pepper)
    store.end_session(session_hash)
    known.forget("session:" + session_hash)


def csrf_token(secret: str, pepper: str) -> str:
    """The CSRF token that goes with a session id (or a login form's nonce): derived, so
    the server keeps nothing more, and useless without the cookie it belongs to."""
    return hmac.new(pepper.encode(), b"csrf:" + secret.encode(), hashlib.sha256).hexdigest()


Caller = Annotated[Principal, Depends(current_caller)]


def require(*roles: Role) -> Any:  # a FastAPI dependency
    """A dependency that lets only ``roles`` through (403 for the others)."""

    def check(caller: Caller) -> Principal:
        if caller.role not in roles:
            allowed = "、".join(f"{ROLE_ZH[r]}（{r.value}）" for r in roles)
            raise Forbidden(bilingual(
                f"{ROLE_ZH[caller.role]}（{caller.role.value}）无权访问此资源：仅{allowed}可访问",
                f"a {caller.role.value} may not use this: only "
                f"{', '.join(r.value for r in roles)}"))
        return caller

    return Depends(check)


CLI_ROLE_ZH = "服务器命令行（系统管理员）"


def audit_actor(actor: str | None, users: dict[str, User]) -> dict:
    """Who an audit entry's ``actor`` is, for a person to read: ``{id, name, role,
    role_zh}``. A user id (or ``user:<id>``) is looked up in ``users`` (by id); ``cli`` and
    ``cli:<login>`` are the server's command line, run by an administrator."""
    actor = actor or ""
    if actor == "cli" or actor.startswith("cli:"):
        login = actor.partition(":")[2]
        return {"id": actor, "name": login or "命令行", "role": "cli", "role_zh": CLI_ROLE_ZH}
    user = users.get(actor.removeprefix("user:"))
    if user is None:
        return {"id": actor, "name": None, "role": None, "role_zh": "未知用户"}
    try:
        role_zh = ROLE_ZH[Role(user.role)]
    except ValueError:
        role_zh = user.role
    return {"id": actor, "name": user.name, "role": user.role, "role_zh": role_zh}
