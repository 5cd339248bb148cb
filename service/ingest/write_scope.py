"""Writes are scoped like reads: every row of an upload must lie within the uploader's scope.

A regulator's scope is an adcode (province, city or county), and a row lies within it when:

- equipment, units, parks, venues: the place the row gives them is in the region and, for
  a key the store holds already, so is the place the store has them (an upload cannot
  move another region's row into its own); a unit with no position is placed by the
  registration authority in its credit code (GB 32100, characters 3–8);
- hazards and checks: the equipment or unit they name is in the region (in this batch or
  stored), and for a stored hazard or check, so is the one the store links it to;
- officers: every cell they are given touches the region (a cell on a border touches
  both sides), the county they are given is in it, and for a stored officer so are the
  cells the store gives them.

A row outside is rejected as ``out_of_scope``; the valid rows still load. What the checks
read is kept as the batch's expectations, so the store refuses the batch if it changed
before the write (service/store/base.py ``Batch.expect``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data.reasons import Reason
from data.schema import KEYS, POINT_KINDS, POLYGON_KINDS, Kind
from geo import boundaries, cells
from service.ingest.prepared import Batches, Prepared, valid_rows
from service.ingest.rejects import RejectLog
from service.ingest.stored import StoredRows
from service.store.query import text_isin

# leading digits of an adcode that name a region of each level
PREFIX = {"province": 2, "city": 4, "county": 6}


@dataclass(frozen=True)
class WriteScope:
    """The region an uploader may write: an adcode of a province, city or county."""

    adcode: str

    @property
    def prefix(self) -> str:
        code = self.adcode
        if code.endswith("0000"):
            return code[:PREFIX["province"]]
        if code.endswith("00") and code != "419001":  # 济源: a city that is a county
            return code[:PREFIX["city"]]
        return code

    def contains(self, adcodes: pd.Series | np.ndarray) -> np.ndarray:
        codes = pd.Series(adcodes, dtype="string")
        return codes.str.startswith(self.prefix).fillna(False).to_numpy(dtype=bool)


def credit_code_region(codes: pd.Series) -> pd.Series:
    """The adcode of the registration authority in a unified social credit code."""
    return pd.Series(codes, dtype="string").str.slice(2, 8)


def positions(batches: Batches, stored: StoredRows, kind: Kind, keys: pd.Series
              ) -> pd.DataFrame:
    """County and H3 cell of the equipment or units named by ``keys`` (row by row, in
    their order): from this batch's valid rows, else from the store."""
    key = KEYS[kind]
    keys = pd.Series(keys, dtype="string").reset_index(drop=True)
    wanted = pd.Index(keys.dropna().unique())
    mine = valid_rows(batches[kind], [key, "county_adcode", "h3"])
    mine = mine.loc[text_isin(mine[key], wanted)].drop_duplicates(key).set_index(key)
    rest = wanted[~text_isin(wanted, mine.index)]
    known = stored.by_key(str(kind), rest)[["county_adcode", "h3"]] if len(rest) else None
    both = mine if known is None or known.empty else pd.concat([mine, known])
    out = both.reindex(pd.Index(keys)).reset_index(drop=True).astype("string")
    if kind == Kind.UNITS:  # a unit with no position: its credit code's region
        out["county_adcode"] = out["county_adcode"].fillna(credit_code_region(keys))
    return out


def check_write_scope(batches: Batches, stored: StoredRows, log: RejectLog,
                      scope: WriteScope, expect: dict[str, pd.DataFrame],
                      provinces: list[str]) -> None:
    """Reject every row outside ``scope`` (see the module's docstring). Point and polygon
    kinds go first, so hazards and checks are judged by equipment and units that load."""
    for kind in (*POLYGON_KINDS, *POINT_KINDS):
        for item in batches[kind]:
            _placed_rows(item, stored, log, scope, expect)
    for kind, target, column in ((Kind.HAZARDS, Kind.EQUIPMENT, "registration_code"),
                                 (Kind.CHECKS, Kind.UNITS, "credit_code")):
        for item in batches[kind]:
            _referring_rows(item, batches, stored, log, scope, expect, target, column)
    for item in batches[Kind.OFFICERS]:
        _officer_rows(item, stored, log, scope, expect, provinces)


