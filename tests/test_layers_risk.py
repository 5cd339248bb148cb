"""LEC grading of equipment and units on hand-built frames whose answers follow by hand."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from data.catalogue import load_catalogue
from layers.risk import GRADED_UNIT_COLUMNS, RiskRules, band_of, grade_equipment, grade_units

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
          venues: pd.DataFrame = NO_VENUES, rules: RiskRules = RULES) -> pd.DataFrame:
    return grade_equipment(eq, units() if un is None else un, hazards, venues, AS_OF, rules)


def test_a_benign_elevator_is_low_and_says_why():
    g = grade(equipment()).iloc[0]
    # C 15 (elevator) × E 6 (used every day) × L 0.5 (base) = 45 → 一般危险 → blue
    assert (g["C"], g["E"], g["L"], g["D"]) == (15, 6, 0.5, 45)
    assert g["level"] == "blue" and g["lec_band"] == "一般危险"
    assert g["C_reason"].startswith("C=15 非常严重，一人死亡：") and "3000 电梯" in g["C_reason"]
    assert g["E_reason"].startswith("E=6 每天工作时间内暴露：") and "检验合格" in g["L_reason"]


def test_consequence_takes_the_most_specific_catalogue_entry():
    codes = ["9110", "9310", "2310", "2110", "2130", "2150", "2170", "3110", "3430", "7310",
             "7320", "5110", "4310", "X999"]
    g = grade(equipment(category_code=codes))
    assert g["C"].tolist() == [100, 15, 40, 40, 40, 15, 7, 15, 7, 3, 3, 15, 40, 7]
    # 7310 安全阀 is a safety accessory (F000) in the catalogue, not a piping component
    assert "F000" in g["C_reason"].iloc[9] and "7000" in g["C_reason"].iloc[10]
    assert g["C_reason"].iloc[-1] == "C=7 严重，重伤：其他特种设备"


def test_pressure_vessels_are_graded_by_their_class():
    """TSG 21-2016 附件A: 第三类 above 第二类 above 第一类."""
    g = grade(equipment(category_code=["2130", "2150", "2170"])).set_index("category_code")
    assert (g.loc["2130", "C"], g.loc["2150", "C"], g.loc["2170", "C"]) == (40, 15, 7)
    assert "灾难，数人死亡" in g.loc["2130", "C_reason"]
    assert "第三类压力容器" in g.loc["2130", "C_reason"]
    assert "严重，重伤" in g.loc["2170", "C_reason"]
    assert all("TSG 21-2016" in r.basis for r in RULES.consequence.by_category
               if r.code.startswith("21"))


def test_a_forklift_has_the_consequence_of_one_death():
    g = grade(equipment(category_code=["5110"])).iloc[0]
    assert g["C"] == 15 and g["C_reason"].startswith("C=15 非常严重，一人死亡：")
    assert "碾压" in g["C_reason"] and "5100 机动工业车辆" in g["C_reason"]


def test_a_residential_elevator_outside_any_venue_is_used_every_day():
    g = grade(equipment(use_place=["住宅", None, "某某小区3号楼", "工厂"],
                        county_adcode=["410122"] * 4))
    assert g["E"].tolist() == [6, 6, 6, 6]
    assert "住宅" in g["E_reason"].iloc[0] and "住宅" in g["E_reason"].iloc[2]
    assert "3000 电梯" in g["E_reason"].iloc[1]  # no use place: the category says it


def test_a_mall_escalator_in_a_crowded_venue_is_exposed_continuously():
    venues = pd.DataFrame({"venue_id": pd.array(["V1", "V2"], dtype="string"),
                           "daily_visitors": [30_000, 800]})
    g = grade(equipment(category_code=["3310", "3310"], venue_id=["V1", "V2"],
                        use_place=["商场", "商场"]), venues=venues)
    assert g["E"].tolist() == [10, 6]
    assert g["E_reason"].iloc[0].startswith("E=10 连续暴露：") and "2万" in g["E_reason"].iloc[0]


def test_exposure_is_raised_by_park_and_use_place_not_by_being_urban():
    # fixed vessels are mostly unattended (3); in a park, or in a hospital, people are near
    # them every day (6); piping is patrolled (2–3); an urban district raises nothing
    g = grade(equipment(category_code=["2150", "2150", "2150", "2150", "8110", "8310"],
                        park_id=[None, "P1", None, None, None, None],
                        use_place=[None, None, "医院", "工厂", None, None],
                        county_adcode=["410102", "410122", "410122", "410102", "410122",
                                       "410122"]))
    assert g["E"].tolist() == [3, 6, 6, 3, 2, 3]
    assert "园区" in g["E_reason"].iloc[1] and "使用场所" in g["E_reason"].iloc[2]
    assert g["E_reason"].iloc[0].startswith("E=3 每周一次或偶然暴露：")
    assert not g["E_reason"].str.contains("市辖区").any()


def test_use_place_rules_come_from_the_rule_file():
    rules = RiskRules.model_validate({"exposure": {"by_use_place": [
        {"words": ["仓库"], "value": 6, "reason": "使用场所为仓库，搬运人员每天作业"}]}})
    g = grade(equipment(category_code=["2170", "2170"], use_place=["成品仓库", "住宅"]),
              rules=rules)
    assert g["E"].tolist() == [6, 3]  # 住宅 is no longer in the table
    assert "仓库" in g["E_reason"].iloc[0]


def test_every_default_code_is_in_the_catalogue():
    codes = set(load_catalogue()["code"])
    rules = [*RULES.consequence.by_category, *RULES.exposure.by_category]
    assert {r.code for r in rules} <= codes
    # every top category has an E and a C of its own (none falls to the defaults)
    tops = set(load_catalogue().query("level == '种类'")["code"])
    assert tops - {"2000"} <= {r.code for r in RULES.exposure.by_category}


def test_likelihood_is_the_largest_factor_and_names_it_and_the_others():
    eq = equipment(commissioned_on=[pd.Timestamp("1990-01-01")] * 3,
                   next_inspection_due=[pd.Timestamp("2026-01-01"), pd.Timestamp("2027-01-01"),
                                        pd.Timestamp("2027-01-01")],
                   inspection_conclusion=["合格", "基本合格", "不合格"])
    g = grade(eq)
    assert g["L"].tolist() == [3, 1, 6]
    assert g["overdue"].tolist() == [True, False, False]
    assert "逾期未检" in g["L_reason"].iloc[0] and "20年" in g["L_also"].iloc[0]
    assert "不合格" in g["L_reason"].iloc[2]
    # the overdue elevator, used every day: 3 × 6 × 15 = 270 → 高度危险 → orange (its state is
    # unconfirmed); the failed one, 6 × 6 × 15 = 540 → 极其危险 → red
    assert g["D"].iloc[0] == 270 and g["level"].iloc[0] == "orange"
    assert g["D"].iloc[2] == 540 and g["level"].iloc[2] == "red"


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
    g = grade(equipment(category_code=["2170"] * 3), hazards=hazards)
    assert g["open_major_hazards"].tolist() == [1, 0, 0]
    assert g["open_hazards"].tolist() == [1, 0, 2] and g["late_hazards"].tolist() == [0, 0, 1]
    # a 第一类 vessel (C 7, E 3). E0: 7 × 3 × 10 = 210 would be orange, the open major hazard
    # makes it red; E2: its late general hazard sets L = 6: 7 × 3 × 6 = 126 → yellow
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
    # 第二类 vessels (C 15, E 3): U0's failed one (不合格, L 6) 270 orange, U1's (blacklisted,
    # L 3) 135
    eq = equipment(unit_credit_code=["U0", "U0", "U1", "X9"], category_code=["2150"] * 4,
                   inspection_conclusion=["不合格", "合格", "合格", "合格"],
                   next_inspection_due=[pd.Timestamp("2027-06-01")] * 4)
    g = grade(eq, un)
    u = grade_units(un, g, RULES).set_index("credit_code")
    assert u.loc["U0", "level"] == "orange" and u.loc["U0", "n_orange"] == 1
    assert u.loc["U1", "level"] == "orange" and "黑名单" in u.loc["U1", "level_reason"]
    assert pd.isna(u.loc["U2", "level"]) and u.loc["U2", "equipment_count"] == 0
    # a unit named only by equipment is kept, with the equipment's name
    assert u.loc["X9", "name"] == "甲单位" and u.loc["X9", "level"] == "blue"
    # what grading sets (the Dask driver takes only these back of the table's units)
    added = [c for c in grade_units(un, g, RULES).columns if c not in un.columns]
    assert added == list(GRADED_UNIT_COLUMNS)


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
    ({"consequence": {"by_category": [{"code": "21", "value": 15, "reason": "x"}]}},
     "不是特种设备目录中的代码"),
    ({"consequence": {"by_category": [{"code": "2199", "value": 15, "reason": "x"}]}},
     "不是特种设备目录中的代码"),
    ({"consequence": {"by_category": [{"code": "2130", "value": 40, "reason": "x"},
                                      {"code": "2130", "value": 15, "reason": "y"}]}},
     "不止一次"),
    ({"exposure": {"by_category": [{"code": "3000", "value": 5, "reason": "x"}]}}, "LEC 标度"),
    ({"exposure": {"by_use_place": [{"words": [" "], "value": 6, "reason": "x"}]}}, "空词"),
    ({"exposure": {"urban": {"value": 3, "reason": "x"}}}, "Extra inputs"),
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


@pytest.mark.slow
def test_on_the_seeded_demo_the_level_shares_stay_plausible(tmp_path):
    """The 2,000-equipment demo (seed 7) as of 2026-11-01: before E was exposure and C went
    by class, 重大 34，较大 106，一般 193，低 1,523; now every level is there, 重大 a small
    share, and the E of registered use places is what the rule file says."""
    from data.demo import generate
    from layers.builders import Build
    from layers.rules import Rules
    from service.build import read_inputs
    from service.ingest.pipeline import IngestOptions, ingest
    from service.store.embedded import EmbeddedStore

    out = tmp_path / "demo"
    generate(province="河南省", equipment=2000, seed=7, out=out, as_of=AS_OF)
    store = EmbeddedStore(tmp_path / "store")
    try:
        ingest(sorted(str(p) for p in out.iterdir() if p.name != "MANIFEST.json"), store,
               IngestOptions(h3_resolution=8, provinces=["410000"]))
        eq = Build(read_inputs(store, ["410000"], AS_OF), Rules()).equipment
    finally:
        store.close()
    graded = eq[eq["level"].notna()]
    share = graded["level"].value_counts(normalize=True)
    assert set(share.index) == {"red", "orange", "yellow", "blue"}
    assert share["red"] < 0.1 and share["orange"] < 0.15 and share["blue"] > 0.4
    # most elevators have a use place, consistent with where they stand
    lifts = graded[graded["top_category"] == "3000"]
    assert lifts["use_place"].notna().mean() > 0.8
    homes = lifts["use_place"] == "住宅"
    assert (lifts.loc[homes, "E"] >= 6).all() and lifts["E"].min() >= 3
    # the urban/rural split is gone: no E of 2 outside pressure piping and its components
    assert set(graded.loc[graded["E"] == 2, "top_category"]) <= {"7000", "8000"}
