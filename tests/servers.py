"""A real uvicorn serving an app on a free localhost port, in a thread, for the tests that
need a browser, a raw socket (a test client hands the app a whole request at once) or a
real HTTP client; and Debian's chromium for the browser tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import uvicorn

if TYPE_CHECKING:
    from playwright.sync_api import Page


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(app: object) -> Iterator[tuple[str, int]]:
    """Serve ``app`` until the block ends; yields its base URL and port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# as the machine's probe starts it: no sandbox as root, and no background connections,
# which a closed network refuses by the dozen
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@contextlib.contextmanager
def browser_page() -> Iterator[Page]:
    """A page of Debian's chromium driven by Playwright (no browser download); skips where
    chromium is missing, fails under CI."""
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium missing: scripts/chromium.sh installs it")
        pytest.skip("chromium not installed (scripts/chromium.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1000, "height": 700})
        finally:
            browser.close()
