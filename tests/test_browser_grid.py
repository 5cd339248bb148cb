"""The grid officer's page in a real browser (Debian's chromium driven by Playwright): the
officer signs in and lands on ``/grid``, the worklist comes in priority order beside their
cells, a hazard is moved 已登记 → 整改中 → 已销号 and the list and map change without a
reload; on a phone (390×844) the page does not scroll sideways. Screenshots go to the test's
tmp_path (and, when RISKMAP_SCREENSHOTS names a directory, there too)."""

from __future__ import annotations

import io

import httpx
import pytest
from playwright.sync_api import Page

from service.worklist import KIND_ZH
from tests.conftest import _fill_demo
from tests.servers import browser_page, keep_screenshot, serving_copy

pytestmark = pytest.mark.browser
BASEMAP = "tile.openstreetmap.org"


@pytest.fixture()
def served_demo(store_templates, request):
    """This test's copy of the built demo (embedded), served: base URL and the facts."""
    with serving_copy(store_templates, request, _fill_demo) as (url, facts, _store):
        yield url, facts


class Watch:
    """A page's console errors, script errors and failed requests (basemap tiles aside)."""

    def __init__(self, page: Page) -> None:
        self.problems: list[str] = []
        page.on("console", lambda m: self.problems.append(f"console: {m.text} {m.location}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.problems.append(f"script: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url}")
                if BASEMAP not in r.url else None)
        page.on("response", lambda r: self.problems.append(f"{r.status}: {r.url}")
                if r.status >= 400 and BASEMAP not in r.url else None)


def sign_in(page: Page, url: str, token: str) -> Watch:
    """Sign in with no ``next`` (the officer lands on /grid), then watch /grid load again
    from the start (the login page is not this page: its favicon request is its own)."""
    page.goto(f"{url}/login", wait_until="load")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/grid", timeout=15_000)
    page.wait_for_selector("body[data-ready=true]", timeout=20_000)
    watch = Watch(page)
    page.reload(wait_until="load")
    page.wait_for_selector("body[data-ready=true]", timeout=20_000)
    return watch


def item_count(page: Page) -> int:
    return int(page.locator("#item-count").inner_text().split()[0])


def test_officer_works_the_list_and_closes_a_hazard(served_demo, tmp_path):
    url, facts = served_demo
    with browser_page() as page:
        page.set_viewport_size({"width": 1280, "height": 800})
        watch = sign_in(page, url, facts["tokens"]["officer"])  # no next: the officer's own page
        assert page.locator("nav a[aria-current=page]").inner_text() == "我的网格"
        # the officer's cells on the map, the list in priority order
        cells = len(facts["officer_cells"])
        assert page.locator("path.grid-cell").count() == cells
        assert page.locator("path.county-outline").count() >= 1
        priorities = [int(t) for t in page.locator("#worklist .priority").all_inner_texts()]
        assert priorities and priorities == sorted(priorities)
        assert len(priorities) == item_count(page)
        kinds = page.locator("#worklist .kind").all_inner_texts()
        assert kinds and set(kinds) <= set(KIND_ZH.values())  # kinds in Chinese
        page.screenshot(path=str(tmp_path / "grid.png"))
        keep_screenshot(tmp_path / "grid.png", "grid.png")

        # a registered hazard: 已登记 → 整改中 → 已销号, no reload
        page.evaluate("window.__same_page = true")
        item = page.locator("#worklist button.item[data-hazard]",
                            has_text="（已登记）").first
        hazard = item.get_attribute("data-hazard")
        before = item_count(page)
        markers = page.locator("path.grid-item").count()
        item.click()
        page.wait_for_selector("#transition-form", timeout=10_000)
        assert page.locator("#hazard-status").inner_text() == "已登记"
        page.fill("#evidence", "已责令停用并更换安全阀，责任人张三")
        page.click("#transition-submit")
        page.wait_for_selector("#hazard-status:text-is('整改中')", timeout=10_000)
        assert "整改中" in page.locator("#status").inner_text()
        assert "整改措施" not in page.locator("#detail .history").inner_text()
        assert "已责令停用并更换安全阀" in page.locator("#detail .history").inner_text()
        page.fill("#verified-by", "李四")
        page.fill("#evidence", "安全阀已更换并校验合格，复查通过")
        page.click("#transition-submit")
        page.locator(f"#worklist button.item[data-hazard='{hazard}']").wait_for(
            state="detached", timeout=10_000)
        assert "已销号" in page.locator("#status").inner_text()
        # the closed hazard's record stays open: its status and history, with the evidence
        page.wait_for_selector("#hazard-status:text-is('已销号')", timeout=10_000)
        history = page.locator("#detail .history").inner_text()
        assert "安全阀已更换并校验合格" in history and "李四" in history
        assert page.locator("#transition-form").count() == 0
        assert item_count(page) == before - 1
        # evidence still goes with the closed hazard's record, no reload
        closed = page.locator("#detail .history a.evidence-link").count()
        page.set_input_files("#more-evidence-file", {
            "name": "复查照片.png", "mimeType": "image/png", "buffer": PNG})
        page.click("#evidence-submit")
        page.locator("#detail .history a.evidence-link").nth(closed).wait_for(timeout=10_000)
        assert page.locator("#hazard-status").inner_text() == "已销号"
        assert "复查照片.png" in page.locator("#detail .history").inner_text()
        assert "补充证据" in page.locator("#status").inner_text()
        assert page.locator("path.grid-item").count() == markers - 1
        assert page.evaluate("window.__same_page") is True  # the list changed in place

        # a supervision check on the first item's unit
        page.locator("#worklist button.item").first.click()
        page.wait_for_selector("#check-form")
        page.click("#check-form button[type=submit]")
        page.wait_for_selector("#check-out:has-text('下次检查')", timeout=10_000)

        assert page.locator("#download-xlsx").get_attribute("href") == (
            "/api/worklist?format=xlsx")

        # the phone: map above the list, nothing wider than the screen (requests still in
        # flight done first: a reload would abort them, and they would show as failed)
        page.wait_for_selector("body[aria-busy=false]", timeout=10_000)
        page.set_viewport_size({"width": 390, "height": 844})
        page.reload(wait_until="domcontentloaded")
        page.wait_for_selector("body[data-ready=true]", timeout=20_000)
        page.evaluate("window.scrollTo(0, 0)")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width
        map_box = page.locator("#grid-map").bounding_box()
        list_box = page.locator(".grid-list").bounding_box()
        assert map_box["y"] + map_box["height"] <= list_box["y"]
        page.screenshot(path=str(tmp_path / "grid-phone.png"), full_page=False)
        keep_screenshot(tmp_path / "grid-phone.png", "grid-phone.png")
        # an item's record and forms fit the phone too
        page.locator("#worklist button.item[data-hazard]").first.click()
        page.wait_for_selector("#hazard-status", timeout=10_000)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width
        page.screenshot(path=str(tmp_path / "grid-phone-item.png"), full_page=True)
        keep_screenshot(tmp_path / "grid-phone-item.png", "grid-phone-item.png")
    assert not watch.problems, watch.problems


