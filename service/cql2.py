"""CQL2 filters (OGC API – Features Part 3) → the stores' filter expressions.

A ``filter`` in CQL2 text or CQL2 JSON is parsed with pygeofilter (what pygeoapi uses) and
turned into the small expression tree of :mod:`service.store.query`, which both stores
evaluate (pandas masks, or SQL with bound parameters). Only a layer's queryables may be
named, each value must have its property's type, and only the operators listed in
:data:`SUPPORTED` are taken: anything else is a 400 naming the property, the position or
the reason. Values never become SQL text: they are bound parameters or mask operands.

Gaps of pygeofilter's CQL2 text grammar are closed here: ``AND`` binds tighter than ``OR``
(pygeofilter reads them left to right), ``NOT`` takes any condition, not just one
predicate, property names may have one letter (the LEC fields ``L``, ``E``, ``C``, ``D``),
and a quote doubled inside a text literal is one quote (``'O''Brien'``). Its CQL2 JSON
reader is given ``between`` with three arguments and a ``bbox`` as ``[minx, miny, maxx,
maxy]`` as the standard writes them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import shapely
from lark import Lark, UnexpectedEOF, UnexpectedInput, UnexpectedToken, v_args
from pygeofilter import ast, values
from pygeofilter.parsers.cql2_json.parser import walk_cql_json
from pygeofilter.parsers.cql2_text import parser as text_parser

from layers.registry import LayerSpec
from service.errors import BadParameter, bilingual
from service.store.query import (
    And,
    Between,
    Compare,
    CompareOp,
    Const,
    Expr,
    In,
    Intersects,
    IsNull,
    Like,
    Not,
    Or,
    Scalar,
)

TEXT, JSON = "cql2-text", "cql2-json"
FILTER_LANGS = (TEXT, JSON)
# the names of the Part 3 drafts, which GDAL's OAPIF driver (3.12) still sends: the same
# languages for what a client of the drafts writes (comparisons, AND/OR/NOT, LIKE, IN …)
DRAFT_LANGS = {"cql-text": TEXT, "cql-json": JSON}
MAX_FILTER = 8_000        # characters of a filter (a long IN list or a detailed polygon)
MAX_VERTICES = 2_000      # of a geometry in a filter
GEOMETRY = "geometry"
SUPPORTED = ("=, <>, <, <=, >, >=, AND, OR, NOT, LIKE, IN, BETWEEN, IS NULL, "
             "S_INTERSECTS(geometry, <WKT geometry or BBOX(…)>)")
_OPS: dict[type, CompareOp] = {
    ast.Equal: "=", ast.NotEqual: "<>", ast.LessThan: "<", ast.LessEqual: "<=",
    ast.GreaterThan: ">", ast.GreaterEqual: ">="}
_MIRROR: dict[CompareOp, CompareOp] = {"=": "=", "<>": "<>", "<": ">", "<=": ">=",
                                       ">": "<", ">=": "<="}
# JSON Schema of each field type of the registry
_SCHEMA = {"text": {"type": "string"}, "int": {"type": "integer"},
           "float": {"type": "number"}, "bool": {"type": "boolean"},
           "date": {"type": "string", "format": "date"},
           "timestamp": {"type": "string", "format": "date-time"}}


def _bad(zh: str, en: str) -> BadParameter:
    return BadParameter(bilingual(f"过滤条件（filter）{zh}", f"filter: {en}"))


# the layer's queryables -------------------------------------------------------------------

def queryables(spec: LayerSpec) -> dict[str, str]:
    """The fields a filter or sortby may name, with their type: every published field but
    JSON documents (lists and objects that neither store compares)."""
    return {name: kind for name, kind in spec.fields if kind in _SCHEMA}


def queryable_schema(spec: LayerSpec, url: str, enums: dict[str, list[str]]) -> dict:
    """The queryables of ``spec`` as a JSON Schema (draft 2020-12), as Part 3 asks."""
    labels = spec.field_labels
    props: dict[str, dict] = {}
    for name, kind in queryables(spec).items():
        prop = {"title": labels[name], **_SCHEMA[kind]}
        if name in enums:
            prop["enum"] = enums[name]
        props[name] = prop
    if spec.geometry:
        kind = {"point": "Point", "polygon": "Polygon", "multipolygon": "MultiPolygon"}
        props[GEOMETRY] = {"title": "几何", "format": f"geometry-{kind[spec.geometry].lower()}"
                           if spec.geometry in kind else "geometry-any"}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": url,
            "type": "object", "title": spec.title, "properties": props,
            "additionalProperties": False}


# parsing ---------------------------------------------------------------------------------

_GRAMMAR_FIXES = (  # (pygeofilter 0.4's rule, CQL2's)
    ("""?condition: condition_1
          | condition "AND"i condition_1                                 -> and_
          | condition "OR"i condition_1                                   -> or_

