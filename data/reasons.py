"""Why a row was rejected (or flagged): one code, a Chinese and an English reason."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    MISSING = "missing"
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


REASONS: dict[str, tuple[str, str]] = {
    Reason.MISSING: ("缺少必填字段", "missing required field"),
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
}


def reason_text(code: str) -> tuple[str, str]:
    return REASONS[code]
