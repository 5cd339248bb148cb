"""Inspection frequency (加大监督检查频次): small hand-built frames, answers checked by hand."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from benchmarks.kernels import frequency_inputs
from layers.frequency import (
    BOOSTS,
    BaseIntervals,
    FocusBoost,
    FrequencyRules,
    HotspotBoost,
    KeyEquipmentBoost,
    UnitFacts,
    boosted_units,
    inspection_frequency,
    inspection_frequency_from,
    join_labels,
)

AS_OF = date(2021, 6, 30)


def units_frame(*rows: dict) -> pd.DataFrame:
    """Graded units; each row needs only credit_code and what the test is about."""
    base = {"name": "单位", "level": "blue", "lon": 113.6, "lat": 34.7, "province_adcode": "410000",
            "city_adcode": "410100", "county_adcode": "410102", "blacklisted": False}
    frame = pd.DataFrame([{**base, "name": f"单位{r['credit_code']}", **r} for r in rows])
    for col in ("credit_code", "name", "level", "province_adcode", "city_adcode",
                "county_adcode"):
        frame[col] = frame[col].astype("string")
    frame["blacklisted"] = frame["blacklisted"].astype("boolean")
    frame["lon"] = frame["lon"].astype("float64")
    frame["lat"] = frame["lat"].astype("float64")
    return frame


def equipment_frame(*rows: dict) -> pd.DataFrame:
    """Graded equipment: unit_credit_code and category_code, in use unless said."""
    cols = ("registration_code", "unit_credit_code", "category_code", "top_category", "venue_id",
            "county_adcode", "city_adcode")
    if not rows:
        frame = pd.DataFrame({c: pd.Series(dtype="string") for c in cols})
        frame["in_use"] = pd.Series(dtype=bool)
        frame["overdue"] = pd.Series(dtype=bool)
        return frame
    base = {"venue_id": None, "county_adcode": "410102", "city_adcode": "410100",
            "in_use": True, "overdue": False}
    frame = pd.DataFrame([{**base, "registration_code": f"R{i}", **r}
                          for i, r in enumerate(rows)])
    frame["top_category"] = frame["category_code"].str.slice(0, 1) + "000"
    for col in cols:
        frame[col] = frame[col].astype("string")
    return frame


def checks_frame(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame({
        "check_id": pd.Series([f"C{i}" for i in range(len(rows))], dtype="string"),
        "credit_code": pd.Series([r[0] for r in rows], dtype="string"),
        "checked_on": pd.to_datetime(pd.Series([r[1] for r in rows], dtype=object)).astype(
            "datetime64[s]"),
        "officer_id": pd.Series(["O1"] * len(rows), dtype="string"),
        "result": pd.Series(["合格"] * len(rows), dtype="string"),
    })


VENUES = pd.DataFrame({"venue_id": pd.Series(["V1", "V2"], dtype="string"),
                       "name": ["万达广场", "人民医院"], "kind": ["商场", "医院"],
                       "daily_visitors": pd.array([30000, 8000], dtype="Int64")})
NO_HOT = pd.DataFrame({"credit_code": pd.Series(dtype="string"),
                       "regional": pd.Series(dtype="boolean")})
NO_WIDE = pd.DataFrame({"county_adcode": pd.Series(dtype="string"),
                        "top_category": pd.Series(dtype="string"),
                        "widespread": pd.Series(dtype="boolean")})


def hazards_frame(*rows: dict) -> pd.DataFrame:
    """Hazards: registration_code and what the test is about; open 一般, found 2021-01-01."""
    base = {"level": "一般", "status": "整改中", "found_on": "2021-01-01", "deadline": None}
    frame = pd.DataFrame([{**base, "hazard_id": f"H{i}", **r} for i, r in enumerate(rows)])
    for col in ("hazard_id", "registration_code", "level", "status"):
        frame[col] = frame[col].astype("string")
    for col in ("found_on", "deadline"):
        frame[col] = pd.to_datetime(frame[col]).astype("datetime64[s]")
    return frame


NATIONAL = {"provinces": None, "from_year": None, "to_year": None}


def run(units, equipment=None, checks=None, venues=VENUES, hot=NO_HOT, wide=NO_WIDE,
        as_of=AS_OF, rules=None, hazards=None, scoped=False):
    """The frequency frame; unless ``scoped``, the focus rule applies everywhere, always
    (these units are in Henan; the scope itself is tested below)."""
    equipment = equipment if equipment is not None else equipment_frame()
    checks = checks if checks is not None else checks_frame()
    rules = rules or FrequencyRules()
    if not scoped:
        rules = rules.model_copy(update={
            "focus_category": rules.focus_category.model_copy(update=NATIONAL)})
    out = inspection_frequency(units, equipment, checks, venues, hot, wide, as_of,
                               rules, hazards=hazards)
    return out.set_index("credit_code", drop=False)


def boosts_of(frame: pd.DataFrame, code: str) -> list[str]:
    return json.loads(frame.loc[code, "boosts"])


# --------------------------------------------------------------------------- base intervals

def test_base_interval_by_level_and_unlevelled():
    u = units_frame({"credit_code": "R", "level": "red"}, {"credit_code": "O", "level": "orange"},
                    {"credit_code": "Y", "level": "yellow"}, {"credit_code": "B", "level": "blue"},
                    {"credit_code": "N", "level": None})
    f = run(u)
    assert f["base_interval_months"].to_dict() == {"B": 12, "N": 12, "O": 3, "R": 1, "Y": 6}
    assert (f["interval_months"] == f["base_interval_months"]).all()
    assert f.loc["O", "checks_per_year"] == 4.0 and f.loc["N", "checks_per_year"] == 1.0
    assert not f["boosted"].any()
    assert f.loc["O", "reasons"] == "较大风险单位基础检查间隔3个月"
    assert f.loc["N", "reasons"].startswith("未分级（无在用设备）")
    assert (f["boosts"] == "[]").all()


# --------------------------------------------------------------------------- each boost

def test_crowded_venue_names_the_kind_and_ignores_idle_equipment():
    u = units_frame({"credit_code": "A"}, {"credit_code": "B"}, {"credit_code": "C"})
    eq = equipment_frame(
        {"unit_credit_code": "A", "category_code": "4100", "venue_id": "V1"},
        {"unit_credit_code": "A", "category_code": "4100", "venue_id": "V2"},
        {"unit_credit_code": "B", "category_code": "4100", "venue_id": "V1", "in_use": False},
        {"unit_credit_code": "C", "category_code": "4100", "venue_id": "V9"})
    f = run(u, eq, as_of=date(2019, 6, 30))
    assert boosts_of(f, "A") == ["crowded_venue"]
    assert "在用设备位于人员密集场所（医院、商场）" in f.loc["A", "reasons"]
    assert f.loc["A", "interval_months"] == 6  # 12 → 6, one rung
    assert boosts_of(f, "B") == []  # not in use
    assert "场所类型不明" in f.loc["C", "reasons"]  # venue not in the venues table


def test_key_equipment_ropeway_anywhere_elevator_only_in_venue_cylinder():
    u = units_frame({"credit_code": "ROPE"}, {"credit_code": "LIFT"}, {"credit_code": "MALL"},
                    {"credit_code": "GAS"}, {"credit_code": "RIDE"})
    eq = equipment_frame(
        {"unit_credit_code": "ROPE", "category_code": "9100"},
        {"unit_credit_code": "LIFT", "category_code": "3110"},
        {"unit_credit_code": "MALL", "category_code": "3110", "venue_id": "V1"},
        {"unit_credit_code": "GAS", "category_code": "2310"},
        {"unit_credit_code": "RIDE", "category_code": "6100"})
    f = run(u, eq, as_of=date(2019, 6, 30))  # 2019: before the first focus year
    assert boosts_of(f, "ROPE") == ["key_equipment"]
    assert "持有重点特种设备（客运索道）" in f.loc["ROPE", "reasons"]
    assert boosts_of(f, "LIFT") == []  # an elevator outside a crowded venue
    # an elevator in a crowded venue: one fact, the venue (see the tests below)
    assert boosts_of(f, "MALL") == ["crowded_venue"]
    assert "在用设备位于人员密集场所（商场；其中电梯为重点特种设备）" in f.loc["MALL", "reasons"]
    assert f.loc["MALL", "boost_steps"] == 1 and f.loc["MALL", "interval_months"] == 6
    assert boosts_of(f, "GAS") == ["key_equipment"] and "气瓶" in f.loc["GAS", "reasons"]
    assert boosts_of(f, "RIDE") == ["key_equipment"]


def test_key_equipment_codes_configurable():
    rules = FrequencyRules(key_equipment=KeyEquipmentBoost(anywhere=("4000",), in_venue=()))
    u = units_frame({"credit_code": "A"}, {"credit_code": "B"})
    eq = equipment_frame({"unit_credit_code": "A", "category_code": "4100"},
                         {"unit_credit_code": "B", "category_code": "9100"})
    f = run(u, eq, rules=rules, as_of=date(2019, 1, 1))
    assert boosts_of(f, "A") == ["key_equipment"] and "起重机械" in f.loc["A", "reasons"]
    assert boosts_of(f, "B") == []


def test_hotspot_cell_and_widespread_county_category():
    u = units_frame({"credit_code": "HOT"}, {"credit_code": "LONE"}, {"credit_code": "WIDE"},
                    {"credit_code": "OTHER"}, {"credit_code": "FAR", "county_adcode": "410105"})
    eq = equipment_frame(
        {"unit_credit_code": "WIDE", "category_code": "4100"},
        {"unit_credit_code": "OTHER", "category_code": "5100"},  # category not widespread
        {"unit_credit_code": "FAR", "category_code": "4100", "county_adcode": None})
    hot = pd.DataFrame({"credit_code": pd.Series(["HOT", "LONE"], dtype="string"),
                        "regional": pd.array([True, False], dtype="boolean")})
    wide = pd.DataFrame({"county_adcode": pd.Series(["410102", "410102"], dtype="string"),
                         "top_category": pd.Series(["4000", "5000"], dtype="string"),
                         "widespread": pd.array([True, False], dtype="boolean")})
    f = run(u, eq, hot=hot, wide=wide, as_of=date(2019, 1, 1))
    assert boosts_of(f, "HOT") == ["hotspot"]
    assert "区域性聚集的严重隐患热点网格" in f.loc["HOT", "reasons"]
    assert boosts_of(f, "LONE") == ["hotspot"]
    assert boosts_of(f, "WIDE") == ["hotspot"]
    assert "所在县区起重机械普遍存在严重事故隐患" in f.loc["WIDE", "reasons"]
    assert boosts_of(f, "OTHER") == []
    assert boosts_of(f, "FAR") == []  # piece without county stands in its unit's (410105)

    only = FrequencyRules(hotspot=HotspotBoost(regional_only=True, widespread=False))
    g = run(u, eq, hot=hot, wide=wide, as_of=date(2019, 1, 1), rules=only)
    assert boosts_of(g, "HOT") == ["hotspot"]
    assert boosts_of(g, "LONE") == [] and boosts_of(g, "WIDE") == []


def test_blacklisted_and_missing_flag():
    u = units_frame({"credit_code": "A", "blacklisted": True},
                    {"credit_code": "B", "blacklisted": None})
    f = run(u)
    assert boosts_of(f, "A") == ["blacklisted"]
    assert "列入特种设备安全不良记录黑名单" in f.loc["A", "reasons"]
    assert boosts_of(f, "B") == []


def test_overdue_counts_pieces():
    u = units_frame({"credit_code": "A", "level": "yellow"})
    eq = equipment_frame({"unit_credit_code": "A", "category_code": "4100", "overdue": True},
                         {"unit_credit_code": "A", "category_code": "4100", "overdue": True},
                         {"unit_credit_code": "A", "category_code": "4100"})
    f = run(u, eq, as_of=date(2019, 1, 1))
    assert boosts_of(f, "A") == ["overdue_inspection"]
    assert "有逾期未检设备（2台）" in f.loc["A", "reasons"]
    assert f.loc["A", "interval_months"] == 3  # yellow 6 → 3


@pytest.mark.parametrize(("as_of", "hit", "year"), [
    (date(2020, 3, 1), True, 2020),    # 2020: 8000/2300/3000 — elevators
    (date(2021, 3, 1), False, 2021),   # 2021: 2000/1000/4000
    (date(2025, 3, 1), False, 2022),   # later years use 2022's list
    (date(2019, 3, 1), False, None),   # before the plan: no focus
])
def test_focus_category_by_year(as_of, hit, year):
    u = units_frame({"credit_code": "A"})
    eq = equipment_frame({"unit_credit_code": "A", "category_code": "3110"})
    f = run(u, eq, as_of=as_of)
    assert ("focus_category" in boosts_of(f, "A")) is hit
    if hit:
        assert f"持有本年度重点治理领域设备（{year}年：电梯）" in f.loc["A", "reasons"]


def test_focus_category_later_years_use_last_list():
    u = units_frame({"credit_code": "A"}, {"credit_code": "B"})
    eq = equipment_frame({"unit_credit_code": "A", "category_code": "5110"},
                         {"unit_credit_code": "B", "category_code": "9100"})
    f = run(u, eq, as_of=date(2025, 3, 1))
    assert "（2022年：场（厂）内专用机动车辆）" in f.loc["A", "reasons"]
    assert "（客运索道，亦为2022年重点治理领域）" in f.loc["B", "reasons"]  # key and focus


def test_focus_cylinders_by_class_code():
    u = units_frame({"credit_code": "A"}, {"credit_code": "B"})
    eq = equipment_frame({"unit_credit_code": "A", "category_code": "2310"},
                         {"unit_credit_code": "B", "category_code": "2110"})
    no_key = FrequencyRules.model_validate({"key_equipment": {"steps": 0}})
    f = run(u, eq, as_of=date(2020, 6, 1), rules=no_key)
    assert "focus_category" in boosts_of(f, "A")  # 气瓶 2300 is a 2020 focus
    assert "focus_category" not in boosts_of(f, "B")  # a fixed vessel was not in 2020
    # with key equipment on (the default) the cylinder is that fact, the focus noted
    g = run(u, eq, as_of=date(2020, 6, 1))
    assert boosts_of(g, "A") == ["key_equipment"]
    assert "（气瓶，亦为2020年重点治理领域）" in g.loc["A", "reasons"]


# --------------------------------------------------------------------------- combining

def test_boosts_add_and_stop_at_last_rung():
    u = units_frame({"credit_code": "A", "level": "blue", "blacklisted": True},
                    {"credit_code": "R", "level": "red", "blacklisted": True})
    eq = equipment_frame(
        {"unit_credit_code": "A", "category_code": "3110", "venue_id": "V1", "overdue": True})
    f = run(u, eq, as_of=date(2020, 6, 1))
    # crowded (the elevator in it is that fact, not a second one), blacklisted, overdue,
    # focus (2020 elevators: the category, a fact apart from where it stands)
    assert boosts_of(f, "A") == ["crowded_venue", "blacklisted", "overdue_inspection",
                                 "focus_category"]
    assert f.loc["A", "boost_steps"] == 4
    assert f.loc["A", "interval_months"] == 1  # 12 → 6 → 3 → 2 → 1
    assert f.loc["A", "reasons"].endswith("共加频4档，检查间隔由12个月缩短为1个月")
    u2 = units_frame({"credit_code": "B", "blacklisted": True})
    eq2 = equipment_frame({"unit_credit_code": "B", "category_code": "3110", "venue_id": "V1",
                           "overdue": True},
                          {"unit_credit_code": "B", "category_code": "9100"})
    g = run(u2, eq2, as_of=date(2020, 6, 1))
    assert g.loc["B", "boost_steps"] == 5 and g.loc["B", "interval_months"] == 1  # no further
    assert g.loc["B", "reasons"].endswith("共加频5档，检查间隔由12个月缩短为1个月")
    assert f.loc["R", "interval_months"] == 1 and bool(f.loc["R", "boosted"])
    assert f.loc["R", "reasons"].endswith("已为最短检查间隔")


# --------------------------------------------------------------------------- one fact, one boost

def test_elevator_in_a_crowded_venue_is_one_fact_boosted_once():
    """Henan plan 二（二） names crowded venues and key equipment; an elevator is key equipment
    only inside a crowded venue, so the venue is the one fact: one step, said once."""
    u = units_frame({"credit_code": "MALL"}, {"credit_code": "TWO"})
    eq = equipment_frame(
        {"unit_credit_code": "MALL", "category_code": "3110", "venue_id": "V1"},
        {"unit_credit_code": "MALL", "category_code": "3120", "venue_id": "V1"},
        {"unit_credit_code": "TWO", "category_code": "3110", "venue_id": "V1"},
        {"unit_credit_code": "TWO", "category_code": "3110", "venue_id": "V2"})
    f = run(u, eq)  # 2021: elevators are not a focus category
    for code in ("MALL", "TWO"):
        assert boosts_of(f, code) == ["crowded_venue"]
        assert f.loc[code, "boost_steps"] == 1 and f.loc[code, "interval_months"] == 6
        reasons = f.loc[code, "reasons"]
        assert reasons.count("人员密集场所") == 1 and reasons.count("电梯") == 1
        assert "重点特种设备" in reasons and "持有重点特种设备" not in reasons
    two = f.loc["TWO", "reasons"]
    assert "在用设备位于人员密集场所（医院、商场；其中电梯为重点特种设备）" in two
    # two rules naming the fact: it counts once, by the larger step
    key2 = FrequencyRules(key_equipment=KeyEquipmentBoost(steps=2))
    g = run(u, eq, rules=key2)
    assert boosts_of(g, "MALL") == ["crowded_venue"] and g.loc["MALL", "boost_steps"] == 2
    # the venue rule switched off: the elevator is key equipment of its own, still once
    off = FrequencyRules.model_validate({"crowded_venue": {"steps": 0}})
    h = run(u, eq, rules=off)
    assert boosts_of(h, "MALL") == ["key_equipment"] and h.loc["MALL", "boost_steps"] == 1
    assert "持有重点特种设备（人员密集场所电梯）" in h.loc["MALL", "reasons"]


def test_a_key_category_in_the_focus_year_is_one_fact():
    """A large amusement ride in 2022 is key equipment and the year's focus: one fact (the
    category held), named once; the focus fact counts only the other focus categories."""
    u = units_frame({"credit_code": "RIDE"}, {"credit_code": "BOTH"}, {"credit_code": "GAS"},
                    {"credit_code": "CAR"})
    eq = equipment_frame(
        {"unit_credit_code": "RIDE", "category_code": "6100"},
        {"unit_credit_code": "BOTH", "category_code": "6100"},
        {"unit_credit_code": "BOTH", "category_code": "5110"},
        {"unit_credit_code": "GAS", "category_code": "2310"},
        {"unit_credit_code": "CAR", "category_code": "5110"})
    f = run(u, eq, as_of=date(2022, 6, 30))
    assert boosts_of(f, "RIDE") == ["key_equipment"] and f.loc["RIDE", "boost_steps"] == 1
    assert "持有重点特种设备（大型游乐设施，亦为2022年重点治理领域）" in f.loc["RIDE", "reasons"]
    assert "持有本年度重点治理领域设备" not in f.loc["RIDE", "reasons"]
    assert f.loc["RIDE", "reasons"].count("大型游乐设施") == 1
    # a ride and a forklift: two facts, the forklift alone under the focus
    assert boosts_of(f, "BOTH") == ["key_equipment", "focus_category"]
    assert f.loc["BOTH", "boost_steps"] == 2
    assert "（2022年：场（厂）内专用机动车辆）" in f.loc["BOTH", "reasons"]
    assert boosts_of(f, "CAR") == ["focus_category"]
    # 2021's focus 压力容器 covers 气瓶: the cylinder is one fact
    g = run(u, eq, as_of=date(2021, 6, 30))
    assert boosts_of(g, "GAS") == ["key_equipment"] and g.loc["GAS", "boost_steps"] == 1
    assert "持有重点特种设备（气瓶，亦为2021年重点治理领域）" in g.loc["GAS", "reasons"]
    # the larger step of the two rules; key equipment off: the ride is the focus fact
    focus2 = FrequencyRules.model_validate({"focus_category": {"steps": 2}})
    assert run(u, eq, as_of=date(2022, 6, 30), rules=focus2).loc["RIDE", "boost_steps"] == 2
    no_key = FrequencyRules.model_validate({"key_equipment": {"steps": 0}})
    h = run(u, eq, as_of=date(2022, 6, 30), rules=no_key)
    assert boosts_of(h, "RIDE") == ["focus_category"]
    assert "（2022年：大型游乐设施）" in h.loc["RIDE", "reasons"]


def test_where_a_piece_stands_and_what_it_is_are_two_facts():
    """A ride in an amusement park venue: the venue (where it stands) and key equipment (what
    it is, key anywhere) are two facts; an elevator in a mall in 2020: the venue and the
    year's focus on elevators. Each fact once in ``boosts`` and in the reasons."""
    u = units_frame({"credit_code": "PARK"}, {"credit_code": "MALL"})
    eq = equipment_frame(
        {"unit_credit_code": "PARK", "category_code": "6100", "venue_id": "V1"},
        {"unit_credit_code": "PARK", "category_code": "6100", "venue_id": "V1"},
        {"unit_credit_code": "MALL", "category_code": "3110", "venue_id": "V1"})
    f = run(u, eq, as_of=date(2021, 6, 30))
    assert boosts_of(f, "PARK") == ["crowded_venue", "key_equipment"]
    g = run(u, eq, as_of=date(2020, 6, 30))
    assert boosts_of(g, "MALL") == ["crowded_venue", "focus_category"]
    assert g.loc["MALL", "boost_steps"] == 2
    for frame in (f, g):
        for code in frame.index:
            facts = boosts_of(frame, code)
            assert len(facts) == len(set(facts)) == frame.loc[code, "boost_steps"]


