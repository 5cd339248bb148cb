"""Collect rejected rows: file, row number, field, reason (Chinese and English), value.

Rejects are accumulated as small frames built from boolean masks (vectorised) and turned
into the report and the store's ``rejects`` table at the end of a batch.

A row that misses a value for a column its file does not have at all is rejected for the
file, not for the row: once a file's absent columns are known (:meth:`RejectLog.lacks`),
a ``missing`` or ``half_coordinate`` of such a field is kept as ``missing_column``, whose
value is the file's header closest to the column. The report tells it once per file and
field (``service.ingest.report``); the rejects table and the workbook still list each row."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.reasons import Reason, reason_text
from data.schema import Kind, field_of

COLUMNS = ["file", "row", "kind", "field", "code", "reason_zh", "reason_en", "value", "index"]
Text = pd.Series | str | None
Detail = Text | tuple[Text, Text]
# per-row reasons that mean "no value here": for a column the file lacks, a file's cause
FOR_THE_FILE = frozenset({Reason.MISSING, Reason.HALF_COORDINATE})
# why a row needs the column, by field (else: a required field)
NEEDS = {
    "address": ("没有经纬度的行须按地址定位", "rows without coordinates are placed by address"),
    "lon": ("经度和纬度须成对填写", "longitude and latitude go together"),
    "lat": ("经度和纬度须成对填写", "longitude and latitude go together"),
    "cells": ("没有负责区县代码的网格员须列出网格单元",
              "an officer without a county code needs cells"),
}
REQUIRED = ("每行必填", "required in every row")


def missing_column_text(kind: str, field: str, closest: str | None) -> tuple[str, str]:
    """The detail of a ``missing_column`` (Chinese, English): the column by its names, why
    rows need it, and the file's closest header."""
    f = field_of(Kind(kind), field)
    why_zh, why_en = NEEDS.get(field, REQUIRED)
    names = f"「{f.zh}」" + (f"（登记表：「{f.form}」）" if f.form else "")
    near_zh = f"最接近的表头：{closest}" if closest else "文件中没有相近的表头"
    near_en = f"closest header: {closest}" if closest else "no header of the file comes close"
    return (f"{names}，{why_zh}；{near_zh}",
            f"{f.zh} ({field}), {why_en}; {near_en}")


def _with_detail(reason: str, sep: str, detail: Text, idx: np.ndarray) -> np.ndarray | str:
    """The reason, with the detail after it where there is one."""
    if detail is None:
        return reason
    if isinstance(detail, str):
        return reason + sep + detail
    det = pd.Series(detail.to_numpy(dtype=object)[idx]).astype("string")
    return (reason + sep + det).fillna(reason).to_numpy(dtype=object)