?condition_1: predicate
            | "NOT"i predicate                                               -> not_
            | "NOT"i "(" predicate ")"                                       -> not_
            | "(" condition ")"
""", """?condition: condition_and
          | condition "OR"i condition_and                                -> or_

?condition_and: condition_1
              | condition_and "AND"i condition_1                        -> and_

?condition_1: predicate
            | bool_condition
            | "NOT"i condition_1                                         -> not_
            | "(" condition ")"

bool_condition.2: BOOLEAN
"""),
    ("attribute: /[a-zA-Z][a-zA-Z_:0-9.]+/", "attribute: /[a-zA-Z_][a-zA-Z_:0-9.]*/"),
    ("SINGLE_QUOTED: \"'\" /.*?/ \"'\"", "SINGLE_QUOTED: /'(?:[^']|'')*'/"),
    ('envelope: "ENVELOPE"i "(" number number number number ")"',
     'envelope: "ENVELOPE"i "(" full_number ","? full_number ","? full_number ","? '
     'full_number ")"'),
)


@cache
def _text_parser() -> Lark:
    """pygeofilter's CQL2 text grammar with CQL2's precedence (``AND`` before ``OR``),
    ``NOT`` of any condition (``NOT (a OR b)``), ``TRUE``/``FALSE`` as a condition,
    one-letter names and doubled quotes."""
    folder = Path(text_parser.__file__).parent
    grammar = (folder / "grammar.lark").read_text()
    for old, new in _GRAMMAR_FIXES:
        if old not in grammar:  # a pygeofilter other than the one pinned in pyproject.toml
            raise RuntimeError(f"pygeofilter's CQL2 grammar changed: no {old[:40]!r}")
        grammar = grammar.replace(old, new)
    return Lark(grammar, parser="lalr", maybe_placeholders=False,
                transformer=_Transformer(), import_paths=[str(folder.parent)],
                source_path=str(folder / "grammar.lark"))


@v_args(meta=False, inline=True)
class _Transformer(text_parser.CQLTransformer):
    """pygeofilter's, with doubled quotes read, and without its WKT reader's prints."""

    def SINGLE_QUOTED(self, token: str) -> str:  # the grammar's terminal name
        return token[1:-1].replace("''", "'")

    def bool_condition(self, value: bool) -> bool:
        """``TRUE`` or ``FALSE`` as a whole condition (CQL2's booleanLiteral)."""
        return value

    def wkt__geometry_with_srid(self, srid: Any, geometry: dict) -> dict:
        if str(srid) not in ("4326", "4490"):  # the filter-crs says the rest
            raise ValueError(f"SRID={str(srid)[:12]}: use filter-crs (CRS84 or EPSG:4490)")
        return geometry

    def wkt__multipoint_2(self, *coordinates: Any) -> dict:
        return {"type": "MultiPoint", "coordinates": coordinates}


def _position(exc: UnexpectedInput, text: str) -> BadParameter:
    column = getattr(exc, "column", None)
    where_zh = f"第 {column} 个字符处" if isinstance(column, int) and column > 0 else "末尾"
    where_en = f"at character {column}" if isinstance(column, int) and column > 0 \
        else "at the end"
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken)
                                          and exc.token.type == "$END"):
        where_zh, where_en = "末尾", "at the end"
        found = "意外结束"
        found_en = "it ends too early"
    else:
        near = text[max(0, (column or 1) - 1):][:20]
        found, found_en = f"无法识别“{near}”", f"cannot read {near!r}"
    return _bad(f"（cql2-text）{where_zh}有误：{found}；支持的运算：{SUPPORTED}",
                f"malformed CQL2 text {where_en}: {found_en}; supported: {SUPPORTED}")


def _standard_json(node: Any) -> Any:
    """CQL2 JSON as the standard writes it, into what pygeofilter's reader expects."""
    if isinstance(node, list):
        return [_standard_json(n) for n in node]
    if not isinstance(node, dict):
        return node
    if node.get("type") == "GeometryCollection" and "geometries" in node:
        return values.Geometry(node)  # (the reader knows geometries by "coordinates")
    if set(node) == {"bbox"} and isinstance(node["bbox"], list):
        box = node["bbox"]
        if len(box) == 6:
            box = [box[0], box[1], box[3], box[4]]
        if len(box) != 4:
            raise ValueError("a bbox takes 4 (or 6) numbers")
        return values.Envelope(box[0], box[2], box[3], box[1])  # west, east, north, south
    out = {k: _standard_json(v) for k, v in node.items()}
    if out.get("op") == "between" and isinstance(out.get("args"), list) \
            and len(out["args"]) == 3:
        out["args"] = [out["args"][0], out["args"][1:]]
    if isinstance(out.get("op"), str):
        out["op"] = {"isnull": "isNull"}.get(out["op"].lower(), out["op"].lower())
    return out


