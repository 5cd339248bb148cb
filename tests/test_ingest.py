"""Ingest end to end on hand-made files, against both stores (the ``store`` fixture)."""

from __future__ import annotations

import json

import h3
import numpy as np
import pytest

from service.ingest.pipeline import IngestOptions, ingest
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