def test_a_cell_filters_the_list(served_demo):
    url, facts = served_demo
    with browser_page() as page:
        watch = sign_in(page, url, facts["tokens"]["officer"])
        total = item_count(page)
        # a click on a cell (the first one drawn)
        page.evaluate("""() => document.querySelector('path.grid-cell').dispatchEvent(
            new MouseEvent('click', {bubbles: true}))""")
        page.wait_for_selector("#show-all:not([hidden])", timeout=10_000)
        scope = page.locator("#list-scope").inner_text()
        assert "网格 " in scope
        shown = page.locator("#worklist button.item").count()
        assert shown <= total
        page.click("#show-all")
        page.wait_for_selector("#show-all[hidden]", state="attached", timeout=10_000)
        assert page.locator("#worklist button.item").count() == total
    assert not watch.problems, watch.problems


def test_a_refused_change_shows_the_problem_in_chinese(served_demo):
    """The hazard moved on elsewhere while the page showed it: the 409's Chinese detail is
    shown by the form, nothing else breaks."""
    url, facts = served_demo
    with browser_page() as page:
        watch = sign_in(page, url, facts["tokens"]["officer"])
        item = page.locator("#worklist button.item[data-hazard]",
                            has_text="（已登记）").first
        hazard = item.get_attribute("data-hazard")
        item.click()
        page.wait_for_selector("#transition-form", timeout=10_000)
        moved = httpx.post(f"{url}/api/hazards/{hazard}/transitions", json={
            "from": "已登记", "to": "整改中", "evidence": "另一终端已开始整改"},
            headers={"Authorization": f"Bearer {facts['tokens']['officer']}"})
        assert moved.status_code == 200, moved.text
        page.fill("#evidence", "已责令整改")
        page.click("#transition-submit")
        out = page.locator("#transition-out.error")
        out.wait_for(timeout=10_000)
        assert "您看到的状态已过时" in out.inner_text() and " / " not in out.inner_text()
    # the refused request itself is the only thing the browser reports
    assert all("409" in p for p in watch.problems), watch.problems


