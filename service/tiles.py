"""Vector tiles (Mapbox Vector Tile 2.1) of the layers, scoped to the caller.

A tile holds one MVT layer named after the layer id:

- ``risk-cells``: the cells at the H3 resolution chosen by zoom (:func:`cell_resolution`);
  a caller with a scope gets cells aggregated from the equipment they may see, as
  ``/api/layers/risk-cells`` does.
- point layers (and ``grid-cells``, one res-8 hexagon per officer cell) below
  :data:`AGGREGATE_BELOW_ZOOM`: H3 cells at the zoom's resolution with ``count`` and counts
  by level, aggregated from the caller's rows (a z7 tile of 1M raw points is 8.9 MB).
- otherwise the rows: properties ``fid`` and the tile fields (JSON as text, dates ISO);
  cell layers carry their H3 index as the integer feature id. Point layers carry by default
  only what a map styles and labels by (:data:`TILE_FIELDS`): a z12 tile of every field of
  the equipment layer is ~700 KiB and 5× slower to make; the rest is one request away
  (``/ogc/collections/{id}/items/{fid}``) or asked for with ``?properties=``. A tile that
  would hold more than :data:`MAX_FEATURES` rows of a layer that can be aggregated ships
  cells instead, so a tile is never cut short.

Row tiles and cell counts come from the store (``Store.layer_tile``,
``Store.layer_cell_counts``: one SQL statement each on PostGIS); aggregated tiles are
encoded here with :func:`service.mvt.encode`. They are cut from counts over the caller's
whole scope at the stored H3 resolution (one GROUP BY per scope and build, then sums of
parents), and every rendered tile is kept by its ETag: the app's
:class:`service.caches.TileCache` holds both, within ``RISKMAP_TILE_CACHE_MB``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely

from geo.cells import cell_centres, cell_polygons, from_strings, parents, to_strings
from layers.frames import LEVELS, MAJOR_HAZARD
from layers.registry import ALL, LayerSpec
from service.auth import Principal
from service.caches import TileCache
from service.errors import BadParameter, NotFound, bilingual
from service.mvt import BUFFER, EXTENT, BBox, Tile, coded_columns, encode, encode_rings, ring_units
from service.mvt_points import Column
from service.params import LayerFilters
from service.selection import RISK_CELLS, reaggregated, scope_of, scoped_risk_cells
from service.store.base import Store
from service.store.query import Condition, condition_mask

AGGREGATE_BELOW_ZOOM = 12     # point layers ship H3 cells below this zoom
MAX_FEATURES = 4_000          # more rows than this in one tile: H3 cells instead
METRES_PER_DEGREE = 111_320.0  # of latitude (and of longitude at the equator)
MAX_AGE = 300                 # seconds a browser may reuse a tile without asking
FORMAT = "mvt-2"              # bump when tiles change for the same data and scope
Mode = Literal["rows", "cells", "risk-cells"]
# a scoped caller's risk cells at these resolutions are computed once for the whole scope
# (a few thousand cells), with their hexagons;
WHOLE_SCOPE_RISK = (5, 6, 7)
# finer ones are graded once for the whole scope too and kept without their hexagons when
# the scope has at most this many cells (a city's: 17,968 res-9 cells at 10M, 5.5 MB); a
# tile then draws the few hundred around it. A larger scope (a province's 202,530) is
# summed tile by tile from the store's per-cell sums around the tile.
KEPT_SCOPE_CELLS = 50_000

# Counts by level in aggregated cells: the risk colours, or a hazard's 重大/一般.
LEVEL_COUNTS: dict[str, tuple[tuple[str, str], ...]] = {
    "hazards": ((MAJOR_HAZARD, "n_major"), ("一般", "n_general")),
}
_COLOUR_COUNTS = tuple((level, f"n_{level}") for level in LEVELS)

# The properties a point layer's row tiles carry unless ``?properties=`` asks otherwise:
# what a risk map colours, filters and labels by. Other layers carry every field.
TILE_FIELDS: dict[str, tuple[str, ...]] = {
    "equipment": ("level", "top_category", "in_use"),
    "units": ("name", "level", "industry"),
    "frequency": ("name", "level", "interval_months"),
    "demonstration": ("name", "top_category", "rank"),
    "hazards": ("level", "status", "listed", "past_deadline"),
    "overdue": ("level", "top_category", "days_overdue"),
    "blacklist": ("name", "level"),
}
ALL_FIELDS = "*"


def tile_fields(spec: LayerSpec, requested: str | None = None) -> tuple[str, ...]:
    """The row tiles' properties besides ``fid`` (which every row carries): ``requested``
    (comma-separated field names, or ``*`` for all), else the layer's :data:`TILE_FIELDS`,
    else every field.
    ValueError ("中文 / English") naming an unknown field and the layer's fields."""
    if requested is None or not requested.strip():
        return TILE_FIELDS.get(spec.id, spec.field_names)
    if requested.strip() == ALL_FIELDS:
        return spec.field_names
    names = tuple(dict.fromkeys(n.strip() for n in requested.split(",")
                                if n.strip() and n.strip() != "fid"))  # fid always comes
    unknown = [n for n in names if n not in spec.field_names]
    if unknown:
        raise ValueError(bilingual(
            f"属性列表（properties）：图层 {spec.id} 没有字段 {'、'.join(unknown)}；可选："
            f"{'、'.join(spec.field_names)}，以逗号分隔，或 {ALL_FIELDS} 表示全部",
            f"properties: layer {spec.id} has no field(s) {', '.join(unknown)}; give a "
            f"comma-separated list of {', '.join(spec.field_names)}, or {ALL_FIELDS} for all"))
    return names


