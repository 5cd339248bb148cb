"""layers.aggregate: 分区域、分级别、分行业、网格化 — cells, regions, industries, grid cells."""

from __future__ import annotations

from datetime import date

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from data.catalogue import TOP_CATEGORIES
from layers.aggregate import (
    CATEGORY_COLUMNS,
    INDICATOR_COLUMNS,
    INDUSTRIES,
    AggregateRules,
    Sums,
    area_levels,
    grid_cells,
    grid_cells_from,
    grid_targets,
    indicators,
    industries,
    industries_from,
    industry_codes,
    regions,
    regions_from,
    risk_cells,
    risk_cells_from,
    unlocated,
)
from layers.alerts import elevator_counts, insurance, insurance_from
from layers.build_status import BuildStatusRules, unit_build_status, with_build_rates
from layers.registry import INDICATORS, LAYERS
from service.store.conform import conform_layer

NA = None

# A res-8 cell in Zhengzhou and two of its res-9 children: points A, B share child 0,
# point C sits in child 1; D is far away (another res-8 cell); E has no coordinates.
CELL8 = h3.latlng_to_cell(34.75, 113.65, 8)
CHILDREN = sorted(h3.cell_to_children(CELL8, 9))
LAT0, LON0 = h3.cell_to_latlng(CHILDREN[0])
LAT1, LON1 = h3.cell_to_latlng(CHILDREN[1])
FAR = (34.20, 112.40)  # lat, lon: ~130 km west


def equipment() -> pd.DataFrame:
    """Six graded pieces (only the columns the aggregations read).

    E1 red 3000 D=400, E2 blue 3000 D=20, E3 orange 1000 D=420 (ties with 3000 on D),
    E4 yellow 4000 D=100 far away, E5 not in use (one open hazard), E6 unlocated blue 2000.
    """
    return pd.DataFrame({
        "registration_code": ["E1", "E2", "E3", "E4", "E5", "E6"],
        "unit_credit_code": ["U1", "U1", "U2", "U3", "U2", "U9"],
        "lon": [LON0, LON0 + 1e-6, LON1, FAR[1], LON0, np.nan],
        "lat": [LAT0, LAT0 + 1e-6, LAT1, FAR[0], LAT0, np.nan],
        "province_adcode": ["410000", "410000", "410000", "410000", "410000", NA],
        "city_adcode": ["410100", "410100", NA, "410300", "410100", NA],
        "county_adcode": ["410102", "410102", "410103", "410305", "410102", NA],
        "in_use": [True, True, True, True, False, True],
        "level": ["red", "blue", "orange", "yellow", NA, "blue"],
        "top_category": ["3000", "3000", "1000", "4000", "3000", "2000"],
        "D": [400.0, 20.0, 420.0, 100.0, 0.0, 10.0],
        "open_hazards": [1, 0, 2, 0, 1, 0],
        "open_major_hazards": [1, 0, 0, 0, 0, 0],
        "overdue": [True, False, False, True, False, False],
    }).astype({c: "string" for c in ("registration_code", "unit_credit_code",
                                      "province_adcode", "city_adcode", "county_adcode",
                                      "level", "top_category")})


def _box(x: float, y: float) -> shapely.Polygon:
    return shapely.box(x, y, x + 0.1, y + 0.1)


def boundaries() -> gpd.GeoDataFrame:
    """Henan with 郑州 (two counties), 洛阳 (one county, one empty county) and 济源 (a city
    that is also a county, same adcode)."""
    rows = [
        ("410000", "河南省", "province", NA, "410000", NA),
        ("410100", "郑州市", "city", "410000", "410000", "410100"),
        ("410300", "洛阳市", "city", "410000", "410000", "410300"),
        ("419001", "济源市", "city", "410000", "410000", "419001"),
        ("410102", "中原区", "county", "410100", "410000", "410100"),
        ("410103", "二七区", "county", "410100", "410000", "410100"),
        ("410305", "涧西区", "county", "410300", "410000", "410300"),
        ("410311", "洛龙区", "county", "410300", "410000", "410300"),
        ("419001", "济源市", "county", "419001", "410000", "419001"),
    ]
    frame = pd.DataFrame(rows, columns=["adcode", "name", "level", "parent_adcode",
                                        "province_adcode", "city_adcode"], dtype="string")
    geoms = [_box(110 + i, 30) for i in range(len(frame))]
    # shuffled, as a concat of three levels might come
    return gpd.GeoDataFrame(frame, geometry=geoms, crs=4326).iloc[[8, 4, 0, 2, 1, 3, 7, 5, 6]]


