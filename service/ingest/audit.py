"""What a batch changes in hazards and checks goes into the audit trail with the batch.

Every hazard or check a batch inserts or changes gets an entry like a change made through
the service: who (the uploader, or ``cli:<user>`` for ``riskmap ingest``), the row before
and after, and a note naming the batch, file and row; a status change of a hazard is a
``hazard.transition`` with its evidence and verifier. A row whose content equals the stored
one is not a change: it keeps the stored fingerprint, so the store counts it unchanged
(rows written through the service are fingerprinted another way).

Each batch also gets one ``ingest.batch`` entry (:func:`batch_entry`): who loaded it, its
files with their kinds and row counts. It is placed in the smallest region holding every
row of the batch, so a regulator sees the batches that lie within their region only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from service.ingest.prepared import Batches
from service.ingest.stored import StoredRows
from service.store.query import text_isin
from service.store.tables import AUDIT, LINKS, META, TABLES, Table

NOT_CONTENT = {c for c, _ in META} | {c for c, _ in LINKS}
ACTION = {"hazards": "hazard.ingest", "checks": "check.ingest"}


def audit_entries(table: str, frame: pd.DataFrame, stored: StoredRows, where: pd.DataFrame,
                  actor: str, batch_id: str, at: datetime) -> pd.DataFrame:
    """Audit rows for the rows of ``frame`` (typed, fingerprinted, as written) that differ
    from the store; sets ``row_hash`` of the others to the stored one. ``where`` holds the
    county and H3 cell of each row's equipment or unit (row by row)."""
    spec = TABLES[table]
    key = spec.key
    before = stored.by_key(table, frame[key])
    old = before.reindex(pd.Index(frame[key].astype("string"))).reset_index(drop=True)
    old[key] = frame[key].to_numpy()
    exists = text_isin(frame[key], before.index)
    same = exists & np.asarray((pd.array(old["row_hash"], dtype="Int64")
                                == pd.array(frame["row_hash"], dtype="Int64")).fillna(False),
                               dtype=bool)
    # rows written through the service are fingerprinted otherwise: compare their content
    unsure = np.flatnonzero(exists & ~same)
    if len(unsure):
        equal = np.ones(len(unsure), dtype=bool)
        for column in (c for c in spec.column_names if c not in NOT_CONTENT):
            equal &= (_text(frame[column].iloc[unsure]).fillna("\0").to_numpy(dtype=object)
                      == _text(old[column].iloc[unsure]).fillna("\0").to_numpy(dtype=object))
        same[unsure[equal]] = True
        rehash = unsure[equal]
        frame.loc[rehash, "row_hash"] = pd.array(old["row_hash"].iloc[rehash], dtype="Int64")
    changed = ~same
    if not changed.any():
        return pd.DataFrame(columns=AUDIT.column_names)
    new, prior = frame.loc[changed, spec.column_names], old.loc[changed, spec.column_names]
    action = np.full(int(changed.sum()), ACTION[table], dtype=object)
    note = ("导入批次 " + batch_id + "：" + new["source_file"].astype(str) + " 第 "
            + new["source_row"].astype(str) + " 行")
    if table == "hazards":
        moved = exists[changed] & (new["status"].astype("string").fillna("").to_numpy(
            dtype=object) != prior["status"].astype("string").fillna("").to_numpy(dtype=object))
        action[moved] = "hazard.transition"
        how = (new["evidence"].astype("string").fillna("") + "；验收人："
               + new["verified_by"].astype("string").fillna("—") + "；")
        note = note.where(~moved, how + note)
    keys = new[key].astype("string")
    return pd.DataFrame({
        "audit_id": "a-" + batch_id + ":" + table + ":" + keys,
        "at": pd.Series(pd.Timestamp(at), index=new.index),
        "actor": actor, "entity": table, "entity_id": keys,
        "action": action,
        "before": pd.Series(_json_lines(spec, prior), index=new.index).where(
            exists[changed]),
        "after": _json_lines(spec, new),
        "note": note.to_numpy(),
        "county_adcode": where["county_adcode"].to_numpy(dtype=object)[changed],
        "h3": where["h3"].to_numpy(dtype=object)[changed],
    }).reset_index(drop=True)[AUDIT.column_names]


def batch_entry(prepared: Batches, frames: dict[str, pd.DataFrame],
                entries: list[pd.DataFrame], actor: str, batch_id: str, at: datetime,
                shown: Callable[[str], str] = lambda path: Path(path).name) -> pd.DataFrame:
    """The one ``ingest.batch`` audit entry of a batch: ``actor``, the files (the name
    ``shown`` gives a path, kind, rows read and rejected) and the rows by kind, placed by
    the counties of ``frames`` and of the row ``entries``."""
    files, counts = [], {}
    for kind, items in prepared.items():
        for item in items:
            read, rejected = len(item.parsed), int(np.asarray(item.rejected).sum())
            files.append({"file": shown(item.raw.path), "kind": str(kind), "rows": read,
                          "rejected": rejected})
            total = counts.setdefault(str(kind), {"read": 0, "rejected": 0, "accepted": 0})
            total["read"] += read
            total["rejected"] += rejected
            total["accepted"] += read - rejected
    counties = [f["county_adcode"] for f in [*frames.values(), *entries]
                if "county_adcode" in f.columns and len(f)]
    read = sum(c["read"] for c in counts.values())
    rejected = sum(c["rejected"] for c in counts.values())
    note = (f"导入批次 {batch_id}：{len(files)} 个文件，读取 {read} 行，"
            f"接收 {read - rejected} 行，拒收 {rejected} 行")
    return pd.DataFrame([{
        "audit_id": f"a-{batch_id}:batch", "at": pd.Timestamp(at), "actor": actor,
        "action": "ingest.batch", "entity": "batches", "entity_id": batch_id, "before": None,
        "after": json.dumps({"files": files, "counts": counts}, ensure_ascii=False),
        "note": note, "county_adcode": _region(counties), "h3": None}])[AUDIT.column_names]


def _region(counties: list[pd.Series]) -> str | None:
    """The smallest region (county, city or province code) holding every one of
    ``counties``; None when they span provinces or none is known."""
    codes = pd.concat(counties, ignore_index=True).dropna().astype(str).unique() if (
        counties) else []
    if not len(codes):
        return None
    for digits, pad in ((6, ""), (4, "00"), (2, "0000")):
        if len({c[:digits] for c in codes}) == 1:
            return codes[0][:digits] + pad
    return None


def _json_lines(spec: Table, frame: pd.DataFrame) -> list[str]:
    """Each row as a JSON object (dates as YYYY-MM-DD, times to the second), vectorised."""
    out = frame.copy()
    for column, kind in spec.columns:
        if kind in ("date", "timestamp"):
            form = "%Y-%m-%d" if kind == "date" else "%Y-%m-%dT%H:%M:%S"
            out[column] = pd.to_datetime(out[column]).dt.strftime(form).astype(object)
    return out.to_json(orient="records", lines=True, force_ascii=False).splitlines()


def _text(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.strftime("%Y-%m-%d").astype("string")
    return pd.Series(values, dtype="object").astype("string")
