"""Inspection capacity and workload (监管力量与监管任务相匹配): capacity per county from the
officers or the rule file, the workload table and its roll-ups, the build summary's lines,
and the seeded demo within its capacity."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from geo.boundaries import load_boundaries
from geo.cells import points_to_cells, to_strings
from layers.workload import (
    CapacityRules,
    combined_schedule_sums,
    county_capacity,
    officer_counties,
    over_capacity,
    region_names,
    schedule_sums,
    workload,
    workload_from,
)
from service.cli import capacity_lines

AS_OF = date(2026, 11, 1)
ZHONGYUAN, ERQI = (113.54824, 34.78403), (113.58265, 34.68572)  # inside 410102 and 410103


@pytest.fixture(scope="module")
def henan() -> pd.DataFrame:
    return pd.concat([load_boundaries(["410000"], level) for level in
                      ("province", "city", "county")], ignore_index=True)


def cell(point: tuple[float, float]) -> str:
    return to_strings(points_to_cells(np.array([point[0]]), np.array([point[1]]), 8))[0]


def officers(*rows: tuple[str, str | None]) -> pd.DataFrame:
    return pd.DataFrame({"officer_id": [r[0] for r in rows],
                         "county_adcode": [r[1] for r in rows]}).astype("string")


def officer_cells(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"officer_id": [r[0] for r in rows], "h3": [r[1] for r in rows]})


def test_capacity_rules_defaults_and_refusals():
    rules = CapacityRules()
    assert 150 <= rules.checks_per_officer_year <= 250
    assert rules.by_county == {} and not rules.unstaffed_caps_boosts
    assert CapacityRules(by_county={"410102": 1200}).by_county["410102"] == 1200
    for bad in ({"410100": 5}, {"4101": 5}, {"410102": -1}):
        with pytest.raises(ValidationError):
            CapacityRules(by_county=bad)
    with pytest.raises(ValidationError):
        CapacityRules(checks_per_officer_year=0)


def test_officers_are_placed_by_their_county_else_most_of_their_cells(henan):
    o = officers(("W1", "410105"), ("W2", None), ("W3", ""), ("W4", None))
    oc = officer_cells(("W2", cell(ZHONGYUAN)), ("W2", cell(ERQI)), ("W2", cell(ERQI)),
                       ("W3", cell(ZHONGYUAN)), ("W4", "not-a-cell"))
    placed = officer_counties(o, oc, henan)
    assert placed.to_dict() == {"W1": "410105", "W2": "410102", "W3": "410102"}
    # W2: one cell in each county (a duplicate row is the same cell): the lower code wins
    oc2 = officer_cells(("W2", cell(ERQI)), ("W2", cell(ERQI)), ("W2", cell(ERQI)))
    assert officer_counties(o.iloc[[1]], oc2, henan).to_dict() == {"W2": "410103"}


def test_county_capacity_officers_rules_and_unstaffed(henan):
    o = officers(("W1", "410102"), ("W2", "410102"), ("W3", "410103"))
    cap = county_capacity(o, officer_cells(), henan,
                          CapacityRules(checks_per_officer_year=150, by_county={"410103": 900}))
    assert cap.loc["410102", ["officers", "capacity", "source"]].tolist() == [2, 300.0, "网格员"]
    assert cap.loc["410103", ["officers", "capacity", "source"]].tolist() == [1, 900.0, "规则文件"]
    assert cap.loc["410105", ["officers", "capacity", "source"]].tolist() == [0, 0.0, "无网格员"]
    assert np.isnan(cap.loc["410105", "limit"])  # not capped unless the rules say so
    strict = county_capacity(o, officer_cells(), henan, CapacityRules(unstaffed_caps_boosts=True))
    assert strict.loc["410105", "limit"] == 0
    assert len(cap) == (henan["level"] == "county").sum()


def schedule(rows: list[tuple[str, int, int, int, bool, bool]]) -> pd.DataFrame:
    """(county, base months, interval months, steps, capped, never checked) per unit."""
    frame = pd.DataFrame(rows, columns=["county_adcode", "base_interval_months",
                                        "interval_months", "boost_steps", "interval_capped",
                                        "never"])
    frame["city_adcode"] = frame["county_adcode"].str.slice(0, 4) + "00"
    frame["province_adcode"] = "410000"
    frame["checks_per_year"] = 12.0 / frame["interval_months"]
    frame["boosted"] = frame["boost_steps"] > 0
    frame["last_check_on"] = pd.to_datetime(np.where(frame["never"], None, "2026-01-01"))
    return frame


def test_workload_per_county_city_province(henan):
    s = schedule([("410102", 12, 12, 1, True, True), ("410102", 1, 1, 0, False, False),
                  ("410102", 6, 3, 1, False, True), ("410103", 12, 12, 0, False, True),
                  ("410105", 6, 6, 0, False, True), ("410305", 12, 12, 0, False, False)])
    o = officers(("W1", "410102"), ("W2", "410103"), ("W3", "410305"))
    cap = county_capacity(o, officer_cells(), henan, CapacityRules(
        checks_per_officer_year=10))
    w = workload(s, cap, henan).set_index(["admin_level", "adcode"])
    z = w.loc[("county", "410102")]
    assert (z["officers"], z["capacity"], z["units"], z["never_checked"]) == (1, 10, 3, 2)
    assert (z["planned_base"], z["planned_full"], z["planned"]) == (15.0, 18.0, 17.0)
    assert z["over_capacity"] and z["utilisation"] == 1.7 and z["capped_units"] == 1
    assert z["note"] == "计划检查超出检查力量" and z["counties_over"] == 1
    e = w.loc[("county", "410105")]  # no officer: capacity 0, 无网格员
    assert e["capacity"] == 0 and e["over_capacity"] and e["note"].startswith("无网格员")
    assert pd.isna(e["utilisation"]) and e["capacity_source"] == "无网格员"
    assert not w.loc[("county", "410103"), "over_capacity"]
    zz = w.loc[("city", "410100")]  # Zhengzhou: its counties summed
    assert (zz["officers"], zz["capacity"], zz["units"], zz["planned"]) == (2, 20, 5, 20.0)
    assert zz["counties_over"] == 2 and not zz["over_capacity"]  # 20 planned, 20 capacity
    p = w.loc[("province", "410000")]
    assert (p["officers"], p["capacity"], p["units"], p["planned"]) == (3, 30, 6, 21.0)
    over = over_capacity(w.reset_index())
    assert [r["adcode"] for r in over] == ["410102", "410105"]  # most over first (7, 2)
    assert over[1]["unstaffed"] and over[0] == {"adcode": "410102", "name": "中原区",
                                                "planned": 17.0, "capacity": 10,
                                                "officers": 1, "unstaffed": False,
                                                "by_rules": False}


def test_workload_from_the_schedule_sums_of_parts(henan):
    """A schedule cut into parts, each county's units in one part (as the Dask build's
    partitions keep them), summed per part and combined in any order, gives the whole's
    workload to the last bit: intervals of 5 and 7 months (12/5, 12/7 are not exact in
    binary), a unit without a county, one without a city code."""
    rng = np.random.default_rng(5)
    counties = ["410102", "410103", "410105", "410305", None]
    rows = [(counties[i % 5], int(rng.choice([12, 7, 5])), int(rng.choice([7, 5, 3])),
             int(i % 3), bool(i % 4 == 0), bool(i % 2)) for i in range(500)]
    s = schedule(rows)
    s.loc[s["county_adcode"].isna(), "city_adcode"] = "410100"
    s.loc[7, "city_adcode"] = None  # counts where its county (410103) says
    cap = county_capacity(officers(("W1", "410102")), officer_cells(), henan, CapacityRules())
    whole = workload(s, cap, henan)
    part = np.asarray([counties.index(c) % 3 for c in s["county_adcode"].replace(
        {np.nan: None})])
    sums = [schedule_sums(s[part == p]) for p in (2, 0, 1)]
    pd.testing.assert_frame_equal(workload_from(combined_schedule_sums(sums), cap, henan),
                                  whole, check_exact=True)
    w = whole.set_index(["admin_level", "adcode"])
    assert w.loc[("city", "410100"), "units"] == 400  # 100 without a county in the city
    assert w.loc[("county", "410103"), "units"] == 100


def test_build_summary_lines(henan):
    assert capacity_lines([]) == ["各区县计划检查均在检查力量之内"]
    names = region_names(henan)
    assert names["410102"] == "郑州市中原区"
    lines = capacity_lines([
        {"adcode": "410105", "name": names["410105"], "planned": 1234.4, "capacity": 900,
         "officers": 5, "unstaffed": False},
        {"adcode": "410102", "name": names["410102"], "planned": 6, "capacity": 0,
         "officers": 0, "unstaffed": True}])
    assert lines == [
        "检查力量不足：郑州市金水区 计划检查 1,234 次/年，力量 900 次/年（网格员 5 名）",
        "检查力量不足：郑州市中原区 计划检查 6 次/年，无网格员"]
    assert capacity_lines([{"adcode": "410105", "name": "郑州市金水区", "planned": 505,
                            "capacity": 100, "officers": 10, "by_rules": True}]) == [
        "检查力量不足：郑州市金水区 计划检查 505 次/年，"
        "力量 100 次/年（规则文件设定，网格员 10 名）"]
    many = capacity_lines([{"adcode": "x", "name": "x", "planned": 2, "capacity": 1,
                            "officers": 1}] * 25, most=20)
    assert len(many) == 21 and "另有 5 个区县" in many[-1]


# --------------------------------------------------------------------------- the demo

@pytest.fixture(scope="module")
def demo_build(tmp_path_factory):
    """The seeded demo (seed 7, Henan, as of its MANIFEST's date; 10,000 equipment to keep
    the test short), ingested into an embedded store, and the build's frames that read it."""
    from data.demo import generate
    from layers.builders import Build
    from layers.builders import workload as workload_builder
    from layers.rules import Rules
    from service.build import read_inputs
    from service.ingest.pipeline import IngestOptions, ingest
    from service.store.embedded import EmbeddedStore

    out = tmp_path_factory.mktemp("workload_demo")
    generate(province="河南省", equipment=10_000, seed=7, out=out)
    as_of = date.fromisoformat(json.loads((out / "MANIFEST.json").read_text("utf-8"))["as_of"])
    store = EmbeddedStore(tmp_path_factory.mktemp("workload_store") / "store")
    ingest(sorted(str(p) for p in out.iterdir() if p.name != "MANIFEST.json"), store,
           IngestOptions(h3_resolution=8, provinces=["410000"]))
    build = Build(read_inputs(store, ["410000"], as_of), Rules())
    yield build, workload_builder(build)
    store.close()


