"""Signing in and out of the browser pages, and what a page needs to know of its session.

``GET /login`` sets a short-lived cookie holding a random nonce and puts the nonce's CSRF
token in the form; ``POST /login`` takes the token only with both (a page elsewhere cannot
sign a browser in as someone else), then starts a server-side session whose random id is
the ``riskmap_session`` cookie. ``/logout`` ends it on the server. A page reads its CSRF
token for state-changing calls from ``GET /api/session``.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from service.auth import (
    COOKIE,
    ROLE_ZH,
    Caller,
    bearer_token,
    csrf_token,
    end_session,
    hash_token,
    start_session,
)
from service.deps import CachesDep, SettingsDep, StoreDep
from service.settings import Settings
from web.login import build_login_page
from web.pages import landing

router = APIRouter(tags=["session"])
LOGIN_COOKIE = "riskmap_login"
LOGIN_FORM_SECONDS = 30 * 60


def safe_next(target: str | None) -> str:
    """Only same-site paths (no open redirect to another host)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/map"


def is_https(request: Request, settings: Settings) -> bool:
    """The browser's connection was HTTPS: directly, or to a proxy we were told to trust."""
    if request.url.scheme == "https":
        return True
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return settings.trust_proxy and forwarded == "https"


def _login_form(request: Request, settings: Settings, next_path: str,
                error: str | None = None, status: int = 200) -> HTMLResponse:
    nonce = secrets.token_urlsafe(24)
    page = build_login_page(next_path, csrf_token(nonce, _pepper(settings)), error)
    response = HTMLResponse(page, status_code=status)
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=LOGIN_FORM_SECONDS, httponly=True,
                        samesite="strict", secure=is_https(request, settings), path="/login")
    return response


def _pepper(settings: Settings) -> str:
    return settings.token_pepper.get_secret_value()


@router.get("/login", summary="登录页", response_class=HTMLResponse)
def login_page(request: Request, settings: SettingsDep,
               next: Annotated[str | None, Query(max_length=200)] = None) -> HTMLResponse:
    # no next: the user lands on their role's own page once signed in
    return _login_form(request, settings, safe_next(next) if next else "")


@router.post("/login", summary="以令牌登录（开始会话，设置 Cookie）", response_class=HTMLResponse)
def login(request: Request, store: StoreDep, settings: SettingsDep,
          token: Annotated[str, Form(min_length=8, max_length=200)],
          csrf: Annotated[str, Form(max_length=200)] = "",
          next: Annotated[str | None, Form(max_length=200)] = None) -> HTMLResponse:
    target = safe_next(next) if next else ""
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not hmac.compare_digest(csrf, csrf_token(nonce, _pepper(settings))):
        return _login_form(request, settings, target,
                           "页面已过期，请重新登录 / the page expired: sign in again", 403)
    user = store.user_by_token_hash(hash_token(token.strip(), _pepper(settings)))
    if user is None:
        return _login_form(request, settings, target,
                           "令牌无效或已停用：请核对令牌或联系管理员 / "
                           "the token is wrong or disabled", 401)
    session_id = start_session(store, user, _pepper(settings))
    response = RedirectResponse(target or landing(str(user.role), user.scope),
                                status_code=303)
    response.set_cookie(COOKIE, session_id, httponly=True, samesite="strict",
                        secure=is_https(request, settings), path="/")
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response  # type: ignore[return-value]


@router.get("/logout", summary="退出登录（结束会话）", include_in_schema=False)
def logout(request: Request, store: StoreDep, settings: SettingsDep, caches: CachesDep
           ) -> RedirectResponse:
    session_id = request.cookies.get(COOKIE)
    if session_id:
        end_session(store, caches.tokens, session_id, _pepper(settings))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/api/session", summary="当前用户与会话（页面取 CSRF 令牌）")
def session(request: Request, caller: Caller, settings: SettingsDep) -> dict:
    """Who is signed in; for a browser session also the CSRF token its page sends with
    every state-changing request (``X-CSRF-Token``). Bearer callers need none."""
    session_id = None if bearer_token(request) else request.cookies.get(COOKIE)
    return {"user_id": caller.user_id, "name": caller.name, "role": caller.role.value,
            "role_zh": ROLE_ZH[caller.role], "scope": caller.scope,
            "csrf_token": csrf_token(session_id, _pepper(settings)) if session_id else None}