def test_late_rectification_is_its_own_fact():
    """A 一般 hazard past its deadline is an overdue rectification (Henan plan 二（一）闭环):
    its own fact with its count, not a serious hazard; 重大 ones are not counted here."""
    u = units_frame({"credit_code": "LATE"}, {"credit_code": "MAJOR"}, {"credit_code": "OK"})
    eq = equipment_frame({"unit_credit_code": "LATE", "category_code": "5110"},
                         {"unit_credit_code": "LATE", "category_code": "5110"},
                         {"unit_credit_code": "MAJOR", "category_code": "5110"},
                         {"unit_credit_code": "OK", "category_code": "5110"})
    hz = hazards_frame(
        {"registration_code": "R0", "deadline": "2021-03-01"},
        {"registration_code": "R0", "deadline": "2021-04-01"},
        {"registration_code": "R1", "deadline": "2021-05-01"},
        {"registration_code": "R1", "deadline": "2021-05-01", "status": "已销号"},
        {"registration_code": "R2", "deadline": "2021-05-01", "level": "重大"},
        {"registration_code": "R3", "deadline": "2021-07-01"},   # not yet due
        {"registration_code": "R9", "deadline": "2021-01-02"})   # no such piece
    f = run(u, eq, hazards=hz, as_of=date(2019, 1, 1))
    assert boosts_of(f, "LATE") == []  # found after as_of: ignored
    f = run(u, eq, hazards=hz)
    assert boosts_of(f, "LATE") == ["late_rectification"]
    assert "有逾期未整改的一般隐患（3项）" in f.loc["LATE", "reasons"]
    assert f.loc["LATE", "interval_months"] == 6
    assert boosts_of(f, "MAJOR") == [] and boosts_of(f, "OK") == []
    assert boosts_of(run(u, eq), "LATE") == []  # no hazards given: not evaluated
    off = FrequencyRules.model_validate({"late_rectification": {"steps": 0}})
    assert boosts_of(run(u, eq, hazards=hz, rules=off), "LATE") == []
    assert FrequencyRules().late_rectification.basis.startswith("豫市监办〔2021〕55号 二（一）")


