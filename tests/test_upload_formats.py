"""Registry files are opened only as the format their suffix claims (a security fix).

A file that GDAL would sniff as something else (a VRT naming server files or URLs, a
GeoPackage called .geojson) is refused file-level with a reason, nothing of it is read or
written, and GDAL can reach neither the network nor other files. Spreadsheet zip bombs are
refused before calamine parses them. Checked through ``read_file``, the CLI's ``ingest`` and
``POST /api/ingest``, on both stores."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import sqlite3
import struct
import threading
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import Role, create_user
from service.ingest import pipeline
from service.ingest import read as reader
from service.ingest.pipeline import IngestOptions, ingest
from service.ingest.read import FileRejected, read_file
from service.settings import Settings
from service.store.tables import TABLES
from tests import ingest_files as f

SECRET = "RISKMAP-SECRET-5d1f0c"   # a line of a file on the server, never to be reported
SERVER_FILE = "server-only"         # its name, never to be reported either
SMALL_LIMIT = 1 << 20               # the spreadsheet expansion limit the tests pass
PEPPER = Settings().token_pepper.get_secret_value()


# files ---------------------------------------------------------------------------------------

@pytest.fixture()
def server_csv(tmp_path: Path) -> Path:
    """A file on the server that looks like an equipment registry, the secret as its credit
    code: read, it would come back as a bad_credit_code reject showing the secret."""
    folder = tmp_path / "server"
    folder.mkdir()
    path = folder / f"{SERVER_FILE}.csv"
    path.write_text("设备注册代码,设备类别代码,统一社会信用代码,经度,纬度\n"
                    f"31104101052015000001,3110,{SECRET},113.686,34.786\n", encoding="utf-8")
    return path


def vrt(source: str) -> str:
    """An OGR VRT reading ``source`` as points from its 经度/纬度 columns."""
    return ("<OGRVRTDataSource><OGRVRTLayer name=\"layer\">"
            f"<SrcDataSource>{source}</SrcDataSource><SrcLayer>{SERVER_FILE}</SrcLayer>"
            "<GeometryType>wkbPoint</GeometryType>"
            "<GeometryField encoding=\"PointFromColumns\" x=\"经度\" y=\"纬度\"/>"
            "</OGRVRTLayer></OGRVRTDataSource>\n")


class Recorder(http.server.ThreadingHTTPServer):
    """A local HTTP server that records every request it gets (and answers 404)."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.requests.append(f"{self.command} {self.path}")
                self.send_response(404)
                self.end_headers()

            do_HEAD = do_POST = do_GET

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{path}"


@pytest.fixture()
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def parks_geojson(extra: dict | None = None, geometry: dict | None = None) -> dict:
    """One park, a square around Zhengzhou Jinshui; ``extra`` members on the collection."""
    square = shapely.geometry.mapping(f.square(*f.ZHENGZHOU_JINSHUI, 0.01))
    return {"type": "FeatureCollection", **(extra or {}), "features": [
        {"type": "Feature", "properties": {"园区编号": "YQ001", "园区名称": "金水科技园"},
         "geometry": geometry if geometry is not None else square}]}


def write_json(path: Path, doc: dict | str) -> Path:
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False),
                    encoding="utf-8")
    return path


def write_attribute_gpkg(path: Path) -> Path:
    """A GeoPackage whose only layer is an attribute table (no geometry column)."""
    pyogrio.write_dataframe(pd.DataFrame({"场所编号": ["CS001"], "场所名称": ["金水商场"]}),
                            path, driver="GPKG")
    return path


def write_null_geometry_geojson(path: Path) -> Path:
    doc = parks_geojson()
    doc["features"][0]["geometry"] = None
    doc["features"].append({"type": "Feature", "geometry": None,
                            "properties": {"园区编号": "YQ002", "园区名称": "无图形"}})
    return write_json(path, doc)


