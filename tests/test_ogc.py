"""OGC API – Features at /ogc on the seeded demo, both stores: landing page and conformance,
collections per role, items scoped in the query with bbox/limit/next, single items (404
outside the scope, like an unknown id), CRS84 and EPSG:4490 (lat/lon axis order), bad
parameters as 400/404, and OWSLib's client against a live server."""

from __future__ import annotations

from collections.abc import Iterator

import owslib.ogcapi
import pytest
from owslib.ogcapi.features import Features

from layers.registry import LAYERS
from service.app import create_app
from service.settings import Settings
from tests.servers import get, serving

pytestmark = [pytest.mark.slow, pytest.mark.reads_demo]

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CGCS2000 = "http://www.opengis.net/def/crs/EPSG/0/4490"
BOX = "113.5,34.6,113.9,34.9"  # lon/lat around Zhengzhou
BOX_4490 = "34.6,113.5,34.9,113.9"  # the same box, latitude first


def items(api, who: str, layer: str, **params) -> dict:
    r = get(api, who, f"/ogc/collections/{layer}/items", **{"limit": 10_000, **params})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/geo+json"
    body = r.json()
    assert body["type"] == "FeatureCollection"
    assert body["numberReturned"] == len(body["features"]) <= body["numberMatched"]
    return body


def links(body: dict) -> dict[str, str]:
    return {link["rel"]: link["href"] for link in body["links"]}


def coordinates(feature: dict) -> list[float]:
    return feature["geometry"]["coordinates"]


# landing page, conformance, collections ------------------------------------------------------

def test_landing_page_links_and_conformance(api):
    for path in ("/ogc", "/ogc/"):
        r = get(api, "county", path)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        rel = links(r.json())
        assert {"self", "service-desc", "conformance", "data"} <= set(rel)
    # the service-desc is the /ogc part as OpenAPI 3.0 (service-doc: every endpoint)
    assert rel["service-desc"].endswith("/ogc/api")
    desc = get(api, "county", "/ogc/api")
    assert desc.json()["openapi"].startswith("3.0") and desc.json()["paths"]["/collections"]
    assert rel["conformance"].endswith("/ogc/conformance")
    assert rel["data"].endswith("/ogc/collections")
    conforms = get(api, "county", "/ogc/conformance", f="json").json()["conformsTo"]
    assert {"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
            "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
            "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs"} <= set(conforms)


@pytest.mark.parametrize("path", ["/ogc", "/ogc/conformance", "/ogc/collections",
                                  "/ogc/collections/equipment/items",
                                  "/ogc/collections/equipment/items/x"])
def test_every_endpoint_needs_a_token(api, path):
    r = get(api, None, path)
    assert r.status_code == 401 and "features" not in r.json()
    forged = api["client"].get(path, headers={"Authorization": "Bearer rmk_forged"})
    assert forged.status_code == 401


def test_collections_are_the_map_layers_each_role_may_see(api):
    seen = {}
    for who in api["tokens"]:
        body = get(api, who, "/ogc/collections").json()
        seen[who] = {c["id"] for c in body["collections"]}
        for c in body["collections"]:
            assert c["itemType"] == "feature" and c["storageCrs"] == CRS84
            assert c["crs"] == [CRS84, CGCS2000] and c["title"] == LAYERS[c["id"]].title
            temporal = c["extent"]["temporal"]  # of the temporal field, on the caller's rows
            if c["id"] in ("hazards", "equipment", "overdue", "frequency") and (
                    who == "admin" or temporal is not None):
                start, end = temporal["interval"][0]
                assert start <= end
            else:
                assert temporal is None
            x0, y0, x1, y1 = c["extent"]["spatial"]["bbox"][0]
            assert 100 < x0 < x1 < 120 and 30 < y0 < y1 < 40
            assert {"self", "items"} <= set(links(c))
    assert seen["admin"] == set(LAYERS)  # map layers only, not the finding tables
    assert "demonstration" not in seen["county"] and "demonstration" in seen["city"]
    assert "regions" not in seen["officer"] and "grid-cells" in seen["officer"]
    assert not seen["park"] & {"regions", "grid-cells", "warnings"}
    one = get(api, "county", "/ogc/collections/equipment").json()
    assert one["id"] == "equipment" and links(one)["items"].endswith("/equipment/items")
    # a county regulator's extent is their county, inside the admin's (the provinces)
    county = one["extent"]["spatial"]["bbox"][0]
    whole = get(api, "admin", "/ogc/collections/equipment").json()["extent"]["spatial"]["bbox"][0]
    assert whole[0] <= county[0] < county[2] <= whole[2]
    assert whole[2] - whole[0] > 2 * (county[2] - county[0])


