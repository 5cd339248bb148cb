"""Real GIS clients against a live /ogc (uvicorn on a free port), both stores, with a bearer
token: GDAL's OAPIF driver (through pyogrio's bundled GDAL) lists, reads, filters and
exports layers; GDAL's OGCAPI driver reads our vector tiles; OWSLib filters and sorts.
What docs/gis-clients.md tells a planner to run is what these tests run.

GDAL runs in a separate (spawned) process: pyogrio holds the GIL while GDAL fetches, so an
in-process GDAL would wait forever on the uvicorn thread of the same interpreter. The app is
wrapped in a recorder that keeps every request's path and query, so the tests see from the
server's side what a client asked for."""

from __future__ import annotations

import json
import math
import multiprocessing
import warnings
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import owslib.ogcapi
import pytest
from owslib.ogcapi.features import Features

from tests.conftest import STORE_KINDS, _fill_demo
from tests.servers import serving

pytestmark = [pytest.mark.slow]

BOX = (113.5, 34.6, 113.9, 34.9)  # lon/lat around Zhengzhou
WINDOW = (113.6, 34.7, 113.7, 34.8)  # a few zoom-12 tiles
CGCS2000 = "http://www.opengis.net/def/crs/EPSG/0/4490"


# GDAL, in its own process ---------------------------------------------------------------------

def _bearer(token: str) -> dict[str, str]:
    """GDAL's own bearer authentication (GDAL ≥ 3.9); GDAL_HTTP_HEADERS is not honoured by
    every build's drivers, these two are."""
    return {"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": token}


def _with_config(config: dict[str, str], fn: str, *args: Any, **kwargs: Any) -> Any:
    """``pyogrio.<fn>(*args, **kwargs)`` with GDAL config options set, reset after (the
    worker process outlives one test: no token may outlive its call)."""
    import pyogrio

    pyogrio.set_gdal_config_options(config)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "more than one layer" of the OGCAPI driver
            result = getattr(pyogrio, fn)(*args, **kwargs)
        if fn == "list_layers":
            return [tuple(row) for row in result]
        return result
    finally:
        pyogrio.set_gdal_config_options(dict.fromkeys(config))


def _to_gpkg(config: dict[str, str], source: str, layer: str, out: str,
             **open_options: Any) -> dict:
    """What ``ogr2ogr out.gpkg source layer -oo K=V`` does: read, write a GeoPackage, and
    answer the written layer's CRS and first point."""
    import pyogrio

    frame = _with_config(config, "read_dataframe", source, layer=layer, **open_options)
    pyogrio.write_dataframe(frame, out, layer=layer, driver="GPKG")
    back = pyogrio.read_dataframe(out)
    return {"crs": back.crs.to_epsg(), "ids": list(back["id"]),
            "xy": [(p.x, p.y) for p in back.geometry]}


@pytest.fixture(scope="module")
def gdal() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def run(pool: ProcessPoolExecutor, token: str, fn: str, *args: Any,
        config: dict[str, str] | None = None, **kwargs: Any) -> Any:
    return pool.submit(_with_config, {**_bearer(token), **(config or {})}, fn, *args,
                       **kwargs).result(timeout=120)


# the live server -----------------------------------------------------------------------------

@dataclass
class Recorder:
    """ASGI middleware keeping (path, query) of every request: what a client really asked."""

    app: Any
    seen: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append((scope["path"], parse_qs(scope.get("query_string", b"").decode())))
        return await self.app(scope, receive, send)

    def queries(self, path: str) -> list[dict[str, list[str]]]:
        return [q for p, q in self.seen if p == path]


@dataclass
class Live:
    url: str
    facts: dict
    store: str
    recorder: Recorder

    def token(self, who: str) -> str:
        return self.facts["tokens"][who]

    def get(self, who: str, path: str, **params: Any) -> dict:
        r = httpx.get(self.url + path, params=params, timeout=60,
                      headers={"Authorization": f"Bearer {self.token(who)}"})
        assert r.status_code == 200, r.text
        return r.json()

    def ids(self, who: str, layer: str, **params: Any) -> list[str]:
        body = self.get(who, f"/ogc/collections/{layer}/items", limit=10_000, **params)
        assert body["numberMatched"] == body["numberReturned"]
        return [f["id"] for f in body["features"]]


@pytest.fixture(scope="module", params=STORE_KINDS)
def live(request: pytest.FixtureRequest, store_templates: Any) -> Iterator[Live]:
    from service.app import create_app
    from service.settings import Settings

    demo = store_templates.copy(request.param, _fill_demo, request)
    try:
        recorder = Recorder(create_app(Settings(store=demo.url)))
        with serving(recorder) as (url, _port):
            yield Live(url, demo.facts, demo.url, recorder)
    finally:
        store_templates.drop(demo.url)


