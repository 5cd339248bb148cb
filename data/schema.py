"""Canonical input schema of registry exports: kinds, fields, Chinese and English headers.

One table per kind. Each field has a canonical English name (the column name in the
store and the API), the Chinese header that bureau systems export, the header of the
national registration form where it differs (``form``: 特种设备使用登记表, TSG 08-2017
《特种设备使用管理规则》, and the exports of the national special-equipment information
system), common aliases, a type and whether it is required. ``docs/data.md`` documents
the same table.

Headers are compared after :func:`header_keys`: NFKC (full-width → half-width), no white
space, no required-field markers (``*``, ``★``), ASCII case ignored, and, failing that,
without a trailing unit or format in brackets (``经度(°)``, ``纬度（度）``,
``下次检验日期(年月日)``, ``高度[m]``, ``【必填】``).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
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
    form: str = ""  # the national registration form's header, where it differs from zh
    # a file with several columns for the field: a row that leaves the preferred one empty
    # takes the next it fills (the catalogue's 品种, else 类别, else 种类)
    filled: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        """Every header the field is known by, most preferred first: when a file has two
        columns for one field, the one earlier here is read and the other ignored."""
        return (self.name, self.zh, *((self.form,) if self.form else ()), *self.aliases)


# Where a piece of equipment stands. 使用单位地址 is the using unit's address, often in
# another county than its equipment (a property company, a group's head office), so it
# comes last: a file's 使用单位地址 column is read only when the file has no column for
# the equipment's own place, and a row whose 设备使用地点 is empty is never placed there.
EQUIPMENT_ADDRESS = ("设备使用地点", "使用地点", "设备地点", "设备地址", "设备所在地",
                     "设备所在地址", "安装地点", "安装地址", "安装位置", "设备安装地点",
                     "详细地址", "地址", "使用单位地址", "单位地址")
UNIT_ADDRESS = ("使用单位地址", "单位详细地址", "详细地址", "地址", "使用地址", "办公地址",
                "经营地址", "注册地址", "住所")
COORDINATES = (
    Field("lon", "经度", FieldType.FLOAT,
          aliases=("lng", "long", "longitude", "x", "东经", "经度坐标", "坐标经度", "设备经度",
                   "gps经度")),
    Field("lat", "纬度", FieldType.FLOAT,
          aliases=("latitude", "y", "北纬", "纬度坐标", "坐标纬度", "设备纬度", "gps纬度")),
    Field("crs", "坐标系", FieldType.DATUM,
          aliases=("datum", "坐标系统", "坐标系类型", "坐标类型", "坐标体系", "大地坐标系")),
)
CREDIT_CODE = ("使用单位统一社会信用代码", "单位统一社会信用代码", "使用单位信用代码",
               "使用单位社会信用代码", "社会信用代码", "信用代码")


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
        # 设备代码 (TSG 08-2017) and the older 设备注册代码 are both the 20-character code;
        # 使用登记证编号 (梯11豫A00001(18)) is the certificate's number, not the equipment's
        Field("registration_code", "设备注册代码", FieldType.CODE, True, form="设备代码",
              aliases=("注册代码", "登记代码", "设备注册登记代码")),
        # the catalogue's 种类 > 类别 > 品种: the finest a row gives is read (a boiler's
        # 品种 is empty: 1100 承压蒸汽锅炉 is a 类别 with no 品种)
        Field("category_code", "设备类别代码", FieldType.CATEGORY, True, filled=True,
              aliases=("设备品种代码", "品种代码", "设备品种", "设备类别", "设备种类", "设备类型",
                       "品种", "类别", "category")),
        Field("unit_credit_code", "统一社会信用代码", FieldType.CREDIT_CODE, True,
              form="使用单位统一社会信用代码", aliases=(*CREDIT_CODE[1:], "使用单位代码")),
        Field("unit_name", "使用单位名称", aliases=("使用单位", "单位名称", "使用单位全称")),
        Field("address", "使用地址", form="设备使用地点", aliases=EQUIPMENT_ADDRESS[1:]),
        *COORDINATES,
        Field("commissioned_on", "投用日期", FieldType.DATE, form="投入使用日期",
              aliases=("投用时间", "投入使用时间", "启用日期", "使用日期")),
        Field("last_inspected_on", "上次检验日期", FieldType.DATE,
              aliases=("最近检验日期", "最近一次检验日期", "上次定期检验日期", "上次检验时间",
                       "检验日期")),
        Field("next_inspection_due", "下次检验日期", FieldType.DATE,
              aliases=("下次定期检验日期", "下次检验时间", "下检日期")),
        Field("inspection_conclusion", "检验结论", FieldType.ENUM, choices=CONCLUSIONS,
              aliases=("定期检验结论", "检验结果")),
        Field("status", "设备状态", FieldType.ENUM, choices=EQUIPMENT_STATUS,
              aliases=("使用状态", "设备使用状态", "状态")),
        Field("insured", "是否投保", FieldType.BOOL,
              aliases=("是否投保责任保险", "投保", "责任保险")),
        # the registration form's 使用场所 (住宅、办公楼、商场、学校、医院、车站、宾馆、工厂…):
        # what the exposure E of the grading reads (layers/risk.py)
        Field("use_place", "设备使用场所", form="使用场所", aliases=("使用场所类别",)),
    ),
    Kind.UNITS: (
        Field("credit_code", "统一社会信用代码", FieldType.CREDIT_CODE, True,
              aliases=CREDIT_CODE),
        Field("name", "单位名称", required=True,
              aliases=("使用单位名称", "使用单位", "企业名称", "单位全称")),
        Field("industry", "行业门类", FieldType.ENUM, choices=INDUSTRIES,
              aliases=("所属行业", "行业类别", "行业")),
        Field("size", "企业规模", FieldType.ENUM, choices=UNIT_SIZES, aliases=("单位规模", "规模")),
        Field("address", "单位地址", form="使用单位地址", aliases=UNIT_ADDRESS[1:]),
        *COORDINATES,
        Field("five_have_score", "五有得分", FieldType.INT, min=0, max=5),
        Field("blacklisted", "黑名单", FieldType.BOOL, aliases=("是否黑名单", "是否列入黑名单")),
        Field("accidents_3y", "近三年事故数", FieldType.INT, min=0, max=1000,
              aliases=("近三年事故次数",)),
    ),
    Kind.HAZARDS: (
        Field("hazard_id", "隐患编号", FieldType.CODE, True, aliases=("隐患代码",)),
        Field("registration_code", "设备注册代码", FieldType.CODE, True, form="设备代码",
              aliases=("注册代码",)),
        Field("found_on", "发现日期", FieldType.DATE, True,
              aliases=("发现时间", "排查日期", "排查时间")),
        Field("level", "隐患等级", FieldType.ENUM, True, choices=HAZARD_LEVELS,
              aliases=("隐患级别",)),
        Field("description", "隐患描述", aliases=("隐患内容",)),
        Field("status", "状态", FieldType.ENUM, True, choices=HAZARD_STATUS,
              aliases=("隐患状态", "整改状态")),
        Field("deadline", "整改期限", FieldType.DATE, aliases=("整改期限日期", "整改时限")),
        Field("closed_on", "销号日期", FieldType.DATE, aliases=("销号时间",)),
        Field("verified_by", "验收人", aliases=("销号验收人", "核查人")),
        Field("evidence", "整改情况", aliases=("整改措施", "销号依据", "整改说明")),
    ),
    Kind.CHECKS: (
        Field("check_id", "检查编号", FieldType.CODE, True, aliases=("检查记录编号",)),
        Field("credit_code", "统一社会信用代码", FieldType.CREDIT_CODE, True,
              aliases=("被检查单位统一社会信用代码", *CREDIT_CODE)),
        Field("checked_on", "检查日期", FieldType.DATE, True, aliases=("检查时间",)),
        Field("officer_id", "检查人员编号", FieldType.CODE, aliases=("网格员编号", "执法人员编号")),
        Field("result", "检查结果", aliases=("检查结论",)),
    ),
    Kind.PARKS: (
        Field("park_id", "园区编号", FieldType.CODE, True, aliases=("园区代码",)),
        Field("name", "园区名称", required=True),
        Field("kind", "园区类型", aliases=("类型",)),
        Field("crs", "坐标系", FieldType.DATUM, aliases=("datum", "坐标系统")),
    ),
    Kind.VENUES: (
        Field("venue_id", "场所编号", FieldType.CODE, True, aliases=("场所代码",)),
        Field("name", "场所名称", required=True),
        Field("kind", "场所类型", FieldType.ENUM, True, choices=VENUE_KINDS, aliases=("类型",)),
        Field("daily_visitors", "日均客流", FieldType.INT, min=0, max=10_000_000,
              aliases=("日均人流量", "日客流量")),
        Field("crs", "坐标系", FieldType.DATUM, aliases=("datum", "坐标系统")),
    ),
    Kind.OFFICERS: (
        Field("officer_id", "网格员编号", FieldType.CODE, True),
        Field("name", "姓名", required=True, aliases=("网格员姓名",)),
        Field("cells", "网格单元", FieldType.CELLS, aliases=("H3网格", "h3_cells")),
        Field("county_adcode", "负责区县代码", FieldType.CODE, aliases=("区县代码", "adcode")),
        Field("phone", "联系电话", aliases=("手机号码", "手机", "电话", "联系方式")),
    ),
}

# Headers of the national registration form and registry exports that no stored field
# holds: recognised as such (not mistaken for another field) and listed as ignored.
NOT_STORED = ("使用登记证编号", "设备名称", "设备型号", "产品编号", "制造单位名称", "制造日期",
              "单位内编号", "安全管理员", "安全管理负责人", "产权单位名称")

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


MARKERS = "*★☆※"  # required-field marks of templates, before or after a header
# a trailing group in brackets of any kind (after NFKC: () [] {} and the CJK 【】〔〕〈〉《》)
TRAILING_BRACKETS = re.compile(r"[(\[{【〔〈《][^()\[\]{}【】〔〕〈〉《》]*[)\]}】〕〉》]$")


def _plain(header: object) -> str:
    """NFKC, no white space, no markers or colon at either end, ASCII letters in lower case."""
    text = "".join(unicodedata.normalize("NFKC", str(header)).split())
    return text.strip(MARKERS + ":").lower()


def header_keys(header: object) -> tuple[str, str]:
    """The two forms a header is compared by: as written (normalised), and without any
    trailing unit or format in brackets (``经度(°)`` → ``经度``, ``下次检验日期(年月日)`` →
    ``下次检验日期``). A name with brackets of its own matches by the first."""
    full = bare = _plain(header)
    while (cut := TRAILING_BRACKETS.sub("", bare)) != bare and cut.strip(MARKERS):
        bare = cut.strip(MARKERS)
    return full, bare


def header_map(kind: Kind) -> dict[str, tuple[str, int]]:
    """Normalised header (Chinese, English, form name or alias) -> (canonical field name,
    rank: 0 for the field's English name, then in the order of ``Field.names``)."""
    out: dict[str, tuple[str, int]] = {}
    for f in SCHEMAS[kind]:
        for rank, h in enumerate(f.names):
            out.setdefault(header_keys(h)[0], (f.name, rank))
    return out


def header_columns(kind: Kind, headers: list[str]) -> dict[str, list[str]]:
    """Canonical name -> the file's headers for it, the preferred first: a header matches
    as written, else without its trailing brackets, and is preferred by the place of its
    name in ``Field.names``, then matched as written, then first in the file."""
    lookup = header_map(kind)
    found: dict[str, list[tuple[int, int, int, str]]] = {}
    for at, h in enumerate(headers):
        for exact, key in enumerate(dict.fromkeys(header_keys(h))):
            if key in lookup:
                canonical, rank = lookup[key]
                found.setdefault(canonical, []).append((rank, exact, at, h))
                break
    return {canonical: [c[3] for c in sorted(choices)] for canonical, choices in found.items()}


def match_headers(kind: Kind, headers: list[str]) -> dict[str, str]:
    """Map the source headers of a file onto canonical names for ``kind``, in the file's
    order; unknown dropped. Of two headers for one field the preferred one
    (:func:`header_columns`) is read and the other left unmatched, unless the field is
    ``filled`` from them (:func:`filled_from`)."""
    chosen = {hs[0]: canonical for canonical, hs in header_columns(kind, headers).items()}
    return {h: chosen[h] for h in headers if h in chosen}


def filled_from(kind: Kind, headers: list[str]) -> dict[str, list[str]]:
    """For the fields of ``kind`` whose value a row may take from a second column when it
    leaves the first empty (``Field.filled``): canonical name -> the file's other headers
    for it, in order of preference, where it has more than one."""
    filled = {f.name for f in SCHEMAS[kind] if f.filled}
    return {canonical: hs[1:] for canonical, hs in header_columns(kind, headers).items()
            if canonical in filled and len(hs) > 1}


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
# national-form headers that mean something else: never offered as a field's column
_NOT_STORED = frozenset(header_keys(h)[1] for h in NOT_STORED)


def closest_header(f: Field, headers: list[str]) -> str | None:
    """The header most like one of the field's names (difflib, on the headers without
    their brackets), if any is close enough."""
    names = [header_keys(h)[1] for h in f.names]
    best, score = None, CLOSE_ENOUGH
    for h in headers:
        norm = header_keys(h)[1]
        if not norm or norm in _NOT_STORED:
            continue
        ratio = max(difflib.SequenceMatcher(None, norm, n).ratio() for n in names)
        if ratio >= score:
            best, score = h, ratio
    return best


def needed_fields(kind: Kind) -> tuple[Field, ...]:
    """Fields a row may be rejected without: the required ones, the location of a point
    kind (lon and lat, or address) and an officer's cells. When the file has no column for
    one, the rejects say so once for the file (``missing_column``)."""
    extra = {"lon", "lat", "address"} if kind in POINT_KINDS else (
        {"cells"} if kind == Kind.OFFICERS else set())
    return tuple(f for f in SCHEMAS[kind]
                 if f.name in extra or f in required_fields(kind))


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
        closest = {f.name: c for f in missing
                   if (c := closest_header(f, unmatched)) is not None}
        out.append(KindGuess(kind, mapping, missing, closest))
    return out


def field_of(kind: Kind, name: str) -> Field:
    for f in SCHEMAS[kind]:
        if f.name == name:
            return f
    raise KeyError(name)
