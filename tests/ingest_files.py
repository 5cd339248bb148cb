"""Hand-made registry files for ingest tests: small, with answers checkable by hand."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from data.credit_code import with_check_character
from geo.datum import wgs84_to_bd09, wgs84_to_gcj02

# WGS84 points well inside their counties
ZHENGZHOU_JINSHUI = (113.686, 34.786)   # 410105
LUOYANG_JIANXI = (112.398, 34.659)      # 410305
XIAN_YANTA = (108.948, 34.221)          # 610113
BEIJING = (116.397, 39.909)


def credit(prefix17: str) -> str:
    return str(with_check_character(pd.Series([prefix17])).iloc[0])


UNIT_A = credit("91410105MA44AAAA1")
UNIT_B = credit("91410305MA44BBBB2")
UNIT_C = credit("91610113MA6CCCC33")


def bad_credit(code: str) -> str:
    """The same code with a wrong check character."""
    last = code[-1]
    return code[:-1] + ("1" if last != "1" else "2")


EQUIPMENT_HEADERS = ["设备注册代码", "设备类别代码", "统一社会信用代码", "使用单位名称", "使用地址",
                     "经度", "纬度", "坐标系", "投用日期", "上次检验日期", "下次检验日期",
                     "检验结论",
                     "设备状态", "是否投保"]


def equipment_rows() -> list[list[object]]:
    """Rows (after the header: row 2 onward) with the expected outcome in the comment."""
    zx, zy = ZHENGZHOU_JINSHUI
    gx, gy = wgs84_to_gcj02(np.array([zx]), np.array([zy]))
    bx, by = wgs84_to_bd09(np.array([zx]), np.array([zy]))
    return [
        # row 2: good elevator, WGS84
        ["31104101052015000001", "3110", UNIT_A, "甲公司", "", zx, zy, "WGS84", "2015-03-05",
         "2025-03-01", "2026-03-01", "合格", "在用", "是"],
        # row 3: good, GCJ02 coordinates of the same place, Chinese date format
        ["31104101052015000002", "电梯", UNIT_A, "甲公司", "", gx[0], gy[0], "GCJ02",
         "2015年3月5日", "2025/3/1", "20260301", "合格", "在用", "否"],
        # row 4: good, BD09, full-width date
        ["41104101052016000003", "4110", UNIT_A, "甲公司", "", bx[0], by[0], "BD09",
         "２０１６年１月２日", "2025-06-01", "2027-06-01", "基本合格", "在用", ""],
        # row 5: missing registration code
        ["", "3110", UNIT_A, "甲公司", "", zx, zy, "", "2015-03-05", "", "", "", "在用", ""],
        # row 6: bad credit code check character
        ["31104101052015000006", "3110", bad_credit(UNIT_A), "甲公司", "", zx, zy, "", "", "", "",
         "", "在用", ""],
        # row 7: unknown category
        ["31104101052015000007", "9999", UNIT_A, "甲公司", "", zx, zy, "", "", "", "", "",
         "在用", ""],
        # row 8: unparseable date
        ["31104101052015000008", "3110", UNIT_A, "甲公司", "", zx, zy, "", "2021-13-45", "", "",
         "", "在用", ""],
        # row 9: coordinates out of range
        ["31104101052015000009", "3110", UNIT_A, "甲公司", "", 250.0, zy, "", "", "", "", "",
         "在用", ""],
        # row 10: outside the loaded provinces (Beijing)
        ["31104101052015000010", "3110", UNIT_A, "甲公司", "", BEIJING[0], BEIJING[1], "", "", "",
         "", "", "在用", ""],
        # row 11: lon/lat swapped: fixed, flagged, loaded
        ["31104101052015000011", "3110", UNIT_B, "乙公司", "", LUOYANG_JIANXI[1],
         LUOYANG_JIANXI[0], "", "", "", "", "", "在用", ""],
        # row 12: duplicate of row 2
        ["31104101052015000001", "3110", UNIT_A, "甲公司", "", zx, zy, "", "", "", "", "", "在用",
         ""],
        # row 13: address only, placed at the county
        ["31104103052015000013", "3110", UNIT_B, "乙公司", "河南省洛阳市涧西区建设路10号", "", "",
         "", "", "", "", "", "在用", ""],
        # row 14: address that cannot be placed
        ["31104103052015000014", "3110", UNIT_B, "乙公司", "某某路88号", "", "", "", "", "", "", "",
         "在用", ""],
        # row 15: good, Shaanxi
        ["31106101132019000015", "曳引驱动乘客电梯", UNIT_C, "丙公司", "", XIAN_YANTA[0],
         XIAN_YANTA[1], "CGCS2000", "44260", "", "", "复检合格", "停用", "是"],
        # row 16: unknown datum
        ["31104101052015000016", "3110", UNIT_A, "甲公司", "", zx, zy, "Beijing54", "", "", "", "",
         "在用", ""],
    ]


EXPECTED_EQUIPMENT_REJECTS = {  # row -> (field, reason code)
    5: ("registration_code", "missing"),
    6: ("unit_credit_code", "bad_credit_code"),
    7: ("category_code", "unknown_category"),
    8: ("commissioned_on", "bad_date"),
    9: ("lon", "coord_range"),
    10: ("lon", "outside_region"),
    12: ("registration_code", "duplicate"),
    14: ("address", "ungeocodable"),
    16: ("crs", "unknown_datum"),
}
GOOD_EQUIPMENT = {"31104101052015000001", "31104101052015000002", "41104101052016000003",
                  "31104101052015000011", "31104103052015000013", "31106101132019000015"}


# The same columns as a county system exports them: schema aliases, not the Chinese names
CLERK_HEADERS = ["设备代码", "设备品种", "使用单位统一社会信用代码", "使用单位", "地址", "东经",
                 "北纬", "坐标系统", "投入使用日期", "检验日期", "下次检验日期", "检验结论", "状态",
                 "投保"]


def write_equipment_csv(path: Path, encoding: str = "utf-8", rows=None,
                        headers: list[str] | None = None) -> Path:
    frame = pd.DataFrame(rows if rows is not None else equipment_rows(),
                         columns=headers or EQUIPMENT_HEADERS)
    frame.to_csv(path, index=False, encoding=encoding)
    return path


def dms(value: float, marks: str = "°'\"", hemisphere: str = "") -> str:
    """Decimal degrees written as degrees, minutes and seconds (``marks``: the three signs),
    e.g. 113.625 -> 113°37'30\"."""
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round((value - degrees - minutes / 60) * 3600, 2)
    d, m, s = marks
    return f"{hemisphere}{degrees}{d}{minutes}{m}{seconds:g}{s}"


