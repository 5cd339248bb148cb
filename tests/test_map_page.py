"""The risk map page /map (issue 14 §1): a frame with no data inlined, opened at the
caller's region, whose layers come from the scoped vector tiles and whose boundaries and
names come from /map/boundaries; in a real browser, tiles load and a click shows a cell."""

from __future__ import annotations

import json
import math
import re

import pytest
from playwright.sync_api import expect

from geo.boundaries import load_boundaries
from service.store import open_store
from tests.servers import TileWatch, get, keep_screenshot
from tests.test_browser import map_page, served_risk_map  # noqa: F401  (a fixture)
from web.map import TILED_LAYERS

pytestmark = pytest.mark.reads_demo
PAGE_LIMIT = 200_000  # bytes of /map's HTML (issue 14 §1)
ROLES = ("admin", "province", "city", "county", "planner")


def _config(page: str) -> dict:
    found = re.search(r'<script[^>]*id="riskmap-config">(.*?)</script>', page, re.S)
    assert found, "the page carries map.js's configuration"
    return json.loads(found.group(1))


@pytest.mark.parametrize("who", ROLES)
def test_the_map_is_a_small_frame_of_tiled_layers(api, who):
    r = get(api, who, "/map")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert len(r.content) < PAGE_LIMIT, len(r.content)
    page = r.text
    assert "FeatureCollection" not in page and '"coordinates"' not in page  # nothing inlined
    config = _config(page)
    assert set(config["layers"]) <= set(TILED_LAYERS)
    assert {"risk-cells", "hotspots", "equipment", "hazards"} <= set(config["layers"])
    for layer in TILED_LAYERS:  # only the layers the caller may see
        assert (f"/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt" in page) == (
            layer in config["layers"]), layer
    assert "/static/js/map.js" in page and "/static/css/map.css" in page
    assert config["boundaries"] == "/map/boundaries"
    assert config["levels"]["red"]["name"] == "重大风险"
    labels = dict((k, v) for k, v, _unit in config["popups"]["risk-cells"])
    assert "resolution" not in labels and "h3" not in labels  # no internal codes
    # the layer control and legend in Chinese, the single pieces said in words
    for words in ("离线底图（行政区划）", "OpenStreetMap（需联网）", "区县边界", "省界",
                  "市县名称", "网格风险等级", "放大后显示单台设备"):
        assert words in page or json.dumps(words)[1:-1] in page, words
    assert "12 级" not in page
    assert 'id="riskmap-search"' in page and "单位名称、信用代码或设备注册代码" in page
    # the filters: Chinese names beside the codes, the layers each filter applies to
    for words in ("风险等级", "设备种类", "行业门类", "3000 电梯", "C 制造业", "重大风险"):
        assert words in page, words
    assert set(config["filterable"]) == set(config["layers"])
    assert config["filterable"]["risk-cells"] == ["level", "category"]
    assert "industry" not in config["filterable"]["equipment"]


def test_the_new_layers_are_offered_off_by_default_in_chinese(api):
    page = get(api, "admin", "/map").text
    config = _config(page)
    for layer in ("venues", "overdue", "frequency", "regions", "units"):
        assert layer in config["layers"], layer
        assert layer in config["popups"] and config["titles"][layer]
    for words in ("人员密集场所", "逾期未检设备", "加频单位", "行政区风险（区县）"):
        assert words in page or json.dumps(words)[1:-1] in page, words
    for layer in ("venues", "overdue", "frequency", "regions", "units"):
        grid = config["layers"][layer]
        assert re.search(rf"{grid} = L\.vectorGrid", page), layer
        assert not re.search(rf"{grid}\.addTo\(", page), layer  # off until asked for


def test_the_map_opens_at_the_callers_region(api):
    def bounds(who: str) -> list[float]:
        return [v for corner in _config(get(api, who, "/map").text)["bounds"] for v in corner]

    henan = load_boundaries(["410000"])
    for who, adcode in (("county", api["county"]), ("city", api["city"]),
                        ("province", "410000")):
        west, south, east, north = henan[henan["adcode"] == adcode].total_bounds
        assert bounds(who) == pytest.approx([south, west, north, east]), who
    assert bounds("admin") == bounds("province")  # the provinces holding data: Henan
    assert bounds("planner") == bounds("county")


def _tile_at(lon: float, lat: float, z: int) -> str:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return f"{z}/{x}/{y}"


def test_the_tiles_the_page_names_answer_for_the_caller(api):
    config = _config(get(api, "county", "/map").text)
    (south, west), (north, east) = config["bounds"]
    tile = _tile_at((west + east) / 2, (south + north) / 2, 9)  # the county's middle
    assert {"overdue", "frequency", "regions", "units"} <= set(config["layers"])
    for layer in config["layers"]:
        r = get(api, "county", f"/tiles/{layer}/{tile}.mvt")
        assert r.status_code == 200, (layer, r.text[:200])
    assert len(get(api, "county", f"/tiles/risk-cells/{tile}.mvt").content) > 0


