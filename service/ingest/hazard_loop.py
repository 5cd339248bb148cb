"""The closed hazard loop (排查、登记、治理、销号) as an ingest must keep it, and the dates of
hazards and checks.

A registry export may register new hazards in any status, but for a hazard the store holds
already an ingest follows the same transitions as ``POST /api/hazards/{id}/transitions``
(河南省市场监督管理局《河南省2021年持续深化特种设备领域双重预防体系建设工作方案》
（豫市监办〔2021〕55号）二（一）: 已登记 → 整改中 → 已销号, closing with a date, a verifier and
the evidence), and it never moves a hazard backwards or overwrites with older data what was
set through the service: such a row is a ``conflict`` that names the stored state, when and
by whom it was set, and the store keeps it. Lifecycle fields a file leaves empty keep their
stored values. A stored check recorded through the service is never overwritten either.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from data.reasons import Reason
from data.schema import KEYS
from service.ingest.prepared import Prepared
from service.ingest.rejects import RejectLog
from service.ingest.stored import StoredRows
from service.ingest.write_scope import expect_rows
from service.store.query import text_isin

STATUS_RANK = {"已登记": 0, "整改中": 1, "已销号": 2}
LIFECYCLE = ("closed_on", "verified_by", "evidence")
CLOSING_NEEDS = {"closed_on": "销号日期", "verified_by": "验收人", "evidence": "整改情况"}
CHECK_CONTENT = ("credit_code", "checked_on", "officer_id", "result")
SERVICE = "change:"  # batch_id prefix of rows last written through the service


def check_dates(item: Prepared, log: RejectLog, today: date) -> None:
    """Dates that contradict each other or today: the row is rejected naming the field."""
    p, day = item.parsed, pd.Timestamp(today)
    if item.kind == "checks":
        checked = pd.to_datetime(p["checked_on"])
        item.reject(log, (checked > day).fillna(False).to_numpy(), "checked_on",
                    Reason.FUTURE_DATE, _text(checked), f"今天是 {today}")
        return
    if item.kind != "hazards":
        return
    found, closed = pd.to_datetime(p["found_on"]), pd.to_datetime(p["closed_on"])
    deadline = pd.to_datetime(p["deadline"])
    for column, values in (("found_on", found), ("closed_on", closed)):
        item.reject(log, (values > day).fillna(False).to_numpy(), column, Reason.FUTURE_DATE,
                    _text(values), f"今天是 {today}")
    item.reject(log, (closed < found).fillna(False).to_numpy(), "closed_on",
                Reason.BAD_DATE_ORDER, _text(closed), "销号日期早于发现日期 " + _text(found))
    item.reject(log, (deadline < found).fillna(False).to_numpy(), "deadline",
                Reason.BAD_DATE_ORDER, _text(deadline), "整改期限早于发现日期 " + _text(found))


def check_hazard_rows(item: Prepared, stored: StoredRows, log: RejectLog,
                      expect: dict[str, pd.DataFrame]) -> None:
    """Transitions and conflicts of uploaded hazards against the stored ones; fills the
    lifecycle fields a row leaves empty from the store."""
    found = _stored_beside(item, stored, expect)
    if found is None:
        return
    keys, old, exists = found
    p = item.parsed
    old_rank = old["status"].map(STATUS_RANK).to_numpy(dtype=float)
    new_rank = p["status"].astype("string").map(STATUS_RANK).to_numpy(dtype=float)
    by_service = old["batch_id"].astype("string").str.startswith(SERVICE).fillna(
        False).to_numpy(dtype=bool) & exists
    state = _stored_state(stored, keys.where(exists), old)

    item.reject(log, exists & (new_rank < old_rank), "status", Reason.CONFLICT,
                p["status"], state)
    same = exists & (new_rank == old_rank)
    for column in LIFECYCLE:  # same status: an empty field keeps the stored value
        keep = same & p[column].isna().to_numpy() & old[column].notna().to_numpy()
        if keep.any():
            p.loc[keep, column] = old.loc[keep, column].to_numpy()
        differs = same & by_service & old[column].notna().to_numpy() & (
            _text(p[column]) != _text(old[column])).fillna(False).to_numpy()
        item.reject(log, differs, column, Reason.CONFLICT, _text(p[column]), state)
    item.reject(log, exists & (new_rank - old_rank >= 2), "status", Reason.BAD_TRANSITION,
                p["status"], "库中为“" + old["status"].astype("string") + "”，须先转为整改中")
    closing = exists & (old_rank == 1) & (new_rank == 2)
    for column, label in CLOSING_NEEDS.items():
        item.reject(log, closing & p[column].isna().to_numpy(), column, Reason.BAD_TRANSITION,
                    None, f"销号须填写{label}（销号日期、验收人、整改情况）")
    since = pd.to_datetime(old["updated_at"]).dt.normalize()
    stale = closing & by_service & (pd.to_datetime(p["closed_on"]) < since).fillna(
        False).to_numpy()
    item.reject(log, stale, "closed_on", Reason.CONFLICT, _text(p["closed_on"]), state)


def check_check_rows(item: Prepared, stored: StoredRows, log: RejectLog,
                     expect: dict[str, pd.DataFrame]) -> None:
    """A check recorded through the service is not overwritten by other content."""
    found = _stored_beside(item, stored, expect)
    if found is None:
        return
    keys, old, _exists = found
    by_service = old["batch_id"].astype("string").str.startswith(SERVICE).fillna(
        False).to_numpy(dtype=bool)
    differs = np.zeros(len(keys), dtype=bool)
    for column in CHECK_CONTENT:
        differs |= (_text(item.parsed[column]).fillna("") != _text(old[column]).fillna("")
                    ).to_numpy(dtype=bool)
    item.reject(log, by_service & differs, "check_id", Reason.CONFLICT, keys,
                _stored_state(stored, keys.where(by_service), old, "已经由接口登记"))


def _stored_beside(item: Prepared, stored: StoredRows, expect: dict[str, pd.DataFrame]
                   ) -> tuple[pd.Series, pd.DataFrame, np.ndarray] | None:
    """The file's keys, the stored row beside each (all null where none) and which exist;
    None when the store holds none of them. The stored rows become expectations."""
    table, key = str(item.kind), KEYS[item.kind]
    keys = item.keys.reset_index(drop=True)
    before = stored.by_key(table, keys[~item.rejected])
    expect_rows(expect, table, key, before)
    if before.empty:
        return None
    old = before.reindex(pd.Index(keys)).reset_index(drop=True)
    return keys, old, text_isin(keys, before.index)


def _stored_state(stored: StoredRows, ids: pd.Series, old: pd.DataFrame,
                  what: str | None = None) -> pd.Series:
    """Per row, what the store holds and when and by whom it was set (the last audit entry
    of the row names the actor; rows loaded by a batch name the batch)."""
    when = pd.to_datetime(old["updated_at"]).dt.strftime("%Y-%m-%d %H:%M").fillna("?")
    batch = old["batch_id"].astype("string").fillna("")
    how = ("经导入批次 " + batch).where(~batch.str.startswith(SERVICE), "经接口")
    actors = _last_actors(stored, ids)
    who = pd.Series(ids, dtype="string").map(actors).astype("string").fillna("")
    head = ("库中为“" + old["status"].astype("string").fillna("") + "”"
            if what is None else pd.Series(what, index=old.index))
    return head + "，" + when + " UTC 由" + who.fillna(" ") + how + " 设置"


def _last_actors(stored: StoredRows, ids: pd.Series) -> pd.Series:
    """The user who last changed each row through the service, by row id ("name（id）")."""
    wanted = pd.Series(ids, dtype="string").dropna()
    if wanted.empty:
        return pd.Series(dtype="string")
    audit = stored.store.lookup("audit", "entity_id", wanted.unique().tolist(),
                                ["entity_id", "at", "actor"])
    if audit.empty:
        return pd.Series(dtype="string")
    last = audit.sort_values("at").drop_duplicates("entity_id", keep="last")
    names = {u.user_id: u.name for u in stored.store.users()}
    actor = last["actor"].astype("string")
    name = actor.map(names).astype("string")
    label = (" " + name + "（" + actor + "）").fillna(" " + actor) + " "
    return pd.Series(label.to_numpy(), index=last["entity_id"].astype("string").to_numpy())


def _text(values: pd.Series) -> pd.Series:
    """Values as text for messages and comparisons (dates as YYYY-MM-DD)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.strftime("%Y-%m-%d").astype("string")
    return pd.Series(values, dtype="object").astype("string")
