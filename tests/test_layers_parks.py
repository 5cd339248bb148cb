"""Park profiles (一园一策) and unit files (一企一策): small hand-built frames, answers by hand."""

from __future__ import annotations

import json
from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pydantic import ValidationError

from layers.park_measures import (
    DEFAULT_MEASURES,
    METRICS,
    MeasureRule,
    parse_condition,
    template_fields,
)
from layers.parks import ParkRules, ParkSums, park_profiles, park_profiles_from, unit_files

AS_OF = date(2026, 11, 30)
RULES = ParkRules()


# --------------------------------------------------------------------------- builders

def equipment(*rows: dict) -> pd.DataFrame:
    """Graded equipment (the columns of layers.frames GRADED_EQUIPMENT these layers read)."""
    base = {"unit_credit_code": "U1", "park_id": "P1", "top_category": "4000", "in_use": True,
            "overdue": False, "open_hazards": 0, "open_major_hazards": 0, "late_hazards": 0,
            "insured": False, "D": 10.0, "level_rank": 1}
    data = [{**base, "registration_code": f"E{i}", **r} for i, r in enumerate(rows)]
    frame = pd.DataFrame(data, columns=[*base, "registration_code"])
    return frame.astype({"unit_credit_code": "string", "park_id": "string",
                         "top_category": "string", "registration_code": "string",
                         "in_use": "boolean", "overdue": "boolean", "insured": "boolean"})


def units(*rows: dict) -> pd.DataFrame:
    """Graded units (GRADED_UNITS columns these layers read); lon/lat for the point."""
    base = {"credit_code": "U1", "name": "甲公司", "industry": "C", "size": "大型",
            "park_id": "P1", "level": "blue", "level_rank": 1, "level_reason": "按所属最高风险设备",
            "D_max": 10.0, "open_hazards": 0, "five_have_score": 5, "blacklisted": False,
            "accidents_3y": 0, "lon": 113.05, "lat": 34.05}
    frame = pd.DataFrame([{**base, **r} for r in rows], columns=list(base))
    return frame.astype({"credit_code": "string", "name": "string", "size": "string",
                         "park_id": "string", "level": "string", "five_have_score": "Int64",
                         "blacklisted": "boolean", "accidents_3y": "Int64"})


def parks(*rows: dict) -> gpd.GeoDataFrame:
    base = {"park_id": "P1", "name": "甲园区", "kind": "化工园区", "province_adcode": "410000",
            "city_adcode": "410100", "county_adcode": "410105", "area_km2": 2.0}
    data = [{**base, **r} for r in rows]
    geometry = [shapely.box(113 + i, 34, 113.1 + i, 34.1) for i in range(len(data))]
    frame = pd.DataFrame(data, columns=list(base)).astype(
        {c: "string" for c in base if c != "area_km2"})
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=4326)


def hazards(*rows: dict) -> pd.DataFrame:
    base = {"hazard_id": None, "registration_code": "E0", "found_on": None, "level": "一般",
            "status": "已登记", "deadline": None, "closed_on": None}
    data = [{**base, "hazard_id": f"H{i}", **r} for i, r in enumerate(rows)]
    frame = pd.DataFrame(data, columns=list(base))
    for col in ("found_on", "deadline", "closed_on"):
        frame[col] = pd.to_datetime(frame[col]).astype("datetime64[s]")
    return frame


NO_HAZARDS = hazards()


def one(frame: pd.DataFrame, **where: str) -> pd.Series:
    (col, value), = where.items()
    rows = frame[frame[col] == value]
    assert len(rows) == 1
    return rows.iloc[0]


def ids(row: pd.Series) -> list[str]:
    return json.loads(row["measure_ids"])


# --------------------------------------------------------------------------- rules

def test_rules_defaults_and_round_trip():
    assert RULES.top_units == 5 and RULES.months == 12
    assert RULES.small_sizes == ("小型", "微型")
    assert RULES.measures == DEFAULT_MEASURES
    assert ParkRules.model_validate(RULES.model_dump()) == RULES
    for name, field in ParkRules.model_fields.items():
        assert field.description, name
    for name, field in MeasureRule.model_fields.items():
        assert field.description, name