def test_boundaries_and_names_come_small_and_scoped(api):
    r = get(api, "county", "/map/boundaries")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert len(r.content) < 600_000, len(r.content)
    body = r.json()
    counties = {f["properties"]["adcode"] for f in body["counties"]["features"]}
    assert api["county"] in counties and all(a.startswith("41") for a in counties)
    assert len(body["provinces"]["features"]) == 1
    labels = {(f["properties"]["level"], f["properties"]["name"])
              for f in body["labels"]["features"]}
    assert ("city", "郑州市") in labels and ("county", "金水区") in labels
    assert get(api, None, "/map/boundaries").status_code == 401


def test_the_grid_size_to_open_at(api):
    assert _config(get(api, "admin", "/map", resolution=7).text)["openZoom"] == 8
    assert _config(get(api, "admin", "/map").text)["openZoom"] is None
    assert get(api, "admin", "/map", resolution=8).status_code == 400


@pytest.mark.browser
def test_in_a_browser_tiles_load_and_a_cell_tells_its_level(served_risk_map, tmp_path):  # noqa: F811
    url = served_risk_map[0]
    with map_page(served_risk_map) as (page, errors):
        failed: list[str] = []
        page.on("requestfailed", lambda r: failed.append(r.url))
        watch = TileWatch(page)
        name = page.evaluate("Object.keys(window).find(k => k.startsWith('map_'))")
        # the labels from our boundaries, the legend of the visible layers
        page.wait_for_selector(".riskmap-label span", timeout=15_000)
        legend = page.locator("#riskmap-legend").inner_text()
        assert "网格风险等级" in legend and "km²" in legend and "重大风险" in legend
        assert "放大后显示单台设备" in page.locator(".leaflet-control-layers").inner_text()
        # zoom in a step: tiles of every shown layer come from our server
        page.evaluate(f"() => {{ window['{name}'].setZoom(9, {{animate: false}}); }}")
        overlays = {"risk-cells", "hazards", "hotspots"}
        tiles = [(s, u) for s, _n, u in watch.settle(lambda got: overlays <= {
            u.split("/tiles/")[1].split("/")[0] for _s, _n, u in got if "/tiles/" in u})]
        assert tiles and all(u.startswith(url) and s == 200 for s, u in tiles), tiles
        assert overlays <= {u.split("/tiles/")[1].split("/")[0] for _, u in tiles}
        sizes = page.evaluate("""async (urls) => Promise.all(urls.map(u =>
            fetch(u, {credentials: 'same-origin'}).then(r => r.arrayBuffer())
            .then(b => b.byteLength)))""", [u for _, u in tiles if "/risk-cells/" in u][:8])
        assert any(n > 0 for n in sizes), sizes
        # a click on a cell (the middle of the busiest one) shows its level in Chinese
        centre = page.evaluate("""async () => {
            const r = await fetch('/api/layers/risk-cells?resolution=7&limit=1&level=red',
                                  {credentials: 'same-origin'});
            const fc = await r.json();
            let f = fc.features[0];
            if (!f) {
              f = (await (await fetch('/api/layers/risk-cells?resolution=7&limit=1',
                                      {credentials: 'same-origin'})).json()).features[0];
            }
            const ring = f.geometry.coordinates[0];
            const n = ring.length - 1;
            return [ring.slice(0, n).reduce((s, c) => s + c[0], 0) / n,
                    ring.slice(0, n).reduce((s, c) => s + c[1], 0) / n];
        }""")
        page.evaluate(f"() => {{ window['{name}'].setView([{centre[1]}, {centre[0]}], 9, "
                      "{animate: false}); }")
        watch.settle()  # the cell under the click is drawn
        box = page.locator(".leaflet-container").bounding_box()
        point = page.evaluate(
            f"window['{name}'].latLngToContainerPoint([{centre[1]}, {centre[0]}])")
        page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for(timeout=10_000)
        text = popup.inner_text()
        assert "网格风险" in text and "网格大小" in text and "km²" in text, text
        assert re.search(r"(重大|较大|一般|低)风险", text), text
        assert "H3" not in text and "red" not in text, text
        page.wait_for_timeout(500)  # the popup fades in
        shot = tmp_path / "map.png"
        page.screenshot(path=str(shot))
        keep_screenshot(shot, "map.png")
        assert not failed, failed
    assert not errors, errors