@dataclass(frozen=True)
class _Box:
    """A bounding box literal: (minx, miny, maxx, maxy) in the filter CRS' axis order."""

    numbers: tuple


def _parse_json(text: str) -> Any:
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise _bad(f"（cql2-json）不是合法的 JSON：{exc}",
                   f"malformed CQL2 JSON: {exc}") from None
    try:
        return walk_cql_json(_standard_json(document))
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise _bad(f"（cql2-json）无法解析：{str(exc)[:120]}；支持的运算：{SUPPORTED}",
                   f"cannot read the CQL2 JSON: {str(exc)[:120]}; supported: {SUPPORTED}"
                   ) from None


def parse_filter(text: str | None, lang: str | None, filter_crs_lat_lon: bool,
                 spec: LayerSpec) -> Expr | None:
    """The expression of a ``filter`` in ``lang`` (cql2-text by default) on ``spec``;
    geometries are in ``filter-crs`` axis order (latitude first when ``filter_crs_lat_lon``)."""
    lang = DRAFT_LANGS.get(lang, lang) if lang is not None else None
    if lang is not None and lang not in FILTER_LANGS:
        raise BadParameter(bilingual(
            f"过滤语言（filter-lang）须为 {' 或 '.join(FILTER_LANGS)}，不是 {lang[:40]}",
            f"filter-lang must be {' or '.join(FILTER_LANGS)}, not {lang[:40]}"))
    if text is None:
        return None
    if not text.strip():
        raise _bad("为空", "is empty")
    if len(text) > MAX_FILTER:
        raise _bad(f"过长：至多 {MAX_FILTER} 个字符", f"is longer than {MAX_FILTER} characters")
    if "\x00" in text:
        raise _bad("含空字符（NUL）", "holds a NUL character")
    try:
        if (lang or TEXT) == JSON:
            node = _parse_json(text)
        else:
            try:
                node = _text_parser().parse(text)
            except UnexpectedInput as exc:
                raise _position(exc, text) from None
            except (ValueError, TypeError) as exc:  # a literal the transformer refuses
                raise _bad(f"（cql2-text）含无法读取的值：{str(exc)[:120]}",
                           f"holds a value that cannot be read: {str(exc)[:120]}") from None
        return _Converter(spec, filter_crs_lat_lon).expr(node)
    except RecursionError:
        raise _bad("嵌套过深", "is nested too deeply") from None


# pygeofilter's AST → the stores' expression ----------------------------------------------

