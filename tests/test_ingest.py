"""Ingest end to end on hand-made files, against both stores (the ``store`` fixture)."""

from __future__ import annotations

import json
import unicodedata
import zipfile
from pathlib import Path

import h3
import numpy as np
import pandas as pd
import pytest

from data.demo import generate
from data.reasons import FILE_CODES, Flag, Reason, advice
from service.ingest import pipeline
from service.ingest.pipeline import IngestOptions, ingest
from service.ingest.reject_workbook import write_reject_workbook
from service.ingest.report import ingest_exit_code, summary_lines
from tests import ingest_files as f
from tests.test_datum import metres


@pytest.fixture()
def files(tmp_path):
    cell = h3.latlng_to_cell(f.ZHENGZHOU_JINSHUI[1], f.ZHENGZHOU_JINSHUI[0], 8)
    return {
        "equipment": f.write_equipment_csv(tmp_path / "设备台账.csv"),
        "units": f.write_units_csv(tmp_path / "使用单位.csv"),
        "hazards": f.write_hazards_csv(tmp_path / "隐患.csv"),
        "checks": f.write_checks_csv(tmp_path / "监督检查记录.csv"),
        "parks": f.write_parks_geojson(tmp_path / "园区.geojson"),
        "venues": f.write_venues_gpkg(tmp_path / "人员密集场所.gpkg"),
        "officers": f.write_officers_csv(tmp_path / "网格员.csv", cell),
    }


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory) -> tuple[Path, dict]:
    """A small seeded demo province: three equipment files, one a county export under the
    schema's aliases and one a workbook, with planted bad rows listed in its manifest."""
    out = tmp_path_factory.mktemp("demo") / "files"
    generate(province="河南省", equipment=1000, seed=7, out=out)
    return out, json.loads((out / "MANIFEST.json").read_text(encoding="utf-8"))


def run(store, paths, **kw):
    return ingest([str(p) for p in paths], store, IngestOptions(**kw))


def rejects_by_row(report, name):
    return {(r["row"], r["field"], r["code"]) for r in report["rejects"]
            if r["file"].endswith(name)}


def test_every_bad_equipment_row_is_rejected_with_row_field_and_reason(store, files):
    report = run(store, [files["equipment"]])
    got = rejects_by_row(report, "设备台账.csv")
    for row, (field, code) in f.EXPECTED_EQUIPMENT_REJECTS.items():
        assert (row, field, code) in got, (row, field, code)
    assert {r for r, _, _ in got} == set(f.EXPECTED_EQUIPMENT_REJECTS)
    reasons = [r["reason"] for r in report["rejects"]]
    assert all(" / " in r for r in reasons)  # Chinese / English
    assert report["rejected"] == len(f.EXPECTED_EQUIPMENT_REJECTS)
    stored = store.read("equipment")
    assert set(stored["registration_code"]) == f.GOOD_EQUIPMENT
    assert report["inserted"] == len(f.GOOD_EQUIPMENT)


def test_rejects_are_kept_in_the_store_with_the_raw_row(store, files):
    report = run(store, [files["equipment"]])
    kept = store.read("rejects")
    assert len(kept) == len(report["rejects"])
    row8 = kept[(kept["row"] == 8)].iloc[0]
    assert row8["field"] == "commissioned_on" and row8["code"] == "bad_date"
    assert json.loads(row8["raw"])["投用日期"] == "2021-13-45"


def test_datums_are_converted_and_recorded(store, files):
    run(store, [files["equipment"]])
    eq = store.read("equipment").set_index("registration_code")
    x, y = f.ZHENGZHOU_JINSHUI
    for code, src in (("31104101052015000001", "WGS84"), ("31104101052015000002", "GCJ02"),
                      ("41104101052016000003", "BD09")):
        assert eq.loc[code, "source_crs"] == src
        assert metres(eq.loc[code, "lon"], eq.loc[code, "lat"], x, y) < 1.0
    assert eq.loc["31106101132019000015", "source_crs"] == "CGCS2000"


