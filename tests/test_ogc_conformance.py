"""Every conformance class /ogc declares, checked against the requirement it names, over HTTP
on the seeded demo (both stores): links and their rels, media types, parameters and the 400s
for bad input. ``CHECKS`` maps each class URI to its check; a class declared without one
fails ``test_every_declared_class_has_a_check`` (as does a class the issue requires that
/ogc does not declare), and ``test_declared_class`` runs the check of each declared class.

The other /ogc test modules test each part in depth (test_ogc, test_ogc_filter,
test_ogc_html, test_ogc_tiles, test_openapi30); here each class gets one concrete walk
through what it requires, as a GIS client would meet it, as a county regulator.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from functools import cached_property
from typing import Any
from urllib.parse import quote, urlsplit

import mapbox_vector_tile
import orjson
import pytest
import shapely
from shapely.geometry import mapping, shape

from tests.servers import call, get

pytestmark = pytest.mark.reads_demo  # only reads the demo

WHO = "county"  # a scoped caller: what a planner's GIS meets
SPEC = "http://www.opengis.net/spec"
REL = "http://www.opengis.net/def/rel/ogc/1.0/"
JSON = "application/json"
GEOJSON = "application/geo+json"
HTML = "text/html"
SCHEMA_JSON = "application/schema+json"
OPENAPI30 = "application/vnd.oai.openapi+json;version=3.0"
MVT = "application/vnd.mapbox-vector-tile"
PROBLEM = "application/problem+json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CGCS2000 = "http://www.opengis.net/def/crs/EPSG/0/4490"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
ITEMS = "/ogc/collections/equipment/items"
TILESET = "/ogc/collections/equipment/tiles/WebMercatorQuad"

# what the issue requires /ogc to declare (at least)
REQUIRED = {
    f"{SPEC}/ogcapi-features-1/1.0/conf/{name}" for name in ("core", "geojson", "html", "oas30")
} | {f"{SPEC}/ogcapi-features-2/1.0/conf/crs"} | {
    f"{SPEC}/ogcapi-features-3/1.0/conf/{name}"
    for name in ("queryables", "filter", "features-filter")
} | {f"{SPEC}/cql2/1.0/conf/{name}" for name in ("cql2-text", "cql2-json")} | {
    f"{SPEC}/ogcapi-common-1/1.0/conf/{name}" for name in ("landing-page", "json", "html")
} | {f"{SPEC}/ogcapi-common-2/1.0/conf/collections"} | {
    f"{SPEC}/ogcapi-tiles-1/1.0/conf/{name}"
    for name in ("core", "tileset", "tilesets-list", "mvt")
}


# requests ---------------------------------------------------------------------------------------


def full_paths(doc: dict) -> dict[str, dict]:
    """The OpenAPI document's paths as absolute paths (its server's path before each)."""
    base = urlsplit(doc.get("servers", [{"url": ""}])[0]["url"]).path.rstrip("/")
    return {(base + path) if path != "/" else (base or "/"): item
            for path, item in doc["paths"].items()}

def media(r: Any) -> str:
    return r.headers["content-type"].split(";")[0].strip().lower()


def ok(api: dict, path: str, kind: str = JSON, who: str = WHO, headers: dict | None = None,
       **params: Any) -> Any:
    """A 200 of media type ``kind`` (``path`` may be an absolute link: its query is kept
    unless ``params`` are given)."""
    r = call(api, who, "GET", path, headers=headers or {}, **({"params": params} if params
                                                             else {}))
    assert r.status_code == 200, (path, params, r.text[:500])
    if kind == OPENAPI30:
        assert r.headers["content-type"] == OPENAPI30, path
    else:
        assert media(r) == kind, (path, params, r.headers["content-type"])
    return r


def body(api: dict, path: str, kind: str = JSON, **params: Any) -> dict:
    return ok(api, path, kind, **params).json()


def bad(api: dict, path: str, status: int = 400, **params: Any) -> str:
    """A refusal (400 unless told) as problem JSON; its detail."""
    r = get(api, WHO, path, **params)
    assert r.status_code == status, (path, params, r.text[:500])
    assert media(r) == PROBLEM, (path, params)
    return r.json()["detail"]


def rels(doc: dict) -> dict[str, dict]:
    return {link["rel"]: link for link in doc["links"]}


def link(doc: dict, rel: str, kind: str | None = None) -> dict:
    """The link of ``rel`` (of media type ``kind`` if given); fails naming what is there."""
    found = [x for x in doc["links"] if x["rel"] == rel and (kind is None or x.get("type") == kind)]
    assert found, (rel, kind, [(x["rel"], x.get("type")) for x in doc["links"]])
    return found[0]


def ids(doc: dict) -> list[str]:
    return [f["id"] for f in doc["features"]]


def items(api: dict, layer: str = "equipment", **params: Any) -> dict:
    """A GeoJSON page of ``layer`` (all of the caller's rows unless ``limit`` is given)."""
    doc = body(api, f"/ogc/collections/{layer}/items", GEOJSON, **{"limit": 10_000, **params})
    assert doc["type"] == "FeatureCollection"
    assert doc["numberReturned"] == len(doc["features"]) <= doc["numberMatched"]
    return doc


def filtered(api: dict, text: str, layer: str = "equipment") -> list[str]:
    return ids(items(api, layer, filter=text))


def as_json(api: dict, document: dict | bool, layer: str = "equipment") -> list[str]:
    return ids(items(api, layer, filter=orjson.dumps(document).decode(),
                     **{"filter-lang": "cql2-json"}))


def tile_at(lon: float, lat: float, z: int) -> tuple[int, int]:
    """(col, row) of the WebMercatorQuad tile holding a point."""
    n = 1 << z
    col = int((lon + 180) / 360 * n)
    row = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return col, row


class Demo:
    """The module's view of the demo: the client, and the county regulator's rows fetched
    once (each check compares what a filter returns with what these rows hold)."""

    def __init__(self, api: dict) -> None:
        self.api = api

    @cached_property
    def equipment(self) -> list[dict]:
        doc = items(self.api)
        assert doc["numberMatched"] == len(doc["features"]) > 20  # the whole scoped layer
        return doc["features"]

    @cached_property
    def regions(self) -> list[dict]:
        features = items(self.api, "regions")["features"]
        assert features
        return features

    @cached_property
    def located(self) -> list[dict]:
        return [f for f in self.equipment if f["geometry"]]

    def where(self, keep: Callable[[dict], bool], layer: str = "equipment") -> list[str]:
        """Sorted ids of the rows whose properties ``keep`` holds (features come by fid)."""
        rows = self.equipment if layer == "equipment" else self.regions
        return sorted(f["id"] for f in rows if keep(f["properties"]))

    def touching(self, geometry: Any) -> list[str]:
        """Sorted ids of the regions whose geometry intersects ``geometry``."""
        return sorted(f["id"] for f in self.regions
                      if f["geometry"] and shape(f["geometry"]).intersects(geometry))


@pytest.fixture(scope="module")
def demo(api: dict) -> Demo:
    return Demo(api)


# OGC API – Common ---------------------------------------------------------------------------------

def common_core(d: Demo) -> None:
    """/req/core: the landing page and conformance declaration as JSON with their links;
    unknown parameters are 400; a caller without a token gets nothing."""
    api = d.api
    landing = body(api, "/ogc")
    assert landing["title"] and landing["links"]
    conformance = body(api, "/ogc/conformance")
    assert isinstance(conformance["conformsTo"], list) and conformance["conformsTo"]
    assert all(isinstance(uri, str) and uri.startswith(SPEC) for uri in conformance["conformsTo"])
    for path in ("/ogc", "/ogc/conformance"):
        assert "nope" in bad(api, path, nope="1")  # /req/core/query-param-unknown
        assert get(api, None, path).status_code == 401


def common_landing_page(d: Demo) -> None:
    """/req/landing-page: links self, service-desc (OpenAPI 3.0, resolving to a 3.0.x
    document of the /ogc paths), conformance and data, each resolving."""
    api = d.api
    landing = body(api, "/ogc", f="json")
    self_ = link(landing, "self", JSON)
    assert urlsplit(self_["href"]).path == "/ogc"
    desc = link(landing, "service-desc")
    assert desc["type"] == OPENAPI30
    doc = ok(api, desc["href"], OPENAPI30).json()
    assert re.fullmatch(r"3\.0\.\d+", doc["openapi"]), doc["openapi"]
    assert {"/ogc", "/ogc/conformance", "/ogc/collections"} <= set(full_paths(doc))
    conformance = link(landing, "conformance")
    assert conformance["type"] == JSON
    assert ok(api, conformance["href"]).json()["conformsTo"]
    data = link(landing, "data")
    assert data["type"] == JSON
    assert ok(api, data["href"]).json()["collections"]
    assert all(x["href"].startswith("http") for x in landing["links"])


def common_json(d: Demo) -> None:
    """/req/json: every Common resource as JSON, by default, for f=json and for an Accept
    of application/json."""
    api = d.api
    for path in ("/ogc", "/ogc/conformance", "/ogc/collections", "/ogc/collections/equipment"):
        plain = ok(api, path).json()
        assert ok(api, path, f="json").json().keys() == plain.keys()
        assert ok(api, path, headers={"Accept": JSON}).json().keys() == plain.keys()
        assert "f" in bad(api, path, f="xml")


def common_html(d: Demo) -> None:
    """/req/html: every Common resource as HTML, for f=html and for a browser's Accept,
    and the JSON says where its HTML is (rel alternate, text/html)."""
    api = d.api
    for path in ("/ogc", "/ogc/conformance", "/ogc/collections", "/ogc/collections/equipment"):
        page = ok(api, path, HTML, f="html").text
        assert page.startswith("<!DOCTYPE html>"), path
        assert ok(api, path, HTML, headers={"Accept": BROWSER}).text.startswith("<!DOCTYPE")
    for path in ("/ogc", "/ogc/collections", "/ogc/collections/equipment"):
        alternate = link(ok(api, path).json(), "alternate", HTML)
        assert media(ok(api, alternate["href"], HTML)) == HTML


def common_oas30(d: Demo) -> None:
    """/req/oas30: the API definition as OpenAPI 3.0 at the service-desc link."""
    api = d.api
    desc = link(body(api, "/ogc"), "service-desc", OPENAPI30)
    doc = ok(api, desc["href"], OPENAPI30).json()
    assert re.fullmatch(r"3\.0\.\d+", doc["openapi"])
    assert doc["info"]["title"] and doc["info"]["version"]
    assert all(p == "/ogc" or p.startswith("/ogc/") for p in full_paths(doc))
    for path in doc["paths"].values():
        for operation in path.values():
            assert operation["responses"]


def common_collections(d: Demo) -> None:
    """Common Part 2 /req/collections: /ogc/collections lists the caller's collections
    with id, title, links and extent; each resolves to its own document; an unknown one
    is 404."""
    api = d.api
    listing = body(api, "/ogc/collections")
    assert urlsplit(link(listing, "self", JSON)["href"]).path == "/ogc/collections"
    listed = {c["id"]: c for c in listing["collections"]}
    assert "equipment" in listed and "regions" in listed
    for c in listed.values():
        assert c["title"] and c["links"]
        x0, y0, x1, y1 = c["extent"]["spatial"]["bbox"][0]
        assert -180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90
    one = body(api, link(listed["equipment"], "self")["href"])
    assert one["id"] == "equipment" and one["extent"] == listed["equipment"]["extent"]
    link(one, "items", GEOJSON)
    bad(api, "/ogc/collections/nope", 404)
    bad(api, "/ogc/collections/demonstration", 404)  # not the county's: as if unknown


# OGC API – Features -------------------------------------------------------------------------------

def features_core(d: Demo) -> None:
    """Part 1 /req/core: the collection links its items; items page with limit and
    next links (numberMatched, numberReturned), select by bbox, serve one feature by id;
    an unknown id is 404 and a bad limit, bbox or unknown parameter 400."""
    api = d.api
    collection = body(api, "/ogc/collections/equipment")
    assert collection["itemType"] == "feature"
    items_link = link(collection, "items", GEOJSON)
    whole = len(d.equipment)
    first = ok(api, items_link["href"], GEOJSON, limit=7).json()
    assert first["numberReturned"] == 7 and first["numberMatched"] == whole
    assert first["timeStamp"].endswith("Z")
    assert urlsplit(link(first, "collection", JSON)["href"]).path == "/ogc/collections/equipment"
    second = ok(api, link(first, "next", GEOJSON)["href"], GEOJSON).json()
    assert second["numberReturned"] == 7 and not set(ids(first)) & set(ids(second))
    assert ids(first) + ids(second) == [f["id"] for f in d.equipment[:14]]
    link(second, "prev", GEOJSON)
    last = items(api, limit=7, offset=whole - 3)
    assert last["numberReturned"] == 3 and "next" not in rels(last)
    assert items(api, limit=10**9)["numberReturned"] == whole  # above the maximum: clamped
    # bbox: a box around the first located feature holds it, and only what lies inside
    lon, lat = d.located[0]["geometry"]["coordinates"]
    box = (lon - 0.05, lat - 0.05, lon + 0.05, lat + 0.05)
    inside = items(api, bbox=",".join(map(str, box)))
    assert d.located[0]["id"] in ids(inside)
    for f in inside["features"]:
        x, y = f["geometry"]["coordinates"]
        assert box[0] <= x <= box[2] and box[1] <= y <= box[3]
    want = sorted(f["id"] for f in d.located
                  if box[0] <= f["geometry"]["coordinates"][0] <= box[2]
                  and box[1] <= f["geometry"]["coordinates"][1] <= box[3])
    assert ids(inside) == want
    # one feature
    feature = d.equipment[0]
    one = body(api, f"{ITEMS}/{quote(feature['id'], safe='')}", GEOJSON)
    assert one["type"] == "Feature" and one["id"] == feature["id"]
    assert one["properties"] == feature["properties"]
    assert urlsplit(link(one, "collection")["href"]).path == "/ogc/collections/equipment"
    bad(api, f"{ITEMS}/no-such-feature", 404)
    for params, named in (({"limit": "0"}, "limit"), ({"limit": "many"}, "limit"),
                          ({"offset": "-1"}, "offset"), ({"bbox": "1,2,3"}, "bbox"),
                          ({"bbox": "114,35,113,34"}, "bbox"), ({"nope": "1"}, "nope"),
                          ({"f": "kml"}, "f")):
        assert named in bad(api, ITEMS, **params), params
    # /req/core/fc-links and /req/core/f-links: every link with rel and type; self, and
    # alternate for each other media type served (HTML, declared by features-1 html)
    for doc in (first, second, one):
        assert all(x.get("rel") and x.get("type") for x in doc["links"])
        link(doc, "self", GEOJSON)
    unlinked = [urlsplit(link(doc, "self")["href"]).path for doc in (first, one)
                if not any(x["rel"] == "alternate" and x.get("type") == HTML
                           for x in doc["links"])]
    if unlinked:
        pytest.xfail(f"no rel=alternate text/html link in the GeoJSON of {unlinked} "
                     "(Features 1 /req/core/fc-links B, /req/core/f-links B): "
                     "service/routes/ogc.py items() and item() add only self/collection")


def features_geojson(d: Demo) -> None:
    """Part 1 /req/geojson: items and a feature as application/geo+json (by default and for
    an Accept of it), each feature a GeoJSON Feature with id, geometry and properties."""
    api = d.api
    page = items(api, limit=5)
    for f in page["features"]:
        assert f["type"] == "Feature" and isinstance(f["properties"], dict)
        assert f["geometry"] is None or f["geometry"]["type"] == "Point"
    assert ok(api, ITEMS, GEOJSON, headers={"Accept": GEOJSON}, limit=1).json()["features"]
    assert ok(api, ITEMS, GEOJSON, f="json", limit=1).json()["features"]
    fid = quote(page["features"][0]["id"], safe="")
    one = ok(api, f"{ITEMS}/{fid}", GEOJSON, headers={"Accept": GEOJSON}).json()
    assert one["type"] == "Feature" and one["geometry"]["type"] == "Point"
    assert link(page, "self")["type"] == GEOJSON


def features_html(d: Demo) -> None:
    """Part 1 /req/html: items and a feature as HTML for f=html and for a browser, the
    feature's values on the page."""
    api = d.api
    feature = d.equipment[0]
    for path in (ITEMS, f"{ITEMS}/{quote(feature['id'], safe='')}"):
        page = ok(api, path, HTML, f="html").text
        assert page.startswith("<!DOCTYPE html>") and feature["id"] in page
        assert ok(api, path, HTML, headers={"Accept": BROWSER}).text.startswith("<!DOCTYPE")
    assert ok(api, ITEMS, HTML, f="html", limit=3, offset=3).text.count("<tr") >= 3


def features_oas30(d: Demo) -> None:
    """Part 1 /req/oas30: the OpenAPI 3.0 document describes the items and feature paths
    with their parameters."""
    api = d.api
    doc = body(api, link(body(api, "/ogc"), "service-desc")["href"], OPENAPI30)
    paths = full_paths(doc)
    items_path = next(p for p in paths if re.fullmatch(r"/ogc/collections/\{\w+\}/items", p))
    assert any(re.fullmatch(r"/ogc/collections/\{\w+\}/items/\{\w+\}", p) for p in paths)
    assert any(re.fullmatch(r"/ogc/collections/\{\w+\}", p) for p in paths)
    operation = paths[items_path]["get"]
    named = {p["name"] for p in operation["parameters"] if "name" in p}
    assert {"limit", "bbox", "crs", "filter", "filter-lang", "sortby"} <= named, named
    assert GEOJSON in operation["responses"]["200"]["content"]


def features_crs(d: Demo) -> None:
    """Part 2 /req/crs: the collections list their CRS and storage CRS; crs=EPSG:4490
    answers the same features in latitude/longitude order with a Content-Crs header;
    bbox-crs takes a box in that order; an unsupported crs is 400."""
    api = d.api
    listing = body(api, "/ogc/collections")
    assert CRS84 in listing["crs"] and CGCS2000 in listing["crs"]
    collection = body(api, "/ogc/collections/equipment")
    assert {CRS84, CGCS2000} <= set(collection["crs"])
    assert collection["storageCrs"] in collection["crs"]
    plain = ok(api, ITEMS, GEOJSON, limit=5)
    assert plain.headers["content-crs"] == f"<{CRS84}>"
    swapped = ok(api, ITEMS, GEOJSON, limit=5, crs=CGCS2000)
    assert swapped.headers["content-crs"] == f"<{CGCS2000}>"
    for a, b in zip(plain.json()["features"], swapped.json()["features"], strict=True):
        assert a["id"] == b["id"]
        if a["geometry"]:
            assert b["geometry"]["coordinates"] == pytest.approx(
                a["geometry"]["coordinates"][::-1], abs=1e-5)
    fid = quote(plain.json()["features"][0]["id"], safe="")
    one = ok(api, f"{ITEMS}/{fid}", GEOJSON, crs=CGCS2000)
    assert one.headers["content-crs"] == f"<{CGCS2000}>"
    assert ok(api, f"{ITEMS}/{fid}", GEOJSON).headers["content-crs"] == f"<{CRS84}>"
    assert one.json()["geometry"]["coordinates"] == pytest.approx(
        plain.json()["features"][0]["geometry"]["coordinates"][::-1], abs=1e-5)
    lon, lat = d.located[0]["geometry"]["coordinates"]
    box = (lon - 0.05, lat - 0.05, lon + 0.05, lat + 0.05)
    by_lonlat = items(api, bbox=",".join(map(str, box)))
    by_latlon = items(api, bbox=f"{box[1]},{box[0]},{box[3]},{box[2]}",
                      **{"bbox-crs": CGCS2000})
    assert ids(by_latlon) == ids(by_lonlat) and by_lonlat["features"]
    assert "crs" in bad(api, ITEMS, crs="EPSG:4326")
    assert "bbox-crs" in bad(api, ITEMS, bbox="113,34,114,35", **{"bbox-crs": "urn:nope"})
    assert "crs" in bad(api, f"{ITEMS}/{fid}", crs="http://www.opengis.net/def/crs/EPSG/0/3857")


def features_queryables(d: Demo) -> None:
    """Part 3 /req/queryables: the collection links its queryables (rel
    ogc/1.0/queryables), a JSON Schema served as application/schema+json naming each
    property with its type; f=html is a page."""
    api = d.api
    collection = body(api, "/ogc/collections/equipment")
    queryables = link(collection, REL + "queryables")
    assert queryables["type"] == SCHEMA_JSON
    schema = body(api, queryables["href"], SCHEMA_JSON)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["$id"] == queryables["href"] and schema["type"] == "object"
    props = schema["properties"]
    assert props["level"]["type"] == "string" and props["level"]["title"]
    assert props["D"]["type"] == "number"
    assert props["geometry"]["format"].startswith("geometry-")
    assert ok(api, queryables["href"], SCHEMA_JSON, headers={"Accept": SCHEMA_JSON}).json() \
        == schema
    assert ok(api, queryables["href"], HTML, f="html").text.startswith("<!DOCTYPE html>")
    bad(api, "/ogc/collections/demonstration/queryables", 404)


def features_filter(d: Demo) -> None:
    """Part 3 /req/filter: filter, filter-lang (cql2-text by default) and filter-crs; a
    malformed filter, an unknown property, an unknown language or CRS are 400 naming it."""
    api = d.api
    want = d.where(lambda p: p["level"] == "red")
    assert 0 < len(want) < len(d.equipment)
    assert filtered(api, "level = 'red'") == want
    assert ids(items(api, filter="level = 'red'", **{"filter-lang": "cql2-text"})) == want
    assert as_json(api, {"op": "=", "args": [{"property": "level"}, "red"]}) == want
    lon, lat = d.located[0]["geometry"]["coordinates"]
    box = (lon - 0.05, lat - 0.05, lon + 0.05, lat + 0.05)
    in_lonlat = filtered(api, "S_INTERSECTS(geometry, BBOX({},{},{},{}))".format(*box))
    swapped = f"S_INTERSECTS(geometry, BBOX({box[1]},{box[0]},{box[3]},{box[2]}))"
    in_latlon = ids(items(api, filter=swapped, **{"filter-crs": CGCS2000}))
    assert in_latlon == in_lonlat and d.located[0]["id"] in in_lonlat
    assert ids(items(api, filter="level = 'red'", **{"filter-crs": CRS84})) == want
    for params, named in (({"filter": "level = "}, "filter"),
                          ({"filter": "nope = 1"}, "nope"),
                          ({"filter": "level = 'red'", "filter-lang": "ecql"}, "filter-lang"),
                          ({"filter": "level = 'red'", "filter-crs": "EPSG:4326"},
                           "filter-crs")):
        assert named in bad(api, ITEMS, **params), params


def features_features_filter(d: Demo) -> None:
    """Part 3 /req/features-filter: the items endpoint takes a filter, ANDed with its
    other parameters (bbox, limit and paging): numberMatched counts the filtered rows."""
    api = d.api
    want = d.where(lambda p: p["level"] in ("red", "orange"))
    page = items(api, filter="level IN ('red', 'orange')", limit=5)
    assert page["numberMatched"] == len(want) and ids(page) == want[:5]
    following = ok(api, link(page, "next")["href"], GEOJSON).json()
    assert ids(following) == want[5:10]
    assert "filter=" in link(page, "next")["href"]
    lon, lat = d.located[0]["geometry"]["coordinates"]
    box = (lon - 0.1, lat - 0.1, lon + 0.1, lat + 0.1)
    boxed = set(ids(items(api, bbox=",".join(map(str, box)))))
    both = ids(items(api, filter="level IN ('red', 'orange')", bbox=",".join(map(str, box))))
    assert both == sorted(boxed & set(want))
    # the scope is ANDed in: no filter reaches past the county
    county = api["county"]
    assert filtered(api, f"county_adcode <> '{county}'") == []
    assert len(filtered(api, "level = 'red' OR level <> 'red' OR level IS NULL")) == len(
        d.equipment)


# CQL2 -------------------------------------------------------------------------------------------

def cql2_basic(d: Demo) -> None:
    """basic-cql2: the comparison operators, AND/OR/NOT and IS NULL, each against the
    county's rows."""
    api = d.api

    def num(p: dict) -> float:
        return p["D"] if p["D"] is not None else math.nan

    cases: list[tuple[str, Callable[[dict], bool]]] = [
        ("level = 'red'", lambda p: p["level"] == "red"),
        ("level <> 'red'", lambda p: p["level"] is not None and p["level"] != "red"),
        ("D < 70", lambda p: num(p) < 70),
        ("D <= 70", lambda p: num(p) <= 70),
        ("D > 160", lambda p: num(p) > 160),
        ("D >= 160", lambda p: num(p) >= 160),
        ("level = 'red' AND in_use = true", lambda p: p["level"] == "red" and p["in_use"] is True),
        ("level = 'red' OR D < 70", lambda p: p["level"] == "red" or num(p) < 70),
        ("NOT (level = 'red')", lambda p: p["level"] is not None and p["level"] != "red"),
        ("park_id IS NULL", lambda p: p["park_id"] is None),
        ("park_id IS NOT NULL", lambda p: p["park_id"] is not None),
        ("in_use = false", lambda p: p["in_use"] is False),
        ("next_inspection_due < DATE('2026-11-01')",
         lambda p: p["next_inspection_due"] is not None
         and p["next_inspection_due"][:10] < "2026-11-01"),
    ]
    for text, keep in cases:
        want = d.where(keep)
        assert want, text
        assert filtered(api, text) == want, text


def cql2_text(d: Demo) -> None:
    """cql2-text: the text encoding, by default and named; a malformed text is 400."""
    api = d.api
    text = "level = 'red' AND (D >= 160 OR park_id IS NULL)"
    want = d.where(lambda p: p["level"] == "red" and (
        (p["D"] is not None and p["D"] >= 160) or p["park_id"] is None))
    assert want
    assert filtered(api, text) == want
    assert ids(items(api, filter=text, **{"filter-lang": "cql2-text"})) == want
    assert "filter" in bad(api, ITEMS, filter="level = 'red' AND", **{"filter-lang": "cql2-text"})
    # booleanPrimary = function | predicate | booleanLiteral | "(" booleanExpression ")"
    # (CQL2 Annex B): TRUE alone is a filter, as CQL2 JSON's true is
    assert len(as_json(api, True)) == len(d.equipment)
    refused = [text for text in ("TRUE", "NOT FALSE", "level = 'red' AND TRUE")
               if get(api, WHO, ITEMS, filter=text, limit=1).status_code != 200]
    if refused:
        pytest.xfail(f"CQL2 text refuses a boolean literal as a condition: {refused} are 400 "
                     "(CQL2 JSON true is 200): service/cql2.py's grammar lacks booleanLiteral "
                     "in condition_1")


def cql2_json(d: Demo) -> None:
    """cql2-json: the JSON encoding of the same expression answers the same; malformed JSON
    or an unknown property is 400."""
    api = d.api
    document = {"op": "and", "args": [
        {"op": "=", "args": [{"property": "level"}, "red"]},
        {"op": "or", "args": [{"op": ">=", "args": [{"property": "D"}, 160]},
                              {"op": "isNull", "args": [{"property": "park_id"}]}]}]}
    want = filtered(api, "level = 'red' AND (D >= 160 OR park_id IS NULL)")
    assert want and as_json(api, document) == want
    for text, named in (('{"op": "="', "JSON"),
                        ('{"op": "=", "args": [{"property": "nope"}, 1]}', "nope")):
        assert named in bad(api, ITEMS, filter=text, **{"filter-lang": "cql2-json"})


def cql2_advanced_comparison(d: Demo) -> None:
    """advanced-comparison-operators: LIKE, BETWEEN and IN, in text and JSON."""
    api = d.api
    name = sorted(f["properties"]["unit_name"] for f in d.equipment
                  if f["properties"]["unit_name"])[len(d.equipment) // 2]
    head = name[:2]
    cases = [
        (f"unit_name LIKE '{head}%'", {"op": "like", "args": [{"property": "unit_name"},
                                                             f"{head}%"]},
         lambda p: (p["unit_name"] or "").startswith(head)),
        ("D BETWEEN 70 AND 160", {"op": "between", "args": [{"property": "D"}, 70, 160]},
         lambda p: p["D"] is not None and 70 <= p["D"] <= 160),
        ("level IN ('red', 'orange')", {"op": "in", "args": [{"property": "level"},
                                                            ["red", "orange"]]},
         lambda p: p["level"] in ("red", "orange")),
    ]
    for text, document, keep in cases:
        want = d.where(keep)
        assert 0 < len(want) < len(d.equipment), text
        assert filtered(api, text) == want, text
        assert as_json(api, document) == want, text
        negated = re.sub(r" (LIKE|BETWEEN|IN) ", r" NOT \1 ", text, count=1)
        field = document["args"][0]["property"]  # a missing value is not NOT-anything either
        assert filtered(api, negated) == d.where(
            lambda p, keep=keep, field=field: not keep(p) and p[field] is not None), negated
    assert filtered(api, f"unit_name LIKE '_{name[1:3]}%'") == d.where(
        lambda p: (p["unit_name"] or "")[1:3] == name[1:3])


def _probe(d: Demo) -> tuple[float, float]:
    """A point of the county's data (an equipment's location)."""
    lon, lat = d.located[len(d.located) // 2]["geometry"]["coordinates"]
    return lon, lat


def cql2_spatial(d: Demo) -> None:
    """basic-spatial-functions: S_INTERSECTS with a point, a bbox and a polygon, in text
    and JSON, against the geometries of the rows."""
    api = d.api
    lon, lat = _probe(d)
    point = shapely.Point(lon, lat)
    want = d.touching(point)
    assert want  # the county's region at least
    assert filtered(api, f"S_INTERSECTS(geometry, {point.wkt})", "regions") == want
    assert as_json(api, {"op": "s_intersects", "args": [{"property": "geometry"},
                                                        mapping(point)]}, "regions") == want
    box = (lon - 0.02, lat - 0.02, lon + 0.02, lat + 0.02)
    inside = sorted(f["id"] for f in d.located
                    if box[0] <= f["geometry"]["coordinates"][0] <= box[2]
                    and box[1] <= f["geometry"]["coordinates"][1] <= box[3])
    assert inside
    assert filtered(api, "S_INTERSECTS(geometry, BBOX({},{},{},{}))".format(*box)) == inside
    assert as_json(api, {"op": "s_intersects", "args": [{"property": "geometry"},
                                                        {"bbox": list(box)}]}) == inside
    polygon = shapely.box(*box)
    assert filtered(api, f"S_INTERSECTS(geometry, {polygon.wkt})") == inside
    assert as_json(api, {"op": "s_intersects", "args": [{"property": "geometry"},
                                                        mapping(polygon)]}) == inside
    bad(api, ITEMS, filter="S_INTERSECTS(geometry, POINT(1e999 0))")  # not a point


def cql2_spatial_plus(d: Demo) -> None:
    """basic-spatial-functions-plus: S_INTERSECTS with the other geometry types (line,
    multipoint, multiline, multipolygon, collection), in text and JSON."""
    api = d.api
    lon, lat = _probe(d)
    shapes = [
        shapely.LineString([(lon - 0.01, lat - 0.01), (lon + 0.01, lat + 0.01)]),
        shapely.MultiPoint([(lon, lat), (lon + 0.001, lat + 0.001)]),
        shapely.MultiLineString([[(lon - 0.01, lat), (lon + 0.01, lat)]]),
        shapely.MultiPolygon([shapely.box(lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01)]),
        shapely.GeometryCollection([shapely.Point(lon, lat),
                                    shapely.LineString([(lon, lat), (lon + 0.01, lat)])]),
    ]
    for geometry in shapes:
        want = d.touching(geometry)
        assert want, geometry.geom_type
        assert filtered(api, f"S_INTERSECTS(geometry, {geometry.wkt})", "regions") == want, \
            geometry.geom_type
        assert as_json(api, {"op": "s_intersects", "args": [{"property": "geometry"},
                                                            mapping(geometry)]},
                       "regions") == want, geometry.geom_type


def sorting(d: Demo) -> None:
    """Records /req/sorting: sortby orders by one or more queryables, + ascending and -
    descending; an unknown property is 400."""
    api = d.api
    down = items(api, sortby="-D", limit=50)["features"]
    values = [f["properties"]["D"] for f in down]
    assert values == sorted(values, reverse=True) and len(set(values)) > 1
    up = items(api, sortby="+D,registration_code", limit=50)["features"]
    ups = [(f["properties"]["D"], f["properties"]["registration_code"]) for f in up]
    assert ups == sorted(ups)
    top = max(f["properties"]["D"] for f in d.equipment if f["properties"]["D"] is not None)
    assert values[0] == top
    assert "nope" in bad(api, ITEMS, sortby="nope")
    assert "sortby" in bad(api, ITEMS, sortby="")


# OGC API – Tiles --------------------------------------------------------------------------------

def _busiest(d: Demo, z: int) -> tuple[int, int]:
    return Counter(tile_at(*f["geometry"]["coordinates"], z)
                   for f in d.located).most_common(1)[0][0]


def tiles_core(d: Demo) -> None:
    """Tiles /req/core: a tile at its tileMatrix/tileRow/tileCol address over the county's
    data is a non-empty tile; a tile matrix or index that is not a number is 400, one
    outside the tileset 404, an unknown tile matrix set 404, an unknown parameter 400."""
    api = d.api
    col, row = _busiest(d, 14)
    r = ok(api, f"{TILESET}/14/{row}/{col}", MVT)
    decoded = mapbox_vector_tile.decode(r.content)
    assert decoded["equipment"]["features"]
    assert r.headers["etag"]
    assert call(api, WHO, "GET", f"{TILESET}/14/{row}/{col}",
                headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    for path, status in ((f"{TILESET}/x/0/0", 400), (f"{TILESET}/3/-1/0", 400),
                         (f"{TILESET}/23/0/0", 404), (f"{TILESET}/2/4/0", 404),
                         ("/ogc/collections/equipment/tiles/WorldCRS84Quad/0/0/0", 404),
                         ("/ogc/collections/demonstration/tiles/WebMercatorQuad/0/0/0", 404)):
        bad(api, path, status)
    bad(api, f"{TILESET}/0/0/0", nope="1")


def tiles_tileset(d: Demo) -> None:
    """Tiles /req/tileset: the tileset metadata with its required members (dataType, crs,
    the tile matrix set by URI and by link, an rel=item templated link to the tiles) and
    each link resolving."""
    api = d.api
    meta = body(api, TILESET)
    assert meta["title"] and meta["dataType"] == "vector"
    assert meta["crs"] == "http://www.opengis.net/def/crs/EPSG/0/3857"
    assert meta["tileMatrixSetURI"] == TMS_URI
    scheme = link(meta, REL + "tiling-scheme")
    assert body(api, scheme["href"])["uri"] == TMS_URI
    item = link(meta, "item", MVT)
    assert item["templated"] is True
    assert {"{tileMatrix}", "{tileRow}", "{tileCol}"} <= set(re.findall(r"\{\w+\}",
                                                                         item["href"]))
    col, row = _busiest(d, 14)
    href = item["href"].format(tileMatrix=14, tileRow=row, tileCol=col)
    assert mapbox_vector_tile.decode(ok(api, href, MVT).content)["equipment"]["features"]
    assert urlsplit(link(meta, "self", JSON)["href"]).path == TILESET
    layer = meta["layers"][0]
    assert layer["id"] == "equipment" and layer["propertiesSchema"]["properties"]
    for limits in meta["tileMatrixSetLimits"]:
        assert limits["minTileRow"] <= limits["maxTileRow"]
    assert "f" in bad(api, TILESET, f="html")


def tiles_tilesets_list(d: Demo) -> None:
    """Tiles /req/tilesets-list: a collection's tilesets (and the map's at /ogc/tiles),
    each entry with dataType, crs, the tile matrix set and links to itself and its tiles."""
    api = d.api
    for path in ("/ogc/collections/equipment/tiles", "/ogc/tiles"):
        listing = body(api, path)
        assert urlsplit(link(listing, "self", JSON)["href"]).path == path
        assert listing["tilesets"]
        for entry in listing["tilesets"]:
            assert entry["dataType"] == "vector" and entry["crs"]
            assert entry["tileMatrixSetURI"] == TMS_URI
            assert link(entry, "item", MVT)["templated"] is True
            assert body(api, link(entry, "self")["href"])["dataType"] == "vector"
    listed = {e["id"] for e in body(api, "/ogc/tiles")["tilesets"]}
    assert "equipment" in listed and "demonstration" not in listed  # the county's only


def tiles_geodata(d: Demo) -> None:
    """Tiles /req/geodata-tilesets: each collection links its tilesets (rel
    tilesets-vector) at /ogc/collections/{id}/tiles, and they link back to it."""
    api = d.api
    collection = body(api, "/ogc/collections/equipment")
    tilesets = link(collection, REL + "tilesets-vector", JSON)
    listing = body(api, tilesets["href"])
    assert urlsplit(tilesets["href"]).path == "/ogc/collections/equipment/tiles"
    assert urlsplit(link(listing, "collection")["href"]).path == "/ogc/collections/equipment"
    for c in body(api, "/ogc/collections")["collections"]:
        assert any(x["rel"] == REL + "tilesets-vector" for x in c["links"]), c["id"]
    bad(api, "/ogc/collections/demonstration/tiles", 404)


def tiles_mvt(d: Demo) -> None:
    """Tiles /req/mvt: tiles as application/vnd.mapbox-vector-tile, the layer's features
    with their properties; an aggregated low-zoom tile too."""
    api = d.api
    col, row = _busiest(d, 14)
    tile = mapbox_vector_tile.decode(ok(api, f"{TILESET}/14/{row}/{col}", MVT).content)
    features = tile["equipment"]["features"]
    assert all("fid" in f["properties"] for f in features)
    located = {f["id"] for f in d.located}
    assert {f["properties"]["fid"] for f in features} <= located
    col, row = _busiest(d, 8)
    low = mapbox_vector_tile.decode(ok(api, f"{TILESET}/8/{row}/{col}", MVT).content)
    assert low["equipment"]["features"]


def tms_tilematrixset(d: Demo) -> None:
    """TMS 2.0 /req/tilematrixset: the tile matrix sets listed, each with its id, URI and
    a link to its definition."""
    api = d.api
    listing = body(api, "/ogc/tileMatrixSets")
    [tms] = listing["tileMatrixSets"]
    assert tms["id"] == "WebMercatorQuad" and tms["uri"] == TMS_URI
    definition = body(api, link(tms, "self")["href"])
    assert definition["id"] == tms["id"] and definition["uri"] == TMS_URI
    bad(api, "/ogc/tileMatrixSets/nope", 404)


def tms_json(d: Demo) -> None:
    """TMS 2.0 /req/json-tilematrixset: the definition's JSON members (id, crs, and each
    tile matrix's id, scaleDenominator, cellSize, pointOfOrigin, tile and matrix size)."""
    api = d.api
    tms = body(api, "/ogc/tileMatrixSets/WebMercatorQuad")
    assert tms["id"] == "WebMercatorQuad" and "3857" in str(tms["crs"])
    matrices = tms["tileMatrices"]
    assert len(matrices) >= 23
    for z, m in enumerate(matrices):
        assert m["id"] == str(z)
        assert m["scaleDenominator"] > 0 and m["cellSize"] > 0
        assert len(m["pointOfOrigin"]) == 2
        assert m["tileWidth"] == m["tileHeight"] == 256
        assert m["matrixWidth"] == m["matrixHeight"] == 1 << z
        if z:
            assert m["cellSize"] == pytest.approx(matrices[z - 1]["cellSize"] / 2)


# the registry -----------------------------------------------------------------------------------

CHECKS: dict[str, Callable[[Demo], None]] = {
    f"{SPEC}/ogcapi-common-1/1.0/conf/core": common_core,
    f"{SPEC}/ogcapi-common-1/1.0/conf/landing-page": common_landing_page,
    f"{SPEC}/ogcapi-common-1/1.0/conf/json": common_json,
    f"{SPEC}/ogcapi-common-1/1.0/conf/html": common_html,
    f"{SPEC}/ogcapi-common-1/1.0/conf/oas30": common_oas30,
    f"{SPEC}/ogcapi-common-2/1.0/conf/collections": common_collections,
    f"{SPEC}/ogcapi-features-1/1.0/conf/core": features_core,
    f"{SPEC}/ogcapi-features-1/1.0/conf/geojson": features_geojson,
    f"{SPEC}/ogcapi-features-1/1.0/conf/html": features_html,
    f"{SPEC}/ogcapi-features-1/1.0/conf/oas30": features_oas30,
    f"{SPEC}/ogcapi-features-2/1.0/conf/crs": features_crs,
    f"{SPEC}/ogcapi-features-3/1.0/conf/queryables": features_queryables,
    f"{SPEC}/ogcapi-features-3/1.0/conf/filter": features_filter,
    f"{SPEC}/ogcapi-features-3/1.0/conf/features-filter": features_features_filter,
    f"{SPEC}/cql2/1.0/conf/basic-cql2": cql2_basic,
    f"{SPEC}/cql2/1.0/conf/cql2-text": cql2_text,
    f"{SPEC}/cql2/1.0/conf/cql2-json": cql2_json,
    f"{SPEC}/cql2/1.0/conf/advanced-comparison-operators": cql2_advanced_comparison,
    f"{SPEC}/cql2/1.0/conf/basic-spatial-functions": cql2_spatial,
    f"{SPEC}/cql2/1.0/conf/basic-spatial-functions-plus": cql2_spatial_plus,
    f"{SPEC}/ogcapi-records-1/1.0/conf/sorting": sorting,
    f"{SPEC}/ogcapi-tiles-1/1.0/conf/core": tiles_core,
    f"{SPEC}/ogcapi-tiles-1/1.0/conf/tileset": tiles_tileset,
    f"{SPEC}/ogcapi-tiles-1/1.0/conf/tilesets-list": tiles_tilesets_list,
    f"{SPEC}/ogcapi-tiles-1/1.0/conf/geodata-tilesets": tiles_geodata,
    f"{SPEC}/ogcapi-tiles-1/1.0/conf/mvt": tiles_mvt,
    f"{SPEC}/tms/2.0/conf/tilematrixset": tms_tilematrixset,
    f"{SPEC}/tms/2.0/conf/json-tilematrixset": tms_json,
}


@pytest.fixture(scope="module")
def declared(api: dict) -> list[str]:
    r = get(api, WHO, "/ogc/conformance")
    assert r.status_code == 200 and media(r) == JSON, r.text
    return r.json()["conformsTo"]


def test_every_declared_class_has_a_check(declared):
    assert len(declared) == len(set(declared)), "a class declared twice"
    unchecked = sorted(set(declared) - set(CHECKS))
    assert not unchecked, f"declared without a check here: {unchecked}"
    missing = sorted(REQUIRED - set(declared))
    assert not missing, f"required by the issue, not declared: {missing}"
    assert set(CHECKS) >= REQUIRED


@pytest.mark.parametrize("uri", list(CHECKS), ids=lambda uri: uri.removeprefix(SPEC + "/"))
def test_declared_class(uri, declared, demo):
    if uri not in declared:
        pytest.skip(f"not declared: {uri}")
    CHECKS[uri](demo)
