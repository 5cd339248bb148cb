"""layers.points: open hazards, overdue inspections, blacklist (and candidates), venues."""

from __future__ import annotations

import json
from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pydantic import ValidationError

from layers.points import (
    BlacklistRules,
    added_venue_counts,
    blacklist,
    blacklist_candidates,
    late_major_hazards,
    open_hazards,
    overdue_inspections,
    venue_counts,
    venues_risk,
    venues_risk_from,
)

AS_OF = date(2024, 6, 30)
NA = None


def equipment() -> gpd.GeoDataFrame:
    """Five graded pieces; E4 is unlocated, E5 is out of use."""
    rows = pd.DataFrame({
        "registration_code": ["E1", "E2", "E3", "E4", "E5"],
        "category_code": ["3110", "3110", "1100", "4100", "3110"],
        "top_category": ["3000", "3000", "1000", "4000", "3000"],
        "category": ["曳引驱动乘客电梯", "曳引驱动乘客电梯", "承压蒸汽锅炉", "桥式起重机",
                     "曳引驱动乘客电梯"],
        "unit_credit_code": ["U1", "U1", "U2", "U3", "U2"],
        "unit_name": ["一号单位", "一号单位", NA, "三号单位", NA],
        "status": ["在用", "在用", "在用", "在用", "停用"],
        "in_use": [True, True, True, True, False],
        "next_inspection_due": pd.to_datetime(
            ["2024-06-29", "2024-06-30", "2024-01-01", NA, "2020-01-01"]).astype(
            "datetime64[s]"),
        "overdue": [True, False, True, False, False],
        "insured": [True, False, NA, NA, True],
        "level": ["red", "blue", "orange", "yellow", NA],
        "level_rank": [4, 1, 3, 2, 0],
        "open_hazards": [1, 0, 2, 1, 0],
        "open_major_hazards": [1, 0, 0, 0, 0],
        "province_adcode": ["410000"] * 4 + [NA],
        "city_adcode": ["410100"] * 4 + [NA],
        "county_adcode": ["410101", "410101", "410102", NA, NA],
        "h3": ["8840000000fffff"] * 3 + [NA, NA],
        "park_id": [NA, NA, "P1", NA, NA],
        "venue_id": ["V1", "V1", "V1", NA, "V1"],
        "lon": [113.0, 113.1, 113.2, np.nan, 113.3],
        "lat": [34.0, 34.1, 34.2, np.nan, 34.3],
    }).astype({c: "string" for c in ("registration_code", "category_code", "top_category",
                                      "category", "unit_credit_code", "unit_name", "status",
                                      "level", "province_adcode", "city_adcode",
                                      "county_adcode", "h3", "park_id", "venue_id")})
    rows = rows.astype({"insured": "boolean", "in_use": "boolean", "overdue": "boolean"})
    return gpd.GeoDataFrame(rows, geometry=gpd.points_from_xy(rows["lon"], rows["lat"]),
                            crs=4326)


def units() -> pd.DataFrame:
    return pd.DataFrame({
        "credit_code": ["U1", "U2", "U3", "U4", "U5"],
        "name": ["一号单位", "二号单位", "三号单位", "四号单位", "五号单位"],
        "industry": ["K", "D", "C", "S", NA],
        "level": ["red", "orange", "yellow", "orange", "blue"],
        "accidents_3y": [0, 1, 0, 2, NA],
        "blacklisted": [False, False, NA, True, False],
        "open_major_hazards": [1, 0, 0, 0, 0],
        "equipment_count": [2, 2, 1, 0, 0],
        "province_adcode": ["410000"] * 5, "city_adcode": ["410100"] * 5,
        "county_adcode": ["410101", "410102", NA, "410101", "410101"],
        "h3": ["8840000000fffff"] * 5,
        "lon": [113.0, 113.2, np.nan, 113.4, 113.5], "lat": [34.0, 34.2, np.nan, 34.4, 34.5],
    }).astype({"accidents_3y": "Int64", "blacklisted": "boolean",
               "open_major_hazards": "Int64", "equipment_count": "Int64"})


