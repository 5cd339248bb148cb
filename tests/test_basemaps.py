"""The basemaps offered (web/basemaps.py) as the settings configure them, in the pages and in
their Content-Security-Policy; and the list settings read from the environment."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from pydantic_settings import SettingsError

from service.app import create_app
from service.security_headers import page_policy
from service.settings import Settings
from tests.conftest import _fill_demo
from web.basemaps import GCJ02, OFFLINE, WGS84, image_hosts, page_config

KEY = "0123456789abcdef0123456789abcdef"


def test_tianditu_is_offered_only_with_a_key_and_carries_it():
    without = page_config(["tianditu", "amap", "osm"], "tianditu", None)
    assert [m["id"] for m in without["maps"]] == ["amap", "osm"]
    assert without["default"] == OFFLINE  # asked for 天地图 with no key: offline
    with_key = page_config(["tianditu", "amap", "osm"], "tianditu", KEY)
    assert [m["id"] for m in with_key["maps"]] == ["tianditu", "tianditu-img", "amap", "osm"]
    assert with_key["default"] == "tianditu"
    vec = with_key["maps"][0]
    assert vec["datum"] == WGS84 and len(vec["tiles"]) == 2  # the map and its annotation
    assert all(f"tk={KEY}" in t["url"] and "TILEMATRIXSET=w" in t["url"] for t in vec["tiles"])
    assert "LAYER=vec" in vec["tiles"][0]["url"] and "LAYER=cva" in vec["tiles"][1]["url"]
    # Leaflet's placeholders are left for Leaflet
    assert "{z}" in vec["tiles"][0]["url"] and "{s}" in vec["tiles"][0]["url"]


def test_amap_is_the_gcj02_one_and_the_order_is_the_settings():
    config = page_config(["osm", "amap"], "amap", None)
    assert [(m["id"], m["datum"]) for m in config["maps"]] == [("osm", WGS84), ("amap", GCJ02)]
    assert config["default"] == "amap"
    assert page_config([], "amap", KEY) == {"offline": config["offline"], "default": OFFLINE,
                                            "maps": []}


def test_the_image_hosts_are_those_of_the_offered_basemaps():
    assert image_hosts([], KEY) == ()
    assert image_hosts(["amap"], None) == ("https://*.is.autonavi.com",)
    assert image_hosts(["tianditu", "osm"], KEY) == ("https://*.tianditu.gov.cn",
                                                     "https://tile.openstreetmap.org")
    assert "img-src 'self' data:;" in page_policy("n" * 22, ())


def test_settings_read_basemaps_and_provinces_as_comma_lists(monkeypatch):
    monkeypatch.setenv("RISKMAP_BASEMAPS", "AMap, osm,amap")
    monkeypatch.setenv("RISKMAP_PROVINCES", "410000, 610000")
    monkeypatch.setenv("RISKMAP_BASEMAP", "amap")
    settings = Settings()
    assert settings.basemaps == ["amap", "osm"] and settings.provinces == ["410000", "610000"]
    assert settings.basemap_config["default"] == "amap"
    monkeypatch.setenv("RISKMAP_PROVINCES", '["610000"]')  # a JSON list still reads
    monkeypatch.setenv("RISKMAP_BASEMAPS", "")             # none: an intranet
    settings = Settings()
    assert settings.provinces == ["610000"] and settings.basemaps == []
    assert settings.basemap_config["default"] == OFFLINE


@pytest.mark.parametrize(("name", "value"), [
    ("RISKMAP_BASEMAPS", "bing"), ("RISKMAP_BASEMAP", "google"),
    ("RISKMAP_TIANDITU_KEY", 'abc"<script>'), ("RISKMAP_TIANDITU_KEY", "short"),
    ("RISKMAP_PROVINCES", "[not json"),
])
def test_bad_basemap_settings_are_refused(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises((ValidationError, SettingsError, ValueError)):
        Settings()


@pytest.fixture()
def built_client_factory(store_templates, request):
    """``factory(**settings)``: a TestClient on a copy of the built demo with those settings,
    as the province regulator."""
    demo = store_templates.copy("embedded", _fill_demo, request)
    token = demo.facts["tokens"]["province"]
    clients: list[TestClient] = []

    def factory(**settings) -> TestClient:
        client = TestClient(create_app(Settings(store=demo.url, **settings)))
        client.__enter__()
        client.headers["Authorization"] = f"Bearer {token}"
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)
    store_templates.drop(demo.url)


def _map_page(client) -> tuple[str, str]:
    answer = client.get("/map")
    assert answer.status_code == 200, answer.text[:300]
    return answer.text, answer.headers["content-security-policy"]


def _config(page: str) -> dict:
    found = re.search(r'<script[^>]*id="riskmap-basemaps"[^>]*>(.*?)</script>', page, re.S)
    assert found, "the page carries its basemaps"
    return json.loads(found.group(1))


def test_the_map_page_offers_what_the_settings_say(built_client_factory):
    client = built_client_factory(basemaps=[], basemap="amap")
    page, policy = _map_page(client)
    assert _config(page)["maps"] == [] and "autonavi" not in page and "autonavi" not in policy
    assert "openstreetmap" not in page and "openstreetmap" not in policy
    client = built_client_factory(basemap="amap", tianditu_key=KEY)
    page, policy = _map_page(client)
    config = _config(page)
    assert config["default"] == "amap"
    assert [m["id"] for m in config["maps"]] == ["tianditu", "tianditu-img", "amap", "osm"]
    assert "https://*.tianditu.gov.cn" in policy and "https://*.is.autonavi.com" in policy
    assert "/static/js/basemaps.js" in page