@pytest.mark.parametrize("bad", [
    {"top_units": 0}, {"months": 0}, {"months": -3}, {"small_sizes": ()},
    {"small_sizes": (" ",)}, {"unknown": 1}, {"dominant_exclude": ("3100",)},
    {"measures": (MeasureRule(id="a", when="units > 0", text="x"),
                  MeasureRule(id="a", when="units > 1", text="y"))},
])
def test_rules_refuse_nonsense(bad):
    with pytest.raises(ValidationError):
        ParkRules(**bad)


def test_rules_frozen():
    with pytest.raises(ValidationError):
        RULES.top_units = 3  # type: ignore[misc]


def test_condition_language():
    assert parse_condition("overdue_rate > 0.05") == [("overdue_rate", ">", 0.05)]
    assert parse_condition("units>=2 and insurance_coverage<.7") == [
        ("units", ">=", 2.0), ("insurance_coverage", "<", 0.7)]
    assert parse_condition("n_red == 0") == [("n_red", "==", 0.0)]


@pytest.mark.parametrize("when", [
    "nonsense > 1", "units != 1", "units => 1", "units > one", "units > 1 or n_red > 0",
    "__import__('os').system('x') > 0", "units > 1e400", "units", "> 1", "units > nan",
    "units > 1 and", "len(units) > 1",
])
def test_condition_language_refuses(when):
    with pytest.raises(ValueError):
        parse_condition(when)
    with pytest.raises(ValidationError):
        MeasureRule(id="x", when=when, text="t")


@pytest.mark.parametrize("text", [
    "{overdue_rate.__class__}", "{name[0]}", "{name!r}", "{secret}", "{overdue:>10}",
    "{overdue_rate:{x}}", "{name:.0%}", "{units", "units}", "{}", "{0}",
])
def test_template_refuses(text):
    with pytest.raises(ValueError):
        template_fields(text)
    with pytest.raises(ValidationError):
        MeasureRule(id="x", when="units > 0", text=text)


def test_template_accepts_whitelisted_fields():
    segs = template_fields("{name}：逾期{overdue_rate:.0%}，共{overdue}台，{{注}}")
    assert [f for _, f, _ in segs if f] == ["name", "overdue_rate", "overdue"]
    assert [spec for _, f, spec in segs if f] == ["", ".0%", ""]
    assert "".join(lit for lit, _, _ in segs).endswith("{注}")


def test_default_rules_cite_a_basis():
    assert all(m.basis for m in DEFAULT_MEASURES)
    assert {m.id for m in DEFAULT_MEASURES} >= {
        "focus_category", "overdue", "major_hazards", "insurance", "five_have", "red_units",
        "small_micro", "small_micro_unit"}


# --------------------------------------------------------------------------- park profiles

def scenario() -> tuple[pd.DataFrame, pd.DataFrame, gpd.GeoDataFrame, pd.DataFrame]:
    """P1 holds U1 (point and equipment) and U2 (equipment only); P2 is empty; U3 is outside."""
    eq = equipment(
        {"registration_code": "E1", "unit_credit_code": "U1", "top_category": "3000",
         "overdue": True, "open_hazards": 1, "open_major_hazards": 1, "insured": True,
         "D": 400.0, "level_rank": 4},
        {"registration_code": "E2", "unit_credit_code": "U1", "top_category": "3000",
         "insured": None, "D": 30.0, "level_rank": 1},
        {"registration_code": "E3", "unit_credit_code": "U2", "top_category": "2000",
         "open_hazards": 2, "late_hazards": 1, "D": 100.0, "level_rank": 2},
        {"registration_code": "E4", "unit_credit_code": "U3", "park_id": None,
         "in_use": False, "D": 0.0, "level_rank": 0},
    )
    un = units(
        {"credit_code": "U1", "name": "一厂", "size": "小型", "level": "red", "level_rank": 4,
         "D_max": 400.0, "open_hazards": 1, "five_have_score": 5, "blacklisted": True,
         "accidents_3y": 1},
        {"credit_code": "U2", "name": "二厂", "park_id": None, "level": "yellow",
         "level_rank": 2, "D_max": 100.0, "open_hazards": 2, "five_have_score": 3,
         "lon": None, "lat": None},
        {"credit_code": "U3", "name": "三厂", "size": "微型", "park_id": None, "level": None,
         "level_rank": 0, "D_max": 0.0, "five_have_score": None, "blacklisted": None,
         "accidents_3y": None, "lon": 120.0, "lat": 30.0},
    )
    pk = parks({"park_id": "P1"}, {"park_id": "P2", "name": "乙园区", "county_adcode": None})
    hz = hazards(
        {"registration_code": "E1", "found_on": "2026-11-02", "level": "重大"},
        {"registration_code": "E3", "found_on": "2026-10-01", "status": "整改中"},
        {"registration_code": "E3", "found_on": "2025-01-01", "status": "已销号",
         "closed_on": "2026-11-20"},
        {"registration_code": "E3", "found_on": "2025-11-30"},   # before the 12-month window
        {"registration_code": "E4", "found_on": "2026-11-01"},   # equipment outside parks
        {"registration_code": "NOPE", "found_on": "2026-11-01"},  # unknown equipment
    )
    return eq, un, pk, hz


