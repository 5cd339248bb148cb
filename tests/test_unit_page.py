"""The unit file page /units/{credit_code} (一企一档一码) in the pages' layout, both stores:
the file the JSON endpoint serves, rendered (header, QR code, equipment with their levels and
reasons, checks, hazards with their history, measures or the small/micro checklist); a unit
outside the caller's scope is the same 404 page as one that does not exist; a unit name with
markup in it is shown escaped, and the page runs no script."""

from __future__ import annotations

import csv
import re
from datetime import date

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from data.demo import FILES, generate
from service.app import create_app
from service.auth import Role, create_user
from service.build import run_build
from service.ingest.pipeline import IngestOptions, ingest
from service.settings import Settings
from tests.servers import get

pytestmark = pytest.mark.slow

def _e(text: str) -> str:
    """``text`` as the pages' Jinja2 escapes it."""
    return str(escape(text))


EVIL = '<script>window.__pwned=1</script>"><img src=x onerror=alert(2)>'


@pytest.fixture(scope="module")
def units(api) -> pd.DataFrame:
    page = get(api, "admin", "/api/layers/units", limit=10_000).json()["features"]
    return pd.DataFrame([f["properties"] for f in page])


def _page(api: dict, who: str, code: str, status: int = 200) -> str:
    r = get(api, who, f"/units/{code}")
    assert r.status_code == status, (who, code, r.text[:300])
    assert r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "<script" not in r.text  # the file page runs nothing
    assert '<header class="topbar">' in r.text  # in the layout
    return r.text


def _busiest(units: pd.DataFrame, small: bool, where: pd.Series | None = None) -> str:
    chosen = units if where is None else units[where]
    chosen = chosen[chosen["small_micro"].astype(bool) == small]
    return chosen.sort_values(["open_hazards", "credit_code"],
                              ascending=[False, True])["credit_code"].iloc[0]


def test_the_file_of_a_unit_in_scope(api, units):
    mine = units["county_adcode"] == api["county"]
    code = _busiest(units, small=False, where=mine)
    body = get(api, "county", f"/api/units/{code}/file").json()
    text = _page(api, "county", code)
    unit = body["unit"]
    assert _e(unit["name"]) in text and code in text
    assert unit["industry_name"] in text and unit["level_zh"] in text
    assert f'class="level level-{unit["level"]}"' in text
    assert _e(unit["level_reason"]) in text and unit["build_status"] in text
    assert f'<img src="/api/units/{code}/qr.svg"' in text
    assert body["code"]["url"] in text
    # every piece, with its L/E/C/D reasons and inspection date
    rows = text.split('id="equipment"')[1].split("</section>")[0]
    assert rows.count("<tr>") == len(body["equipment"]) + 1
    for piece in body["equipment"]:
        assert piece["registration_code"] in rows
        if piece["C_reason"]:
            assert _e(piece["C_reason"]) in rows
        if piece["next_inspection_due"]:
            assert piece["next_inspection_due"] in rows
    overdue = sum(bool(p["overdue"]) for p in body["equipment"])
    assert rows.count('<b class="error">是</b>') == overdue
    # hazards with their history as a timeline
    hazards = text.split('id="hazards"')[1].split("</section>")[0]
    for hazard in body["hazards"]:
        assert hazard["hazard_id"] in hazards
    assert hazards.count('<ol class="timeline">') == len(body["hazards"])
    assert "登记隐患" in hazards or not body["hazards"]
    # the measures (一企一策) and the check schedule
    assert "一企一策措施" in text and '<ol class="measures">' in text
    for item in body["measures"]["items"]:
        assert _e(item["text"]) in text
    if body["schedule"]:
        assert f"监督检查周期 {body['schedule']['interval_months']} 个月" in text
    assert '<a href="/regions/' + api["county"] + '" aria-current' not in text


def test_a_small_unit_shows_its_checklist(api, units):
    code = _busiest(units, small=True)
    body = get(api, "admin", f"/api/units/{code}/file").json()
    assert body["measures"]["mode"] == "small_micro"
    text = _page(api, "admin", code)
    assert "小微企业简易清单" in text and '<ol class="checklist">' in text
    for item in body["measures"]["items"]:
        assert _e(item["text"]) in text


def test_out_of_scope_is_the_same_404_page_as_unknown(api, units):
    other = units[(units["county_adcode"] != api["county"])
                  & units["county_adcode"].str.startswith("41")]["credit_code"].iloc[0]
    hidden = _page(api, "county", other, 404)
    assert "不在您的管辖范围内" in hidden and other in hidden
    assert "辖区概况" in hidden  # the county regulator's navigation
    outside = units[~units["h3"].isin(api["officer_cells"])]["credit_code"].iloc[0]
    assert "不在您的管辖范围内" in _page(api, "officer", outside, 404)
    assert "统一社会信用代码" in _page(api, "admin", "abc", 400)


# ------------------------------------------------------------- a unit named with markup

def _rename(path, code_col: int, name_col: int, code: str | None) -> str:
    """Name the unit ``code`` (default: the first row's) ``宛城`` + markup in a demo CSV."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    code = code or rows[1][code_col]
    for row in rows[1:]:
        if row[code_col] == code:
            row[name_col] = "宛城" + EVIL
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return code


def _fill_planted(store, out) -> dict:
    """A small demo whose busiest unit is named with markup, ingested and built."""
    generate(province="河南省", equipment=400, seed=11, out=out, as_of=date(2026, 11, 1))
    code = _rename(out / FILES["equipment"], 3, 4, None)
    _rename(out / FILES["units"], 0, 1, code)
    ingest(sorted(str(p) for p in out.iterdir() if p.name != "MANIFEST.json"), store,
           IngestOptions(provinces=["410000"]))
    run_build(store, ["410000"], as_of=date(2026, 11, 1))
    _user, token = create_user(store, name="管理员", role=Role.ADMIN, scope=None,
                               pepper=Settings().token_pepper.get_secret_value(),
                               provinces=["410000"])
    return {"token": token, "code": code}


def test_a_unit_name_with_markup_is_shown_escaped(filled_store):
    planted = filled_store(_fill_planted)
    code, token = planted.facts["code"], planted.facts["token"]
    with TestClient(create_app(Settings(store=planted.url))) as client:
        r = client.get(f"/units/{code}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text[:300]
    text = r.text
    shown = str(escape("宛城" + EVIL))  # as Jinja2 escapes it (" as &#34;)
    assert text.count(shown) >= 2, text  # the title and the heading
    assert shown in text.split("<title>")[1].split("</title>")[0]
    assert EVIL not in text and "<img src=x" not in text
    assert not re.search(r"<script\b", text)
