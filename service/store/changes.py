"""Changes made through the service (compare-and-set rows and their audit entries) and
the checks a batch's expectations are held to, shared by both stores."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from service.store.errors import ConflictError, MissingRow
from service.store.tables import Table

if TYPE_CHECKING:  # the records live with the interface
    from service.store.base import Change, User

# Every action the audit trail records, with its Chinese name (``GET /api/audit?action=``
# takes these, or a family: the part before the dot)
ACTIONS: dict[str, str] = {
    "hazard.transition": "隐患状态变更", "hazard.reopen": "隐患重新打开",
    "hazard.evidence": "上传整改证据",
    "hazard.ingest": "导入隐患", "check.record": "登记监督检查", "check.ingest": "导入监督检查",
    "draw.create": "双随机抽取", "ingest.batch": "导入批次", "user.add": "新建用户",
    "user.disable": "停用用户",
}
ENTITIES: dict[str, str] = {"hazards": "隐患", "checks": "监督检查", "draws": "双随机抽取",
                            "batches": "导入批次", "users": "用户"}
# what a user change records of the user (never the token's hash)
USER_FIELDS = ("user_id", "name", "role", "scope", "disabled")

def unmet_expectations(stored: pd.DataFrame, key: str, expect: pd.DataFrame) -> int:
    """How many of ``expect`` (``key``, ``row_hash``; a null hash: the key is absent) no
    longer hold in ``stored`` (the table now, with ``key`` and ``row_hash`` columns)."""
    if expect.empty:
        return 0
    now = stored.set_index(key)["row_hash"]
    now = now[~now.index.duplicated()]
    found = now.reindex(pd.Index(expect[key].astype("string"))).astype("Int64").array
    wanted = pd.array(expect["row_hash"], dtype="Int64")
    same = np.asarray((found == wanted).fillna(False), dtype=bool) | np.asarray(
        found.isna() & wanted.isna(), dtype=bool)
    return int((~same).sum())


def changed_row(spec: Table, change: Change, before: dict | None) -> dict:
    """The row after ``change`` (compare-and-set checked by the caller), re-fingerprinted so
    upserts see it as changed."""
    if change.expect is None:
        if before is not None:
            raise ConflictError(f"{change.table} {change.key} exists already")
        after = {c: None for c in spec.column_names} | change.values
    else:
        if before is None:
            raise MissingRow(f"{change.table} {change.key} not found")
        stale = {k: before.get(k) for k, v in change.expect.items() if before.get(k) != v}
        if stale:
            raise ConflictError(f"{change.table} {change.key} changed meanwhile: {stale}")
        after = before | change.values
    after[spec.key] = change.key
    after["updated_at"] = datetime.now(UTC).replace(tzinfo=None)
    after["batch_id"] = f"change:{change.action}"
    after["source_file"] = after.get("source_file") or "service"
    hashed = {k: v for k, v in after.items() if k not in ("row_hash", "batch_id", "source_file",
                                                           "source_row", "updated_at")}
    digest = hashlib.blake2b(json.dumps(hashed, sort_keys=True, default=str).encode(),
                             digest_size=8).digest()
    after["row_hash"] = int.from_bytes(digest, "little", signed=True)
    return after


def audit_row(change: Change, before: dict | None, after: dict) -> dict:
    return {"audit_id": f"a-{uuid.uuid4().hex}", "at": datetime.now(UTC).replace(tzinfo=None),
            "actor": change.actor, "action": change.action, "entity": change.table,
            "entity_id": change.key,
            "before": None if before is None else json.dumps(before, ensure_ascii=False,
                                                               default=str),
            "after": json.dumps(after, ensure_ascii=False, default=str), "note": change.note,
            "county_adcode": change.county_adcode, "h3": change.h3}


def user_audit_row(action: str, user: User, actor: str) -> dict:
    """The audit entry of a user added (``user.add``) or disabled (``user.disable``) by
    ``actor``. It places the entry nowhere (no county): only administrators read it."""
    now = {f: getattr(user, f) for f in USER_FIELDS}
    before = None if action == "user.add" else now | {"disabled": False}
    after = now | {"disabled": action == "user.disable"}
    verb = ACTIONS[action]
    return {"audit_id": f"a-{uuid.uuid4().hex}", "at": datetime.now(UTC).replace(tzinfo=None),
            "actor": actor, "action": action, "entity": "users", "entity_id": user.user_id,
            "before": None if before is None else json.dumps(before, ensure_ascii=False),
            "after": json.dumps(after, ensure_ascii=False),
            "note": f"{verb} {user.name}（{user.role}，范围 {user.scope or '全部'}）",
            "county_adcode": None, "h3": None}


def plain(value: object) -> object:
    """A stored value as plain Python (NA → None, timestamps → datetime/date)."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value
