"""Query and path parameters of the routes that read layers, declared once: the layer id,
the common layer filters (a dependency, ``Annotated[LayerFilters, Depends()]``), the paging
links, and :func:`known_query`, which refuses parameters a route does not declare. A bad
value is a 400 (:class:`BadParameter`) naming the parameter and what it takes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Path, Query, Request

from data.catalogue import TOP_CATEGORIES
from geo.regions import LEVEL_ZH, UnknownRegion, resolve_region
from layers.frames import LEVELS
from layers.registry import ALL, LayerSpec
from service.errors import BadParameter, NotFound, bilingual
from service.messages import PATTERNS
from service.scope import region_conditions
from service.store.query import Condition

GEOJSON = "application/geo+json"
LAYER_ID = Annotated[str, Path(pattern=r"^[a-z][a-z\-]{1,40}$", description="图层编号")]
INDUSTRIES = set("ABCDEFGHIJKLMNOPQRST") | {"未知"}
_CODE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
# each filter: its Chinese name and the layer fields it filters (the first the layer has)
FILTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "level": ("风险等级", ("level", "max_level")),
    "category": ("设备种类代码", ("top_category", "dominant_category")),
    "industry": ("行业门类", ("industry",)),
    "park": ("园区编号", ("park_id",)),
    "resolution": ("H3 分辨率", ("resolution",)),
}


def one_of(zh_name: str, name: str, choices: Iterable[object],
           zh_choices: Iterable[object] | None = None) -> BadParameter:
    """A 400 saying parameter ``name`` (``zh_name`` in Chinese) takes one of ``choices``
    (in Chinese ``zh_choices``, e.g. codes with their names)."""
    en = [str(c) for c in choices]
    zh = [str(c) for c in zh_choices] if zh_choices is not None else en
    return BadParameter(bilingual(f"{zh_name}（{name}）须为 {'、'.join(zh)} 之一",
                                  f"{name} must be one of {', '.join(en)}"))


def spec_of(layer: str) -> LayerSpec:
    """The layer of an id, or a 404 listing the layer ids."""
    spec = ALL.get(layer)
    if spec is None:
        raise NotFound(bilingual(f"没有图层 {layer}：图层编号（layer）须为 {'、'.join(ALL)} 之一",
                                 f"no layer {layer}: layer must be one of {', '.join(ALL)}"))
    return spec


@dataclass(frozen=True)
class LayerFilters:
    """The filters every layer reader takes. Each needs a field the layer has (400 if the
    layer has none); the caller's scope is ANDed in by :mod:`service.selection`."""

    level: Annotated[str | None, Query(description="风险等级 red/orange/yellow/blue")] = None
    category: Annotated[str | None, Query(description="设备种类代码，如 3000")] = None
    industry: Annotated[str | None, Query(description="行业门类 A–T")] = None
    adcode: Annotated[str | None, Query(
        description="行政区划代码：省 410000 或 41、市 410100 或 4101、区县 410105",
        max_length=6)] = None
    park: Annotated[str | None, Query(description="园区编号")] = None

    def conditions(self, spec: LayerSpec, resolution: int | None = None
                   ) -> tuple[Condition, ...]:
        """The query conditions of these filters on ``spec`` (and of an H3 ``resolution``
        for cell layers, which each route takes with its own bounds)."""
        out: list[Condition] = []
        if self.level is not None:
            if self.level not in LEVELS:
                raise one_of("风险等级", "level", LEVELS)
            out.append(Condition(column(spec, "level"), "eq", (self.level,)))
        if self.category is not None:
            if self.category not in TOP_CATEGORIES:
                raise one_of("设备种类代码", "category", TOP_CATEGORIES,
                             (f"{c}（{n}）" for c, n in TOP_CATEGORIES.items()))
            out.append(Condition(column(spec, "category"), "eq", (self.category,)))
        if self.industry is not None:
            if self.industry not in INDUSTRIES:
                raise BadParameter(bilingual(
                    "行业门类（industry）须为 GB/T 4754 门类字母 A–T 或 未知",
                    "industry must be a GB/T 4754 section letter A–T, or 未知 (unknown)"))
            out.append(Condition(column(spec, "industry"), "eq", (self.industry,)))
        if self.adcode is not None:
            out.extend(adcode_conditions(spec, self.adcode))
        if self.park is not None:
            if not _CODE.match(self.park):
                zh, en = PATTERNS[_CODE.pattern]
                raise BadParameter(bilingual(f"园区编号（park）{self.park!r} 格式不正确：须为 {zh}",
                                             f"park {self.park!r} is malformed: expected {en}"))
            out.append(Condition(column(spec, "park"), "eq", (self.park.upper(),)))
        if resolution is not None:
            out.append(Condition(column(spec, "resolution"), "eq", (resolution,)))
        return tuple(out)