def write_units_csv(path: Path) -> Path:
    frame = pd.DataFrame([
        [UNIT_A, "甲公司", "K", "大型", "", ZHENGZHOU_JINSHUI[0], ZHENGZHOU_JINSHUI[1], 5, "否", 0],
        [UNIT_B, "乙公司", "C", "小型", "河南省洛阳市涧西区建设路10号", "", "", 3, "否", 1],
        [UNIT_C, "丙公司", "h", "微型", "", XIAN_YANTA[0], XIAN_YANTA[1], 4, "是", 0],
        [bad_credit(UNIT_C), "丁公司", "Z", "巨型", "", "", "", 9, "也许", -1],
    ], columns=["统一社会信用代码", "单位名称", "行业门类", "企业规模", "单位地址", "经度", "纬度",
                "五有得分", "黑名单", "近三年事故数"])
    frame.to_csv(path, index=False, encoding="utf-8")
    return path


def write_hazards_csv(path: Path) -> Path:
    frame = pd.DataFrame([
        ["YH2025001", "31104101052015000001", "2025-05-01", "重大", "制动器磨损超标", "整改中",
         "2025-06-01", ""],
        ["YH2025002", "31104101052015000002", "2025-05-02", "一般", "门锁回路短接", "已销号",
         "2025-06-01", "2025-05-20"],
        ["YH2025003", "99999999999999999999", "2025-05-03", "一般", "未知设备", "已登记", "", ""],
        ["YH2025004", "31104101052015000001", "", "一般", "缺发现日期", "已登记", "", ""],
    ], columns=["隐患编号", "设备注册代码", "发现日期", "隐患等级", "隐患描述", "状态", "整改期限",
                "销号日期"])
    frame.to_csv(path, index=False, encoding="utf-8")
    return path