def hazards() -> pd.DataFrame:
    return pd.DataFrame({
        "hazard_id": ["H1", "H2", "H3", "H4", "H5", "H6"],
        "registration_code": ["E1", "E3", "E3", "EX", "E4", "E2"],
        "found_on": pd.to_datetime(["2024-01-01", "2024-06-01", "2023-01-01", "2024-06-29",
                                    "2024-05-01", NA]),
        "level": ["重大", "一般", "重大", "一般", "重大", "重大"],
        "description": ["制动器失效", "安全阀校验过期", "已整改", "未知设备", "钢丝绳断股",
                        "无期限"],
        "status": ["整改中", "已登记", "已销号", "已登记", "整改中", "整改中"],
        "deadline": pd.to_datetime(["2024-05-30", "2024-07-01", "2023-02-01", NA,
                                    "2024-05-31", NA]),
        "closed_on": pd.to_datetime([NA, NA, "2023-01-20", NA, NA, NA]),
    }).astype({c: "string" for c in ("hazard_id", "registration_code", "level",
                                      "description", "status")})


# --------------------------------------------------------------------------- open hazards

def test_open_hazards_rows_and_flags() -> None:
    out = open_hazards(hazards(), equipment(), units(), AS_OF).set_index("hazard_id")
    assert set(out.index) == {"H1", "H2", "H4", "H5", "H6"}  # H3 is closed (已销号)
    h1 = out.loc["H1"]
    assert bool(h1["listed"]) and bool(h1["past_deadline"])
    assert h1["days_open"] == 181 and h1["days_past_deadline"] == 31
    assert (h1["unit_credit_code"], h1["top_category"], h1["equipment_level"]) == (
        "U1", "3000", "red")
    assert (h1["county_adcode"], h1["venue_id"]) == ("410101", "V1")
    assert h1.geometry.equals(shapely.Point(113.0, 34.0))
    h2 = out.loc["H2"]
    assert not bool(h2["listed"]) and not bool(h2["past_deadline"])
    assert h2["days_past_deadline"] == 0
    assert h2["unit_name"] == "二号单位"  # filled from the units table
    assert h2["park_id"] == "P1"
    assert pd.isna(out.loc["H6", "past_deadline"])  # no deadline: unknown, not late


def test_open_hazards_unknown_or_unlocated_equipment_stay() -> None:
    out = open_hazards(hazards(), equipment(), units(), AS_OF).set_index("hazard_id")
    assert out.loc["H4"].geometry is None  # equipment not in the registry
    assert pd.isna(out.loc["H4", "unit_credit_code"]) and pd.isna(out.loc["H4", "top_category"])
    assert out.loc["H5"].geometry is None  # equipment without coordinates
    assert out.loc["H5", "unit_credit_code"] == "U3"


def test_open_hazards_frame() -> None:
    out = open_hazards(hazards(), equipment(), units(), AS_OF)
    assert out.crs.to_epsg() == 4326
    assert list(out["hazard_id"][:3]) == ["H1", "H5", "H6"]  # listed first, latest first
    assert str(out["listed"].dtype) == "boolean"
    assert str(out["days_open"].dtype) == "Int64"
    assert str(out["found_on"].dtype) == "datetime64[s]"
    assert str(out["hazard_id"].dtype) == "string"


def test_open_hazards_empty_and_plain_lon_lat() -> None:
    none = open_hazards(hazards().iloc[0:0], equipment(), units(), AS_OF)
    assert len(none) == 0 and "geometry" in none
    plain = pd.DataFrame(equipment().drop(columns="geometry"))
    out = open_hazards(hazards(), plain, units().iloc[0:0], AS_OF).set_index("hazard_id")
    assert out.loc["H2"].geometry.equals(shapely.Point(113.2, 34.2))
    assert pd.isna(out.loc["H2", "unit_name"])  # no units table to fill it from
    empty_eq = open_hazards(hazards(), equipment().iloc[0:0], units(), AS_OF)
    assert len(empty_eq) == 5 and empty_eq.geometry.isna().all()


# --------------------------------------------------------------------------- overdue