def cell_resolution(z: int) -> int:
    """The H3 resolution drawn at zoom ``z`` (a cell a few pixels to a few dozen wide)."""
    if z <= 6:
        return 5
    if z == 7:
        return 6
    return 7 if z <= 9 else 8 if z <= 11 else 9


def aggregates(spec: LayerSpec) -> bool:
    """Layers that ship H3 cells at low zoom (and when a tile holds too many rows)."""
    return spec.geometry == "point" or spec.id == "grid-cells"


def level_counts(spec: LayerSpec) -> tuple[tuple[str, str], ...]:
    """(level value, count property) pairs of a layer's aggregated cells."""
    if "level" not in spec.field_names:
        return ()
    return LEVEL_COUNTS.get(spec.id, _COLOUR_COUNTS)


@dataclass(frozen=True)
class Plan:
    """What one caller's tile of one layer holds: the rows matching ``where`` with
    properties ``fields``, or H3 cells at ``resolution`` counted from them, or risk cells
    computed from the caller's equipment (``where`` then scopes the equipment)."""

    spec: LayerSpec
    mode: Mode
    where: tuple[Condition, ...]
    resolution: int | None = None
    fields: tuple[str, ...] = ()
    # the map's filters on risk cells computed from the caller's equipment: applied to the
    # cells (their level, dominant category), as /api/layers/risk-cells applies them
    cell_filters: tuple[Condition, ...] = ()

    @property
    def typed_fields(self) -> tuple[tuple[str, str], ...]:
        kinds = dict(self.spec.fields)
        return tuple((name, kinds[name]) for name in self.fields)


