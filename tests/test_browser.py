"""The map in a real browser (Debian's chromium driven by Playwright): it draws cells."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time

import pytest
import uvicorn

from service.app import create_app
from service.ingest.pipeline import IngestOptions, ingest
from service.settings import Settings
from service.store.base import open_store
from tests import ingest_files as f

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def served_map(tmp_path):
    root = tmp_path / "store"
    with open_store(str(root)) as store:
        ingest([str(f.write_equipment_csv(tmp_path / "eq.csv"))], store, IngestOptions())
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(store=str(root))),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_map_draws_cells_and_counties(served_map, tmp_path):
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium missing: scripts/chromium.sh installs it")
        pytest.skip("chromium not installed (scripts/chromium.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{served_map}/map", wait_until="domcontentloaded")
        page.wait_for_selector(".leaflet-container", timeout=15_000)
        # prefer_canvas draws vectors on a canvas; the layer control lists our layers
        control = page.locator(".leaflet-control-layers").inner_text()
        assert "设备分布" in control and "区县边界" in control
        assert page.locator(".leaflet-overlay-pane canvas").count() >= 1
        assert "设备数量" in page.locator("#riskmap-legend").inner_text()
        page.screenshot(path=str(tmp_path / "map.png"))
        browser.close()
    assert not errors, errors