def test_swapped_coordinates_are_fixed_and_flagged(store, files):
    report = run(store, [files["equipment"]])
    eq = store.read("equipment").set_index("registration_code")
    row = eq.loc["31104101052015000011"]
    assert metres(row["lon"], row["lat"], *f.LUOYANG_JIANXI) < 0.01
    assert row["flags"] == "lonlat_swapped"
    assert row["county_adcode"] == "410305"
    assert any(fl["row"] == 11 and fl["code"] == "lonlat_swapped" for fl in report["flags"])


def test_address_only_rows_are_placed_in_their_county(store, files):
    run(store, [files["equipment"]])
    eq = store.read("equipment").set_index("registration_code")
    row = eq.loc["31104103052015000013"]
    assert row["geocode_precision"] == "county"
    assert row["county_adcode"] == "410305"
    assert eq.loc["31104101052015000001", "geocode_precision"] == "exact"


def test_enrichment_adcodes_and_h3(store, files):
    run(store, [files["equipment"]])
    eq = store.read("equipment").set_index("registration_code")
    row = eq.loc["31104101052015000001"]
    assert (row["province_adcode"], row["city_adcode"], row["county_adcode"]) == (
        "410000", "410100", "410105")
    assert row["h3"] == h3.latlng_to_cell(row["lat"], row["lon"], 8)
    for r in (5, 6, 7):
        assert row[f"h3_{r}"] == h3.cell_to_parent(row["h3"], r)
    assert eq.loc["31106101132019000015", "province_adcode"] == "610000"
    assert eq.loc["31106101132019000015", "category"] == "3000"
    assert eq.loc["31104101052015000002", "category_code"] == "3000"


def test_all_kinds_in_any_order_and_reference_checks(store, files):
    order = [files[k] for k in ("officers", "checks", "hazards", "venues", "parks", "units",
                                "equipment")]
    report = run(store, order)
    kinds = {fi["path"].split("/")[-1]: fi["kind"] for fi in report["files"]}
    assert kinds["园区.geojson"] == "parks" and kinds["人员密集场所.gpkg"] == "venues"
    assert ("hazards" in kinds.values()) and ("officers" in kinds.values())
    hz = rejects_by_row(report, "隐患.csv")
    assert (4, "registration_code", "unknown_equipment") in hz
    assert (5, "found_on", "missing") in hz
    assert (3, "credit_code", "unknown_unit") in rejects_by_row(report, "监督检查记录.csv")
    assert {r["registration_code"] for _, r in store.read("hazards").iterrows()} == {
        "31104101052015000001", "31104101052015000002"}
    units = rejects_by_row(report, "使用单位.csv")
    assert {(5, "credit_code", "bad_credit_code"), (5, "industry", "bad_choice"),
            (5, "size", "bad_choice"), (5, "five_have_score", "out_of_range"),
            (5, "blacklisted", "bad_bool"), (5, "accidents_3y", "out_of_range")} <= units
    assert store.read("units").set_index("credit_code").loc[f.UNIT_C, "industry"] == "H"


def test_parks_venues_are_converted_and_linked(store, files):
    report = run(store, [files["equipment"], files["parks"], files["venues"]])
    parks = rejects_by_row(report, "园区.geojson")
    assert (2, "geometry", "outside_region") in parks        # the Beijing park
    assert (3, "geometry", "bad_geometry") in parks          # no geometry
    assert (2, "kind", "bad_choice") in rejects_by_row(report, "人员密集场所.gpkg")
    stored = store.read("parks").set_index("park_id")
    assert stored.loc["YQ001", "source_crs"] == "GCJ02"
    # converted back from GCJ-02: the park's centre is the WGS84 point again (< 1 m)
    c = stored.loc["YQ001", "geometry"].centroid
    assert metres(c.x, c.y, *f.ZHENGZHOU_JINSHUI) < 1.0
    assert stored.loc["YQ001", "area_km2"] == pytest.approx(4.1, rel=0.1)
    eq = store.read("equipment").set_index("registration_code")
    assert eq.loc["31104101052015000001", "park_id"] == "YQ001"
    assert eq.loc["31104101052015000001", "venue_id"] == "CS001"
    assert eq.loc["31106101132019000015", "park_id"] is None or np.all(
        eq.loc[["31106101132019000015"], "park_id"].isna())


