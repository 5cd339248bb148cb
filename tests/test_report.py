"""The yearly report (整体情况、主要措施、存在的问题、下一步工作安排) over HTTP and from the CLI,
on both stores: its figures are the layers', the change on last year comes from the kept
history of two builds (as of 2025-11-01 and 2026-11-01), the PDF is a PDF, every value is
escaped, and the scope holds."""

from __future__ import annotations

import contextlib
import html as html_lib
import re
import sys
import zlib
from datetime import date
from urllib.parse import quote

import pytest
from typer.testing import CliRunner

from tests.conftest import DEMO_PROVINCES
from tests.servers import get

pytestmark = pytest.mark.slow

SECTIONS = ("整体情况", "主要措施", "存在的问题", "下一步工作安排")
INDICATORS = ("equipment", "n_red", "n_orange", "units", "overdue", "overdue_rate",
              "open_hazards", "open_major_hazards")


def _open(api: dict):
    from service.store import open_store

    return open_store(api["url"])


def _row(store, adcode: str, level: str) -> dict:
    regions = store.read_layer("regions")
    hit = regions[(regions["adcode"] == adcode) & (regions["admin_level"] == level)]
    assert len(hit) == 1
    return hit.iloc[0].to_dict()


@pytest.fixture(scope="module")
def years(api: dict) -> dict:
    """Two more builds: as of 2025-11-01, then 2026-11-01 (the one in force); the regions
    rows of the county, its city and the province at each."""
    from service.build import run_build

    store = _open(api)
    out: dict = {}
    try:
        for day in (date(2025, 11, 1), date(2026, 11, 1)):
            run_build(store, DEMO_PROVINCES, as_of=day)
            out[day.year] = {code: _row(store, code, level) for code, level in (
                (api["county"], "county"), (api["city"], "city"), ("410000", "province"))}
    finally:
        store.close()
    return out


def _values(page: str) -> dict[str, tuple[str, str]]:
    """data-key → (data-value, data-previous) of the overview table."""
    return {k: (v, p) for k, v, p in re.findall(
        r'data-key="([a-z_0-9]+)" data-value="([^"]*)" data-previous="([^"]*)"', page)}


def _pages(pdf: bytes) -> int:
    """Page objects of a PDF, in its plain text and in its compressed object streams."""
    text = pdf
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        with contextlib.suppress(zlib.error):
            text += zlib.decompress(stream)
    return len(re.findall(rb"/Type\s*/Page\b", text))


@pytest.mark.parametrize("who, code", [("county", "county"), ("province", "province")])
def test_the_report_has_its_sections_and_the_layers_figures(api, years, who, code):
    adcode = api["county"] if code == "county" else "410000"
    r = get(api, who, f"/api/regions/{adcode}/report", year="2026", format="html")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    page = r.text
    for i, section in enumerate(SECTIONS):
        assert f"{'一二三四'[i]}、{section}" in page
    for anchor in ("overall", "measures", "problems", "next-steps"):
        assert f'<section id="{anchor}">' in page
    assert page.count("<svg") >= 2  # charts inline
    values = _values(page)
    now, before = years[2026][adcode], years[2025][adcode]
    for key in INDICATORS:
        value, previous = values[key]
        assert float(value) == pytest.approx(float(now[key])), key
        assert float(previous) == pytest.approx(float(before[key])), key
    # the change on last year, as the table says it
    change = float(now["overdue"]) - float(before["overdue"])
    row = re.search(r'data-key="overdue".*?</tr>', page, re.S).group(0)
    expected = "持平" if change == 0 else f"{'+' if change > 0 else '−'}{abs(change):,.0f}"
    assert expected in row
    if code == "province":
        assert "分地市" in page
        assert "陕西省《全省特种设备安全专项整治三年行动实施方案》四（一）" in page
    # the next steps cite the plans, by title and clause
    steps = page[page.index('<section id="next-steps">'):]
    assert "依据：" in steps and re.search(r"[一二三四]（[一二三四五六]）", steps)


def test_no_previous_year_says_so(api, years):
    r = get(api, "admin", f"/api/regions/{api['city']}/report", year="2025")
    assert r.status_code == 200, r.text
    values = _values(r.text)
    assert float(values["equipment"][0]) == pytest.approx(float(
        years[2025][api["city"]]["equipment"]))
    assert values["equipment"][1] == ""
    assert "无上年数据" in r.text
    # a year without any build
    r = get(api, "admin", f"/api/regions/{api['city']}/report", year="2019")
    assert r.status_code == 404 and "2019" in r.json()["detail"]


def test_the_measures_count_the_years_checks_and_hazards(api, years):
    store = _open(api)
    try:
        units = store.read_layer("units", ["credit_code", "county_adcode"])
        ours = set(units.loc[units["county_adcode"] == api["county"], "credit_code"])
        checks = store.read("checks")
        expected = int((checks["credit_code"].isin(ours)
                        & (checks["checked_on"].dt.year == 2026)).sum())
    finally:
        store.close()
    page = get(api, "county", f"/api/regions/{api['county']}/report", year="2026").text
    assert re.search(rf'data-key="checks" data-value="{expected}"', page)