class _Converter:
    def __init__(self, spec: LayerSpec, lat_lon: bool) -> None:
        self.spec = spec
        self.fields = queryables(spec)
        self.lat_lon = lat_lon

    def property(self, node: Any) -> str:
        if not isinstance(node, ast.Attribute):
            raise self.unsupported(node)
        name = str(node.name)
        if name not in self.fields:
            shown = name[:64]
            listed = ", ".join(self.fields)
            raise _bad(f"中的属性 {shown} 不可查询：可查询的属性见 queryables（{listed}）",
                       f"property {shown} is not queryable; the queryables: {listed}")
        return name

    def unsupported(self, node: Any) -> BadParameter:
        what = type(node).__name__
        if isinstance(node, ast.Function):
            what = f"函数 {node.name}" if node.name else "函数"
        shown = str(what)[:60]
        return _bad(f"含不支持的运算或取值：{shown}；支持的运算：{SUPPORTED}（只比较属性与常量）",
                    f"unsupported operation or operand: {shown}; supported: {SUPPORTED} "
                    "(a property against literals)")

    def literal(self, name: str, value: Any) -> Scalar:
        """``value`` as the type of property ``name``; a 400 naming it when it is not."""
        kind = self.fields[name]
        ok: Scalar | None = None
        number = isinstance(value, int | float) and not isinstance(value, bool) \
            and _finite(value)
        if (kind == "text" and isinstance(value, str)) or (kind in ("int", "float") and number) \
                or (kind == "bool" and isinstance(value, bool)):
            ok = value
        elif kind in ("date", "timestamp"):
            ok = _instant(value)
        if ok is None:
            expected = {"text": ("文本（单引号括起）", "text in single quotes"),
                        "int": ("整数", "an integer"), "float": ("数值", "a number"),
                        "bool": ("true 或 false", "true or false"),
                        "date": ("日期，如 DATE('2026-01-01')", "a date, e.g. DATE('2026-01-01')"),
                        "timestamp": ("时刻，如 TIMESTAMP('2026-01-01T00:00:00Z')",
                                      "a timestamp, e.g. TIMESTAMP('2026-01-01T00:00:00Z')")}
            zh, en = expected[kind]
            shown = repr(value)[:40]
            raise _bad(f"中属性 {name} 的取值 {shown} 类型不符：须为{zh}",
                       f"the value {shown} does not match the type of property {name}: "
                       f"expected {en}")
        return ok

    def expr(self, node: Any) -> Expr:  # one case a node
        if isinstance(node, ast.And | ast.Or):
            parts: list[Expr] = []
            stack = [node]
            kind = type(node)
            while stack:  # flatten a chain without recursing through it
                current = stack.pop()
                if type(current) is kind:
                    stack.extend([current.rhs, current.lhs])
                else:
                    parts.append(self.expr(current))
            return And(tuple(parts)) if kind is ast.And else Or(tuple(parts))
        if isinstance(node, ast.Not):
            return Not(self.expr(node.sub_node))
        if type(node) in _OPS:
            return self.compare(_OPS[type(node)], node.lhs, node.rhs)
        if isinstance(node, ast.Between):
            name = self.property(node.lhs)
            return Between(name, self.literal(name, node.low), self.literal(name, node.high),
                           node.not_)
        if isinstance(node, ast.Like):
            name = self.property(node.lhs)
            if self.fields[name] != "text" or not isinstance(node.pattern, str):
                raise _bad(f"中 LIKE 只用于文本属性与文本模式（属性 {name}）",
                           f"LIKE takes a text property and a text pattern (property {name})")
            if (len(node.pattern) - len(node.pattern.rstrip("\\"))) % 2:
                raise _bad(f"中属性 {name} 的 LIKE 模式以单个转义符 \\ 结尾",
                           f"the LIKE pattern of property {name} ends with a lone escape \\")
            return Like(name, node.pattern, node.not_)
        if isinstance(node, ast.In):
            name = self.property(node.lhs)
            items = node.sub_nodes if isinstance(node.sub_nodes, list) else [node.sub_nodes]
            if not items:
                raise _bad(f"中 IN 的列表为空（属性 {name}）", f"empty IN list (property {name})")
            return In(name, tuple(self.literal(name, v) for v in items), node.not_)
        if isinstance(node, ast.IsNull):
            return IsNull(self.property(node.lhs), node.not_)
        if isinstance(node, ast.GeometryIntersects):
            lhs, rhs = node.lhs, node.rhs
            if not isinstance(lhs, ast.Attribute):
                lhs, rhs = rhs, lhs
            return self.intersects(lhs, rhs)
        if isinstance(node, ast.BBox):
            return self.intersects(node.lhs, _Box((node.minx, node.miny, node.maxx, node.maxy)))
        if isinstance(node, bool):
            return Const(node)
        raise self.unsupported(node)

    def compare(self, op: CompareOp, lhs: Any, rhs: Any) -> Expr:
        if isinstance(lhs, ast.Attribute) and isinstance(rhs, ast.Attribute):
            raise _bad("不支持比较两个属性：只比较属性与常量",
                       "comparing two properties is not supported: compare a property "
                       "with a literal")
        if isinstance(rhs, ast.Attribute):
            lhs, rhs, op = rhs, lhs, _MIRROR[op]
        if isinstance(lhs, ast.Attribute):
            name = self.property(lhs)
            if isinstance(rhs, ast.Node | values.Geometry | values.Envelope | list):
                raise self.unsupported(rhs)
            return Compare(name, op, self.literal(name, rhs))
        if isinstance(lhs, ast.Node) or isinstance(rhs, ast.Node):
            raise self.unsupported(lhs if isinstance(lhs, ast.Node) else rhs)
        return Const(_constant(op, lhs, rhs))

    def intersects(self, lhs: Any, rhs: Any) -> Expr:
        if not (isinstance(lhs, ast.Attribute) and lhs.name == GEOMETRY and self.spec.geometry):
            raise _bad("中 S_INTERSECTS 的第一个参数须为 geometry（图层须有几何）",
                       "the first argument of S_INTERSECTS must be geometry (of a layer "
                       "with geometries)")
        if isinstance(rhs, ast.Function) and rhs.name.lower() == "bbox":
            rhs = _Box(tuple(rhs.arguments))
        if isinstance(rhs, values.Envelope):  # ENVELOPE(west, east, north, south)
            rhs = _Box((rhs.x1, rhs.y2, rhs.x2, rhs.y1))
        try:
            if isinstance(rhs, _Box):
                numbers = list(rhs.numbers)
                if len(numbers) == 6:
                    numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
                if len(numbers) != 4 or not all(
                        isinstance(v, int | float) and not isinstance(v, bool)
                        for v in numbers):
                    raise ValueError("a bbox takes 4 numbers")
                x0, y0, x1, y1 = (float(v) for v in numbers)
                shape = shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
            elif isinstance(rhs, values.Geometry):
                shape = shapely.geometry.shape(rhs.geometry)
            else:
                raise self.unsupported(rhs)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError,
                shapely.errors.ShapelyError) as exc:
            raise _bad(f"中的几何无法读取：{str(exc)[:80]}",
                       f"cannot read the geometry: {str(exc)[:80]}") from None
        if self.lat_lon:
            shape = shapely.transform(shape, lambda xy: xy[:, ::-1])
        coords = shapely.get_coordinates(shape)
        x0, y0, x1, y1 = shapely.bounds(shape) if len(coords) else (math.nan,) * 4
        if len(coords) > MAX_VERTICES or not (
                -180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90) or \
                not shapely.is_valid(shape):
            order = ("纬度在前（EPSG:4490）", "latitude first (EPSG:4490)") if self.lat_lon \
                else ("经度在前（CRS84）", "longitude first (CRS84)")
            raise _bad(f"中的几何须为有效几何、至多 {MAX_VERTICES} 个顶点，坐标{order[0]}且在"
                       "经度 -180–180、纬度 -90–90 之内",
                       f"a geometry must be valid, of at most {MAX_VERTICES} vertices, with "
                       f"coordinates {order[1]} within longitudes -180–180 and latitudes "
                       "-90–90")
        return Intersects(shapely.to_wkb(shape))


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond any float
        return False


