"""The first service: health, cells and boundaries as GeoJSON, the map page; both stores."""

from __future__ import annotations

import json
import re

import h3
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import Role, create_user
from service.ingest.pipeline import IngestOptions, ingest
from service.settings import Settings
from tests import ingest_files as f


def admin_token(store) -> str:
    _user, token = create_user(store, name="管理员", role=Role.ADMIN, scope=None,
                               pepper=Settings().token_pepper.get_secret_value(),
                               provinces=["410000", "610000"])
    return token


def _fill(store, tmp) -> dict:
    ingest([str(f.write_equipment_csv(tmp / "eq.csv"))], store, IngestOptions())
    return {"token": admin_token(store)}


@pytest.fixture()
def client(filled_store):
    """The service, as an administrator, on this test's copy of the store ``_fill`` filled."""
    filled = filled_store(_fill)
    app = create_app(Settings(store=filled.url))
    with TestClient(app, headers={"Authorization": f"Bearer {filled.facts['token']}"}) as c:
        yield c


def test_healthz(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["h3_resolution"] == 8
    assert body["store"] in {"embedded", "postgis"}


@pytest.mark.parametrize("res", [5, 6, 7, 8])
def test_cells_count_the_equipment(client, res):
    r = client.get("/api/cells", params={"resolution": res})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    features = r.json()["features"]
    assert sum(ft["properties"]["count"] for ft in features) == len(f.GOOD_EQUIPMENT)
    cell = h3.latlng_to_cell(f.ZHENGZHOU_JINSHUI[1], f.ZHENGZHOU_JINSHUI[0], res)
    by_cell = {ft["properties"]["h3"]: ft["properties"]["count"] for ft in features}
    assert by_cell[cell] == 3  # the WGS84, GCJ-02 and BD-09 rows of one place
    assert features[0]["geometry"]["type"] == "Polygon"


def test_bad_resolution_is_a_problem_not_a_crash(client):
    r = client.get("/api/cells", params={"resolution": 10})
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["title"] == "参数错误"
    r = client.get("/api/cells", params={"resolution": "x"})
    assert r.status_code == 422
    assert r.json()["detail"] == "H3 分辨率（resolution）须为整数 / resolution must be an integer"
    r = client.get("/api/boundaries", params={"level": "town"})
    assert r.status_code == 422 and r.json()["detail"].startswith(
        "级别（level）须为 province、city 或 county 之一 / ")


def test_boundaries(client):
    counties = client.get("/api/boundaries", params={"level": "county"}).json()["features"]
    assert len(counties) == 157 + 107
    names = {ft["properties"]["name"] for ft in counties}
    assert {"金水区", "雁塔区"} <= names


def test_map_page_is_built_from_the_store(client):
    r = client.get("/map", params={"resolution": 7})
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    html = r.text
    assert "leaflet" in html.lower()
    for label in ("设备分布", "区县边界"):  # folium writes layer names as JSON (\\u escapes)
        assert label in html or json.dumps(label)[1:-1] in html
    cell = h3.latlng_to_cell(f.ZHENGZHOU_JINSHUI[1], f.ZHENGZHOU_JINSHUI[0], 7)
    assert cell in html  # the cell counted from the store is drawn
    assert client.get("/map", params={"resolution": 11}).status_code == 400
    assert 'href="?resolution=8"' in html  # the resolution switch


def test_map_shows_only_provinces_holding_data(store_factory, tmp_path):
    store = store_factory()
    url = getattr(store, "url", None) or str(getattr(store, "root", tmp_path))
    rows = [r for r in f.equipment_rows() if r[0] != "31106101132019000015"]  # Henan only
    ingest([str(f.write_equipment_csv(tmp_path / "eq.csv", rows=rows))], store,
           IngestOptions())
    token = admin_token(store)
    store.close()
    with TestClient(create_app(Settings(store=url))) as c:
        assert "/login" in str(c.get("/map").url)  # no token: the login page
        csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
        c.post("/login", data={"token": token, "csrf": csrf})  # a session cookie
        html = c.get("/map").text
    assert "410105" in html and "610113" not in html


def test_openapi_lists_the_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/healthz", "/api/cells", "/api/boundaries", "/map"} <= set(paths)


def test_map_shows_the_built_risk_layers(store_factory, tmp_path):
    """After ``riskmap build`` the map draws risk cells by level (resolutions 5–7 only)."""
    from datetime import date

    from service.build import run_build

    store = store_factory()
    url = getattr(store, "url", None) or str(getattr(store, "root", tmp_path))
    ingest([str(f.write_equipment_csv(tmp_path / "eq.csv"))], store, IngestOptions())
    build = run_build(store, ["410000", "610000"], as_of=date(2026, 11, 1))
    token = admin_token(store)
    store.close()
    with TestClient(create_app(Settings(store=url)),
                    headers={"Authorization": f"Bearer {token}"}) as c:
        page = c.get("/map")
        assert page.status_code == 200
        assert "网格风险" in page.text and build.rules_hash in page.text
        assert c.get("/map", params={"resolution": 8}).status_code == 400
        assert '"openZoom": 8' in c.get("/map", params={"resolution": 7}).text  # grid size


def test_layers_built_by_another_version_ask_for_a_rebuild(store_factory, tmp_path):
    """A build whose tables follow another layer registry is refused (503), not misread."""
    import json as _json
    from datetime import date

    from sqlalchemy import text

    from service.build import run_build

    store = store_factory()
    url = getattr(store, "url", None) or str(getattr(store, "root", tmp_path))
    ingest([str(f.write_equipment_csv(tmp_path / "eq.csv"))], store, IngestOptions())
    run_build(store, ["410000", "610000"], as_of=date(2026, 11, 1))
    token = admin_token(store)
    if hasattr(store, "engine"):
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE layer_builds SET report = report || "
                              "'{\"registry\": \"older\"}'::jsonb"))
    else:
        path = next((store.root / "layers").glob("*/build.json"))
        record = _json.loads(path.read_text(encoding="utf-8"))
        record["report"]["registry"] = "older"
        path.write_text(_json.dumps(record), encoding="utf-8")
    store.close()
    with TestClient(create_app(Settings(store=url)),
                    headers={"Authorization": f"Bearer {token}"}) as c:
        r = c.get("/api/layers/equipment")
        assert r.status_code == 503 and "riskmap build" in r.json()["detail"]