def test_steps_are_configurable_and_zero_switches_off():
    rules = FrequencyRules.model_validate(
        {"blacklisted": {"steps": 2}, "overdue_inspection": {"steps": 0}})
    assert rules.blacklisted.reason == "列入特种设备安全不良记录黑名单"  # default kept
    u = units_frame({"credit_code": "A", "blacklisted": True})
    eq = equipment_frame({"unit_credit_code": "A", "category_code": "4100", "overdue": True})
    f = run(u, eq, rules=rules, as_of=date(2019, 1, 1))
    assert boosts_of(f, "A") == ["blacklisted"]
    assert f.loc["A", "interval_months"] == 3  # 12 → 6 → 3


def test_boosted_units_layer():
    u = units_frame({"credit_code": "A", "blacklisted": True}, {"credit_code": "B"})
    f = run(u)
    layer = boosted_units(f)
    assert layer["credit_code"].tolist() == ["A"]
    assert layer.crs.to_epsg() == 4326


# --------------------------------------------------------------------------- due dates

def test_next_due_month_end_never_checked_and_late():
    u = units_frame({"credit_code": "A", "level": "red"}, {"credit_code": "B", "level": "orange"},
                    {"credit_code": "C"}, {"credit_code": "D", "level": "yellow"})
    checks = checks_frame(("A", "2021-05-31"), ("A", "2021-01-31"), ("B", "2021-01-15"),
                          ("D", "2021-03-31"), ("D", "2021-07-01"), ("ZZ", "2021-06-01"))
    f = run(u, checks=checks)
    assert f.loc["A", "last_check_on"] == pd.Timestamp("2021-05-31")
    assert f.loc["A", "next_due"] == pd.Timestamp("2021-06-30")  # +1 month, clipped
    assert f.loc["A", "due_in_days"] == 0 and not f.loc["A", "check_overdue"]
    assert f.loc["B", "next_due"] == pd.Timestamp("2021-04-15")
    assert f.loc["B", "due_in_days"] == -76 and f.loc["B", "check_overdue"]
    assert pd.isna(f.loc["C", "last_check_on"])  # never checked: due now
    assert f.loc["C", "next_due"] == pd.Timestamp(AS_OF) and f.loc["C", "due_in_days"] == 0
    assert not f.loc["C", "check_overdue"]
    # the check after as_of is ignored
    assert f.loc["D", "last_check_on"] == pd.Timestamp("2021-03-31")
    assert f.loc["D", "next_due"] == pd.Timestamp("2021-09-30")
    assert f.loc["D", "due_in_days"] == 92


