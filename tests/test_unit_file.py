"""The unit's file (一企一档一码) over HTTP on the demo, both stores: its contents, the
small/micro checklist, the scope (a hostile signed-in user learns nothing), the QR code and
the page it opens. The module has its own copy of the demo: it closes a hazard's loop."""

from __future__ import annotations

import io

import pandas as pd
import pytest
import segno
from fastapi.testclient import TestClient

from data.credit_code import with_check_character
from layers.small_micro import DEFAULT_CHECKLIST
from service.app import create_app
from service.settings import Settings
from service.unit_file import qr_png, qr_svg
from tests.servers import call, get

pytestmark = pytest.mark.slow

BASE = "http://testserver"  # the TestClient's base URL


@pytest.fixture(scope="module")
def demo_units(api) -> pd.DataFrame:
    """The built units layer of the demo (as the admin sees it)."""
    page = get(api, "admin", "/api/layers/units", limit=10_000).json()["features"]
    return pd.DataFrame([f["properties"] for f in page])


def _file(api, who: str, code: str):
    return get(api, who, f"/api/units/{code}/file")


def _busiest(units: pd.DataFrame, small: bool) -> str:
    mode = units["small_micro"].astype(bool) == small
    return units[mode].sort_values(["open_hazards", "credit_code"],
                                   ascending=[False, True])["credit_code"].iloc[0]


def test_the_file_of_a_unit(api, demo_units):
    code = _busiest(demo_units, small=False)
    r = _file(api, "admin", code)
    assert r.status_code == 200, r.text
    body = r.json()
    unit = body["unit"]
    row = demo_units.set_index("credit_code").loc[code]
    assert unit["credit_code"] == code and unit["name"] == row["name"]
    assert unit["level"] == row["level"] and unit["level_zh"] and unit["level_reason"]
    assert unit["build_status"] in ("已建成", "部分建成", "未建成", "未评估")
    assert unit["address"] and unit["industry_name"] and unit["size"] == row["size"]
    assert body["as_of"] == "2026-11-01"
    pieces = body["equipment"]
    assert len(pieces) == row["equipment"] and pieces
    for piece in pieces:
        assert piece["level"] is None or piece["D"] == pytest.approx(
            piece["L"] * piece["E"] * piece["C"])
        assert {"L_reason", "E_reason", "C_reason", "next_inspection_due", "overdue"} <= set(
            piece)
    ranks = [p["level_rank"] or 0 for p in pieces]
    assert ranks == sorted(ranks, reverse=True)
    codes = {p["registration_code"] for p in pieces}
    hazards = body["hazards"]
    assert hazards and all(h["registration_code"] in codes for h in hazards)
    assert sum(h["status"] in ("已登记", "整改中") for h in hazards) == row["open_hazards"]
    assert all(h["history"][0]["to"] == "已登记" for h in hazards if h["found_on"])
    assert body["schedule"]["credit_code"] == code
    assert isinstance(body["checks"], list)
    measures = body["measures"]
    assert measures["mode"] == "full" and measures["title"] == "一企一策措施"
    assert [m["text"] for m in measures["items"]] == list(row["measures"])
    assert body["code"] == {"url": f"{BASE}/units/{code}", "svg": f"/api/units/{code}/qr.svg",
                            "png": f"/api/units/{code}/qr.png"}


def test_a_small_unit_gets_the_checklist_instead_of_the_measures(api, demo_units):
    code = _busiest(demo_units, small=True)
    body = _file(api, "admin", code).json()
    measures = body["measures"]
    assert measures["mode"] == "small_micro" and "简便、实用、管用" in measures["title"]
    ids = [m["id"] for m in measures["items"]]
    assert ids[:2] == ["self_check", "inspection_due"]
    assert set(ids) <= {item.id for item in DEFAULT_CHECKLIST}
    assert all(m["basis"] for m in measures["items"])
    full = set(demo_units.set_index("credit_code").loc[code, "measures"])
    assert not full & {m["text"] for m in measures["items"]}
    categories = {p["top_category"] for p in body["equipment"] if p["in_use"]}
    wanted = {item.id for item in DEFAULT_CHECKLIST
              if not item.categories or set(item.categories) & categories}
    assert set(ids) == wanted


def test_out_of_scope_is_not_found(api, demo_units):
    """A hostile signed-in user learns nothing of a unit outside their scope: the same 404
    as a unit that does not exist, for the file and its codes."""
    unknown = with_check_character(pd.Series(["91410100MA0000000"]))[0]
    nobody = _file(api, "admin", unknown)
    assert nobody.status_code == 404

    def detail(r) -> str:
        return r.json()["detail"].replace(r.url.path.split("/")[3], "CODE")

    cells = api["officer_cells"]
    inside = demo_units[demo_units["h3"].isin(cells)]["credit_code"].iloc[0]
    outside = demo_units[~demo_units["h3"].isin(cells)]["credit_code"].iloc[0]
    in_park = demo_units[demo_units["park_id"] == api["park"]]["credit_code"].iloc[0]
    off_park = demo_units[demo_units["park_id"] != api["park"]]["credit_code"].iloc[0]
    mine = demo_units[demo_units["county_adcode"] == api["county"]]["credit_code"].iloc[0]
    other = demo_units[(demo_units["county_adcode"] != api["county"])
                       & demo_units["county_adcode"].str.startswith("41")]["credit_code"].iloc[0]
    for who, seen, hidden in (("officer", inside, outside), ("park", in_park, off_park),
                              ("county", mine, other), ("city", mine, unknown)):
        assert _file(api, who, seen).status_code == 200, who
        refused = _file(api, who, hidden)
        assert refused.status_code == 404, who
        assert detail(refused) == detail(nobody)
        for kind in ("qr.svg", "qr.png"):
            assert get(api, who, f"/api/units/{hidden}/{kind}").status_code == 404
    assert get(api, None, f"/api/units/{mine}/file").status_code == 401