def test_park_counts_by_hand():
    eq, un, pk, hz = scenario()
    out = park_profiles(eq, un, pk, hz, AS_OF, RULES)
    p1 = one(out, park_id="P1")
    assert (p1["units"], p1["equipment"], p1["in_use"]) == (2, 3, 3)
    assert [p1[f"n_{lv}"] for lv in ("red", "orange", "yellow", "blue")] == [1, 0, 1, 1]
    assert json.loads(p1["categories"]) == {"2000": 1, "3000": 2}
    assert json.loads(p1["units_by_level"]) == {"red": 1, "orange": 0, "yellow": 1, "blue": 0}
    assert p1["red_units"] == 1
    assert (p1["open_hazards"], p1["open_major_hazards"], p1["late_hazards"]) == (3, 1, 1)
    assert p1["overdue"] == 1 and p1["overdue_rate"] == pytest.approx(1 / 3)
    assert (p1["elevators"], p1["elevators_insured"]) == (2, 1)
    assert p1["insurance_coverage"] == pytest.approx(0.5)
    assert p1["five_have_compliant"] == 1 and p1["five_have_rate"] == pytest.approx(0.5)
    assert p1["five_have_score"] == pytest.approx(4.0)
    assert p1["small_micro_units"] == 1 and p1["small_micro_share"] == pytest.approx(0.5)
    assert p1["blacklisted_units"] == 1 and p1["accidents_3y"] == 1
    assert p1["risk_score"] == pytest.approx(530.0) and p1["D_max"] == pytest.approx(400.0)
    assert (p1["dominant_category"], p1["dominant_category_name"]) == ("3000", "电梯")
    assert (p1["name"], p1["kind"], p1["county_adcode"], p1["area_km2"]) == (
        "甲园区", "化工园区", "410105", 2.0)


def test_empty_park_appears_with_zeros():
    eq, un, pk, hz = scenario()
    p2 = one(park_profiles(eq, un, pk, hz, AS_OF, RULES), park_id="P2")
    for col in ("units", "equipment", "in_use", "n_red", "open_hazards", "overdue", "elevators",
                "five_have_compliant", "red_units"):
        assert p2[col] == 0, col
    for col in ("overdue_rate", "insurance_coverage", "five_have_rate", "small_micro_share",
                "five_have_score"):
        assert np.isnan(p2[col]), col
    assert p2["categories"] == "{}" and p2["top_units"] == "[]"
    assert json.loads(p2["units_by_level"]) == {"red": 0, "orange": 0, "yellow": 0, "blue": 0}
    assert pd.isna(p2["dominant_category"]) and pd.isna(p2["county_adcode"])
    monthly = json.loads(p2["monthly"])
    assert len(monthly) == 12 and all(m["found"] == m["closed"] == 0 for m in monthly)
    assert p2["measures"] == "[]" and p2["measure_ids"] == "[]"
    assert p2["risk_score"] == 0 and p2["risk_index"] == 0


