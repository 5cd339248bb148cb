"""The ingest report: JSON for ``--report`` and the HTTP API, a readable summary that ends
with a table of what was rejected (file, column, reason, rows, examples, what to do), the
rejected source rows for the reject workbook, and the exit code of ``riskmap ingest``.

A reject or flag names its field twice: ``field`` is the canonical name, ``header`` the
column as the clerk's file wrote it (null for a whole file, a whole row, or a column the
file does not have). Rows rejected because their file lacks a needed column
(``missing_column``) are one record per file and field, with row 0 and ``rows``, the number
of rows it rejects; the rejected rows for the workbook still list each of them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from rich.cells import cell_len, chop_cells, set_cell_size

from data.reasons import REASONS, Reason, advice
from data.schema import SCHEMAS, Kind
from service.ingest.read import RawTable
from service.ingest.values import as_text
from service.store.base import UpsertCounts

FILE_FIELD, ROW_FIELD = "(file)", "(row)"
REJECTED_ROWS_LIMIT = 100_000  # source rows of rejects carried in the report (workbook)
WIDTH = 100                    # console columns the summary table keeps within
EXAMPLES = 2                   # example rows per line of the table

Headers = dict[str, dict[str, str]]  # file -> canonical field -> the file's own header


def build_report(batch_id: str, files: list[dict], per_kind: dict[str, dict[str, int]],
                 rejects: pd.DataFrame, flags: pd.DataFrame,
                 counts: dict[str, UpsertCounts] | None, *, headers: Headers | None = None,
                 written: bool = True, strict: bool = False) -> dict:
    """The batch report; ``counts`` is None for the copy stored with the batch itself,
    which is written before the upsert counts are known. ``written`` is False when nothing
    was written (``strict`` with rejects); ``loaded`` is then 0."""
    row_rejects = rejects[rejects["field"] != FILE_FIELD]
    rejected_rows = row_rejects[["file", "row"]].drop_duplicates()
    flags = _without_rejected(flags, rejected_rows)
    by_table = {}
    for kind, c in per_kind.items():
        uc = (counts or {}).get(kind, UpsertCounts())
        by_table[kind] = {**c, **({} if counts is None else {
            "inserted": uc.inserted, "updated": uc.updated, "unchanged": uc.unchanged})}
    upserts = {} if counts is None else {
        "inserted": int(sum(c.inserted for c in counts.values())),
        "updated": int(sum(c.updated for c in counts.values())),
        "unchanged": int(sum(c.unchanged for c in counts.values()))}
    loaded = int(sum(c["read"] - c["rejected"] for c in per_kind.values())) if written else 0
    return {
        "batch_id": batch_id,
        "written": written,
        "strict": strict,
        **({} if written else {"note": "严格模式：有拒收，整批未写入 / strict: there are rejects, "
                                       "nothing was written"}),
        "files": files,
        "read": int(sum(c["read"] for c in per_kind.values())),
        "loaded": loaded,
        **upserts,
        "rejected": len(rejected_rows),
        "files_rejected": int((rejects["field"] == FILE_FIELD).sum()),
        "flagged": len(flags[["file", "row"]].drop_duplicates()),
        "by_table": by_table,
        "by_reason": {str(k): int(v) for k, v in rejects["code"].value_counts().sort_index()
                      .items()},
        "by_flag": {str(k): int(v) for k, v in flags["code"].value_counts().sort_index().items()},
        "rejects": _records(_once_per_file(annotate(rejects, headers))),
        "flags": _records(annotate(flags, headers)),
    }


#: Reject and flag records the copy of the report stored with its batch keeps (each): the
#: full lists go to the report file and the caller; the stored copy is what ``riskmap
#: info`` and a batch's record show. Uncapped, 10M rows' flags (a county placed for every
#: row without coordinates) made a 227 MB document, past PostgreSQL's jsonb limit, and
#: the whole batch failed at its last statement.
STORED_RECORDS = 20_000


def stored_copy(report: dict, limit: int | None = None) -> dict:
    """``report`` as kept with its batch: the first ``limit`` (default
    :data:`STORED_RECORDS`) reject and flag records each, and how many there were
    (``rejects_total``, ``flags_total``); every count, by reason and by flag, whole."""
    limit = STORED_RECORDS if limit is None else limit
    out = dict(report)
    for key in ("rejects", "flags"):
        records = report.get(key) or []
        out[f"{key}_total"] = len(records)
        if len(records) > limit:
            out[key] = records[:limit]
    out["records_stored_limit"] = limit
    return out


def ingest_exit_code(report: dict) -> int:
    """0: every row loaded, nothing rejected; 1: some rows rejected, the rest loaded;
    2: a file refused, nothing loaded (every row rejected, or no rows), or nothing written
    (``--strict`` with a reject)."""
    if not report.get("written", True) or report.get("files_rejected", 0) \
            or not report.get("loaded", 0):
        return 2
    return 1 if report.get("rejected", 0) else 0


# records ------------------------------------------------------------------------------------

def _without_rejected(flags: pd.DataFrame, rejected: pd.DataFrame) -> pd.DataFrame:
    """Flags of rows that are not rejected: a rejected row is not loaded, so carries none."""
    if flags.empty or rejected.empty:
        return flags
    keys = pd.MultiIndex.from_arrays([rejected["file"].astype(str),
                                      rejected["row"].astype(np.int64)])
    mine = pd.MultiIndex.from_arrays([flags["file"].astype(str), flags["row"].astype(np.int64)])
    return flags[~mine.isin(keys)].reset_index(drop=True)


def _once_per_file(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the rows rejected for a column their file lacks as one line per file
    and field: row 0 and ``rows``, how many rows it rejects."""
    lacking = (frame["code"].astype(str) == Reason.MISSING_COLUMN).to_numpy()
    if not lacking.any():
        return frame
    keys = ["file", "field"]
    per_row = frame[lacking]
    once = per_row.drop_duplicates(keys).assign(row=0)
    counts = per_row.groupby(keys, sort=False)["row"].nunique()
    once["rows"] = counts.reindex(pd.MultiIndex.from_frame(once[keys])).to_numpy()
    out = pd.concat([frame[~lacking], once], ignore_index=True)
    return out.sort_values(["file", "row", "field"], kind="stable").reset_index(drop=True)