def write_checks_csv(path: Path) -> Path:
    frame = pd.DataFrame([
        ["JC001", UNIT_A, "2025-09-01", "W001", "符合"],
        ["JC002", credit("91410105MA44YYYY9"), "2025-09-02", "W001", "责令整改"],
    ], columns=["检查编号", "统一社会信用代码", "检查日期", "检查人员编号", "检查结果"])
    frame.to_csv(path, index=False, encoding="utf-8")
    return path


def square(lon: float, lat: float, half: float) -> shapely.Polygon:
    return shapely.box(lon - half, lat - half, lon + half, lat + half)


def write_parks_geojson(path: Path) -> Path:
    """Two parks digitised on AMap (GCJ-02): one around Zhengzhou Jinshui, one in Beijing."""
    zx, zy = ZHENGZHOU_JINSHUI
    features = []
    for pid, name, (x, y) in (("YQ001", "金水科技园", (zx, zy)), ("YQ002", "京外园区", BEIJING)):
        ring = np.array(square(x, y, 0.01).exterior.coords)
        gx, gy = wgs84_to_gcj02(ring[:, 0], ring[:, 1])
        features.append({"type": "Feature", "properties": {
            "园区编号": pid, "园区名称": name, "园区类型": "高新技术产业开发区", "坐标系": "GCJ02"},
            "geometry": {"type": "Polygon", "coordinates": [np.column_stack([gx, gy]).tolist()]}})
    features.append({"type": "Feature", "properties": {"园区编号": "YQ003", "园区名称": "无图形",
                                                       "坐标系": "GCJ02"}, "geometry": None})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features},
                               ensure_ascii=False), encoding="utf-8")
    return path


def write_venues_gpkg(path: Path) -> Path:
    zx, zy = ZHENGZHOU_JINSHUI
    gdf = gpd.GeoDataFrame({
        "场所编号": ["CS001", "CS002"], "场所名称": ["金水商场", "大剧院"],
        "场所类型": ["商场", "太空站"],
        "日均客流": [30000, 100]},
        geometry=[square(zx, zy, 0.002), square(zx + 0.05, zy, 0.002)], crs=4326)
    gdf.to_file(path, layer="venues", driver="GPKG")
    return path


def write_officers_csv(path: Path, cell: str) -> Path:
    frame = pd.DataFrame([
        ["W001", "张伟", cell, "", ""],
        ["W002", "李娜", "", "410305", ""],
        ["W003", "王芳", "not-a-cell", "", ""],
        ["W004", "赵磊", "", "", ""],
    ], columns=["网格员编号", "姓名", "网格单元", "负责区县代码", "联系电话"])
    frame.to_csv(path, index=False, encoding="utf-8")
    return path


# A registry export under the headers of the national registration form (特种设备使用登记表,
# TSG 08-2017) and the national information system: units and formats in brackets, a
# template's required-field mark, and columns no stored field holds.
REGISTRY_HEADERS = ["序号", "*设备代码", "设备种类", "设备类别", "设备品种", "设备名称", "设备型号",
                    "产品编号", "制造单位名称", "使用登记证编号", "使用单位名称", "使用单位地址",
                    "使用单位统一社会信用代码", "设备使用地点", "单位内编号", "安全管理员",
                    "投入使用日期", "下次检验日期(年月日)", "检验结论", "使用状态", "经度(°)",
                    "纬度（度）", "坐标系"]
