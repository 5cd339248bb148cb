"""Exports for government GIS, both stores: scoped, streamed, in three datums, with metadata."""

from __future__ import annotations

import io
import json
import re
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import pytest
from typer.testing import CliRunner

from data.catalogue import TOP_CATEGORIES
from layers.aggregate import INDUSTRY_NAMES
from layers.frames import LEVEL_ZH
from layers.registry import ALL
from service.cli import app
from service.export import (
    GPKG_ID,
    export_filename,
    export_scope,
    export_spec,
    export_to_file,
    field_descriptions,
)
from service.store import open_store
from service.store.query import Condition
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


# exports a planner can read (issue 12 §5) ------------------------------------------------------

def _gpkg(api, tmp_path, who="planner", **params) -> Path:
    r = get(api, who, "/api/export/equipment", format="gpkg", **params)
    assert r.status_code == 200, r.text
    path = tmp_path / "x.gpkg"
    path.write_bytes(r.content)
    return path


def _arrow_fields(path: Path, layer: str) -> dict[str, dict[str, str]]:
    """Each field's GDAL metadata as the Arrow stream carries it (alternative name, comment)."""
    with pyogrio.raw.open_arrow(path, layer=layer) as (_meta, stream):
        schema = pa.RecordBatchReader.from_stream(stream).schema
    return {f.name: {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}
            for f in schema}


def test_geopackage_fields_carry_chinese_aliases_gdal_reads(api, tmp_path):
    path = _gpkg(api, tmp_path, crs="EPSG:4490")
    fields = _arrow_fields(path, "equipment")
    titles = {**export_spec(ALL["equipment"]).field_labels, GPKG_ID: "要素编号"}
    for name, title in titles.items():  # GDAL's alternative name: QGIS shows it as alias
        assert fields[name]["GDAL:OGR:alternative_name"] == title, name
    assert "LEC 风险值" in fields["D"]["GDAL:OGR:comment"]
    assert fields["level"]["GDAL:OGR:domain_name"] == "riskmap_level"  # a coded field domain
    comment = fields["open_hazards"]["GDAL:OGR:comment"]
    assert comment == "未销号隐患数（已登记、整改中）（单位：项）"
    with closing(sqlite3.connect(path)) as db:
        extensions = {r[0] for r in db.execute(
            "SELECT table_name FROM gpkg_extensions WHERE extension_name = 'gpkg_schema'")}
        levels = dict(db.execute(
            "SELECT c.value, c.description FROM gpkg_data_column_constraints c JOIN "
            "gpkg_data_columns d ON d.constraint_name = c.constraint_name "
            "WHERE d.table_name = 'equipment' AND d.column_name = 'level' "
            "AND c.constraint_type = 'enum'"))
    assert extensions == {"gpkg_data_columns", "gpkg_data_column_constraints"}
    assert levels == LEVEL_ZH


def test_coded_values_come_with_their_chinese_names(api, tmp_path):
    frame = pyogrio.read_dataframe(_gpkg(api, tmp_path), layer="equipment")
    columns = list(frame.columns)
    assert columns.index("level_name") == columns.index("level") + 1  # right beside it
    graded = frame["level"].notna()
    assert graded.any()
    assert (frame.loc[graded, "level_name"] == frame.loc[graded, "level"].map(LEVEL_ZH)).all()
    assert frame.loc[~graded, "level_name"].isna().all()
    assert (frame["top_category_name"] == frame["top_category"].map(TOP_CATEGORIES)).all()
    assert frame.loc[frame["category_code"] == "3110", "category_code_name"].eq(
        "曳引驱动乘客电梯").all()
    units = pd.read_csv(io.BytesIO(get(api, "planner", "/api/export/units", format="csv").content),
                        encoding="utf-8-sig", dtype=str)
    known = units["industry"].isin(list(INDUSTRY_NAMES))
    assert known.any() and (units.loc[known, "industry_name"]
                            == units.loc[known, "industry"].map(INDUSTRY_NAMES)).all()
    regions = get(api, "admin", "/api/export/regions", adcode=api["city"]).json()["features"]
    assert {(f["properties"]["admin_level"], f["properties"]["admin_level_name"])
            for f in regions} == {("city", "市"), ("county", "区县")}
    hazards = get(api, "admin", "/api/export/hazards").json()["features"]
    assert hazards and "level_name" not in hazards[0]["properties"]  # 重大/一般 is no code
    assert {f["properties"]["equipment_level_name"] for f in hazards} <= {*LEVEL_ZH.values(), None}