def annotate(frame: pd.DataFrame, headers: Headers | None) -> pd.DataFrame:
    """``frame`` (rejects or flags) with ``header`` (the file's own column name, <NA> where
    none) and ``advice`` (what to do, per kind, field and code) columns."""
    out = frame.copy()
    names = [(path, canonical, header) for path, mapping in (headers or {}).items()
             for canonical, header in mapping.items()]
    lookup = pd.Series([h for _, _, h in names], dtype="string",
                       index=pd.MultiIndex.from_tuples([(p, c) for p, c, _ in names])
                       if names else None)
    if out.empty:
        out["header"] = pd.Series(dtype="string")
        out["advice"] = pd.Series(dtype="string")
        return out
    at = pd.MultiIndex.from_arrays([out["file"].astype(str), out["field"].astype(str)])
    out["header"] = (lookup.reindex(at).to_numpy() if len(lookup)
                     else pd.array([pd.NA] * len(out), dtype="string"))
    # a column the file lacks: its value is the file's closest header, which advice names
    closest = out["value"].astype("string").where(
        out["code"].astype(str) == Reason.MISSING_COLUMN).fillna("")
    keys = pd.MultiIndex.from_arrays([out["kind"].astype(str), out["field"].astype(str),
                                      out["code"].astype(str),
                                      out["header"].astype("string").fillna(""), closest])
    distinct = keys.unique()
    told = pd.Series([advice(c, k or None, f, h or None, n or None)
                      for k, f, c, h, n in distinct], index=distinct, dtype="string")
    out["advice"] = told.reindex(keys).to_numpy()
    return out


def _records(frame: pd.DataFrame) -> list[dict]:
    if frame.empty:
        return []
    columns = {
        "file": frame["file"].astype(str),
        "row": frame["row"].astype(int),
        "field": frame["field"].astype(str),
        "header": frame["header"].astype("string"),
        "code": frame["code"].astype(str),
        "reason": frame["reason_zh"].astype(str) + " / " + frame["reason_en"].astype(str),
        "value": frame["value"].astype("string"),
        "advice": frame["advice"].astype("string"),
    }
    # plain lists (None for <NA>: JSON has no pd.NA), zipped: ~5x pandas' to_dict
    lists = [c.astype(object).where(c.notna(), None).tolist() for c in columns.values()]
    names = list(columns)
    records = [dict(zip(names, values, strict=True)) for values in zip(*lists, strict=True)]
    if "rows" in frame.columns:  # the lines of a column a file lacks
        for at, rows in enumerate(frame["rows"].tolist()):
            if pd.notna(rows):
                records[at]["rows"] = int(rows)
    return records


# rejected source rows -------------------------------------------------------------------------