def write_bomb(path: Path, size: int = 50 << 20) -> Path:
    """An .xlsx whose sheet is ``size`` bytes of zeros: about 50 KB on disk."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/worksheets/sheet1.xml", b"\0" * size)
    return path


def write_lying_bomb(path: Path) -> Path:
    """The bomb with its sheet declared (size and CRC) as its first 100 bytes: zipfile and
    the central directory then say it unpacks to 100 bytes."""
    write_bomb(path)
    data = bytearray(path.read_bytes())
    crc = zlib.crc32(b"\0" * 100)
    for header, crc_at, size_at in ((b"PK\x03\x04", 14, 22), (b"PK\x01\x02", 16, 24)):
        at = data.rfind(header)  # the sheet's entries are the last of each kind
        struct.pack_into("<I", data, at + crc_at, crc)
        struct.pack_into("<I", data, at + size_at, 100)
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("xl/worksheets/sheet1.xml").file_size == 100
        assert len(zf.read("xl/worksheets/sheet1.xml")) == 100  # zipfile believes it
    return path


def write_equipment_xlsx(path: Path) -> Path:
    pd.DataFrame(f.equipment_rows()[:2], columns=f.EQUIPMENT_HEADERS).to_excel(path, index=False)
    return path


def refused(call, *args, **kwargs) -> FileRejected:
    with pytest.raises(FileRejected) as info:
        call(*args, **kwargs)
    return info.value


def refusal_code(path: Path) -> str | None:
    """The code ``read_file`` refuses the file with, None if it reads it."""
    try:
        read_file(path)
    except FileRejected as exc:
        return exc.code
    return None


def data_rows(store) -> dict[str, int]:
    return {table: len(store.read(table)) for table in TABLES}


# a VRT, whatever it is called, is never opened -----------------------------------------------

@pytest.mark.parametrize("suffix", [".geojson", ".json", ".gpkg"])
def test_a_vrt_naming_a_server_file_is_refused_and_nothing_of_it_reported(store, tmp_path,
                                                                          server_csv, suffix):
    upload = tmp_path / "upload"
    upload.mkdir()
    path = upload / f"x{suffix}"
    path.write_text(vrt(f"CSV:{server_csv}"), encoding="utf-8")
    before = data_rows(store)
    report = ingest([str(path)], store, IngestOptions())
    text = json.dumps(report, ensure_ascii=False, default=str)
    assert SECRET not in text and SERVER_FILE not in text
    [reject] = report["rejects"]
    assert (reject["row"], reject["field"], reject["code"]) == (0, "(file)", "content_mismatch")
    expected = "GeoPackage" if suffix == ".gpkg" else "GeoJSON"
    assert reject["reason"] == (f"文件内容与扩展名不符（应为 {expected}） / "
                                f"file content does not match its extension (expected {expected})")
    assert report["files"][0]["error"] and report["files_rejected"] == 1
    assert data_rows(store) == before
    assert SECRET not in json.dumps(store.read("rejects").astype(str).to_dict("records"),
                                    ensure_ascii=False)


def test_a_vrt_naming_a_url_makes_no_request(tmp_path, recorder):
    path = write_json(tmp_path / "x.geojson", vrt(f"/vsicurl/{recorder.url('x.csv')}"))
    code = refusal_code(path)
    assert recorder.requests == []
    assert code == "content_mismatch"


def test_gdal_reaches_no_network_in_this_process(tmp_path, recorder):
    """The GDAL options set at import: even a VRT opened on purpose (which the reader never
    does) fetches nothing, whichever network file system and extension it names."""
    allowed = pyogrio.get_gdal_config_option("CPL_VSIL_CURL_ALLOWED_EXTENSIONS") or ".csv"
    for n, source in enumerate((f"/vsicurl/{recorder.url('x.csv')}",
                                f"/vsicurl/{recorder.url('x' + allowed)}",
                                f"/vsicurl_streaming/{recorder.url('x.csv')}",
                                f"/vsizip//vsicurl/{recorder.url('x.zip')}/x.csv",
                                f"/vsiwebhdfs/{recorder.url('webhdfs/v1/x.csv')}")):
        path = write_json(tmp_path / f"remote{n}.vrt", vrt(source))
        with pytest.raises(Exception):  # noqa: B017 - GDAL's error types vary
            pyogrio.read_dataframe(path)
    assert recorder.requests == []
    assert pyogrio.get_gdal_config_option("OGR_SQLITE_ALLOW_EXTERNAL_ACCESS") in ("NO", False)
    assert pyogrio.get_gdal_config_option("GDAL_DISABLE_READDIR_ON_OPEN") == "EMPTY_DIR"


# GeoJSON's crs by URL ------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["collection", "geometry", "upper case", "nul", "escaped"])
def test_a_geojson_crs_by_url_is_never_fetched(tmp_path, recorder, variant):
    link = {"type": "link", "properties": {"href": recorder.url("crs"), "type": "ogcwkt"}}
    square = shapely.geometry.mapping(f.square(*f.ZHENGZHOU_JINSHUI, 0.01))
    if variant == "geometry":
        doc = json.dumps(parks_geojson(geometry={**square, "crs": link}))
    elif variant == "upper case":
        doc = json.dumps(parks_geojson({"CRS": {"TYPE": "LINK", "Properties": {
            "HREF": recorder.url("crs")}}}))
    elif variant == "nul":  # GDAL compares member names up to the NUL
        doc = json.dumps(parks_geojson({"crs\0x": {"type": "url\0", "properties": {
            "url\0": recorder.url("crs")}}}))
    elif variant == "escaped":  # \u0063 is "c"
        doc = json.dumps(parks_geojson({"crs": link})).replace('"crs"', '"\\u0063rs"')
    else:
        doc = json.dumps(parks_geojson({"crs": link}))
    code = refusal_code(write_json(tmp_path / "parks.geojson", doc))
    assert recorder.requests == []
    assert code == ("bad_format" if variant == "escaped" else "crs_url")


def test_geojson_with_a_named_crs_or_a_url_property_still_loads(tmp_path):
    named = tmp_path / "cgcs2000.geojson"
    gpd.GeoDataFrame({"园区编号": ["YQ001"], "园区名称": ["金水科技园"]},
                     geometry=[f.square(*f.ZHENGZHOU_JINSHUI, 0.01)], crs=4490
                     ).to_file(named, driver="GeoJSON")
    assert '"crs"' in named.read_text(encoding="utf-8")
    raw = read_file(named)
    assert raw.kind == "parks" and "4490" in raw.file_crs
    doc = parks_geojson()
    doc["features"][0]["properties"]["url"] = "https://example.com/园区"
    raw = read_file(write_json(tmp_path / "with-url.geojson", doc))
    assert raw.kind == "parks" and len(raw.frame) == 1


# content must match the suffix -----------------------------------------------------------------

def test_a_geojson_that_is_a_geopackage_and_the_reverse_are_refused(tmp_path):
    gpkg = f.write_venues_gpkg(tmp_path / "venues.gpkg")
    geojson = f.write_parks_geojson(tmp_path / "parks.geojson")
    disguised = tmp_path / "venues.geojson"
    shutil.copy(gpkg, disguised)
    assert refused(read_file, disguised).code == "content_mismatch"
    disguised = tmp_path / "parks.gpkg"
    shutil.copy(geojson, disguised)
    assert refused(read_file, disguised).code == "content_mismatch"
    sqlite = tmp_path / "plain-sqlite.gpkg"  # SQLite, but no GeoPackage application id
    with sqlite3.connect(sqlite) as db:
        db.execute("CREATE TABLE t (a TEXT)")
    assert refused(read_file, sqlite).code == "content_mismatch"
    assert read_file(gpkg).kind == "venues" and read_file(geojson).kind == "parks"


def test_a_spreadsheet_that_is_text_and_a_table_with_nul_bytes_are_refused(tmp_path):
    csv = f.write_equipment_csv(tmp_path / "eq.csv")
    for suffix, expected in ((".xlsx", "XLSX"), (".xlsm", "XLSX"), (".xls", "XLS")):
        shutil.copy(csv, tmp_path / f"eq{suffix}")
        rejected = refused(read_file, tmp_path / f"eq{suffix}")
        assert (rejected.code, rejected.en) == (
            "content_mismatch", f"file content does not match its extension (expected {expected})")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(csv.read_bytes()[:200] + b"\0\x01\x02" + csv.read_bytes()[200:])
    rejected = refused(read_file, binary)
    assert (rejected.code, rejected.en) == (
        "content_mismatch", "file content does not match its extension (expected a text "
                            "table (CSV))")


@pytest.mark.parametrize("name", ["roads.shp", "roads.fgb", "roads.vrt", "roads"])
def test_other_formats_are_refused_naming_the_accepted_ones(tmp_path, name):
    path = tmp_path / name
    gpd.GeoDataFrame({"a": [1]}, geometry=[shapely.Point(113.7, 34.8)], crs=4326).to_file(
        tmp_path / "roads.shp")
    if name != "roads.shp":
        shutil.copy(tmp_path / "roads.shp", path)
    rejected = refused(read_file, path)
    assert rejected.code == "bad_format"
    for suffix in (".csv", ".xlsx", ".xls", ".geojson", ".json", ".gpkg"):
        assert suffix in rejected.zh and suffix in rejected.en
    assert ".shp" not in rejected.en.split("accepted")[1]


def test_a_geopackage_path_with_a_colon_reads(tmp_path):
    folder = tmp_path / "a:b"
    folder.mkdir()
    raw = read_file(f.write_venues_gpkg(folder / "场所:2024.gpkg"))
    assert raw.kind == "venues" and len(raw.frame) == 2 and raw.geometry.notna().all()
    assert raw.path == str(folder / "场所:2024.gpkg")


def test_gdal_error_text_is_logged_not_reported(tmp_path, caplog):
    fake = tmp_path / "broken.gpkg"  # a GeoPackage header and nothing behind it
    header = bytearray(b"SQLite format 3\0".ljust(100, b"\0"))
    header[68:72] = b"GPKG"
    fake.write_bytes(bytes(header) + b"\0" * 4000)
    with caplog.at_level("WARNING", logger="riskmap"):
        rejected = refused(read_file, fake)
    assert (rejected.code, rejected.en) == ("bad_table", "unreadable GPKG file")
    assert str(tmp_path) not in rejected.zh + rejected.en
    assert "GDAL could not read" in caplog.text and str(fake) in caplog.text


# no geometry ---------------------------------------------------------------------------------

def test_vector_files_without_geometry_are_refused_not_crashed(tmp_path):
    for path in (write_attribute_gpkg(tmp_path / "attributes.gpkg"),
                 write_null_geometry_geojson(tmp_path / "no-geometry.geojson")):
        rejected = refused(read_file, path)
        assert (rejected.code, rejected.zh, rejected.en) == (
            "no_geometry", "文件没有几何图形：属性表请以 CSV 或 XLSX 提交",
            "the layer has no geometry: send attribute tables as CSV or XLSX"), path.name


# spreadsheet zip bombs -----------------------------------------------------------------------

@pytest.fixture()
def no_calamine(monkeypatch):
    """Fail the test if a workbook reaches calamine."""
    def parse(*args, **kwargs):
        raise AssertionError("calamine was asked to parse a refused workbook")
    monkeypatch.setattr(reader.pd, "read_excel", parse)


def test_an_xlsx_zip_bomb_is_refused_before_calamine(tmp_path, no_calamine):
    for path in (write_bomb(tmp_path / "bomb.xlsx"), write_lying_bomb(tmp_path / "lie.xlsm")):
        assert path.stat().st_size < 100_000
        rejected = refused(read_file, path, max_expanded_bytes=SMALL_LIMIT)
        assert rejected.code == "too_expanded", path.name
        assert "1 MB" in rejected.zh and "1 MB" in rejected.en


def test_an_xlsx_with_too_many_members_is_refused_before_calamine(tmp_path, monkeypatch,
                                                                   no_calamine):
    monkeypatch.setattr(reader, "MAX_ZIP_MEMBERS", 5)
    path = tmp_path / "many.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        for n in range(6):
            zf.writestr(f"xl/part{n}.xml", "<x/>")
    rejected = refused(read_file, path)
    assert rejected.code == "too_expanded" and "5" in rejected.en


def test_a_normal_xlsx_loads_within_a_small_limit(tmp_path):
    raw = read_file(write_equipment_xlsx(tmp_path / "eq.xlsx"), max_expanded_bytes=SMALL_LIMIT)
    assert raw.kind == "equipment" and len(raw.frame) == 2
    assert reader.MAX_EXPANDED_BYTES >= 1 << 30 and reader.MAX_ZIP_MEMBERS == 10_000


def test_a_corrupt_zip_is_a_bad_table(tmp_path):
    path = tmp_path / "corrupt.xlsx"
    path.write_bytes(write_equipment_xlsx(tmp_path / "eq.xlsx").read_bytes()[:3000])
    assert refused(read_file, path).code == "bad_table"


# through the CLI's ingest and over HTTP --------------------------------------------------------

EXPECTED = {
    "vrt.geojson": "content_mismatch", "vrt.json": "content_mismatch",
    "vrt.gpkg": "content_mismatch", "remote.geojson": "content_mismatch",
    "crs-link.geojson": "crs_url", "attributes.gpkg": "no_geometry",
    "no-geometry.geojson": "no_geometry", "bomb.xlsx": "too_expanded",
    "text.xlsx": "content_mismatch", "binary.csv": "content_mismatch",
    "roads.shp": "bad_format", "roads.fgb": "bad_format",
}


@pytest.fixture()
def batch(tmp_path, server_csv, recorder, monkeypatch) -> dict[str, Path]:
    """Every refused kind of file, and a good equipment CSV; the pipeline reads with the
    small expansion limit."""
    monkeypatch.setattr(pipeline, "read_file",
                        functools.partial(reader.read_file, max_expanded_bytes=SMALL_LIMIT))
    folder = tmp_path / "batch"
    folder.mkdir()
    good = f.write_equipment_csv(folder / "设备台账.csv")
    files = {name: folder / name for name in EXPECTED}
    for name in ("vrt.geojson", "vrt.json", "vrt.gpkg"):
        files[name].write_text(vrt(f"CSV:{server_csv}"), encoding="utf-8")
    files["remote.geojson"].write_text(vrt(f"/vsicurl/{recorder.url('x.csv')}"),
                                       encoding="utf-8")
    write_json(files["crs-link.geojson"], parks_geojson(
        {"crs": {"type": "link", "properties": {"href": recorder.url("crs")}}}))
    write_attribute_gpkg(files["attributes.gpkg"])
    write_null_geometry_geojson(files["no-geometry.geojson"])
    write_bomb(files["bomb.xlsx"])
    shutil.copy(good, files["text.xlsx"])
    files["binary.csv"].write_bytes(b"\0" + good.read_bytes())
    files["roads.shp"].write_bytes(b"\0\0\x27\x0a" + b"\0" * 96)
    files["roads.fgb"].write_bytes(b"fgb\x03fgb\x00" + b"\0" * 64)
    return {**files, "设备台账.csv": good}


def file_codes(report: dict) -> dict[str, str]:
    return {Path(r["file"]).name: r["code"] for r in report["rejects"] if r["field"] == "(file)"}


def check_report(report: dict, store_rows: dict[str, int], recorder: Recorder) -> None:
    text = json.dumps(report, ensure_ascii=False, default=str)
    assert SECRET not in text and SERVER_FILE not in text
    assert file_codes(report) == EXPECTED
    assert all(r["row"] == 0 for r in report["rejects"] if Path(r["file"]).name in EXPECTED)
    errors = {Path(x["path"]).name: x.get("error") for x in report["files"]}
    assert all(errors[name] for name in EXPECTED) and not errors["设备台账.csv"]
    assert report["files_rejected"] == len(EXPECTED)
    assert store_rows["equipment"] == report["inserted"] == len(f.GOOD_EQUIPMENT)
    assert {t: n for t, n in store_rows.items() if t != "equipment"} == dict.fromkeys(
        (t for t in TABLES if t != "equipment"), 0)
    assert recorder.requests == []


def test_the_cli_ingest_refuses_each_file_and_loads_the_rest(store, batch, recorder):
    report = ingest([str(p) for p in batch.values()], store, IngestOptions())
    check_report(report, data_rows(store), recorder)


@pytest.fixture()
def served(store_factory, tmp_path):
    store = store_factory()
    url = getattr(store, "url", None) or str(getattr(store, "root", tmp_path))
    _user, token = create_user(store, name="admin", role=Role.ADMIN, scope=None, pepper=PEPPER,
                               provinces=["410000", "610000"])
    store.close()
    with TestClient(create_app(Settings(store=url, max_upload_mb=5))) as client:
        yield client, token, store_factory


def test_an_upload_refuses_each_file_and_loads_the_rest(served, batch, recorder):
    client, token, store_factory = served
    files = [("files", (name, path.read_bytes(), "application/octet-stream"))
             for name, path in batch.items()]
    r = client.post("/api/ingest", files=files, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    report = r.json()
    assert {x["path"] for x in report["files"]} == set(batch)  # the uploaded names
    store = store_factory()
    check_report(report, data_rows(store), recorder)