def _instant(value: Any) -> date | datetime | None:
    """A date or a naive UTC datetime of a filter value (DATE, TIMESTAMP or ISO text)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00")) if "T" in value \
                else date.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            try:
                value = value.astimezone(UTC).replace(tzinfo=None)
            except (OverflowError, ValueError):  # beyond year 1 or 9999 in UTC
                return None
        return value
    if isinstance(value, date):
        return value
    return None


def _constant(op: CompareOp, lhs: Any, rhs: Any) -> bool:
    """A comparison of two literals (``1 = 1``), decided now."""
    number = (int, float)
    same = (isinstance(lhs, number) and isinstance(rhs, number)
            and not isinstance(lhs, bool) and not isinstance(rhs, bool)) or \
        type(lhs) is type(rhs)
    if not same or not isinstance(lhs, str | int | float | bool | date):
        raise _bad(f"比较的两个常量类型不同：{repr(lhs)[:30]} 与 {repr(rhs)[:30]}",
                   f"comparing literals of different types: {repr(lhs)[:30]} and "
                   f"{repr(rhs)[:30]}")
    return {"=": lhs == rhs, "<>": lhs != rhs, "<": lhs < rhs, "<=": lhs <= rhs,
            ">": lhs > rhs, ">=": lhs >= rhs}[op]


# datetime (Part 1) -------------------------------------------------------------------------

_OPEN = ("", "..")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def datetime_expr(text: str, field: str, kind: str) -> Expr:
    """The ``datetime`` parameter (an RFC 3339 instant, or an interval ``start/end`` with
    ``..`` or nothing for an open end) as a filter on the layer's temporal ``field``: an
    instant selects that day (a date field) or that moment, an interval its ends included.
    A date field is compared by the UTC dates of the ends."""
    parts = text.split("/")
    bounds: list[date | datetime | None] = []
    for part in parts:
        if part in _OPEN:
            bounds.append(None)
            continue
        value = _instant(part)
        if value is None or (not _DATE_ONLY.match(part) and not isinstance(value, datetime)):
            raise ValueError(part)
        if kind == "date" and isinstance(value, datetime):
            value = value.date()
        bounds.append(value)
    if len(parts) == 1:
        (instant,) = bounds
        return Compare(field, "=", instant)  # type: ignore[arg-type]
    start, end = bounds
    if start is not None and end is not None and start > end:
        raise ValueError(text)
    terms: list[Expr] = []
    if start is not None:
        terms.append(Compare(field, ">=", start))
    if end is not None:
        terms.append(Compare(field, "<=", end))
    return And(tuple(terms))
