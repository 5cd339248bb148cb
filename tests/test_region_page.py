"""The region page /regions/{adcode} (辖区概况) on the demo, both stores: who may open it
(administrators; regulators and planners for their region and the regions inside it),
refusals as HTML pages in the layout (403 outside the region or for another role, 404 an
unknown region, 400 a malformed code), its figures and child ranking drawn from the same
scoped rows as the API, the report links, and a small frame with no dataset inlined."""

from __future__ import annotations

import json
import re

import pytest

from tests.servers import get

pytestmark = [pytest.mark.slow, pytest.mark.reads_demo]

PAGE_LIMIT = 40_000  # bytes: the frame, a handful of figures, ≤ a few dozen child rows


def _facts(text: str) -> dict:
    found = re.search(r'<script type="application/json" id="region-facts"[^>]*>(.*?)</script>',
                      text, flags=re.S)
    assert found, "the page carries its facts"
    return json.loads(found.group(1))


def _ok(api: dict, who: str, path: str) -> str:
    r = get(api, who, path)
    assert r.status_code == 200, (who, path, r.text[:400])
    assert r.headers["content-type"].startswith("text/html")
    assert len(r.content) < PAGE_LIMIT, len(r.content)
    text = r.text
    # every script is our own file or carries the request's nonce
    nonce = re.search(r"'nonce-([^']+)'", r.headers["content-security-policy"]).group(1)
    for tag in re.findall(r"<script\b[^>]*>", text):
        assert f'nonce="{nonce}"' in tag or 'src="/static/' in tag, tag
    assert '"coordinates"' not in text and "FeatureCollection" not in text
    return text


