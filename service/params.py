"""Query and path parameters of the routes that read layers, declared once: the layer id,
the common layer filters (a dependency, ``Annotated[LayerFilters, Depends()]``) and the
paging links. A bad value is a 400 (:class:`BadParameter`) naming the parameter."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Path, Query, Request

from data.catalogue import TOP_CATEGORIES
from geo.regions import LEVEL_ZH, UnknownRegion, resolve_region
from layers.frames import LEVELS
from layers.registry import ALL, LayerSpec
from service.errors import BadParameter, NotFound
from service.scope import region_conditions
from service.store.query import Condition

GEOJSON = "application/geo+json"
LAYER_ID = Annotated[str, Path(pattern=r"^[a-z][a-z\-]{1,40}$", description="图层编号")]
INDUSTRIES = set("ABCDEFGHIJKLMNOPQRST") | {"未知"}
_CODE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


def spec_of(layer: str) -> LayerSpec:
    """The layer of an id, or 404."""
    spec = ALL.get(layer)
    if spec is None:
        raise NotFound(f"没有图层 {layer}")
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
        fields = set(spec.field_names)
        out: list[Condition] = []

        def column(*names: str, what: str) -> str:
            for name in names:
                if name in fields:
                    return name
            raise BadParameter(f"图层 {spec.id} 不支持按{what}筛选")

        if self.level is not None:
            if self.level not in LEVELS:
                raise BadParameter(f"风险等级须为 {', '.join(LEVELS)} 之一")
            out.append(Condition(column("level", "max_level", what="风险等级"), "eq",
                                 (self.level,)))
        if self.category is not None:
            if self.category not in TOP_CATEGORIES:
                raise BadParameter(f"设备种类代码须为 {', '.join(TOP_CATEGORIES)} 之一")
            out.append(Condition(column("top_category", "dominant_category", what="设备种类"),
                                 "eq", (self.category,)))
        if self.industry is not None:
            if self.industry not in INDUSTRIES:
                raise BadParameter("行业须为 GB/T 4754 门类字母 A–T 或 未知")
            out.append(Condition(column("industry", what="行业"), "eq", (self.industry,)))
        if self.adcode is not None:
            out.extend(adcode_conditions(spec, self.adcode))
        if self.park is not None:
            if not _CODE.match(self.park):
                raise BadParameter("园区编号格式无效")
            out.append(Condition(column("park_id", what="园区"), "eq", (self.park.upper(),)))
        if resolution is not None:
            out.append(Condition(column("resolution", what="网格分辨率"), "eq", (resolution,)))
        return tuple(out)


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
        raise BadParameter(f"adcode：{exc}") from None
    where = region_conditions(spec, region.adcode, region.level)
    if where is None:
        raise BadParameter(f"图层 {spec.id}（{spec.title}）不能按{LEVEL_ZH[region.level]}"
                           f"{region.label}筛选 / layer {spec.id} cannot be filtered by this "
                           f"region")
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
