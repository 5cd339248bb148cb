"""Writes are scoped like reads (issue 10 §2): a province regulator's upload cannot close,
move or re-point another province's rows, nor give an officer cells outside the provinces;
the valid rows of the same upload still load, and nothing is changed silently."""

from __future__ import annotations

import h3
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import Role, create_user
from service.ingest.officers import max_cells
from service.ingest.pipeline import IngestOptions, ingest
from service.settings import Settings
from service.store import open_store
from tests import ingest_files as f

PEPPER = Settings().token_pepper.get_secret_value()
PROVINCES = ["410000", "610000"]
SHAANXI_PIECE = "31106101132019000015"   # 西安市雁塔区 (610113)
HENAN_PIECE = "31104101052015000001"     # 郑州市金水区 (410105)
HAZARD_HEADERS = ["隐患编号", "设备注册代码", "发现日期", "隐患等级", "隐患描述", "状态",
                  "整改期限", "销号日期", "验收人", "整改情况"]
OFFICER_HEADERS = ["网格员编号", "姓名", "网格单元", "负责区县代码", "联系电话"]
XIAN_CELL = h3.latlng_to_cell(f.XIAN_YANTA[1], f.XIAN_YANTA[0], 8)
ZHENGZHOU_CELL = h3.latlng_to_cell(f.ZHENGZHOU_JINSHUI[1], f.ZHENGZHOU_JINSHUI[0], 8)
PARIS = (2.3522, 48.8566)


def hazards_csv(path, rows) -> str:
    pd.DataFrame(rows, columns=HAZARD_HEADERS).to_csv(path, index=False)
    return str(path)


def officers_csv(path, rows) -> str:
    pd.DataFrame(rows, columns=OFFICER_HEADERS).to_csv(path, index=False)
    return str(path)


def _fill(store, tmp) -> dict:
    """Both provinces loaded by an administrator on the command line: equipment and units,
    an open hazard in each province, an officer in each; the tokens of two users."""
    ingest([str(f.write_equipment_csv(tmp / "eq.csv")),
            str(f.write_units_csv(tmp / "units.csv")),
            hazards_csv(tmp / "hz.csv", [
                ["YH-HN", HENAN_PIECE, "2025-05-01", "重大", "制动器磨损", "整改中", "2025-08-01",
                 "", "", ""],
                ["YH-SX", SHAANXI_PIECE, "2025-05-01", "重大", "钢丝绳断股", "整改中", "2025-08-01",
                 "", "", ""]]),
            officers_csv(tmp / "officers.csv", [
                ["WG-SX", "陕西网格员", XIAN_CELL, "", ""],
                ["WG-HN", "河南网格员", ZHENGZHOU_CELL, "", ""]])],
           store, IngestOptions(provinces=PROVINCES))
    tokens = {}
    for key, role, scope in (("admin", Role.ADMIN, None), ("henan", Role.REGULATOR, "410000")):
        _user, tokens[key] = create_user(store, name=key, role=role, scope=scope,
                                         pepper=PEPPER, provinces=PROVINCES)
    return tokens


@pytest.fixture()
def loaded(filled_store):
    """The service on this test's copy of the store ``_fill`` filled."""
    filled = filled_store(_fill)
    with TestClient(create_app(Settings(store=filled.url))) as client:
        yield client, filled.facts, filled.url


def upload(loaded, who: str, *paths) -> dict:
    client, tokens, _ = loaded
    files = [("files", (p.name, p.read_bytes(), "text/csv")) for p in map(_path, paths)]
    r = client.post("/api/ingest", files=files,
                    headers={"Authorization": f"Bearer {tokens[who]}"})
    assert r.status_code == 200, r.text
    return r.json()


def _path(p):
    from pathlib import Path

    return Path(p)


def rejects_of(report: dict) -> dict[tuple[int, str], str]:
    return {(r["row"], r["field"]): r["code"] for r in report["rejects"]}


def stored(loaded, table: str) -> pd.DataFrame:
    with open_store(loaded[2]) as store:
        return store.read(table)