def test_next_due_uses_boosted_interval():
    u = units_frame({"credit_code": "A", "blacklisted": True})
    f = run(u, checks=checks_frame(("A", "2021-02-28")))
    assert f.loc["A", "interval_months"] == 6
    assert f.loc["A", "next_due"] == pd.Timestamp("2021-08-28")


# --------------------------------------------------------------------------- shapes

def test_output_columns_dtypes_geometry_and_unlocated_units():
    u = units_frame({"credit_code": "B", "lon": None, "lat": None}, {"credit_code": "A"})
    u.loc[0, "county_adcode"] = pd.NA
    f = inspection_frequency(u, equipment_frame(), checks_frame(), VENUES, NO_HOT, NO_WIDE,
                             AS_OF, FrequencyRules())
    assert f["credit_code"].tolist() == ["A", "B"]  # sorted, none dropped
    assert f.crs.to_epsg() == 4326
    assert f.geometry.iloc[1].is_empty and not f.geometry.iloc[0].is_empty
    expected = {"credit_code": "string", "level": "string", "base_interval_months": "Int64",
                "boost_steps": "Int64", "interval_months": "Int64",
                "checks_per_year": "float64", "boosts": "string", "reasons": "string",
                "last_check_on": "datetime64[s]", "next_due": "datetime64[s]",
                "due_in_days": "Int64", "check_overdue": "boolean", "boosted": "boolean"}
    for col, dtype in expected.items():
        assert str(f[col].dtype) == dtype, col


