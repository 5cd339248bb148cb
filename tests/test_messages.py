"""Messages in Chinese that say what to do (issue 12 §6): every 4xx ``detail`` is Chinese,
then " / " and English; it names the field and the form that is accepted. Dates in request
bodies are read as ingest reads them in a file. A 409 tells a stale ``from`` apart from a
change made meanwhile; a 404 names the hazard. Both stores."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.messages import translate
from service.settings import Settings
from service.store.base import Change
from tests import ingest_files as f
from tests.servers import call, get
from tests.test_hazard_loop import _fill, close

CJK = re.compile(r"[\u3400-\u9fff]")
CHECK = {"credit_code": f.UNIT_A, "checked_on": "2026-10-09", "result": "符合"}


@pytest.fixture()
def served(filled_store):
    """The service on this test's copy of test_hazard_loop's store (its users by key)."""
    filled = filled_store(_fill)
    with TestClient(create_app(Settings(store=filled.url))) as client:
        yield {"client": client, "tokens": filled.facts, "url": filled.url}


def chinese_first(r) -> str:
    """The problem's detail, checked to read "中文 / English"."""
    assert r.headers["content-type"] == "application/problem+json", r.text
    detail = r.json()["detail"]
    zh, _, en = detail.partition(" / ")
    assert CJK.search(zh) and re.search("[A-Za-z]", en), detail
    return detail


def post_check(served, who: str = "officer", **body):
    return call(served, who, "POST", "/api/checks", json={**CHECK, **body})


def test_a_missing_field_is_named_in_chinese(served):
    r = call(served, "officer", "POST", "/api/checks",
             json={"credit_code": f.UNIT_A, "result": "符合"})
    assert r.status_code == 422
    assert chinese_first(r) == "缺少必填字段 检查日期（checked_on） / checked_on is required"
    assert r.json()["errors"] == [{"loc": ["body", "checked_on"], "field": "checked_on",
                                   "type": "missing", "msg": r.json()["detail"]}]


def test_a_bad_date_says_the_form_and_ingest_forms_are_accepted(served):
    r = post_check(served, checked_on="2024-13-45")
    assert r.status_code == 422
    detail = chinese_first(r)
    assert detail.startswith("检查日期（checked_on）无法识别为日期：请使用 YYYY-MM-DD 格式")
    assert "use YYYY-MM-DD" in detail
    for written in ("2024/3/1", "2024年3月1日", "20240301"):
        r = post_check(served, checked_on=written, result=f"符合（{written}）")
        assert r.status_code == 201, r.text
        assert r.json()["checked_on"] == "2024-03-01"
    r = close(served, "henan", closed_on="2025年7月1日")
    assert r.status_code == 200 and r.json()["closed_on"] == "2025-07-01", r.text


def test_a_date_later_than_today_names_today(served):
    tomorrow = date.today() + timedelta(days=1)
    detail = chinese_first(post_check(served, checked_on=tomorrow.isoformat()))
    assert f"检查日期不能晚于今天（{date.today()}）" in detail
    assert "checked_on cannot be later than today" in detail


def test_too_long_short_and_malformed_strings_say_the_limit(served):
    r = post_check(served, result="x" * 501)
    assert chinese_first(r) == ("检查结果（result）过长：最多 500 个字符 / result is too long: "
                                "at most 500 characters")
    r = post_check(served, credit_code="123")
    assert "统一社会信用代码（credit_code）格式不正确：须为 18 位统一社会信用代码" in (
        chinese_first(r))
    r = close(served, "henan", evidence="x")
    assert "整改情况或证据说明（evidence）过短：至少 2 个字符" in chinese_first(r)
    r = close(served, "henan", hazard="a b")
    assert "1–64 位字母、数字、下划线或连字符" in chinese_first(r)


