"""GET /api/search on the seeded demo, both stores: units by name or credit-code prefix,
equipment by registration-code prefix, with lon/lat; at most 10; scoped like the layers (a
county regulator never finds another county's unit); ``%`` and ``_`` in q are literal; q
outside 2–50 characters is refused."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.servers import auth
from tests.test_tiles import features, get

pytestmark = [pytest.mark.slow, pytest.mark.reads_demo]


def search(api, who: str, q: str) -> list[dict]:
    r = api["client"].get("/api/search", params={"q": q}, headers=auth(api, who))
    assert r.status_code == 200, r.text
    return r.json()["results"]


@pytest.fixture(scope="module")
def units(api) -> list[dict]:
    return features(api, "admin", "units")


def test_finds_a_unit_by_part_of_its_name_and_by_credit_code(api, units):
    mine = [u for u in units if u["properties"]["county_adcode"] == api["county"]
            and u["geometry"]]
    unit = mine[0]["properties"]
    part = unit["name"][1:5]
    got = search(api, "county", part)
    assert 1 <= len(got) <= 10
    assert all(part in r["name"] for r in got if r["kind"] == "unit")
    got = search(api, "county", unit["name"])
    hit = next(r for r in got if r["code"] == unit["credit_code"])
    assert hit["kind"] == "unit" and hit["layer"] == "units" and hit["kind_zh"] == "使用单位"
    lon, lat = mine[0]["geometry"]["coordinates"]
    assert hit["lon"] == pytest.approx(lon, abs=1e-5) and hit["lat"] == pytest.approx(lat,
                                                                                       abs=1e-5)
    got = search(api, "county", unit["credit_code"][:12].lower())
    assert unit["credit_code"] in {r["code"] for r in got}


def test_finds_equipment_by_registration_code_prefix(api):
    equipment = [f for f in features(api, "county", "equipment") if f["geometry"]]
    code = equipment[0]["properties"]["registration_code"]
    got = search(api, "county", code)
    hit = next(r for r in got if r["kind"] == "equipment")
    assert hit["code"] == code and hit["layer"] == "equipment" and hit["lon"] is not None


def test_at_most_ten(api, units):
    common = Counter(ch for u in units for ch in {u["properties"]["name"][-2:]}).most_common(1)
    got = search(api, "admin", common[0][0])
    assert len(got) == 10


def test_a_county_regulator_never_finds_another_countys_unit(api, units):
    other = next(u["properties"] for u in units
                 if u["properties"]["county_adcode"] not in (None, api["county"]))
    assert other["credit_code"] in {r["code"] for r in search(api, "admin", other["name"])}
    assert other["credit_code"] not in {r["code"] for r in search(api, "county",
                                                                  other["name"])}
    assert not [r for r in search(api, "county", other["credit_code"])
                if r["code"] == other["credit_code"]]
    mine = {u["properties"]["credit_code"] for u in units
            if u["properties"]["county_adcode"] == api["county"]}
    for r in search(api, "county", other["name"][:2]):
        if r["kind"] == "unit":
            assert r["code"] in mine


@pytest.mark.parametrize("q", ["%%", "__", "%_", "\\%", "a%", "_"*5])
def test_like_wildcards_are_literal(api, q):
    assert search(api, "admin", q) == []


@pytest.mark.parametrize("q", ["", "a", "x" * 51])
def test_q_must_be_2_to_50_characters(api, q):
    r = api["client"].get("/api/search", params={"q": q}, headers=auth(api, "admin"))
    assert r.status_code in (400, 422)
    assert r.headers["content-type"].startswith("application/problem+json")


def test_needs_a_caller(api):
    assert get(api, None, "/api/search?q=abc").status_code == 401