class RejectLog:
    """Rejects and flags of one batch, keyed by (file, frame index)."""

    def __init__(self) -> None:
        self._parts: list[pd.DataFrame] = []
        self._flags: list[pd.DataFrame] = []
        self._absent: dict[str, dict[str, str | None]] = {}  # file -> field -> closest header

    def lacks(self, path: str, absent: dict[str, str | None]) -> None:
        """The needed fields ``path`` has no column for, each with its closest header."""
        self._absent[path] = dict(absent)

    @staticmethod
    def _frame(path: str, kind: str, rows: np.ndarray, mask: np.ndarray, field: str, code: str,
               values: pd.Series | None, detail: Detail) -> pd.DataFrame:
        idx = np.flatnonzero(mask)
        zh, en = reason_text(code)
        if values is None:
            vals = pd.Series(pd.NA, index=range(len(idx)), dtype="string")
        else:
            vals = pd.Series(values.to_numpy(dtype=object)[idx]).astype("string")
        det_zh, det_en = detail if isinstance(detail, tuple) else (detail, detail)
        return pd.DataFrame({
            "file": path, "row": rows[idx], "kind": kind, "field": field, "code": str(code),
            "reason_zh": _with_detail(zh, "：", det_zh, idx),
            "reason_en": _with_detail(en, ": ", det_en, idx),
            "value": vals.to_numpy(), "index": idx,
        })

    def add(self, path: str, kind: str, rows: np.ndarray, mask: np.ndarray, field: str,
            code: str, values: pd.Series | None = None, detail: Detail = None) -> None:
        """Reject the rows of ``mask``. ``detail`` is appended to the reason: one text, a
        text per row (<NA>: none for that row), or a (Chinese, English) pair of either. A
        ``missing`` or ``half_coordinate`` of a field the file has no column for, or a
        ``missing_column``, is recorded as ``missing_column`` with its own detail."""
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        absent = self._absent.get(path, {})
        if field in absent and (code in FOR_THE_FILE or code == Reason.MISSING_COLUMN):
            closest = absent[field]
            code, detail = Reason.MISSING_COLUMN, missing_column_text(kind, field, closest)
            values = pd.Series(closest, index=range(len(mask)), dtype="string")
        self._parts.append(self._frame(path, kind, rows, mask, field, code, values, detail))

    def flag(self, path: str, kind: str, rows: np.ndarray, mask: np.ndarray, field: str,
             code: str, values: pd.Series | None = None) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            self._flags.append(self._frame(path, kind, rows, mask, field, code, values, None))

    def add_file(self, path: str, code: str, zh: str, en: str) -> None:
        """A whole file was refused (encoding, format, kind, size)."""
        self._parts.append(pd.DataFrame({
            "file": [path], "row": [0], "kind": [""], "field": ["(file)"], "code": [code],
            "reason_zh": [zh], "reason_en": [en], "value": [pd.NA], "index": [-1]}))

    def add_malformed(self, path: str, kind: str, rows: list[tuple[int | None, str]]) -> None:
        """Rows the parser could not split into the header's columns (kept as text)."""
        if rows:
            zh, en = reason_text("malformed_row")
            self._parts.append(pd.DataFrame({
                "file": path, "row": [r or 0 for r, _ in rows], "kind": kind, "field": "(row)",
                "code": "malformed_row", "reason_zh": zh, "reason_en": en,
                "value": [t for _, t in rows], "index": -1}))

    def entries(self) -> tuple[list[pd.DataFrame], list[pd.DataFrame]]:
        """The rejects and flags logged so far, as frames (a partition's, to send back)."""
        return list(self._parts), list(self._flags)

    def take(self, rejects: list[pd.DataFrame], flags: list[pd.DataFrame],
             offset: int = 0) -> None:
        """Another log's :meth:`entries`, their row index moved by ``offset`` (where that
        log's partition starts in its file)."""
        self._parts.extend(_offset(f, offset) for f in rejects)
        self._flags.extend(_offset(f, offset) for f in flags)

    def mark(self) -> tuple[int, int]:
        """A point to roll back to (checks against the store are re-run after a conflict)."""
        return len(self._parts), len(self._flags)

    def rollback(self, mark: tuple[int, int]) -> None:
        del self._parts[mark[0]:]
        del self._flags[mark[1]:]

    def has_rejects(self) -> bool:
        """Whether anything (a row or a whole file) is rejected so far."""
        return bool(self._parts)

    def rejected_mask(self, path: str, n: int) -> np.ndarray:
        """Rows of ``path`` that have at least one reject so far."""
        mask = np.zeros(n, dtype=bool)
        for part in self._parts:
            sel = part["index"].to_numpy()[part["file"].to_numpy() == path]
            mask[sel[sel >= 0]] = True
        return mask

    def rejects(self) -> pd.DataFrame:
        return _concat(self._parts)

    def flags(self) -> pd.DataFrame:
        return _concat(self._flags)


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS})
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["file", "row", "field"], kind="stable").reset_index(drop=True)


def _offset(frame: pd.DataFrame, start: int) -> pd.DataFrame:
    """``frame``'s row index (``index``; -1 for a whole file) moved by ``start``."""
    if not start:
        return frame
    out = frame.copy()
    index = out["index"].to_numpy()
    out["index"] = np.where(index >= 0, index + start, index)
    return out
