"""The park administrator's page in a real browser (Debian's chromium driven by Playwright):
signed in with no ``next`` they land on their park; the page loads with no console errors and
no failed requests, both charts render, the units draw on the map, and on a phone
(390×844) nothing scrolls sideways. Screenshots go to the test's tmp_path."""

from __future__ import annotations

from datetime import date

import pytest

from data.demo import generate
from service.auth import Role, create_user
from service.build import run_build
from service.ingest.pipeline import IngestOptions, ingest
from service.settings import Settings
from tests.servers import browser_page, keep_screenshot, serving_copy

pytestmark = pytest.mark.browser

BASEMAP = "tile.openstreetmap.org"  # external and optional: its failures do not count


def _fill_park(store, out) -> dict:
    """A small built demo and the administrator of the park with the most located units."""
    generate(province="河南省", equipment=3000, seed=3, out=out, as_of=date(2026, 11, 1))
    ingest(sorted(str(p) for p in out.iterdir() if p.name != "MANIFEST.json"), store,
           IngestOptions())
    run_build(store, ["410000", "610000"], as_of=date(2026, 11, 1))
    units = store.read_layer("units", ["park_id", "geometry"]).dropna()
    park = str(units["park_id"].value_counts().index[0])
    name = str(store.read_layer("parks").set_index("park_id").loc[park, "name"])
    _user, token = create_user(store, name="园区管理员", role=Role.PARK_ADMIN, scope=park,
                               pepper=Settings().token_pepper.get_secret_value(),
                               provinces=["410000", "610000"])
    return {"token": token, "park": park, "name": name}


@pytest.fixture()
def served_park(store_templates, request):
    with serving_copy(store_templates, request, _fill_park) as (url, facts, _store):
        yield url, facts


def _rendered(page, selector: str) -> int:
    """How many drawn shapes the ECharts SVG in ``selector`` holds."""
    return page.evaluate(
        "(sel) => { const svg = document.querySelector(sel + ' svg');"
        " return svg ? svg.querySelectorAll('path, rect, polyline').length : 0; }", selector)


def test_the_park_admin_lands_on_their_park_and_it_draws(served_park, tmp_path):
    url, facts = served_park
    with browser_page() as page:
        console: list[str] = []
        failed: list[str] = []
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        page.on("console", lambda m: console.append(f"{m.text} {m.location}")
                if m.type == "error" else None)
        page.on("requestfailed", lambda r: failed.append(r.url)
                if BASEMAP not in r.url else None)
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}")
                if r.status >= 400 and BASEMAP not in r.url else None)
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url))

        page.goto(f"{url}/login", wait_until="domcontentloaded")
        page.fill("input[name=token]", facts["token"])
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/parks/{facts['park']}", timeout=15_000)
        page.wait_for_selector("#park[data-loaded=true]", timeout=20_000)
        # what counts is this page's: the login page's own favicon request is not
        del console[:], failed[:]
        page.reload(wait_until="domcontentloaded")
        page.wait_for_selector("#park[data-loaded=true]", timeout=20_000)
        # no paging through the park's rows: counts come with the page, the map's units
        # from the small endpoint, the profile without its units' records
        assert not [u for u in asked if "/api/layers/equipment" in u or
                    "/api/layers/units" in u], asked
        assert any(u.endswith(f"/parks/{facts['park']}/units.geojson") for u in asked), asked
        assert any("/profile?units=false" in u for u in asked), asked

        assert facts["name"] in page.locator("h1").inner_text()
        assert page.locator(".nav a[aria-current=page]").inner_text() == "园区画像"
        # the two charts (ECharts' SVG renderer) hold drawn shapes
        assert _rendered(page, "#chart-categories") > 5
        assert _rendered(page, "#chart-monthly") > 2
        assert "重大风险" in page.locator("#chart-categories").inner_text() or \
            page.locator("#chart-categories svg text").count() > 0
        # the units on the map (circle markers on Leaflet's canvas), the park outline too
        assert int(page.get_attribute("#park-map", "data-units")) > 0
        assert page.locator("#park-map .leaflet-overlay-pane canvas").count() >= 1
        # the riskiest units link to their files; the measures carry reason and basis
        assert page.locator("#top-units tbody a[href^='/units/']").count() >= 1
        assert page.locator("#measures li .basis").count() >= 1
        assert page.locator("#measures li .why").count() >= 1
        assert page.get_attribute("#download-pdf", "href") == \
            f"/parks/{facts['park']}/profile.pdf"
        shot = tmp_path / "park.png"
        page.screenshot(path=str(shot), full_page=True)
        keep_screenshot(shot, "park.png")

        # a phone: no sideways scroll
        page.set_viewport_size({"width": 390, "height": 844})
        page.reload(wait_until="domcontentloaded")
        page.wait_for_selector("#park[data-loaded=true]", timeout=20_000)
        page.wait_for_timeout(300)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width
        assert _rendered(page, "#chart-categories") > 5
        shot = tmp_path / "park-phone.png"
        page.screenshot(path=str(shot), full_page=True)
        keep_screenshot(shot, "park-phone.png")

        # print media: the navigation and the map's controls are hidden
        page.emulate_media(media="print")
        assert not page.locator(".topbar").is_visible()
        assert not page.locator(".park-actions").is_visible()
        assert not page.locator(".leaflet-control-zoom").is_visible()
        page.emulate_media(media="screen")
    assert not failed, failed
    assert not console, console