def test_officers_cells_and_counties(store, files):
    report = run(store, [files["officers"]])
    off = rejects_by_row(report, "网格员.csv")
    assert (4, "cells", "bad_cell") in off and (5, "cells", "missing") in off
    cells = store.read("officer_cells")
    assert set(cells["officer_id"]) == {"W001", "W002"}
    assert (cells["officer_id"] == "W001").sum() == 1
    assert (cells["officer_id"] == "W002").sum() > 20  # a whole district at res 8


def test_ingesting_twice_changes_nothing_and_a_changed_row_updates(store, files, tmp_path):
    paths = [files[k] for k in files]
    first = run(store, paths)
    version = store.data_version()
    second = run(store, paths)
    assert second["inserted"] == 0 and second["updated"] == 0
    assert second["unchanged"] == first["inserted"]
    assert store.read("equipment").shape == (len(f.GOOD_EQUIPMENT),
                                             store.read("equipment").shape[1])
    rows = f.equipment_rows()
    rows[0][11] = "不合格"   # row 2: new inspection conclusion
    changed = f.write_equipment_csv(tmp_path / "changed.csv", rows=rows)
    third = run(store, [changed])
    assert third["updated"] == 1 and third["inserted"] == 0
    assert store.data_version() != version
    eq = store.read("equipment").set_index("registration_code")
    assert eq.loc["31104101052015000001", "inspection_conclusion"] == "不合格"


def test_gbk_file_reads_like_utf8(store, tmp_path):
    gbk = f.write_equipment_csv(tmp_path / "gbk.csv", encoding="gbk")
    report = run(store, [gbk])
    assert report["files"][0]["encoding"] == "gbk"
    assert report["inserted"] == len(f.GOOD_EQUIPMENT)


def test_xlsx_with_excel_dates(store, tmp_path):
    import pandas as pd

    rows = f.equipment_rows()[:1]
    frame = pd.DataFrame(rows, columns=f.EQUIPMENT_HEADERS)
    frame["投用日期"] = pd.Timestamp("2015-03-05")
    path = tmp_path / "eq.xlsx"
    frame.to_excel(path, index=False)
    report = run(store, [path])
    assert report["inserted"] == 1, report["rejects"]
    eq = store.read("equipment")
    assert str(eq["commissioned_on"].iloc[0].date()) == "2015-03-05"


def test_unreadable_files_are_reported_not_dropped(store, tmp_path):
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes("设备注册代码,设备类别代码\n".encode("utf-16") + b"\xff\xfe\x00\xd8")
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("a,b\n1,2\n", encoding="utf-8")
    big = f.write_equipment_csv(tmp_path / "big.csv")
    report = ingest([str(utf16), str(unknown), str(big)], store,
                    IngestOptions(max_bytes=100))
    codes = {(r["file"].split("/")[-1], r["code"]) for r in report["rejects"]}
    assert ("utf16.csv", "bad_encoding") in codes
    assert ("unknown.csv", "unknown_kind") in codes
    assert ("big.csv", "too_large") in codes
    assert report["files_rejected"] == 3
    assert len(store.read("rejects")) == 3


def test_file_default_datum_applies_to_rows_without_one(store, tmp_path):
    x, y = f.ZHENGZHOU_JINSHUI
    from geo.datum import wgs84_to_gcj02

    gx, gy = wgs84_to_gcj02(np.array([x]), np.array([y]))
    row = f.equipment_rows()[0]
    row[5], row[6], row[7] = gx[0], gy[0], ""
    path = f.write_equipment_csv(tmp_path / "amap.csv", rows=[row])
    run(store, [path], default_crs="GCJ02")
    eq = store.read("equipment").iloc[0]
    assert eq["source_crs"] == "GCJ02"
    assert metres(eq["lon"], eq["lat"], x, y) < 1.0


