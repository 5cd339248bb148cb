"""The reject workbook (``riskmap ingest --report-xlsx``): the rejected rows as they came,
one sheet per source file, for the clerk to fix and ingest again.

Each sheet has the file's own columns in the file's order, after two of ours: 拒收原因 (every
reason of the row, with what to do) and 行号 (the row in the source file). Ingesting the
fixed sheet again works: the two extra columns are ignored as unknown headers, and the
file's own headers are recognised as before. A file refused as a whole is a note row; so is
the tail of rows left out when the report's cap (``REJECTED_ROWS_LIMIT``) was reached.

Text from the files never becomes a formula: every cell is written as a string by
xlsxwriter with formulas, URLs and numbers-from-text off (``service.tabular.XLSX_OPTIONS``),
so ``=HYPERLINK(…)`` stays the text the clerk typed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from service.ingest.report import REJECTED_ROWS_LIMIT
from service.tabular import XLSX_OPTIONS

REASON_COLUMN, ROW_COLUMN = "拒收原因", "行号"
SHEET_CHARS = 31                       # Excel's limit on a sheet name
NOT_IN_SHEET_NAMES = re.compile(r"[\[\]:*?/\\\x00-\x1f]")
REASON_WIDTH = 60                      # characters, the reason column wraps within it


def write_reject_workbook(report: dict, path: Path) -> int:
    """Write the report's rejected rows to an XLSX at ``path``; returns how many rejected
    rows it lists (note rows not counted)."""
    entries = report.get("rejected_rows") or []
    limit = report.get("rejected_rows_limit", REJECTED_ROWS_LIMIT)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with pd.ExcelWriter(path, engine="xlsxwriter",
                        engine_kwargs={"options": XLSX_OPTIONS}) as writer:
        used: set[str] = set()
        if not entries:
            _write(writer, _sheet_name("拒收", used), pd.DataFrame(
                {REASON_COLUMN: ["本批没有拒收的行 / nothing was rejected"], ROW_COLUMN: [None]}))
        for entry in entries:
            frame = _sheet(entry, limit)
            written += len(entry.get("rows", ()))
            _write(writer, _sheet_name(Path(str(entry["file"])).stem, used), frame)
    return written


def _sheet(entry: dict, limit: int) -> pd.DataFrame:
    """One file's rejected rows under its own columns, after the reason and row number."""
    columns = [str(c) for c in entry.get("columns", [])]
    own = [i for i, c in enumerate(columns) if c not in (REASON_COLUMN, ROW_COLUMN)]
    names = [columns[i] for i in own]
    rows = entry.get("rows", [])
    values = pd.DataFrame([[r["values"][i] if i < len(r["values"]) else None for i in own]
                           for r in rows], columns=range(len(own)), dtype=object)
    frame = pd.DataFrame({REASON_COLUMN: ["\n".join(r["reasons"]) for r in rows],
                          ROW_COLUMN: [int(r["row"]) for r in rows]}, dtype=object)
    frame = pd.concat([frame, values], axis=1)
    frame.columns = [REASON_COLUMN, ROW_COLUMN, *range(len(own))]
    notes = []
    if entry.get("refused"):
        notes.append(f"整个文件被拒，没有导入任何行 / the whole file was refused："
                     f"{entry['refused']}")
    if entry.get("omitted"):
        notes.append(f"另有 {entry['omitted']:,} 行拒收未列出（报告最多列出 {limit:,} 行）："
                     "请先改正以上各行并重新导入，剩余的拒收行会再次列出 / "
                     f"{entry['omitted']:,} more rejected rows are not listed")
    if notes:
        frame = pd.concat([frame, pd.DataFrame({REASON_COLUMN: notes, ROW_COLUMN: None},
                                               dtype=object)], ignore_index=True)
    frame.columns = [REASON_COLUMN, ROW_COLUMN, *names]
    return frame


def _write(writer: pd.ExcelWriter, name: str, frame: pd.DataFrame) -> None:
    frame.to_excel(writer, sheet_name=name, index=False)
    sheet = writer.sheets[name]
    wrap = writer.book.add_format({"text_wrap": True, "valign": "top"})
    sheet.set_column(0, 0, REASON_WIDTH, wrap)
    sheet.set_column(1, 1, 6)
    if frame.shape[1] > 2:
        sheet.set_column(2, frame.shape[1] - 1, 16)
    sheet.freeze_panes(1, 2)


def _sheet_name(stem: str, used: set[str]) -> str:
    """A valid, unique sheet name from a file name: no []:*?/\\, not quoted at either end,
    at most 31 characters, unique ignoring case (as Excel compares them)."""
    base = NOT_IN_SHEET_NAMES.sub("_", stem).strip("'") or "文件"
    if base.lower() == "history":  # reserved by Excel
        base += "_"
    name, n = base[:SHEET_CHARS], 1
    while name.lower() in used:
        n += 1
        tail = f"~{n}"
        name = base[:SHEET_CHARS - len(tail)] + tail
    used.add(name.lower())
    return name
