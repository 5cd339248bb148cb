"""Filters on /tiles/{layer}/{z}/{x}/{y}.mvt (``level``, ``category``, ``industry``, comma
lists, as /api/layers takes them), both stores: filtered tiles hold only matching features,
low-zoom cells count only matching rows, risk cells are filtered as cells, a bad value is a
400 naming it, the scope still applies and the ETag changes with the filters."""

from __future__ import annotations

from collections import Counter

import pytest

from service import tiles
from tests.test_tiles import busiest_tile, features, get, inside, tile

pytestmark = [pytest.mark.slow, pytest.mark.reads_demo]


@pytest.fixture(scope="module")
def county_points(api) -> list[dict]:
    return [f for f in features(api, "admin", "equipment")
            if f["geometry"] and f["properties"]["county_adcode"] == api["county"]]


def test_level_filter_keeps_only_that_level_in_row_tiles(api, county_points):
    x, y = busiest_tile(county_points, 12)
    every = tile(api, "county", "equipment", 12, x, y)
    for query, wanted in (("?level=red", {"red"}), ("?level=red,orange", {"red", "orange"}),
                          ("?level=blue,%20blue", {"blue"})):
        got = tile(api, "county", "equipment", 12, x, y, query)
        assert all(f["properties"]["level"] in wanted for f in got), query
        assert ({f["properties"]["fid"] for f in got}
                == {f["properties"]["fid"] for f in every
                    if f["properties"].get("level") in wanted}), query
    assert len(tile(api, "county", "equipment", 12, x, y, "?level=red,orange")) < len(every)


def test_category_and_industry_filters(api, county_points):
    x, y = busiest_tile(county_points, 12)
    top = Counter(p["properties"]["top_category"] for p in county_points
                  if inside(p, 12, x, y)).most_common(1)[0][0]
    got = tile(api, "county", "equipment", 12, x, y, f"?category={top}")
    assert got and all(f["properties"]["top_category"] == top for f in got)
    units = [f for f in features(api, "admin", "units") if f["geometry"]
             and f["properties"]["county_adcode"] == api["county"]]
    ux, uy = busiest_tile(units, 12)
    industry = Counter(u["properties"]["industry"] for u in units
                       if inside(u, 12, ux, uy)).most_common(1)[0][0]
    got = tile(api, "county", "units", 12, ux, uy, f"?industry={industry}")
    assert got and all(f["properties"]["industry"] == industry for f in got)
    # filters combine (AND), each a list (OR)
    both = tile(api, "county", "equipment", 12, x, y, f"?category={top}&level=red,orange")
    assert all(f["properties"]["top_category"] == top
               and f["properties"]["level"] in ("red", "orange") for f in both)


def test_low_zoom_cells_count_only_matching_rows(api, county_points):
    z = 8
    x, y = busiest_tile(county_points, z)
    every = {f["properties"]["h3"]: f["properties"] for f in tile(api, "county", "equipment",
                                                                    z, x, y)}
    red = tile(api, "county", "equipment", z, x, y, "?level=red")
    assert red and all(f["geometry"]["type"] == "Polygon" for f in red)
    for f in red:
        props = f["properties"]
        assert props["count"] == props["n_red"] == every[props["h3"]]["n_red"]
        assert props.get("n_orange", 0) == 0
    assert {h for h, p in every.items() if p.get("n_red")} == {
        f["properties"]["h3"] for f in red}


@pytest.mark.parametrize("who", ["admin", "county"])
def test_risk_cells_are_filtered_by_the_cells_level(api, county_points, who):
    for z in (8, 12):
        x, y = busiest_tile(county_points, z)
        every = tile(api, who, "risk-cells", z, x, y)
        got = tile(api, who, "risk-cells", z, x, y, "?level=red,orange")
        assert all(f["properties"]["level"] in ("red", "orange") for f in got)
        assert len(got) == sum(f["properties"].get("level") in ("red", "orange")
                               for f in every)


@pytest.mark.parametrize("query, named", [
    ("?level=purple", "purple"), ("?level=red,purple", "purple"), ("?category=9999", "9999"),
    ("?industry=C", "industry"), ("?level=" + "red," * 30, "25"),
])
def test_a_bad_value_is_a_400_naming_it(api, query, named):
    r = get(api, "admin", f"/tiles/equipment/12/3340/1626.mvt{query}")
    if "industry" in query:  # equipment has no industry field: the units layer has
        r = get(api, "admin", "/tiles/units/12/3340/1626.mvt?industry=Z")
        named = "industry=Z"
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert named in r.json()["detail"]


def test_a_filter_the_layer_has_no_field_for_is_a_400(api):
    r = get(api, "admin", "/tiles/equipment/12/3340/1626.mvt?industry=C")
    assert r.status_code == 400 and "industry" in r.json()["detail"]


def test_scope_still_applies_and_etags_differ(api, county_points):
    x, y = busiest_tile(county_points, 12)
    mine = tile(api, "county", "equipment", 12, x, y, "?level=red,orange,yellow,blue")
    assert all(f["properties"]["fid"] in {p["id"] for p in county_points} for f in mine)
    admin = tile(api, "admin", "equipment", 12, x, y, "?level=red,orange,yellow,blue")
    assert len(admin) >= len(mine)
    path = f"/tiles/equipment/12/{x}/{y}.mvt"
    tags = {get(api, "county", path + q).headers["etag"]
            for q in ("", "?level=red", "?level=orange", "?level=red&category=3000")}
    assert len(tags) == 4
    assert tiles.MAX_FEATURES > 0
