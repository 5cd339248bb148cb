"""The park administrator's page /parks/{id} (一园一策) and its PDF, on both stores: who may
open it (the park's own administrator, regulators whose region holds it, administrators),
refusals as HTML pages (403 another park's administrator, 404 unknown or outside the
region), the frame small with no dataset inlined, every value escaped, the PDF a PDF of the
park."""

from __future__ import annotations

import json
import re
import zlib
from collections import Counter

import pytest

from layers.frames import LEVEL_ZH
from service.report.render import ReportUnavailable
from tests.servers import get
from web.pages import PageUser, render

pytestmark = [pytest.mark.slow, pytest.mark.reads_demo]

PAGE_LIMIT = 20_000  # bytes: the frame and a handful of figures, no rows of data


def _parks(api: dict) -> list[dict]:
    r = get(api, "admin", "/api/layers/parks", limit=1000)
    assert r.status_code == 200
    return [f["properties"] for f in r.json()["features"]]


def _park(api: dict) -> dict:
    return next(p for p in _parks(api) if p["park_id"] == api["park"])


def _html_refusal(r, status: int) -> str:
    assert r.status_code == status, r.text[:300]
    assert r.headers["content-type"].startswith("text/html")
    return r.text


def _scripts(page: str) -> list[str]:
    return re.findall(r"<script\b[^>]*>", page, flags=re.IGNORECASE)