REGISTRY_NOT_STORED = ["序号", "设备名称", "设备型号", "产品编号", "制造单位名称", "使用登记证编号",
                       "使用单位地址", "单位内编号", "安全管理员"]
ZHENGZHOU_UNIT_ADDRESS = "河南省郑州市金水区花园路1号"
LUOYANG_PLACE = "河南省洛阳市涧西区建设路10号"


def registry_rows() -> list[list[object]]:
    """Four pieces, every one valid; the expected county and category in the comment."""
    zx, zy = ZHENGZHOU_JINSHUI
    gx, gy = wgs84_to_gcj02(np.array([XIAN_YANTA[0]]), np.array([XIAN_YANTA[1]]))
    return [
        # row 2: a passenger elevator with WGS84 coordinates: 410105, 3110
        [1, "31104101052018000101", "电梯", "曳引与强制驱动电梯", "曳引驱动乘客电梯", "乘客电梯",
         "TKJ1000/1.75-JXW", "2018-0101", "某电梯有限公司", "梯11豫A00101(18)", "甲公司",
         ZHENGZHOU_UNIT_ADDRESS, UNIT_A, "河南省郑州市金水区花园路1号1号楼", "1#梯", "张三",
         "2018-06-01", "2026年6月1日", "合格", "在用", f"{zx}°", f"{zy}", "WGS84"],
        # row 3: no coordinates; it stands in Luoyang while its unit sits in Zhengzhou:
        # placed by 设备使用地点 in 410305, not by 使用单位地址
        [2, "31104103052018000102", "电梯", "曳引与强制驱动电梯", "曳引驱动载货电梯", "载货电梯",
         "THJ2000/0.5", "2018-0102", "某电梯有限公司", "梯12豫C00102(18)", "甲公司",
         ZHENGZHOU_UNIT_ADDRESS, UNIT_A, LUOYANG_PLACE, "2#梯", "张三", "2018/7/1", "20260701",
         "基本合格", "在用", "", "", ""],
        # row 4: a boiler, whose catalogue entry is a 类别 with no 品种: 1100; GCJ-02 in Xi'an
        [3, "11006101132019000103", "锅炉", "承压蒸汽锅炉", "", "蒸汽锅炉", "DZL4-1.25-AII",
         "G2019-03", "某锅炉有限公司", "锅陕A00103(19)", "丙公司", "陕西省西安市雁塔区", UNIT_C,
         "陕西省西安市雁塔区小寨路5号", "1#炉", "李四", "2019.3.5", "2025年10月8日", "合格",
         "停用", gx[0], gy[0], "GCJ02"],
        # row 5: a crane, coordinates in degrees and minutes: 410305, 4210
        [4, "42104103052020000104", "起重机械", "门式起重机", "通用门式起重机", "门式起重机",
         "MH10-20A3", "Q2020-04", "某起重机有限公司", "起豫C00104(20)", "乙公司",
         LUOYANG_PLACE, UNIT_B, "河南省洛阳市涧西区南昌路3号", "3#", "王五", "2020-09-30",
         "2026-09-30", "合格", "在用", dms(LUOYANG_JIANXI[0]), dms(LUOYANG_JIANXI[1]), ""],
    ]


REGISTRY_EXPECTED = {  # code -> (county, category code, geocode precision)
    "31104101052018000101": ("410105", "3110", "exact"),
    "31104103052018000102": ("410305", "3120", "county"),
    "11006101132019000103": ("610113", "1100", "exact"),
    "42104103052020000104": ("410305", "4210", "exact"),
}


def write_registry(path: Path, rows=None, headers: list[str] | None = None,
                   encoding: str = "utf-8-sig") -> Path:
    """The registry export as CSV (``encoding``) or, by the suffix, XLSX."""
    frame = pd.DataFrame(rows if rows is not None else registry_rows(),
                         columns=headers or REGISTRY_HEADERS)
    if path.suffix == ".xlsx":
        frame.to_excel(path, index=False)
    else:
        frame.to_csv(path, index=False, encoding=encoding)
    return path
