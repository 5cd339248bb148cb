"""Canonical input schema of registry exports: kinds, fields, Chinese and English headers.

One table per kind. Each field has a canonical English name (the column name in the
store and the API), the Chinese header that bureau systems export, a few common
aliases, a type and whether it is required. ``docs/data.md`` documents the same table.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    EQUIPMENT = "equipment"
    UNITS = "units"
    HAZARDS = "hazards"
    CHECKS = "checks"
    PARKS = "parks"
    VENUES = "venues"
    OFFICERS = "officers"


class FieldType(StrEnum):
    TEXT = "text"
    CODE = "code"          # identifier kept verbatim (upper-cased, trimmed)
    CREDIT_CODE = "credit_code"
    CATEGORY = "category"
    FLOAT = "float"
    INT = "int"
    DATE = "date"
    BOOL = "bool"
    ENUM = "enum"
    DATUM = "datum"
    CELLS = "cells"        # list of H3 cells separated by ; , or spaces


@dataclass(frozen=True)
class Field:
    name: str
    zh: str
    type: FieldType = FieldType.TEXT
    required: bool = False
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None


def _loc() -> list[Field]:
    return [
        Field("address", "使用地址", aliases=("地址", "单位地址", "详细地址")),
        Field("lon", "经度", FieldType.FLOAT, aliases=("lng", "longitude", "x", "东经")),
        Field("lat", "纬度", FieldType.FLOAT, aliases=("latitude", "y", "北纬")),
        Field("crs", "坐标系", FieldType.DATUM, aliases=("datum", "坐标系统")),
    ]


CONCLUSIONS = ("合格", "基本合格", "复检合格", "不合格")
EQUIPMENT_STATUS = ("在用", "停用", "报废")
UNIT_SIZES = ("大型", "中型", "小型", "微型")
INDUSTRIES = tuple("ABCDEFGHIJKLMNOPQRST")
HAZARD_LEVELS = ("一般", "重大")
HAZARD_STATUS = ("已登记", "整改中", "已销号")
VENUE_KINDS = ("商场", "车站", "医院", "学校", "幼儿园", "景区", "体育场馆", "游乐场", "客运码头",
               "展览馆", "公园", "机场", "影剧院", "宾馆酒店", "养老机构")
PARK_KINDS = ("经济技术开发区", "高新技术产业开发区", "化工园区", "产业集聚区", "物流园区",
              "综合保税区",
              "工业园区")

SCHEMAS: dict[Kind, tuple[Field, ...]] = {
    Kind.EQUIPMENT: (
        Field("registration_code", "设备注册代码", FieldType.CODE, True,
              aliases=("注册代码", "设备代码", "登记代码")),
        Field("category_code", "设备类别代码", FieldType.CATEGORY, True,
              aliases=("设备类别", "设备品种", "category")),
        Field("unit_credit_code", "统一社会信用代码", FieldType.CREDIT_CODE, True,
              aliases=("使用单位统一社会信用代码", "使用单位代码")),
        Field("unit_name", "使用单位名称", aliases=("使用单位",)),
        *_loc(),
        Field("commissioned_on", "投用日期", FieldType.DATE, aliases=("投入使用日期", "使用日期")),
        Field("last_inspected_on", "上次检验日期", FieldType.DATE, aliases=("检验日期",)),
        Field("next_inspection_due", "下次检验日期", FieldType.DATE),
        Field("inspection_conclusion", "检验结论", FieldType.ENUM, choices=CONCLUSIONS),
        Field("status", "设备状态", FieldType.ENUM, choices=EQUIPMENT_STATUS, aliases=("状态",)),
        Field("insured", "是否投保", FieldType.BOOL, aliases=("投保", "责任保险")),
    ),
    Kind.UNITS: (
        Field("credit_code", "统一社会信用代码", FieldType.CREDIT_CODE, True,
              aliases=("信用代码",)),
        Field("name", "单位名称", required=True, aliases=("使用单位名称", "企业名称")),
        Field("industry", "行业门类", FieldType.ENUM, choices=INDUSTRIES, aliases=("行业",)),
        Field("size", "企业规模", FieldType.ENUM, choices=UNIT_SIZES, aliases=("规模",)),
        Field("address", "单位地址", aliases=("地址", "使用地址", "详细地址")),
        *_loc()[1:],
        Field("five_have_score", "五有得分", FieldType.INT, min=0, max=5),
        Field("blacklisted", "黑名单", FieldType.BOOL, aliases=("是否黑名单",)),
        Field("accidents_3y", "近三年事故数", FieldType.INT, min=0, max=1000),
    ),
    Kind.HAZARDS: (
        Field("hazard_id", "隐患编号", FieldType.CODE, True),
        Field("registration_code", "设备注册代码", FieldType.CODE, True,
              aliases=("注册代码", "设备代码")),
        Field("found_on", "发现日期", FieldType.DATE, True, aliases=("排查日期",)),
        Field("level", "隐患等级", FieldType.ENUM, True, choices=HAZARD_LEVELS,
              aliases=("隐患级别",)),
        Field("description", "隐患描述", aliases=("隐患内容",)),
        Field("status", "状态", FieldType.ENUM, True, choices=HAZARD_STATUS,
              aliases=("隐患状态", "整改状态")),
        Field("deadline", "整改期限", FieldType.DATE, aliases=("整改期限日期",)),
        Field("closed_on", "销号日期", FieldType.DATE),
        Field("verified_by", "验收人", aliases=("销号验收人", "核查人")),
        Field("evidence", "整改情况", aliases=("整改措施", "销号依据", "整改说明")),
    ),
    Kind.CHECKS: (
        Field("check_id", "检查编号", FieldType.CODE, True, aliases=("检查记录编号",)),
        Field("credit_code", "统一社会信用代码", FieldType.CREDIT_CODE, True,
              aliases=("被检查单位统一社会信用代码",)),
        Field("checked_on", "检查日期", FieldType.DATE, True),
        Field("officer_id", "检查人员编号", FieldType.CODE, aliases=("网格员编号", "执法人员编号")),
        Field("result", "检查结果", aliases=("检查结论",)),
    ),
    Kind.PARKS: (
        Field("park_id", "园区编号", FieldType.CODE, True, aliases=("园区代码",)),
        Field("name", "园区名称", required=True),
        Field("kind", "园区类型", aliases=("类型",)),
        Field("crs", "坐标系", FieldType.DATUM, aliases=("datum",)),
    ),
    Kind.VENUES: (
        Field("venue_id", "场所编号", FieldType.CODE, True, aliases=("场所代码",)),
        Field("name", "场所名称", required=True),
        Field("kind", "场所类型", FieldType.ENUM, True, choices=VENUE_KINDS, aliases=("类型",)),
        Field("daily_visitors", "日均客流", FieldType.INT, min=0, max=10_000_000,
              aliases=("日均人流量", "日客流量")),
        Field("crs", "坐标系", FieldType.DATUM, aliases=("datum",)),
    ),
    Kind.OFFICERS: (
        Field("officer_id", "网格员编号", FieldType.CODE, True),
        Field("name", "姓名", required=True, aliases=("网格员姓名",)),
        Field("cells", "网格单元", FieldType.CELLS, aliases=("H3网格", "h3_cells")),
        Field("county_adcode", "负责区县代码", FieldType.CODE, aliases=("区县代码", "adcode")),
        Field("phone", "联系电话", aliases=("电话",)),
    ),
}

# The key of each kind: the identity used for upserts and duplicate detection.
KEYS: dict[Kind, str] = {
    Kind.EQUIPMENT: "registration_code",
    Kind.UNITS: "credit_code",
    Kind.HAZARDS: "hazard_id",
    Kind.CHECKS: "check_id",
    Kind.PARKS: "park_id",
    Kind.VENUES: "venue_id",
    Kind.OFFICERS: "officer_id",
}

# Kinds that carry a polygon geometry read from GeoJSON/GeoPackage, not lon/lat columns.
POLYGON_KINDS = frozenset({Kind.PARKS, Kind.VENUES})
# Kinds that are located by lon/lat (or address) and get H3 cells and adcodes.
POINT_KINDS = frozenset({Kind.EQUIPMENT, Kind.UNITS})

# Chinese titles for user-facing labels.
KIND_TITLES = {
    Kind.EQUIPMENT: "设备台账", Kind.UNITS: "使用单位", Kind.HAZARDS: "隐患",
    Kind.CHECKS: "监督检查记录", Kind.PARKS: "园区", Kind.VENUES: "人员密集场所",
    Kind.OFFICERS: "网格员",
}


@dataclass(frozen=True)
class HeaderMatch:
    kind: Kind
    columns: dict[str, str] = field(default_factory=dict)  # source header -> canonical name


def _norm_header(header: str) -> str:
    return str(header).strip().replace(" ", "").replace("\u3000", "").replace("（", "(").replace(
        "）", ")").lower()


def header_map(kind: Kind) -> dict[str, str]:
    """Normalised header (Chinese, English or alias) -> canonical field name."""
    out: dict[str, str] = {}
    for f in SCHEMAS[kind]:
        for h in (f.name, f.zh, *f.aliases):
            out.setdefault(_norm_header(h), f.name)
    return out


def match_headers(kind: Kind, headers: list[str]) -> dict[str, str]:
    """Map the source headers of a file onto canonical names for ``kind``; unknown dropped."""
    lookup = header_map(kind)
    mapping: dict[str, str] = {}
    for h in headers:
        canonical = lookup.get(_norm_header(h))
        if canonical and canonical not in mapping.values():
            mapping[h] = canonical
    return mapping


def required_fields(kind: Kind) -> tuple[Field, ...]:
    """The fields a file of ``kind`` must have as columns (a polygon's name may come from
    the layer)."""
    return tuple(f for f in SCHEMAS[kind]
                 if f.required and not (kind in POLYGON_KINDS and f.name == "name"))


def detect_kind(headers: list[str]) -> Kind | None:
    """Recognise the kind of a file from its headers: the kind whose required fields all
    match and which matches the most columns wins; ties are broken by specificity."""
    best: tuple[int, int, Kind] | None = None
    for kind in Kind:
        mapping = match_headers(kind, headers)
        names = set(mapping.values())
        required = {f.name for f in required_fields(kind)}
        if not required <= names:
            continue
        score = (len(required), len(names), kind)
        if best is None or score[:2] > best[:2]:
            best = score
    return best[2] if best else None


@dataclass(frozen=True)
class KindGuess:
    """A kind a file of unknown kind may have been meant as, and what it lacks."""

    kind: Kind
    matched: dict[str, str]            # source header -> canonical name
    missing: tuple[Field, ...]         # required fields with no column
    closest: dict[str, str]            # canonical name of a missing field -> closest header


CLOSE_ENOUGH = 0.5  # difflib ratio: 设备编码 ~ 设备代码 is 0.75, unrelated words near 0


def _closest(f: Field, headers: list[str]) -> str | None:
    """The header most like one of the field's names (difflib), if any is close enough."""
    names = [_norm_header(h) for h in (f.zh, f.name, *f.aliases)]
    best, score = None, CLOSE_ENOUGH
    for h in headers:
        norm = _norm_header(h)
        if not norm:
            continue
        ratio = max(difflib.SequenceMatcher(None, norm, n).ratio() for n in names)
        if ratio >= score:
            best, score = h, ratio
    return best


def guess_kind(headers: list[str], most: int = 2) -> list[KindGuess]:
    """For a file ``detect_kind`` cannot place: the likeliest kinds (most required columns
    found, then most columns found; up to ``most`` tied ones), each with its missing required
    columns and, for each, the closest header of the file that matched nothing. Empty when
    no header is recognised at all."""
    scored = []
    for order, kind in enumerate(Kind):
        mapping = match_headers(kind, headers)
        names = set(mapping.values())
        required = required_fields(kind)
        missing = tuple(f for f in required if f.name not in names)
        scored.append(((len(required) - len(missing), len(names)), order, kind, mapping,
                       missing))
    scored.sort(key=lambda s: (-s[0][0], -s[0][1], s[1]))
    top = scored[0][0]
    if top[1] == 0:
        return []
    out = []
    for score, _order, kind, mapping, missing in scored[:most]:
        if score != top:
            break
        unmatched = [h for h in headers if h not in mapping]
        closest = {f.name: c for f in missing if (c := _closest(f, unmatched)) is not None}
        out.append(KindGuess(kind, mapping, missing, closest))
    return out


def field_of(kind: Kind, name: str) -> Field:
    for f in SCHEMAS[kind]:
        if f.name == name:
            return f
    raise KeyError(name)