def _refused(api: dict, who: str | None, path: str, status: int) -> str:
    r = get(api, who, path)
    assert r.status_code == status, (who, path, r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("text/html"), r.headers["content-type"]
    assert "<main" in r.text and "退出" in r.text  # the layout, not JSON
    return r.text


def _summary(api: dict, who: str, adcode: str) -> dict:
    r = get(api, who, f"/api/regions/{adcode}/summary")
    assert r.status_code == 200, r.text
    return r.json()


def test_the_province_page_for_the_province_regulator(api):
    text = _ok(api, "province", "/regions/410000")
    region = _summary(api, "province", "410000")["region"]
    assert "河南省" in text and "行政区划代码 410000" in text
    for label in ("在用设备", "重大风险设备占比", "逾期未检率", "未销号隐患", "电梯责任保险覆盖率",
                  "双重预防体系建成率", "下辖市风险排名", "风险提示·警示·预警", "年度报告"):
        assert label in text, label
    assert f"{region['equipment']:,} 台" in text
    if region["build_target"] is not None:
        assert f"目标 {region['build_target'] * 100:.1f}%" in text
        assert region["build_target_date"] in text
    # children: the province's cities, as the API's scoped layer has them, ranked
    layer = get(api, "province", "/api/layers/regions", adcode="41", limit=1000).json()
    cities = [f["properties"] for f in layer["features"]
              if f["properties"]["admin_level"] == "city"]
    rows = re.findall(r'<a href="/regions/(\d{6})">', text.split('id="children"')[1])
    assert sorted(rows) == sorted(c["adcode"] for c in cities) and rows
    ranked = sorted(cities, key=lambda c: (-(c["risk_index"] or -1), c["adcode"]))
    assert rows == [c["adcode"] for c in ranked]
    # the category × level counts add up to the region's in-use graded equipment
    facts = _facts(text)
    assert facts["adcode"] == "410000" and facts["levels"] == ["red", "orange", "yellow", "blue"]
    assert sum(sum(c[lv] for lv in facts["levels"]) for c in facts["categories"]) \
        == region["equipment"]
    for lv in facts["levels"]:
        assert sum(c[lv] for c in facts["categories"]) == region[f"n_{lv}"]
    # the yearly report, to open and to download
    assert "/api/regions/410000/report?year=2026&amp;format=html" in text
    assert "/api/regions/410000/report?year=2026&amp;format=pdf" in text
    assert '<script src="/static/vendor/echarts-5.6.0/echarts.common.min.js"></script>' in text
    assert '<script src="/static/js/region.js"></script>' in text


def test_city_and_county_pages_in_scope(api):
    city, county = api["city"], api["county"]
    text = _ok(api, "city", f"/regions/{city}")
    assert "下辖区县风险排名" in text and f'<a href="/regions/{county}">' in text
    assert 'href="/regions/410000"' not in text  # the province is not the city's to open
    assert "下辖区县风险排名" in _ok(api, "city", f"/regions/{city[:4]}")  # the prefix form
    own = _ok(api, "county", f"/regions/{county}")
    assert "风险排名" not in own and "区县，行政区划代码" in own
    assert f'<a href="/regions/{city}">' not in own
    assert _ok(api, "planner", f"/regions/{county}")
    assert f'<a href="/regions/{city}">' in _ok(api, "province", f"/regions/{county}")
    # the county's figures are the API's
    region = _summary(api, "county", county)["region"]
    assert f"{region['equipment']:,} 台" in own
    assert sum(sum(c[lv] for lv in ("red", "orange", "yellow", "blue"))
               for c in _facts(own)["categories"]) == region["equipment"]


def test_out_of_scope_and_other_roles_get_a_403_page(api):
    city, county = api["city"], api["county"]
    other_city = "410200" if city != "410200" else "410300"
    for who, path in (("county", f"/regions/{city}"), ("county", "/regions/410000"),
                      ("city", "/regions/410000"), ("city", f"/regions/{other_city}"),
                      ("planner", f"/regions/{city}"), ("officer", f"/regions/{county}"),
                      ("park", f"/regions/{county}"), ("city", "/regions/610000")):
        text = _refused(api, who, path, 403)
        assert "无权查看" in text, (who, path)


def test_unknown_and_malformed_codes(api):
    text = _refused(api, "admin", "/regions/4199", 404)
    assert "4199" in text and "不是已加载的行政区" in text
    assert "abc" in _refused(api, "admin", "/regions/abc", 400)
    assert "12345" in _refused(api, "admin", "/regions/12345", 400)


def test_signing_in_first(api):
    r = api["client"].get("/regions/410000", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/regions/410000"


def test_the_navigation_links_the_regulators_region(api):
    text = _ok(api, "county", f"/regions/{api['county']}")
    assert f'<a href="/regions/{api["county"]}" aria-current="page">辖区概况</a>' in text


def test_the_region_lists_its_grid_officers_linking_to_their_grids(api):
    """The county page lists the officers whose cells lie in the county (the grid-cells
    layer's cells, by their county), ranked by open major hazards; each links to their grid,
    which the regulator may open; planners see no list."""
    county = api["county"]
    text = _ok(api, "county", f"/regions/{county}")
    assert 'id="officers"' in text
    cells = get(api, "county", "/api/layers/grid-cells", limit=10_000).json()["features"]
    ids = {f["properties"]["officer_id"] for f in cells
           if f["properties"]["county_adcode"] == county}
    listed = re.findall(r'href="/grid\?officer=([^"]+)"', text)
    assert listed and set(listed) <= ids
    assert f"网格员（{len(ids)} 名）" in text
    first = listed[0]
    assert get(api, "county", "/grid", officer=first).status_code == 200
    # ranked: the first has at least as many open major hazards as any other listed
    majors = [sum(f["properties"]["open_major_hazards"] or 0 for f in cells
                  if f["properties"]["officer_id"] == o and
                  f["properties"]["county_adcode"] == county) for o in listed]
    assert majors[0] == max(majors)
    assert 'id="officers"' not in _ok(api, "planner", f"/regions/{county}")
    # the province page lists at most the 50 with the most to do, and says how many in all
    province = _ok(api, "province", "/regions/410000")
    assert len(re.findall(r'href="/grid\?officer=', province)) <= 50