def test_rows_with_the_wrong_number_of_fields_are_reported_and_the_rest_load(store, tmp_path):
    path = f.write_equipment_csv(tmp_path / "eq.csv", rows=f.equipment_rows()[:2])
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(2, "31104101052015000099,3110,only-three")      # becomes row 3
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = run(store, [path])
    bad = [r for r in report["rejects"] if r["code"] == "malformed_row"]
    assert [(r["row"], r["field"]) for r in bad] == [(3, "(row)")]
    assert "only-three" in bad[0]["value"]
    assert report["inserted"] == 2
    rows = store.read("equipment").set_index("registration_code")["source_row"]
    assert rows.to_dict() == {"31104101052015000001": 2, "31104101052015000002": 4}


def test_free_text_is_kept_as_written(store, tmp_path):
    rows = f.equipment_rows()[:1]
    rows[0][3] = " 郑州（金水）电梯有限公司 "
    run(store, [f.write_equipment_csv(tmp_path / "eq.csv", rows=rows)])
    assert store.read("equipment")["unit_name"].iloc[0] == "郑州（金水）电梯有限公司"


def test_broken_vector_and_excel_files_are_refused_with_a_reason(store, tmp_path):
    geojson = tmp_path / "园区.geojson"
    geojson.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    xlsx = tmp_path / "设备.xlsx"
    xlsx.write_bytes(b"PK\x03\x04 not really a workbook")
    parks_csv = tmp_path / "parks.csv"
    parks_csv.write_text("园区编号,园区名称\nYQ9,无图形园区\n", encoding="utf-8")
    report = run(store, [geojson, xlsx, parks_csv])
    codes = {(r["file"].split("/")[-1], r["code"]) for r in report["rejects"]}
    assert ("园区.geojson", "bad_table") in codes
    assert ("设备.xlsx", "bad_table") in codes
    assert ("parks.csv", "no_geometry") in codes


# A reject report a clerk can act on (issue 12 §4) -------------------------------------------

def clerk_file(tmp_path, rows=None, name="县级导出.csv"):
    """The equipment fixture under the headers a county system exports, plus a column of
    its own (备注) that no kind knows."""
    frame = pd.DataFrame(rows if rows is not None else f.equipment_rows(),
                         columns=f.CLERK_HEADERS)
    frame["备注"] = "县局导出"
    path = tmp_path / name
    frame.to_csv(path, index=False, encoding="utf-8")
    return path


def by_row(report, name, key="rejects"):
    return {(r["row"], r["field"]): r for r in report[key] if r["file"].endswith(name)}


def test_rejects_name_the_clerks_headers_beside_the_canonical_names(store, tmp_path):
    report = run(store, [clerk_file(tmp_path)])
    got = by_row(report, "县级导出.csv")
    assert got[(6, "unit_credit_code")]["header"] == "使用单位统一社会信用代码"
    assert got[(8, "commissioned_on")]["header"] == "投入使用日期"
    assert got[(5, "registration_code")]["header"] == "设备代码"
    assert got[(16, "crs")]["header"] == "坐标系统"
    assert all(r["advice"] for r in report["rejects"])
    assert {r for r, _ in got} == set(f.EXPECTED_EQUIPMENT_REJECTS)
    assert report["files"][0]["ignored_columns"] == ["备注"]
    kept = store.read("rejects")  # the stored rejects keep the raw row under its own headers
    assert json.loads(kept[kept["row"] == 8].iloc[0]["raw"])["投入使用日期"] == "2021-13-45"


def test_a_column_the_file_lacks_has_no_header_and_the_console_says_so(store, tmp_path):
    rows = [r[1:] for r in f.equipment_rows()[:2]]
    path = tmp_path / "no_code.csv"
    pd.DataFrame(rows, columns=f.EQUIPMENT_HEADERS[1:]).to_csv(path, index=False)
    report = run(store, [path], kind="equipment")
    # told once for the file (tests/test_registry_headers.py), each row kept as rejected
    assert [(r["row"], r["field"], r["header"], r["rows"]) for r in report["rejects"]] == [
        (0, "registration_code", None, 2)]
    assert report["rejected"] == 2
    assert sorted(store.read("rejects")["row"]) == [2, 3]
    lines = summary_lines(report)
    at = lines.index("文件缺少必需的列 missing columns:")
    assert "「设备注册代码」（登记表：「设备代码」），每行必填" in lines[at + 1]