@pytest.mark.browser
def test_in_a_browser_search_flies_to_a_piece_or_a_unit(served_risk_map):  # noqa: F811
    with open_store(str(served_risk_map[2])) as store:
        piece = store.read_layer("equipment", ["registration_code", "geometry"]).dropna().iloc[0]
        unit = store.read_layer("units", ["credit_code", "name", "geometry"]).dropna().iloc[0]
    with map_page(served_risk_map) as (page, errors):
        name = page.evaluate("Object.keys(window).find(k => k.startsWith('map_'))")
        popup = page.locator(".leaflet-popup-content")
        page.fill("#riskmap-search input", piece["registration_code"])
        page.press("#riskmap-search input", "Enter")
        popup.wait_for(timeout=20_000)  # the search, the item and the z16 tiles, queued
        assert piece["registration_code"] in popup.inner_text()
        assert "设备注册代码" in popup.inner_text()
        assert page.evaluate(f"window['{name}'].getZoom()") == 16
        centre = page.evaluate(f"window['{name}'].getCenter()")
        assert centre["lng"] == pytest.approx(piece.geometry.x, abs=1e-4)
        page.fill("#riskmap-search input", unit["credit_code"].lower())
        page.press("#riskmap-search input", "Enter")
        # The piece's popup may already name its unit: wait for the unit's own popup,
        # the one that shows its credit code.
        expect(page.locator(".leaflet-popup-content", has_text=unit["credit_code"])
               ).to_be_visible(timeout=10_000)
        expect(popup).to_have_count(1)  # the piece's popup has faded out
        assert unit["name"] in popup.inner_text()
        # A slow answer to an earlier search does not overwrite a later search's answer.
        code = piece["registration_code"]
        page.route(f"**/api/search?q={code}", lambda route: (page.wait_for_timeout(1500),
                                                             route.continue_()))
        page.fill("#riskmap-search input", code)
        page.press("#riskmap-search input", "Enter")
        page.fill("#riskmap-search input", "NO-SUCH-CODE")
        page.press("#riskmap-search input", "Enter")
        status = page.locator("#riskmap-search-status")
        expect(status).to_contain_text("未找到", timeout=10_000)
        page.wait_for_timeout(3000)  # the piece's answer comes, and is set aside
        expect(status).to_contain_text("未找到")
        assert code not in popup.inner_text()
    assert not errors, errors


@pytest.mark.browser
def test_in_a_browser_filters_retile_and_a_name_search_lists_and_flies(
        served_risk_map, tmp_path):  # noqa: F811
    with open_store(str(served_risk_map[2])) as store:
        units = store.read_layer("units", ["credit_code", "name", "geometry"]).dropna()
    part = units["name"].str[-4:].value_counts().index[0]  # a name ending many units share
    with map_page(served_risk_map) as (page, errors):
        failed: list[str] = []
        page.on("requestfailed", lambda r: failed.append(r.url))
        watch = TileWatch(page)
        name = page.evaluate("Object.keys(window).find(k => k.startsWith('map_'))")
        page.click("#riskmap-filters summary")
        page.select_option("#riskmap-filter-form select[name=level]", "red")
        page.select_option("#riskmap-filter-form select[name=category]", "3000")
        page.evaluate(f"() => {{ window['{name}'].setZoom(9, {{animate: false}}); }}")
        tiles = [(s, u) for s, _n, u in watch.settle(lambda got: any(
            "/risk-cells/" in u and "category=3000" in u for _s, _n, u in got))]
        filtered = [(s, u) for s, u in tiles if "level=red" in u]
        assert filtered and all(s == 200 for s, u in filtered), tiles
        assert any("/risk-cells/" in u and "category=3000" in u for _, u in filtered)
        assert not any("/hazards/" in u and "level=" in u for _, u in tiles)  # not its level
        assert "已筛选" in page.locator("#riskmap-filters summary").evaluate(
            "e => getComputedStyle(e, '::after').content")
        # a part of a name: a list of matches, a click flies there and opens the popup
        page.fill("#riskmap-search input", part)
        page.press("#riskmap-search input", "Enter")
        first = page.locator("#riskmap-results button").first
        first.wait_for(timeout=10_000)
        assert page.locator("#riskmap-results button").count() >= 2
        assert part in first.inner_text() and "使用单位" in first.inner_text()
        first.click()
        popup = page.locator(".leaflet-popup-content")
        expect(popup).to_contain_text(part, timeout=10_000)
        assert "统一社会信用代码" in popup.inner_text()
        assert page.evaluate(f"window['{name}'].getZoom()") == 16
        page.wait_for_timeout(500)
        shot = tmp_path / "map-search.png"
        page.screenshot(path=str(shot))
        keep_screenshot(shot, "map-search.png")
        assert not failed, failed
    assert not errors, errors