def test_empty_inputs():
    empty_units = units_frame({"credit_code": "A"}).iloc[:0]
    f = inspection_frequency(empty_units, equipment_frame(), checks_frame(), VENUES.iloc[:0],
                             NO_HOT, NO_WIDE, AS_OF, FrequencyRules())
    assert f.empty and "interval_months" in f and f.crs.to_epsg() == 4326
    assert boosted_units(f).empty
    # units without any equipment, no venues/hotspots/widespread/checks at all
    g = run(units_frame({"credit_code": "A"}), venues=VENUES.iloc[:0])
    assert g.loc["A", "interval_months"] == 12


def test_equipment_of_unknown_unit_is_ignored():
    u = units_frame({"credit_code": "A"})
    eq = equipment_frame({"unit_credit_code": "GHOST", "category_code": "9100"},
                         {"unit_credit_code": None, "category_code": "9100"})
    f = run(u, eq)
    assert boosts_of(f, "A") == []


def test_join_labels_sorted_distinct_and_large_vocabulary():
    out = join_labels(np.array([0, 0, 0, 2]), np.array(["乙", "甲", "乙", None], dtype=object), 3)
    assert out[0] == "、".join(sorted(["甲", "乙"]))
    words = np.array([f"w{i:03d}" for i in range(70)], dtype=object)
    big = join_labels(np.zeros(70, dtype=np.int64), words[::-1], 1)
    assert big[0] == "、".join(words)


