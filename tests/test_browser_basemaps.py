"""The map's basemaps in a real browser: it opens on the configured one (AMap here), lists
天地图 when a key is set, and while a GCJ-02 basemap is on our data is drawn shifted to
GCJ-02 (names, boundaries, each vector tile) and clicks are shifted back before the API
is asked; back on the offline basemap everything is where WGS84 puts it.

No test reaches the internet: every online basemap tile is answered here with a blank
PNG. The GCJ-02 formula of web/static/js/basemaps.js is checked against geo/datum.py's."""

from __future__ import annotations

import math
import re
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from playwright.sync_api import Page, Route

from geo.datum import gcj02_to_wgs84, wgs84_to_gcj02
from tests.conftest import _fill_demo
from tests.servers import browser_page, serving_copy
from tests.test_browser import _fill_risk_map

pytestmark = pytest.mark.browser
KEY = "0123456789abcdef0123456789abcdef"
# a 1×1 transparent PNG: every basemap tile, offline
BLANK_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000105fe02fea70000000049454e44ae426082")
CFG = "JSON.parse(document.getElementById('riskmap-config').textContent)"
# a page's Leaflet maps kept in window.__maps as Leaflet makes them (the grid page keeps its
# map to itself): a hook on L.Map, set as soon as Leaflet defines window.L
KEEP_MAPS = """(() => { let real; Object.defineProperty(window, "L", { configurable: true,
  get() { return real; },
  set(v) { real = v; v.Map.addInitHook(function () {
    (window.__maps = window.__maps || []).push(this); }); } }); })();"""


@pytest.fixture()
def served_amap(store_templates, request):
    """The small built demo, served with AMap as the opening basemap and a 天地图 key."""
    with serving_copy(store_templates, request, _fill_risk_map, basemap="amap",
                      tianditu_key=KEY) as (url, facts, _store):
        yield url, facts["token"]


def _online(route: Route) -> None:
    route.fulfill(status=200, content_type="image/png", body=BLANK_PNG)


def _open_map(page: Page, url: str, token: str) -> list[str]:
    """Sign in to /map with every external request answered here; the tile hosts asked."""
    hosts: list[str] = []
    page.route(re.compile(r"^https://"), lambda r: (hosts.append(urlparse(r.request.url)
                                                                  .hostname or ""), _online(r)))
    page.goto(f"{url}/login?next=/map", wait_until="domcontentloaded")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_selector(".riskmap-label", timeout=20_000)
    return hosts


def _first_label(page: Page) -> dict:
    """Where the first city/county name is drawn (lat/lng of its marker)."""
    return page.evaluate(f"""() => {{
        const cfg = {CFG};
        const m = window[cfg.groups.labels].getLayers()[0];
        return {{lat: m.getLatLng().lat, lng: m.getLatLng().lng}};
    }}""")


def _tile_margins(page: Page, layer: str) -> list[dict]:
    """Each loaded tile of a tiled layer: its x, y, z and the shift (margins) it is drawn at."""
    return page.evaluate(f"""(id) => {{
        const cfg = {CFG}, l = window[cfg.layers[id]], out = [];
        Object.values(l._tiles || {{}}).forEach(t => out.push({{
            x: t.coords.x, y: t.coords.y, z: t.coords.z,
            dx: parseFloat(t.el.style.marginLeft || "0"),
            dy: parseFloat(t.el.style.marginTop || "0")}}));
        return out;
    }}""", layer)