def units() -> pd.DataFrame:
    return pd.DataFrame({
        "credit_code": ["U1", "U2", "U3", "U4"],
        "industry": ["K", "c36", NA, "P"],
        "level": ["red", "orange", "yellow", NA],
        "province_adcode": ["410000", "410000", "410000", "410000"],
        "city_adcode": ["410100", "410100", "410300", NA],
        "county_adcode": ["410102", "410103", "410305", "410311"],
    }, dtype="string")


def row(frame: pd.DataFrame, **where: object) -> pd.Series:
    hit = np.ones(len(frame), dtype=bool)
    for col, value in where.items():
        hit &= (frame[col] == value).fillna(False).to_numpy(dtype=bool)
    assert hit.sum() == 1, where
    return frame[hit].iloc[0]


# --------------------------------------------------------------------------- indicators

def test_indicator_columns_match_the_registry() -> None:
    assert list(INDICATOR_COLUMNS) == [name for name, _ in INDICATORS]
    assert list(CATEGORY_COLUMNS) == [f"cat_{c}" for c in TOP_CATEGORIES]


def test_indicators_of_one_group() -> None:
    """Counts over in-use pieces; hazards over all; D sums; rates over in-use count."""
    out = indicators(equipment(), pd.Series(["g"] * 6))
    r = out.iloc[0]
    assert r["key"] == "g"
    assert r["equipment"] == 5  # E5 is not in use
    assert (r["n_red"], r["n_orange"], r["n_yellow"], r["n_blue"]) == (1, 1, 1, 2)
    assert (r["cat_3000"], r["cat_1000"], r["cat_4000"], r["cat_2000"], r["cat_9000"]) == (
        2, 1, 1, 1, 0)
    assert r["risk_score"] == pytest.approx(950.0)
    assert r["risk_index"] == pytest.approx(190.0)
    assert r["max_level"] == "red"
    # 1000 has D 420 = 3000's 400+20: the tie goes to the lower code
    assert r["dominant_category"] == "1000"
    assert r["dominant_category_name"] == TOP_CATEGORIES["1000"]
    assert (r["open_hazards"], r["open_major_hazards"], r["overdue"]) == (4, 1, 2)
    assert r["overdue_rate"] == pytest.approx(2 / 5)


def test_indicators_group_without_in_use_equipment() -> None:
    """Only an out-of-use piece: zero counts, 0 ratios, no level or category."""
    out = indicators(equipment().iloc[[4]], pd.Series(["g"]))
    r = out.iloc[0]
    assert r["equipment"] == 0 and r["open_hazards"] == 1
    assert r["risk_index"] == 0.0 and r["overdue_rate"] == 0.0
    assert pd.isna(r["max_level"]) and pd.isna(r["dominant_category"])
    assert pd.isna(r["dominant_category_name"])


def test_indicators_dtypes_and_na_keys() -> None:
    out = indicators(equipment(), pd.Series(["b", "a", NA, "a", "b", NA]))
    assert out["key"].tolist() == ["a", "b"]  # sorted, NA keys left out
    assert out["equipment"].tolist() == [2, 1]  # b: E5 is not in use
    assert out["equipment"].dtype == "Int64"
    assert out["risk_score"].dtype == "float64"
    assert out["max_level"].dtype == "string"
    assert out["dominant_category"].tolist() == ["4000", "3000"]  # a: E4 D100 beats E2 D20


