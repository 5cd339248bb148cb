"""CSV and XLSX that cannot attack their reader: text from data stays text.

A spreadsheet program runs a cell that begins with ``=``, ``+``, ``-`` or ``@`` (and, after
a tab or carriage return, some do too) as a formula: a unit named ``=HYPERLINK(…)`` would
become a live link in a regulator's worklist. CSV text cells that begin so get a leading
apostrophe, as OWASP's "CSV Injection" page recommends; XLSX cells are written as strings,
never as formulas, URLs or numbers parsed from text.
"""

from __future__ import annotations

import io

import pandas as pd

FORMULA_START = r"^[=+\-@\t\r]"
XLSX_OPTIONS = {"strings_to_formulas": False, "strings_to_urls": False,
                "strings_to_numbers": False}


def neutralised(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell that a spreadsheet would run prefixed by ``'``."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            continue
        text = values.astype("string")
        risky = text.str.contains(FORMULA_START, regex=True).fillna(False).to_numpy(dtype=bool)
        if risky.any():
            out[column] = values.astype(object)
            out.loc[risky, column] = "'" + text[risky]
    return out


def to_csv(frame: pd.DataFrame, header: bool = True) -> str:
    return neutralised(frame).to_csv(index=False, header=header)


def to_xlsx(frame: pd.DataFrame, sheet: str) -> bytes:
    """One sheet; every text cell a string."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="xlsxwriter",
                        engine_kwargs={"options": XLSX_OPTIONS}) as writer:
        frame.to_excel(writer, index=False, sheet_name=sheet)
    return buffer.getvalue()
