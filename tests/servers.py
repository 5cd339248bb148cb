"""The service as the tests reach it: a caller's requests to a test client (``call``,
``get``); a real uvicorn serving an app on a free localhost port, in a thread, for the tests
that need a browser, a raw socket (a test client hands the app a whole request at once) or a
real HTTP client; and Debian's chromium for the browser tests, one browser a session."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import uvicorn

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright


# requests as a caller ---------------------------------------------------------------------------

def auth(served: dict, who: str | None) -> dict[str, str]:
    """The Authorization header of caller ``who`` (a key of ``served["tokens"]``), or none."""
    return {"Authorization": f"Bearer {served['tokens'][who]}"} if who else {}


def call(served: dict, who: str | None, method: str, path: str, **kw: Any):
    """A request by ``who`` to ``served["client"]``; ``headers`` add to the caller's."""
    headers = {**auth(served, who), **kw.pop("headers", {})}
    return served["client"].request(method, path, headers=headers, **kw)


def get(served: dict, who: str | None, path: str, **params: Any):
    """GET by ``who`` with query ``params`` (which replace any query written in ``path``)."""
    return call(served, who, "GET", path, params=params)


# a real server ----------------------------------------------------------------------------------

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


# a browser --------------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# as the machine's probe starts it: no sandbox as root, and no background connections,
# which a closed network refuses by the dozen
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


class _Chromium:
    """One chromium for the whole session, started by the first page and stopped by
    ``close_browser`` (conftest, at the end of the session).

    Playwright's sync API marks its event loop as running in this thread after every call.
    Between pages nothing of Playwright runs, so the mark is taken off when a page is done
    (no later test sees a running loop) and put back before the next page is used."""

    def __init__(self) -> None:
        self.playwright: Playwright | None = None
        self.browser: Browser | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def _resume(self) -> None:
        if self.loop is not None:
            asyncio.events._set_running_loop(self.loop)

    def _pause(self) -> None:
        if self.loop is not None:
            asyncio.events._set_running_loop(None)

    def start(self) -> Browser:
        if self.browser is not None and self.browser.is_connected():
            self._resume()
            return self.browser
        self.close()
        from playwright.sync_api import sync_playwright

        self.playwright = sync_playwright().start()
        self.loop = asyncio.events._get_running_loop()
        self.browser = self.playwright.chromium.launch(executable_path=CHROMIUM,
                                                      args=CHROMIUM_ARGS)
        return self.browser

    def close(self) -> None:
        self._resume()
        try:
            if self.browser is not None:
                with contextlib.suppress(Exception):
                    self.browser.close()
            if self.playwright is not None:
                self.playwright.stop()
        finally:
            self._pause()
            self.playwright = self.browser = self.loop = None


_CHROMIUM = _Chromium()


@contextlib.contextmanager
def browser_page() -> Iterator[Page]:
    """A page, in a fresh browser context (no cookies or storage of another test), of Debian's
    chromium driven by Playwright (no browser download); skips where chromium is missing,
    fails under CI."""
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium missing: scripts/chromium.sh installs it")
        pytest.skip("chromium not installed (scripts/chromium.sh)")
    try:
        context = _CHROMIUM.start().new_context(viewport={"width": 1000, "height": 700})
        try:
            yield context.new_page()
        finally:
            context.close()
    finally:
        _CHROMIUM._pause()


class TileWatch:
    """The tile requests a page makes and their answers, so that a test waits for the tiles
    it needs rather than a fixed time (tiles queue behind others on a loaded machine)."""

    def __init__(self, page: Page, part: str = "/tiles/") -> None:
        self.page = page
        self.asked: list[str] = []
        self.answered: list[tuple[int, int, str]] = []  # status, content-length, url
        self.failed: list[str] = []
        page.on("request", lambda r: self.asked.append(r.url) if part in r.url else None)
        page.on("response", lambda r: self.answered.append(  # body() is not readable here
            (r.status, int(r.headers.get("content-length", 0)), r.url))
            if part in r.url else None)
        page.on("requestfailed", lambda r: self.failed.append(r.url) if part in r.url
                else None)

    def settle(self, until: Any = None, seconds: float = 20) -> list[tuple[int, int, str]]:
        """Waits until every tile asked so far is answered (or failed) and ``until`` (a test
        of the answers) holds; the answers. A test that times out asserts on what came."""
        for _ in range(int(seconds * 10)):
            ended = {url for *_, url in self.answered} | set(self.failed)
            done = self.asked and set(self.asked) <= ended  # answers to earlier asks aside
            if done and (until is None or until(self.answered)):
                break
            self.page.wait_for_timeout(100)
        self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")
        return self.answered


def keep_screenshot(shot: Path, name: str) -> None:
    """A copy of ``shot`` named ``name`` in the directory RISKMAP_SCREENSHOTS names, if it
    names one (how the README's screenshots are taken); else nothing."""
    target = os.environ.get("RISKMAP_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(target) / name)


def close_browser() -> None:
    """Stop the session's chromium, if a test started it."""
    _CHROMIUM.close()


@contextlib.contextmanager
def serving_copy(store_templates: Any, request: Any, fill: Any, **settings: Any
                 ) -> Iterator[tuple[str, dict, str]]:
    """A served copy of an embedded store template (``fill`` builds it once a session):
    base URL, the template's facts and the copy's store URL; the copy is dropped after.
    ``settings`` are further service settings (``basemap="amap"``)."""
    from service.app import create_app
    from service.settings import Settings

    copy = store_templates.copy("embedded", fill, request)
    try:
        with serving(create_app(Settings(store=copy.url, **settings))) as (url, _port):
            yield url, copy.facts, copy.url
    finally:
        store_templates.drop(copy.url)