def test_an_upload_cannot_close_another_provinces_hazard(loaded, tmp_path):
    closing = ["2025-07-01", "李验收", "已更换制动器并复检合格"]
    report = upload(loaded, "henan", hazards_csv(tmp_path / "close.csv", [
        ["YH-HN", HENAN_PIECE, "2025-05-01", "重大", "制动器磨损", "已销号", "2025-08-01",
         *closing],
        ["YH-SX", SHAANXI_PIECE, "2025-05-01", "重大", "钢丝绳断股", "已销号", "2025-08-01",
         *closing]]))
    assert rejects_of(report) == {(3, "registration_code"): "out_of_scope"}
    hazards = stored(loaded, "hazards").set_index("hazard_id")
    assert hazards.loc["YH-SX", "status"] == "整改中"  # untouched
    assert hazards.loc["YH-HN", "status"] == "已销号"  # the valid row loaded
    audit = stored(loaded, "audit")
    assert "YH-SX" not in set(audit.loc[audit["action"] == "hazard.transition", "entity_id"])


def test_an_upload_cannot_point_a_hazard_of_another_province_at_its_own_equipment(loaded,
                                                                                  tmp_path):
    report = upload(loaded, "henan", hazards_csv(tmp_path / "repoint.csv", [
        ["YH-SX", HENAN_PIECE, "2025-05-01", "重大", "钢丝绳断股", "整改中", "2025-08-01",
         "", "", ""]]))
    assert rejects_of(report) == {(2, "hazard_id"): "out_of_scope"}
    assert stored(loaded, "hazards").set_index("hazard_id").loc[
        "YH-SX", "registration_code"] == SHAANXI_PIECE


def test_an_upload_cannot_move_another_provinces_equipment_into_its_own_county(loaded,
                                                                               tmp_path):
    row = next(r for r in f.equipment_rows() if r[0] == SHAANXI_PIECE)
    moved = [*row[:5], *f.ZHENGZHOU_JINSHUI, "WGS84", *row[8:]]
    new = [*moved]
    new[0] = "31104101052015000099"
    report = upload(loaded, "henan", f.write_equipment_csv(tmp_path / "move.csv",
                                                           rows=[moved, new]))
    assert rejects_of(report) == {(2, "registration_code"): "out_of_scope"}
    assert "610113" in next(r["reason"] for r in report["rejects"])  # where the store has it
    eq = stored(loaded, "equipment").set_index("registration_code")
    assert eq.loc[SHAANXI_PIECE, "county_adcode"] == "610113"
    assert eq.loc["31104101052015000099", "county_adcode"] == "410105"  # the valid row


def test_rows_placed_outside_the_uploaders_province_are_out_of_scope(loaded, tmp_path):
    rows = [[*r] for r in f.equipment_rows()]
    rows[13][0] = "31106101132019000077"  # row 15: a new piece in Shaanxi
    report = upload(loaded, "henan", f.write_equipment_csv(tmp_path / "eq2.csv", rows=rows))
    assert rejects_of(report)[(15, "lon")] == "out_of_scope"  # the Shaanxi row
    assert rejects_of(report)[(10, "lon")] == "outside_region"  # Beijing: no province at all
    assert report["updated"] + report["unchanged"] + report["inserted"] == 5


def test_checks_and_positionless_units_of_another_province_are_out_of_scope(loaded, tmp_path):
    checks = tmp_path / "checks.csv"
    pd.DataFrame([["JC-HN", f.UNIT_A, "2025-09-01", "WG-HN", "符合"],
                  ["JC-SX", f.UNIT_C, "2025-09-01", "WG-SX", "符合"]],
                 columns=["检查编号", "统一社会信用代码", "检查日期", "检查人员编号", "检查结果"]
                 ).to_csv(checks, index=False)
    units = tmp_path / "units.csv"
    shaanxi_unit = f.credit("91610113MA6DDDD44")
    pd.DataFrame([[shaanxi_unit, "无坐标的陕西单位", "C", "小型", "", "", ""]],
                 columns=["统一社会信用代码", "单位名称", "行业门类", "企业规模", "单位地址",
                          "经度", "纬度"]).to_csv(units, index=False)
    report = upload(loaded, "henan", checks, units)
    codes = {(r["file"], r["row"]): r["code"] for r in report["rejects"]}
    assert codes == {("checks.csv", 3): "out_of_scope", ("units.csv", 2): "out_of_scope"}
    assert set(stored(loaded, "checks")["check_id"]) == {"JC-HN"}


