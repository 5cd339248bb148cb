"""LEC grading of equipment and units on hand-built frames whose answers follow by hand."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from layers.risk import RiskRules, band_of, grade_equipment, grade_units, urban_counties

AS_OF = date(2026, 11, 1)
RULES = RiskRules()


def equipment(**overrides: list) -> pd.DataFrame:
    """Rows of equipment; every column defaults to a benign value (new, in date, 合格)."""
    n = len(next(iter(overrides.values()))) if overrides else 1
    base = {
        "registration_code": [f"E{i}" for i in range(n)],
        "category_code": ["3110"] * n, "unit_credit_code": ["U0"] * n,
        "unit_name": ["甲单位"] * n, "lon": [113.6] * n, "lat": [34.7] * n,
        "province_adcode": ["410000"] * n, "city_adcode": ["410100"] * n,
        "county_adcode": ["410122"] * n, "h3": [None] * n, "park_id": [None] * n,
        "venue_id": [None] * n, "status": ["在用"] * n,
        "commissioned_on": [pd.Timestamp("2020-01-01")] * n,
        "next_inspection_due": [pd.Timestamp("2027-06-01")] * n,
        "inspection_conclusion": ["合格"] * n, "insured": [True] * n,
    }
    base.update(overrides)
    frame = pd.DataFrame(base)
    for col in ("park_id", "venue_id", "h3"):
        frame[col] = frame[col].astype("string")
    return frame


def units(**overrides: list) -> pd.DataFrame:
    n = len(next(iter(overrides.values()))) if overrides else 1
    base = {"credit_code": [f"U{i}" for i in range(n)], "name": ["甲单位"] * n,
            "industry": ["C"] * n, "size": ["大型"] * n, "lon": [113.6] * n, "lat": [34.7] * n,
            "province_adcode": ["410000"] * n, "city_adcode": ["410100"] * n,
            "county_adcode": ["410122"] * n, "park_id": [None] * n, "venue_id": [None] * n,
            "five_have_score": pd.array([5] * n, dtype="Int64"),
            "blacklisted": pd.array([False] * n, dtype="boolean"),
            "accidents_3y": pd.array([0] * n, dtype="Int64")}
    base.update(overrides)
    return pd.DataFrame(base)


NO_HAZARDS = pd.DataFrame({"hazard_id": [], "registration_code": [], "found_on": [],
                           "level": [], "status": [], "deadline": [], "closed_on": []})
NO_VENUES = pd.DataFrame({"venue_id": pd.Series([], dtype="string"), "daily_visitors": []})


def grade(eq: pd.DataFrame, un: pd.DataFrame | None = None, hazards: pd.DataFrame = NO_HAZARDS,
          venues: pd.DataFrame = NO_VENUES, urban: list[str] | None = None,
          rules: RiskRules = RULES) -> pd.DataFrame:
    return grade_equipment(eq, units() if un is None else un, hazards, venues, AS_OF, rules,
                           np.asarray(urban or []))


def test_a_benign_rural_elevator_is_low_and_says_why():
    g = grade(equipment()).iloc[0]
    # C 15 (elevator) × E 2 (rural county) × L 0.5 (base) = 15 → 稍有危险 → blue
    assert (g["C"], g["E"], g["L"], g["D"]) == (15, 2, 0.5, 15)
    assert g["level"] == "blue" and g["lec_band"] == "稍有危险"
    assert "电梯" in g["C_reason"] and "县" in g["E_reason"] and "检验合格" in g["L_reason"]


def test_consequence_takes_the_longest_matching_prefix():
    g = grade(equipment(category_code=["9100", "2310", "2110", "3110", "F210", "X999"]))
    assert g["C"].tolist() == [100, 40, 15, 15, 3, 7]


def test_exposure_by_place_crowded_venue_wins_over_park_and_district():
    venues = pd.DataFrame({"venue_id": pd.array(["V1", "V2"], dtype="string"),
                           "daily_visitors": [50_000, 800]})
    eq = equipment(venue_id=["V1", "V2", None, None, None], park_id=[None, None, "P1", None, None],
                   county_adcode=["410102"] * 4 + ["410122"])
    g = grade(eq, venues=venues, urban=["410102"])
    assert g["E"].tolist() == [10, 6, 3, 3, 2]
    assert "2万" in g["E_reason"].iloc[0] and "园区" in g["E_reason"].iloc[2]
    assert "市辖区" in g["E_reason"].iloc[3]


def test_likelihood_is_the_largest_factor_and_names_it_and_the_others():
    eq = equipment(commissioned_on=[pd.Timestamp("1990-01-01")] * 3,
                   next_inspection_due=[pd.Timestamp("2026-01-01"), pd.Timestamp("2027-01-01"),
                                        pd.Timestamp("2027-01-01")],
                   inspection_conclusion=["合格", "基本合格", "不合格"])
    g = grade(eq)
    assert g["L"].tolist() == [6, 1, 6]
    assert g["overdue"].tolist() == [True, False, False]
    assert "逾期未检" in g["L_reason"].iloc[0] and "20年" in g["L_also"].iloc[0]
    assert "不合格" in g["L_reason"].iloc[2]
    # the elevator overdue in a rural county: 15 × 2 × 6 = 180 → 高度危险 → orange
    assert g["D"].iloc[0] == 180 and g["level"].iloc[0] == "orange"


def test_unit_factors_raise_likelihood():
    un = units(credit_code=["U0", "U1", "U2", "U3"],
               blacklisted=pd.array([True, False, False, False], dtype="boolean"),
               accidents_3y=pd.array([0, 2, 0, 0], dtype="Int64"),
               five_have_score=pd.array([5, 5, 1, 5], dtype="Int64"),
               size=["大型", "大型", "大型", "微型"])
    g = grade(equipment(unit_credit_code=["U0", "U1", "U2", "U3", "U9"]), un)
    # U3 is micro, which raises nothing; U9 is not in the units table: base
    assert g["L"].tolist() == [3, 3, 1, 0.5, 0.5]
    assert "黑名单" in g["L_reason"].iloc[0] and "事故" in g["L_reason"].iloc[1]
    assert "五有" in g["L_reason"].iloc[2] and "小微" not in g["L_reason"].iloc[3]


def test_an_open_major_hazard_makes_it_red_whatever_d_says():
    hazards = pd.DataFrame({
        "hazard_id": ["H1", "H2", "H3", "H4"], "registration_code": ["E0", "E1", "E2", "E2"],
        "found_on": pd.to_datetime(["2026-10-01"] * 4),
        "level": ["重大", "重大", "一般", "一般"],
        "status": ["整改中", "已销号", "已登记", "整改中"],
        "deadline": pd.to_datetime(["2027-01-01", "2026-10-20", "2026-10-15", "2026-12-01"]),
        "closed_on": pd.to_datetime([None, "2026-10-20", None, None])})
    g = grade(equipment(category_code=["5110"] * 3), hazards=hazards)
    assert g["open_major_hazards"].tolist() == [1, 0, 0]
    assert g["open_hazards"].tolist() == [1, 0, 2] and g["late_hazards"].tolist() == [0, 0, 1]
    # E0: 7 × 2 × 10 = 140 would be yellow, the open major hazard makes it red;
    # E2: its late general hazard sets L = 6: 7 × 2 × 6 = 84 → yellow
    assert g["level"].tolist() == ["red", "blue", "yellow"]
    assert "重大隐患" in g["level_reason"].iloc[0]


def test_equipment_not_in_use_is_kept_but_not_graded():
    g = grade(equipment(status=["停用", "报废", None]))
    assert g["level"].isna().tolist() == [True, True, False]
    assert g["level_rank"].tolist() == [0, 0, 1] and g["D"].tolist()[:2] == [0, 0]
    assert g["in_use"].tolist() == [False, False, True]


def test_bands_follow_the_rule_file_and_map_five_bands_onto_four_levels():
    d = np.asarray([0, 19.9, 20, 69.9, 70, 159.9, 160, 319.9, 320, 5000])
    names, ranks = band_of(d, RULES)
    assert ranks.tolist() == [1, 1, 1, 1, 2, 2, 3, 3, 4, 4]
    assert names.tolist()[:3] == ["稍有危险", "稍有危险", "一般危险"]


def test_units_take_their_riskiest_equipment_and_their_own_floors():
    un = units(credit_code=["U0", "U1", "U2"],
               blacklisted=pd.array([False, True, False], dtype="boolean"))
    eq = equipment(unit_credit_code=["U0", "U0", "U1", "X9"],
                   next_inspection_due=[pd.Timestamp("2026-01-01")] + [
                       pd.Timestamp("2027-06-01")] * 3)
    g = grade(eq, un)
    u = grade_units(un, g, RULES).set_index("credit_code")
    assert u.loc["U0", "level"] == "orange" and u.loc["U0", "n_orange"] == 1
    assert u.loc["U1", "level"] == "orange" and "黑名单" in u.loc["U1", "level_reason"]
    assert pd.isna(u.loc["U2", "level"]) and u.loc["U2", "equipment_count"] == 0
    # a unit named only by equipment is kept, with the equipment's name
    assert u.loc["X9", "name"] == "甲单位" and u.loc["X9", "level"] == "blue"


def test_urban_counties_are_the_districts():
    b = pd.DataFrame({"adcode": ["410102", "410122", "410100"], "level": ["county", "county",
                                                                          "city"],
                      "name": ["中原区", "中牟县", "郑州市"]})
    assert urban_counties(b).tolist() == ["410102"]


def test_empty_input_grades_to_an_empty_frame():
    g = grade(equipment().iloc[0:0])
    assert len(g) == 0 and "level" in g.columns
    assert len(grade_units(units().iloc[0:0], g, RULES)) == 0


@pytest.mark.parametrize("change, message", [
    ({"bands": [{"name": "x", "min": 10, "level": "red"}]}, "min 须为 0"),
    ({"bands": [{"name": "a", "min": 0, "level": "red"}, {"name": "b", "min": 10,
                                                          "level": "blue"}]}, "从高到低"),
    ({"likelihood": {"overdue": {"value": 7, "reason": "x"}}}, "LEC 标度"),
    ({"consequence": {"default": 2}}, "LEC 标度"),
    ({"bands": [{"name": "a", "min": 100, "level": "blue"}, {"name": "b", "min": 0,
                                                             "level": "red"}]}, "不升高"),
])
def test_invalid_risk_rules_are_refused(change: dict, message: str):
    with pytest.raises(ValueError, match=message):
        RiskRules.model_validate(change)


def test_a_safety_valve_is_graded_as_a_safety_accessory_not_as_pressure_piping():
    g = grade(equipment(category_code=["7310", "7320"]))
    assert g["top_category"].tolist() == ["F000", "7000"]


def test_being_a_small_or_micro_unit_raises_no_likelihood():
    """Henan plan 二（四）: a simpler approach for small and micro units, not a higher risk."""
    small = grade(equipment(), units(size=["微型"])).iloc[0]
    large = grade(equipment(), units(size=["大型"])).iloc[0]
    assert (small["L"], small["D"], small["level"]) == (large["L"], large["D"], large["level"])
    assert "小微" not in str(small["L_reason"]) + str(small["L_also"])
