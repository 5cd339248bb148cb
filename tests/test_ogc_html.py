"""The HTML encoding of /ogc (web/ogc_html.py): each page rendered from the documents the
live /ogc routes build on the seeded demo (both stores), in Chinese, with the layout, the
request's nonce on every script and no inline handler; hostile values escaped and
``javascript:`` links dropped; items paged with prev/next and titled from the registry;
the Accept/f negotiation; and one page in a browser under the real CSP, its map drawn."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest

from layers.registry import LAYERS
from web import ogc_html
from web.ogc_html import (
    collection_page,
    collections_page,
    conformance_page,
    item_page,
    items_page,
    landing_page,
    queryables_page,
    safe_href,
    wants_html,
)
from web.pages import PageUser

pytestmark = pytest.mark.reads_demo

NONCE = "n0nce-Test_1"
HOSTILE = "<img src=x onerror=alert(1)>"
SCRIPT_END = "</script><script>alert(2)</script>"
BAD_HREFS = ["javascript:alert(1)", " JaVaScRiPt:alert(1)", "java\tscript:alert(1)",
             "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)",
             "\njavascript:alert(1)"]


def doc(api, path: str, who: str = "county", **params) -> dict:
    r = api["client"].get(path, params=params,
                          headers={"Authorization": f"Bearer {api['tokens'][who]}"})
    assert r.status_code == 200, r.text
    return r.json()


def strict(page: str) -> None:
    """A whole page, every script carrying the nonce, no inline handler, no script URL."""
    assert page.startswith("<!DOCTYPE html>") and '<html lang="zh-CN">' in page
    tags = Tags()
    tags.feed(page)
    scripts = [attrs for tag, attrs in tags.seen if tag == "script"]
    assert all(attrs.get("nonce") == NONCE for attrs in scripts)
    assert not [a for _, attrs in tags.seen for a in attrs if a.startswith("on")], "handler"
    assert {tag for tag, _ in tags.seen} <= ALLOWED_TAGS, "a tag from data"
    for tag, attrs in tags.seen:  # no script URL anywhere (the layout's icon is data:,)
        for name in ("href", "src", "action", "formaction"):
            if attrs.get(name) is not None and (tag, attrs.get("rel")) != ("link", "icon"):
                assert safe_href(attrs[name]) is not None, (tag, attrs)
    assert "<img" not in page


class Tags(HTMLParser):
    """Every start tag of a page with its attributes, as a browser parses them."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append((tag, dict(attrs)))


ALLOWED_TAGS = {"html", "head", "meta", "title", "link", "body", "header", "nav", "a", "span",
                "main", "section", "h1", "h2", "p", "ul", "li", "div", "table", "thead",
                "tbody", "tr", "th", "td", "dl", "dt", "dd", "script", "code", "b"}


def hrefs(page: str) -> list[str]:
    """The pages' link targets (the layout's data: icon is no link)."""
    return [h.replace("&amp;", "&") for h in re.findall(r'<a\b[^>]*\bhref="([^"]*)"', page)]


# pages from the live documents ------------------------------------------------------------------

@pytest.mark.slow
def test_landing_conformance_and_collections_pages(api):
    landing = doc(api, "/ogc")
    page = landing_page(landing, nonce=NONCE)
    strict(page)
    assert f"<h1>{landing['title']}</h1>" in page and landing["description"] in page
    for link in landing["links"]:
        assert link["href"] in hrefs(page)
    assert "符合的标准类" in page and "要素集合" in page

    conformance = doc(api, "/ogc/conformance")
    page = conformance_page(conformance, nonce=NONCE)
    strict(page)
    assert "<h1>符合的标准类</h1>" in page
    assert len(re.findall(r"<li><a href=\"http://www.opengis.net/spec/", page)) == len(
        conformance["conformsTo"]) >= 3

    collections = doc(api, "/ogc/collections", who="planner")
    page = collections_page(collections, nonce=NONCE, user=PageUser("规划员", "planner",
                                                                     "规划人员", "410100"))
    strict(page)
    assert "<h1>要素集合</h1>" in page and "规划员（规划人员）" in page
    assert page.count("<tr data-id=") == len(collections["collections"]) > 0
    for c in collections["collections"]:
        assert LAYERS[c["id"]].title in page
        items = next(link["href"] for link in c["links"] if link["rel"] == "items")
        assert items in hrefs(page)