def rejected_source_rows(rejects: pd.DataFrame, raws: Sequence[RawTable],
                         limit: int = REJECTED_ROWS_LIMIT, paths: Sequence[str] = ()
                         ) -> tuple[list[dict], bool]:
    """The rejected rows as the files hold them, for the reject workbook: per file (in the
    order of ``paths``, then of the rejects) its columns as written and its rejected rows,
    each with its row number, its values as text and its reasons (Chinese: column, reason
    and what to do). A whole file refused is an entry with ``refused`` and no rows. At most
    ``limit`` rows in all; returns (entries, whether rows were left out)."""
    if rejects.empty:
        return [], False
    by_path = {r.path: r for r in raws}
    notes = annotate(rejects, {r.path: r.headers for r in raws})
    # a column the file lacks is named by its reason already
    notes["label"] = (_labels(notes) + "：").where(
        notes["code"].astype(str) != Reason.MISSING_COLUMN, "")
    # a choice's reason lists the allowed values already
    told = notes["advice"].where(notes["code"].astype(str) != Reason.BAD_CHOICE)
    notes["text"] = (notes["label"] + notes["reason_zh"].astype(str)
                     + ("（" + told + "）").fillna(""))
    order = {str(p): n for n, p in enumerate(paths)}
    notes["order"] = notes["file"].astype(str).map(order).fillna(len(order))
    notes = notes.sort_values(["order", "file", "row"], kind="stable")
    room, capped, entries = limit, False, []
    for path, group in notes.groupby("file", sort=False):
        raw = by_path.get(str(path))
        entry: dict = {"file": str(path), "kind": None if raw is None else str(raw.kind),
                       "columns": [] if raw is None or raw.raw is None
                       else [str(c) for c in raw.raw.columns],
                       "refused": None, "rows": [], "rejected": 0, "omitted": 0}
        whole = group[group["field"] == FILE_FIELD]
        if len(whole):
            entry["refused"] = "；".join(whole["reason_zh"].astype(str)
                                        + ("（" + whole["advice"] + "）").fillna(""))
        lines = group[group["field"] != FILE_FIELD]
        # a row's reasons in the order of the file's columns
        at = {h: i for i, h in enumerate(entry["columns"])}
        lines = lines.assign(at=lines["header"].map(at).fillna(len(at)))
        lines = lines.sort_values(["row", "at"], kind="stable")
        numbers = np.unique(lines["row"].to_numpy(dtype=np.int64))
        entry["rejected"] = len(numbers)
        shown = numbers[:max(room, 0)]
        entry["omitted"] = len(numbers) - len(shown)
        capped |= entry["omitted"] > 0
        room -= len(shown)
        lines = lines[np.isin(lines["row"].to_numpy(dtype=np.int64), shown)]
        if len(lines):
            entry["rows"] = _source_rows(lines, raw, entry["columns"])
        entries.append(entry)
    return entries, capped


def _source_rows(lines: pd.DataFrame, raw: RawTable | None, columns: list[str]) -> list[dict]:
    """One record per rejected row of one file: row number, values as written, reasons."""
    malformed = lines["index"].to_numpy() < 0
    text = lines["text"].astype(str).to_numpy(dtype=object)
    # a row the parser could not split carries its line as the value of its reject
    text[malformed] = (text[malformed] + "；原文："
                       + lines["value"].astype("string").fillna("").to_numpy(dtype=object)
                       [malformed])
    numbers = lines["row"].to_numpy(dtype=np.int64)    # sorted by row already
    starts = np.flatnonzero(np.r_[True, numbers[1:] != numbers[:-1]])
    ends = np.r_[starts[1:], len(numbers)]
    reasons = [text[a:b].tolist() for a, b in zip(starts, ends, strict=True)]
    # one index per row (a malformed row has -1 on its only line)
    index = np.maximum.reduceat(lines["index"].to_numpy(dtype=np.int64), starts)
    values: list[list[str | None]] = [[None] * len(columns) for _ in range(len(starts))]
    if raw is not None and raw.raw is not None and (index >= 0).any():
        rows = raw.raw.iloc[index[index >= 0]]
        cells = pd.DataFrame({i: as_text(rows.iloc[:, i]).astype(object).to_numpy()
                              for i in range(rows.shape[1])})
        listed = cells.where(cells.notna(), None).to_numpy(dtype=object).tolist()
        for at, row_values in zip(np.flatnonzero(index >= 0), listed, strict=True):
            values[at] = row_values
    return [{"row": int(r), "values": v, "reasons": told}
            for r, v, told in zip(numbers[starts], values, reasons, strict=True)]