def test_an_upload_cannot_repoint_another_provinces_officer(loaded, tmp_path):
    report = upload(loaded, "henan", officers_csv(tmp_path / "o.csv", [
        ["WG-SX", "陕西网格员", ZHENGZHOU_CELL, "", ""],
        ["WG-NEW", "新网格员", ZHENGZHOU_CELL, "", ""]]))
    assert rejects_of(report) == {(2, "officer_id"): "out_of_scope"}
    cells = stored(loaded, "officer_cells")
    assert set(cells.loc[cells["officer_id"] == "WG-SX", "h3"]) == {XIAN_CELL}
    assert set(cells.loc[cells["officer_id"] == "WG-NEW", "h3"]) == {ZHENGZHOU_CELL}


def test_officer_cells_outside_the_province_are_out_of_scope(loaded, tmp_path):
    report = upload(loaded, "henan", officers_csv(tmp_path / "o.csv", [
        ["WG-X", "越界网格员", f"{ZHENGZHOU_CELL};{XIAN_CELL}", "", ""],
        ["WG-C", "区县网格员", "", "610113", ""]]))
    assert rejects_of(report) == {(2, "cells"): "out_of_scope", (3, "county_adcode"):
                                  "out_of_scope"}


def test_no_officer_gets_thousands_of_cells_or_cells_abroad(loaded, tmp_path):
    """16,807 cells in Paris came from one resolution-3 cell: only resolutions 5–8 are
    taken, every cell must touch the loaded provinces, and an officer's cells are bounded,
    for the administrator too."""
    paris3 = h3.latlng_to_cell(PARIS[1], PARIS[0], 3)
    paris8 = h3.latlng_to_cell(PARIS[1], PARIS[0], 8)
    zhengzhou5 = h3.cell_to_parent(ZHENGZHOU_CELL, 5)
    many = sorted(h3.grid_disk(zhengzhou5, 5))  # 91 res-5 cells: 31,213 res-8 cells
    assert len(many) * 7 ** 3 > max_cells(8)
    finer = h3.cell_to_children(ZHENGZHOU_CELL, 9)[0]
    report = upload(loaded, "admin", officers_csv(tmp_path / "o.csv", [
        ["WG-P3", "巴黎", paris3, "", ""],
        ["WG-P8", "巴黎", paris8, "", ""],
        ["WG-MANY", "太多", ";".join(many), "", ""],
        ["WG-FINE", "过细", finer, "", ""],
        ["WG-OK", "合格", zhengzhou5, "", ""]]))
    assert rejects_of(report) == {(2, "cells"): "bad_cell", (3, "cells"): "outside_region",
                                  (4, "cells"): "too_many_cells", (5, "cells"): "bad_cell"}
    cells = stored(loaded, "officer_cells")
    assert set(cells["officer_id"]) == {"WG-SX", "WG-HN", "WG-OK"}
    assert (cells["officer_id"] == "WG-OK").sum() == 7 ** 3


def test_the_largest_county_fits_the_officer_bound():
    from geo.boundaries import load_boundaries

    largest = load_boundaries(PROVINCES, "county").to_crs(
        "+proj=aea +lat_1=25 +lat_2=47 +lon_0=105").area.max() / 1e6
    assert largest * 1.5 < max_cells(8) * h3.average_hexagon_area(8, unit="km^2")


def test_a_refused_upload_row_is_kept_in_the_rejects_table(loaded, tmp_path):
    upload(loaded, "henan", hazards_csv(tmp_path / "close.csv", [
        ["YH-SX", SHAANXI_PIECE, "2025-05-01", "重大", "钢丝绳断股", "已销号", "2025-08-01",
         "2025-07-01", "某人", "某证据"]]))
    rejects = stored(loaded, "rejects")
    kept = rejects[rejects["code"] == "out_of_scope"]
    assert len(kept) == 1 and "YH-SX" in kept["raw"].iloc[0]