@pytest.mark.parametrize("who, layer", [("county", "demonstration"), ("officer", "regions"),
                                        ("park", "warnings"), ("admin", "check-schedule"),
                                        ("admin", "nope")])
def test_a_collection_out_of_scope_is_not_found_like_an_unknown_one(api, who, layer):
    for path in (f"/ogc/collections/{layer}", f"/ogc/collections/{layer}/items",
                 f"/ogc/collections/{layer}/items/410100:3000:X"):
        r = get(api, who, path)
        assert r.status_code == 404, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "features" not in r.json()


# items: scope in the query -----------------------------------------------------------------

CASES = [("county", "equipment"), ("county", "hazards"), ("county", "regions"),
         ("city", "demonstration"), ("planner", "units"), ("officer", "equipment"),
         ("officer", "grid-cells"), ("park", "equipment"), ("park", "parks"),
         ("county", "risk-cells"), ("officer", "risk-cells")]


@pytest.mark.parametrize("who, layer", CASES)
def test_items_are_exactly_what_the_caller_gets_from_the_layers_api(api, who, layer):
    """The same scoped query as /api/layers: same features, and fewer than the admin's."""
    mine = items(api, who, layer)
    same = get(api, who, f"/api/layers/{layer}", limit=10_000).json()
    assert mine["numberMatched"] == same["numberMatched"] > 0
    assert [f["id"] for f in mine["features"]] == [f["id"] for f in same["features"]]
    every = items(api, "admin", layer)
    assert mine["numberMatched"] < every["numberMatched"]


def test_items_of_an_officer_lie_in_their_cells(api):
    for layer in ("equipment", "hazards", "units"):
        props = [f["properties"] for f in items(api, "officer", layer)["features"]]
        assert props and all(p["h3"] in api["officer_cells"] for p in props)


def test_default_limit_paging_with_next_and_prev_covers_everything_once(api):
    first = get(api, "admin", "/ogc/collections/equipment/items").json()
    assert first["numberReturned"] == 10 and "timeStamp" in first
    page = get(api, "admin", "/ogc/collections/equipment/items", limit=25,
               level="red").json()
    total, seen = page["numberMatched"], []
    assert total > 50  # three pages or more
    while True:
        assert all(f["properties"]["level"] == "red" for f in page["features"])
        seen += [f["id"] for f in page["features"]]
        rel = links(page)
        assert rel["collection"].endswith("/ogc/collections/equipment")
        if "next" not in rel:
            break
        assert "level=red" in rel["next"]  # the filters travel with the page links
        page = api["client"].get(rel["next"], headers={
            "Authorization": f"Bearer {api['tokens']['admin']}"}).json()
        assert "prev" in links(page)
    assert len(seen) == len(set(seen)) == total


def test_a_limit_above_the_maximum_is_clamped(api):
    body = items(api, "admin", "equipment", limit=50_000)  # not an error (Part 1 7.15.3)
    assert body["numberReturned"] == body["numberMatched"] <= 10_000


def test_bbox_selects_inside_and_risk_cells_take_a_resolution(api):
    inside = items(api, "admin", "equipment", bbox=BOX)["features"]
    assert inside and all(113.5 <= coordinates(f)[0] <= 113.9 and
                          34.6 <= coordinates(f)[1] <= 34.9 for f in inside)
    assert len(inside) < items(api, "admin", "equipment", limit=1)["numberMatched"]
    cells = items(api, "admin", "risk-cells")["features"]  # resolution 7 by default
    assert cells and {f["properties"]["resolution"] for f in cells} == {7}
    fine = items(api, "admin", "risk-cells", resolution=8, bbox=BOX)["features"]
    assert fine and {f["properties"]["resolution"] for f in fine} == {8}


# single items --------------------------------------------------------------------------------