def test_a_vector_files_geometry_is_its_header(store, files):
    report = run(store, [files["parks"], files["venues"]])
    parks = by_row(report, "园区.geojson")
    assert parks[(3, "geometry")]["header"] == "geometry"
    assert parks[(3, "geometry")]["code"] == "bad_geometry"
    assert by_row(report, "人员密集场所.gpkg")[(2, "kind")]["header"] == "场所类型"


def display_width(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


def test_the_console_ends_with_a_table_per_file_and_column(store, tmp_path):
    report = run(store, [clerk_file(tmp_path)])
    lines = summary_lines(report)
    at = lines.index("拒收明细 rejects by file and column:")
    table = lines[at:]
    line = next(x for x in table if x.strip().startswith("投入使用日期 (commissioned_on)"))
    assert "bad_date" in line and " 1 " in line and "8: 2021-13-45" in line
    advice = table[table.index(line) + 1]
    assert "日期无法识别" in advice and "YYYY-MM-DD" in advice
    # two example rows at most, with their row numbers
    dup = [r for r in f.equipment_rows()[:3]] * 2
    report = run(store, [clerk_file(tmp_path, dup, "dup.csv")])
    line = next(x for x in summary_lines(report) if x.strip().startswith("设备代码 (registration"))
    assert "duplicate" in line and " 3 " in line and "5: " in line and "6: " in line
    assert "7: " not in line
    assert all(display_width(x) <= 100 for x in lines[at:]), [x for x in lines[at:]
                                                              if display_width(x) > 100]


def test_an_ignored_column_is_printed_on_the_console(store, tmp_path):
    report = run(store, [clerk_file(tmp_path)])
    lines = summary_lines(report)
    at = next(n for n, x in enumerate(lines) if x.startswith("未导入的列"))
    assert lines[at + 1].strip() == "县级导出.csv: 备注"


def test_an_enum_reject_lists_the_allowed_values(store, tmp_path):
    rows = f.equipment_rows()[:2]
    rows[1][11] = "良好"   # 检验结论
    rows[1][12] = "闲置"   # 设备状态
    report = run(store, [f.write_equipment_csv(tmp_path / "eq.csv", rows=rows)])
    got = by_row(report, "eq.csv")
    conclusion = got[(3, "inspection_conclusion")]
    assert conclusion["code"] == "bad_choice" and conclusion["value"] == "良好"
    assert "合格、基本合格、复检合格、不合格" in conclusion["reason"]
    assert conclusion["advice"] == "允许的取值：合格、基本合格、复检合格、不合格"
    assert got[(3, "status")]["advice"] == "允许的取值：在用、停用、报废"
    assert report["inserted"] == 1


def test_unknown_kind_names_the_missing_columns_and_the_closest_headers(store, tmp_path):
    near = tmp_path / "near.csv"
    near.write_text("设备编码,设备类别代码,使用单位信用编号,经度,纬度\n"
                    "31104101052015000001,3110,x,113.686,34.786\n", encoding="utf-8")
    far = tmp_path / "far.csv"
    far.write_text("a,b\n1,2\n", encoding="utf-8")
    report = run(store, [near, far])
    reasons = {Path(r["file"]).name: r for r in report["rejects"]}
    assert reasons["near.csv"]["code"] == "unknown_kind"
    text = reasons["near.csv"]["reason"]
    assert "设备注册代码（最接近的表头：设备编码）" in text
    assert "统一社会信用代码（最接近的表头：使用单位信用编号）" in text
    assert "按设备台账缺少必填列" in text
    assert "没有一列是已知的表头" in reasons["far.csv"]["reason"]
    assert reasons["far.csv"]["header"] is None and reasons["far.csv"]["advice"]
    assert ingest_exit_code(report) == 2


def test_coordinates_in_degrees_minutes_seconds_are_read(store, tmp_path):
    x, y = f.ZHENGZHOU_JINSHUI
    rows = [f.equipment_rows()[0] for _ in range(5)]
    forms = [(f.dms(x), f.dms(y)),
             (f.dms(x, "°′″"), f.dms(y, "°′″")),
             (f.dms(x, "度分秒"), f.dms(y, "度分秒")),
             (f.dms(x, hemisphere="E"), f.dms(y) + "N"),
             (f"{int(x)}°{(x - int(x)) * 60:.4f}'", f"北纬{int(y)}°{(y - int(y)) * 60:.4f}′")]
    for n, (row, (lon, lat)) in enumerate(zip(rows, forms, strict=True)):
        row[0] = f"3110410105201500010{n}"
        row[5], row[6] = lon, lat
    bad = list(f.equipment_rows()[0])
    bad[0], bad[5] = "31104101052015000199", "113°61'10\""   # row 7: a minute of 61
    path = f.write_equipment_csv(tmp_path / "dms.csv", rows=[*rows, bad])
    report = run(store, [path])
    assert report["inserted"] == 5, report["rejects"]
    eq = store.read("equipment")
    assert all(metres(lon, lat, x, y) < 1.0 for lon, lat in zip(eq["lon"], eq["lat"],
                                                                 strict=True))
    assert {r["row"] for r in report["rejects"]} == {7}
    [reject] = [r for r in report["rejects"] if r["code"] == "bad_number"]
    assert (reject["row"], reject["field"], reject["header"], reject["value"]) == (
        7, "lon", "经度", "113°61'10\"")
    assert "分或秒不小于 60" in reject["reason"] and "十进制度" in reject["advice"]


def test_a_half_coordinate_falls_back_to_the_address_or_is_rejected(store, tmp_path):
    x, y = f.LUOYANG_JIANXI
    rows = [f.equipment_rows()[0] for _ in range(3)]
    for n, row in enumerate(rows):
        row[0] = f"3110410305201500020{n}"
        row[5], row[6], row[7] = "", "", ""
    rows[0][4], rows[0][5] = "河南省洛阳市涧西区建设路10号", x      # row 2: lon only, address
    rows[1][4], rows[1][6] = "河南省洛阳市涧西区建设路12号", y      # row 3: lat only, address
    rows[2][4], rows[2][5] = "", x                                # row 4: lon only, no address
    report = run(store, [f.write_equipment_csv(tmp_path / "half.csv", rows=rows)])
    eq = store.read("equipment").set_index("registration_code")
    assert set(eq.index) == {"31104103052015000200", "31104103052015000201"}
    assert (eq["county_adcode"] == "410305").all() and (eq["geocode_precision"] == "county").all()
    assert (eq["flags"] == "half_coordinate_geocoded").all()
    flagged = by_row(report, "half.csv", "flags")
    assert set(flagged) == {(2, "lon"), (3, "lat")}
    assert flagged[(2, "lon")]["code"] == "half_coordinate_geocoded"
    assert "只有一个坐标，已按地址定位到区县" in flagged[(2, "lon")]["reason"]
    assert flagged[(3, "lat")]["header"] == "纬度"
    assert {(r["row"], r["field"], r["code"]) for r in report["rejects"]} == {
        (4, "lat", "half_coordinate")}


def test_a_rejected_row_carries_no_flag(store, tmp_path):
    rows = f.equipment_rows()
    rows[9][8] = "去年"          # row 11: swapped coordinates (a flag), now a bad date too
    rows[11][2] = f.bad_credit(f.UNIT_B)   # row 13: geocoded by address, now a bad code
    report = run(store, [f.write_equipment_csv(tmp_path / "eq.csv", rows=rows)])
    rejected = {r["row"] for r in report["rejects"]}
    assert {11, 13} <= rejected
    assert not {fl["row"] for fl in report["flags"]} & rejected
    assert report["flagged"] == 0 and report["by_flag"] == {}


def test_strict_writes_nothing_when_anything_is_rejected(store, files, tmp_path):
    before = store.data_version()
    report = run(store, [files["equipment"]], strict=True)
    assert report["strict"] and not report["written"] and report["loaded"] == 0
    assert report["inserted"] == 0 and report["rejected"] == len(f.EXPECTED_EQUIPMENT_REJECTS)
    assert "nothing was written" in report["note"]
    assert store.data_version() == before
    assert len(store.read("equipment")) == 0 and len(store.read("rejects")) == 0
    assert any(line.startswith("严格模式") for line in summary_lines(report))
    assert ingest_exit_code(report) == 2
    # a file refused is a reject too
    good = f.write_equipment_csv(tmp_path / "good.csv", rows=f.equipment_rows()[:3])
    refused = tmp_path / "refused.xlsx"
    refused.write_bytes(b"PK\x03\x04 not really a workbook")
    report = run(store, [good, refused], strict=True)
    assert not report["written"] and store.data_version() == before
    report = run(store, [good], strict=True)   # nothing rejected: written as usual
    assert report["written"] and report["loaded"] == 3 and report["inserted"] == 3
    assert ingest_exit_code(report) == 0


def test_exit_codes(store, files, tmp_path):
    good = f.write_equipment_csv(tmp_path / "good.csv", rows=f.equipment_rows()[:3])
    assert ingest_exit_code(run(store, [good])) == 0           # every row loaded
    report = run(store, [files["equipment"]])
    assert report["loaded"] == len(f.GOOD_EQUIPMENT)
    assert ingest_exit_code(report) == 1                       # some rows rejected
    bad_rows = [r for n, r in enumerate(f.equipment_rows(), start=2)
                if n in f.EXPECTED_EQUIPMENT_REJECTS and n != 12]
    all_bad = f.write_equipment_csv(tmp_path / "bad.csv", rows=bad_rows)
    report = run(store, [all_bad])
    assert report["loaded"] == 0 and ingest_exit_code(report) == 2   # nothing loaded
    empty = f.write_equipment_csv(tmp_path / "empty.csv", rows=[])
    assert ingest_exit_code(run(store, [empty])) == 2                # no rows
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("a,b\n1,2\n", encoding="utf-8")
    assert ingest_exit_code(run(store, [good, unknown])) == 2       # a file refused


def test_every_reason_and_flag_has_advice():
    for code in (*Reason, *Flag, *FILE_CODES):
        assert advice(code), code
    assert advice("bad_choice", "venues", "kind").startswith("允许的取值：商场、车站")
    assert advice("out_of_range", "units", "five_have_score") == "请填写 0–5 之间的整数"
    assert advice("missing", "hazards", "found_on") == "请填写「发现日期」"
    assert "十进制度" in advice("bad_number", "units", "lat")


# the reject workbook --------------------------------------------------------------------------

def read_workbook(path) -> dict[str, pd.DataFrame]:
    return pd.read_excel(path, sheet_name=None, engine="calamine", dtype=object)


def test_the_reject_workbook_round_trips(store, tmp_path):
    x, y = f.ZHENGZHOU_JINSHUI
    source = clerk_file(tmp_path)
    report = run(store, [source])
    book = tmp_path / "rejects.xlsx"
    assert write_reject_workbook(report, book) == len(f.EXPECTED_EQUIPMENT_REJECTS)
    [(name, sheet)] = read_workbook(book).items()
    assert name == "县级导出"
    assert list(sheet.columns) == ["拒收原因", "行号", *f.CLERK_HEADERS, "备注"]
    assert sheet["行号"].astype(int).tolist() == sorted(f.EXPECTED_EQUIPMENT_REJECTS)
    row8 = sheet[sheet["行号"] == 8].iloc[0]
    assert row8["投入使用日期"] == "2021-13-45" and row8["备注"] == "县局导出"
    assert "投入使用日期：日期无法识别" in row8["拒收原因"]
    assert "YYYY-MM-DD" in row8["拒收原因"]
    # the clerk fixes every rejected row in the workbook and ingests it again
    fixed = sheet.set_index("行号", drop=False)
    fixed.loc[5, "设备代码"] = "31104101052015000005"
    fixed.loc[6, "使用单位统一社会信用代码"] = f.UNIT_A
    fixed.loc[7, "设备品种"] = "3110"
    fixed.loc[8, "投入使用日期"] = "2021-03-05"
    fixed.loc[[9, 10], "东经"] = str(x)
    fixed.loc[10, "北纬"] = str(y)
    fixed.loc[12, "设备代码"] = "31104101052015000012"
    fixed.loc[14, "地址"] = "河南省洛阳市涧西区某某路88号"
    fixed.loc[16, "坐标系统"] = "WGS84"
    again = tmp_path / "fixed.xlsx"
    fixed.to_excel(again, index=False)
    report = run(store, [again])
    assert report["rejected"] == 0, report["rejects"]
    assert report["inserted"] == len(f.EXPECTED_EQUIPMENT_REJECTS)
    assert report["files"][0]["ignored_columns"] == ["拒收原因", "行号", "备注"]
    assert len(store.read("equipment")) == len(f.GOOD_EQUIPMENT) + len(
        f.EXPECTED_EQUIPMENT_REJECTS)


def test_formula_looking_values_stay_text_in_the_workbook(store, tmp_path):
    rows = f.equipment_rows()[:2]
    rows[1][3] = '=HYPERLINK("http://evil.example/","点我")'
    rows[1][8] = "@SUM(1+1)"       # and a bad date, so the row is rejected
    rows[1][5] = "-113.686"        # text that looks like a negative number stays as written
    report = run(store, [f.write_equipment_csv(tmp_path / "eq.csv", rows=rows)])
    book = tmp_path / "rejects.xlsx"
    write_reject_workbook(report, book)
    with zipfile.ZipFile(book) as zf:
        sheets = [n for n in zf.namelist() if n.startswith("xl/worksheets/sheet")]
        xml = "".join(zf.read(n).decode() for n in sheets)
        strings = zf.read("xl/sharedStrings.xml").decode()
    assert "<f>" not in xml and "<f " not in xml
    assert "=HYPERLINK(" in strings and "@SUM(1+1)" in strings
    sheet = read_workbook(book)["eq"]
    assert sheet.loc[0, "使用单位名称"] == '=HYPERLINK("http://evil.example/","点我")'
    assert sheet.loc[0, "经度"] == "-113.686"


def test_a_refused_file_is_a_note_in_the_workbook_and_the_cap_is_told(store, tmp_path,
                                                                       monkeypatch):
    monkeypatch.setattr(pipeline, "REJECTED_ROWS_LIMIT", 4)
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("a,b\n1,2\n", encoding="utf-8")
    eq = f.write_equipment_csv(tmp_path / "设备台账.csv")
    report = run(store, [eq, unknown])
    assert report["rejected_rows_capped"]
    assert any("拒收行超过 4 行" in line for line in summary_lines(report))
    book = tmp_path / "rejects.xlsx"
    assert write_reject_workbook(report, book) == 4
    sheets = read_workbook(book)
    assert list(sheets) == ["设备台账", "unknown"]
    listed = sheets["设备台账"]
    assert listed["行号"].dropna().astype(int).tolist() == [5, 6, 7, 8]
    assert "另有 5 行拒收未列出" in listed["拒收原因"].iloc[-1]
    [note] = sheets["unknown"]["拒收原因"].tolist()
    assert note.startswith("整个文件被拒") and "没有一列是已知的表头" in note


def test_the_demo_county_export_is_reported_under_its_own_headers(store, demo_files):
    out, manifest = demo_files
    names = ["设备台账.csv", "设备台账_县级导出.csv", "设备台账_补录.xlsx"]
    report = run(store, [out / n for n in names])
    [(file, [row])] = manifest["bad_rows"]["duplicate_across_files"]["rows"].items()
    dup = by_row(report, file)[(row, "registration_code")]
    assert dup["header"] == "设备代码" and dup["code"] == "duplicate"
    lines = summary_lines(report)
    assert any(x.strip().startswith("设备代码 (registration_code)") for x in lines)
    assert any("设备名称" in x for x in lines[lines.index(next(
        x for x in lines if x.startswith("未导入的列"))):])
    book = out.parent / "demo_rejects.xlsx"
    assert write_reject_workbook(report, book) == report["rejected"]
    sheets = read_workbook(book)
    county = sheets["设备台账_县级导出"]
    assert county.columns[2] == "设备代码" and county["行号"].astype(int).tolist() == [row]
