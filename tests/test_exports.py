"""Exports for government GIS, both stores: scoped, streamed, in three datums, with metadata."""

from __future__ import annotations

import io
import json

import pandas as pd
import pyogrio
import pytest
from typer.testing import CliRunner

from service.cli import app
from tests.servers import get

pytestmark = [pytest.mark.slow, pytest.mark.reads_demo]


def test_a_planner_exports_their_county_as_geojson_with_metadata(api):
    r = get(api, "planner", "/api/export/equipment")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    assert "attachment" in r.headers["content-disposition"]
    assert "describedby" in r.headers["link"]
    body = r.json()
    assert body["features"] and all(
        f["properties"]["county_adcode"] == api["county"] for f in body["features"])
    meta = body["metadata"]
    assert meta["rows"] == len(body["features"]) and meta["build"]["rules_hash"]
    assert meta["datum"].startswith("WGS84") and meta["filters"]
    admin = get(api, "admin", "/api/layers/equipment", adcode=api["county"], limit=10_000)
    assert len(body["features"]) == admin.json()["numberMatched"]


def test_geopackage_export_in_cgcs2000_has_every_row_and_the_metadata_table(api, tmp_path):
    r = get(api, "planner", "/api/export/equipment", format="gpkg", crs="EPSG:4490")
    assert r.status_code == 200
    path = tmp_path / "x.gpkg"
    path.write_bytes(r.content)
    frame = pyogrio.read_dataframe(path, layer="equipment")
    assert frame.crs.to_epsg() == 4490
    meta = pyogrio.read_dataframe(path, layer="riskmap_metadata", read_geometry=False)
    values = dict(zip(meta["key"], meta["value"], strict=True))
    assert json.loads(values["rows"]) == len(frame) > 0
    assert "CGCS2000" in json.loads(values["datum"])


def test_csv_export_opens_in_excel_and_gcj02_is_shifted(api):
    csv = get(api, "planner", "/api/export/equipment", format="csv")
    assert csv.content.startswith("\ufeff".encode())
    table = pd.read_csv(io.BytesIO(csv.content), encoding="utf-8-sig")
    assert {"fid", "lon", "lat", "level", "L_reason"} <= set(table.columns)
    gcj = pd.read_csv(io.BytesIO(get(api, "planner", "/api/export/equipment", format="csv",
                                     crs="GCJ02").content), encoding="utf-8-sig")
    shift = (gcj["lon"] - table["lon"]).abs()
    assert ((shift > 0.002) & (shift < 0.01)).all()  # hundreds of metres, as AMap expects


def test_region_layers_export_as_polygons_and_scope_holds(api):
    r = get(api, "city", "/api/export/regions", format="csv")
    table = pd.read_csv(io.BytesIO(r.content), encoding="utf-8-sig", dtype={"city_adcode": str})
    assert "wkt" in table.columns and (table["city_adcode"] == api["city"]).all()


def test_who_may_export(api):
    assert get(api, None, "/api/export/equipment").status_code == 401
    assert get(api, "officer", "/api/export/equipment").status_code == 403
    assert get(api, "park", "/api/export/equipment").status_code == 403
    assert get(api, "planner", "/api/export/demonstration").status_code == 403  # county scope
    assert get(api, "admin", "/api/export/nope").status_code == 404
    assert get(api, "admin", "/api/export/equipment", format="shp").status_code == 422
    assert get(api, "admin", "/api/export/equipment", crs="EPSG:3857").status_code == 422
    meta = get(api, "planner", "/api/export/equipment/metadata").json()
    assert meta["layer"] == "equipment" and meta["rows"] is None


def test_cli_export_writes_the_file_and_its_sidecar(api, tmp_path):
    out = tmp_path / "regions.gpkg"
    result = CliRunner().invoke(app, ["export", "regions", "-o", str(out), "--format", "gpkg",
                                      "--crs", "EPSG:4490", "--adcode", "41",
                                      "--store", api["url"]])
    assert result.exit_code == 0, result.output
    sidecar = json.loads(out.with_name("regions.gpkg.meta.json").read_text(encoding="utf-8"))
    assert sidecar["rows"] == len(pyogrio.read_dataframe(out, layer="regions")) > 100
    bad = CliRunner().invoke(app, ["export", "nope", "-o", str(out), "--store", api["url"]])
    assert bad.exit_code != 0 and "没有图层" in bad.output