def test_out_of_range_and_unknown_choices_say_what_is_allowed(served):
    r = get(served, "admin", "/api/audit", limit=0)
    assert r.status_code == 422
    assert chinese_first(r) == "每页条数（limit）不能小于 1 / limit must be at least 1"
    assert "每页条数（limit）不能大于 1000" in chinese_first(get(served, "admin", "/api/audit",
                                                             limit=5000))
    assert "每页条数（limit）须为整数" in chinese_first(get(served, "admin", "/api/audit",
                                                          limit="ten"))
    r = get(served, "officer", "/api/worklist", format="pdf")
    assert chinese_first(r) == ("格式（format）须为 json、csv 或 xlsx 之一 / format must be one "
                                "of json, csv or xlsx")
    r = close(served, "henan", to="已关闭")
    assert "目标状态 to须为 整改中 或 已销号 之一" in chinese_first(r)


def test_bodies_that_are_not_json_or_carry_unknown_fields(served):
    r = call(served, "officer", "POST", "/api/checks", content=b"{not json",
              headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and chinese_first(r).startswith("请求体不是有效的 JSON")
    r = post_check(served, note="x")
    assert chinese_first(r) == "不支持的字段 note，请删除 / unknown field note; remove it"
    r = close(served, "henan", to="整改中")  # 整改中 → 整改中
    detail = chinese_first(r)
    assert "不允许的状态变更：整改中 → 整改中；允许的变更为 已登记 → 整改中" in detail
    r = close(served, "henan", verified_by=None)
    assert "销号须填写销号日期 closed_on（YYYY-MM-DD）和验收人 verified_by" in chinese_first(r)
    several = post_check(served, credit_code="1", result="")
    assert "另有 1 处错误" in chinese_first(several) and len(several.json()["errors"]) == 2


def test_a_stale_from_is_told_apart_from_a_change_meanwhile(served, monkeypatch):
    assert close(served, "henan").status_code == 200
    stale = close(served, "henan")  # from 整改中, but it is closed now
    assert stale.status_code == 409
    assert chinese_first(stale) == (
        "隐患 YH-HN 当前状态为“已销号”，而您提交的 from 为“整改中”：您看到的状态已过时，请刷新后"
        "按当前状态重试 / hazard YH-HN is now 已销号, you sent from=整改中: reload and try again")

    store = served["client"].app.state.store
    apply = store.apply_change

    def someone_else_first(change: Change):  # another caller wins between read and write
        apply(Change("hazards", change.key, None if change.expect is None else {
            "status": "已登记"}, {"status": "整改中"}, actor="u-other",
            action="hazard.transition", note="他人先改"))
        return apply(change)

    monkeypatch.setattr(store, "apply_change", someone_else_first)
    meanwhile = call(served, "henan", "POST", "/api/hazards/YH-NEW/transitions", json={
        "from": "已登记", "to": "整改中", "evidence": "已安排维修"})
    assert meanwhile.status_code == 409
    assert chinese_first(meanwhile) == (
        "隐患 YH-NEW 在您提交的同时已被他人改为“整改中”，您的变更未保存：请刷新后重试 / hazard "
        "YH-NEW was changed by someone else meanwhile (now 整改中); yours was not saved: reload "
        "and try again")


def test_not_found_names_what_is_missing(served):
    r = close(served, "henan", hazard="YH-NOPE")
    assert r.status_code == 404
    assert chinese_first(r).startswith("隐患 YH-NOPE 不存在（或不在您的管辖范围内）")
    r = post_check(served, "henan", credit_code=f.UNIT_C)  # a Shaanxi unit
    assert r.status_code == 404
    assert chinese_first(r).startswith(f"单位 {f.UNIT_C} 不存在（或不在您的管辖范围内）")
    r = get(served, None, "/api/random-draws/SJ20260101ABCDEF12")
    assert r.status_code == 404 and chinese_first(r).startswith("抽取 SJ20260101ABCDEF12 不存在")
    r = get(served, "admin", "/api/no-such-thing")
    assert r.status_code == 404 and chinese_first(r).startswith("没有该地址 /api/no-such-thing")
    r = call(served, "admin", "DELETE", "/api/audit")
    assert r.status_code == 405 and "不支持 DELETE 请求" in chinese_first(r)


def test_refusals_say_what_to_do_instead(served):
    r = post_check(served, officer_id="WG-HN2")
    assert r.status_code == 403
    assert "officer_id 留空或填写 WG-HN" in chinese_first(r)
    r = post_check(served, "henan", officer_id="WG-NOBODY")
    assert r.status_code == 422 and "没有网格员 WG-NOBODY：请填写已登记的网格员编号" in (
        chinese_first(r))
    r = call(served, "henan", "POST", "/api/random-draws", json={
        "region": "610000", "size": 1})
    assert r.status_code == 403 and "请填写 410000 或其下级行政区划代码" in chinese_first(r)
    for who, status in ((None, 401), ("officer", 403)):  # raised elsewhere: English added
        r = get(served, who, "/api/audit")
        assert r.status_code == status and chinese_first(r)
    r = get(served, "officer", "/api/worklist", today="1999-01-01")
    assert r.status_code == 400 and "today 须在 2000-01-01 至 2100-12-31 之间" in (
        chinese_first(r))


@pytest.mark.parametrize(("error", "msg"), [
    ({"type": "string_pattern_mismatch", "loc": ("body", "region"),
      "ctx": {"pattern": r"^\d{6}$"}, "msg": "x"},
     "抽取范围（region）格式不正确：须为 6 位数字的行政区划代码，如 410105 / region is malformed: "
     "expected a 6-digit administrative code, e.g. 410105"),
    ({"type": "too_long", "loc": ("body", "inspectors"), "ctx": {"max_length": 500},
      "msg": "x"}, "检查人员（inspectors）过多：最多 500 项 / inspectors has too many items: "
                   "at most 500"),
    ({"type": "bool_parsing", "loc": ("query", "insured"), "msg": "x"},
     "已投保（insured）须为 true 或 false / insured must be true or false"),
    ({"type": "value_error", "loc": ("body", "kind"), "msg": "须为文本字段"},
     "类型（kind）：须为文本字段 / invalid kind"),
    ({"type": "string_pattern_mismatch", "loc": ("body", "inspectors", 0),
      "ctx": {"pattern": "^[a-z]+$"}, "msg": "x"},
     "检查人员（inspectors）格式不正确：须为 符合格式 ^[a-z]+$ 的值 / inspectors is malformed: "
     "expected a value matching ^[a-z]+$"),
])
def test_pydantic_errors_are_translated_by_type(error, msg):
    assert translate(error)["msg"] == msg


UPLOAD = [("files", ("台账.csv", "编号\n1\n".encode(), "text/csv"))]
# (where the message is written, caller, method, path, request keywords, status, the name
# the detail must give: the parameter's API name, the layer or the role)
RAISED = [
    ("params: level", "admin", "GET", "/api/layers/equipment", {"params": {"level": "紫"}},
     400, "level"),
    ("params: category", "admin", "GET", "/api/layers/equipment",
     {"params": {"category": "3100"}}, 400, "category"),
    ("params: industry", "admin", "GET", "/api/layers/units", {"params": {"industry": "Z"}},
     400, "industry"),
    ("params: park", "admin", "GET", "/api/layers/equipment", {"params": {"park": "a b"}},
     400, "park"),
    ("params: a filter the layer lacks", "admin", "GET", "/api/layers/equipment",
     {"params": {"industry": "C"}}, 400, "industry"),
    ("params + geo.regions: adcode", "admin", "GET", "/api/layers/equipment",
     {"params": {"adcode": "4199"}}, 400, "adcode"),
    ("params: spec_of", "admin", "GET", "/api/layers/no-layer", {}, 404, "layer"),
    ("params: known_query", "admin", "GET", "/api/audit", {"params": {"actoin": "x"}}, 400,
     "actoin"),
    ("messages: pydantic", "admin", "GET", "/api/layers/equipment", {"params": {"limit": 0}},
     422, "limit"),
    ("ogc: crs", "admin", "GET", "/ogc/collections/equipment/items",
     {"params": {"crs": "EPSG:3857"}}, 400, "crs"),
    ("ogc: bbox (routes/layers)", "admin", "GET", "/api/layers/equipment",
     {"params": {"bbox": "1,2"}}, 400, "bbox"),
    ("ogc: limit", "admin", "GET", "/ogc/collections/equipment/items",
     {"params": {"limit": "ten"}}, 400, "limit"),
    ("ogc: datetime", "admin", "GET", "/ogc/collections/equipment/items",
     {"params": {"datetime": "yesterday"}}, 400, "datetime"),
    ("ogc: f", "admin", "GET", "/ogc", {"params": {"f": "xml"}}, 400, "f"),
    ("routes/ogc: collection", "admin", "GET", "/ogc/collections/nothing", {}, 404,
     "collection_id"),
    ("routes/ogc: feature", "admin", "GET", "/ogc/collections/equipment/items/NOPE", {}, 404,
     "feature_id"),
    ("routes/pages: resolution", "admin", "GET", "/map", {"params": {"resolution": 8}}, 400,
     "resolution"),
    ("routes/cells: resolution", "admin", "GET", "/api/cells", {"params": {"resolution": 9}},
     400, "resolution"),
    ("routes/tiles: a table", "admin", "GET", "/tiles/check-schedule/1/0/0.mvt", {}, 404,
     "layer"),
    ("routes/tiles: x and y", "admin", "GET", "/tiles/equipment/1/5/0.mvt", {}, 400, "x"),
    ("tiles: properties", "admin", "GET", "/tiles/equipment/12/0/0.mvt",
     {"params": {"properties": "colour"}}, 400, "properties"),
    ("routes/exports: layer", "admin", "GET", "/api/export/no-layer", {}, 404, "layer"),
    ("routes/uploads: crs", "admin", "POST", "/api/ingest",
     {"files": UPLOAD, "data": {"crs": "Beijing54"}}, 400, "crs"),
    ("routes/uploads: kind", "admin", "POST", "/api/ingest",
     {"files": UPLOAD, "data": {"kind": "tables"}}, 422, "kind"),
    ("routes/uploads: the form's limits", "admin", "POST", "/api/ingest",
     {"files": [("files", (f"{i}.csv", b"a\n1\n", "text/csv")) for i in range(51)]}, 400,
     "files"),
    ("routes/profiles: park", "admin", "GET", "/api/parks/NOPE/profile", {}, 404, "park_id"),
    ("routes/profiles: city", "admin", "GET", "/api/demonstration",
     {"params": {"city": "410105"}}, 400, "city"),
    ("routes/profiles: adcode", "admin", "GET", "/api/regions/4199/summary", {}, 400,
     "adcode"),
    ("routes/draws: region", "henan", "POST", "/api/random-draws",
     {"json": {"region": "4199", "size": 1}}, 400, "region"),
    ("scope: a layer the role may not see", "officer", "GET", "/api/layers/regions", {}, 403,
     "regions"),
    ("auth: no token", None, "GET", "/api/audit", {}, 401, "Authorization"),
    ("auth: a token no one holds", None, "GET", "/api/audit",
     {"headers": {"Authorization": "Bearer rmk_nobody"}}, 401, "Authorization"),
    ("auth: require", "officer", "GET", "/api/audit", {}, 403, "grid_officer"),
    ("body_limit: Content-Length", "admin", "POST", "/api/checks",
     {"content": b"{}", "headers": {"Content-Length": "abc",
                                    "Content-Type": "application/json"}}, 400,
     "Content-Length"),
]


@pytest.mark.parametrize(("where", "who", "method", "path", "kw", "status", "name"), RAISED,
                         ids=[r[0] for r in RAISED])
def test_every_refusal_reads_chinese_then_english_and_names_the_parameter(
        served, where, who, method, path, kw, status, name):
    r = call(served, who, method, path, **kw)
    assert r.status_code == status, (where, r.text)
    detail = chinese_first(r)
    assert name in detail.partition(" / ")[0] and name in detail.partition(" / ")[2], detail