def test_the_pdf_is_a_pdf(api, years):
    r = get(api, "city", f"/api/regions/{api['city']}/report", year="2026", format="pdf")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF")
    assert _pages(r.content) >= 2
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert f"filename*=UTF-8''{quote('报告_', safe='')}" in disposition
    assert f'filename="report_{api["city"]}_2026.pdf"' in disposition


def test_pdf_without_its_libraries_is_503_and_html_still_works(api, years, monkeypatch):
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import fails as without pango
    r = get(api, "admin", f"/api/regions/{api['city']}/report", format="pdf")
    assert r.status_code == 503
    assert "libpango-1.0-0" in r.json()["detail"]
    assert get(api, "admin", f"/api/regions/{api['city']}/report").status_code == 200


def test_the_scope_holds(api, years):
    store = _open(api)
    try:
        regions = store.read_layer("regions", ["adcode", "admin_level"])
    finally:
        store.close()
    counties = regions.loc[regions["admin_level"] == "county", "adcode"]
    other = next(c for c in counties if c != api["county"])
    summary = get(api, "county", f"/api/regions/{other}/summary")
    report = get(api, "county", f"/api/regions/{other}/report")
    assert summary.status_code == report.status_code == 404
    assert get(api, "county", "/api/regions/410000/report").status_code == 404
    assert get(api, "county", f"/api/regions/{api['county']}/report").status_code == 200
    assert get(api, "province", f"/api/regions/{other}/report").status_code == 200
    officer = get(api, "officer", f"/api/regions/{api['county']}/report")
    assert officer.status_code == get(api, "officer",
                                      f"/api/regions/{api['county']}/summary").status_code
    assert get(api, None, f"/api/regions/{api['county']}/report").status_code == 401


@pytest.mark.parametrize("params", [{"year": "1999"}, {"year": "2101"}, {"year": "abc"},
                                    {"format": "docx"}, {"format": "PDF "}])
def test_bad_year_or_format_is_400(api, params):
    r = get(api, "admin", f"/api/regions/{api['city']}/report", **params)
    assert r.status_code == 400, r.text
    assert " / " in r.json()["detail"]


def test_unknown_region_is_400(api):
    assert get(api, "admin", "/api/regions/4199/report").status_code == 400


def test_every_value_is_escaped(api, years):
    """A unit name, a warning message and a region name carrying markup show as text."""
    from layers.rules import Rules
    from service.auth import Principal, Role
    from service.report.data import figures
    from service.report.render import render_html

    store = _open(api)
    try:
        from geo.regions import resolve_region

        admin = Principal("t", "t", Role.ADMIN, None)
        facts = figures(store, admin, resolve_region(api["city"]), 2026, Rules())
    finally:
        store.close()
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    facts["name"] = "郑州" + payload
    facts["top_units"] = [{"credit_code": "91410100MA0000000X", "name": "甲公司" + payload,
                           "open_hazards": 1, "open_major_hazards": 0, "overdue": 0}]
    facts["warnings"] = [{"adcode": api["city"], "name": "某市", "admin_level": "city",
                          "grade_zh": "预警", "message": payload}]
    page = render_html(facts)
    assert "<script" not in page and "<img" not in page
    assert html_lib.escape("甲公司" + payload, quote=False) in page.replace("&#34;", '"')
    # and the served page has no markup from data either
    served = get(api, "admin", f"/api/regions/{api['city']}/report").text
    assert "<script" not in served


def test_the_cli_writes_the_report(api, years, tmp_path, monkeypatch):
    from service.cli import app

    runner = CliRunner()
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", "--adcode", api["county"], "--year", "2026",
                                 "-o", str(out), "--store", api["url"]])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert all(s in page for s in SECTIONS)
    pdf = tmp_path / "r.pdf"
    result = runner.invoke(app, ["report", "--adcode", api["city"][:4], "--format", "pdf",
                                 "-o", str(pdf), "--store", api["url"]])
    assert result.exit_code == 0, result.output
    assert pdf.read_bytes().startswith(b"%PDF")
    for bad in (["--adcode", "4199"], ["--adcode", api["city"], "--year", "2019"]):
        result = runner.invoke(app, ["report", *bad, "--store", api["url"]])
        assert result.exit_code == 2, result.output
    # the default file name: 报告_<name>_<year>.html in the current folder
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    result = runner.invoke(app, ["report", "--adcode", api["county"], "--store", api["url"]])
    assert result.exit_code == 0, result.output
    written = [p.name for p in here.iterdir()]
    assert len(written) == 1 and re.fullmatch(r"报告_.+_2026\.html", written[0])