def test_the_park_admin_opens_their_park_a_small_frame_with_its_figures(api):
    park = _park(api)
    r = get(api, "park", f"/parks/{api['park']}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert park["name"] in page and park["kind"] in page
    for label in ("使用单位", "在用设备", "未销号隐患", "逾期未检率", "电梯责任保险覆盖率",
                  "定期检验合规率", "“五有”达标率", "下载 PDF", "打印", "一园一策措施"):
        assert label in page, label
    assert f"/parks/{api['park']}/profile.pdf" in page
    assert f"全部园区第 {park['rank']} 位" in page
    # no dataset inlined: the units, their codes and the measures come from the API
    assert len(r.content) < PAGE_LIMIT, len(r.content)
    assert "FeatureCollection" not in page and '"features"' not in page
    for unit in park["top_units"]:
        assert unit["credit_code"] not in page
    for text in park["measures"]:
        assert text not in page
    nonce = re.search(r"'nonce-([^']+)'", r.headers["content-security-policy"]).group(1)
    tags = _scripts(page)
    assert tags and all(f'nonce="{nonce}"' in t for t in tags), tags
    # every script runs from a file; the inline blocks are data (the category counts, the
    # basemaps offered)
    inline = [t for t in tags if " src=" not in t]
    assert inline == [t for t in tags if 'type="application/json"' in t] and len(inline) == 2
    assert ['id="park-categories"' in inline[0], 'id="riskmap-basemaps"' in inline[1]] == [
        True, True]
    assert r.headers["cache-control"] == "private, no-store"


def _categories(page: str) -> list[dict]:
    block = re.search(r'<script type="application/json" id="park-categories"[^>]*>(.*?)</script>',
                      page, flags=re.S)
    assert block, "no #park-categories block"
    return json.loads(block.group(1))


def _all_features(api: dict, who: str, layer: str, **params) -> list[dict]:
    out, offset = [], 0
    while True:
        r = get(api, who, f"/api/layers/{layer}", limit=10_000, offset=offset, **params)
        assert r.status_code == 200, r.text[:300]
        out += r.json()["features"]
        if len(out) >= r.json()["numberMatched"]:
            return out
        offset = len(out)


def test_the_category_counts_are_the_parks_in_use_equipment_by_level(api):
    """The page's category × level counts (computed on the server) are what paging through
    the park's equipment would count, scoped the same way."""
    page = get(api, "park", f"/parks/{api['park']}").text
    counted = {r["code"]: r for r in _categories(page)}
    expected: dict[str, Counter] = {}
    for f in _all_features(api, "park", "equipment", park=api["park"]):
        p = f["properties"]
        if p.get("in_use") is False:
            continue
        level = p.get("level") if p.get("level") in LEVEL_ZH else "none"
        expected.setdefault(p.get("top_category") or "未知", Counter())[level] += 1
    assert expected, "the demo park has no equipment"
    assert set(counted) == set(expected)
    for code, levels in expected.items():
        assert {k: counted[code][k] for k in (*LEVEL_ZH, "none")} == \
            {k: levels.get(k, 0) for k in (*LEVEL_ZH, "none")}, code


PAGE_JSON_LIMIT = 60_000  # bytes: the page's JSON requests together, on the suite's demo


def test_the_pages_json_requests_are_small_and_carry_what_it_draws(api):
    pid = api["park"]
    profile = get(api, "park", f"/api/parks/{pid}/profile", units="false")
    outline = get(api, "park", "/api/layers/parks", park=pid)
    units = get(api, "park", f"/parks/{pid}/units.geojson")
    for r in (profile, outline, units):
        assert r.status_code == 200, r.text[:300]
    total = sum(len(r.content) for r in (profile, outline, units))
    # what the page fetched before: every unit's record, twice, and every piece of equipment
    before = (len(get(api, "park", f"/api/parks/{pid}/profile").content)
              + len(get(api, "park", "/api/layers/units", park=pid, limit=5000).content)
              + len(get(api, "park", "/api/layers/equipment", park=pid, limit=10_000).content))
    assert total < PAGE_JSON_LIMIT, total
    assert total < before / 4, (total, before)
    # the compact profile is the park's own (figures, months, measures, top units) only
    body = profile.json()
    assert set(body) == {"park"} and body["park"]["park_id"] == pid
    assert body["park"]["top_units"] and "monthly" in body["park"]
    # the map's units: every located unit of the park, with only what the map shows
    assert units.headers["content-type"].startswith("application/geo+json")
    located = [f for f in _all_features(api, "park", "units", park=pid) if f["geometry"]]
    got = units.json()["features"]
    assert {f["properties"]["credit_code"] for f in got} == \
        {f["properties"]["credit_code"] for f in located}
    assert all(set(f["properties"]) == {"credit_code", "name", "level", "equipment",
                                        "open_hazards"} and f["geometry"]["type"] == "Point"
               for f in got)


def test_the_units_for_the_map_are_refused_like_the_page(api):
    other = next(p["park_id"] for p in _parks(api) if p["park_id"] != api["park"])
    _html_refusal(get(api, "park", f"/parks/{other}/units.geojson"), 403)
    _html_refusal(get(api, "admin", "/parks/NO_SUCH_PARK/units.geojson"), 404)


def test_the_park_admin_lands_on_their_park_after_signing_in(api):
    client = api["client"]
    client.cookies.clear()
    form = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    r = client.post("/login", data={"token": api["tokens"]["park"], "csrf": csrf},
                    follow_redirects=False)
    try:
        assert r.status_code == 303 and r.headers["location"] == f"/parks/{api['park']}"
        page = client.get(r.headers["location"])
        assert page.status_code == 200 and _park(api)["name"] in page.text
        assert 'aria-current="page">园区画像' in page.text
    finally:
        client.cookies.clear()


def test_not_signed_in_goes_to_the_login_with_next(api):
    for path in (f"/parks/{api['park']}", f"/parks/{api['park']}/profile.pdf"):
        r = api["client"].get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/login?next={path}"


def test_another_parks_admin_gets_a_403_page(api):
    other = next(p["park_id"] for p in _parks(api) if p["park_id"] != api["park"])
    for path in (f"/parks/{other}", f"/parks/{other}/profile.pdf"):
        page = _html_refusal(get(api, "park", path), 403)
        assert "无权查看" in page and f'href="/parks/{api["park"]}"' in page


def test_a_grid_officer_gets_a_403_page(api):
    page = _html_refusal(get(api, "officer", f"/parks/{api['park']}"), 403)
    assert "无权查看园区画像" in page and "网格员" in page


def test_regulators_open_the_parks_of_their_region_only(api):
    parks = _parks(api)
    inside = next(p for p in parks if p["county_adcode"] == api["county"])
    outside = next(p for p in parks if not p["county_adcode"].startswith(api["city"][:4]))
    r = get(api, "county", f"/parks/{inside['park_id']}")
    assert r.status_code == 200 and inside["name"] in r.text
    count = sum(p["county_adcode"] == api["county"] for p in parks)
    rank = 1 + sum(p["county_adcode"] == api["county"] and p["rank"] < inside["rank"]
                   for p in parks)
    assert f"辖区 {count} 个园区中第 {rank} 位" in r.text
    assert get(api, "province", f"/parks/{outside['park_id']}").status_code == 200
    for who in ("county", "city", "planner"):
        page = _html_refusal(get(api, who, f"/parks/{outside['park_id']}"), 404)
        assert "不存在或不在您的管辖范围内" in page and outside["name"] not in page
        page = _html_refusal(get(api, who, f"/parks/{outside['park_id']}/profile.pdf"), 404)


def test_an_unknown_or_malformed_park_is_a_404_page(api):
    for path in ("/parks/NO_SUCH_PARK", "/parks/NO_SUCH_PARK/profile.pdf", "/parks/a%20b",
                 "/parks/" + "X" * 65):
        page = _html_refusal(get(api, "admin", path), 404)
        assert "园区不存在" in page


def _pdf_titles(pdf: bytes) -> list[str]:
    """The PDF's outline titles (WeasyPrint bookmarks the headings, UTF-16BE hex)."""
    titles = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        try:
            text = zlib.decompress(stream)
        except zlib.error:
            continue
        for hexed in re.findall(rb"/Title\s*<feff([0-9a-fA-F]+)>", text):
            titles.append(bytes.fromhex(hexed.decode()).decode("utf-16-be"))
    return titles


def test_the_pdf_is_the_parks_profile(api):
    park = _park(api)
    r = get(api, "park", f"/parks/{api['park']}/profile.pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF") and len(r.content) > 10_000
    assert f'filename="park_{api["park"]}.pdf"' in r.headers["content-disposition"]
    titles = _pdf_titles(r.content)
    assert any(park["name"] in t for t in titles), titles
    for section in ("主要指标", "在用设备（按种类和风险等级）", "隐患发现与销号（按月）",
                    "风险最高的使用单位", "一园一策措施"):
        assert any(section in t for t in titles), (section, titles)


def test_the_pdf_without_its_libraries_is_503(api, monkeypatch):
    def missing(_html: str) -> bytes:
        raise ReportUnavailable("无法生成 PDF：缺少 pango")

    monkeypatch.setattr("service.routes.park_page.render_pdf", missing)
    r = get(api, "admin", f"/parks/{api['park']}/profile.pdf")
    assert r.status_code == 503 and "pango" in r.json()["detail"]


def test_the_print_page_has_charts_tables_and_measures_with_basis(api):
    from service.auth import Principal, Role
    from service.routes.park_page import OpenPark, page_user, print_html
    from service.settings import Settings
    from service.store import open_store

    park = _park(api)
    admin = Principal(user_id="u0", name="admin", role=Role.ADMIN, scope=None)
    with open_store(api["url"]) as store:
        row = store.read_layer("parks").set_index("park_id", drop=False).loc[api["park"]]
        page = print_html(store, Settings(store=api["url"]),
                          OpenPark(admin, page_user(admin), "n", row))
    assert page.count("<svg") >= 2 and "<script" not in page
    for text in park["measures"]:
        assert text in page
    assert "依据：" in page and "原因：" in page and "豫市监办〔2021〕55号" in page
    for unit in park["top_units"]:
        assert unit["credit_code"] in page


PAYLOAD = '<img src=x onerror="window.__pwned=1">'


def test_every_value_in_the_frame_is_escaped():
    head = {"park_id": "P1", "name": "园区" + PAYLOAD, "kind": PAYLOAD, "county": PAYLOAD,
            "area": PAYLOAD, "level": "red", "level_zh": LEVEL_ZH["red"], "level_note": PAYLOAD,
            "rank": PAYLOAD, "figures": [(PAYLOAD, PAYLOAD, PAYLOAD)]}
    user = PageUser("管理员" + PAYLOAD, "admin", "系统管理员", None)
    page = render("park.html.j2", user=user, nonce="n0nce", current="/parks/P1",
                  title=head["name"], park=head, levels=LEVEL_ZH, pdf="/parks/P1/profile.pdf",
                  rules=[{"id": "x", "reason": PAYLOAD, "basis": PAYLOAD}],
                  categories=[{"code": PAYLOAD + "</script>", "red": 1}])
    assert "<img src=x" not in page and "&lt;img src=x" in page
    assert page.count("</script>") == page.count("<script")
