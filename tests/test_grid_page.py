"""The grid officer's page ``/grid`` on the built demo, on both stores: who may open it, what
it holds (a shell: the worklist and cells come from the API, never inlined) and where an
officer lands after signing in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.servers import call

pytestmark = pytest.mark.reads_demo


def page(api: dict, who: str | None):
    return call(api, who, "GET", "/grid", follow_redirects=False)


def test_not_signed_in_is_sent_to_sign_in_and_back(api):
    r = page(api, None)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/grid"


def test_an_officer_gets_their_page_with_their_name_and_no_data_inlined(api):
    r = page(api, "officer")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "我的网格" in html and "officer（网格员）" in html and api["officer"] in html
    assert f"{len(api['officer_cells'])} 个" in html
    assert 'href="/api/worklist?format=xlsx"' in html
    # a shell: the list and cells come from the API, so the page stays small
    assert len(r.content) < 8_000, len(r.content)
    assert "FeatureCollection" not in html and '"items"' not in html
    # every script is a vendored or own file, or carries the request's nonce
    policy = r.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    for tag in re.findall(r"<script[^>]*>", html):
        assert 'src="/static/' in tag or f'nonce="{nonce}"' in tag, tag
    # no CDN: the only external addresses are the optional basemaps' tile templates
    outside = re.sub(r'<script type="application/json" id="riskmap-basemaps".*?</script>', "",
                     html, flags=re.S)
    assert "https://" not in outside
    # the navigation shows only the officer's own page
    nav = re.search(r'<nav class="nav".*?</nav>', html, re.S).group(0)
    assert re.findall(r'href="([^"]+)"', nav) == ["/grid"]


@pytest.mark.parametrize("who", ["park", "county", "admin"])
def test_other_roles_get_a_403_page_not_json(api, who):
    r = page(api, who)
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("text/html")
    assert "此页面仅供网格员使用" in r.text and "返回首页" in r.text


def test_the_officer_lands_on_grid_after_signing_in(api):
    client = api["client"]
    try:
        form = client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        r = client.post("/login", data={"token": api["tokens"]["officer"], "csrf": csrf},
                        follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/grid"
        r = client.get("/grid", follow_redirects=False)
        assert r.status_code == 200 and "我的网格" in r.text
        # the data the page's script asks for, with the session cookie
        cells = client.get("/api/grid/cells").json()
        assert {f["properties"]["h3"] for f in cells["features"]} == api["officer_cells"]
        body = client.get("/api/grid/worklist").json()
        priorities = body["columns"]["priority"]
        if isinstance(priorities, dict):  # dictionary-encoded: few distinct values
            priorities = [priorities["values"][c] for c in priorities["codes"]]
        assert priorities and priorities == sorted(priorities)
        xlsx = client.get("/api/worklist", params={"format": "xlsx"})  # 下载 Excel
        assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    finally:
        client.cookies.clear()


def test_the_page_files_are_served(api):
    for path in ("/static/js/grid.js", "/static/css/grid.css"):
        r = api["client"].get(path)
        assert r.status_code == 200, path


def test_the_script_puts_data_on_the_page_only_as_text():
    """Every value from the API goes in by textContent or a text node (escaped by the DOM),
    never as markup, and no string is run as code (the policy forbids eval anyway)."""
    script = (Path(__file__).parents[1] / "web/static/js/grid.js").read_text()
    for markup in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                   "eval(", "new Function"):
        assert markup not in script, markup


def test_the_outline_is_the_officers_counties_only(api):
    r = call(api, "officer", "GET", "/api/grid/outline")
    assert r.status_code == 200 and r.headers["content-type"].startswith(
        "application/geo+json")
    features = r.json()["features"]
    assert 1 <= len(features) <= 3
    assert all(f["properties"]["name"] for f in features)
    assert len(r.content) < 200_000  # a county or two, not the provinces' 2.8 MB
    assert call(api, "park", "GET", "/api/grid/outline").status_code == 403
