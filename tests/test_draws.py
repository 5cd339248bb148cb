"""双随机、一公开: stratified, risk-weighted, reproducible draws; inspectors avoid their own
cells; the published draw is public and complete."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from service.draws import allocate, assign_inspectors, draw_units
from tests.servers import call


def test_allocation_is_proportional_covers_every_stratum_and_never_overdraws():
    assert allocate(np.array([10, 30, 60]), 10).tolist() == [1, 3, 6]
    assert allocate(np.array([1, 1, 98]), 10).tolist() == [1, 1, 8]  # every stratum once
    assert allocate(np.array([2, 5]), 100).tolist() == [2, 5]
    assert allocate(np.array([5, 5, 5]), 2).sum() == 2
    assert allocate(np.array([], dtype=int), 3).tolist() == []


def _units(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "credit_code": [f"U{i:05d}" for i in range(n)],
        "county_adcode": rng.choice(["410102", "410103"], n),
        "dominant_category": rng.choice(["3000", "1000"], n),
        "level": rng.choice(["red", "orange", "yellow", "blue"], n, p=[.05, .15, .3, .5]),
        "h3": [f"cell{i % 20}" for i in range(n)], "name": "单位"})


def test_the_same_seed_draws_the_same_units_whatever_the_input_order():
    units = _units()
    a = draw_units(units, 40, np.random.default_rng(7))
    b = draw_units(units.sample(frac=1, random_state=3), 40, np.random.default_rng(7))
    assert a["credit_code"].tolist() == b["credit_code"].tolist()
    c = draw_units(units, 40, np.random.default_rng(8))
    assert a["credit_code"].tolist() != c["credit_code"].tolist()
    assert a["stratum"].nunique() == 4 and len(a) == 40


def test_riskier_units_are_drawn_more_often():
    units = _units()
    hits = pd.concat([draw_units(units, 40, np.random.default_rng(s)) for s in range(200)])
    rate = hits["level"].value_counts() / units["level"].value_counts()
    assert rate["red"] > rate["orange"] > rate["yellow"] > rate["blue"]


def test_inspectors_avoid_their_own_cells_when_someone_else_is_free():
    drawn = pd.DataFrame({"h3": ["a", "a", "b", "c"]})
    own = {"X": {"a"}, "Y": {"b"}}
    who = assign_inspectors(drawn, ["X", "Y"], own, np.random.default_rng(1))
    assert who[0] == who[1] == "Y" and who[2] == "X"
    assert assign_inspectors(drawn, [], own, np.random.default_rng(1)) == [None] * 4
    alone = assign_inspectors(drawn.iloc[:1], ["X"], own, np.random.default_rng(1))
    assert alone == ["X"]  # nobody else: assigned, and the conflict is reported


def post(api, who, body):
    return call(api, who, "POST", "/api/random-draws", json=body)


@pytest.mark.slow
def test_a_draw_is_published_for_anyone_and_reproducible(api):
    r = post(api, "city", {"region": api["city"], "size": 12, "seed": 20261101})
    assert r.status_code == 201, r.text
    draw = r.json()
    assert draw["seed"] == "20261101" and "分层" in draw["method"] and len(draw["units"]) == 12
    assert all(u["county_adcode"].startswith(api["city"][:4]) for u in draw["units"])
    public = api["client"].get(f"/api/random-draws/{draw['draw_id']}")  # no token
    assert public.status_code == 200 and public.json()["units"] == draw["units"]
    again = post(api, "city", {"region": api["city"], "size": 12, "seed": 20261101}).json()
    assert [u["credit_code"] for u in again["units"]] == [u["credit_code"] for u in draw["units"]]
    assert [u["inspector"] for u in again["units"]] == [u["inspector"] for u in draw["units"]]
    assert not any(u["conflict"] for u in draw["units"] if u["inspector"])


@pytest.mark.slow
def test_draws_are_refused_outside_the_scope_and_for_other_roles(api):
    assert post(api, "county", {"region": "410000", "size": 5}).status_code == 403
    assert post(api, "officer", {"region": api["county"], "size": 5}).status_code == 403
    assert post(api, "admin", {"region": "4", "size": 5}).status_code == 422
    assert post(api, "admin", {"region": api["county"], "size": 0}).status_code == 422
    assert api["client"].get("/api/random-draws/SJ20260101ABCDEF12").status_code == 404
    assert api["client"].get("/api/random-draws/x").status_code == 422


@pytest.mark.slow
def test_a_region_is_taken_in_either_form_and_an_unknown_one_is_named(api):
    city = api["city"]  # 410100 and 4101: the same city, the same candidates and draw
    six = post(api, "city", {"region": city, "size": 8, "seed": 11})
    four = post(api, "city", {"region": city[:4], "size": 8, "seed": 11})
    assert six.status_code == four.status_code == 201, four.text
    assert four.json()["region"] == city  # stored as the 6-digit code
    assert four.json()["params"]["candidates"] == six.json()["params"]["candidates"] > 0
    assert [u["credit_code"] for u in four.json()["units"]] == [
        u["credit_code"] for u in six.json()["units"]]
    r = post(api, "admin", {"region": "4199", "size": 5})
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert detail.startswith("抽取范围（region）4199 不是已加载的行政区") and " / region 4199" in (
        detail)