def test_the_metadata_describes_every_column_of_every_layer(api):
    for layer, spec in ALL.items():
        for fmt in ("geojson", "gpkg", "csv"):
            fields = field_descriptions(spec, "EPSG:4490", fmt)
            assert all(f["title"] and f["meaning"] and "unit" in f for f in fields), layer
            titles = [f["title"] for f in fields]
            assert len(set(titles)) == len(titles), layer  # GeoPackage aliases are unique
            numeric = [f for f in fields if f["type"] in ("int", "float")]
            assert all(f["unit"] is None or f["unit"].strip() for f in numeric), layer
    meta = get(api, "admin", "/api/export/regions/metadata", format="csv").json()
    by_name = {f["name"]: f for f in meta["fields"]}
    assert by_name["units_red"] == {
        "name": "units_red", "type": "int", "title": "重大风险单位", "unit": "家",
        "meaning": "重大风险（红色）使用单位数"}
    assert by_name["overdue_rate"]["unit"] == "比例（0–1）"
    assert by_name["max_level"]["codes"] == LEVEL_ZH and by_name["wkt"]["title"]
    table = pd.read_csv(io.BytesIO(get(api, "admin", "/api/export/regions", format="csv",
                                       adcode=api["county"]).content), encoding="utf-8-sig")
    assert list(table.columns) == [f["name"] for f in meta["fields"]]