def _png() -> bytes:
    """A real 4×4 photo: the service decodes and encodes photos anew, so a PNG that only
    starts like one is refused."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 60, 40)).save(out, format="PNG")
    return out.getvalue()


PNG = _png()


def test_a_photo_goes_with_the_transition_and_shows_in_the_history(served_demo, tmp_path):
    """The officer attaches a photo while moving a hazard 已登记 → 整改中: it is uploaded,
    the hazard moves, and the history lists the photo (its name as text, a download link)
    without a reload."""
    url, facts = served_demo
    name = "<b>现场<i>照片.png"  # markup (a '/' would be a folder)
    with browser_page() as page:
        page.set_viewport_size({"width": 1280, "height": 800})
        watch = sign_in(page, url, facts["tokens"]["officer"])
        page.evaluate("window.__same_page = true")
        item = page.locator("#worklist button.item[data-hazard]",
                            has_text="（已登记）").first
        item.click()
        page.wait_for_selector("#transition-form", timeout=10_000)
        chooser = page.locator("#evidence-file")
        assert chooser.get_attribute("accept") == "image/*,application/pdf"
        assert chooser.get_attribute("capture") == "environment"
        chooser.set_input_files({"name": name, "mimeType": "image/png", "buffer": PNG})
        page.fill("#evidence", "已责令停用并更换安全阀，附现场照片")
        page.click("#transition-submit")
        page.wait_for_selector("#hazard-status:text-is('整改中')", timeout=10_000)
        link = page.locator("#detail .history a.evidence-link")
        link.wait_for(timeout=10_000)
        assert link.count() == 1
        assert link.inner_text() == name  # shown as text, not markup
        assert page.locator("#detail .history b, #detail .history i").count() == 0
        href = link.get_attribute("href")
        assert href.startswith("/api/evidence/EV")
        got = page.request.get(f"{url}{href}")
        assert got.status == 200 and got.body().startswith(b"\x89PNG\r\n\x1a\n")
        assert got.headers["content-disposition"].startswith("attachment")
        assert "上传整改证据" in page.locator("#detail .history").inner_text()
        assert page.evaluate("window.__same_page") is True
        page.screenshot(path=str(tmp_path / "grid-evidence.png"), full_page=True)
        keep_screenshot(tmp_path / "grid-evidence.png", "grid-evidence.png")
    assert not watch.problems, watch.problems


def test_evidence_is_added_to_an_open_hazard_without_moving_it(served_demo):
    """补充整改证据: a photo kept with a hazard that stays where it is (整改中 or 已登记),
    shown in its history at once; an empty choice is refused by the form."""
    url, facts = served_demo
    with browser_page() as page:
        watch = sign_in(page, url, facts["tokens"]["officer"])
        page.evaluate("window.__same_page = true")
        item = page.locator("#worklist button.item[data-hazard]").first
        item.click()
        page.wait_for_selector("#evidence-form", timeout=10_000)
        status = page.locator("#hazard-status").inner_text()
        assert status in ("已登记", "整改中")
        assert page.locator("#evidence-form h4").inner_text() == "补充整改证据"
        chooser = page.locator("#more-evidence-file")
        assert chooser.get_attribute("accept") == "image/*,application/pdf"
        links = page.locator("#detail .history a.evidence-link").count()
        chooser.set_input_files({"name": "<i>整改.pdf", "mimeType": "application/pdf",
                                 "buffer": b"%PDF-1.4\n%%EOF\n"})
        page.click("#evidence-submit")
        page.locator("#detail .history a.evidence-link").nth(links).wait_for(timeout=10_000)
        assert page.locator("#detail .history a.evidence-link").nth(links).inner_text() == (
            "<i>整改.pdf")
        assert page.locator("#detail .history i").count() == 0  # text, not markup
        assert page.locator("#hazard-status").inner_text() == status  # not moved
        assert page.evaluate("window.__same_page") is True
        page.wait_for_selector("body[aria-busy=false]", timeout=10_000)
    assert not watch.problems, watch.problems


def test_a_regulator_opens_an_officers_grid(served_demo, tmp_path):
    """The province regulator signs in to ``/grid?officer=…``: the officer's cells and list,
    the title and the note saying whose view it is, no Excel link; a cell still filters."""
    url, facts = served_demo
    officer = facts["officer"]
    target = f"/grid?officer={officer}"
    with browser_page() as page:
        page.set_viewport_size({"width": 1280, "height": 800})
        page.goto(f"{url}/login?next=/grid%3Fofficer%3D{officer}", wait_until="load")
        page.fill("input[name=token]", facts["tokens"]["province"])
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}{target}", timeout=15_000)
        page.wait_for_selector("body[data-ready=true]", timeout=20_000)
        watch = Watch(page)
        page.reload(wait_until="load")
        page.wait_for_selector("body[data-ready=true]", timeout=20_000)
        heading = page.locator("h1").inner_text()
        assert heading.startswith("网格员 ") and heading.endswith(" 的网格")
        assert page.title().startswith(heading)
        assert "监管查看" in page.locator("#view-note").inner_text()
        assert page.locator("path.grid-cell").count() == len(facts["officer_cells"])
        assert page.locator("#download-xlsx").count() == 0
        total = item_count(page)
        assert total == page.locator("#worklist button.item").count() > 0
        page.evaluate("""() => document.querySelector('path.grid-cell').dispatchEvent(
            new MouseEvent('click', {bubbles: true}))""")
        page.wait_for_selector("#show-all:not([hidden])", timeout=10_000)
        assert page.locator("#worklist button.item").count() <= total
        page.click("#show-all")
        assert page.locator("#worklist button.item").count() == total
        # a hazard's record opens with its history (the regulator may act in their region)
        page.locator("#worklist button.item[data-hazard]").first.click()
        page.wait_for_selector("#evidence-form", timeout=10_000)
        page.screenshot(path=str(tmp_path / "grid-regulator.png"), full_page=True)
        keep_screenshot(tmp_path / "grid-regulator.png", "grid-regulator.png")
        page.wait_for_selector("body[aria-busy=false]", timeout=10_000)
    assert not watch.problems, watch.problems