def test_an_invalid_code_is_a_400_naming_it(api, demo_units):
    code = demo_units["credit_code"].iloc[0]
    wrong_check = code[:17] + ("0" if code[17] != "0" else "1")
    for bad in (wrong_check, "abc", "9141010" + "O" * 11):
        r = _file(api, "admin", bad)
        assert r.status_code == 400, bad
        assert "credit_code" in r.json()["detail"] and "统一社会信用代码" in r.json()["detail"]
    assert _file(api, "admin", code.lower()).status_code == 200  # case is not a mistake


def test_a_hazards_history_in_the_file(api, demo_units):
    hazards = get(api, "admin", "/api/layers/hazards", limit=10_000).json()["features"]
    hazard = next(h["properties"] for h in hazards if h["properties"]["status"] == "已登记")
    r = call(api, "admin", "POST", f"/api/hazards/{hazard['hazard_id']}/transitions",
             json={"from": "已登记", "to": "整改中", "evidence": "已委托维保单位整改"})
    assert r.status_code == 200, r.text
    body = _file(api, "admin", hazard["unit_credit_code"]).json()
    found = next(h for h in body["hazards"] if h["hazard_id"] == hazard["hazard_id"])
    assert found["status"] == "整改中"
    last = found["history"][-1]
    assert (last["action"], last["from"], last["to"]) == ("hazard.transition", "已登记", "整改中")
    assert last["note"] == "已委托维保单位整改" and last["by"] == "admin（系统管理员）"
    assert found["history"][0]["action"] == "hazard.register"


def test_the_qr_code_encodes_the_public_url(api, demo_units):
    code = demo_units["credit_code"].iloc[0]
    url = f"{BASE}/units/{code}"
    svg = get(api, "admin", f"/api/units/{code}/qr.svg")
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert svg.content == qr_svg(url) and b"<svg" in svg.content
    expected = io.BytesIO()
    segno.make(url, error="m").save(expected, kind="svg", scale=4, border=4,
                                    title="一企一档一码", dark="#000", light="#fff")
    assert svg.content == expected.getvalue()  # segno's own rendering of the URL
    png = get(api, "admin", f"/api/units/{code}/qr.png")
    assert png.content == qr_png(url) and png.content.startswith(b"\x89PNG")
    public = "https://riskmap.example.gov.cn/fw"
    with TestClient(create_app(Settings(store=api["url"], public_url=public + "/"))) as client:
        headers = {"Authorization": f"Bearer {api['tokens']['admin']}"}
        body = client.get(f"/api/units/{code}/file", headers=headers).json()
        assert body["code"]["url"] == f"{public}/units/{code}"
        moved = client.get(f"/api/units/{code}/qr.svg", headers=headers)
        assert moved.content == qr_svg(f"{public}/units/{code}") != svg.content
    with pytest.raises(ValueError):
        Settings(public_url="ftp://example.com")


def test_the_page_the_code_opens(api, demo_units):
    code = _busiest(demo_units, small=True)
    page = get(api, "admin", f"/units/{code}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    name = demo_units.set_index("credit_code").loc[code, "name"]
    assert name in text and f'<img src="/api/units/{code}/qr.svg"' in text
    assert "<script" not in text
    assert "小微企业简易清单" in text and "一企一档一码" in text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    anonymous = api["client"].get(f"/units/{code}", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == f"/login?next=/units/{code}"
    outside = demo_units[~demo_units["h3"].isin(api["officer_cells"])]["credit_code"].iloc[0]
    hidden = get(api, "officer", f"/units/{outside}")
    assert hidden.status_code == 404 and "不在您的管辖范围内" in hidden.text
    assert get(api, "admin", "/units/abc").status_code == 400


def test_the_page_escapes_what_the_registers_hold():
    from web.unit_file import build_unit_page, build_unit_problem_page

    evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    file = {"as_of": "2026-11-01", "code": {"url": f"https://x/units/{evil}"},
            "unit": {"credit_code": "91410100MA0000000X", "name": evil, "address": evil,
                     "level": evil, "level_zh": evil, "build_status": evil},
            "equipment": [{"registration_code": evil, "category": evil, "level": "red",
                           "level_zh": evil, "L_reason": evil}],
            "hazards": [{"hazard_id": evil, "description": evil,
                         "history": [{"at": evil, "action_zh": evil, "to": evil}]}],
            "checks": [{"checked_on": evil, "officer_id": evil, "result": evil}],
            "schedule": {"interval_months": 1, "next_due": evil, "reasons": evil},
            "measures": {"title": evil, "items": [{"text": evil, "basis": evil}]}}
    for page in (build_unit_page(file, user=None, nonce="n"), build_unit_problem_page(evil)):
        assert "<script" not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