def test_the_demo_plans_within_its_capacity(demo_build):
    _build, w = demo_build
    counties = w[(w["admin_level"] == "county") & (w["units"] > 0)]
    assert len(counties) > 100
    assert (counties["officers"] > 0).all()
    assert not counties["over_capacity"].any(), counties.loc[
        counties["over_capacity"].astype(bool), ["name", "planned", "capacity"]]
    assert over_capacity(w) == []
    assert capacity_lines(over_capacity(w)) == ["各区县计划检查均在检查力量之内"]
    assert (counties["planned"] <= counties["capacity"]).all()


def test_the_demos_never_checked_units_are_spread_riskiest_first(demo_build):
    build, _ = demo_build
    s = build.schedule
    never = s[s["last_check_on"].isna()]
    assert len(never) > 0.8 * len(s)  # the demo checks few units
    soon = (s["due_in_days"] <= 30).mean()
    assert soon < 0.6  # not ~every unit due within 30 days
    red = never[never["level"] == "red"]
    assert (red["due_in_days"] < 31).all()  # red units in their first month
    # within a county and interval, due dates follow the priority
    for _key, group in never.groupby(["county_adcode", "interval_months"]):
        ordered = group.sort_values("priority")["due_in_days"].to_numpy()
        assert (np.diff(ordered) >= 0).all()
    blue = never[never["level"] == "blue"]
    months = (blue["due_in_days"] // 31).value_counts()
    assert months.max() < 0.2 * len(blue)  # spread over the year, no month holds most