def test_single_items_in_scope_and_out_of_scope(api):
    mine = items(api, "county", "equipment", limit=1)["features"][0]
    r = get(api, "county", f"/ogc/collections/equipment/items/{mine['id']}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    one = r.json()
    assert one["type"] == "Feature" and one["id"] == mine["id"]
    assert one["properties"] == mine["properties"] and "collection" in links(one)
    assert r.headers["content-crs"] == f"<{CRS84}>"
    other = items(api, "admin", "equipment", adcode=api["city"][:2], limit=10_000)["features"]
    theirs = next(f for f in other if f["properties"]["county_adcode"] != api["county"])
    absent = get(api, "county", "/ogc/collections/equipment/items/NO-SUCH-CODE")
    hidden = get(api, "county", f"/ogc/collections/equipment/items/{theirs['id']}")
    assert hidden.status_code == absent.status_code == 404
    assert hidden.json() == absent.json()  # nothing tells "not yours" from "not there"
    assert get(api, "admin", f"/ogc/collections/equipment/items/{theirs['id']}"
               ).status_code == 200


@pytest.mark.parametrize("who, layer", [("officer", "grid-cells"), ("officer", "hazards"),
                                        ("park", "parks"), ("park", "units"),
                                        ("county", "regions"), ("county", "risk-cells"),
                                        ("officer", "risk-cells")])
def test_single_items_follow_the_scope_of_each_role(api, who, layer):
    params = {"resolution": 8} if layer == "risk-cells" else {}
    mine = {f["id"] for f in items(api, who, layer, **params)["features"]}
    every = [f["id"] for f in items(api, "admin", layer, **params)["features"]]
    inside = min(mine)
    outside = next(fid for fid in every if fid not in mine)
    path = f"/ogc/collections/{layer}/items/"
    assert get(api, who, path + inside).json()["id"] == inside
    r = get(api, who, path + outside)
    assert r.status_code == 404 and "geometry" not in r.json()


def test_every_collection_serves_its_first_item_by_id(api):
    for layer in LAYERS:
        first = items(api, "admin", layer, limit=1)["features"]
        if first:
            r = get(api, "admin", f"/ogc/collections/{layer}/items/{first[0]['id']}")
            assert r.status_code == 200 and r.json()["id"] == first[0]["id"], (layer, r.text)


# CRS ---------------------------------------------------------------------------------------

def test_cgcs2000_swaps_the_axes_of_crs84(api):
    wgs = items(api, "admin", "equipment", bbox=BOX, limit=50)
    r = get(api, "admin", "/ogc/collections/equipment/items", bbox=BOX, limit=50, crs=CGCS2000)
    assert r.headers["content-crs"] == f"<{CGCS2000}>"
    cgcs = r.json()
    assert [coordinates(f) for f in cgcs["features"]] == [
        coordinates(f)[::-1] for f in wgs["features"]]
    x0, y0, x1, y1 = wgs["bbox"]
    assert cgcs["bbox"] == [y0, x0, y1, x1]
    assert "crs=" in links(cgcs)["next"]
    # a bbox given in EPSG:4490 is latitude first too
    same = items(api, "admin", "equipment", bbox=BOX_4490, limit=50,
                 **{"bbox-crs": CGCS2000})
    assert [f["id"] for f in same["features"]] == [f["id"] for f in wgs["features"]]
    park = items(api, "admin", "parks", limit=1)["features"][0]
    one = get(api, "admin", f"/ogc/collections/parks/items/{park['id']}", crs=CGCS2000)
    assert one.headers["content-crs"] == f"<{CGCS2000}>"
    ring, swapped = coordinates(park)[0][0], coordinates(one.json())[0][0]
    assert swapped == [xy[::-1] for xy in ring]


# bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("params", [
    {"limit": 0}, {"limit": -5}, {"limit": "ten"}, {"offset": -1}, {"offset": "x"},
    {"bbox": "1,2,3"}, {"bbox": "a,b,c,d"}, {"bbox": "114,35,113,34"},
    {"bbox": "nan,34,114,35"}, {"bbox": "113,34,114,95"}, {"bbox": BOX, "bbox-crs": "EPSG:4326"},
    {"bbox": "113.5,34.6,113.9,34.9", "bbox-crs": CGCS2000},  # lon first is not 4490 order
    {"crs": "http://www.opengis.net/def/crs/EPSG/0/3857"}, {"crs": "EPSG:4490"},
    {"f": "xml"}, {"foo": "1"}, {"datetime": "yesterday"}, {"resolution": 4},
    {"level": "purple"}, {"park": "P1' OR 1=1 --"},
])
def test_bad_parameters_are_400(api, params):
    r = get(api, "admin", "/ogc/collections/equipment/items", **params)
    assert r.status_code == 400, (params, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("path, status", [
    ("/ogc/collections/equipment/items/a b", 404), ("/ogc/collections/equipment/items/" +
                                                     "x" * 300, 404),
    ("/ogc/collections/risk-cells/items/not-a-cell", 404),
    ("/ogc/collections/risk-cells/items/8031fffffffffff", 404),  # H3 resolution 0
    # a long run of digits is no cell (h3 raises OverflowError on it, found by schemathesis)
    ("/ogc/collections/risk-cells/items/11004101032023000001", 404),
    ("/ogc/collections/DROP TABLE/items", 404), ("/ogc/collections/equipment/items/x?crs=1", 400),
    ("/ogc/conformance?f=xml", 400), ("/ogc/collections?bbox=1,2,3,4", 400),
])
def test_bad_paths_are_404_and_never_500(api, path, status):
    r = api["client"].get(path, headers={"Authorization": f"Bearer {api['tokens']['admin']}"})
    assert r.status_code == status, r.text


def test_a_datetime_filters_the_layers_temporal_property_or_is_400(api):
    """(Details in tests/test_ogc_filter.py.) A layer without a temporal property refuses
    ``datetime`` instead of ignoring it."""
    whole = items(api, "admin", "hazards", limit=1)["numberMatched"]
    assert items(api, "admin", "hazards", limit=1, datetime="2020-01-01/..")["numberMatched"] \
        == whole  # every open hazard was found after 2020
    assert items(api, "admin", "hazards", limit=1, datetime="../2000-01-01")[
        "numberMatched"] == 0
    r = get(api, "admin", "/ogc/collections/regions/items", datetime="2026-11-01T00:00:00Z")
    assert r.status_code == 400 and "datetime" in r.json()["detail"]


# a real client -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def live(api) -> Iterator[str]:
    """The app on the same store, served by uvicorn on 127.0.0.1 in a thread."""
    with serving(create_app(Settings(store=api["url"]))) as (url, _port):
        yield url


@pytest.fixture
def client_headers() -> Iterator[None]:
    """OWSLib merges the headers given to one client into its module-wide defaults: put
    them back afterwards so no token outlives the test."""
    saved = dict(owslib.ogcapi.REQUEST_HEADERS)
    yield
    owslib.ogcapi.REQUEST_HEADERS.clear()
    owslib.ogcapi.REQUEST_HEADERS.update(saved)


def test_owslib_lists_collections_and_fetches_items(api, live, client_headers):
    county = Features(f"{live}/ogc", headers={
        "Authorization": f"Bearer {api['tokens']['county']}"})
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in \
        county.conformance()["conformsTo"]
    ids = county.feature_collections()
    assert "equipment" in ids and "demonstration" not in ids
    assert county.collection("equipment")["title"] == "设备风险分级"
    page = county.collection_items("equipment", bbox=[110, 31, 117, 37], limit=5)
    assert page["numberReturned"] == len(page["features"]) == 5
    assert page["numberMatched"] > 5
    assert all(f["properties"]["county_adcode"] == api["county"] for f in page["features"])
    nxt = county.collection_items("equipment", bbox=[110, 31, 117, 37], limit=5, offset=5)
    assert not {f["id"] for f in nxt["features"]} & {f["id"] for f in page["features"]}
    fid = page["features"][0]["id"]
    one = county.collection_item("equipment", fid)
    assert one["id"] == fid and one["geometry"]["type"] == "Point"
    assert county.response_headers["Content-Crs"] == f"<{CRS84}>"
    admin_only = items(api, "admin", "equipment", limit=10_000)["features"]
    theirs = next(f["id"] for f in admin_only
                  if f["properties"]["county_adcode"] != api["county"])
    with pytest.raises(RuntimeError):  # 404: OWSLib raises on any error status
        county.collection_item("equipment", theirs)
    # (OWSLib's api() looks only for an OpenAPI 3.0 link; FastAPI serves 3.1, not claimed)
