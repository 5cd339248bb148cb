"""The map in a real browser (Debian's chromium driven by Playwright): it draws cells, and
once layers are built, the risk map with its overlays."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date

import pytest
from playwright.sync_api import Page

from data.demo import generate
from service.app import create_app
from service.auth import Role, create_user
from service.build import run_build
from service.ingest.pipeline import IngestOptions, ingest
from service.settings import Settings
from service.store import open_store
from tests import ingest_files as f
from tests.servers import TileWatch, browser_page, serving, serving_copy

pytestmark = pytest.mark.browser


def _admin_token(store) -> str:
    _user, token = create_user(store, name="管理员", role=Role.ADMIN, scope=None,
                               pepper=Settings().token_pepper.get_secret_value(),
                               provinces=["410000", "610000"])
    return token


@pytest.fixture()
def served_map(tmp_path):
    root = tmp_path / "store"
    with open_store(str(root), create=True) as store:
        ingest([str(f.write_equipment_csv(tmp_path / "eq.csv"))], store, IngestOptions())
        token = _admin_token(store)
    with serving(create_app(Settings(store=str(root)))) as (url, _port):
        yield url, token


def _fill_risk_map(store, out) -> dict:
    """A small demo province, ingested and built: the map shows the risk layers."""
    generate(province="河南省", equipment=3000, seed=3, out=out, as_of=date(2026, 11, 1))
    ingest(sorted(str(p) for p in out.iterdir() if p.name != "MANIFEST.json"), store,
           IngestOptions())
    run_build(store, ["410000", "610000"], as_of=date(2026, 11, 1))
    return {"token": _admin_token(store)}


@pytest.fixture()
def served_risk_map(store_templates, request):
    """This test's copy of the small built demo (built once a session), served."""
    with serving_copy(store_templates, request, _fill_risk_map) as (url, facts, store):
        yield url, facts["token"], store


@contextlib.contextmanager
def map_page(served: tuple) -> Iterator[tuple[Page, list[str]]]:
    """Debian's chromium logged in on the served map (the login form sets the token
    cookie), the map loaded; yields the page and its script errors."""
    url, token = served[:2]
    with browser_page() as page:
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{url}/map", wait_until="domcontentloaded")
        assert "/login" in page.url  # no cookie yet: the map asks for a token
        page.fill("input[name=token]", token)
        page.click("button[type=submit]")
        page.wait_for_selector(".leaflet-container", timeout=15_000)
        yield page, errors


def test_map_draws_cells_and_counties(served_map, tmp_path):
    with map_page(served_map) as (page, errors):
        # prefer_canvas draws vectors on a canvas; the layer control lists our layers
        control = page.locator(".leaflet-control-layers").inner_text()
        assert "设备分布" in control and "区县边界" in control
        assert page.locator(".leaflet-overlay-pane canvas").count() >= 1
        assert "设备数量" in page.locator("#riskmap-legend").inner_text()
        page.screenshot(path=str(tmp_path / "map.png"))
    assert not errors, errors


def test_risk_map_draws_levels_hotspots_and_listed_hazards(served_risk_map, tmp_path):
    with map_page(served_risk_map) as (page, errors):
        control = page.locator(".leaflet-control-layers").inner_text()
        for name in ("网格风险", "未销号隐患", "园区", "风险提示", "区县边界", "离线底图"):
            assert name in control, (name, control)
        legend = page.locator("#riskmap-legend").inner_text()
        assert "网格风险等级" in legend and "重大风险" in legend and "规则 default" in legend
        page.wait_for_timeout(1000)  # the cells come as vector tiles, drawn on canvases
        assert page.locator(".leaflet-map-pane canvas").count() >= 1
        # opened at another grid size: zoomed in to where the tiles draw it
        page.goto(f"{served_risk_map[0]}/map?resolution=7", wait_until="domcontentloaded")
        page.wait_for_selector(".leaflet-container", timeout=15_000)
        name = page.evaluate("Object.keys(window).find(k => k.startsWith('map_'))")
        assert page.evaluate(f"window['{name}'].getZoom()") == 8
        page.screenshot(path=str(tmp_path / "risk-map.png"))
    assert not errors, errors


def test_zoomed_in_the_map_draws_equipment_tiles_and_shows_a_piece(served_risk_map):
    """From zoom 12 the equipment overlay loads the scoped vector tiles (cookie auth) and a
    click on a piece shows its record."""
    with open_store(str(served_risk_map[2])) as store:
        points = store.read_layer("equipment", ["fid", "geometry"]).dropna()
    lon, lat = points.geometry.x.median(), points.geometry.y.median()
    nearest = points.iloc[int(((points.geometry.x - lon) ** 2
                               + (points.geometry.y - lat) ** 2).argmin())]
    with map_page(served_risk_map) as (page, errors):
        watch = TileWatch(page, "/tiles/equipment/16/")
        control = page.locator(".leaflet-control-layers").inner_text()
        assert "设备（放大后显示单台设备）" in control
        name = page.evaluate("Object.keys(window).find(k => k.startsWith('map_'))")
        x, y = nearest.geometry.x, nearest.geometry.y
        page.evaluate(f"() => {{ window['{name}'].setView([{y}, {x}], 16, {{animate: false}}); }}")
        # the z16 tiles queue behind the first view's (three overlays' z7 tiles, ~1.3 s on
        # two cores): wait for every one asked, not for a fixed time
        tiles = watch.settle()
        assert tiles and all(status == 200 for status, *_ in tiles), tiles
        assert any(size > 0 for _, size, _ in tiles), (tiles, x, y)
        box = page.locator(".leaflet-container").bounding_box()
        point = page.evaluate(f"window['{name}'].latLngToContainerPoint([{y}, {x}])")
        page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
        popup = page.locator(".leaflet-popup-content")
        page.wait_for_timeout(1000)
        assert not errors, errors
        popup.wait_for(timeout=10_000)
        assert "设备注册代码" in popup.inner_text() and "风险等级" in popup.inner_text()
    assert not errors, errors