# the console ---------------------------------------------------------------------------------

def _labels(frame: pd.DataFrame, absent: str = "（文件无此列）") -> pd.Series:
    """How a person sees each line's column: the file's header, else the schema's Chinese
    name marked ``absent`` from the file, else a whole file or row."""
    header = frame["header"].astype("string")
    zh = _zh_names(frame)
    label = header.fillna(zh + absent)
    label = label.where(frame["field"] != FILE_FIELD, "（整个文件）")
    label = label.where(frame["field"] != ROW_FIELD, "（整行）")
    return label.fillna(frame["field"].astype(str)).astype(str)


def _zh_names(frame: pd.DataFrame) -> pd.Series:
    names = {(str(k), f.name): f.zh for k in Kind for f in SCHEMAS[k]}
    keys = pd.MultiIndex.from_arrays([frame["kind"].astype(str), frame["field"].astype(str)])
    lookup = pd.Series(names, dtype="string")
    return pd.Series(lookup.reindex(keys).to_numpy(), index=frame.index, dtype="string")


def _fit(text: str, width: int, right: bool = False) -> str:
    """``text`` cut (with …) and padded to ``width`` terminal columns (CJK count two)."""
    if cell_len(text) > width:
        text = set_cell_size(text, width - 1).rstrip(" ") + "…"
    pad = " " * (width - cell_len(text))
    return pad + text if right else text + pad


def _wrap(text: str, width: int) -> list[str]:
    """Wrap by terminal columns (CJK count two)."""
    return chop_cells(text, width) or [""]


def _reason_zh(code: str, reasons: str) -> str:
    """The reason of a line of the table: the code's own words for row rejects (their
    details vary by row), the whole text for a file refused."""
    return REASONS[code][0] if code in REASONS else reasons


def _table(frame: pd.DataFrame, title: str, files: list[dict]) -> list[str]:
    """Per file, one line per column and reason (rows, two examples), then the reason in
    words and what to do."""
    if frame.empty:
        return []
    lines = [title]
    cols = (32, 24, 7)
    head = ("    " + _fit("列 column", cols[0]) + " " + _fit("原因 reason", cols[1]) + " "
            + _fit("行数", cols[2], right=True) + "  示例 行号: 值 examples")
    keys = ["file", "field", "code"]
    first = frame.drop_duplicates(keys)
    first = first.assign(label=_labels(first, absent=""), absent=(
        first["header"].isna() & ~first["field"].astype(str).str.startswith("(")))
    summary = first.set_index(keys)[["label", "advice", "reason_zh", "absent"]].rename(
        columns={"reason_zh": "reasons"})
    summary["rows"] = frame.groupby(keys, sort=False)["row"].nunique()
    shown = (frame.drop_duplicates([*keys, "row"]).groupby(keys, sort=False).head(EXAMPLES))
    shown = shown.assign(example=shown["row"].astype(str) + ": " + shown["value"].astype(
        "string").fillna("(空)").map(lambda v: _fit(str(v).replace("\n", " "), 12).rstrip()))
    examples = shown.groupby(keys, sort=False)["example"].agg("; ".join)
    summary["examples"] = examples.reindex(summary.index)
    order = {f["path"]: n for n, f in enumerate(files)}
    summary = summary.reset_index()
    summary["order"] = summary["file"].map(order).fillna(len(order))
    summary = summary.sort_values(["order", "rows"], ascending=[True, False], kind="stable")
    for path, group in summary.groupby("file", sort=False):
        kind = next((f.get("kind") for f in files if f["path"] == path), None)
        lines.append(f"  {_short(str(path))}" + (f"（{kind}）" if kind else ""))
        lines.append(head)
        for g in group.itertuples(index=False):
            column = g.label if g.label == g.field or g.field.startswith("(") \
                else f"{g.label} ({g.field})"
            if cell_len(column) > cols[0]:  # a long header: on a line of its own
                lines.append("    " + _fit(column, WIDTH - 4).rstrip())
                column = ""
            row = ("    " + _fit(column, cols[0]) + " " + _fit(g.code, cols[1]) + " "
                   + _fit(str(g.rows), cols[2], right=True) + "  ")
            shown = "" if g.field == FILE_FIELD else str(g.examples)
            lines.append((row + _fit(shown, max(WIDTH - cell_len(row), 10))).rstrip())
            told = _reason_zh(g.code, str(g.reasons))
            if g.absent:
                told = f"文件没有“{g.label}”这一列；" + told
            if isinstance(g.advice, str) and g.advice:
                told += "。处理：" + g.advice
            lines.extend(("      → " if n == 0 else " " * 8) + part
                         for n, part in enumerate(_wrap(told, WIDTH - 8)))
    return lines