def test_overdue_inspections() -> None:
    out = overdue_inspections(equipment(), AS_OF)
    # E1 a day late, E3 since January; E2 is due today, E4 has no date, E5 is out of use
    assert list(out["registration_code"]) == ["E3", "E1"]
    assert list(out["days_overdue"]) == [181, 1]
    e3 = out.iloc[0]
    assert (e3["level"], e3["park_id"], e3["top_category"]) == ("orange", "P1", "1000")
    assert e3.geometry.equals(shapely.Point(113.2, 34.2))
    assert out.crs.to_epsg() == 4326
    assert str(out["days_overdue"].dtype) == "Int64"


def test_overdue_without_graded_columns_and_empty() -> None:
    raw = pd.DataFrame(equipment().drop(columns=["in_use", "top_category", "geometry"]))
    out = overdue_inspections(raw, AS_OF)
    assert list(out["registration_code"]) == ["E3", "E1"]
    assert list(out["top_category"]) == ["1000", "3000"]
    assert len(overdue_inspections(equipment(), date(2000, 1, 1))) == 0


# --------------------------------------------------------------------------- blacklist

def test_blacklist_only_listed_units() -> None:
    out = blacklist(units())
    assert list(out["credit_code"]) == ["U4"]  # NA blacklisted is not listed
    row = out.iloc[0]
    assert (row["name"], row["accidents_3y"], row["equipment_count"]) == ("四号单位", 2, 0)
    assert row.geometry.equals(shapely.Point(113.4, 34.4))
    assert out.crs.to_epsg() == 4326


def test_blacklist_candidates_by_accident_and_late_major_hazard() -> None:
    oh = open_hazards(hazards(), equipment(), units(), AS_OF)
    out = blacklist_candidates(units(), oh, AS_OF).set_index("credit_code")
    # U2: an accident; U1: 重大 H1 31 days past its deadline; U3: H5 30 days, not more
    # U4 is already blacklisted; U5 has no accident record
    assert set(out.index) == {"U1", "U2"}
    assert json.loads(out.loc["U2", "criteria"]) == ["accident"]
    assert "近三年发生特种设备事故1起" in out.loc["U2", "reason"]
    assert json.loads(out.loc["U1", "criteria"]) == ["major_hazard_late"]
    assert out.loc["U1", "late_major_hazards"] == 1
    assert out.loc["U1", "max_days_past_deadline"] == 31
    assert "H1" in out.loc["U1", "reason"] and "30天" in out.loc["U1", "reason"]


def test_blacklist_candidates_threshold_and_both_criteria() -> None:
    oh = open_hazards(hazards(), equipment(), units(), AS_OF)
    out = blacklist_candidates(units(), oh, AS_OF, BlacklistRules(major_overdue_days=29))
    assert set(out["credit_code"]) == {"U1", "U2", "U3"}
    u3 = out.set_index("credit_code").loc["U3"]
    assert u3.geometry is None  # unit without coordinates stays in the list
    both = units().assign(accidents_3y=pd.array([1, 0, 0, 0, 0], dtype="Int64"))
    row = blacklist_candidates(both, oh, AS_OF).set_index("credit_code").loc["U1"]
    assert json.loads(row["criteria"]) == ["accident", "major_hazard_late"]
    assert "；" in row["reason"]
    strict = blacklist_candidates(units(), oh, AS_OF, BlacklistRules(min_accidents=2))
    assert set(strict["credit_code"]) == {"U1"}


def test_blacklist_candidates_from_raw_hazards_with_equipment() -> None:
    out = blacklist_candidates(units(), hazards(), AS_OF, equipment=equipment())
    assert set(out["credit_code"]) == {"U1", "U2"}
    with pytest.raises(ValueError, match="unit_credit_code"):
        blacklist_candidates(units(), hazards(), AS_OF)


def test_blacklist_candidates_empty_inputs() -> None:
    oh = open_hazards(hazards(), equipment(), units(), AS_OF)
    assert len(blacklist_candidates(units().iloc[0:0], oh, AS_OF)) == 0
    only_accidents = blacklist_candidates(units(), oh.iloc[0:0], AS_OF)
    assert set(only_accidents["credit_code"]) == {"U2"}