def test_output_frame_types_and_json():
    eq, un, pk, hz = scenario()
    out = park_profiles(eq, un, pk, hz, AS_OF, RULES)
    assert isinstance(out, gpd.GeoDataFrame) and out.crs.to_epsg() == 4326
    assert out.geometry.geom_type.tolist() == ["Polygon", "Polygon"]
    allowed = {"string", "Int64", "float64", "boolean", "geometry"}
    assert {str(t) for t in out.dtypes} <= allowed
    for col in ("categories", "units_by_level", "top_units", "monthly", "measures",
                "measure_ids"):
        for value in out[col]:
            json.loads(value)
    assert out.geometry.iloc[0].equals(pk.geometry.iloc[0])
    assert set(METRICS) <= set(out.columns)  # every condition metric is shown on the profile


def test_top_units_order_and_limit():
    eq = equipment()  # no equipment at all
    un = units(
        {"credit_code": "UA", "level": "orange", "level_rank": 3, "D_max": 200.0},
        {"credit_code": "UB", "level": "red", "level_rank": 4, "D_max": 100.0},
        {"credit_code": "UD", "level": "orange", "level_rank": 3, "D_max": 250.0},
        {"credit_code": "UC", "level": "orange", "level_rank": 3, "D_max": 250.0},
        {"credit_code": "UE", "level": None, "level_rank": 0, "D_max": 0.0},
    )
    out = park_profiles(eq, un, parks({}), NO_HAZARDS, AS_OF, ParkRules(top_units=4))
    top = json.loads(out["top_units"].iloc[0])
    assert [t["credit_code"] for t in top] == ["UB", "UC", "UD", "UA"]
    assert top[0] == {"credit_code": "UB", "name": "甲公司", "level": "red", "D_max": 100.0,
                      "open_hazards": 0}
    assert out["units"].iloc[0] == 5  # units without equipment still count


def test_unit_in_park_by_equipment_only():
    eq = equipment({"unit_credit_code": "U9", "park_id": "P1"})
    un = units({"credit_code": "U9", "park_id": None})
    out = park_profiles(eq, un, parks({}), NO_HAZARDS, AS_OF, RULES)
    assert out["units"].iloc[0] == 1


def test_rank_and_index():
    eq = equipment(
        {"park_id": "PA", "D": 100.0}, {"park_id": "PB", "D": 100.0, "open_major_hazards": 1},
        {"park_id": "PC", "D": 300.0}, {"park_id": "PD", "D": 100.0},
    )
    pk = parks({"park_id": "PD"}, {"park_id": "PA"}, {"park_id": "PB"}, {"park_id": "PC"},
               {"park_id": "PE"})
    out = park_profiles(eq, units(), pk, NO_HAZARDS, AS_OF, RULES)
    assert out["park_id"].tolist() == ["PC", "PB", "PA", "PD", "PE"]
    assert out["rank"].tolist() == [1, 2, 3, 4, 5]
    assert out["risk_index"].tolist() == pytest.approx([100, 100 / 3, 100 / 3, 100 / 3, 0])
    # geometry follows its park through the reordering
    assert out.geometry.iloc[0].equals(pk.geometry.iloc[3])


def test_monthly_window():
    eq, un, pk, hz = scenario()
    p1 = one(park_profiles(eq, un, pk, hz, AS_OF, RULES), park_id="P1")
    monthly = json.loads(p1["monthly"])
    assert [m["month"] for m in monthly][:2] == ["2025-12", "2026-01"]
    assert monthly[-1] == {"month": "2026-11", "found": 1, "closed": 1}
    assert monthly[-2] == {"month": "2026-10", "found": 1, "closed": 0}
    assert sum(m["found"] for m in monthly) == 2
    short = json.loads(one(park_profiles(eq, un, pk, hz, AS_OF, ParkRules(months=2)),
                           park_id="P1")["monthly"])
    assert short == [{"month": "2026-10", "found": 1, "closed": 0},
                     {"month": "2026-11", "found": 1, "closed": 1}]


