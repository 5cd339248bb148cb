"""The region page and the unit file page in a real browser (Debian's chromium driven by
Playwright), signed in as the province regulator through the login form: the pages load with
no console errors and no failed requests, the region's three charts render with data, the
child ranking sorts, the report link opens the yearly report, the unit's QR code loads, and
on a phone (390×844) nothing scrolls sideways. Screenshots go to the test's tmp_path."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from service.app import create_app
from service.auth import Role, create_user
from service.settings import Settings
from service.store import open_store
from tests.servers import browser_page, serving
from tests.test_browser import _fill_risk_map

pytestmark = pytest.mark.browser

BASEMAP = "tile.openstreetmap.org"  # external and optional: its failures do not count
PHONE = {"width": 390, "height": 844}
CHARTS = ("chart-category", "chart-level", "chart-industry")

# the number of data points an ECharts chart holds (0 when it has none or is not drawn)
_CHART_DATA = """id => {
  const chart = echarts.getInstanceByDom(document.getElementById(id));
  if (!chart) return 0;
  return chart.getOption().series.reduce((n, s) => n + s.data.reduce(
    (m, d) => m + (typeof d === "number" ? d : d.value), 0), 0);
}"""
_SIDEWAYS = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.fixture()
def served(store_templates, request):
    """A copy of the small built demo (the map's, built once a session) with a province
    regulator, served."""
    filled = store_templates.copy("embedded", _fill_risk_map, request)
    try:
        with open_store(filled.url) as store:
            _user, token = create_user(store, name="省局监管", role=Role.REGULATOR,
                                       scope="410000",
                                       pepper=Settings().token_pepper.get_secret_value(),
                                       provinces=["410000", "610000"])
            units = store.read_layer("units", ["credit_code", "open_hazards", "equipment"])
        units = units.sort_values(["open_hazards", "equipment", "credit_code"],
                                  ascending=[False, False, True])
        with serving(create_app(Settings(store=filled.url))) as (url, _port):
            yield url, token, str(units["credit_code"].iloc[0])
    finally:
        store_templates.drop(filled.url)


class Watch:
    """What went wrong in a page: script errors, console errors, failed requests."""

    def __init__(self, page: Page) -> None:
        self.problems: list[str] = []
        page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))
        page.on("console", lambda m: self.problems.append(f"console: {m.text} {m.location}")
                if m.type == "error" and BASEMAP not in m.text else None)
        page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url}")
                if BASEMAP not in r.url else None)
        page.on("response", lambda r: self.problems.append(f"{r.status}: {r.url}")
                if r.status >= 400 and BASEMAP not in r.url else None)


@contextlib.contextmanager
def signed_in(served: tuple, path: str) -> Iterator[tuple[Page, Watch]]:
    """Sign in through the login form the page sends to, then watch the page load again
    from the start (the login page's own favicon request is not this page's)."""
    url, token = served[:2]
    with browser_page() as page:
        page.goto(f"{url}{path}", wait_until="domcontentloaded")
        assert "/login" in page.url
        page.fill("input[name=token]", token)
        with page.expect_navigation(url=f"{url}{path}"):
            page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")  # its requests done before watching
        watch = Watch(page)
        page.reload(wait_until="load")
        yield page, watch


def _charts_drawn(page: Page) -> None:
    page.wait_for_function("() => typeof echarts !== 'undefined' && "
                           f"{list(CHARTS)!r}.every(id => echarts.getInstanceByDom("
                           "document.getElementById(id)))", timeout=15_000)
    for chart in CHARTS:
        assert page.evaluate(_CHART_DATA, chart) > 0, chart
        assert page.locator(f"#{chart} canvas").count() >= 1, chart


def test_the_region_page_in_a_browser(served, tmp_path):
    url = served[0]
    with signed_in(served, "/regions/410000") as (page, watch):
        _charts_drawn(page)
        figures = page.locator("#figures").inner_text()
        assert "双重预防体系建成率" in figures and "在用设备" in figures
        # the ranking sorts by a column (in-use equipment, most first)
        rows = page.locator("#children tbody tr")
        assert rows.count() > 1
        page.locator("#children th", has_text="在用设备").click()
        counts = [int(v) for v in page.locator("#children tbody tr td:nth-child(5)"
                                                ).evaluate_all(
            "cells => cells.map(c => c.getAttribute('data-value'))")]
        assert counts == sorted(counts, reverse=True)
        # the report follows the chosen year and opens as a page
        years = page.locator("#report-year option").evaluate_all(
            "options => options.map(o => o.value)")
        assert "2026" in years
        page.select_option("#report-year", years[-1])
        assert f"year={years[-1]}" in page.locator("#report-html").get_attribute("href")
        page.select_option("#report-year", "2026")
        with page.expect_popup() as opened:
            page.click("#report-html")
        report = opened.value
        report.wait_for_load_state()
        assert "整体情况" in report.content()
        report.close()
        href = page.locator("#report-html").get_attribute("href")
        answer = page.request.get(f"{url}{href}")
        assert answer.status == 200 and "整体情况" in answer.text()
        page.screenshot(path=str(tmp_path / "region.png"), full_page=True)
        # a phone: the charts fit, the tables scroll inside their box
        page.set_viewport_size(PHONE)
        page.reload(wait_until="load")
        _charts_drawn(page)
        assert page.evaluate(_SIDEWAYS) <= 0
        page.screenshot(path=str(tmp_path / "region-phone.png"), full_page=True)
        assert not watch.problems, watch.problems


def test_the_unit_page_in_a_browser(served, tmp_path):
    code = served[2]
    with signed_in(served, f"/units/{code}") as (page, watch):
        page.wait_for_load_state("load")
        assert code in page.locator(".unit-head").inner_text()
        assert page.evaluate("document.querySelector('.qr img').naturalWidth") > 0
        assert page.locator("#equipment tbody tr").count() >= 1
        page.screenshot(path=str(tmp_path / "unit.png"), full_page=True)
        page.set_viewport_size(PHONE)
        page.reload(wait_until="load")
        assert page.evaluate(_SIDEWAYS) <= 0
        page.screenshot(path=str(tmp_path / "unit-phone.png"), full_page=True)
        assert not watch.problems, watch.problems