def _expected_shift(x: int, y: int, z: int) -> tuple[float, float]:
    """The GCJ-02 shift at a Web Mercator tile's centre, in pixels at its zoom."""
    scale = 256 * 2**z

    def unproject(px: float, py: float) -> tuple[float, float]:
        lon = px / scale * 360 - 180
        lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * py / scale))))
        return lon, lat

    def project(lon: float, lat: float) -> tuple[float, float]:
        s = math.sin(math.radians(lat))
        return ((lon + 180) / 360 * scale,
                (0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * scale)

    cx, cy = (x + 0.5) * 256, (y + 0.5) * 256
    lon, lat = unproject(cx, cy)
    glon, glat = wgs84_to_gcj02(np.array([lon]), np.array([lat]))
    gx, gy = project(float(glon[0]), float(glat[0]))
    return gx - cx, gy - cy


def test_the_gcj02_formula_in_the_page_is_geo_datums(served_amap):
    url, token = served_amap
    rng = np.random.default_rng(7)
    lon = np.concatenate([rng.uniform(73.0, 136.0, 400), [116.391, 113.665, 108.94, 10.0]])
    lat = np.concatenate([rng.uniform(3.0, 54.0, 400), [39.907, 34.758, 34.341, 50.0]])
    with browser_page() as page:
        _open_map(page, url, token)
        got = np.array(page.evaluate("""(pts) => pts.map(p => {
            const g = riskmapBasemaps.toGcj02(p[0], p[1]),
                  w = riskmapBasemaps.fromGcj02(g[0], g[1]);
            return [g[0], g[1], w[0], w[1]]; })""", np.column_stack([lon, lat]).tolist()))
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert np.abs(got[:, 0] - glon).max() < 1e-9 and np.abs(got[:, 1] - glat).max() < 1e-9
    wlon, wlat = gcj02_to_wgs84(glon, glat)
    assert np.abs(got[:, 2] - wlon).max() < 1e-8 and np.abs(got[:, 3] - wlat).max() < 1e-8
    assert np.abs(got[:, 2] - lon).max() < 1e-8  # and back where it started
    assert got[-1, 0] == 10.0 and got[-1, 1] == 50.0  # outside China: no shift


def test_on_amap_our_data_is_shifted_to_gcj02_and_clicks_shifted_back(served_amap, tmp_path):
    url, token = served_amap
    with browser_page() as page:
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        hosts = _open_map(page, url, token)
        # opened on AMap, 天地图 listed with its key, the datum GCJ-02
        control = page.locator(".leaflet-control-layers").inner_text()
        for name in ("离线底图（行政区划）", "天地图 矢量", "天地图 影像", "高德地图",
                     "OpenStreetMap"):
            assert name in control, name
        checked = page.locator(".leaflet-control-layers-base input:checked + span").inner_text()
        assert "高德地图" in checked
        assert page.evaluate("document.documentElement.dataset.datum") == "gcj02"
        page.wait_for_load_state("networkidle")
        assert any(h.endswith(".is.autonavi.com") for h in hosts), hosts
        assert not any("tianditu" in h for h in hosts)  # only the basemap shown is asked

        # a name is drawn where GCJ-02 puts it
        labels = page.request.get(f"{url}/map/boundaries").json()["labels"]["features"]
        lon, lat = labels[0]["geometry"]["coordinates"]
        glon, glat = wgs84_to_gcj02(np.array([lon]), np.array([lat]))
        drawn = _first_label(page)
        assert abs(drawn["lng"] - glon[0]) < 1e-9 and abs(drawn["lat"] - glat[0]) < 1e-9
        assert abs(drawn["lng"] - lon) > 1e-3  # hundreds of metres: a real shift

        # zoomed in, each risk-cell tile is drawn at the GCJ-02 shift of its centre
        page.evaluate(f"void window[{CFG}.map].setView([{lat}, {lon}], 12, {{animate: false}})")
        page.wait_for_function(f"""() => {{
            const cfg = {CFG}, l = window[cfg.layers['risk-cells']];
            return Object.values(l._tiles || {{}}).some(t => t.coords.z === 12);
        }}""", timeout=15_000)
        tiles = [t for t in _tile_margins(page, "risk-cells") if t["z"] == 12]
        assert tiles
        for t in tiles:
            dx, dy = _expected_shift(t["x"], t["y"], t["z"])
            assert abs(t["dx"] - dx) < 0.01 and abs(t["dy"] - dy) < 0.01, (t, dx, dy)
            assert abs(t["dx"]) > 5  # ~500 m is ~15 px at zoom 12

        # a click where a point is drawn asks the API about its WGS84 position
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url) if "/api/layers/" in r.url else None)
        box = page.locator(".leaflet-container").bounding_box()
        at = page.evaluate(f"""(p) => {{
            const map = window[{CFG}.map];
            const c = map.latLngToContainerPoint(riskmapBasemaps.shown(p[1], p[0]));
            return [c.x, c.y];
        }}""", [lon, lat])
        assert 0 < at[0] < box["width"] and 0 < at[1] < box["height"]
        with page.expect_request(lambda r: "/api/layers/" in r.url, timeout=10_000):
            page.mouse.click(box["x"] + at[0], box["y"] + at[1])
        bbox = [float(v) for v in parse_qs(urlparse(asked[0]).query)["bbox"][0].split(",")]
        assert bbox[0] <= lon <= bbox[2] and bbox[1] <= lat <= bbox[3], (bbox, lon, lat)
        page.screenshot(path=str(tmp_path / "map-amap.png"))

        # back on the offline basemap: WGS84, the names and tiles unshifted
        page.locator(".leaflet-control-layers-base label", has_text="离线底图").click()
        assert page.evaluate("document.documentElement.dataset.datum") == "wgs84"
        drawn = _first_label(page)
        assert abs(drawn["lng"] - lon) < 1e-9 and abs(drawn["lat"] - lat) < 1e-9
        page.wait_for_function(f"""() => {{
            const l = window[{CFG}.layers['risk-cells']];
            return Object.values(l._tiles || {{}}).some(t => t.coords.z === 12);
        }}""", timeout=15_000)
        assert all(t["dx"] == 0 and t["dy"] == 0 for t in _tile_margins(page, "risk-cells"))
        # 天地图: CGCS2000, no shift; its tiles carry the key
        page.locator(".leaflet-control-layers-base label", has_text="天地图 矢量").click()
        assert page.evaluate("document.documentElement.dataset.datum") == "wgs84"
        page.wait_for_load_state("networkidle")
        assert any(h.endswith(".tianditu.gov.cn") for h in hosts)
        assert not errors, errors