@pytest.mark.slow
def test_collection_page_has_its_extent_and_a_map_of_its_first_items(api):
    c = doc(api, "/ogc/collections/equipment")
    page = collection_page(c, nonce=NONCE)
    strict(page)
    assert f"<h1>{LAYERS['equipment'].title}</h1>" in page and "空间范围" in page
    box = c["extent"]["spatial"]["bbox"][0]
    assert f"经度 {box[0]} – {box[2]}" in page
    assert '/static/vendor/leaflet-1.9.4/leaflet.js"' in page and "/static/js/ogc.js" in page
    facts = re.search(r'id="ogc-map-facts" nonce="[^"]+">(.*?)</script>', page).group(1)
    import json
    facts = json.loads(facts)
    assert facts["bbox"] == box
    query = parse_qs(urlsplit(facts["items"]).query)
    assert query == {"f": ["json"], "limit": ["100"]}
    items = api["client"].get(facts["items"], headers={
        "Authorization": f"Bearer {api['tokens']['county']}"})
    assert items.status_code == 200 and items.json()["type"] == "FeatureCollection"


@pytest.mark.slow
def test_items_page_is_a_table_with_chinese_titles_and_paging(api):
    spec = LAYERS["equipment"]
    body = doc(api, "/ogc/collections/equipment/items", limit=5, offset=5)
    assert {link["rel"] for link in body["links"]} >= {"self", "next", "prev", "collection"}
    page = items_page(body, nonce=NONCE, titles=spec.field_labels)
    strict(page)
    assert f"<h1>{spec.title} · 要素</h1>" in page
    assert f"本页 5 个要素，共 {body['numberMatched']} 个符合条件" in page
    shown = [k for k in spec.field_labels if k in body["features"][0]["properties"]]
    for name in shown:
        assert f'<th scope="col" title="{name}">{spec.field_labels[name]}</th>' in page
    links = {link["rel"]: link["href"] for link in body["links"]}
    found = hrefs(page)
    assert links["next"] in found and links["prev"] in found
    assert 'rel="next"' in page and 'rel="prev"' in page
    for feature in body["features"]:
        assert f">{feature['id']}</a>" in page
    # the feature links open the item
    first = next(h for h in found if h.startswith("/ogc/collections/equipment/items/"))
    one = api["client"].get(first, headers={
        "Authorization": f"Bearer {api['tokens']['county']}"})
    assert one.status_code == 200 and one.json()["id"] == body["features"][0]["id"]
    # the first page has no prev, the last no next
    last = doc(api, "/ogc/collections/equipment/items", limit=5,
               offset=body["numberMatched"] - 1)
    page = items_page(last, nonce=NONCE)
    assert 'rel="prev"' in page and 'rel="next"' not in page
    first_page = items_page(doc(api, "/ogc/collections/equipment/items", limit=5),
                            nonce=NONCE)
    assert 'rel="next"' in first_page and 'rel="prev"' not in first_page


@pytest.mark.slow
def test_item_page_lists_the_properties_and_maps_the_feature(api):
    spec = LAYERS["units"] if "units" in LAYERS else LAYERS["equipment"]
    body = doc(api, f"/ogc/collections/{spec.id}/items", limit=1)
    feature = doc(api, f"/ogc/collections/{spec.id}/items/{body['features'][0]['id']}")
    page = item_page(feature, nonce=NONCE, titles=spec.field_labels)
    strict(page)
    assert f"<h1>{spec.title} · {feature['id']}</h1>" in page
    for name, value in feature["properties"].items():
        label = spec.field_labels.get(name, name)
        assert f'<th scope="row" title="{name}">{label}</th>' in page
        if isinstance(value, str) and value:
            assert value.replace("&", "&amp;").replace("<", "&lt;") in page
    assert '"features": [{"geometry"' in page and "ogc.js" in page
    assert "?f=json" in page  # the same feature as JSON