def test_the_sidecar_lists_title_unit_and_meaning(api, tmp_path):
    with open_store(api["url"]) as store:
        meta = export_to_file(store, "units", "csv", "EPSG:4490", tmp_path / "u.csv",
                              (Condition("county_adcode", "eq", (api["county"],)),))
    sidecar = json.loads((tmp_path / "u.csv.meta.json").read_text(encoding="utf-8"))
    assert sidecar["fields"] == meta["fields"]
    fields = {f["name"]: f for f in sidecar["fields"]}
    assert fields["equipment"]["meaning"] == "该单位登记的设备台数（全部状态）"  # the layer's
    assert fields["in_use"]["unit"] == "台" and fields["name"]["unit"] is None
    assert fields["lon"]["meaning"] == "CGCS2000 经度"
    header = (tmp_path / "u.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert header.split(",") == list(fields)


def test_geojson_in_cgcs2000_reads_as_epsg_4490(api, tmp_path):
    path = tmp_path / "cgcs.geojson"
    r = get(api, "planner", "/api/export/equipment", crs="EPSG:4490")
    path.write_bytes(r.content)
    assert r.json()["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::4490"
    assert pyogrio.read_info(path)["crs"] == "EPSG:4490"
    cgcs = pyogrio.read_dataframe(path)
    wgs_path = tmp_path / "wgs.geojson"
    wgs_path.write_bytes(get(api, "planner", "/api/export/equipment").content)
    wgs = pyogrio.read_dataframe(wgs_path)
    assert wgs.crs.to_epsg() == 4326 and cgcs.crs.to_epsg() == 4490
    assert len(cgcs) == len(wgs) > 0
    placed = ~wgs.geometry.is_empty & wgs.geometry.notna()
    assert np.allclose(cgcs.geometry.x[placed], wgs.geometry.x[placed], rtol=0, atol=1e-9)
    assert np.allclose(cgcs.geometry.y[placed], wgs.geometry.y[placed], rtol=0, atol=1e-9)
    assert wgs.geometry.x[placed].min() > 110 and wgs.geometry.y[placed].max() < 37  # lon, lat


def test_gcj02_exports_say_so_where_a_reader_cannot_miss_it(api, tmp_path):
    r = get(api, "planner", "/api/export/equipment", crs="GCJ02")
    assert "GCJ02" in r.headers["content-disposition"]
    body = r.json()
    assert "GCJ-02" in body["name"] and "非 WGS84" in body["name"]
    assert body["metadata"]["crs_warning"] and "GCJ-02" in body["metadata"]["datum"]
    path = tmp_path / "gcj.geojson"
    path.write_bytes(r.content)
    info = pyogrio.read_info(path)
    assert "GCJ-02" in info["crs"] and "GCJ-02" in info["layer_name"]  # not EPSG:4326
    assert pyogrio.read_dataframe(path).crs.to_epsg() is None
    gpkg = _gpkg(api, tmp_path, crs="GCJ02")
    crs = pyogrio.read_dataframe(gpkg, layer="equipment").crs
    assert crs.to_epsg() is None and "GCJ-02" in crs.name
    with closing(sqlite3.connect(gpkg)) as db:
        organization, code, description = db.execute(
            "SELECT s.organization, s.organization_coordsys_id, s.description FROM "
            "gpkg_spatial_ref_sys s JOIN gpkg_geometry_columns g ON g.srs_id = s.srs_id "
            "WHERE g.table_name = 'equipment'").fetchone()
    assert (organization, code) == ("riskmap", 990002) and "勿与其他图层直接叠加" in description


def test_csv_flags_read_yes_or_no_and_geopackage_keeps_booleans(api, tmp_path):
    table = pd.read_csv(io.BytesIO(get(api, "planner", "/api/export/equipment",
                                       format="csv").content), encoding="utf-8-sig", dtype=str)
    for flag in ("in_use", "insured", "overdue"):
        assert set(table[flag].dropna()) <= {"是", "否"} and table[flag].notna().any(), flag
    assert set(table["in_use"].dropna()) == {"是", "否"}  # the demo has pieces out of use
    frame = pyogrio.read_dataframe(_gpkg(api, tmp_path), layer="equipment")
    assert frame["in_use"].dtype == bool
    feature = get(api, "planner", "/api/export/equipment").json()["features"][0]
    assert isinstance(feature["properties"]["in_use"], bool)


def test_file_names_say_layer_scope_and_crs(api):
    def name(who, layer="equipment", **params) -> str:
        r = get(api, who, f"/api/export/{layer}", **params)
        assert r.status_code == 200, r.text
        return re.search(r'filename="([^"]+)"', r.headers["content-disposition"])[1]

    county, city = api["county"], api["city"]
    assert name("planner") == f"equipment-{county}-EPSG4326.geojson"
    assert name("city", "regions", format="csv", crs="EPSG:4490") == \
        f"regions-{city}-EPSG4490.csv"
    assert name("city", adcode=county, crs="GCJ02") == f"equipment-{county}-GCJ02.geojson"
    assert name("admin", "regions", adcode=city[:4], format="csv") == \
        f"regions-{city}-EPSG4326.csv"
    assert name("admin", "overdue", format="csv") == "overdue-all-EPSG4326.csv"


def test_export_names_and_scopes():
    assert export_filename("regions", "410100", "EPSG:4490", "gpkg") == \
        "regions-410100-EPSG4490.gpkg"
    assert export_filename("equipment", None, "GCJ02", "csv") == "equipment-all-GCJ02.csv"
    assert export_filename("risk-cells", "41", "EPSG:4326", "geojson") == \
        "risk-cells-410000-EPSG4326.geojson"
    assert export_filename("equipment", '../"a b";\r\n', "EPSG:4326", "csv") == \
        "equipment-a_b-EPSG4326.csv"
    assert export_scope("410100", "410105") == "410105"   # a county inside the city
    assert export_scope("410105", "4101") == "410105"     # the scope is narrower
    assert export_scope("410100", "420100") == "410100"   # outside: the scope holds
    assert export_scope(None, "4101") == "410100" and export_scope(None) is None
    assert export_scope(None, None, "P0001") == "P0001"


def test_an_empty_selection_still_exports_typed_columns(api, tmp_path):
    r = get(api, "admin", "/api/export/units", format="gpkg", park="NO-SUCH-PARK")
    path = tmp_path / "empty.gpkg"
    path.write_bytes(r.content)
    info = pyogrio.read_info(path, layer="units")
    assert info["features"] == 0 and "level_name" in list(info["fields"])
    types = dict(zip(info["fields"], info["dtypes"], strict=True))
    assert types["blacklisted"] == "bool" and types["D_max"] == "float64"
    csv = get(api, "admin", "/api/export/units", format="csv", park="NO-SUCH-PARK")
    header = csv.content.decode("utf-8-sig").strip().split(",")
    assert header == [f["name"] for f in get(api, "admin", "/api/export/units/metadata",
                                             format="csv").json()["fields"]]