def test_indicators_empty() -> None:
    out = indicators(equipment().iloc[:0], pd.Series([], dtype="string"))
    assert len(out) == 0
    assert list(out.columns) == ["key", *INDICATOR_COLUMNS]


# --------------------------------------------------------------------------- risk cells

def test_risk_cells_nest_and_count() -> None:
    out = risk_cells(equipment())
    assert out.crs.to_epsg() == 4326
    assert out.attrs["unlocated"] == 1 == unlocated(equipment())
    assert out["resolution"].unique().tolist() == [5, 6, 7, 8, 9]
    nine = out[out["resolution"] == 9]
    # E1, E2, E5 in child 0; E3 in child 1; E4 far away
    assert sorted(nine["h3"]) == sorted([CHILDREN[0], CHILDREN[1],
                                         h3.latlng_to_cell(*FAR, 9)])
    c0 = row(out, h3=CHILDREN[0])
    assert (c0["equipment"], c0["n_red"], c0["n_blue"], c0["open_hazards"]) == (2, 1, 1, 2)
    assert c0["risk_score"] == pytest.approx(420.0)
    assert c0["dominant_category"] == "3000" and c0["max_level"] == "red"
    c8 = row(out, h3=CELL8)
    assert c8["equipment"] == 3 and c8["risk_score"] == pytest.approx(840.0)
    assert c8["dominant_category"] == "1000"  # 420 vs 420: lower code
    assert c8["resolution"] == 8
    # every located in-use piece is counted once per resolution
    assert out.groupby("resolution")["equipment"].sum().tolist() == [4] * 5


def test_risk_cells_geometry_and_order() -> None:
    out = risk_cells(equipment(), resolutions=(9, 7))
    assert out["resolution"].tolist() == sorted(out["resolution"].tolist())
    for _, part in out.groupby("resolution"):
        assert part["h3"].tolist() == sorted(part["h3"].tolist())
    assert (out.geom_type == "Polygon").all()
    c0 = row(out, h3=CHILDREN[0])
    centre = shapely.Point(LON0, LAT0)
    assert c0.geometry.contains(centre)
    assert out["h3"].dtype == "string" and out["resolution"].dtype == "Int64"


def test_risk_cells_empty_and_unlocated_only() -> None:
    out = risk_cells(equipment().iloc[:0])
    assert len(out) == 0 and list(out.columns)[:2] == ["h3", "resolution"]
    assert out.attrs["unlocated"] == 0
    only = risk_cells(equipment().iloc[[5]])
    assert len(only) == 0 and only.attrs["unlocated"] == 1


def test_unlocated_counts_bad_coordinates() -> None:
    eq = equipment()
    eq["lat"] = [LAT0, 95.0, np.nan, FAR[0], LAT0, np.nan]  # 95° is no latitude
    assert unlocated(eq) == 3
    assert risk_cells(eq, resolutions=(9,)).attrs["unlocated"] == 3


def test_resolution_rules() -> None:
    assert AggregateRules().cell_resolutions == (5, 6, 7, 8, 9)
    assert AggregateRules(cell_resolutions=(9, 5)).cell_resolutions == (5, 9)
    for bad in ((), (-1, 5), (16,), (7, 7)):
        with pytest.raises(ValidationError):
            AggregateRules(cell_resolutions=bad)
    with pytest.raises(ValidationError):
        AggregateRules(unknown=1)
    with pytest.raises(ValidationError):
        risk_cells(equipment(), resolutions=(5, 5))


ADDITIVE = ("equipment", "n_red", "n_orange", "n_yellow", "n_blue", *CATEGORY_COLUMNS,
            "open_hazards", "open_major_hazards", "overdue")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(34.0, 34.6), st.floats(113.0, 113.8),
                          st.sampled_from(["red", "orange", "yellow", "blue", None]),
                          st.sampled_from(list(TOP_CATEGORIES)),
                          st.integers(0, 10_000).map(lambda k: k / 20),  # D: LEC products
                          st.integers(0, 3)),
                min_size=1, max_size=60))