def plan_tile(caller: Principal, spec: LayerSpec, store: Store, tile: Tile,
              fields: tuple[str, ...] | None = None,
              filters: tuple[Condition, ...] = ()) -> Plan:
    """The caller's plan for ``tile`` of ``spec`` (row properties ``fields``, default
    :func:`tile_fields`; ``filters`` the map's level/category/industry conditions on the
    layer's fields, ANDed with the scope); Forbidden if they may not see it.

    What a filter means where a tile is aggregated: point layers' H3 cells at low zoom are
    counted from the matching rows only (``level=red`` draws the cells holding red
    equipment, counting only it); risk cells are filtered as cells (``level`` the cell's
    level, ``category`` its dominant category), never recomputed from part of the
    equipment, so a cell's level means the same on every map."""
    fields = tile_fields(spec) if fields is None else fields
    where = scope_of(caller, spec)
    if spec.id == RISK_CELLS:
        res = cell_resolution(tile.z)
        if reaggregated(caller, spec):  # ``where`` scopes the caller's equipment
            return Plan(spec, "risk-cells", where, res, cell_filters=filters)
        where = (*where, *filters)
        return Plan(spec, "rows", (*where, Condition("resolution", "eq", (res,))), res, fields)
    where = (*where, *filters)
    if aggregates(spec) and tile.z < AGGREGATE_BELOW_ZOOM:
        return Plan(spec, "cells", where, min(cell_resolution(tile.z), store.h3_resolution))
    return Plan(spec, "rows", where, fields=fields)


def etag(plan: Plan, tile: Tile, build_id: str | None, store_resolution: int) -> str:
    """A strong ETag: the same build, scope conditions, plan and tile give the same bytes."""
    key = repr((FORMAT, build_id, store_resolution, plan.spec.id, plan.mode, plan.where,
                plan.resolution, plan.fields, plan.cell_filters, tile, EXTENT, BUFFER, MAX_FEATURES,
                AGGREGATE_BELOW_ZOOM))
    return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'


def matches(if_none_match: str | None, tag: str) -> bool:
    """Whether an If-None-Match header names ``tag`` (weak comparison, or ``*``)."""
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or tag in tags


# --------------------------------------------------------------------------- serving

MAX_FILTER_VALUES = 25  # more than every level, category or industry there is


class Served(NamedTuple):
    """A tile response: 200 with the MVT bytes (``b""`` for an empty tile) or a bodiless 304,
    and its headers (ETag, ``Cache-Control: private``, Vary)."""

    status: int
    body: bytes
    headers: dict[str, str]


def serve(caller: Principal, store: Store, cache: TileCache, spec: LayerSpec,
          address: Tile, *, properties: str | None = None, if_none_match: str | None = None,
          **filters: str | None) -> Served:
    """What a caller's tile request answers, once for every route that serves tiles
    (``/tiles/{layer}/{z}/{x}/{y}.mvt`` and the OGC API – Tiles route): the same plan,
    ETag, cache and bytes for the same caller, layer, tile, ``properties`` and ``filters``
    (``level``, ``category``, ``industry``: see :func:`tile_filters`). 400 for a bad
    ``properties`` or filter, 403 if the caller may not see the layer."""
    drawable(spec)
    try:
        fields = tile_fields(spec, properties)
    except ValueError as exc:
        raise BadParameter(str(exc)) from None
    plan = plan_tile(caller, spec, store, address, fields, tile_filters(spec, **filters))
    build = store.layer_build()
    build_id = build.build_id if build else None
    tag = etag(plan, address, build_id, store.h3_resolution)
    headers = {"ETag": tag, "Cache-Control": f"private, max-age={MAX_AGE}",
               "Vary": "Authorization, Cookie"}
    if matches(if_none_match, tag):
        return Served(304, b"", headers)
    body = b"" if build_id is None else render(store, plan, address, build_id, cache)
    return Served(200, body, headers)


def drawable(spec: LayerSpec) -> None:
    """404 for a table (a layer without geometry): it has no tiles."""
    if spec.geometry is None:
        drawn = [s.id for s in ALL.values() if s.geometry is not None]
        raise NotFound(bilingual(
            f"{spec.id}（{spec.title}）是数据表，没有矢量瓦片：图层编号（layer）须为有几何图形的"
            f"图层 {'、'.join(drawn)} 之一",
            f"{spec.id} is a table without geometry, so it has no vector tiles: layer must be "
            f"one of {', '.join(drawn)}"))


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


# --------------------------------------------------------------------------- rendering