@pytest.mark.slow
def test_hostile_values_are_escaped_and_script_links_dropped(api):
    body = doc(api, "/ogc/collections/equipment/items", limit=2)
    for feature in body["features"]:
        feature["properties"] = {**feature["properties"], HOSTILE: HOSTILE,
                                 "note": SCRIPT_END}
        feature["id"] = HOSTILE
    body["features"][0]["id"] = SCRIPT_END  # the map's JSON holds the ids
    body["links"] = [link for link in body["links"] if link["rel"] != "next"] + [
        {"rel": "next", "href": bad} for bad in BAD_HREFS]
    page = items_page(body, nonce=NONCE, titles={HOSTILE: HOSTILE})
    strict(page)
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert 'rel="next"' not in page  # every next link was hostile
    assert SCRIPT_END not in page and "\\u003c/script\\u003e" in page  # in the map's JSON
    assert page.count("</script>") == len(re.findall(r"<script\b", page))

    c = doc(api, "/ogc/collections/equipment")
    c.update(title=HOSTILE, description=SCRIPT_END, id=HOSTILE)
    c["links"] = [{"rel": "items", "href": bad, "title": HOSTILE} for bad in BAD_HREFS]
    c["extent"]["spatial"]["bbox"] = [["<b>", 1, 2, 3]]
    for page in (collection_page(c, nonce=NONCE),
                 collections_page({"collections": [c], "links": c["links"]}, nonce=NONCE),
                 landing_page({"title": HOSTILE, "description": HOSTILE, "links": c["links"]},
                              nonce=NONCE),
                 conformance_page({"conformsTo": [HOSTILE, *BAD_HREFS]}, nonce=NONCE),
                 queryables_page({"title": HOSTILE, "properties": {HOSTILE: {
                     "title": HOSTILE, "type": HOSTILE, "enum": [HOSTILE]}}}, nonce=NONCE)):
        strict(page)
        assert "&lt;img src=x onerror=alert(1)&gt;" in page
        assert "浏览要素</a>" not in page  # the items link was hostile
        for h in hrefs(page):
            assert safe_href(h) is not None

    feature = {**body["features"][0], "links": [{"rel": "collection", "title": HOSTILE,
                                                 "href": "javascript:alert(1)"}]}
    page = item_page(feature, nonce=NONCE)
    strict(page)
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


@pytest.mark.slow
def test_epsg_4490_pages_tell_the_map_the_axis_order(api):
    crs = "http://www.opengis.net/def/crs/EPSG/0/4490"
    body = doc(api, "/ogc/collections/equipment/items", limit=3, crs=crs)
    assert '"latLon": true' in items_page(body, nonce=NONCE, lat_lon=True)
    assert '"latLon": false' in items_page(body, nonce=NONCE)


# pure parts -------------------------------------------------------------------------------------

def test_queryables_page_from_the_registry_titles():
    spec = LAYERS["equipment"]
    schema = {"$schema": "https://json-schema.org/draft/2019-09/schema", "type": "object",
              "title": spec.title, "properties": {
                  name: {"title": label, "type": "string"}
                  for name, label in spec.field_labels.items()},
              "links": [{"rel": "self", "href": "/ogc/collections/equipment/queryables"}]}
    page = queryables_page(schema, nonce=NONCE)
    strict(page)
    assert f"<h1>{spec.title} · 可查询属性</h1>" in page
    for name, label in spec.field_labels.items():
        assert f"<td><code>{name}</code></td><td>{label}</td><td>文本</td>" in page
    assert "/ogc/collections/equipment/queryables?f=json" in page
    assert ogc_html.column_titles(schema) == spec.field_labels


@pytest.mark.parametrize(("href", "kept"), [
    ("https://example.org/a", True), ("http://x/ogc?f=json", True), ("/ogc/collections", True),
    ("items?offset=10", True), ("//example.org/a", True), ("", False), (None, False),
    (42, False), *((bad, False) for bad in BAD_HREFS), ("ftp://x/y", False),
    ("\x00javascript:alert(1)", False), ("mailto:a@b", False),
])
def test_only_http_and_relative_links_are_kept(href, kept):
    assert (safe_href(href) is not None) is kept


BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


@pytest.mark.parametrize(("accept", "f", "html"), [
    (None, None, False),                          # curl without Accept, scripts
    ("*/*", None, False),                         # GDAL, OWSLib (requests)
    ("application/json", None, False),
    ("application/geo+json", None, False),
    ("application/json, text/html", None, False),  # named first wins a tie
    ("application/json;q=0.9, */*;q=0.1", None, False),
    ("text/html;q=0, */*", None, False),
    (BROWSER, None, True),                        # Chrome, Firefox
    ("text/html", None, True),
    ("text/html, application/json", None, True),
    ("application/json;q=0.5, text/html", None, True),
    ("text/*", None, True),
    ("text/html;q=abc, application/json;q=0.5", None, False),  # a bad q counts as 0
    (BROWSER, "json", False),                     # f wins over Accept
    (BROWSER, "JSON", False),
    (BROWSER, "geojson", False),
    ("application/json", "html", True),
    (None, "html", True),
    (None, "HTML ", True),
    (BROWSER, "xml", False),                      # the route refuses other formats
])
def test_wants_html(accept, f, html):
    assert wants_html(accept, f) is html