def oapif(live: Live) -> str:
    return f"OAPIF:{live.url}/ogc"


# GDAL's OAPIF driver ---------------------------------------------------------------------------

def test_gdal_lists_the_collections_the_caller_may_see(live, gdal):
    for who in ("county", "admin"):
        layers = run(gdal, live.token(who), "list_layers", oapif(live))
        ids = {c["id"] for c in live.get(who, "/ogc/collections")["collections"]}
        assert {name for name, _geometry in layers} == ids
    assert dict(layers)["equipment"] == "Point"
    # ogrinfo -so: the count is the server's numberMatched, the fields its properties
    info = run(gdal, live.token("county"), "read_info", oapif(live), layer="hazards")
    body = live.get("county", "/ogc/collections/hazards/items", limit=1)
    assert info["features"] == body["numberMatched"] > 0
    assert {"level", "status", "county_adcode"} <= set(info["fields"])
    assert info["layer_metadata"]["TITLE"] == live.get(
        "county", "/ogc/collections/hazards")["title"]
    # no token, no layers: GDAL fails to open, the server said 401
    with pytest.raises(Exception, match="HTTP error code : 401"):
        gdal.submit(_with_config, {}, "list_layers", oapif(live)).result(timeout=60)


def _value(v: Any) -> Any:
    return None if isinstance(v, float) and math.isnan(v) else v


def test_gdal_reads_a_layer_as_the_items_json_has_it(live, gdal):
    frame = run(gdal, live.token("admin"), "read_dataframe", oapif(live), layer="equipment",
                bbox=BOX)
    body = live.get("admin", "/ogc/collections/equipment/items", limit=10_000,
                    bbox=",".join(map(str, BOX)))
    assert len(frame) == body["numberMatched"] > 50
    want = {f["id"]: f for f in body["features"]}
    assert sorted(frame["id"]) == sorted(want)
    for row in frame.itertuples():
        feature = want[row.id]
        assert _value(row.level) == feature["properties"]["level"]  # null: no level
        assert row.county_adcode == feature["properties"]["county_adcode"]
        assert (row.geometry.x, row.geometry.y) == pytest.approx(
            feature["geometry"]["coordinates"], abs=1e-9)
    assert frame.crs.to_string() == "OGC:CRS84"


def test_gdal_reads_only_the_county_of_a_county_regulator(live, gdal):
    county = live.facts["county"]
    theirs = run(gdal, live.token("county"), "read_dataframe", oapif(live), layer="hazards")
    everyone = run(gdal, live.token("admin"), "read_dataframe", oapif(live), layer="hazards")
    assert len(theirs) > 0 and set(theirs["county_adcode"]) == {county}
    assert set(everyone["county_adcode"]) - {county}  # the scope, not the data, narrows it
    assert sorted(theirs["id"]) == sorted(live.ids("county", "hazards"))
    assert sorted(everyone.loc[everyone["county_adcode"] == county, "id"]) == \
        sorted(theirs["id"])


def test_gdal_where_gives_the_rows_of_the_servers_own_filter(live, gdal):
    frame = run(gdal, live.token("county"), "read_dataframe", oapif(live), layer="equipment",
                bbox=BOX, where="level = 'red'")
    server = live.ids("county", "equipment", bbox=",".join(map(str, BOX)),
                      filter="level = 'red'")
    assert len(server) > 0 and sorted(frame["id"]) == sorted(server)
    assert set(frame["level"]) == {"red"} and set(frame["county_adcode"]) == \
        {live.facts["county"]}


# GDAL 3.12 pushes a where only when the OpenAPI document shows it how (OGROAPIFLayer::
# GetQueryableAttributes): paths["/collections/{collectionId}/items"] relative to the landing
# page, query parameters named after the fields, and a ``filter-lang`` parameter whose schema
# enum holds "cql-text" (the draft name; without it GDAL sends Core ``level=red``). /ogc/api
# is written so (service/openapi30.py), and the items take cql-text as cql2-text.
def test_gdal_pushes_where_to_the_server_as_a_cql2_filter(live, gdal):
    frame = run(gdal, live.token("county"), "read_dataframe", oapif(live), layer="equipment",
                bbox=BOX, where="level = 'red'")
    sent = live.recorder.queries("/ogc/collections/equipment/items")[-1]
    assert sent.get("filter") == ["level = 'red'"] and sent["filter-lang"] == ["cql-text"]
    assert sorted(frame["id"]) == sorted(live.ids(
        "county", "equipment", bbox=",".join(map(str, BOX)), filter="level = 'red'"))