def render(store: Store, plan: Plan, tile: Tile, build_id: str, cache: TileCache) -> bytes:
    """The tile's MVT bytes (``b""`` when it holds nothing), kept in ``cache`` under its
    ETag: a tile is the same bytes for the same build, scope and address, so a second
    viewer of a region (or a panned-back map) costs a lookup. Whole-scope aggregates
    behind the low-zoom tiles are cached there too: slow to make, shared by many tiles."""
    tag = etag(plan, tile, build_id, store.h3_resolution)
    return cache.get(("tile", tag), lambda: _seeded_or_drawn(store, plan, tile, build_id,
                                                            cache, tag))


def _seeded_or_drawn(store: Store, plan: Plan, tile: Tile, build_id: str, cache: TileCache,
                     tag: str) -> bytes:
    """The bytes ``riskmap seed`` kept for this ETag (the same bytes, rendered ahead by
    :mod:`service.tile_seed`), else the tile drawn now."""
    seeded = store.seeded_tile(tag)
    return seeded if seeded is not None else draw(store, plan, tile, build_id, cache)


def draw(store: Store, plan: Plan, tile: Tile, build_id: str, cache: TileCache) -> bytes:
    """The tile's MVT bytes, rendered now from the store (``cache`` keeps the whole-scope
    aggregates it is cut from)."""
    spec = plan.spec
    res = plan.resolution or cell_resolution(tile.z)
    if plan.mode == "rows":
        if not (aggregates(spec) and _known_over(plan, tile, build_id, cache,
                                                 store.h3_resolution)):
            data = store.layer_tile(spec.id, plan.where, tile, fields=plan.typed_fields,
                                    cap=MAX_FEATURES if aggregates(spec) else None)
            if data is not None:
                return data
        res = min(cell_resolution(tile.z), store.h3_resolution)  # too many rows: cells
    if plan.mode != "risk-cells":
        counts = _scope_counts(store, spec, plan.where, res, build_id, cache)
        cells = _cells_frame(*counts.around(tile.lonlat_bounds(tile.cell_pad(res))), res, spec)
        return encode(spec.id, _in_tile(cells, tile), tile, cell_ids=True)
    if res not in WHOLE_SCOPE_RISK:
        kept = _kept_scope_cells(store, plan, res, build_id, cache)
        if kept is not None:
            rows = kept.near(tile, res)
            if not plan.cell_filters:
                return kept.encode(spec.id, rows, tile)
            cells = _filtered(kept.cells(rows), plan.cell_filters)
            return encode(spec.id, cells, tile, cell_ids=True)
        # a scope too large to keep: the cells of the sums around the tile
        cells = scoped_risk_cells(store, plan.where,
                                  tile.lonlat_bounds(tile.cell_pad(res)), (res,))
        cells = _filtered(cells, plan.cell_filters)
        return encode(spec.id, _in_tile(cells, tile), tile, cell_ids=True)

    def whole() -> gpd.GeoDataFrame:
        every = cache.get((build_id, "risk-cells", plan.where),
                          lambda: scoped_risk_cells(store, plan.where, None, WHOLE_SCOPE_RISK))
        return every[(every["resolution"] == res).to_numpy()]

    cells = cache.get((build_id, plan.mode, spec.id, plan.where, res), whole)
    cells = _filtered(cells, plan.cell_filters)
    return encode(spec.id, _in_tile(cells, tile), tile, cell_ids=True)