def test_monthly_crosses_year_start():
    hz = hazards({"registration_code": "E0", "found_on": "2025-12-31"})
    out = park_profiles(equipment({}), units(), parks({}), hz, date(2026, 1, 5),
                        ParkRules(months=2))
    assert json.loads(out["monthly"].iloc[0]) == [
        {"month": "2025-12", "found": 1, "closed": 0},
        {"month": "2026-01", "found": 0, "closed": 0}]


def test_dominant_category_rules():
    eq = equipment(
        *[{"top_category": "F000"}] * 5,                      # safety accessories: excluded
        *[{"top_category": "2000", "D": 10.0}] * 2,
        *[{"top_category": "4000", "D": 20.0}] * 2,           # tie with 2000, more D
        *[{"top_category": "1000", "in_use": False}] * 3,     # not in use
    )
    p = park_profiles(eq, units(), parks({}), NO_HAZARDS, AS_OF, RULES).iloc[0]
    assert (p["dominant_category"], p["dominant_category_name"]) == ("4000", "起重机械")
    assert json.loads(p["categories"]) == {"1000": 3, "2000": 2, "4000": 2, "F000": 5}
    tie = equipment({"top_category": "4000"}, {"top_category": "2000"})
    p = park_profiles(tie, units(), parks({}), NO_HAZARDS, AS_OF, RULES).iloc[0]
    assert p["dominant_category"] == "2000"  # equal count and D: the lower code


def test_category_from_category_code_when_top_missing():
    eq = equipment({"top_category": None}).drop(columns="top_category").assign(
        category_code=["3110"])
    p = park_profiles(eq, units(), parks({}), NO_HAZARDS, AS_OF, RULES).iloc[0]
    assert json.loads(p["categories"]) == {"3000": 1} and p["elevators"] == 1


def test_park_crs_converted_and_duplicates_dropped():
    pk = parks({"park_id": "P1"}, {"park_id": "P1", "name": "重复"}, {"park_id": None})
    out = park_profiles(equipment({}), units(), pk.to_crs(3857), NO_HAZARDS, AS_OF, RULES)
    assert out["park_id"].tolist() == ["P1"] and out["name"].iloc[0] == "甲园区"
    assert out.crs.to_epsg() == 4326
    assert out.geometry.iloc[0].bounds == pytest.approx(pk.geometry.iloc[0].bounds)


def test_empty_inputs():
    empty_eq, empty_units = equipment().iloc[0:0], units().iloc[0:0]
    out = park_profiles(empty_eq, empty_units, parks({}), NO_HAZARDS, AS_OF, RULES)
    assert out["units"].tolist() == [0] and out["measures"].tolist() == ["[]"]
    none = park_profiles(empty_eq, empty_units, parks().iloc[0:0], NO_HAZARDS, AS_OF, RULES)
    assert len(none) == 0 and "measures" in none.columns
    bare = park_profiles(pd.DataFrame(), pd.DataFrame(), parks({}), pd.DataFrame(), AS_OF,
                         RULES)
    assert bare["equipment"].tolist() == [0]


def test_deterministic_under_row_order():
    eq, un, pk, hz = scenario()
    a = park_profiles(eq, un, pk, hz, AS_OF, RULES)
    b = park_profiles(eq.iloc[::-1], un.iloc[::-1], pk.iloc[::-1], hz.iloc[::-1], AS_OF, RULES)
    pd.testing.assert_frame_equal(a, b)


# --------------------------------------------------------------------------- measures fire

