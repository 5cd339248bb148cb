"""Demonstration pilot enterprises (示范试点企业): small frames, answers checked by hand."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from data.credit_code import is_valid, with_check_character
from layers.demonstration import (
    CHOSEN_COLUMNS,
    COVERAGE_COLUMNS,
    DemonstrationRules,
    UnitPieces,
    demonstration,
    demonstration_from,
    eligible,
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
    u = units_frame({"credit_code": "9A"}, {"credit_code": "9B"})
    c = checks_frame(("9A", "2021-06-30", "合格"),      # as_of itself: counts
                     ("9A", "2018-07-01", "合格"),      # inside the window
                     ("9A", "2018-06-30", "合格"),      # exactly 3 years back: out
                     ("9A", "2021-07-01", "合格"),      # after as_of: out
                     ("9A", "2020-01-01", "不合格"),    # failed: out
                     ("9B", "2020-01-01", "未发现问题"), ("9GHOST", "2020-01-01", "合格"))
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
    u = units_frame({"credit_code": "9GOOD"}, {"credit_code": "9BAD", field: value})
    eq = equipment_frame(*pieces("9GOOD", 1), *pieces("9BAD", 5))
    chosen, coverage = run(u, eq)
    assert chosen["credit_code"].tolist() == ["9GOOD"]  # BAD has more pieces but fails
    row = cover(coverage)
    assert (row["candidates"], row["qualified"], row["chosen"]) == (2, 1, 1)
    assert row["failed_counts"] == f"{label} 1家"


def test_elevators_insured_criterion():
    u = units_frame({"credit_code": "9ALL"}, {"credit_code": "9NONE"}, {"credit_code": "9ONE_NO"},
                    {"credit_code": "9UNKNOWN"}, {"credit_code": "9IDLE_NO"})
    eq = equipment_frame(
        *pieces("9ALL", 2, "3110", insured=True),
        *pieces("9NONE", 1, "4100"),                              # no elevators: passes
        *pieces("9ONE_NO", 1, "3110", insured=True), *pieces("9ONE_NO", 1, "3110", insured=False),
        *pieces("9UNKNOWN", 1, "3110", insured=True), *pieces("9UNKNOWN", 1, "3110"),
        *pieces("9IDLE_NO", 1, "3110", insured=True),
        *pieces("9IDLE_NO", 1, "3110", insured=False, in_use=False))  # not in use: ignored
    chosen, coverage = run(u, eq)
    lifts = cover(coverage, "3000")
    assert lifts["candidates"] == 4 and lifts["qualified"] == 2
    assert lifts["failed_counts"] == "在用电梯未全部投保 1家；电梯投保情况不明 1家"
    assert set(chosen.loc[chosen["top_category"] == "3000", "credit_code"]) == {"9ALL", "9IDLE_NO"}
    crane = chosen[chosen["top_category"] == "4000"].iloc[0]
    assert crane["credit_code"] == "9NONE"
    assert "无在用电梯（不涉及投保）" in crane["reasons"]


def test_switching_a_criterion_off():
    u = units_frame({"credit_code": "9A", "five_have_score": 2})
    eq = equipment_frame(*pieces("9A", 1))
    chosen, coverage = run(u, eq)
    assert chosen.empty and bool(cover(coverage)["gap"])
    chosen, coverage = run(u, eq, rules=DemonstrationRules(require_five_have=False))
    assert chosen["credit_code"].tolist() == ["9A"]
    assert "五有" not in chosen.iloc[0]["reasons"]
    assert cover(coverage)["failed_counts"] == "无"


def test_five_have_min_configurable():
    u = units_frame({"credit_code": "9A", "five_have_score": 4})
    eq = equipment_frame(*pieces("9A", 1))
    chosen, _ = run(u, eq, rules=DemonstrationRules(five_have_min=4))
    assert chosen["credit_code"].tolist() == ["9A"]
    assert "五有标准达标（不低于4分）" in chosen.iloc[0]["reasons"]


# --------------------------------------------------------------------------- ranking

def test_rank_by_equipment_then_passed_checks_then_credit_code():
    u = units_frame({"credit_code": "9A"}, {"credit_code": "9B"}, {"credit_code": "9C"},
                    {"credit_code": "9D"})
    eq = equipment_frame(*pieces("9A", 2), *pieces("9B", 3), *pieces("9C", 3), *pieces("9D", 3))
    c = checks_frame(("9C", "2021-01-01", "合格"), ("9C", "2020-01-01", "合格"),
                     ("9B", "2021-01-01", "合格"), ("9D", "2021-01-01", "合格"))
    chosen, _ = run(u, eq, c)
    # B, C, D hold 3 pieces each; C passed 2 checks; B and D 1 each → B before D by code
    assert chosen["credit_code"].tolist() == ["9C", "9B"]
    assert chosen["rank"].tolist() == [1, 2]
    assert chosen["equipment_in_category"].tolist() == [3, 3]
    assert chosen["passed_checks_3y"].tolist() == [2, 1]
    first = chosen.iloc[0]["reasons"]
    assert "本市该类在用设备3台、近3年监督检查通过2次，在4家符合条件的企业中居第1位" in first
    assert "无其他行业的符合条件企业，按排序递补" in chosen.iloc[1]["reasons"]


def test_second_pick_prefers_another_industry():
    u = units_frame({"credit_code": "9A", "industry": "C"}, {"credit_code": "9B", "industry": "C"},
                    {"credit_code": "9E", "industry": "E"}, {"credit_code": "9N", "industry": None})
    eq = equipment_frame(*pieces("9A", 5), *pieces("9B", 4), *pieces("9N", 3), *pieces("9E", 1))
    chosen, coverage = run(u, eq)
    assert chosen["credit_code"].tolist() == ["9A", "9E"]
    assert "与第1家行业不同，优先选取" in chosen.iloc[1]["reasons"]
    assert "在4家符合条件的企业中居第4位" in chosen.iloc[1]["reasons"]
    assert cover(coverage)["chosen"] == 2


def test_unknown_industry_is_not_a_different_industry():
    u = units_frame({"credit_code": "9A", "industry": "C"}, {"credit_code": "9B", "industry": "C"},
                    {"credit_code": "9N", "industry": None})
    eq = equipment_frame(*pieces("9A", 5), *pieces("9B", 1), *pieces("9N", 3))
    chosen, _ = run(u, eq)
    assert chosen["credit_code"].tolist() == ["9A", "9N"]  # next best, not "another industry"
    assert "按排序递补" in chosen.iloc[1]["reasons"]


def test_max_one_per_city_category():
    u = units_frame({"credit_code": "9A"}, {"credit_code": "9B", "industry": "E"})
    eq = equipment_frame(*pieces("9A", 2), *pieces("9B", 1))
    chosen, coverage = run(u, eq, rules=DemonstrationRules(max_per_city_category=1))
    assert chosen["credit_code"].tolist() == ["9A"]
    assert cover(coverage)["chosen"] == 1


# --------------------------------------------------------------------------- grouping

def test_cities_categories_and_candidates():
    u = units_frame({"credit_code": "9A"}, {"credit_code": "9B", "city_adcode": "410300"},
                    {"credit_code": "9X", "city_adcode": None})
    eq = equipment_frame(
        *pieces("9A", 2, "4100"), *pieces("9A", 1, "3110", insured=True),
        *pieces("9A", 1, "4100", city_adcode="410300"),      # A also works in another city
        *pieces("9B", 1, "4100", city_adcode=None),          # piece without city: its unit's
        *pieces("9X", 1, "4100", city_adcode=None),          # nowhere: left out
        *pieces("9A", 1, "F100"), *pieces("9A", 1, "7100"),   # excluded categories
        *pieces("9B", 1, "9100", in_use=False))              # not in use: no candidate
    chosen, coverage = run(u, eq)
    keys = list(zip(coverage["city_adcode"], coverage["top_category"], strict=True))
    assert keys == [(CITY, "3000"), (CITY, "4000"), ("410300", "4000")]
    assert cover(coverage, "4000", "410300")["candidates"] == 2
    assert cover(coverage, "4000")["candidates"] == 1
    assert coverage["category_name"].tolist() == ["电梯", "起重机械", "起重机械"]
    picked = chosen[chosen["city_adcode"] == "410300"]
    assert picked["credit_code"].tolist() == ["9A", "9B"]  # 1 piece each; A before B by code
    assert picked["equipment_in_category"].tolist() == [1, 1]


def test_gap_is_a_finding():
    u = units_frame({"credit_code": "9A", "blacklisted": True, "open_hazards": 3},
                    {"credit_code": "9B", "open_hazards": 1, "five_have_score": None})
    eq = equipment_frame(*pieces("9A", 1, "6100"), *pieces("9B", 1, "6100"))
    chosen, coverage = run(u, eq)
    assert chosen.empty
    row = cover(coverage, "6000")
    assert bool(row["gap"]) and row["qualified"] == 0 and row["chosen"] == 0
    assert row["failed_counts"] == "有未销号隐患 2家；五有评分缺失 1家；列入黑名单 1家"


# --------------------------------------------------------------------------- shapes

def test_columns_dtypes_and_geometry():
    u = units_frame({"credit_code": "9A", "lon": None, "lat": None}, {"credit_code": "9B"})
    eq = equipment_frame(*pieces("9A", 2), *pieces("9B", 1))
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
    u = units_frame({"credit_code": "9A"})
    for units, eq in ((u.iloc[:0], equipment_frame()), (u, equipment_frame()),
                      (u.iloc[:0], equipment_frame(*pieces("9A", 1)))):
        chosen, coverage = run(units, eq)
        assert chosen.empty and coverage.empty
        assert list(coverage.columns) == [c for c, _ in COVERAGE_COLUMNS]
        assert "geometry" in chosen and chosen.crs.to_epsg() == 4326


def test_units_without_equipment_and_missing_columns():
    u = units_frame({"credit_code": "9A"}, {"credit_code": "9IDLE"}).drop(
        columns=["five_have_score"])
    eq = equipment_frame(*pieces("9A", 1))
    chosen, coverage = run(u, eq)
    assert chosen.empty  # no score column: every candidate misses the 五有 data
    assert cover(coverage)["candidates"] == 1
    assert cover(coverage)["failed_counts"] == "五有评分缺失 1家"


# --------------------------------------------------------------------------- enterprises only

def _code(first17: str) -> str:
    return str(with_check_character(pd.Series([first17], dtype="string")).iloc[0])


COURT = _code("11410100MB0123456")       # 1 机构编制, 1 机关: a court
SCHOOL = _code("12410100MB1234567")      # 1 机构编制, 2 事业单位: a school
SOCIETY = _code("52410100MJ2345678")     # 5 民政, 2 民办非企业单位: a private school
FIRM = _code("91410100MA3456789")        # 9 工商（市场监管）, 1 企业


def test_only_enterprises_become_demonstration_enterprises():
    """Henan plan 二（四）: 示范试点企业 are enterprises. A court and schools hold boilers
    and meet every criterion with more of them, yet only the enterprise is chosen; the
    coverage counts only the enterprise as a candidate and names the others apart."""
    assert is_valid(pd.Series([COURT, SCHOOL, SOCIETY, FIRM])).all()
    u = units_frame({"credit_code": COURT, "industry": "S"},
                    {"credit_code": SCHOOL, "industry": "P"},
                    {"credit_code": SOCIETY, "industry": "P"}, {"credit_code": FIRM})
    eq = equipment_frame(*pieces(COURT, 5, "1100"), *pieces(SCHOOL, 4, "1100"),
                         *pieces(SOCIETY, 3, "1100"), *pieces(FIRM, 1, "1100"))
    chosen, coverage = run(u, eq)
    assert chosen["credit_code"].tolist() == [FIRM]
    assert "在1家符合条件的企业中居第1位" in chosen.iloc[0]["reasons"]
    assert chosen.iloc[0]["reasons"].startswith(
        "企业（统一社会信用代码登记管理部门代码9：工商（市场监管））；符合示范条件：")
    row = cover(coverage, "1000")
    assert (row["candidates"], row["qualified"], row["chosen"]) == (1, 1, 1)
    assert not row["gap"]
    assert row["failed_counts"] == "不参选的非企业使用单位（统一社会信用代码首位不是9） 3家"
    assert eligible(u["credit_code"], DemonstrationRules()).tolist() == [False, False, False,
                                                                         True]


def test_a_city_category_held_only_by_non_enterprises_is_a_gap():
    u = units_frame({"credit_code": SCHOOL}, {"credit_code": FIRM})
    eq = equipment_frame(*pieces(SCHOOL, 2, "1100"), *pieces(FIRM, 1, "4100"))
    chosen, coverage = run(u, eq)
    assert chosen["credit_code"].tolist() == [FIRM]  # cranes only
    boilers = cover(coverage, "1000")
    assert (boilers["candidates"], boilers["qualified"], boilers["chosen"]) == (0, 0, 0)
    assert bool(boilers["gap"])
    assert boilers["failed_counts"] == "不参选的非企业使用单位（统一社会信用代码首位不是9） 1家"
    assert cover(coverage, "4000")["failed_counts"] == "无"


def test_the_rule_file_may_widen_the_registration_authorities():
    u = units_frame({"credit_code": SCHOOL}, {"credit_code": SOCIETY}, {"credit_code": FIRM})
    eq = equipment_frame(*pieces(SCHOOL, 3, "1100"), *pieces(SOCIETY, 2, "1100"),
                         *pieces(FIRM, 1, "1100"))
    wide = DemonstrationRules(registration_authorities=("9", "5"))
    chosen, coverage = run(u, eq, rules=wide)
    assert chosen["credit_code"].tolist() == [SOCIETY, FIRM]
    assert "登记管理部门代码5：民政" in chosen.iloc[0]["reasons"]
    assert cover(coverage, "1000")["candidates"] == 2
    # lower case and blanks around a code do not hide an enterprise
    loose = pd.Series([" 91abc", "9", None, "", "y1"], dtype="string")
    assert eligible(loose, DemonstrationRules()).tolist() == [True, True, False, False, False]


# --------------------------------------------------------------------------- rules

def test_rules_defaults():
    r = DemonstrationRules()
    assert r.max_per_city_category == 2 and r.five_have_min == 5
    assert r.checks_window_years == 3
    assert r.exclude_categories == ("7000", "F000")
    assert r.registration_authorities == ("9",)


@pytest.mark.parametrize("bad", [
    {"max_per_city_category": 0}, {"max_per_city_category": 3}, {"five_have_min": 6},
    {"checks_window_years": 0}, {"pass_words": []}, {"pass_words": [" "]},
    {"exclude_categories": ["3110"]}, {"require_everything": True},
    {"registration_authorities": []}, {"registration_authorities": ["Z"]},
    {"registration_authorities": ["91"]},
])
def test_rules_refuse_nonsense(bad):
    with pytest.raises(ValidationError):
        DemonstrationRules.model_validate(bad)


def test_picks_from_the_units_pieces_of_parts_joined():
    """Each unit's pieces counted in its own part (as the Dask build's partitions keep
    them) and joined give the whole's picks and coverage."""
    u = units_frame({"credit_code": "9A", "industry": "C"}, {"credit_code": "9B"},
                    {"credit_code": "9C", "city_adcode": "410300"}, {"credit_code": "9E"})
    eq = equipment_frame(*pieces("9A", 2), *pieces("9A", 1, "3110", insured=True),
                         *pieces("9B", 3), *pieces("9B", 1, "3110", insured=None),
                         *pieces("9C", 2, city_adcode=None), *pieces("9E", 1, "3110"))
    c = checks_frame(("9B", "2021-01-01", "合格"))
    rules = DemonstrationRules()
    owner = eq["unit_credit_code"].astype("string")
    parts = [UnitPieces.of(u[u["credit_code"].isin(codes)], eq[owner.isin(codes).to_numpy()],
                           rules) for codes in (["9B", "9E"], ["9A", "9C"])]
    chosen, coverage = demonstration_from(UnitPieces.joined(parts), u, c, AS_OF, rules)
    whole_chosen, whole_coverage = run(u, eq, c)
    pd.testing.assert_frame_equal(chosen, whole_chosen, check_exact=True)
    pd.testing.assert_frame_equal(coverage, whole_coverage, check_exact=True)
    assert len(chosen) >= 3