@dataclass(frozen=True)
class KeptCells:
    """A scope's risk cells at one resolution, graded once per build and kept to cut its
    tiles from: each cell's centre (to pick a tile's cells), hexagon and id, and every
    property coded once for the whole scope (:func:`service.mvt.coded_columns`), so a
    tile takes its rows of each instead of making and coding a frame of them."""

    frame: pd.DataFrame        # the graded cells, without hexagons (filters read it)
    lon: np.ndarray
    lat: np.ndarray
    hexagons: np.ndarray       # shapely polygons, lon/lat
    ids: np.ndarray            # int64: the features' ids
    columns: tuple[Column, ...]

    @classmethod
    def of(cls, flat: pd.DataFrame) -> KeptCells:
        cells = from_strings(flat["h3"])
        lat, lon = cell_centres(cells)
        return cls(flat, lon, lat, cell_polygons(flat["h3"]), cells.astype(np.int64),
                   tuple(coded_columns(flat)))

    @property
    def nbytes(self) -> int:
        """Rough bytes held (a hexagon polygon is ~400 bytes), for the tile cache."""
        frame = int(self.frame.memory_usage(index=False, deep=True).sum())
        coded = sum(codes.nbytes + 64 * len(values) for _, codes, values in self.columns)
        points = self.lon.nbytes + self.lat.nbytes + self.ids.nbytes
        return frame + coded + 400 * len(self.hexagons) + points

    def near(self, tile: Tile, res: int) -> np.ndarray:
        """The rows whose hexagon touches the tile with its buffer: a cell touching it has
        its centre within the tile grown by :meth:`Tile.cell_pad`."""
        west, south, east, north = tile.lonlat_bounds(tile.cell_pad(res))
        rows = np.flatnonzero((self.lon >= west) & (self.lon <= east)
                              & (self.lat >= south) & (self.lat <= north))
        box = shapely.box(*tile.lonlat_bounds(tile.size * BUFFER / EXTENT))
        return rows[shapely.intersects(self.hexagons[rows], box)]

    def cells(self, rows: np.ndarray) -> gpd.GeoDataFrame:
        """The cells of ``rows`` with their hexagons, as a frame."""
        return gpd.GeoDataFrame(self.frame.iloc[rows].reset_index(drop=True),
                                geometry=self.hexagons[rows], crs=4326)

    def encode(self, layer: str, rows: np.ndarray, tile: Tile) -> bytes:
        """The tile of the cells of ``rows``: the bytes :func:`service.mvt.encode` makes
        of :meth:`cells` (``cell_ids``), without making the frame."""
        units = ring_units(self.hexagons[rows], tile)
        if units is None:  # not plain rings once in the tile: the general path
            return encode(layer, self.cells(rows), tile, cell_ids=True)
        rings, keep = units
        rows = rows[keep]
        if not len(rows):
            return b""
        columns = []
        for name, codes, values in self.columns:
            taken = codes[rows]
            used = np.unique(taken[taken >= 0])  # this tile's values only
            local = np.where(taken >= 0, np.searchsorted(used, taken), -1)
            columns.append((name, local, [values[u] for u in used.tolist()]))
        data = encode_rings(layer, rings, columns, self.ids[rows])
        return encode(layer, self.cells(rows), tile, cell_ids=True) if data is None else data


def _kept_scope_cells(store: Store, plan: Plan, res: int, build_id: str, cache: TileCache
                      ) -> KeptCells | None:
    """The scope's risk cells at ``res``, graded once per build and kept
    (:class:`KeptCells`); None when the scope has more than :data:`KEPT_SCOPE_CELLS`."""

    def whole() -> KeptCells | None:
        flat = scoped_risk_cells(store, plan.where, None, (res,), hexagons=False,
                                 max_cells=KEPT_SCOPE_CELLS)
        return None if flat is None else KeptCells.of(flat)  # a province's: tile by tile

    return cache.get((build_id, "risk-cells-kept", plan.where, res), whole)


def _filtered(cells: gpd.GeoDataFrame, where: tuple[Condition, ...]) -> gpd.GeoDataFrame:
    """The cells matching every one of ``where`` (all of them when there is none)."""
    if not where or not len(cells):
        return cells
    mask = np.ones(len(cells), dtype=bool)
    for condition in where:
        mask &= condition_mask(cells, condition)
    return cells[mask]


# --------------------------------------------------------------------------- H3 counts

class ScopeCounts(NamedTuple):
    """Counts per H3 cell over a caller's whole scope at one resolution, with the cells'
    centres to pick a tile's cells without drawing every hexagon of the scope."""

    cells: np.ndarray    # uint64
    counts: np.ndarray   # rows, then rows of each level
    lon: np.ndarray
    lat: np.ndarray

    def around(self, bbox: BBox) -> tuple[np.ndarray, np.ndarray]:
        """(cells, counts) whose centre lies in ``bbox`` (lon/lat)."""
        pick = ((self.lon >= bbox[0]) & (self.lon <= bbox[2])
                & (self.lat >= bbox[1]) & (self.lat <= bbox[3]))
        return self.cells[pick], self.counts[pick]