# --------------------------------------------------------------------------- rules

def test_rules_defaults_and_boost_ids():
    r = FrequencyRules()
    assert r.ladder == (12, 6, 3, 2, 1)
    assert r.base_months.model_dump() == {"red": 1, "orange": 3, "yellow": 6, "blue": 12,
                                          "unlevelled": 12}
    assert r.focus_category.by_year[2021] == ("2000", "1000", "4000")
    assert all(getattr(r, b).steps == 1 for b in BOOSTS)


@pytest.mark.parametrize("bad", [
    {"ladder": [12, 6, 6, 1]},
    {"ladder": [1, 3, 6, 12]},
    {"ladder": []},
    {"ladder": [12, 6, 0]},
    {"base_months": {"orange": 4}},
    {"base_months": {"red": 6, "orange": 3}},
    {"blacklisted": {"steps": -1}},
    {"key_equipment": {"anywhere": ["9999"]}},
    {"focus_category": {"by_year": {"1900": ["3000"]}}},
    {"hotspot": {"reason": ""}},
    {"unknown": 1},
])
def test_rules_refuse_nonsense(bad):
    with pytest.raises(ValidationError):
        FrequencyRules.model_validate(bad)


def test_rules_from_toml_like_dict():
    r = FrequencyRules.model_validate({"focus_category": {"by_year": {"2023": ["3000"]}}})
    assert r.focus_category.codes_for(2024) == (2023, ("3000",))
    assert r.focus_category.codes_for(2022) == (None, ())
    assert isinstance(FrequencyRules().base_months, BaseIntervals)
    assert FocusBoost().codes_for(2020) == (2020, ("8000", "2300", "3000"))


