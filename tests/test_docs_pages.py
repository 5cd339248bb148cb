"""The API docs work where the users are, on an intranet: ``/docs`` (Swagger UI) and
``/redoc`` (ReDoc) load only from this server (vendored in ``web/static/vendor``, shipped as
package data), run under the strict Content-Security-Policy, and in a real browser render
the API with no request leaving the server and no policy violation."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from service.app import REDOC, SWAGGER_UI, create_app
from service.security_headers import page_policy, redoc_policy
from service.settings import Settings
from service.store import open_store
from tests.servers import browser_page, serving

ROOT = Path(__file__).resolve().parents[1]
PAGES = {"/docs": page_policy, "/redoc": redoc_policy}


@pytest.fixture()
def app(tmp_path):
    """The app on an empty store (the docs need no data)."""
    root = str(tmp_path / "store")
    open_store(root, create=True).close()
    return create_app(Settings(store=root))


def _references(page: str) -> list[str]:
    """The URLs a page loads: attributes, and the schema in Swagger UI's start script."""
    return re.findall(r"""(?:\b(?:src|href|spec-url)\s*=|\burl:)\s*["']([^"']*)["']""", page)


@pytest.mark.parametrize("path", PAGES)
def test_docs_pages_load_only_from_this_server_under_the_strict_policy(app, path):
    with TestClient(app) as client:
        response = client.get(path)
        assert response.status_code == 200
        page = response.text
        # no CDN, no Google Fonts, no favicon from fastapi.tiangolo.com: nothing absolute
        assert not re.findall(r"(?:https?:)?//[\w.-]+", page.replace("<!--", "")), page
        for banned in ("jsdelivr", "googleapis", "gstatic", "unpkg", "tiangolo"):
            assert banned not in page
        references = _references(page)
        assert len(references) >= 2 and "/openapi.json" in references
        for reference in references:
            assert reference.startswith("/"), reference
            assert client.get(reference).status_code == 200, reference
        # the policy sent is the strict one, and every script tag has its nonce
        policy = response.headers["content-security-policy"]
        nonce = re.search(r"'nonce-([A-Za-z0-9_-]+)'", policy).group(1)
        assert policy == PAGES[path](nonce)
        assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        assert "unsafe-eval" not in policy
        if path == "/docs":  # Swagger UI starts with an inline script
            tags = re.findall(r"<script\b[^>]*>", page)
            assert len(tags) == 2 and all(f'nonce="{nonce}"' in tag for tag in tags), tags


def test_docs_pages_have_no_oauth2_redirect_and_the_schema_names_neither(app):
    with TestClient(app) as client:
        assert client.get("/docs/oauth2-redirect").status_code == 404
        paths = client.get("/openapi.json").json()["paths"]
        assert not {"/docs", "/redoc"} & set(paths)


def test_the_vendored_docs_assets_stay_offline_and_are_package_data():
    vendor = ROOT / "web" / "static"
    swagger, redoc = vendor / SWAGGER_UI.removeprefix("/static/"), \
        vendor / REDOC.removeprefix("/static/")
    for directory, names in ((swagger, ("swagger-ui-bundle.js", "swagger-ui.css",
                                        "favicon-32x32.png", "LICENSE", "NOTICE")),
                             (redoc, ("redoc.standalone.js", "LICENSE", "README.md"))):
        for name in names:
            assert (directory / name).is_file(), directory / name
    # ReDoc's sidebar logo came from cdn.redoc.ly (patched out: the vendored README.md)
    assert "cdn.redoc.ly" not in (redoc / "redoc.standalone.js").read_text("utf-8")
    # every file under web/static is matched by web's package data, so `pip install .`
    # ships the docs' assets as it ships Leaflet
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["web"]
    web = ROOT / "web"
    shipped = {p for pattern in patterns for p in web.glob(pattern) if p.is_file()}
    files = {p for p in (web / "static").rglob("*") if p.is_file()}
    assert files and files <= shipped, sorted(map(str, files - shipped))


# ------------------------------------------------------------------------- in a browser

def _watch(page, requests: list[str], problems: list[str]) -> None:
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))


def _assert_local(requests: list[str], port: int) -> None:
    assert requests
    for url in requests:
        # ReDoc's search worker runs from a blob: URL of this origin
        parts = urlsplit(url.removeprefix("blob:"))
        assert (parts.scheme, parts.hostname, parts.port) == ("http", "127.0.0.1", port), url


@pytest.mark.browser
def test_docs_pages_render_in_a_browser_from_this_server_alone(app):
    with serving(app) as (url, port):
        requests: list[str] = []
        problems: list[str] = []
        with browser_page() as page:
            _watch(page, requests, problems)
            page.goto(f"{url}/docs", wait_until="domcontentloaded")
            page.wait_for_selector(".opblock", timeout=20_000)
            assert page.locator(".opblock").count() >= 20  # the API's operations
            # and it works: try /healthz from the page
            health = page.locator("#operations-health-healthz_healthz_get")
            health.locator(".opblock-summary").click()
            health.locator(".try-out__btn").click()
            health.locator(".execute").click()
            status = health.locator(".live-responses-table tr.response .response-col_status")
            status.wait_for(timeout=10_000)
            assert status.inner_text().strip() == "200"
            assert '"status": "ok"' in health.locator(".live-responses-table").inner_text()
        with browser_page() as page:
            _watch(page, requests, problems)
            page.goto(f"{url}/redoc", wait_until="domcontentloaded")
            title = page.locator("h1").first
            title.wait_for(timeout=20_000)
            assert app.title in title.inner_text()
            # its search runs in its worker (worker-src blob: on /redoc alone)
            page.fill("input.search-input", "healthz")
            results = page.locator("[data-role='search:results'] li")
            results.first.wait_for(timeout=10_000)
            assert "健康检查" in results.first.inner_text()
        assert not problems, problems  # no CSP violation, no script error
        _assert_local(requests, port)
        assert any(u.endswith("/healthz") for u in requests)
        assert any(u.startswith("blob:") for u in requests)