def _short(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def summary_lines(report: dict) -> list[str]:
    """A readable Chinese/English console summary of a report: the counts, then the ignored
    columns of each file, then a table per file and column of the rejects (and flags): the
    reason, how many rows, two example rows and what to do."""
    lines = [
        f"批次 batch {report['batch_id']}",
        f"读取 read {report['read']}  新增 inserted {report.get('inserted', 0)}  "
        f"更新 updated {report.get('updated', 0)}  未变 unchanged {report.get('unchanged', 0)}  "
        f"拒收 rejected {report['rejected']}  标记 flagged {report['flagged']}",
    ]
    for kind, c in report["by_table"].items():
        lines.append(f"  {kind:<10} read {c['read']:>8}  inserted {c.get('inserted', 0):>8}  "
                     f"updated {c.get('updated', 0):>7}  unchanged {c.get('unchanged', 0):>8}  "
                     f"rejected {c['rejected']:>6}")
    if not report.get("written", True):
        lines.append("严格模式：有拒收，整批未写入，库中数据不变 "
                     "strict: there are rejects, nothing was written")
    if report["by_reason"]:
        lines.append("拒收原因 reasons: " + ", ".join(f"{k}={v}" for k, v in
                                                  report["by_reason"].items()))
    if report["by_flag"]:
        lines.append("标记 flags: " + ", ".join(f"{k}={v}" for k, v in report["by_flag"].items()))
    for f in report["files"]:
        if f.get("error"):
            lines.append(f"  文件被拒 file refused: {_short(f['path'])}: {f['error']}")
    lines += _missing_columns(report)
    ignored = [(f["path"], f["ignored_columns"]) for f in report["files"]
               if f.get("ignored_columns")]
    if ignored:
        lines.append("未导入的列（表头不属于该类台账，已忽略）ignored columns:")
        for path, columns in ignored:
            text = f"{_short(path)}: " + "、".join(map(str, columns))
            lines.extend(("  " if n == 0 else "    ") + part
                         for n, part in enumerate(_wrap(text, WIDTH - 4)))
    rejects = [r for r in report["rejects"] if r["code"] != Reason.MISSING_COLUMN]
    lines += _table(_frame(rejects, report["files"]),
                    "拒收明细 rejects by file and column:", report["files"])
    lines += _table(_frame(report["flags"], report["files"]),
                    "标记明细 flags by file and column (已导入 loaded):", report["files"])
    if report.get("rejected_rows_capped"):
        lines.append(f"拒收行超过 {report.get('rejected_rows_limit', REJECTED_ROWS_LIMIT):,} 行，"
                     "拒收工作簿只列出前面的行 the reject workbook lists the first rows only")
    return lines


def _missing_columns(report: dict) -> list[str]:
    """One line per file and column it lacks: the column, why rows need it, the file's
    closest header, how many rows it rejects, and what to do."""
    lacking = [r for r in report["rejects"] if r["code"] == Reason.MISSING_COLUMN]
    if not lacking:
        return []
    kinds = {f["path"]: f.get("kind") for f in report["files"]}
    lines = ["文件缺少必需的列 missing columns:"]
    for r in lacking:
        kind = kinds.get(r["file"])
        text = (f"{_short(r['file'])}" + (f"（{kind}）" if kind else "") + "："
                + r["reason"].split(" / ", 1)[0] + f"。{r.get('rows', 0)} 行因此拒收")
        lines.extend(("  " if n == 0 else "    ") + part
                     for n, part in enumerate(_wrap(text, WIDTH - 4)))
        if r.get("advice"):
            lines.extend(("    → 处理：" if n == 0 else " " * 8) + part
                         for n, part in enumerate(_wrap(r["advice"], WIDTH - 12)))
    return lines


def _frame(records: list[dict], files: list[dict]) -> pd.DataFrame:
    """Report records back as a frame with the columns the table reads."""
    columns = ["file", "row", "field", "header", "code", "reason", "value", "advice"]
    frame = pd.DataFrame(records, columns=columns)
    frame["reason_zh"] = frame["reason"].astype(str).str.split(" / ", n=1).str[0]
    kinds = {f["path"]: f.get("kind") or "" for f in files}
    frame["kind"] = frame["file"].map(kinds).fillna("")
    return frame