def _scope_counts(store: Store, spec: LayerSpec, where: tuple[Condition, ...], res: int,
                  build_id: str, cache: TileCache) -> ScopeCounts:
    """Counts per cell at ``res`` over the caller's whole scope, summed from one count at
    the stored H3 resolution (exact: a parent's rows are its children's), both cached:
    one GROUP BY per scope and build serves every low-zoom tile."""
    base = store.h3_resolution
    if res > base:
        raise ValueError(f"whole-scope counts stop at H3 resolution {base}, not {res}")

    def summed() -> ScopeCounts:
        levels = tuple(value for value, _ in level_counts(spec))
        fine, counts = cache.get((build_id, "counts", spec.id, where),
                                 lambda: store.layer_cell_counts(spec.id, where, base, None,
                                                                 levels))
        up, inverse = np.unique(parents(fine, res), return_inverse=True)
        total = np.zeros((len(up), counts.shape[1]), dtype=np.int64)
        np.add.at(total, inverse, counts)
        lat, lon = cell_centres(up)
        return ScopeCounts(up, total, lon, lat)

    return cache.get((build_id, "counts", spec.id, where, res), summed)


def _known_over(plan: Plan, tile: Tile, build_id: str, cache: TileCache, base: int) -> bool:
    """Whether the scope's counts at the stored H3 resolution, if already kept, show more
    than :data:`MAX_FEATURES` of the plan's rows inside ``tile``: its row tile would be
    refused, so it is not asked for (the refusal counts the tile's first 4,001 rows: ~40 ms
    for a dense z12 tile at 10M). Only cells lying wholly in the tile count, those whose
    centre is inside it by two mean edges (a hexagon's corners are one edge from its
    centre), so the figure is a lower bound of the rows the row tile would count."""
    counts = cache.peek((build_id, "counts", plan.spec.id, plan.where, base))
    if counts is None:
        return False
    lon0, lat0, lon1, lat1 = tile.lonlat_bounds()
    reach = 2 * h3.average_hexagon_edge_length(base, unit="m") / METRES_PER_DEGREE
    # a degree of longitude is shortest at the tile's edge farthest from the equator
    cos_lat = math.cos(math.radians(min(max(abs(lat0), abs(lat1)), 85.0)))
    inside = (lon0 + reach / cos_lat, lat0 + reach, lon1 - reach / cos_lat, lat1 - reach)
    if inside[0] >= inside[2] or inside[1] >= inside[3]:
        return False
    return int(counts.around(inside)[1][:, 0].sum()) > MAX_FEATURES


def _cells_frame(cells: np.ndarray, counts: np.ndarray, res: int, spec: LayerSpec
                 ) -> gpd.GeoDataFrame:
    """Aggregated cells as features: fid = h3, resolution, count, counts by level."""
    ids = to_strings(cells)
    frame = pd.DataFrame({"fid": ids, "h3": ids,
                          "resolution": pd.array(np.full(len(cells), res), dtype="Int64"),
                          "count": pd.array(counts[:, 0], dtype="Int64")})
    for j, (_, column) in enumerate(level_counts(spec), start=1):
        frame[column] = pd.array(counts[:, j], dtype="Int64")
    return gpd.GeoDataFrame(frame, geometry=cell_polygons(ids) if len(ids) else [], crs=4326)


def _in_tile(cells: gpd.GeoDataFrame, tile: Tile) -> gpd.GeoDataFrame:
    """The cells whose hexagon touches the tile (with its buffer)."""
    if not len(cells):
        return cells
    box = shapely.box(*tile.lonlat_bounds(tile.size * BUFFER / EXTENT))
    return cells[shapely.intersects(cells.geometry.to_numpy(), box)]