def test_many_units_one_row_each():
    """The benchmark's random units and equipment, small: one row per unit (its speed at 60k
    units and 200k pieces: ``python -m benchmarks.kernels``)."""
    f = inspection_frequency(*frequency_inputs(600, 2_000), AS_OF)
    assert len(f) == 600


# --------------------------------------------------------------------------- scopes

@pytest.mark.parametrize(("province", "as_of", "hit"), [
    ("610000", date(2022, 6, 30), True),    # Shaanxi in the plan's years
    ("610000", date(2026, 6, 30), False),   # Shaanxi after the plan
    ("610000", date(2019, 6, 30), False),   # Shaanxi before it
    ("410000", date(2022, 6, 30), False),   # Henan: never Shaanxi's focus
    ("410000", date(2026, 6, 30), False),
])
def test_the_focus_categories_are_shaanxis_for_2020_to_2022(province, as_of, hit):
    u = units_frame({"credit_code": "A", "province_adcode": province})
    eq = equipment_frame({"unit_credit_code": "A", "category_code": "5110"})  # 2022: 场车
    f = run(u, eq, as_of=as_of, scoped=True)
    assert ("focus_category" in boosts_of(f, "A")) is hit
    if hit:
        assert "2022年" in f.loc["A", "reasons"]


def test_the_focus_scope_is_per_unit():
    u = units_frame({"credit_code": "SX", "province_adcode": "610000"},
                    {"credit_code": "HN", "province_adcode": "410000"})
    eq = equipment_frame({"unit_credit_code": "SX", "category_code": "5110"},
                         {"unit_credit_code": "HN", "category_code": "5110",
                          "registration_code": "R2"})
    f = run(u, eq, as_of=date(2022, 6, 30), scoped=True)
    assert "focus_category" in boosts_of(f, "SX")
    assert "focus_category" not in boosts_of(f, "HN")


# --------------------------------------------------------------------------- capacity

def capped_run(units, capacity, **kw):
    equipment = kw.pop("equipment", None)
    equipment = equipment if equipment is not None else equipment_frame()
    out = inspection_frequency(units, equipment, kw.pop("checks", checks_frame()), VENUES,
                               NO_HOT, NO_WIDE, AS_OF, kw.pop("rules", FrequencyRules()),
                               capacity=pd.Series(capacity, dtype="float64"))
    return out.set_index("credit_code", drop=False)


def blacklisted_units():
    """Three blacklisted units in 410102 (one boost each: 12 → 6 months, +1 check a year):
    red A, yellow B (6 → 3 months, +2), blue C (12 → 6, +1); and blue D unboosted."""
    return units_frame({"credit_code": "A", "level": "red", "blacklisted": True},
                       {"credit_code": "B", "level": "yellow", "blacklisted": True},
                       {"credit_code": "C", "blacklisted": True}, {"credit_code": "D"})


def test_priority_riskiest_first_within_county():
    u = units_frame({"credit_code": "A"}, {"credit_code": "B", "level": "red"},
                    {"credit_code": "C", "blacklisted": True}, {"credit_code": "D"},
                    {"credit_code": "E", "level": "red", "county_adcode": "410103"})
    u["D_max"] = [10.0, 5.0, 1.0, 40.0, 1.0]
    f = run(u)
    # red first, then the boosted blue, then blue by D (D before A)
    assert f.loc[["B", "C", "D", "A"], "priority"].tolist() == [1, 2, 3, 4]
    assert f.loc["E", "priority"] == 1  # its own county
    assert not f["interval_capped"].any()


def test_boosts_shorten_only_within_capacity_in_priority_order():
    u = blacklisted_units()
    # base: A 12, B 2, C 1, D 1 = 16 a year; A's boost +0 (already at 1 month), B +2, C +1
    f = capped_run(u, {"410102": 18})
    assert f.loc["B", "interval_months"] == 3 and not f.loc["B", "interval_capped"]
    assert f.loc["C", "interval_months"] == 12 and f.loc["C", "interval_capped"]
    assert "检查力量已满，优先安排而未缩短间隔（仍为12个月）" in f.loc["C", "reasons"]
    assert "列入特种设备安全不良记录黑名单" in f.loc["C", "reasons"]  # the boost is kept
    assert f.loc["C", "boosted"] and boosts_of(f, "C") == ["blacklisted"]
    assert f["checks_per_year"].sum() == 18
    assert f.loc["C", "priority"] < f.loc["D", "priority"]  # still ranked ahead
    roomy = capped_run(u, {"410102": 19})
    assert not roomy["interval_capped"].any() and roomy["checks_per_year"].sum() == 19


