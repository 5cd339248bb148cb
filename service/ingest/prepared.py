"""One input file between reading and writing: its parsed rows and which are rejected."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from data.schema import KEYS, Kind
from service.ingest.officers import OfficerCells
from service.ingest.read import RawTable
from service.ingest.rejects import Detail, RejectLog


@dataclass
class Prepared:
    raw: RawTable
    parsed: pd.DataFrame
    officer_cells: OfficerCells | None = None
    rejected: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def kind(self) -> Kind:
        return self.raw.kind

    @property
    def keys(self) -> pd.Series:
        return self.parsed[KEYS[self.kind]].astype("string")

    def reject(self, log: RejectLog, mask: np.ndarray, field: str, reason: str,
               values: pd.Series | None = None, detail: Detail = None) -> None:
        """Reject the rows of ``mask`` not rejected yet (one line per row and cause)."""
        mask = np.asarray(mask, dtype=bool) & ~self.rejected
        log.add(self.raw.path, self.kind, self.raw.rows, mask, field, reason, values, detail)
        self.rejected = self.rejected | mask


Batches = dict[Kind, list[Prepared]]


def valid_rows(items: list[Prepared], columns: list[str]) -> pd.DataFrame:
    """The rows not rejected so far, of every file of one kind, with ``columns``."""
    parts = [i.parsed.loc[~i.rejected, columns] for i in items]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="string") for c in columns})
    return pd.concat(parts, ignore_index=True)
