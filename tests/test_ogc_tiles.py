"""OGC API – Tiles at /ogc on the seeded demo, both stores: the WebMercatorQuad tile matrix
set, a collection's tilesets list, tileset metadata and TileJSON with their required members,
the map's tilesets, the OGC tile URL answering byte for byte what /tiles answers (ETag and
304 too), scoping (404 for a collection out of scope, a county's tiles hold only its rows),
and bad addresses and parameters as 400/404.

Conformance classes these tests back (Tiles 1.0, ``…/ogcapi-tiles-1/1.0/conf/``): ``core``
(test_the_ogc_tile_is_the_tiles_route_byte_for_byte, test_bad_tile_addresses),
``tileset`` (test_tileset_metadata_has_the_required_members), ``tilesets-list``
(test_a_collection_lists_its_one_vector_tileset), ``geodata-tilesets`` (the same two, on
/ogc/collections/{id}/tiles), ``mvt`` (test_the_ogc_tile_is_the_tiles_route_byte_for_byte)."""

from __future__ import annotations

import math
from collections import Counter

import mapbox_vector_tile
import pytest

from layers.registry import LAYERS
from service import mvt, tiles
from tests.servers import call, get

pytestmark = [pytest.mark.slow, pytest.mark.reads_demo]

TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
CRS_3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
OGC_TILE = "/ogc/collections/{layer}/tiles/WebMercatorQuad/{z}/{y}/{x}"


