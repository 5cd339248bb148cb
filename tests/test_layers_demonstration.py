"""Demonstration pilot enterprises (示范试点企业): small frames, answers checked by hand."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from layers.demonstration import (
    CHOSEN_COLUMNS,
    COVERAGE_COLUMNS,
    DemonstrationRules,
    demonstration,
    passed_check,
    passed_checks,
)

AS_OF = date(2021, 6, 30)
CITY = "410100"


def units_frame(*rows: dict) -> pd.DataFrame:
    """Graded units that meet every criterion unless a row says otherwise."""
    base = {"industry": "C", "lon": 113.6, "lat": 34.7, "city_adcode": CITY,
            "county_adcode": "410102", "accidents_3y": 0, "open_hazards": 0, "overdue_count": 0,
            "five_have_score": 5, "blacklisted": False}
    frame = pd.DataFrame([{**base, "name": f"单位{r['credit_code']}", **r} for r in rows])
    for col in ("credit_code", "name", "industry", "city_adcode", "county_adcode"):
        frame[col] = frame[col].astype("string")
    for col in ("accidents_3y", "five_have_score"):
        frame[col] = frame[col].astype("Int64")
    frame["blacklisted"] = frame["blacklisted"].astype("boolean")
    for col in ("lon", "lat"):
        frame[col] = frame[col].astype("float64")
    return frame


def equipment_frame(*rows: dict) -> pd.DataFrame:
    cols = ("registration_code", "unit_credit_code", "category_code", "top_category",
            "city_adcode", "county_adcode")
    if not rows:
        frame = pd.DataFrame({c: pd.Series(dtype="string") for c in cols})
        frame["in_use"] = pd.Series(dtype=bool)
        frame["insured"] = pd.Series(dtype="boolean")
        return frame
    base = {"city_adcode": CITY, "county_adcode": "410102", "in_use": True, "insured": None}
    frame = pd.DataFrame([{**base, "registration_code": f"R{i}", **r}
                          for i, r in enumerate(rows)])
    frame["top_category"] = frame["category_code"].str.slice(0, 1) + "000"
    for col in cols:
        frame[col] = frame[col].astype("string")
    frame["insured"] = frame["insured"].astype("boolean")
    return frame


def pieces(unit: str, n: int, code: str = "4100", **kw) -> list[dict]:
    return [{"unit_credit_code": unit, "category_code": code, **kw} for _ in range(n)]


def checks_frame(*rows: tuple[str, str, str]) -> pd.DataFrame:
    """(credit_code, checked_on, result)."""
    return pd.DataFrame({
        "check_id": pd.Series([f"C{i}" for i in range(len(rows))], dtype="string"),
        "credit_code": pd.Series([r[0] for r in rows], dtype="string"),
        "checked_on": pd.to_datetime(pd.Series([r[1] for r in rows], dtype=object)).astype(
            "datetime64[s]"),
        "officer_id": pd.Series(["O1"] * len(rows), dtype="string"),
        "result": pd.Series([r[2] for r in rows], dtype="string"),
    })


def run(units, equipment, checks=None, rules=None, as_of=AS_OF):
    return demonstration(units, equipment, checks if checks is not None else checks_frame(),
                         as_of, rules or DemonstrationRules())


def cover(coverage: pd.DataFrame, top: str = "4000", city: str = CITY) -> pd.Series:
    row = coverage[(coverage["city_adcode"] == city) & (coverage["top_category"] == top)]
    assert len(row) == 1
    return row.iloc[0]


# --------------------------------------------------------------------------- passing checks

@pytest.mark.parametrize(("result", "ok"), [
    ("合格", True), ("基本合格", True), ("检查通过", True), ("未发现问题", True), ("符合", True),
    ("不合格", False), ("未通过", False), ("检查不通过", False), ("发现隐患，责令整改", False),
    ("不符合", False), ("责令整改", False), ("立案调查", False),
    ("复查合格，原不合格项已整改", False),  # any fail word makes it not a clean pass
    (None, False), ("", False),
])
def test_passed_check_definition(result, ok):
    assert passed_check(pd.Series([result], dtype="string"), DemonstrationRules())[0] is (
        np.True_ if ok else np.False_)


def test_passed_checks_window_is_three_years_ending_at_as_of():
    u = units_frame({"credit_code": "A"}, {"credit_code": "B"})
    c = checks_frame(("A", "2021-06-30", "合格"),      # as_of itself: counts
                     ("A", "2018-07-01", "合格"),      # inside the window
                     ("A", "2018-06-30", "合格"),      # exactly 3 years back: out
                     ("A", "2021-07-01", "合格"),      # after as_of: out
                     ("A", "2020-01-01", "不合格"),    # failed: out
                     ("B", "2020-01-01", "未发现问题"), ("GHOST", "2020-01-01", "合格"))
    assert passed_checks(c, u, AS_OF, DemonstrationRules()).tolist() == [2, 1]
    assert passed_checks(c.iloc[:0], u, AS_OF, DemonstrationRules()).tolist() == [0, 0]


# --------------------------------------------------------------------------- criteria

@pytest.mark.parametrize(("field", "value", "label"), [
    ("accidents_3y", 1, "近三年发生过事故"),
    ("accidents_3y", None, "近三年事故数据缺失"),
    ("open_hazards", 2, "有未销号隐患"),
    ("open_hazards", np.nan, "隐患数据缺失"),
    ("overdue_count", 1, "逾期未检"),
    ("five_have_score", 4, "五有未达标"),
    ("five_have_score", None, "五有评分缺失"),
    ("blacklisted", True, "列入黑名单"),
    ("blacklisted", None, "黑名单状态不明"),
])
def test_each_criterion_fails_and_missing_data_says_so(field, value, label):
    u = units_frame({"credit_code": "GOOD"}, {"credit_code": "BAD", field: value})
    eq = equipment_frame(*pieces("GOOD", 1), *pieces("BAD", 5))
    chosen, coverage = run(u, eq)
    assert chosen["credit_code"].tolist() == ["GOOD"]  # BAD has more pieces but fails
    row = cover(coverage)
    assert (row["candidates"], row["qualified"], row["chosen"]) == (2, 1, 1)
    assert row["failed_counts"] == f"{label} 1家"


def test_elevators_insured_criterion():
    u = units_frame({"credit_code": "ALL"}, {"credit_code": "NONE"}, {"credit_code": "ONE_NO"},
                    {"credit_code": "UNKNOWN"}, {"credit_code": "IDLE_NO"})
    eq = equipment_frame(
        *pieces("ALL", 2, "3110", insured=True),
        *pieces("NONE", 1, "4100"),                              # no elevators: passes
        *pieces("ONE_NO", 1, "3110", insured=True), *pieces("ONE_NO", 1, "3110", insured=False),
        *pieces("UNKNOWN", 1, "3110", insured=True), *pieces("UNKNOWN", 1, "3110"),
        *pieces("IDLE_NO", 1, "3110", insured=True),
        *pieces("IDLE_NO", 1, "3110", insured=False, in_use=False))  # not in use: ignored
    chosen, coverage = run(u, eq)
    lifts = cover(coverage, "3000")
    assert lifts["candidates"] == 4 and lifts["qualified"] == 2
    assert lifts["failed_counts"] == "在用电梯未全部投保 1家；电梯投保情况不明 1家"
    assert set(chosen.loc[chosen["top_category"] == "3000", "credit_code"]) == {"ALL", "IDLE_NO"}
    crane = chosen[chosen["top_category"] == "4000"].iloc[0]
    assert crane["credit_code"] == "NONE"
    assert "无在用电梯（不涉及投保）" in crane["reasons"]


def test_switching_a_criterion_off():
    u = units_frame({"credit_code": "A", "five_have_score": 2})
    eq = equipment_frame(*pieces("A", 1))
    chosen, coverage = run(u, eq)
    assert chosen.empty and bool(cover(coverage)["gap"])
    chosen, coverage = run(u, eq, rules=DemonstrationRules(require_five_have=False))
    assert chosen["credit_code"].tolist() == ["A"]
    assert "五有" not in chosen.iloc[0]["reasons"]
    assert cover(coverage)["failed_counts"] == "无"


def test_five_have_min_configurable():
    u = units_frame({"credit_code": "A", "five_have_score": 4})
    eq = equipment_frame(*pieces("A", 1))
    chosen, _ = run(u, eq, rules=DemonstrationRules(five_have_min=4))
    assert chosen["credit_code"].tolist() == ["A"]
    assert "五有标准达标（不低于4分）" in chosen.iloc[0]["reasons"]


# --------------------------------------------------------------------------- ranking

def test_rank_by_equipment_then_passed_checks_then_credit_code():
    u = units_frame({"credit_code": "A"}, {"credit_code": "B"}, {"credit_code": "C"},
                    {"credit_code": "D"})
    eq = equipment_frame(*pieces("A", 2), *pieces("B", 3), *pieces("C", 3), *pieces("D", 3))
    c = checks_frame(("C", "2021-01-01", "合格"), ("C", "2020-01-01", "合格"),
                     ("B", "2021-01-01", "合格"), ("D", "2021-01-01", "合格"))
    chosen, _ = run(u, eq, c)
    # B, C, D hold 3 pieces each; C passed 2 checks; B and D 1 each → B before D by code
    assert chosen["credit_code"].tolist() == ["C", "B"]
    assert chosen["rank"].tolist() == [1, 2]
    assert chosen["equipment_in_category"].tolist() == [3, 3]
    assert chosen["passed_checks_3y"].tolist() == [2, 1]
    first = chosen.iloc[0]["reasons"]
    assert "本市该类在用设备3台、近3年监督检查通过2次，在4家符合条件的企业中居第1位" in first
    assert "无其他行业的符合条件企业，按排序递补" in chosen.iloc[1]["reasons"]


def test_second_pick_prefers_another_industry():
    u = units_frame({"credit_code": "A", "industry": "C"}, {"credit_code": "B", "industry": "C"},
                    {"credit_code": "E", "industry": "E"}, {"credit_code": "N", "industry": None})
    eq = equipment_frame(*pieces("A", 5), *pieces("B", 4), *pieces("N", 3), *pieces("E", 1))
    chosen, coverage = run(u, eq)
    assert chosen["credit_code"].tolist() == ["A", "E"]
    assert "与第1家行业不同，优先选取" in chosen.iloc[1]["reasons"]
    assert "在4家符合条件的企业中居第4位" in chosen.iloc[1]["reasons"]
    assert cover(coverage)["chosen"] == 2


def test_unknown_industry_is_not_a_different_industry():
    u = units_frame({"credit_code": "A", "industry": "C"}, {"credit_code": "B", "industry": "C"},
                    {"credit_code": "N", "industry": None})
    eq = equipment_frame(*pieces("A", 5), *pieces("B", 1), *pieces("N", 3))
    chosen, _ = run(u, eq)
    assert chosen["credit_code"].tolist() == ["A", "N"]  # next best, not "another industry"
    assert "按排序递补" in chosen.iloc[1]["reasons"]


def test_max_one_per_city_category():
    u = units_frame({"credit_code": "A"}, {"credit_code": "B", "industry": "E"})
    eq = equipment_frame(*pieces("A", 2), *pieces("B", 1))
    chosen, coverage = run(u, eq, rules=DemonstrationRules(max_per_city_category=1))
    assert chosen["credit_code"].tolist() == ["A"]
    assert cover(coverage)["chosen"] == 1


# --------------------------------------------------------------------------- grouping

def test_cities_categories_and_candidates():
    u = units_frame({"credit_code": "A"}, {"credit_code": "B", "city_adcode": "410300"},
                    {"credit_code": "X", "city_adcode": None})
    eq = equipment_frame(
        *pieces("A", 2, "4100"), *pieces("A", 1, "3110", insured=True),
        *pieces("A", 1, "4100", city_adcode="410300"),      # A also works in another city
        *pieces("B", 1, "4100", city_adcode=None),          # piece without city: its unit's
        *pieces("X", 1, "4100", city_adcode=None),          # nowhere: left out
        *pieces("A", 1, "F100"), *pieces("A", 1, "7100"),   # excluded categories
        *pieces("B", 1, "9100", in_use=False))              # not in use: no candidate
    chosen, coverage = run(u, eq)
    keys = list(zip(coverage["city_adcode"], coverage["top_category"], strict=True))
    assert keys == [(CITY, "3000"), (CITY, "4000"), ("410300", "4000")]
    assert cover(coverage, "4000", "410300")["candidates"] == 2
    assert cover(coverage, "4000")["candidates"] == 1
    assert coverage["category_name"].tolist() == ["电梯", "起重机械", "起重机械"]
    picked = chosen[chosen["city_adcode"] == "410300"]
    assert picked["credit_code"].tolist() == ["A", "B"]  # 1 piece each; A before B by code
    assert picked["equipment_in_category"].tolist() == [1, 1]


def test_gap_is_a_finding():
    u = units_frame({"credit_code": "A", "blacklisted": True, "open_hazards": 3},
                    {"credit_code": "B", "open_hazards": 1, "five_have_score": None})
    eq = equipment_frame(*pieces("A", 1, "6100"), *pieces("B", 1, "6100"))
    chosen, coverage = run(u, eq)
    assert chosen.empty
    row = cover(coverage, "6000")
    assert bool(row["gap"]) and row["qualified"] == 0 and row["chosen"] == 0
    assert row["failed_counts"] == "有未销号隐患 2家；五有评分缺失 1家；列入黑名单 1家"


# --------------------------------------------------------------------------- shapes

def test_columns_dtypes_and_geometry():
    u = units_frame({"credit_code": "A", "lon": None, "lat": None}, {"credit_code": "B"})
    eq = equipment_frame(*pieces("A", 2), *pieces("B", 1))
    chosen, coverage = run(u, eq)
    assert list(chosen.columns) == [c for c, _ in CHOSEN_COLUMNS] + ["geometry"]
    assert list(coverage.columns) == [c for c, _ in COVERAGE_COLUMNS]
    for frame, spec in ((chosen, CHOSEN_COLUMNS), (coverage, COVERAGE_COLUMNS)):
        for col, dtype in spec:
            assert str(frame[col].dtype) == dtype, col
    assert chosen.crs.to_epsg() == 4326
    assert chosen.geometry.iloc[0].is_empty  # A has no location but is kept
    assert chosen.geometry.iloc[1].x == pytest.approx(113.6)


def test_empty_inputs():
    u = units_frame({"credit_code": "A"})
    for units, eq in ((u.iloc[:0], equipment_frame()), (u, equipment_frame()),
                      (u.iloc[:0], equipment_frame(*pieces("A", 1)))):
        chosen, coverage = run(units, eq)
        assert chosen.empty and coverage.empty
        assert list(coverage.columns) == [c for c, _ in COVERAGE_COLUMNS]
        assert "geometry" in chosen and chosen.crs.to_epsg() == 4326


def test_units_without_equipment_and_missing_columns():
    u = units_frame({"credit_code": "A"}, {"credit_code": "IDLE"}).drop(
        columns=["five_have_score"])
    eq = equipment_frame(*pieces("A", 1))
    chosen, coverage = run(u, eq)
    assert chosen.empty  # no score column: every candidate misses the 五有 data
    assert cover(coverage)["candidates"] == 1
    assert cover(coverage)["failed_counts"] == "五有评分缺失 1家"


# --------------------------------------------------------------------------- rules

def test_rules_defaults():
    r = DemonstrationRules()
    assert r.max_per_city_category == 2 and r.five_have_min == 5
    assert r.checks_window_years == 3
    assert r.exclude_categories == ("7000", "F000")


@pytest.mark.parametrize("bad", [
    {"max_per_city_category": 0}, {"max_per_city_category": 3}, {"five_have_min": 6},
    {"checks_window_years": 0}, {"pass_words": []}, {"pass_words": [" "]},
    {"exclude_categories": ["3110"]}, {"require_everything": True},
])
def test_rules_refuse_nonsense(bad):
    with pytest.raises(ValidationError):
        DemonstrationRules.model_validate(bad)
