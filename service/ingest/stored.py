"""What the store already holds for the keys of a batch: looked up once per table, only for
those keys (``Store.lookup``: one indexed query on PostGIS), never by reading whole tables."""

from __future__ import annotations

import pandas as pd

from service.store.base import Store
from service.store.query import text_isin

# the stored columns the batch checks need: where a row is, its fingerprint, and for
# hazards and checks the whole row (their changes are audited with the row before)
COLUMNS: dict[str, list[str] | None] = {
    "equipment": ["registration_code", "county_adcode", "h3", "row_hash"],
    "units": ["credit_code", "county_adcode", "h3", "row_hash"],
    "parks": ["park_id", "county_adcode", "row_hash"],
    "venues": ["venue_id", "county_adcode", "row_hash"],
    "officers": ["officer_id", "county_adcode", "row_hash"],
    "officer_cells": ["officer_id", "h3"],
    "hazards": None,
    "checks": None,
}


class StoredRows:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._rows: dict[str, pd.DataFrame] = {}
        self._asked: dict[str, pd.Index] = {}

    def of(self, table: str, keys: pd.Series | pd.Index, column: str | None = None
           ) -> pd.DataFrame:
        """Stored rows of ``table`` whose ``column`` (default the key) is one of ``keys``."""
        column = column or self.store.spec(table).key
        asked = self._asked.get(f"{table}.{column}", pd.Index([], dtype="string"))
        wanted = pd.Index(pd.Series(keys, dtype="string").dropna().unique())
        new = wanted[~text_isin(wanted, asked)]
        if len(new):
            found = self.store.lookup(table, column, new.tolist(), self.columns(table))
            known = self._rows.get(table)
            self._rows[table] = found if known is None else pd.concat(
                [known, found], ignore_index=True).drop_duplicates()
            self._asked[f"{table}.{column}"] = asked.append(new)
        rows = self._rows.get(table)
        if rows is None:
            return pd.DataFrame()
        return rows.loc[text_isin(rows[column], wanted)].reset_index(drop=True)

    def columns(self, table: str) -> list[str]:
        return COLUMNS[table] or [c for c in self.store.read_columns(table, None)
                                  if c != "geometry"]

    def by_key(self, table: str, keys: pd.Series | pd.Index) -> pd.DataFrame:
        """``of`` indexed by the table's key (one row per key)."""
        key = self.store.spec(table).key
        rows = self.of(table, keys)
        if rows.empty:
            return self.store.empty_frame(table)[self.columns(table)].set_index(key)
        return rows.drop_duplicates(key).set_index(key)