def test_parent_totals_equal_sum_of_children(points: list[tuple]) -> None:
    lat, lon, level, cat, d, hz = map(list, zip(*points, strict=True))
    eq = pd.DataFrame({"lon": lon, "lat": lat, "level": pd.array(level, dtype="string"),
                       "in_use": [lv is not None for lv in level],
                       "top_category": pd.array(cat, dtype="string"),
                       "D": [x if lv else 0.0 for x, lv in zip(d, level, strict=True)],
                       "open_hazards": hz, "open_major_hazards": [h // 2 for h in hz],
                       "overdue": [h == 3 for h in hz]})
    out = risk_cells(eq)
    by_res = {r: part.set_index("h3") for r, part in out.groupby("resolution")}
    for child_res in (6, 7, 8, 9):
        for parent_res in range(5, child_res):
            child = by_res[child_res]
            keys = [h3.cell_to_parent(c, parent_res) for c in child.index]
            sums = child[[*ADDITIVE, "risk_score"]].astype("float64").groupby(keys).sum()
            parent = by_res[parent_res].loc[sums.index]
            assert len(sums) == len(by_res[parent_res])  # no parent without children
            for col in ADDITIVE:
                assert sums[col].tolist() == parent[col].astype("float64").tolist()
            np.testing.assert_allclose(sums["risk_score"], parent["risk_score"], rtol=1e-9)
    assert int(by_res[5]["equipment"].sum()) == sum(lv is not None for lv in level)


# --------------------------------------------------------------------------- regions

def test_regions_every_boundary_row_with_zeros() -> None:
    out = regions(equipment(), units(), boundaries())
    assert out.crs.to_epsg() == 4326
    assert list(zip(out["admin_level"], out["adcode"], strict=True)) == [
        ("province", "410000"), ("city", "410100"), ("city", "410300"), ("city", "419001"),
        ("county", "410102"), ("county", "410103"), ("county", "410305"),
        ("county", "410311"), ("county", "419001")]
    empty = row(out, adcode="410311")
    assert empty["equipment"] == 0 and empty["risk_index"] == 0.0
    assert pd.isna(empty["max_level"]) and empty["name"] == "洛龙区"
    assert empty["parent_adcode"] == "410300"
    geo = boundaries().set_index("adcode")
    assert empty.geometry.equals(geo.loc["410311"].geometry)


def test_regions_levels_nest() -> None:
    out = regions(equipment(), units(), boundaries())
    prov = row(out, adcode="410000")
    assert prov["equipment"] == 4  # E6 has no adcode, E5 is not in use
    assert prov["open_hazards"] == 4 and prov["overdue"] == 2
    zz = row(out, adcode="410100")
    # E3 has no city code but its county 410103 lies in 410100
    assert zz["equipment"] == 3 and zz["risk_score"] == pytest.approx(840.0)
    assert row(out, adcode="410102")["equipment"] == 2
    assert row(out, adcode="410103")["n_orange"] == 1
    counties = out[out["admin_level"] == "county"]
    for col in ADDITIVE:
        assert counties[col].sum() == prov[col]


def test_regions_units() -> None:
    out = regions(equipment(), units(), boundaries())
    prov = row(out, adcode="410000")
    assert (prov["units"], prov["units_red"], prov["units_orange"], prov["units_yellow"],
            prov["units_blue"]) == (4, 1, 1, 1, 0)
    # U4 (no equipment, no level, no city code) counts in its county and, via it, its city
    assert row(out, adcode="410311")["units"] == 1
    assert row(out, adcode="410300")["units"] == 2
    assert out["units"].dtype == "Int64"


def test_regions_city_that_is_also_a_county() -> None:
    eq = equipment().iloc[[0]].copy()
    eq["city_adcode"] = pd.array(["419001"], dtype="string")
    eq["county_adcode"] = pd.array(["419001"], dtype="string")
    out = regions(eq, units().iloc[:0], boundaries())
    jy = out[out["adcode"] == "419001"]
    assert jy["admin_level"].tolist() == ["city", "county"]
    assert jy["equipment"].tolist() == [1, 1]


def test_regions_unplaced_and_empty_inputs() -> None:
    eq = equipment()
    eq.loc[3, "county_adcode"] = "999999"  # in no boundary
    out = regions(eq, units(), boundaries())
    assert out.attrs["unplaced"] == 2  # E4 (unknown county) and E6 (none)
    none = regions(equipment().iloc[:0], units().iloc[:0], boundaries())
    assert len(none) == 9 and none["equipment"].sum() == 0 and none["units"].sum() == 0
    assert len(regions(equipment(), units(), boundaries().iloc[:0])) == 0


def test_regions_without_adcode_columns() -> None:
    """Equipment with only coordinates (no adcodes) lands in no region, without error."""
    eq = equipment().drop(columns=["province_adcode", "city_adcode", "county_adcode"])
    out = regions(eq, units(), boundaries())
    assert out["equipment"].sum() == 0 and out.attrs["unplaced"] == 6


# --------------------------------------------------------------------------- industries

def test_industry_codes() -> None:
    got = industry_codes(pd.Series(["C", "c36", " K ", "C 制造业", "教育", "CX", "Z", "", NA]))
    assert got.tolist() == ["C", "C", "K", "C", "P", "未知", "未知", "未知", "未知"]
    assert "".join(INDUSTRIES) == "ABCDEFGHIJKLMNOPQRST"


def test_industries_rows_and_sums() -> None:
    out = industries(equipment(), units(), boundaries())
    assert out.crs.to_epsg() == 4326
    prov = out[out["adcode"] == "410000"]
    # U1 → K, U2 → C, U3 no industry → 未知; E6's unit U9 is unknown but E6 has no adcode
    assert prov["industry"].tolist() == ["C", "K", "未知"]
    assert prov["industry_name"].tolist() == ["制造业", "房地产业", "行业未知"]
    k = row(out, adcode="410102", industry="K")
    assert (k["equipment"], k["n_red"], k["n_blue"]) == (2, 1, 1)
    c = row(out, adcode="410102", industry="C")  # E5: out of use, open hazard
    assert c["equipment"] == 0 and c["open_hazards"] == 1
    assert row(out, adcode="410305", industry="未知")["equipment"] == 1
    # an industry's rows add up to its region's
    reg = regions(equipment(), units(), boundaries()).set_index(["admin_level", "adcode"])
    sums = out.groupby(["admin_level", "adcode"])[list(ADDITIVE)].sum()
    for key, totals in sums.iterrows():
        for col in ADDITIVE:
            assert totals[col] == reg.loc[key, col]
    assert "410311" not in set(out["adcode"])  # nothing there, no row
    assert out["industry"].dtype == "string" and out["equipment"].dtype == "Int64"


def test_industries_order_and_empty() -> None:
    out = industries(equipment(), units(), boundaries())
    levels = out["admin_level"].map({"province": 0, "city": 1, "county": 2})
    keys = list(zip(levels, out["adcode"], out["industry"].replace("未知", "~"), strict=True))
    assert keys == sorted(keys)
    none = industries(equipment().iloc[:0], units(), boundaries())
    assert len(none) == 0 and "industry_name" in none.columns
    no_units = industries(equipment(), units().iloc[:0], boundaries())
    assert set(no_units["industry"]) == {"未知"}


# --------------------------------------------------------------------------- grid cells

def officers() -> pd.DataFrame:
    return pd.DataFrame({"officer_id": ["G1", "G2"], "name": ["张三", "李四"],
                         "county_adcode": ["410102", "410103"],
                         "phone": ["1", "2"], "cell_count": [2, 1]})


def officer_cells() -> pd.DataFrame:
    other = h3.latlng_to_cell(*FAR, 8)
    return pd.DataFrame({"officer_id": ["G2", "G1", "G1", "G1", "G3", "G1"],
                         "h3": [CELL8, other, CELL8.upper(), "nonsense", CELL8, CELL8]})


def test_grid_cells() -> None:
    out = grid_cells(equipment(), officers(), officer_cells())
    assert out.crs.to_epsg() == 4326
    other = h3.latlng_to_cell(*FAR, 8)
    assert list(zip(out["officer_id"], out["h3"], strict=True)) == sorted(
        [("G1", CELL8), ("G1", other), ("G2", CELL8), ("G3", CELL8)])
    g1 = row(out, officer_id="G1", h3=CELL8)
    g2 = row(out, officer_id="G2", h3=CELL8)
    assert g1["equipment"] == g2["equipment"] == 3  # a shared cell, once per officer
    assert g1["open_hazards"] == 4 and g1["risk_score"] == pytest.approx(840.0)
    assert g1["officer_name"] == "张三" and g2["county_adcode"] == "410103"
    assert row(out, officer_id="G1", h3=other)["n_yellow"] == 1
    g3 = row(out, officer_id="G3")
    assert pd.isna(g3["officer_name"]) and pd.isna(g3["county_adcode"])
    assert out.attrs["invalid_cells"] == 1
    assert (out.geom_type == "Polygon").all()
    assert g1.geometry.contains(shapely.Point(LON0, LAT0))


def test_grid_cells_without_equipment_or_cells() -> None:
    out = grid_cells(equipment().iloc[:0], officers(), officer_cells())
    assert len(out) == 4 and out["equipment"].sum() == 0
    assert out["max_level"].isna().all()
    none = grid_cells(equipment(), officers(), officer_cells().iloc[:0])
    assert len(none) == 0 and list(none.columns)[:4] == [
        "officer_id", "officer_name", "county_adcode", "h3"]


def test_grid_cells_at_another_resolution() -> None:
    cell7 = h3.cell_to_parent(CELL8, 7)
    out = grid_cells(equipment(), officers(), pd.DataFrame({"officer_id": ["G1"],
                                                            "h3": [cell7]}))
    assert out["equipment"].tolist() == [3]


# --------------------------------------------------------------------------- contract

@pytest.mark.parametrize("layer_id", ["risk-cells", "regions", "industries", "grid-cells"])
def test_frames_hold_the_registry_fields(layer_id: str) -> None:
    frames = {
        "risk-cells": lambda: risk_cells(equipment()),
        "regions": lambda: with_build_rates(  # the builder adds the 建成率 to the regions
            regions(equipment(), units(), boundaries()), units(),
            unit_build_status(units(), BuildStatusRules()),
            np.zeros(len(units()), dtype=bool), date(2026, 11, 1), BuildStatusRules()),
        "industries": lambda: industries(equipment(), units(), boundaries()),
        "grid-cells": lambda: grid_cells(equipment(), officers(), officer_cells()),
    }
    out = frames[layer_id]()
    spec = LAYERS[layer_id]
    assert set(spec.field_names) <= set(out.columns)
    assert out.geometry.name == "geometry"
    plain = {"string", "Int64", "float64", "boolean", "geometry"}
    for col in out.columns:
        assert str(out[col].dtype) in plain, (col, out[col].dtype)
    stored = conform_layer(layer_id, out)  # keys unique (济源 is a city and a county)
    assert len(stored) == len(out)


# --------------------------------------------------------------------------- area levels
# issue 13 §2: a cell's colour is how much risk it holds, not its single worst piece.

def _pieces(counts: dict[str, int], lat: float = LAT0, lon: float = LON0) -> pd.DataFrame:
    """In-use pieces at one point, ``counts`` of each level."""
    levels = [lv for lv, n in counts.items() for _ in range(n)]
    return pd.DataFrame({
        "lon": np.full(len(levels), lon), "lat": np.full(len(levels), lat),
        "in_use": np.ones(len(levels), dtype=bool),
        "level": pd.array(levels, dtype="string"),
        "top_category": pd.array(["3000"] * len(levels), dtype="string"),
        "D": np.full(len(levels), 20.0)})


def test_one_red_piece_among_fifty_blue_is_not_a_red_cell():
    out = risk_cells(_pieces({"red": 1, "blue": 50}), resolutions=(7, 9))
    assert list(out["level"]) == ["blue", "blue"]
    assert list(out["max_level"]) == ["red", "red"]  # the worst piece is still said
    assert out["level_share"].tolist() == [1.0, 1.0]


def test_a_cell_mostly_orange_is_orange_and_the_share_that_set_it_is_kept():
    out = risk_cells(_pieces({"orange": 6, "yellow": 1, "blue": 3}), resolutions=(9,))
    assert out["level"].tolist() == ["orange"]
    assert out["max_level"].tolist() == ["orange"]
    assert out["level_share"].tolist() == pytest.approx([0.6])


def test_area_levels_step_down_by_the_share_at_each_level_or_worse():
    counts = np.array([
        [1, 0, 0, 3],    # 25% red: red at the default quarter
        [1, 1, 0, 8],    # 10% red, 20% orange or worse, 20% yellow or worse: blue
        [0, 1, 1, 6],    # 12.5% orange or worse, 25% yellow or worse: yellow
        [0, 0, 0, 0],    # nothing in use: no level
    ])
    out = area_levels(counts)
    assert out["level"].fillna("-").tolist() == ["red", "blue", "yellow", "-"]
    assert out["level_share"].tolist() == pytest.approx([0.25, 1.0, 0.25, 0.0])
    strict = area_levels(counts, AggregateRules(red_share=0.5, yellow_share=0.1))
    assert strict["level"].fillna("-").tolist() == ["orange", "yellow", "yellow", "-"]


def test_area_shares_are_rules_with_bounds():
    with pytest.raises(ValidationError):
        AggregateRules(red_share=0)
    with pytest.raises(ValidationError):
        AggregateRules(orange_share=1.5)


def test_regions_get_a_level_from_their_share_and_keep_the_worst_piece():
    out = regions(equipment(), units(), boundaries())
    zz = out[(out["admin_level"] == "county") & (out["adcode"] == "410102")].iloc[0]
    # 410102 holds E1 red and E2 blue in use: half red is red
    assert (zz["level"], zz["max_level"], zz["level_share"]) == ("red", "red", 0.5)
    empty = out[out["equipment"] == 0]
    assert empty["level"].isna().all() and (empty["level_share"] == 0).all()


# --------------------------------------------------------------------------- sums of parts

def _many_pieces(n: int, seed: int) -> pd.DataFrame:
    """``n`` graded pieces around 郑州 and 洛阳 (some unlocated, some without adcodes), D a
    product of LEC scale values, as grading gives it."""
    rng = np.random.default_rng(seed)
    lon = rng.uniform(112.3, 113.8, n)
    lon[rng.random(n) < 0.03] = np.nan
    level = rng.choice(np.array(["red", "orange", "yellow", "blue", None], dtype=object), n)
    use = pd.notna(level)
    lec = rng.choice([0.1, 0.2, 0.5, 1, 3, 6, 10], n) * rng.choice([0.5, 1, 2, 3, 6, 10], n) \
        * rng.choice([1, 3, 7, 15, 40, 100], n)
    county = rng.choice(np.array(["410102", "410103", "410305", "410311", "419001", "419999",
                                  None], dtype=object), n)
    hz = rng.integers(0, 4, n)
    return pd.DataFrame({
        "lon": lon, "lat": rng.uniform(34.2, 34.9, n),
        "unit_credit_code": pd.array(rng.choice(["U1", "U2", "U3", "U4", "U7"], n),
                                     dtype="string"),
        "province_adcode": pd.array(np.where(county == None, None, "410000"),  # noqa: E711
                                    dtype="string"),
        "city_adcode": pd.array([None if c is None else c[:4] + "00" for c in county],
                                dtype="string"),
        "county_adcode": pd.array(county, dtype="string"),
        "level": pd.array(level, dtype="string"), "in_use": use,
        "top_category": pd.array(rng.choice(list(TOP_CATEGORIES), n), dtype="string"),
        "D": np.where(use, lec, 0.0), "open_hazards": hz, "open_major_hazards": hz // 3,
        "overdue": rng.random(n) < 0.1, "late_hazards": rng.integers(0, 3, n),
        "insured": pd.array(rng.choice(np.array([True, False, None], dtype=object), n),
                            dtype="boolean")})


def _officer_cells(eq: pd.DataFrame) -> pd.DataFrame:
    """Officers holding some res-8 and res-7 cells where the pieces are, and one cell
    without any."""
    located = eq.dropna(subset=["lon"])
    cells = [h3.latlng_to_cell(lat, lon, 8) for lon, lat in
             zip(located["lon"].iloc[:40], located["lat"].iloc[:40], strict=True)]
    cells += [h3.latlng_to_cell(lat, lon, 7) for lon, lat in
              zip(located["lon"].iloc[40:50], located["lat"].iloc[40:50], strict=True)]
    cells.append(h3.latlng_to_cell(30.0, 120.0, 8))
    return pd.DataFrame({"officer_id": [f"WG{i % 7}" for i in range(len(cells))],
                         "h3": cells})


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sums_of_any_split_add_up_to_the_whole_to_the_last_bit(seed: int) -> None:
    """The pieces cut into parts at random, each part's rows shuffled: the parts' sums
    added are the whole's, bit for bit, and so is every aggregate layer made of them (what
    lets the Dask build sum partitions on its workers)."""
    eq = _many_pieces(3000, seed)
    oc = _officer_cells(eq)
    targets = grid_targets(oc)
    whole = Sums.of(eq, units(), 9, targets)
    rng = np.random.default_rng(seed)
    part = rng.integers(0, 5, len(eq))
    parts = [Sums.of(eq.iloc[rng.permutation(np.flatnonzero(part == p))], units(), 9, targets)
             for p in range(5)]
    added = Sums.combined(parts[::-1])
    assert np.array_equal(added.cells, whole.cells)
    assert np.array_equal(added.cell_totals, whole.cell_totals)
    assert added.unlocated == whole.unlocated == int(np.isnan(eq["lon"]).sum())
    for r in targets:
        assert np.array_equal(added.grid_totals[r], whole.grid_totals[r])
    pd.testing.assert_frame_equal(
        risk_cells_from(added.cells, added.cell_totals, added.unlocated),
        risk_cells(eq), check_exact=True)
    pd.testing.assert_frame_equal(regions_from(added.places, units(), boundaries()),
                                  regions(eq, units(), boundaries()), check_exact=True)
    pd.testing.assert_frame_equal(industries_from(added.places, boundaries()),
                                  industries(eq, units(), boundaries()), check_exact=True)
    officers = pd.DataFrame({"officer_id": [f"WG{i}" for i in range(7)],
                             "name": [f"网格员{i}" for i in range(7)]})
    pd.testing.assert_frame_equal(
        grid_cells_from(targets, added.grid_totals, officers, oc, boundaries()),
        grid_cells(eq, officers, oc, boundaries()), check_exact=True)
    pd.testing.assert_frame_equal(
        insurance_from(elevator_counts(added.places.frame()), boundaries(), date(2021, 6, 1)),
        insurance(eq, boundaries(), date(2021, 6, 1)), check_exact=True)
    # the risk score is the twentieths summed exactly: the mean of many 0.05s is 0.05
    assert regions(eq.assign(D=np.where(eq["in_use"], 0.05, 0.0)), units(), boundaries()
                   ).query("adcode == '410000'")["risk_index"].iloc[0] == 0.05


def test_a_score_off_the_lec_scale_is_refused_naming_its_row() -> None:
    """D is a product of LEC scale values; one that is not (a hand-edited layer) cannot be
    summed exactly and is refused, naming its row, rather than summed approximately."""
    eq = equipment()
    eq.loc[3, "D"] = 100.01
    with pytest.raises(ValueError, match=r"100\.01.*row 3"):
        risk_cells(eq)