def test_the_page_policy_admits_only_the_offered_basemaps(served_amap):
    url, token = served_amap
    with browser_page() as page:
        page.route(re.compile(r"^https://"), _online)
        page.goto(f"{url}/login?next=/map", wait_until="domcontentloaded")
        page.fill("input[name=token]", token)
        with page.expect_response(lambda r: urlparse(r.url).path == "/map") as answer:
            page.click("button[type=submit]")
        policy = answer.value.headers["content-security-policy"]
    img = next(p for p in policy.split("; ") if p.startswith("img-src"))
    assert img.split() == ["img-src", "'self'", "data:", "https://*.tianditu.gov.cn",
                           "https://*.is.autonavi.com", "https://tile.openstreetmap.org"]


@pytest.fixture()
def served_demo_amap(store_templates, request):
    """The seeded demo (every role's token), served with AMap as the opening basemap."""
    with serving_copy(store_templates, request, _fill_demo, basemap="amap") as (url, facts, _s):
        yield url, facts


def test_the_grid_officers_cells_and_items_follow_the_basemap(served_demo_amap):
    url, facts = served_demo_amap
    with browser_page() as page:
        page.route(re.compile(r"^https://"), _online)
        page.add_init_script(KEEP_MAPS)
        page.goto(f"{url}/login", wait_until="domcontentloaded")
        page.fill("input[name=token]", facts["tokens"]["officer"])
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/grid", timeout=15_000)
        page.wait_for_selector("body[data-ready=true]", timeout=20_000)
        assert page.evaluate("document.documentElement.dataset.datum") == "gcj02"
        cells = page.request.get(f"{url}/api/grid/cells").json()["features"]
        # the first hexagon's first vertex, as drawn (GCJ-02), then offline (WGS84)
        vertex = """() => {
            const map = window.__maps[0];
            let out = null;
            map.eachLayer(l => { if (!out && l.feature && l.feature.properties
                                      && l.feature.properties.h3 && l.getLatLngs) {
                const ring = l.getLatLngs()[0]; out = [ring[0].lng, ring[0].lat,
                                                      l.feature.properties.h3]; } });
            return out; }"""
        drawn = page.evaluate(vertex)
        assert drawn is not None
        wanted = next(c for c in cells if c["properties"]["h3"] == drawn[2])
        lon, lat = wanted["geometry"]["coordinates"][0][0]
        glon, glat = wgs84_to_gcj02(np.array([lon]), np.array([lat]))
        assert abs(drawn[0] - glon[0]) < 1e-9 and abs(drawn[1] - glat[0]) < 1e-9
        page.locator(".leaflet-control-layers").hover()  # collapsed: opens on hover
        page.locator(".leaflet-control-layers-base label", has_text="无底图").click()
        drawn = page.evaluate(vertex)
        wanted = next(c for c in cells if c["properties"]["h3"] == drawn[2])
        lon, lat = wanted["geometry"]["coordinates"][0][0]
        assert abs(drawn[0] - lon) < 1e-9 and abs(drawn[1] - lat) < 1e-9
