"""Park profiles, region summaries and demonstration enterprises over HTTP, scoped."""

from __future__ import annotations

import pytest

from tests.servers import get

pytestmark = [pytest.mark.slow, pytest.mark.reads_demo]


def test_a_park_admin_sees_their_park_profile_and_no_other(api):
    r = get(api, "park", f"/api/parks/{api['park']}/profile")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["park"]["park_id"] == api["park"] and isinstance(body["park"]["measures"], list)
    assert isinstance(body["park"]["monthly"], list) and body["park"]["rank"] >= 1
    assert all(u["park_id"] == api["park"] for u in body["units"])
    levels = [u["level_rank"] for u in body["units"]]
    assert levels == sorted(levels, reverse=True)
    parks = get(api, "admin", "/api/layers/parks").json()["features"]
    other = next(p["id"] for p in parks if p["id"] != api["park"])
    assert get(api, "park", f"/api/parks/{other}/profile").status_code == 404
    assert get(api, "park", "/api/parks/a%20b/profile").status_code == 422


def test_region_summaries_follow_the_scope(api):
    county = get(api, "county", f"/api/regions/{api['county']}/summary")
    assert county.status_code == 200
    body = county.json()
    assert body["region"]["adcode"] == api["county"]
    assert {"insurance", "warnings", "industries"} <= set(body)
    assert all(i["adcode"] == api["county"] for i in body["industries"])
    assert get(api, "county", "/api/regions/410000/summary").status_code == 404
    assert get(api, "city", f"/api/regions/{api['city']}/summary").status_code == 200
    assert get(api, "officer", f"/api/regions/{api['county']}/summary").status_code == 403
    assert get(api, "admin", "/api/regions/41/summary").json()["region"]["adcode"] == "410000"
    assert get(api, "admin", "/api/regions/41x/summary").status_code == 422


def test_demonstration_enterprises_and_their_gaps(api):
    r = get(api, "city", "/api/demonstration", city=api["city"])
    assert r.status_code == 200
    body = r.json()
    assert all(c["city_adcode"] == api["city"] for c in body["chosen"])
    assert body["gaps"] == sum(1 for c in body["coverage"] if c["gap"])
    assert get(api, "county", "/api/demonstration").status_code == 403
    assert get(api, "admin", "/api/demonstration", category="3100").status_code == 400