def _placed_rows(item: Prepared, stored: StoredRows, log: RejectLog, scope: WriteScope,
                 expect: dict[str, pd.DataFrame]) -> None:
    table, key = str(item.kind), KEYS[item.kind]
    keys = item.keys.reset_index(drop=True)
    before = stored.by_key(table, keys[~item.rejected])
    expect_rows(expect, table, key, before)
    old_county = before["county_adcode"].reindex(pd.Index(keys)).reset_index(
        drop=True).astype("string")
    new_county = item.parsed["county_adcode"].astype("string").reset_index(drop=True)
    if item.kind == Kind.UNITS:
        region = credit_code_region(keys)
        old_county, new_county = old_county.fillna(region), new_county.fillna(region)
    exists = text_isin(keys, before.index)
    item.reject(log, exists & ~scope.contains(old_county), key, Reason.OUT_OF_SCOPE, keys,
                "库中登记在 " + old_county.fillna("未知"))
    where = "geometry" if item.kind in POLYGON_KINDS else "lon"
    item.reject(log, ~scope.contains(new_county), where, Reason.OUT_OF_SCOPE, new_county,
                "位于 " + new_county.fillna("未知"))


def _referring_rows(item: Prepared, batches: Batches, stored: StoredRows, log: RejectLog,
                    scope: WriteScope, expect: dict[str, pd.DataFrame], target: Kind,
                    column: str) -> None:
    table, key = str(item.kind), KEYS[item.kind]
    keys = item.keys.reset_index(drop=True)
    refs = item.parsed[column].astype("string").reset_index(drop=True)
    named = positions(batches, stored, target, refs)["county_adcode"]
    item.reject(log, ~scope.contains(named), column, Reason.OUT_OF_SCOPE, refs,
                "所指对象在 " + named.fillna("未知"))
    before = stored.by_key(table, keys[~item.rejected])
    expect_rows(expect, table, key, before)
    if before.empty:
        return
    old_refs = before[column].reindex(pd.Index(keys)).reset_index(drop=True)
    old = positions(batches, stored, target, old_refs)["county_adcode"]
    exists = text_isin(keys, before.index)
    item.reject(log, exists & ~scope.contains(old), key, Reason.OUT_OF_SCOPE, keys,
                "库中所指对象在 " + old.fillna("未知"))


def _officer_rows(item: Prepared, stored: StoredRows, log: RejectLog, scope: WriteScope,
                  expect: dict[str, pd.DataFrame], provinces: list[str]) -> None:
    ids = item.keys
    given = item.parsed["county_adcode"].astype("string")
    item.reject(log, given.notna().to_numpy() & ~scope.contains(given), "county_adcode",
                Reason.OUT_OF_SCOPE, given)
    if item.officer_cells is not None:
        outside = _officers_outside(item.officer_cells.counties, scope)
        item.reject(log, text_isin(ids, sorted(outside)), "cells", Reason.OUT_OF_SCOPE, ids,
                    "网格不在您的管辖范围内")
    before = stored.by_key("officers", ids[~item.rejected])
    expect_rows(expect, "officers", "officer_id", before)
    if before.empty:
        return
    old_county = before["county_adcode"].astype("string")
    outside = set(old_county.index[old_county.notna().to_numpy()
                                   & ~scope.contains(old_county.to_numpy())])
    held = stored.of("officer_cells", pd.Series(before.index, dtype="string"), "officer_id")
    if len(held):
        touched = boundaries.intersecting_counties(cells.cell_polygons(held["h3"]), provinces)
        pairs = pd.DataFrame({
            "officer_id": held["officer_id"].to_numpy()[touched["index"].to_numpy()],
            "cell": held["h3"].to_numpy()[touched["index"].to_numpy()],
            "county_adcode": touched["county_adcode"].to_numpy()})
        outside |= _officers_outside(pairs, scope)
    item.reject(log, text_isin(ids, sorted(outside)), "officer_id", Reason.OUT_OF_SCOPE, ids,
                "库中该网格员的网格不在您的管辖范围内")


def _officers_outside(pairs: pd.DataFrame, scope: WriteScope) -> set[str]:
    """Officers holding a cell that touches no county of ``scope``."""
    if pairs.empty:
        return set()
    inside = pairs.assign(inside=scope.contains(pairs["county_adcode"].to_numpy()))
    cell_in = inside.groupby(["officer_id", "cell"])["inside"].any()
    bad = cell_in[~cell_in].reset_index()["officer_id"]
    return set(bad.astype(str))


def expect_rows(expect: dict[str, pd.DataFrame], table: str, key: str,
            before: pd.DataFrame) -> None:
    """Remember the stored rows a check looked at (key and fingerprint)."""
    if before.empty:
        return
    seen = pd.DataFrame({key: pd.Series(before.index, dtype="string"),
                         "row_hash": pd.array(before["row_hash"], dtype="Int64")})
    known = expect.get(table)
    expect[table] = seen if known is None else pd.concat(
        [known, seen], ignore_index=True).drop_duplicates(key)