def test_a_county_over_capacity_at_base_keeps_base_intervals():
    f = capped_run(blacklisted_units(), {"410102": 10})
    assert f["interval_months"].tolist() == [1, 6, 12, 12]
    assert f.loc[["B", "C"], "interval_capped"].all()
    # no capacity known for the county (NaN or absent): not limited
    for cap in ({"410102": np.nan}, {"410199": 0}):
        assert not capped_run(blacklisted_units(), cap)["interval_capped"].any()


def test_never_checked_units_spread_over_their_interval_riskiest_first():
    rows = [{"credit_code": f"B{i:02d}", "level": "blue"} for i in range(12)]
    rows += [{"credit_code": f"R{i}", "level": "red"} for i in range(3)]
    u = units_frame(*rows)
    u["D_max"] = [float(i) for i in range(12)] + [1.0, 2.0, 3.0]
    f = run(u, checks=checks_frame(("B00", "2021-06-01")))
    red = f.loc[["R2", "R1", "R0"], "due_in_days"].tolist()
    assert red == [0, 10, 20]  # riskiest red first, all within the month
    never = f[f["level"].eq("blue") & f["last_check_on"].isna()].sort_values("priority")
    days = never["due_in_days"].tolist()
    assert days == sorted(days) and days[0] == 0 and days[-1] < 365  # riskiest blue first
    months = pd.Series(days) // 31
    assert months.value_counts().max() <= 2  # about one a month, not all today
    assert f.loc["B00", "next_due"] == pd.Timestamp("2022-06-01")  # checked: as before
    flat = run(u, rules=FrequencyRules(spread_first_checks=False))
    assert (flat["due_in_days"] == 0).all()


def test_schedule_from_the_unit_facts_of_parts_joined():
    """Each unit's facts taken from a part holding its pieces (as the Dask build's
    partitions keep them) and joined give the whole's schedule: venues, key and focus
    categories, overdue pieces, late rectifications and the widespread hotspot fact."""
    u = units_frame({"credit_code": "A"}, {"credit_code": "B", "blacklisted": True},
                    {"credit_code": "C", "county_adcode": "410105"}, {"credit_code": "D"})
    eq = equipment_frame(
        {"unit_credit_code": "A", "category_code": "3110", "venue_id": "V1"},
        {"unit_credit_code": "A", "category_code": "4100", "overdue": True},
        {"unit_credit_code": "B", "category_code": "2100"},
        {"unit_credit_code": "C", "category_code": "4100", "county_adcode": None},
        {"unit_credit_code": "D", "category_code": "9100"},
        {"unit_credit_code": "D", "category_code": "5110", "in_use": False})
    hz = hazards_frame({"registration_code": "R4", "deadline": "2021-03-01"})
    wide = pd.DataFrame({"county_adcode": pd.Series(["410102", "410105"], dtype="string"),
                         "top_category": pd.Series(["4000", "4000"], dtype="string"),
                         "widespread": pd.array([True, True], dtype="boolean")})
    hot = pd.DataFrame({"credit_code": pd.Series(["B"], dtype="string"),
                        "regional": pd.array([False], dtype="boolean")})
    rules = FrequencyRules().model_copy(update={
        "focus_category": FrequencyRules().focus_category.model_copy(update=NATIONAL)})
    owner = eq["unit_credit_code"]
    parts = [UnitFacts.of(u[u["credit_code"].isin(codes)], eq[owner.isin(codes).to_numpy()],
                          VENUES, AS_OF, rules, hazards=hz)
             for codes in (["C", "D"], ["A", "B"])]
    got = inspection_frequency_from(UnitFacts.joined(parts), u, checks_frame(), hot, wide,
                                    AS_OF, rules)
    want = inspection_frequency(u, eq, checks_frame(), VENUES, hot, wide, AS_OF, rules,
                                hazards=hz)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    f = want.set_index("credit_code")
    assert {"crowded_venue", "overdue_inspection", "hotspot"} <= set(json.loads(f.loc["A",
                                                                                "boosts"]))
    assert "hotspot" in json.loads(f.loc["C", "boosts"])  # its piece stands in 410105
    assert "late_rectification" in json.loads(f.loc["D", "boosts"])


def test_unit_facts_keep_only_the_units_a_fact_names():
    """A unit none of whose pieces sets a fact is left out of the facts (it reads as none
    set): what a Dask partition sends grows with the units a fact names, not all units."""
    u = units_frame({"credit_code": "A"}, {"credit_code": "B", "blacklisted": True})
    eq = equipment_frame({"unit_credit_code": "A", "category_code": "2100", "overdue": True},
                         {"unit_credit_code": "B", "category_code": "2100"})
    both = UnitFacts.of(u, eq, VENUES, AS_OF, FrequencyRules())
    assert both.facts["credit_code"].tolist() == ["A"]
    f = inspection_frequency_from(both, u, checks_frame(),
                                  NO_HOT, NO_WIDE, AS_OF).set_index("credit_code")
    assert json.loads(f.loc["B", "boosts"]) == ["blacklisted"]
    assert json.loads(f.loc["A", "boosts"]) == ["overdue_inspection"]
