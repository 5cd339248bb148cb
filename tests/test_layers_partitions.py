"""The partition plan (layers.partitions.plan), vectorised on codes, against the plainest
reading of its rule in text-keyed pandas, on random tables with everything ingest never
leaves: a credit code twice, units without a county, pieces without a unit code or naming
units the table lacks, a registration code held in two partitions, hazards naming no
piece, or only a unit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import layers.partitions
from layers.partitions import NO_COUNTY, _pack, _text


def _plan_by_text(units: pd.DataFrame, equipment: pd.DataFrame, hazards: pd.DataFrame,
                  parts: int) -> tuple:
    """The rule, spelt out on text keys (the plan as first written)."""
    unit_code = _text(units["credit_code"])
    unit_county = _text(units["county_adcode"]).fillna(NO_COUNTY)
    # a unit's county is its first row's (a code twice keeps its rows together)
    county_of_unit = pd.Series(unit_county.to_numpy(), index=pd.Index(unit_code))
    county_of_unit = county_of_unit[~county_of_unit.index.duplicated()]
    owner = _text(equipment["unit_credit_code"])
    eq_county = _text(equipment["county_adcode"]).fillna(NO_COUNTY)
    # a unit only equipment names: the county of its first piece
    firsts = pd.Series(eq_county.to_numpy(), index=pd.Index(owner))
    firsts = firsts[firsts.index.notna() & ~firsts.index.duplicated()]
    county_of_owner = pd.concat([county_of_unit, firsts[~firsts.index.isin(
        county_of_unit.index)]])
    key = pd.Series(county_of_owner.reindex(owner).to_numpy(), dtype="string")
    key = key.fillna(eq_county)  # a piece without a unit code: its own county
    weights = key.value_counts(sort=False)
    part_of = _pack(weights, parts)
    eq_part = pd.Series(key.to_numpy()).map(part_of).to_numpy(dtype=np.int64)
    # units whose county has no equipment: by their county if packed, else partition 0
    unit_part = pd.Series(county_of_unit.reindex(unit_code).to_numpy()).map(part_of)
    unit_part = unit_part.fillna(0).to_numpy(dtype=np.int64)
    code = _text(equipment["registration_code"])
    pairs = pd.DataFrame({"code": code.to_numpy(), "part": eq_part}).dropna(
        subset=["code"]).drop_duplicates()
    named = pd.DataFrame({"code": _text(hazards["registration_code"]).to_numpy(),
                          "row": np.arange(len(hazards))}).merge(pairs, on="code")
    home = pd.Series(pd.NA, index=range(len(hazards)), dtype="Int64")
    first = named.drop_duplicates("row")
    home.iloc[first["row"].to_numpy()] = first["part"].to_numpy()
    if "unit_credit_code" in hazards:
        unit_home = pd.Series(unit_part, index=pd.Index(unit_code))
        unit_home = unit_home[~unit_home.index.duplicated()]
        home = home.fillna(pd.Series(unit_home.reindex(
            _text(hazards["unit_credit_code"])).to_numpy(), dtype="Int64"))
    return (max(len(set(part_of.values())), 1), unit_part, eq_part,
            home.fillna(0).to_numpy(dtype=np.int64),
            named["row"].to_numpy(dtype=np.int64), named["part"].to_numpy(dtype=np.int64))


def _random_tables(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n_units, n_eq, n_hz = 300, 3000, 600
    counties = np.array([f"4101{k:02d}" for k in range(12)], dtype=object)
    unit_codes = np.array([f"U{k:05d}" for k in range(n_units)], dtype=object)
    unit_codes[rng.integers(0, n_units, 5)] = unit_codes[rng.integers(0, n_units, 5)]
    units = pd.DataFrame({
        "credit_code": pd.array(unit_codes, dtype="string"),
        "county_adcode": pd.array(np.where(rng.random(n_units) < 0.03, None,
                                           rng.choice(counties, n_units)), dtype="string")})
    owners = rng.choice(np.concatenate([unit_codes, ["X1", "X2", "X3"]]), n_eq)
    owners = np.where(rng.random(n_eq) < 0.02, None, owners)
    regs = np.array([f"E{k:06d}" for k in range(n_eq)], dtype=object)
    regs[rng.integers(0, n_eq, 8)] = regs[rng.integers(0, n_eq, 8)]  # held twice
    regs[rng.integers(0, n_eq, 3)] = None
    equipment = pd.DataFrame({
        "registration_code": pd.array(regs, dtype="string"),
        "unit_credit_code": pd.array(owners, dtype="string"),
        "county_adcode": pd.array(np.where(rng.random(n_eq) < 0.03, None,
                                           rng.choice(counties, n_eq)), dtype="string")})
    named = rng.choice(np.concatenate([regs, ["GONE1", "GONE2", None]]), n_hz)
    hazards = pd.DataFrame({
        "registration_code": pd.array(named, dtype="string"),
        "unit_credit_code": pd.array(np.where(rng.random(n_hz) < 0.5,
                                              rng.choice(unit_codes, n_hz), None),
                                     dtype="string")})
    return units, equipment, hazards


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("parts", [1, 3, 7, 40])
def test_the_plan_on_codes_is_the_rule_on_text(seed, parts):
    units, equipment, hazards = _random_tables(seed)
    got = layers.partitions.plan(units, equipment, hazards, parts)
    want = _plan_by_text(units, equipment, hazards, parts)
    assert got.parts == want[0]
    for name, mine, theirs in zip(("units", "equipment", "hazards", "hazard_rows",
                                   "hazard_parts"), (got.units, got.equipment, got.hazards,
                                                     got.hazard_rows, got.hazard_parts),
                                  want[1:], strict=True):
        np.testing.assert_array_equal(mine, theirs, err_msg=name)
    # the rule itself: each unit with all its pieces
    by_code = pd.Series(got.equipment).groupby(equipment["unit_credit_code"].to_numpy())
    assert (by_code.nunique() == 1).all()


def test_the_plan_without_hazard_units_or_rows():
    units, equipment, hazards = _random_tables(9)
    got = layers.partitions.plan(units, equipment, hazards[["registration_code"]], 4)
    want = _plan_by_text(units, equipment, hazards[["registration_code"]], 4)
    np.testing.assert_array_equal(got.hazards, want[3])
    empty = layers.partitions.plan(units.iloc[:0], equipment.iloc[:0], hazards.iloc[:0], 4)
    assert empty.parts == 1 and len(empty.equipment) == len(empty.hazards) == 0