def test_gdal_exports_a_geopackage_in_cgcs2000(live, gdal, tmp_path: Path):
    out = str(tmp_path / "equipment.gpkg")
    got = gdal.submit(_to_gpkg, _bearer(live.token("county")), oapif(live), "equipment",
                      out, CRS="EPSG:4490").result(timeout=120)
    assert got["crs"] == 4490
    # GDAL asked for EPSG:4490 (latitude first on the wire) and wrote longitude first
    sent = live.recorder.queries("/ogc/collections/equipment/items")[-1]
    assert sent["crs"] == [CGCS2000]
    body = live.get("county", "/ogc/collections/equipment/items", limit=10_000)
    want = {f["id"]: f["geometry"]["coordinates"] for f in body["features"]}
    assert sorted(got["ids"]) == sorted(want)
    for fid, xy in zip(got["ids"], got["xy"], strict=True):
        assert xy == pytest.approx(want[fid], abs=1e-9)


# GDAL's OGCAPI driver: our vector tiles --------------------------------------------------------

def _mercator(lon: float, lat: float) -> tuple[float, float]:
    r = 6378137.0
    return math.radians(lon) * r, math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * r


def test_gdal_reads_the_vector_tiles_of_a_small_window(live, gdal):
    (x0, y0), (x1, y1) = _mercator(*WINDOW[:2]), _mercator(*WINDOW[2:])
    window = {"API": "TILES", "TILEMATRIXSET": "WebMercatorQuad",
              "MINX": x0, "MINY": y0, "MAXX": x1, "MAXY": y1}
    source = f"OGCAPI:{live.url}/ogc/collections/equipment"
    before = len(live.recorder.seen)
    frame = run(gdal, live.token("admin"), "read_dataframe", source, layer="Zoom level 12",
                **window)
    tiles = [p for p, _q in live.recorder.seen[before:]
             if p.startswith("/ogc/collections/equipment/tiles/WebMercatorQuad/12/")]
    assert 0 < len(tiles) <= 16  # the window's tiles only, never the whole zoom
    assert frame.crs.to_epsg() == 3857 and len(frame) > 0
    assert set(frame["level"].dropna()) <= {"red", "orange", "yellow", "blue"}
    # every point of the window is in the tiles, and every tile point is a real item
    inside = live.ids("admin", "equipment", bbox=",".join(map(str, WINDOW)))
    assert inside and set(inside) <= set(frame["fid"])
    lon0, lat0, lon1, lat1 = frame.to_crs("OGC:CRS84").total_bounds
    around = live.ids("admin", "equipment",
                      bbox=f"{lon0 - 1e-4},{lat0 - 1e-4},{lon1 + 1e-4},{lat1 + 1e-4}")
    assert set(frame["fid"]) <= set(around)
    # a county regulator's tiles hold only their county's equipment
    county = run(gdal, live.token("county"), "read_dataframe", source, layer="Zoom level 12",
                 **window)
    assert set(county["fid"]) <= set(live.ids("county", "equipment"))
    assert set(county["fid"]) < set(frame["fid"])


# OWSLib ----------------------------------------------------------------------------------------

@pytest.fixture
def owslib_headers() -> Iterator[None]:
    """OWSLib merges one client's headers into module-wide defaults: put them back."""
    saved = dict(owslib.ogcapi.REQUEST_HEADERS)
    yield
    owslib.ogcapi.REQUEST_HEADERS.clear()
    owslib.ogcapi.REQUEST_HEADERS.update(saved)


def test_owslib_filters_and_sorts(live, owslib_headers):
    api = Features(f"{live.url}/ogc",
                   headers={"Authorization": f"Bearer {live.token('county')}"})
    assert "level" in api.collection_queryables("equipment")["properties"]
    page = api.collection_items("equipment", filter="level = 'red' AND \"D\" >= 160",
                                sortby=("D", "desc"), limit=10_000)
    rows = [f["properties"] for f in page["features"]]
    assert rows and {r["level"] for r in rows} == {"red"}
    assert {r["county_adcode"] for r in rows} == {live.facts["county"]}
    assert [r["D"] for r in rows] == sorted((r["D"] for r in rows), reverse=True)
    assert [f["id"] for f in page["features"]] == live.ids(
        "county", "equipment", filter="level = 'red' AND \"D\" >= 160", sortby="-D")
    as_json = api.collection_items("equipment", limit=10_000, **{
        "filter": json.dumps({"op": "=", "args": [{"property": "level"}, "red"]}),
        "filter-lang": "cql2-json"})
    assert {f["id"] for f in as_json["features"]} == set(live.ids(
        "county", "equipment", filter="level = 'red'"))


def test_owslib_tiles_metadata_if_owslib_has_tiles(live, owslib_headers):
    tiles = pytest.importorskip("owslib.ogcapi.tiles",
                                reason="OWSLib 0.35 has no owslib.ogcapi.tiles")
    api = tiles.Tiles(f"{live.url}/ogc",
                      headers={"Authorization": f"Bearer {live.token('county')}"})
    assert "WebMercatorQuad" in json.dumps(api.tilematrixsets())
