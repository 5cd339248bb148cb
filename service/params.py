"""Query and path parameters of the routes that read layers, declared once: the layer id,
the common layer filters (a dependency, ``Annotated[LayerFilters, Depends()]``) and the
paging links. A bad value is a 400 (:class:`BadParameter`) naming the parameter."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Path, Query, Request

from data.catalogue import TOP_CATEGORIES
from layers.frames import LEVELS
from layers.registry import ALL, LayerSpec
from service.errors import BadParameter, NotFound
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
    adcode: Annotated[str | None, Query(description="行政区划代码前缀")] = None
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
            if not re.fullmatch(r"\d{2,6}", self.adcode):
                raise BadParameter("行政区划代码前缀须为 2–6 位数字")
            out.append(Condition(column("adcode", "county_adcode", "city_adcode",
                                        "province_adcode", what="行政区划"), "prefix",
                                 (self.adcode,)))
        if self.park is not None:
            if not _CODE.match(self.park):
                raise BadParameter("园区编号格式无效")
            out.append(Condition(column("park_id", what="园区"), "eq", (self.park.upper(),)))
        if resolution is not None:
            out.append(Condition(column("resolution", what="网格分辨率"), "eq", (resolution,)))
        return tuple(out)


FILTER_PARAMS = frozenset(LayerFilters.__dataclass_fields__)


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