def test_blacklist_rules_validation() -> None:
    assert BlacklistRules().major_overdue_days == 30
    with pytest.raises(ValidationError):
        BlacklistRules(major_overdue_days=-1)
    with pytest.raises(ValidationError):
        BlacklistRules(min_accidents=0)
    with pytest.raises(ValidationError):
        BlacklistRules(days=3)


# --------------------------------------------------------------------------- venues

def venues() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({
        "venue_id": pd.array(["V1", "V2"], dtype="string"),
        "name": pd.array(["中心医院", "人民公园"], dtype="string"),
        "kind": pd.array(["医院", "公园"], dtype="string"),
        "daily_visitors": pd.array([8000, NA], dtype="Int64"),
    }, geometry=[shapely.box(112.9, 33.9, 113.3, 34.3), shapely.box(114, 35, 114.1, 35.1)],
        crs=4326)


def test_venues_risk() -> None:
    out = venues_risk(venues(), equipment()).set_index("venue_id")
    v1 = out.loc["V1"]
    # E1 red elevator insured, E2 blue elevator uninsured, E3 orange boiler; E5 is out of use
    assert v1["equipment"] == 3
    assert (v1["n_red"], v1["n_orange"], v1["n_yellow"], v1["n_blue"]) == (1, 1, 0, 1)
    assert (v1["max_level"], v1["max_level_rank"]) == ("red", 4)
    assert (v1["open_hazards"], v1["open_major_hazards"], v1["overdue"]) == (3, 1, 2)
    assert (v1["elevators"], v1["elevators_insured"]) == (2, 1)
    cats = json.loads(v1["categories"])
    assert cats == [{"code": "3000", "name": "电梯", "count": 2},
                    {"code": "1000", "name": "锅炉", "count": 1}]
    v2 = out.loc["V2"]
    assert v2["equipment"] == 0 and pd.isna(v2["max_level"])
    assert v2["categories"] == "[]"
    assert v2.geometry.geom_type == "Polygon"


def test_venues_risk_frame_and_no_equipment() -> None:
    out = venues_risk(venues(), equipment().iloc[0:0])
    assert out.crs.to_epsg() == 4326
    assert (out["equipment"] == 0).all() and (out["categories"] == "[]").all()
    assert str(out["n_red"].dtype) == "Int64" and str(out["max_level"].dtype) == "string"
    projected = venues().to_crs(3857)
    back = venues_risk(projected, equipment())
    assert back.crs.to_epsg() == 4326
    assert back.geometry.iloc[0].bounds == pytest.approx((112.9, 33.9, 113.3, 34.3))


def test_venue_counts_and_late_major_hazards_of_parts_add_up_to_the_whole() -> None:
    """The pieces cut into parts (each unit's pieces and their hazards together, as the
    Dask build's partitions keep them): the parts' venue counts added, and their units'
    late 重大 hazards joined, give the whole's venues layer and blacklist candidates."""
    eq, hz = equipment(), hazards()
    owner = eq["unit_credit_code"].astype("string")
    parts = [owner.isin(["U1", "U3"]).to_numpy(dtype=bool),
             ~owner.isin(["U1", "U3"]).to_numpy(dtype=bool)]
    added = added_venue_counts([venue_counts(eq[p].iloc[::-1]) for p in parts])
    pd.testing.assert_frame_equal(venues_risk_from(venues(), added),
                                  venues_risk(venues(), eq), check_exact=True)
    codes = eq["registration_code"].astype("string")
    late = pd.concat([late_major_hazards(
        hz[hz["registration_code"].astype("string").isin(codes[p])], eq[p], AS_OF,
        BlacklistRules(major_overdue_days=29)) for p in parts]).sort_index(kind="stable")
    rules = BlacklistRules(major_overdue_days=29)
    pd.testing.assert_frame_equal(
        blacklist_candidates(units(), hz, AS_OF, rules, late=late),
        blacklist_candidates(units(), hz, AS_OF, rules, equipment=eq), check_exact=True)
    assert len(late) == 2