def test_the_script_sets_text_never_html():
    script = (ogc_html.__file__.rsplit("/", 1)[0] + "/static/js/ogc.js")
    with open(script, encoding="utf-8") as fh:
        code = fh.read()
    assert "innerHTML" not in code and "insertAdjacentHTML" not in code
    assert "textContent" in code


# in a browser, under the real CSP ---------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.browser
def test_items_and_collection_pages_draw_their_maps_under_the_csp(api):
    import httpx

    from service.app import create_app
    from service.security_headers import page_policy
    from service.settings import Settings
    from tests.servers import browser_page, serving

    token = api["tokens"]["county"]
    with serving(create_app(Settings(store=api["url"]))) as (url, _port), \
            browser_page() as page:
        def live(path: str, **params) -> dict:  # links to the served app, not the test client
            return httpx.get(url + path, params=params,
                             headers={"Authorization": f"Bearer {token}"}).json()

        body = live("/ogc/collections/equipment/items", limit=20)
        for feature in body["features"]:
            feature["properties"]["unit_name"] = HOSTILE
        pages = {"/ogc-html-test/items": items_page(
                     body, nonce=NONCE, titles=LAYERS["equipment"].field_labels),
                 "/ogc-html-test/collection": collection_page(
                     live("/ogc/collections/equipment"), nonce=NONCE)}

        def fulfil(route):
            path = urlsplit(route.request.url).path
            route.fulfill(status=200, body=pages[path], content_type="text/html",
                          headers={"Content-Security-Policy": page_policy(NONCE)})

        page.route(re.compile(r".*/ogc-html-test/.*"), fulfil)
        page.set_extra_http_headers({"Authorization": f"Bearer {token}"})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("dialog", lambda d: (errors.append("dialog " + d.message), d.dismiss()))

        page.goto(url + "/ogc-html-test/items")
        page.wait_for_selector("#ogc-map .leaflet-interactive")
        assert page.locator("#ogc-map .leaflet-interactive").count() == len(body["features"])
        assert "本页 20 个要素" in page.text_content("#ogc-map-note")
        assert page.locator("table.ogc-table tbody tr").count() == 20

        # the collection page fetches its first features with the caller's credentials
        # (the scoped /ogc items of the real service) and draws the extent and them
        page.goto(url + "/ogc-html-test/collection")
        page.wait_for_selector("#ogc-map-note:has-text('前')", timeout=15_000)
        assert page.locator("#ogc-map .leaflet-interactive").count() > 1
        assert not errors, errors


# the routes answer f=html (and a browser's Accept) with these pages -------------------------

@pytest.mark.slow
def test_every_ogc_resource_answers_html_to_browsers_and_json_to_clients(api):
    token = {"Authorization": f"Bearer {api['tokens']['county']}"}
    client = api["client"]
    feature = doc(api, "/ogc/collections/equipment/items", limit=1)["features"][0]["id"]
    paths = {"/ogc": "<h1>", "/ogc/conformance": "<h1>符合的标准类</h1>",
             "/ogc/collections": "<h1>要素集合</h1>",
             "/ogc/collections/equipment": f"<h1>{LAYERS['equipment'].title}</h1>",
             "/ogc/collections/equipment/items": f"<h1>{LAYERS['equipment'].title} · 要素</h1>",
             f"/ogc/collections/equipment/items/{feature}": f"· {feature}</h1>"}
    for path, heading in paths.items():
        for params, accept in (({"f": "html"}, "*/*"), ({}, BROWSER)):
            r = client.get(path, params=params, headers={**token, "Accept": accept})
            assert r.status_code == 200, (path, r.text)
            assert r.headers["content-type"].startswith("text/html"), path
            assert heading in r.text, path
            nonce = re.search(r"'nonce-([^']+)'", r.headers["content-security-policy"])[1]
            tags = Tags()
            tags.feed(r.text)
            assert all(attrs.get("nonce") == nonce for tag, attrs in tags.seen
                       if tag == "script"), path
        for params, accept in (({}, "*/*"), ({"f": "json"}, BROWSER), ({}, None)):
            headers = {**token, **({"Accept": accept} if accept else {})}
            r = client.get(path, params=params, headers=headers)
            assert r.status_code == 200 and "json" in r.headers["content-type"], path
    assert client.get("/ogc", params={"f": "html"}).status_code == 401