def clean() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A park where only focus_category fires: 20 in-use forklifts, one large, sound unit."""
    return equipment(*[{}] * 20), units({})


def park_ids(eq: pd.DataFrame, un: pd.DataFrame, rules: ParkRules = RULES) -> list[str]:
    return ids(park_profiles(eq, un, parks({}), NO_HAZARDS, AS_OF, rules).iloc[0])


def test_clean_park_only_focus():
    eq, un = clean()
    assert park_ids(eq, un) == ["focus_category"]
    out = park_profiles(eq, un, parks({}), NO_HAZARDS, AS_OF, RULES).iloc[0]
    assert json.loads(out["measures"]) == [
        "以起重机械为重点，开展专项风险辨识和隐患排查，编制风险管控清单和隐患排查治理清单"]


def _set(frame: pd.DataFrame, rows: int, **values) -> pd.DataFrame:
    frame = frame.copy()
    for col, v in values.items():
        frame.loc[frame.index[:rows], col] = v
    return frame


@pytest.mark.parametrize(("change", "expected"), [
    # overdue_rate > 0.05: 1/20 = 0.05 does not fire, 2/20 does
    (lambda e, u: (_set(e, 1, overdue=True), u), set()),
    (lambda e, u: (_set(e, 2, overdue=True), u), {"overdue"}),
    # an open major hazard
    (lambda e, u: (_set(e, 1, open_major_hazards=1), u), {"major_hazards"}),
    (lambda e, u: (_set(e, 1, late_hazards=2), u), {"late_hazards"}),
    # elevator insurance below 70 %: 7 of 10 insured does not fire, 6 of 10 does
    (lambda e, u: (_set(_set(e, 10, top_category="3000"), 7, insured=True), u), set()),
    (lambda e, u: (_set(_set(e, 10, top_category="3000"), 6, insured=True), u),
     {"insurance"}),
    # five-have below 100 %
    (lambda e, u: (e, _set(u, 1, five_have_score=4)), {"five_have"}),
    # a red unit
    (lambda e, u: (e, _set(u, 1, level="red", level_rank=4)), {"red_units"}),
    (lambda e, u: (e, _set(u, 1, blacklisted=True)), {"blacklist"}),
    (lambda e, u: (e, _set(u, 1, accidents_3y=2)), {"accidents"}),
    # small/micro share ≥ 50 %
    (lambda e, u: (e, _set(u, 1, size="微型")), {"small_micro"}),
])
def test_each_park_measure_fires_exactly(change, expected):
    eq, un = change(*clean())
    assert set(park_ids(eq, un)) - {"focus_category"} == expected


def test_small_micro_share_threshold():
    eq, _ = clean()
    two = units({"credit_code": "U1", "size": "小型"}, {"credit_code": "U2", "size": "大型"})
    three = units({"credit_code": "U1", "size": "小型"}, {"credit_code": "U2", "size": "大型"},
                  {"credit_code": "U3", "size": "中型"})
    assert "small_micro" in park_ids(eq, two)        # 1/2 ≥ 0.5
    assert "small_micro" not in park_ids(eq, three)  # 1/3 < 0.5


def test_measure_texts_filled():
    eq, un = clean()
    eq = _set(_set(eq, 4, overdue=True), 1, open_major_hazards=3)
    out = park_profiles(eq, un, parks({}), NO_HAZARDS, AS_OF, RULES).iloc[0]
    texts = json.loads(out["measures"])
    assert texts[0].startswith("3项重大隐患实行挂牌督办")
    assert any(t.startswith("逾期未检率20%（4台），督促限期报检") for t in texts)
    assert ids(out) == ["major_hazards", "overdue", "focus_category"]  # rule order


def test_custom_rules_and_threshold_and_scope():
    rules = ParkRules(measures=(
        MeasureRule(id="big", when="equipment >= 20 and n_blue > 10", scope="park",
                    text="{name}设备{equipment}台，超过{threshold}台"),
        MeasureRule(id="units_only", when="units > 0", scope="unit", text="单位措施"),
        MeasureRule(id="never", when="n_red > 0", text="无"),
    ))
    eq, un = clean()
    out = park_profiles(eq, un, parks({}), NO_HAZARDS, AS_OF, rules).iloc[0]
    assert json.loads(out["measures"]) == ["甲园区设备20台，超过20台"]
    files = unit_files(eq, un, NO_HAZARDS, AS_OF, rules)
    assert json.loads(files["measure_ids"].iloc[0]) == ["units_only"]


def test_measure_needs_its_printed_fields():
    """A rule whose text prints an unknown value (no dominant category) does not fire."""
    eq = equipment({"top_category": "F000"})
    assert park_ids(eq, units({})) == []


# --------------------------------------------------------------------------- unit files

def test_unit_files_by_hand():
    eq, un, _, hz = scenario()
    out = unit_files(eq, un, hz, AS_OF, RULES)
    assert out["credit_code"].tolist() == ["U1", "U2", "U3"]  # input order, none dropped
    u1 = one(out, credit_code="U1")
    assert (u1["equipment"], u1["in_use"], u1["n_red"], u1["n_blue"]) == (2, 2, 1, 1)
    assert json.loads(u1["categories"]) == {"3000": 2}
    assert (u1["open_hazards"], u1["open_major_hazards"], u1["overdue"]) == (1, 1, 1)
    assert u1["overdue_rate"] == pytest.approx(0.5)
    assert (u1["elevators"], u1["elevators_insured"], u1["insurance_coverage"]) == (2, 1, 0.5)
    assert (u1["level"], u1["level_reason"], u1["park_id"]) == ("red", "按所属最高风险设备", "P1")
    assert (u1["hazards_found"], u1["hazards_closed"]) == (1, 0)
    assert bool(u1["blacklisted"]) and u1["accidents_3y"] == 1
    assert ids(u1) == ["major_hazards", "red_unit", "blacklist_unit", "overdue", "accidents",
                       "focus_category", "insurance", "small_micro_unit"]
    u2 = one(out, credit_code="U2")
    assert (u2["hazards_found"], u2["hazards_closed"]) == (1, 1)  # 2025-11-30 is outside
    assert ids(u2) == ["late_hazards", "focus_category", "five_have_unit"]
    assert json.loads(u2["measures"])[-1] == "“五有”得分3分，对照“五有”标准补齐双重预防体系短板"
    u3 = one(out, credit_code="U3")
    assert (u3["equipment"], u3["in_use"]) == (1, 0) and np.isnan(u3["overdue_rate"])
    assert pd.isna(u3["dominant_category"]) and pd.isna(u3["blacklisted"])
    assert ids(u3) == ["small_micro_unit"]
    assert json.loads(u3["measures"]) == [
        "推行小微企业简易模式（一企一档一码），按“简便、实用、管用”原则抓住风险隐患关键环节"]


def test_unit_points_and_types():
    eq, un, _, hz = scenario()
    out = unit_files(eq, un, hz, AS_OF, RULES)
    assert out.crs.to_epsg() == 4326
    assert out.geometry.iloc[0].equals(shapely.Point(113.05, 34.05))
    assert out.geometry.iloc[1].is_empty  # unlocated: kept, empty point
    assert str(out["five_have_score"].dtype) == "Int64"
    assert {str(t) for t in out.dtypes} <= {"string", "Int64", "float64", "boolean",
                                            "geometry"}
    geo = gpd.GeoDataFrame(un, geometry=gpd.points_from_xy(un["lon"], un["lat"]), crs=4326)
    geo.loc[1, "geometry"] = None
    from_geo = unit_files(eq, geo.to_crs(3857), hz, AS_OF, RULES)
    assert from_geo.geometry.iloc[0].x == pytest.approx(113.05)
    assert from_geo.geometry.iloc[1].is_empty


def test_unit_without_equipment_and_na_code():
    un = units({"credit_code": "U1"}, {"credit_code": None, "name": "无代码"})
    out = unit_files(equipment().iloc[0:0], un, NO_HAZARDS, AS_OF, RULES)
    assert len(out) == 2
    assert out["equipment"].tolist() == [0, 0] and out["categories"].tolist() == ["{}", "{}"]
    assert out["measure_ids"].tolist() == ["[]", "[]"]
    empty = unit_files(equipment().iloc[0:0], units().iloc[0:0], NO_HAZARDS, AS_OF, RULES)
    assert len(empty) == 0 and "measures" in empty.columns


def test_unit_five_have_and_small_micro_measures():
    eq = equipment({"unit_credit_code": "A"}, {"unit_credit_code": "B"})
    un = units({"credit_code": "A", "five_have_score": 5, "size": "微型"},
               {"credit_code": "B", "five_have_score": None, "size": None})
    out = unit_files(eq, un, NO_HAZARDS, AS_OF, RULES)
    assert ids(out.iloc[0]) == ["focus_category", "small_micro_unit"]
    assert ids(out.iloc[1]) == ["focus_category"]  # unknown score: no five-have text


def test_unit_files_deterministic():
    eq, un, _, hz = scenario()
    a = unit_files(eq, un, hz, AS_OF, RULES)
    b = unit_files(eq.iloc[::-1], un.iloc[::-1], hz.iloc[::-1], AS_OF, RULES)
    b = b.set_index("credit_code").loc[a["credit_code"]].reset_index()
    pd.testing.assert_frame_equal(a, b[a.columns], check_dtype=True)


def test_unit_rank_from_level_when_rank_missing():
    un = units({"credit_code": "A", "level": "red"}, {"credit_code": "B", "level": None})
    un = un.drop(columns="level_rank")
    eq = equipment({"unit_credit_code": "A"}, {"unit_credit_code": "B"})
    files = unit_files(eq, un, NO_HAZARDS, AS_OF, RULES)
    assert files["level_rank"].tolist() == [4, 0]
    assert "red_unit" in ids(files.iloc[0]) and "red_unit" not in ids(files.iloc[1])
    park = park_profiles(eq, un, parks({}), NO_HAZARDS, AS_OF, RULES).iloc[0]
    assert park["red_units"] == 1 and "red_units" in ids(park)


def test_profiles_from_the_park_sums_of_parts_in_any_order():
    """The park sums of parts (each unit's pieces in one part with their hazards, as the
    Dask build's partitions keep them), added in any order, give the whole's profiles to
    the last bit; the pieces without a park add nothing."""
    eq, un, pk, hz = scenario()
    whole = park_profiles(eq, un, pk, hz, AS_OF, RULES)
    for parts in ([[0, 1], [2, 3]], [[2, 3], [0, 1]], [[3], [0, 1], [2]]):
        sums = [ParkSums.of(eq.iloc[rows], hz[hz["registration_code"].isin(
            eq["registration_code"].iloc[rows])]) for rows in parts]
        pd.testing.assert_frame_equal(
            park_profiles_from(ParkSums.combined(sums), un, pk, AS_OF, RULES), whole,
            check_exact=True)
    assert ParkSums.of(eq.iloc[[3]], hz).pieces.empty  # E4 has no park


def test_park_sums_of_random_parts_add_up_exactly():
    """Many pieces with D on the LEC steps (sums of float D in another order would differ
    in the last digits), cut at random and shuffled: the same profiles to the last bit."""
    rng = np.random.default_rng(16)
    n = 3000
    d = rng.choice([0.0, 0.05, 0.15, 1.35, 12.6, 21.6, 63.0, 405.0], n)
    eq = equipment(*({"registration_code": f"R{i}", "unit_credit_code": f"U{i % 97}",
                      "park_id": [None, "P1", "P2"][i % 3], "D": d[i],
                      "top_category": ["3000", "2000", None][i % 5 % 3],
                      "in_use": bool(i % 7), "level_rank": int(i % 5)}
                     for i in range(n)))
    un = units(*({"credit_code": f"U{k}", "park_id": None} for k in range(97)))
    pk = parks({"park_id": "P1"}, {"park_id": "P2"})
    hz = hazards(*({"registration_code": f"R{int(rng.integers(n))}",
                    "found_on": f"2026-{1 + i % 11:02d}-03",
                    "closed_on": None if i % 2 else "2026-11-05"} for i in range(400)))
    whole = park_profiles(eq, un, pk, hz, AS_OF, RULES)
    cut = rng.integers(0, 6, 97)[np.arange(n) % 97]  # a unit's pieces in one part
    sums = [ParkSums.of(eq[cut == p], hz[hz["registration_code"].isin(
        eq["registration_code"][cut == p])]) for p in rng.permutation(6)]
    pd.testing.assert_frame_equal(
        park_profiles_from(ParkSums.combined(sums), un, pk, AS_OF, RULES), whole,
        check_exact=True)
    assert whole["equipment"].sum() == 2000 and whole["monthly"].str.contains('"found":[1-9]').all()