def column(spec: LayerSpec, name: str) -> str:
    """The field of ``spec`` that filter ``name`` filters, or a 400 naming the filters the
    layer takes."""
    fields = set(spec.field_names)
    zh, columns = FILTERS[name]
    found = next((c for c in columns if c in fields), None)
    if found is None:
        taken = [f for f, (_, cs) in FILTERS.items() if fields & set(cs)]
        if region_conditions(spec, "410000", "province") is not None:  # any admin code
            taken.append("adcode")
        listed = ", ".join(taken) or "—"
        raise BadParameter(bilingual(
            f"图层 {spec.id}（{spec.title}）不支持按{zh}（{name}）筛选；该图层可用的筛选参数："
            f"{'、'.join(taken) or '无'}",
            f"layer {spec.id} cannot be filtered by {name}; its filters: {listed}"))
    return found


FILTER_PARAMS = frozenset(LayerFilters.__dataclass_fields__)


def adcode_conditions(spec: LayerSpec, code: str,
                      provinces: list[str] | tuple[str, ...] | None = None
                      ) -> tuple[Condition, ...]:
    """The conditions of an ``adcode`` filter on ``spec``: the region the code names (6
    digits or a prefix, :func:`geo.regions.resolve_region`); a 400 naming the code when it
    names no loaded region, or when the layer cannot be restricted to it."""
    try:
        region = resolve_region(code, provinces)
    except UnknownRegion as exc:
        raise BadParameter(exc.named("行政区划代码", "adcode")) from None
    where = region_conditions(spec, region.adcode, region.level)
    if where is None:
        raise BadParameter(bilingual(
            f"图层 {spec.id}（{spec.title}）不能按{LEVEL_ZH[region.level]}{region.label}筛选："
            f"行政区划代码（adcode）请填写更高一级（地市或省）的代码",
            f"layer {spec.id} cannot be filtered by the {region.level} {region.adcode}: "
            f"give the adcode of a coarser region (a city or province)"))
    return where


def page_links(request: Request, offset: int, limit: int, returned: int, matched: int,
               *, first: tuple[dict, ...] = ()) -> list[dict]:
    """``self``, then ``first`` (e.g. the collection), then ``next`` and ``prev`` pages
    when there are any; the request's other parameters (filters) travel with them."""
    def at(start: int) -> str:
        return str(request.url.include_query_params(offset=start, limit=limit))

    links = [{"rel": "self", "type": GEOJSON, "title": "本页", "href": str(request.url)},
             *first]
    if offset + returned < matched:
        links.append({"rel": "next", "type": GEOJSON, "title": "下一页",
                      "href": at(offset + limit)})
    if offset > 0:
        links.append({"rel": "prev", "type": GEOJSON, "title": "上一页",
                      "href": at(max(offset - limit, 0))})
    return links


# unknown query parameters -------------------------------------------------------------------

_DECLARED: dict[int, frozenset[str]] = {}


def known_query(request: Request) -> None:
    """A dependency that refuses (400) query parameters the route does not declare, naming
    them and the ones it takes: a misspelt filter must not silently return everything."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    declared = _DECLARED.get(id(route))
    if declared is None:
        declared = _DECLARED[id(route)] = _query_names(dependant)
    check_known(request, declared)


def check_known(request: Request, declared: Iterable[str]) -> None:
    """A 400 naming the query parameters of ``request`` not in ``declared``, and those."""
    taken = sorted(declared)
    unknown = sorted(set(request.query_params) - set(taken))
    if unknown:
        accepted = ", ".join(taken) or "—"
        names = "、".join(unknown)
        raise BadParameter(bilingual(f"不支持的查询参数：{names}；可用参数：{accepted}",
                                     f"unknown query parameter(s): {', '.join(unknown)}; "
                                     f"accepted: {accepted}"))


def _query_names(dependant: Any) -> frozenset[str]:
    """The query parameters a route declares, its dependencies' included."""
    names: set[str] = set()
    stack = [dependant]
    while stack:
        current = stack.pop()
        names.update(getattr(p, "alias", None) or p.name for p in current.query_params)
        stack.extend(current.dependencies)
    return frozenset(names)
