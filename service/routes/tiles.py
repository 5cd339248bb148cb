"""``GET /tiles/{layer}/{z}/{x}/{y}.mvt``: each layer as Mapbox vector tiles, scoped.

Tiles are scoped to the caller, so they are ``Cache-Control: private``; the ETag names the
build, the caller's scope conditions and the tile, and ``If-None-Match`` gets a 304 before
anything is read. Not gzipped here: compressing in the app halved throughput (issue 5), a
reverse proxy can do it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from layers.registry import ALL, LayerSpec
from service import mvt, tiles
from service.auth import Caller
from service.deps import CachesDep, StoreDep
from service.errors import BadParameter, NotFound, bilingual
from service.params import LAYER_ID, LayerFilters, spec_of
from service.store.query import Condition

router = APIRouter(tags=["tiles"])


@router.get(
    "/tiles/{layer}/{z}/{x}/{y}.mvt", summary="图层矢量瓦片（MVT）", response_class=Response,
    responses={200: {"content": {mvt.MEDIA_TYPE: {}},
                     "description": "矢量瓦片；范围外为空瓦片"},
               304: {"description": "未修改（If-None-Match 与 ETag 相同）"}})
def tile(
    request: Request, caller: Caller, store: StoreDep, caches: CachesDep, layer: LAYER_ID,
    z: Annotated[int, Path(ge=0, le=mvt.MAX_ZOOM, description="缩放级别")],
    x: Annotated[int, Path(ge=0, description="瓦片列号")],
    y: Annotated[int, Path(ge=0, description="瓦片行号")],
    properties: Annotated[str | None, Query(
        max_length=2000, description="逐行要素携带的属性，逗号分隔；* 为全部字段。"
        "点图层默认只带着色与标注所需的字段")] = None,
    level: Annotated[str | None, Query(
        max_length=200, description="风险等级，逗号分隔：red,orange,yellow,blue")] = None,
    category: Annotated[str | None, Query(
        max_length=200, description="设备种类代码，逗号分隔，如 3000,4000")] = None,
    industry: Annotated[str | None, Query(
        max_length=200, description="行业门类 A–T 或 未知，逗号分隔")] = None,
) -> Response:
    spec = spec_of(layer)
    if spec.geometry is None:
        drawn = [s.id for s in ALL.values() if s.geometry is not None]
        raise NotFound(bilingual(
            f"{spec.id}（{spec.title}）是数据表，没有矢量瓦片：图层编号（layer）须为有几何图形的"
            f"图层 {'、'.join(drawn)} 之一",
            f"{spec.id} is a table without geometry, so it has no vector tiles: layer must be "
            f"one of {', '.join(drawn)}"))
    try:
        address = mvt.Tile.checked(z, x, y)
    except ValueError:
        last = (1 << z) - 1
        raise BadParameter(bilingual(
            f"瓦片坐标超出范围：缩放级别 z={z} 时瓦片列号（x）和行号（y）须在 0–{last} 之间",
            f"tile x and y must be within 0–{last} at zoom z={z}")) from None
    try:
        fields = tiles.tile_fields(spec, properties)
    except ValueError as exc:
        raise BadParameter(str(exc)) from None
    filters = tile_filters(spec, level=level, category=category, industry=industry)
    plan = tiles.plan_tile(caller, spec, store, address, fields, filters)
    build = store.layer_build()
    build_id = build.build_id if build else None
    tag = tiles.etag(plan, address, build_id, store.h3_resolution)
    headers = {"ETag": tag, "Cache-Control": f"private, max-age={tiles.MAX_AGE}",
               "Vary": "Authorization, Cookie"}
    if tiles.matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    body = b"" if build_id is None else tiles.render(store, plan, address, build_id,
                                                     caches.tiles)
    return Response(body, media_type=mvt.MEDIA_TYPE, headers=headers)


MAX_FILTER_VALUES = 25  # more than every level, category or industry there is


def tile_filters(spec: LayerSpec, **given: str | None) -> tuple[Condition, ...]:
    """The conditions of the tile filters: each a comma-separated list of the values
    ``/api/layers/{id}`` takes for that filter (one condition per filter, any of its
    values), validated by :class:`service.params.LayerFilters`, so an unknown value or a
    filter the layer has no field for is the same 400, naming it."""
    out: list[Condition] = []
    for name, text in given.items():
        given_values = [v.strip() for v in (text or "").split(",") if v.strip()]
        values = tuple(dict.fromkeys(given_values))
        if not values:
            continue
        if len(given_values) > MAX_FILTER_VALUES:
            raise BadParameter(bilingual(
                f"筛选参数 {name} 最多 {MAX_FILTER_VALUES} 个值",
                f"filter {name} takes at most {MAX_FILTER_VALUES} values"))
        conditions = []
        for value in values:
            try:
                conditions.append(LayerFilters(**{name: value}).conditions(spec))
            except BadParameter as exc:  # name the value refused, then what is taken
                zh, _, en = str(exc).partition(" / ")
                raise BadParameter(bilingual(f"{name}={value}：{zh}", f"{name}={value}: {en}")
                                   ) from None
        out.append(Condition(conditions[0][0].column, "in",
                             tuple(c[0].values[0] for c in conditions)))
    return tuple(out)
