"""Why a row was rejected (or flagged): one code, a Chinese and an English reason, and
what the clerk should do about it (``advice``, Chinese)."""

from __future__ import annotations

from enum import StrEnum

from data.schema import SCHEMAS, Field, FieldType, Kind


class Reason(StrEnum):
    MISSING = "missing"
    MISSING_COLUMN = "missing_column"  # told once per file and field, rows counted
    BAD_CREDIT_CODE = "bad_credit_code"
    UNKNOWN_CATEGORY = "unknown_category"
    BAD_DATE = "bad_date"
    BAD_NUMBER = "bad_number"
    OUT_OF_RANGE = "out_of_range"
    BAD_CHOICE = "bad_choice"
    BAD_BOOL = "bad_bool"
    COORD_RANGE = "coord_range"
    OUTSIDE_REGION = "outside_region"
    HALF_COORDINATE = "half_coordinate"
    UNKNOWN_DATUM = "unknown_datum"
    NO_LOCATION = "no_location"
    UNGEOCODABLE = "ungeocodable"
    DUPLICATE = "duplicate"
    UNKNOWN_EQUIPMENT = "unknown_equipment"
    UNKNOWN_UNIT = "unknown_unit"
    BAD_GEOMETRY = "bad_geometry"
    BAD_CELL = "bad_cell"
    UNKNOWN_ADCODE = "unknown_adcode"
    BAD_DATE_ORDER = "bad_date_order"
    MALFORMED_ROW = "malformed_row"
    FUTURE_DATE = "future_date"
    OUT_OF_SCOPE = "out_of_scope"
    BAD_TRANSITION = "bad_transition"
    CONFLICT = "conflict"
    TOO_MANY_CELLS = "too_many_cells"


class Flag(StrEnum):
    """Fixed but worth telling: the row is loaded and carries the flag."""

    LONLAT_SWAPPED = "lonlat_swapped"
    GEOCODED_COUNTY = "geocoded_county"
    HALF_COORDINATE_GEOCODED = "half_coordinate_geocoded"


REASONS: dict[str, tuple[str, str]] = {
    Reason.MISSING: ("缺少必填字段", "missing required field"),
    Reason.MISSING_COLUMN: ("文件缺少必需的列", "the file lacks a needed column"),
    Reason.BAD_CREDIT_CODE: ("统一社会信用代码格式或校验码错误",
                             "unified social credit code malformed or check character wrong"),
    Reason.UNKNOWN_CATEGORY: ("设备类别不在特种设备目录中",
                              "category not in the equipment catalogue"),
    Reason.BAD_DATE: ("日期无法识别", "unparseable date"),
    Reason.BAD_NUMBER: ("数值无法识别", "not a number"),
    Reason.OUT_OF_RANGE: ("数值超出允许范围", "value out of the allowed range"),
    Reason.BAD_CHOICE: ("取值不在允许范围内", "value not one of the allowed choices"),
    Reason.BAD_BOOL: ("是/否字段无法识别", "yes/no value not recognised"),
    Reason.COORD_RANGE: ("经纬度超出有效范围", "coordinates out of range"),
    Reason.OUTSIDE_REGION: ("坐标不在已加载的省级行政区范围内",
                            "point outside the loaded province boundaries"),
    Reason.HALF_COORDINATE: ("经度和纬度只填写了一个", "only one of longitude and latitude given"),
    Reason.UNKNOWN_DATUM: ("坐标系无法识别（应为 WGS84/CGCS2000/GCJ02/BD09）",
                           "unknown datum (expected WGS84/CGCS2000/GCJ02/BD09)"),
    Reason.NO_LOCATION: ("既无坐标也无地址", "neither coordinates nor address"),
    Reason.UNGEOCODABLE: ("地址无法定位到区县", "address cannot be placed in a county"),
    Reason.DUPLICATE: ("编号在本次导入中重复", "duplicate key within the input"),
    Reason.UNKNOWN_EQUIPMENT: ("引用的设备注册代码不存在", "refers to unknown equipment"),
    Reason.UNKNOWN_UNIT: ("引用的使用单位不存在", "refers to unknown using unit"),
    Reason.BAD_GEOMETRY: ("几何图形缺失或无效", "geometry missing or invalid"),
    Reason.BAD_CELL: ("H3 网格编码无效", "invalid H3 cell"),
    Reason.UNKNOWN_ADCODE: ("行政区划代码不在已加载的边界中",
                            "adcode not in the loaded boundaries"),
    Reason.BAD_DATE_ORDER: ("日期先后顺序不合理", "dates out of order"),
    Reason.MALFORMED_ROW: ("字段个数与表头不符，整行无法读取",
                           "wrong number of fields: the row cannot be read"),
    Reason.FUTURE_DATE: ("日期晚于今天", "date is later than today"),
    Reason.OUT_OF_SCOPE: ("不在您的管辖范围内，不能由您导入或修改",
                          "outside the uploader's scope: not theirs to load or change"),
    Reason.BAD_TRANSITION: ("隐患状态变更不符合闭环流程（已登记 → 整改中 → 已销号）",
                            "hazard status change not allowed (已登记 → 整改中 → 已销号)"),
    Reason.CONFLICT: ("与库中较新的记录冲突，未覆盖", "conflicts with a newer stored record; "
                      "not overwritten"),
    Reason.TOO_MANY_CELLS: ("网格员的网格单元过多", "too many grid cells for one officer"),
    Flag.LONLAT_SWAPPED: ("经纬度疑似填反，已自动交换",
                          "longitude/latitude apparently swapped; fixed"),
    Flag.GEOCODED_COUNTY: ("无坐标，按地址定位到区县代表点",
                           "no coordinates; placed at the county's representative point"),
    Flag.HALF_COORDINATE_GEOCODED: ("只有一个坐标，已按地址定位到区县",
                                    "only one coordinate given; placed at the county of the "
                                    "address"),
}