def ok(api, who: str, path: str, **params) -> dict:
    r = get(api, who, path, **params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    return r.json()


def rels(body: dict) -> dict[str, dict]:
    return {link["rel"]: link for link in body["links"]}


def tile_at(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


@pytest.fixture(scope="module")
def county_equipment(api) -> list[dict]:
    r = get(api, "county", "/api/layers/equipment", limit=10_000)
    assert r.status_code == 200
    return [f for f in r.json()["features"] if f["geometry"]]


@pytest.fixture(scope="module")
def busiest(county_equipment) -> tuple[int, int]:
    """(x, y) of the z12 tile holding most of the county regulator's equipment."""
    return Counter(tile_at(*f["geometry"]["coordinates"], 12)
                   for f in county_equipment).most_common(1)[0][0]


# the tile matrix set ----------------------------------------------------------------------------

def test_the_tile_matrix_set_is_webmercatorquad(api):
    listed = ok(api, "county", "/ogc/tileMatrixSets")["tileMatrixSets"]
    assert [t["id"] for t in listed] == ["WebMercatorQuad"]
    assert listed[0]["uri"] == TMS_URI and listed[0]["crs"] == CRS_3857
    href = rels(listed[0])["self"]["href"]
    assert href.endswith("/ogc/tileMatrixSets/WebMercatorQuad")
    tms = ok(api, "county", "/ogc/tileMatrixSets/WebMercatorQuad")
    assert tms["id"] == "WebMercatorQuad" and tms["uri"] == TMS_URI
    assert tms["crs"] == CRS_3857 and tms["orderedAxes"] == ["X", "Y"]
    matrices = tms["tileMatrices"]
    assert [m["id"] for m in matrices] == [str(z) for z in range(25)]
    for z, m in enumerate(matrices):  # TMS 2.0 tileMatrix: the required members
        assert m["matrixWidth"] == m["matrixHeight"] == 1 << z
        assert m["tileWidth"] == m["tileHeight"] == 256
        assert m["pointOfOrigin"] == pytest.approx([-mvt.WORLD, mvt.WORLD])
        assert m["cellSize"] == pytest.approx(2 * mvt.WORLD / 256 / (1 << z))
        assert m["scaleDenominator"] > 0
    r = get(api, "county", "/ogc/tileMatrixSets/WorldCRS84Quad")
    assert r.status_code == 404 and "WebMercatorQuad" in r.json()["detail"]


# tilesets and their metadata ----------------------------------------------------------------------

def test_a_collection_lists_its_one_vector_tileset(api):
    body = ok(api, "county", "/ogc/collections/equipment/tiles")
    assert rels(body)["self"]["href"].endswith("/ogc/collections/equipment/tiles")
    [one] = body["tilesets"]
    assert one["dataType"] == "vector" and one["crs"] == CRS_3857  # required members
    assert one["tileMatrixSetURI"] == TMS_URI
    links = rels(one)
    assert links["self"]["href"].endswith("/ogc/collections/equipment/tiles/WebMercatorQuad")
    assert links[TILING_SCHEME]["href"].endswith("/ogc/tileMatrixSets/WebMercatorQuad")
    assert api["client"].get(links["self"]["href"], headers={
        "Authorization": f"Bearer {api['tokens']['county']}"}).status_code == 200


@pytest.mark.parametrize("layer", ["equipment", "hazards", "regions", "risk-cells",
                                   "grid-cells"])
def test_tileset_metadata_has_the_required_members(api, layer):
    body = ok(api, "county", f"/ogc/collections/{layer}/tiles/WebMercatorQuad")
    spec = LAYERS[layer]
    assert body["dataType"] == "vector" and body["crs"] == CRS_3857
    assert body["tileMatrixSetURI"] == TMS_URI
    links = rels(body)
    item = links["item"]
    assert item["templated"] is True and item["type"] == mvt.MEDIA_TYPE
    assert item["href"].endswith(
        f"/ogc/collections/{layer}/tiles/WebMercatorQuad/{{tileMatrix}}/{{tileRow}}/{{tileCol}}")
    assert links[TILING_SCHEME]["href"].endswith("/ogc/tileMatrixSets/WebMercatorQuad")
    assert links["describedby"]["href"].endswith("/WebMercatorQuad/tilejson.json")
    limits = body["tileMatrixSetLimits"]
    assert [lim["tileMatrix"] for lim in limits] == [str(z) for z in range(mvt.MAX_ZOOM + 1)]
    assert all(lim["maxTileRow"] == lim["maxTileCol"] == (1 << int(lim["tileMatrix"])) - 1
               for lim in limits)
    [vector] = body["layers"]
    assert vector["id"] == layer and vector["title"] == spec.title
    props = vector["propertiesSchema"]["properties"]
    labels = spec.field_labels
    for name in tiles.tile_fields(spec):  # every field a tile carries, typed and titled
        assert props[name]["title"] == labels[name]
        assert props[name]["type"] in {"string", "number", "integer", "boolean"}
    assert props["fid"]["type"] == "string"
    if tiles.aggregates(spec):
        assert {"count", "h3", "resolution"} <= set(props)
        assert vector["pointsFromTileMatrix"] == str(tiles.AGGREGATE_BELOW_ZOOM)
    # the bounding box is the caller's extent, as on the collection
    bbox = ok(api, "county", f"/ogc/collections/{layer}")["extent"]["spatial"]["bbox"][0]
    assert body["boundingBox"]["lowerLeft"] + body["boundingBox"]["upperRight"] == bbox


def test_tilejson_of_a_collection(api):
    county = ok(api, "county", "/ogc/collections/equipment/tiles/WebMercatorQuad/tilejson.json")
    admin = ok(api, "admin", "/ogc/collections/equipment/tiles/WebMercatorQuad/tilejson.json")
    assert county["tilejson"] == "3.0.0"
    [url] = county["tiles"]
    assert url.startswith("http") and url.endswith(
        "/ogc/collections/equipment/tiles/WebMercatorQuad/{z}/{y}/{x}")
    assert county["minzoom"] == 0 and county["maxzoom"] == mvt.MAX_ZOOM
    [layer] = county["vector_layers"]
    assert layer["id"] == "equipment"
    assert layer["fields"]["level"] == LAYERS["equipment"].field_labels["level"]
    # the county regulator's bounds lie within the admin's (the provinces)
    c, a = county["bounds"], admin["bounds"]
    assert a[0] <= c[0] < c[2] <= a[2] and a[1] <= c[1] < c[3] <= a[3]
    assert (c[2] - c[0]) < (a[2] - a[0]) / 2
    # the template, filled in, is a tile
    r = call(api, "county", "GET", url.format(z=12, x=3000, y=1500))
    assert r.status_code == 200 and r.headers["content-type"] == mvt.MEDIA_TYPE


@pytest.mark.parametrize("who", ["admin", "county", "officer", "park", "planner"])
def test_the_map_lists_a_tileset_for_each_collection_the_caller_sees(api, who):
    ids = [c["id"] for c in ok(api, who, "/ogc/collections")["collections"]]
    body = ok(api, who, "/ogc/tiles")
    assert [t["id"] for t in body["tilesets"]] == ids
    for one in body["tilesets"]:
        assert one["dataType"] == "vector" and one["crs"] == CRS_3857
        assert rels(one)["self"]["href"].endswith(f"/collections/{one['id']}/tiles/WebMercatorQuad")


# the tiles ---------------------------------------------------------------------------------------

def test_the_ogc_tile_is_the_tiles_route_byte_for_byte(api, busiest):
    x, y = busiest
    cases = [("county", "equipment", 12, x, y, ""),
             ("county", "equipment", 14, x * 4 + 1, y * 4 + 1, ""),
             ("county", "equipment", 9, x >> 3, y >> 3, ""),  # H3 cells below zoom 12
             ("county", "equipment", 12, x, y, "?level=red,orange&properties=*"),
             ("county", "risk-cells", 9, x >> 3, y >> 3, ""),
             ("admin", "risk-cells", 9, x >> 3, y >> 3, ""),
             ("county", "regions", 8, x >> 4, y >> 4, ""),
             ("officer", "grid-cells", 12, x, y, ""),
             ("admin", "equipment", 0, 0, 0, "")]
    for who, layer, z, tx, ty, query in cases:
        plain = call(api, who, "GET", f"/tiles/{layer}/{z}/{tx}/{ty}.mvt{query}")
        ogc = call(api, who, "GET", OGC_TILE.format(layer=layer, z=z, x=tx, y=ty) + query)
        assert plain.status_code == ogc.status_code == 200, (layer, ogc.text)
        assert ogc.headers["content-type"] == mvt.MEDIA_TYPE
        assert ogc.content == plain.content, (who, layer, z)
        for header in ("etag", "cache-control", "vary"):
            assert ogc.headers[header] == plain.headers[header]
        again = call(api, who, "GET", OGC_TILE.format(layer=layer, z=z, x=tx, y=ty) + query,
                     headers={"If-None-Match": plain.headers["etag"]})
        assert again.status_code == 304 and not again.content
    assert call(api, "county", "GET", f"/tiles/equipment/12/{x}/{y}.mvt").content  # not empty


def test_a_county_regulators_tiles_hold_only_their_rows(api, county_equipment):
    """On a tile across the county's border: the county's rows only, the admin's all."""
    r = get(api, "admin", "/api/layers/equipment", limit=10_000)
    every = [f for f in r.json()["features"] if f["geometry"]]
    mine = {f["id"] for f in county_equipment}
    z, both = next((z, both) for z in range(12, 17) if (both := _shared_tiles(every, mine, z)))
    x, y = both[0]
    decoded = {}
    for who in ("county", "admin"):
        r = call(api, who, "GET", OGC_TILE.format(layer="equipment", z=z, x=x, y=y))
        assert r.status_code == 200
        layer = mapbox_vector_tile.decode(r.content).get("equipment", {"features": []})
        decoded[who] = {f["properties"]["fid"] for f in layer["features"]}
    assert decoded["county"] and decoded["county"] <= mine
    assert decoded["county"] < decoded["admin"]  # the admin sees the neighbours' too
    assert decoded["admin"] - mine


def _shared_tiles(features: list[dict], mine: set[str], z: int) -> list[tuple[int, int]]:
    """The tiles at zoom ``z`` holding both the county's equipment and others'."""
    owners: dict[tuple[int, int], set[bool]] = {}
    for f in features:
        owners.setdefault(tile_at(*f["geometry"]["coordinates"], z), set()).add(f["id"] in mine)
    return sorted(t for t, seen in owners.items() if seen == {True, False})


@pytest.mark.parametrize("who, layer", [("county", "demonstration"), ("officer", "regions"),
                                        ("park", "warnings"), ("admin", "check-schedule"),
                                        ("admin", "nope")])
def test_a_collection_out_of_scope_is_not_found_like_an_unknown_one(api, who, layer):
    words = get(api, who, f"/ogc/collections/{layer}").json()["detail"]
    for path in (f"/ogc/collections/{layer}/tiles",
                 f"/ogc/collections/{layer}/tiles/WebMercatorQuad",
                 f"/ogc/collections/{layer}/tiles/WebMercatorQuad/tilejson.json",
                 OGC_TILE.format(layer=layer, z=3, x=6, y=3)):
        r = get(api, who, path)
        assert r.status_code == 404, (path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["detail"] == words  # the same words as the collection's 404


@pytest.mark.parametrize("path, status", [
    ("/ogc/collections/equipment/tiles/WebMercatorQuad/23/0/0", 404),
    ("/ogc/collections/equipment/tiles/WebMercatorQuad/99999999/0/0", 404),
    ("/ogc/collections/equipment/tiles/WebMercatorQuad/3/8/0", 404),   # row beyond 2^3 - 1
    ("/ogc/collections/equipment/tiles/WebMercatorQuad/3/0/8", 404),   # column
    ("/ogc/collections/equipment/tiles/WebMercatorQuad/a/0/0", 400),
    ("/ogc/collections/equipment/tiles/WebMercatorQuad/3/-1/0", 400),
    ("/ogc/collections/equipment/tiles/WebMercatorQuad/3/0/1.5", 400),
    ("/ogc/collections/equipment/tiles/WebMercatorQuad/999999999/0/0", 400),  # 9 digits
    ("/ogc/collections/equipment/tiles/WebMercatorQuad/3/0/%EF%BC%91", 400),  # full-width 1
    ("/ogc/collections/equipment/tiles/WorldCRS84Quad/3/0/0", 404),
    ("/ogc/collections/equipment/tiles/WorldCRS84Quad", 404),
    ("/ogc/collections/equipment/tiles/WebMercatorQuad/3/0/0?zoom=3", 400),
    ("/ogc/collections/equipment/tiles/WebMercatorQuad/12/1500/3000?level=purple", 400),
    ("/ogc/collections/equipment/tiles/WebMercatorQuad/12/1500/3000?properties=nope", 400),
    ("/ogc/collections/equipment/tiles/WebMercatorQuad?f=html", 400),
    ("/ogc/collections/equipment/tiles?bbox=1,2,3,4", 400),
    ("/ogc/collections/equipment/tiles/WebMercatorQuad/tilejson.json?f=json", 400),
    ("/ogc/tileMatrixSets?limit=1", 400),
    ("/ogc/tiles?f=xml", 400),
])
def test_bad_tile_addresses_and_parameters(api, path, status):
    r = call(api, "county", "GET", path)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert " / " in r.json()["detail"]  # bilingual


@pytest.mark.parametrize("path", ["/ogc/tileMatrixSets", "/ogc/tileMatrixSets/WebMercatorQuad",
                                  "/ogc/tiles", "/ogc/collections/equipment/tiles",
                                  "/ogc/collections/equipment/tiles/WebMercatorQuad",
                                  "/ogc/collections/equipment/tiles/WebMercatorQuad/tilejson.json",
                                  OGC_TILE.format(layer="equipment", z=0, x=0, y=0)])
def test_every_endpoint_needs_a_token(api, path):
    assert call(api, None, "GET", path).status_code == 401
    forged = api["client"].get(path, headers={"Authorization": "Bearer rmk_forged"})
    assert forged.status_code == 401
