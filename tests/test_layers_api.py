"""/api/layers on the seeded demo, both stores: every role sees its scope and nothing else,
the scope is part of the query (counts match), filters, paging and output datums work."""

from __future__ import annotations

import json

import numpy as np
import pytest

from layers.registry import ALL
from tests.servers import get

pytestmark = [pytest.mark.slow, pytest.mark.reads_demo]


def features(api, who: str, layer: str, **params) -> list[dict]:
    r = get(api, who, f"/api/layers/{layer}", **{"limit": 10_000, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["numberReturned"] == len(body["features"]) <= body["numberMatched"]
    return body["features"]


def props(api, who: str, layer: str, **params) -> list[dict]:
    return [f["properties"] for f in features(api, who, layer, **params)]


# who may call at all ----------------------------------------------------------------------

def test_no_token_or_a_wrong_one_is_401(api):
    for path in ("/api/layers", "/api/layers/equipment", "/api/boundaries"):
        r = get(api, None, path)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["title"] == "未认证"
    bad = api["client"].get("/api/layers", headers={"Authorization": "Bearer rmk_forged"})
    assert bad.status_code == 401
    assert get(api, None, "/healthz").status_code == 200  # public


def test_the_catalogue_lists_what_each_role_may_see(api):
    ids = {who: {lay["id"] for lay in get(api, who, "/api/layers").json()["layers"]}
           for who in api["tokens"]}
    assert ids["admin"] == set(ALL)
    assert {"equipment", "regions", "hotspots", "demonstration", "risk-cells"} <= ids["city"]
    assert "demonstration" not in ids["county"]  # per-city layer, finer scope
    assert ids["officer"] >= {"equipment", "units", "hazards", "grid-cells", "risk-cells"}
    assert not ids["officer"] & {"regions", "parks", "warnings", "demonstration"}
    assert ids["park"] >= {"equipment", "units", "hazards", "parks"}
    assert not ids["park"] & {"regions", "grid-cells", "warnings"}
    layer = get(api, "admin", "/api/layers").json()["layers"][0]
    assert {"id", "title", "geometry_type", "fields", "updated", "rows"} <= set(layer)


# scope in the query ------------------------------------------------------------------------

# (who, layer, expected): what each scoped caller may get from each layer
CASES = [
    ("county", "equipment", "county"), ("county", "hazards", "county"),
    ("county", "units", "county"), ("county", "regions", "county-region"),
    ("county", "overdue", "county"), ("county", "frequency", "county"),
    ("county", "demonstration", 403), ("county", "parks", "county"),
    ("city", "equipment", "city"), ("city", "regions", "city-region"),
    ("city", "demonstration", "city"), ("city", "warnings", "city-region"),
    ("planner", "equipment", "county"),
    ("officer", "equipment", "cells"), ("officer", "hazards", "cells"),
    ("officer", "units", "cells"), ("officer", "grid-cells", "officer"),
    ("officer", "regions", 403), ("officer", "parks", 403), ("officer", "insurance", 403),
    ("park", "equipment", "park"), ("park", "hazards", "park"), ("park", "parks", "park"),
    ("park", "units", "park"), ("park", "regions", 403), ("park", "warnings", 403),
    ("park", "grid-cells", 403),
]


@pytest.mark.parametrize("who, layer, expected", CASES)
def test_each_role_sees_its_scope_only(api, who, layer, expected):
    if isinstance(expected, int):
        r = get(api, who, f"/api/layers/{layer}")
        assert r.status_code == expected and "features" not in r.json()
        return
    mine = props(api, who, layer)
    every = props(api, "admin", layer)
    county, city = api["county"], api["city"]
    rule = {
        "county": lambda p: (p.get("county_adcode") or p.get("adcode")) == county,
        "city": lambda p: str(p.get("county_adcode") or p.get("city_adcode") or "")
        .startswith(city[:4]),
        "county-region": lambda p: p["adcode"] == county and p["admin_level"] == "county",
        "city-region": lambda p: p.get("city_adcode") == city,
        "cells": lambda p: p["h3"] in api["officer_cells"],
        "officer": lambda p: p["officer_id"] == api["officer"],
        "park": lambda p: p["park_id"] == api["park"],
    }[expected]
    if layer == "parks" and expected == "county":
        rule = lambda p: p["county_adcode"] == county  # noqa: E731
    assert all(rule(p) for p in mine)
    # in the query, not after it: exactly the caller's rows, however many there are
    if expected == "officer":  # one row per cell the officer owns
        assert len(mine) == len(api["officer_cells"])
    else:
        assert len(every) < 10_000  # the admin's one page is the whole layer
        assert len(mine) == sum(rule(p) for p in every)


def test_a_filter_outside_the_scope_returns_nothing(api):
    other = "410102" if api["county"] != "410102" else "410103"
    assert features(api, "county", "equipment", adcode=other) == []
    assert features(api, "park", "equipment", park="NOPE") == []


def test_scoped_risk_cells_count_only_the_callers_equipment(api):
    eq = props(api, "admin", "equipment", adcode=api["county"])
    graded = sum(1 for p in eq if p["level_rank"] > 0)
    for res in (6, 8):
        cells = props(api, "county", "risk-cells", resolution=res)
        assert sum(c["equipment"] for c in cells) == graded
    whole = props(api, "admin", "risk-cells", resolution=5)
    assert sum(c["equipment"] for c in whole) >= graded


# filters, paging, datums -------------------------------------------------------------------

def test_filters_by_level_category_industry_and_resolution(api):
    red = props(api, "admin", "equipment", level="red")
    assert red and all(p["level"] == "red" for p in red)
    lifts = props(api, "admin", "equipment", category="3000")
    assert lifts and all(p["top_category"] == "3000" for p in lifts)
    made = props(api, "admin", "units", industry="C")
    assert made and all(p["industry"] == "C" for p in made)
    cells = props(api, "admin", "risk-cells", resolution=6)
    assert cells and all(c["resolution"] == 6 for c in cells)


@pytest.mark.parametrize("params, status", [
    ({"level": "purple"}, 400), ({"category": "3100"}, 400), ({"industry": "Z"}, 400),
    ({"adcode": "41a"}, 400), ({"bbox": "1,2,3"}, 400), ({"bbox": "114,35,113,34"}, 400),
    ({"limit": 0}, 422), ({"limit": 10_001}, 422), ({"offset": -1}, 422),
    ({"crs": "EPSG:3857"}, 422), ({"resolution": 4}, 422),
])
def test_bad_parameters_are_refused(api, params, status):
    r = get(api, "admin", "/api/layers/equipment", **params)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_filters_a_layer_cannot_take_are_refused_and_unknown_layers_404(api):
    assert get(api, "admin", "/api/layers/regions", park="P1").status_code == 400
    assert get(api, "admin", "/api/layers/hotspots", industry="C").status_code == 400
    assert get(api, "admin", "/api/layers/nope").status_code == 404
    assert get(api, "admin", "/api/layers/DROP TABLE").status_code == 422


def test_pages_link_to_each_other_and_cover_everything_once(api):
    first = get(api, "admin", "/api/layers/equipment", limit=500).json()
    total = first["numberMatched"]
    seen, page = [], first
    while True:
        seen += [f["id"] for f in page["features"]]
        nxt = [link["href"] for link in page["links"] if link["rel"] == "next"]
        if not nxt:
            break
        page = api["client"].get(nxt[0], headers={
            "Authorization": f"Bearer {api['tokens']['admin']}"}).json()
        assert any(link["rel"] == "prev" for link in page["links"])
    assert len(seen) == len(set(seen)) == total


def test_bbox_and_output_datums(api):
    box = "113.5,34.6,113.9,34.9"
    inside = features(api, "admin", "equipment", bbox=box)
    assert inside and all(113.5 <= f["geometry"]["coordinates"][0] <= 113.9 for f in inside)
    wgs = features(api, "admin", "equipment", bbox=box, limit=50)
    gcj = get(api, "admin", "/api/layers/equipment", bbox=box, limit=50,
              crs="GCJ02").json()["features"]
    cgcs = get(api, "admin", "/api/layers/equipment", bbox=box, limit=50, crs="EPSG:4490")
    assert "4490" in cgcs.headers["content-crs"]
    shift = np.array([[g["geometry"]["coordinates"][i] - w["geometry"]["coordinates"][i]
                       for i in (0, 1)] for g, w in zip(gcj, wgs, strict=True)])
    # GCJ-02 moves points in Zhengzhou by roughly +0.006° lon, −0.001° lat (hundreds of m)
    assert (np.abs(shift[:, 0]) > 0.003).all() and (np.abs(shift[:, 0]) < 0.01).all()


def test_json_fields_are_json_and_features_carry_their_id(api):
    park = features(api, "admin", "parks", limit=1)[0]
    assert isinstance(park["properties"]["measures"], list)
    assert park["id"] == park["properties"]["park_id"]
    body = get(api, "admin", "/api/layers/parks").json()
    assert len(body["bbox"]) == 4 and json.dumps(body)