KINDS = frozenset(k.value for k in Kind)
# Codes of a whole file refused (row 0, field "(file)"); their reason text comes with the
# refusal (service/ingest/read.py), their advice from here.
FILE_CODES = ("not_found", "too_large", "bad_encoding", "bad_format", "bad_table",
              "content_mismatch", "too_expanded", "crs_url", "no_geometry", "unknown_kind")

DECIMAL_DEGREES = "请使用十进制度，如 113.625；度分秒的分、秒须小于 60，如 113°37'30\""

# What the clerk should do, per code (Chinese). ``advice`` makes some of them specific to
# the field: the allowed values of a choice, the range of a number, the column to fill in.
ADVICE: dict[str, str] = {
    Reason.MISSING: "请填写该必填列",
    Reason.MISSING_COLUMN: ("请把文件中对应的列改名为模板的表头（中文名、登记表名称或别名均可），"
                            "或补上该列"),
    Reason.BAD_CREDIT_CODE: "请核对 18 位统一社会信用代码（营业执照上的代码），注意最后一位校验码",
    Reason.UNKNOWN_CATEGORY: ("请填写《特种设备目录》中的类别代码或名称，"
                              "如 3110 或 曳引驱动乘客电梯"),
    Reason.BAD_DATE: "请使用 YYYY-MM-DD 格式，如 2024-03-01",
    Reason.BAD_NUMBER: "请填写数字，如 12 或 3.5，不带单位",
    Reason.OUT_OF_RANGE: "请填写允许范围内的数值",
    Reason.BAD_CHOICE: "请填写允许的取值之一",
    Reason.BAD_BOOL: "请填写 是 或 否（也可 Y/N、1/0、已投保/未投保）",
    Reason.COORD_RANGE: "请填写十进制度经纬度，如 113.62, 34.75",
    Reason.OUTSIDE_REGION: ("请核对经纬度和坐标系（WGS84/CGCS2000/GCJ02/BD09）；"
                            "辖区外的设备不在此导入"),
    Reason.HALF_COORDINATE: "请同时填写经度和纬度，或都留空并填写含区县的详细地址",
    Reason.UNKNOWN_DATUM: "坐标系请填 WGS84、CGCS2000、GCJ02 或 BD09（高德为 GCJ02，百度为 BD09）",
    Reason.NO_LOCATION: "请填写经纬度，或含省、市、区县的详细地址",
    Reason.UNGEOCODABLE: "请在地址中写明省、市、区县（如 河南省郑州市金水区…），或填写经纬度",
    Reason.DUPLICATE: "删除重复行或改用唯一编号",
    Reason.UNKNOWN_EQUIPMENT: "请核对设备注册代码，或先导入该设备的设备台账",
    Reason.UNKNOWN_UNIT: "请核对统一社会信用代码，或先导入该使用单位",
    Reason.BAD_GEOMETRY: "请在 GIS 软件中修复或补画多边形后重新导出",
    Reason.BAD_CELL: "请填写有效的 H3 网格编码（分辨率 5 至导入分辨率），或改填负责区县代码",
    Reason.UNKNOWN_ADCODE: "请填写已加载省份内的 6 位区县行政区划代码，如 410105",
    Reason.BAD_DATE_ORDER: "请核对日期先后：销号日期和整改期限不早于发现日期",
    Reason.MALFORMED_ROW: "请检查该行的逗号和引号，使字段个数与表头一致",
    Reason.FUTURE_DATE: "请核对日期：不能晚于今天",
    Reason.OUT_OF_SCOPE: "该行不在您的管辖范围内，请交所属地区的监管人员导入",
    Reason.BAD_TRANSITION: ("请按 已登记 → 整改中 → 已销号 逐步变更；"
                            "销号须填销号日期、验收人和整改情况"),
    Reason.CONFLICT: "库中记录较新：请先在系统中核对该记录，再决定是否修改",
    Reason.TOO_MANY_CELLS: "请减少该网格员的网格单元，或改填负责区县代码",
    Flag.LONLAT_SWAPPED: "请在原表中改正经纬度的顺序",
    Flag.GEOCODED_COUNTY: "如需精确位置，请补填经纬度",
    Flag.HALF_COORDINATE_GEOCODED: "请补全经度和纬度以精确定位，或删去不全的坐标",
    "not_found": "请检查文件路径",
    "too_large": "请拆分为几个较小的文件分别导入",
    "bad_encoding": "请另存为 UTF-8 或 GBK 编码的 CSV，或另存为 XLSX",
    "bad_format": "请另存为 CSV、XLSX、GeoJSON 或 GeoPackage",
    "bad_table": "请用 Excel 或 WPS 打开，另存为 XLSX 或 CSV（第一行为表头）",
    "content_mismatch": "文件内容与扩展名不符：请按实际格式另存后再导入",
    "too_expanded": "请拆分为几个较小的文件分别导入",
    "crs_url": "请在 GeoJSON 中写明坐标系名称（如 EPSG:4490），或删去 crs 成员",
    "no_geometry": "属性表请以 CSV 或 XLSX 提交；园区、场所请提交带多边形的 GeoJSON 或 GeoPackage",
    "unknown_kind": "请按上述补齐或改正表头（中文名、英文名或别名均可），或指定文件类型（--kind）",
}


