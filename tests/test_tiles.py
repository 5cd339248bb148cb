"""/tiles/{layer}/{z}/{x}/{y}.mvt on the seeded demo, both stores: tiles decode, carry the
layer's fields, hold exactly the caller's rows (scope in the query), ship H3 cells instead of
raw points at low zoom with counts that add up, pick the risk-cell resolution by zoom, and
answer bad addresses, unknown layers, missing tokens and foreign scopes with 4xx."""

from __future__ import annotations

import math
from collections import Counter

import h3
import mapbox_vector_tile
import pytest

from layers.registry import ALL
from service import mvt, tiles
from service.auth import Role, create_user
from service.caches import TileCache
from service.settings import Settings
from service.store import open_store
from tests.servers import call

pytestmark = pytest.mark.slow


def get(api, who: str | None, path: str, **extra):
    """GET by ``who`` with ``extra`` headers (the query stays in ``path``)."""
    return call(api, who, "GET", path, headers=extra)


def tile(api, who: str, layer: str, z: int, x: int, y: int, query: str = "") -> list[dict]:
    """The decoded features of one tile (tile units, y down)."""
    r = get(api, who, f"/tiles/{layer}/{z}/{x}/{y}.mvt{query}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == mvt.MEDIA_TYPE
    if not r.content:
        return []
    decoded = mapbox_vector_tile.decode(r.content, default_options={"y_coord_down": True})
    assert set(decoded) <= {layer}  # one MVT layer, named after the layer id
    return decoded.get(layer, {}).get("features", [])


def features(api, who: str, layer: str) -> list[dict]:
    r = get(api, who, f"/api/layers/{layer}?limit=10000")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["numberMatched"] == len(body["features"])
    return body["features"]


def tile_at(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def inside(f: dict, z: int, x: int, y: int, pad: float = 0.0) -> bool:
    lon0, lat0, lon1, lat1 = mvt.Tile(z, x, y).lonlat_bounds(pad)
    lon, lat = f["geometry"]["coordinates"]
    return lon0 <= lon <= lon1 and lat0 <= lat <= lat1


def busiest_tile(points: list[dict], z: int) -> tuple[int, int]:
    return Counter(tile_at(*p["geometry"]["coordinates"], z) for p in points
                   if p["geometry"]).most_common(1)[0][0]


@pytest.fixture(scope="module")
def county_points(api) -> list[dict]:
    return [f for f in features(api, "admin", "equipment")
            if f["geometry"] and f["properties"]["county_adcode"] == api["county"]]


@pytest.fixture(scope="module")
def other_county(api) -> tuple[str, str]:
    """(adcode, token) of a regulator of the second busiest county."""
    counts = Counter(f["properties"]["county_adcode"] for f in features(api, "admin", "equipment"))
    code = next(c for c, _ in counts.most_common() if c != api["county"])
    store = open_store(api["url"])
    try:
        _, token = create_user(store, name="other", role=Role.REGULATOR, scope=code,
                               pepper=Settings().token_pepper.get_secret_value(),
                               provinces=["410000", "610000"])
    finally:
        store.close()
    api["tokens"]["other"] = token
    return code, token


# raw rows at high zoom --------------------------------------------------------------------

def test_the_busiest_county_at_z12_has_its_equipment_with_properties(api, county_points):
    x, y = busiest_tile(county_points, 12)
    got = tile(api, "county", "equipment", 12, x, y)
    pad = mvt.Tile(12, x, y).size * mvt.BUFFER / mvt.EXTENT
    fids = {f["properties"]["fid"] for f in got}
    strictly = {p["id"] for p in county_points if inside(p, 12, x, y)}
    buffered = {p["id"] for p in county_points if inside(p, 12, x, y, pad)}
    assert len(strictly) >= 5 and strictly <= fids <= buffered
    assert all(f["geometry"]["type"] == "Point" for f in got)
    for f in got:  # in tile units, inside the tile and its buffer
        px, py = f["geometry"]["coordinates"]
        assert -mvt.BUFFER <= px <= mvt.EXTENT + mvt.BUFFER
        assert -mvt.BUFFER <= py <= mvt.EXTENT + mvt.BUFFER
    # properties: fid and the layer's tile fields, as the GeoJSON has them (nulls left out)
    geojson = {p["id"]: p["properties"] for p in county_points}
    assert_properties(got, geojson, tiles.TILE_FIELDS["equipment"])
    assert {"level", "top_category"} <= set(got[0]["properties"])


def assert_properties(got: list[dict], geojson: dict, fields) -> None:
    for f in got:
        props = f["properties"]
        expected = {k: v for k, v in geojson[props["fid"]].items()
                    if v is not None and k in fields}
        assert set(props) == {"fid", *expected}
        for key, value in expected.items():
            assert props[key] == pytest.approx(value) if isinstance(value, float) else \
                props[key] == value, key


@pytest.mark.parametrize("query, fields", [
    ("?properties=*", None), ("?properties=unit_name,D,next_inspection_due",
                              ("unit_name", "D", "next_inspection_due")),
    ("?properties=level,%20level", ("level",)), ("?properties=fid,level", ("level",)),
])
def test_properties_picks_the_fields_of_row_tiles(api, county_points, query, fields):
    x, y = busiest_tile(county_points, 12)
    got = tile(api, "county", "equipment", 12, x, y, query)
    geojson = {p["id"]: p["properties"] for p in county_points}
    assert got
    assert_properties(got, geojson, fields or ALL["equipment"].field_names)
    if fields is None:
        assert {"registration_code", "D", "level_reason", "next_inspection_due"} <= set(
            got[0]["properties"])


@pytest.mark.parametrize("query", ["?properties=level,nope", "?properties=geometry",
                                   "?properties=fid;DROP", "?properties=" + "a," * 1500])
def test_unknown_properties_are_400_naming_them(api, query):
    r = get(api, "admin", f"/tiles/equipment/12/3340/1626.mvt{query}")
    assert r.status_code in (400, 422), r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    if r.status_code == 400:
        assert "没有字段" in r.json()["detail"]


def test_another_countys_regulator_gets_none_of_those_features(api, county_points,
                                                               other_county):
    code, _ = other_county
    x, y = busiest_tile(county_points, 12)
    got = tile(api, "other", "equipment", 12, x, y)
    assert all(f["properties"]["county_adcode"] == code for f in got)
    assert not {f["properties"]["fid"] for f in got} & {p["id"] for p in county_points}
    # and the admin sees both, so the difference is the scope, not the tile
    every = tile(api, "admin", "equipment", 12, x, y)
    assert len(every) > len(got)


def test_a_grid_officer_gets_only_points_in_their_cells(api):
    mine = [f for f in features(api, "officer", "equipment") if f["geometry"]]
    assert mine and all(f["properties"]["h3"] in api["officer_cells"] for f in mine)
    x, y = busiest_tile(mine, 12)
    got = tile(api, "officer", "equipment", 12, x, y, "?properties=h3,level")
    assert got and all(f["properties"]["h3"] in api["officer_cells"] for f in got)
    expected = {p["id"] for p in mine if inside(p, 12, x, y)}
    assert expected <= {f["properties"]["fid"] for f in got}
    every = tile(api, "admin", "equipment", 12, x, y)
    assert len(every) >= len(got)


def test_polygon_layers_are_clipped_to_the_tile(api, county_points):
    x, y = busiest_tile(county_points, 12)
    got = tile(api, "admin", "regions", 12, x, y)
    assert got and all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in got)
    lo, hi = -mvt.BUFFER, mvt.EXTENT + mvt.BUFFER
    for f in got:
        rings = f["geometry"]["coordinates"]
        flat = [pt for ring in (rings if f["geometry"]["type"] == "Polygon"
                                else [r for poly in rings for r in poly]) for pt in ring]
        assert all(lo <= px <= hi and lo <= py <= hi for px, py in flat)
    assert api["county"] in {f["properties"]["adcode"] for f in got}


# aggregated cells at low zoom -------------------------------------------------------------

@pytest.mark.parametrize("who, layer, z", [
    ("admin", "equipment", 6), ("admin", "equipment", 7), ("county", "equipment", 7),
    ("officer", "equipment", 6), ("admin", "hazards", 7), ("city", "units", 8),
    ("park", "equipment", 9), ("admin", "equipment", 10), ("county", "hazards", 11),
])
def test_low_zoom_point_tiles_are_cells_whose_counts_add_up(api, who, layer, z):
    points = [f for f in features(api, who, layer) if f["geometry"]]
    assert points
    x, y = busiest_tile(points, z)
    got = tile(api, who, layer, z, x, y)
    assert got and all(f["geometry"]["type"] == "Polygon" for f in got)  # no raw points
    res = tiles.cell_resolution(z)
    parent = {p["id"]: h3.cell_to_parent(p["properties"]["h3"], res) for p in points}
    expected = Counter(parent.values())
    shipped = {f["properties"]["h3"]: f for f in got}
    assert len(shipped) == len(got)
    for cell, f in shipped.items():
        props = f["properties"]
        assert props["resolution"] == res and props["fid"] == cell
        assert f["id"] == int(cell, 16)
        assert props["count"] == expected[cell]
        level_counts = tiles.level_counts(ALL[layer])
        for value, column in level_counts:
            assert props[column] == sum(1 for p in points if parent[p["id"]] == cell
                                        and p["properties"]["level"] == value)
        if level_counts:
            assert sum(props[c] for _, c in level_counts) <= props["count"]
    # every point of the caller inside the tile is counted in a shipped cell
    assert all(parent[p["id"]] in shipped for p in points if inside(p, z, x, y))
    assert sum(f["properties"]["count"] for f in got) == sum(
        1 for p in points if parent[p["id"]] in shipped)


def test_a_tile_with_too_many_rows_ships_cells_not_a_cut(api, county_points, monkeypatch):
    x, y = busiest_tile(county_points, 12)
    full = tile(api, "admin", "equipment", 12, x, y)
    monkeypatch.setattr(tiles, "MAX_FEATURES", len(full) - 1)
    got = tile(api, "admin", "equipment", 12, x, y)
    assert got and all(f["geometry"]["type"] == "Polygon" for f in got)
    assert all(f["properties"]["resolution"] == 8 for f in got)  # the stored H3 cells
    assert sum(f["properties"]["count"] for f in got) >= len(
        [f for f in full if 0 <= f["geometry"]["coordinates"][0] < mvt.EXTENT
         and 0 <= f["geometry"]["coordinates"][1] < mvt.EXTENT])


# risk cells --------------------------------------------------------------------------------

@pytest.mark.parametrize("z, res", [(5, 5), (6, 5), (7, 6), (8, 7), (9, 7), (10, 8), (12, 9)])
def test_risk_cells_resolution_follows_the_zoom(api, county_points, z, res):
    x, y = busiest_tile(county_points, z)
    got = tile(api, "admin", "risk-cells", z, x, y)
    assert got and {f["properties"]["resolution"] for f in got} == {res}
    assert all(f["id"] == int(f["properties"]["h3"], 16) for f in got)
    assert all(f["properties"]["fid"] == f["properties"]["h3"] for f in got)


@pytest.mark.parametrize("z", [7, 12])
def test_scoped_risk_cells_count_only_the_callers_equipment(api, county_points, z):
    x, y = busiest_tile(county_points, z)
    got = tile(api, "county", "risk-cells", z, x, y)
    res = tiles.cell_resolution(z)
    assert got and {f["properties"]["resolution"] for f in got} == {res}
    shipped = {f["properties"]["h3"]: f["properties"]["equipment"] for f in got}
    # nested as the built layer: the res-9 cell of the point, then its parent
    graded = Counter(h3.cell_to_parent(h3.latlng_to_cell(p["geometry"]["coordinates"][1],
                                                         p["geometry"]["coordinates"][0], 9),
                                       res)
                     for p in county_points if p["properties"]["level_rank"] > 0)
    assert shipped == {cell: graded[cell] for cell in shipped}
    admin = {f["properties"]["h3"]: f["properties"]["equipment"]
             for f in tile(api, "admin", "risk-cells", z, x, y)}
    assert all(admin[c] >= n for c, n in shipped.items())


# caching -----------------------------------------------------------------------------------

def test_etag_and_304(api, county_points):
    x, y = busiest_tile(county_points, 12)
    path = f"/tiles/equipment/12/{x}/{y}.mvt"
    first = get(api, "county", path)
    tag = first.headers["etag"]
    assert tag.startswith('"') and first.headers["cache-control"].startswith("private, max-age=")
    again = get(api, "county", path)
    assert again.headers["etag"] == tag and again.content == first.content
    for header in (tag, f"W/{tag}", f'"nope", {tag}', "*"):
        r = get(api, "county", path, **{"If-None-Match": header})
        assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == tag
    assert get(api, "county", path, **{"If-None-Match": '"other"'}).status_code == 200
    # another caller, tile or layer: another tag
    assert get(api, "admin", path).headers["etag"] != tag
    assert get(api, "county", f"/tiles/equipment/12/{x + 1}/{y}.mvt").headers["etag"] != tag
    assert get(api, "county", f"/tiles/units/12/{x}/{y}.mvt").headers["etag"] != tag
    # a 304 never goes to someone whose scope differs
    assert get(api, "admin", path, **{"If-None-Match": tag}).status_code == 200


def test_low_zoom_tiles_are_the_same_when_served_again(api):
    first = get(api, "city", "/tiles/equipment/6/52/25.mvt")
    second = get(api, "city", "/tiles/equipment/6/52/25.mvt")
    assert first.status_code == second.status_code == 200
    assert first.content == second.content


# bad requests ------------------------------------------------------------------------------

@pytest.mark.parametrize("path, status", [
    ("/tiles/equipment/23/0/0.mvt", 422), ("/tiles/equipment/-1/0/0.mvt", 422),
    ("/tiles/equipment/3/8/0.mvt", 400), ("/tiles/equipment/3/0/8.mvt", 400),
    ("/tiles/equipment/0/1/0.mvt", 400), ("/tiles/equipment/3/-1/0.mvt", 422),
    ("/tiles/equipment/12/99999999999999999999/0.mvt", 400),
    ("/tiles/equipment/a/0/0.mvt", 422), ("/tiles/equipment/3/0/b.mvt", 422),
    ("/tiles/equipment/3/0/0.pbf", 404), ("/tiles/equipment/3/0/0", 404),
    ("/tiles/nope/3/0/0.mvt", 404), ("/tiles/check-schedule/3/0/0.mvt", 404),
    ("/tiles/DROP TABLE/3/0/0.mvt", 422),
])
def test_bad_addresses_and_unknown_layers(api, path, status):
    r = get(api, "admin", path)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("z, x, y", [(10, 0, 0), (14, 13800, 6300), (6, 10, 40), (0, 0, 0)])
def test_outside_henan_is_an_empty_tile_not_an_error(api, z, x, y):
    if (z, x, y) == (0, 0, 0):  # the world: Henan is in it, so not empty
        assert tile(api, "admin", "equipment", z, x, y)
        return
    for layer in ("equipment", "risk-cells", "regions", "hazards"):
        assert tile(api, "admin", layer, z, x, y) == []


def test_no_token_is_401(api):
    r = get(api, None, "/tiles/equipment/6/52/25.mvt")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    r = api["client"].get("/tiles/equipment/6/52/25.mvt",
                          headers={"Authorization": "Bearer rmk_forged"})
    assert r.status_code == 401


# roles × scopes ----------------------------------------------------------------------------

CASES = [
    ("county", "regions", "county-region"), ("county", "units", "county"),
    ("county", "hazards", "county"), ("county", "demonstration", 403),
    ("city", "equipment", "city"), ("city", "demonstration", "city"),
    ("planner", "equipment", "county"),
    ("officer", "units", "cells"), ("officer", "grid-cells", "officer"),
    ("officer", "regions", 403), ("officer", "parks", 403), ("officer", "warnings", 403),
    ("park", "equipment", "park"), ("park", "parks", "park"), ("park", "regions", 403),
    ("park", "grid-cells", 403), ("park", "insurance", 403),
]


@pytest.mark.parametrize("who, layer, expected", CASES)
def test_each_role_gets_its_scope_only(api, who, layer, expected):
    if isinstance(expected, int):
        for z, x, y in ((6, 52, 25), (12, 3336, 1625)):
            r = get(api, who, f"/tiles/{layer}/{z}/{x}/{y}.mvt")
            assert r.status_code == expected
            assert r.headers["content-type"].startswith("application/problem+json")
        return
    mine = [f for f in features(api, who, layer) if f["geometry"]]
    assert mine
    if ALL[layer].geometry == "point":
        x, y = busiest_tile(mine, 14)
        z = 14
    else:  # polygons: the tile holding the first feature's first vertex
        ring = mine[0]["geometry"]["coordinates"]
        while isinstance(ring[0][0], list):
            ring = ring[0]
        z = 12
        x, y = tile_at(*ring[0], z)
    got = tile(api, who, layer, z, x, y, "?properties=*")  # the scope columns to check
    assert got
    county, city = api["county"], api["city"]
    rule = {
        "county": lambda p: p.get("county_adcode") == county,
        "city": lambda p: str(p.get("county_adcode") or p.get("city_adcode") or "")
        .startswith(city[:4]),
        "county-region": lambda p: p["adcode"] == county and p["admin_level"] == "county",
        "cells": lambda p: p["h3"] in api["officer_cells"],
        "officer": lambda p: p["officer_id"] == api["officer"],
        "park": lambda p: p["park_id"] == api["park"],
    }[expected]
    assert all(rule(f["properties"]) for f in got)
    allowed = {f["id"] for f in mine}
    assert {f["properties"]["fid"] for f in got} <= allowed


@pytest.mark.postgis
@pytest.mark.parametrize("demo_api", ["postgis"], indirect=True)
def test_the_tile_statement_probes_the_spatial_index(demo_api):
    """EXPLAIN of the exact row-tile statement: the GiST index serves the tile envelope
    (PostGIS only: the embedded store has no statement to explain)."""
    api = demo_api
    from sqlalchemy import create_engine, text
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.pool import NullPool

    from service.store.postgis.tiles import mvt_statement
    from service.store.query import Condition

    statement = mvt_statement("equipment", (Condition("county_adcode", "prefix", ("41",)),),
                              14, 13347, 6500, extent=4096, buffer=64, cap=10_000,
                              cell_ids=False)
    sql = str(statement.compile(dialect=postgresql.dialect(),
                                compile_kwargs={"literal_binds": True}))
    engine = create_engine(api["url"], poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SET enable_seqscan = off"))  # a tiny table may prefer a scan
            plan = conn.execute(text("EXPLAIN (FORMAT JSON) " + sql)).scalar_one()
    finally:
        engine.dispose()
    assert "gix_layer_equipment_geom" in str(plan)


# pieces ------------------------------------------------------------------------------------

def test_tile_addresses_bounds_and_resolutions():
    assert mvt.Tile.checked(0, 0, 0).lonlat_bounds() == pytest.approx(
        (-180, -85.0511288, 180, 85.0511288))
    lon0, lat0, lon1, lat1 = mvt.Tile.checked(12, 3336, 1625).lonlat_bounds()
    assert lon0 < 113.2793 < lon1 and lat0 < 34.798 < lat1
    for z, x, y in ((23, 0, 0), (-1, 0, 0), (3, 8, 0), (3, 0, -1)):
        with pytest.raises(ValueError):
            mvt.Tile.checked(z, x, y)
    assert [tiles.cell_resolution(z) for z in (0, 6, 7, 8, 9, 10, 11, 12, 22)] == [
        5, 5, 6, 7, 7, 8, 8, 9, 9]
    assert tiles.aggregates(ALL["hazards"]) and tiles.aggregates(ALL["grid-cells"])
    assert not tiles.aggregates(ALL["regions"]) and not tiles.aggregates(ALL["risk-cells"])


def test_if_none_match_parsing():
    assert tiles.matches('"a"', '"a"') and tiles.matches('W/"a"', '"a"')
    assert tiles.matches('"b", W/"a"', '"a"') and tiles.matches("*", '"a"')
    assert not tiles.matches(None, '"a"') and not tiles.matches('"b"', '"a"')


def test_the_cell_cache_keeps_the_recent_within_its_budget():
    cache = TileCache(budget=250)
    calls = []

    def make(n: int):
        calls.append(n)
        return bytes(100)

    for n in (1, 2, 1, 3):  # 3 pushes out 2, the least recently used
        cache.get(("k", n), lambda n=n: make(n))
    assert calls == [1, 2, 3]
    cache.get(("k", 1), lambda: make(1))
    cache.get(("k", 2), lambda: make(2))
    assert calls == [1, 2, 3, 2]
