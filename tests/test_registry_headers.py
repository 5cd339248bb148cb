"""Registry exports under the national registration form's headers (issue 13 §7): the
headers are recognised after normalisation, and a needed column the file lacks is told once
for the file, naming the column and the file's closest header."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from data.reasons import advice
from data.schema import (
    NOT_STORED,
    SCHEMAS,
    Kind,
    detect_kind,
    field_of,
    header_keys,
    match_headers,
)
from service.ingest.pipeline import IngestOptions, ingest
from service.ingest.reject_workbook import write_reject_workbook
from service.ingest.report import ingest_exit_code, summary_lines
from tests import ingest_files as f


def run(store, paths, **kw):
    return ingest([str(p) for p in paths], store, IngestOptions(**kw))


# normalisation -------------------------------------------------------------------------------

@pytest.mark.parametrize(("header", "bare"), [
    ("经度(°)", "经度"),
    ("纬度（度）", "纬度"),
    ("下次检验日期(年月日)", "下次检验日期"),
    ("投入使用日期(YYYY-MM-DD)", "投入使用日期"),
    ("高度[m]", "高度"),
    ("额定载重量【kg】", "额定载重量"),
    ("设备代码〔必填〕", "设备代码"),
    ("*设备代码", "设备代码"),
    ("＊设备代码", "设备代码"),
    ("★使用单位名称", "使用单位名称"),
    ("设备代码*", "设备代码"),
    ("经度*(°)", "经度"),
    ("经度(°)*", "经度"),
    (" 设备 使用\u3000地点\n", "设备使用地点"),
    ("ＬＯＮＧＩＴＵＤＥ", "longitude"),
    ("Longitude (WGS84)", "longitude"),
    ("坐标系：", "坐标系"),
    ("(°)", "(°)"),               # nothing but a bracket: kept
])
def test_headers_are_normalised(header, bare):
    assert header_keys(header)[1] == bare


def test_a_name_with_brackets_of_its_own_matches_as_written():
    full, bare = header_keys("纬度（度）")
    assert (full, bare) == ("纬度(度)", "纬度")
    assert match_headers(Kind.EQUIPMENT, ["经度（°）", "纬度 (度)", "ＣＲＳ"]) == {
        "经度（°）": "lon", "纬度 (度)": "lat", "ＣＲＳ": "crs"}


def test_the_national_form_names_map_to_what_they_mean():
    eq = match_headers(Kind.EQUIPMENT, f.REGISTRY_HEADERS)
    assert eq == {
        "*设备代码": "registration_code", "设备品种": "category_code",
        "使用单位名称": "unit_name", "使用单位统一社会信用代码": "unit_credit_code",
        "设备使用地点": "address", "投入使用日期": "commissioned_on",
        "下次检验日期(年月日)": "next_inspection_due", "检验结论": "inspection_conclusion",
        "使用状态": "status", "经度(°)": "lon", "纬度（度）": "lat", "坐标系": "crs"}
    assert detect_kind(f.REGISTRY_HEADERS) == Kind.EQUIPMENT
    units = match_headers(Kind.UNITS, ["使用单位统一社会信用代码", "使用单位名称", "使用单位地址",
                                       "经度(°)", "纬度（度）"])
    assert units == {"使用单位统一社会信用代码": "credit_code", "使用单位名称": "name",
                     "使用单位地址": "address", "经度(°)": "lon", "纬度（度）": "lat"}
    assert detect_kind(["使用单位统一社会信用代码", "使用单位名称", "使用单位地址"]) == Kind.UNITS
    hazards = ["隐患编号", "设备代码", "发现日期", "隐患等级", "隐患状态"]
    assert detect_kind(hazards) == Kind.HAZARDS
    assert match_headers(Kind.HAZARDS, hazards)["设备代码"] == "registration_code"
    assert detect_kind(["检查编号", "使用单位统一社会信用代码", "检查时间"]) == Kind.CHECKS


def test_the_unit_address_is_the_equipment_address_only_without_a_place_column():
    both = match_headers(Kind.EQUIPMENT, ["使用单位地址", "设备使用地点"])
    assert both == {"设备使用地点": "address"}
    assert match_headers(Kind.EQUIPMENT, ["使用单位地址"]) == {"使用单位地址": "address"}
    # a units file reads the unit's address before any other
    assert match_headers(Kind.UNITS, ["地址", "使用单位地址"]) == {"使用单位地址": "address"}


def test_no_name_means_two_fields_and_no_other_form_column_is_taken():
    for kind, fields in SCHEMAS.items():
        seen: dict[str, str] = {}
        for fld in fields:
            for name in fld.names:
                key = header_keys(name)[0]
                assert seen.setdefault(key, fld.name) == fld.name, (kind, name)
        assert not match_headers(kind, list(NOT_STORED)), kind


# a registry export loads -----------------------------------------------------------------------

@pytest.mark.parametrize(("name", "encoding"), [
    ("登记导出.csv", "utf-8-sig"), ("登记导出_gbk.csv", "gbk"), ("登记导出.xlsx", None)])
def test_a_registry_export_loads_with_every_row_located(store, tmp_path, name, encoding):
    path = f.write_registry(tmp_path / name, encoding=encoding or "")
    report = run(store, [path])
    assert report["rejected"] == 0, report["rejects"]
    assert "no_location" not in report["by_reason"]
    assert report["inserted"] == len(f.REGISTRY_EXPECTED)
    if encoding == "gbk":
        assert report["files"][0]["encoding"] == "gbk"
    assert report["files"][0]["ignored_columns"] == f.REGISTRY_NOT_STORED
    eq = store.read("equipment").set_index("registration_code")
    got = {code: (row.county_adcode, row.category_code, row.geocode_precision)
           for code, row in eq.iterrows()}
    assert got == f.REGISTRY_EXPECTED
    assert str(eq.loc["31104101052018000101", "next_inspection_due"].date()) == "2026-06-01"
    assert str(eq.loc["11006101132019000103", "commissioned_on"].date()) == "2019-03-05"
    assert eq.loc["31104103052018000102", "address"] == f.LUOYANG_PLACE
    # the piece placed by its address is flagged under the file's own header
    [flag] = report["flags"]
    assert (flag["row"], flag["header"], flag["code"]) == (3, "设备使用地点", "geocoded_county")


def test_a_row_without_a_place_is_not_put_at_its_units_address(store, tmp_path):
    rows = f.registry_rows()[:2]
    rows[1][13] = ""                                   # 设备使用地点 left empty
    report = run(store, [f.write_registry(tmp_path / "eq.csv", rows=rows)])
    assert [(r["row"], r["code"]) for r in report["rejects"]] == [(3, "no_location")]
    # a file with no column for the place reads the unit's address instead
    headers = [h for h in f.REGISTRY_HEADERS if h != "设备使用地点"]
    rows = [[v for h, v in zip(f.REGISTRY_HEADERS, r, strict=True) if h != "设备使用地点"]
            for r in f.registry_rows()[1:2]]
    report = run(store, [f.write_registry(tmp_path / "unit.csv", rows=rows, headers=headers)])
    assert report["rejected"] == 0, report["rejects"]
    assert report["flags"][0]["header"] == "使用单位地址"
    eq = store.read("equipment").set_index("registration_code")
    assert eq.loc["31104103052018000102", "county_adcode"] == "410105"  # where the unit is


# a needed column the file lacks: said once ---------------------------------------------------

UNKNOWN_PLACE = ["设备代码", "设备品种", "使用单位名称", "使用单位统一社会信用代码", "安装位置说明",
                 "投入使用日期"]


def unknown_place_rows() -> list[list[object]]:
    return [[f"3110410305201800020{n}", "3110", "乙公司", f.UNIT_B, f"{f.LUOYANG_PLACE}{n}号楼",
             "2018-06-01"] for n in range(3)]


def test_an_unknown_address_column_is_told_once_for_the_file(store, tmp_path):
    path = tmp_path / "安装位置.csv"
    pd.DataFrame(unknown_place_rows(), columns=UNKNOWN_PLACE).to_csv(path, index=False)
    report = run(store, [path])
    [told] = report["rejects"]
    assert (told["row"], told["field"], told["header"], told["code"], told["rows"]) == (
        0, "address", None, "missing_column", 3)
    assert told["value"] == "安装位置说明"
    assert told["reason"].startswith("文件缺少必需的列：「使用地址」（登记表：「设备使用地点」）")
    assert "最接近的表头：安装位置说明" in told["reason"]
    assert "closest header: 安装位置说明" in told["reason"]
    assert told["advice"] == "请将列「安装位置说明」改名为「设备使用地点」，或加上经度、纬度两列"
    assert report["rejected"] == 3 and report["loaded"] == 0
    assert report["by_reason"] == {"missing_column": 3}
    assert report["files_rejected"] == 0 and ingest_exit_code(report) == 2
    # each row is still kept, with its raw values, in the store's rejects table
    kept = store.read("rejects").sort_values("row")
    assert kept["row"].tolist() == [2, 3, 4]
    assert set(kept["code"]) == {"missing_column"} and set(kept["field"]) == {"address"}
    assert json.loads(kept.iloc[0]["raw"])["安装位置说明"] == f"{f.LUOYANG_PLACE}0号楼"
    # the console says it once, in one place
    lines = summary_lines(report)
    at = lines.index("文件缺少必需的列 missing columns:")
    assert lines[at + 1].startswith("  安装位置.csv（equipment）：文件缺少必需的列：「使用地址」")
    said = "\n".join(lines)
    assert said.count("最接近的表头：安装位置说明") == 1 and "3 行因此拒收" in said
    assert any(x.strip().startswith("→ 处理：请将列「安装位置说明」改名为「设备使用地点」")
               for x in lines[at:])
    assert "拒收明细 rejects by file and column:" not in lines
    # the workbook lists every row, under the file's own columns
    book = tmp_path / "rejects.xlsx"
    assert write_reject_workbook(report, book) == 3
    sheet = pd.read_excel(book, sheet_name=None, engine="calamine", dtype=object)["安装位置"]
    assert sheet["行号"].astype(int).tolist() == [2, 3, 4]
    assert list(sheet.columns) == ["拒收原因", "行号", *UNKNOWN_PLACE]
    assert sheet["拒收原因"].str.startswith("文件缺少必需的列：「使用地址」").all()
    assert sheet["拒收原因"].str.contains("改名为「设备使用地点」").all()


def test_renaming_the_column_as_advised_loads_every_row(store, tmp_path):
    headers = [h.replace("安装位置说明", "设备使用地点") for h in UNKNOWN_PLACE]
    path = tmp_path / "renamed.csv"
    pd.DataFrame(unknown_place_rows(), columns=headers).to_csv(path, index=False)
    report = run(store, [path])
    assert report["rejected"] == 0 and report["inserted"] == 3, report["rejects"]


def test_with_coordinates_the_rows_that_have_them_load(store, tmp_path):
    rows = [[*r, *(f.LUOYANG_JIANXI if n else ("", ""))]
            for n, r in enumerate(unknown_place_rows())]
    path = tmp_path / "some.csv"
    pd.DataFrame(rows, columns=[*UNKNOWN_PLACE, "经度", "纬度"]).to_csv(path, index=False)
    report = run(store, [path])
    assert report["inserted"] == 2
    [told] = report["rejects"]
    assert (told["row"], told["code"]) == (2, "no_location")
    assert "文件没有可识别的地址列（最接近的表头：安装位置说明）" in told["reason"]


def test_a_lone_coordinate_column_is_told_once(store, tmp_path):
    rows = [[*r, f.LUOYANG_JIANXI[0], f.LUOYANG_JIANXI[1]] for r in unknown_place_rows()]
    path = tmp_path / "lon_only.csv"
    pd.DataFrame(rows, columns=[*UNKNOWN_PLACE, "经度", "纬度值(度)"]).to_csv(path, index=False)
    report = run(store, [path])
    [told] = report["rejects"]
    assert (told["field"], told["code"], told["rows"], told["value"]) == (
        "lat", "missing_column", 3, "纬度值(度)")
    assert "经度和纬度须成对填写" in told["reason"]


def test_a_required_column_missing_under_a_forced_kind_is_told_once(store, tmp_path):
    rows = [r[1:] for r in f.equipment_rows()[:2]]
    path = tmp_path / "no_code.csv"
    pd.DataFrame(rows, columns=f.EQUIPMENT_HEADERS[1:]).to_csv(path, index=False)
    report = run(store, [path], kind="equipment")
    [told] = report["rejects"]
    assert (told["field"], told["code"], told["rows"], told["value"]) == (
        "registration_code", "missing_column", 2, None)
    assert ("「设备注册代码」（登记表：「设备代码」），每行必填；文件中没有相近的表头"
            in told["reason"])
    assert told["advice"].startswith("请在文件中加上「设备代码」一列")


def test_officers_without_cells_or_county_are_told_once(store, tmp_path):
    path = tmp_path / "网格员.csv"
    path.write_text("网格员编号,姓名,网格\nW001,张伟,x\nW002,李娜,y\n", encoding="utf-8")
    report = run(store, [path])
    [told] = report["rejects"]
    assert (told["field"], told["code"], told["rows"]) == ("cells", "missing_column", 2)
    assert "最接近的表头：网格" in told["reason"]
    assert told["advice"] == "请将列「网格」改名为「网格单元」，或加上「负责区县代码」一列"


def test_missing_column_advice_names_the_form():
    eq = field_of(Kind.EQUIPMENT, "address")
    assert eq.form == "设备使用地点"
    assert advice("missing_column", "equipment", "address", None, "位置") == (
        "请将列「位置」改名为「设备使用地点」，或加上经度、纬度两列")
    assert advice("missing_column", "hazards", "found_on") == (
        "请在文件中加上「发现日期」一列（或把对应的列改名为「发现日期」）")
    assert advice("missing_column")