def reason_text(code: str) -> tuple[str, str]:
    return REASONS[code]


def _number(x: float) -> str:
    return f"{x:g}" if x < 1e6 else f"{x:,.0f}"


def advice(code: str, kind: str | None = None, field: str | None = None,
           header: str | None = None, closest: str | None = None) -> str:
    """What to do about ``code`` (Chinese), specific to the kind's field where it helps
    (``header``: the field's column as the file names it; ``closest``: for a column the file
    lacks, the file's header closest to it)."""
    schema = SCHEMAS[Kind(kind)] if kind in KINDS else ()
    f = next((f for f in schema if f.name == field), None)
    if f is not None and code == Reason.MISSING_COLUMN:
        return _missing_column_advice(f, closest)
    if f is not None:
        if code == Reason.BAD_CHOICE and f.choices:
            return "允许的取值：" + "、".join(f.choices)
        if code == Reason.OUT_OF_RANGE and f.min is not None and f.max is not None:
            whole = "整数" if f.type == FieldType.INT else "数值"
            return f"请填写 {_number(f.min)}–{_number(f.max)} 之间的{whole}"
        if code == Reason.BAD_NUMBER and f.name in ("lon", "lat"):
            return DECIMAL_DEGREES
        if code == Reason.BAD_NUMBER and f.type == FieldType.INT:
            return "请填写整数，如 3，不带单位"
        if code == Reason.MISSING:
            return f"请填写「{header or f.zh}」"
    return ADVICE.get(code, "")


def _missing_column_advice(f: Field, closest: str | None) -> str:
    """Rename the file's closest header to the field's name (the national form's name where
    it has one), or add the column."""
    name = f.form or f.zh
    told = (f"请将列「{closest}」改名为「{name}」" if closest
            else f"请在文件中加上「{name}」一列（或把对应的列改名为「{name}」）")
    if f.name == "address":
        told += "，或加上经度、纬度两列"
    elif f.name == "cells":
        told += "，或加上「负责区县代码」一列"
    return told
