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

PostGIS renders row tiles in one SQL statement (``service/store/postgis/tiles.py``); the
embedded store's rows and every aggregated tile are encoded here with mapbox-vector-tile.
Aggregated tiles are cut from counts over the caller's whole scope at the stored H3
resolution (one GROUP BY per scope and build, then sums of parents), and every rendered
tile is kept by its ETag: :class:`TileCache` holds both, within ``RISKMAP_TILE_CACHE_MB``.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, TypeVar

import geopandas as gpd
import h3
import mapbox_vector_tile
import numpy as np
import pandas as pd
import shapely

from geo.cells import (
    cell_centres,
    cell_polygons,
    from_strings,
    parents,
    points_to_cells,
    to_strings,
)
from layers import aggregate
from layers.frames import LEVELS, MAJOR_HAZARD
from layers.registry import ALL, LayerSpec
from service.auth import Principal, Role
from service.scope import layer_scope
from service.store.base import Store
from service.store.query import Condition, LayerQuery

MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
EXTENT = 4096
BUFFER = 64                   # tile units around the tile (ST_AsMVTGeom's buffer)
MAX_ZOOM = 22
AGGREGATE_BELOW_ZOOM = 12     # point layers ship H3 cells below this zoom
MAX_FEATURES = 4_000          # more rows than this in one tile: H3 cells instead
MAX_AGE = 300                 # seconds a browser may reuse a tile without asking
FORMAT = "mvt-1"              # bump when tiles change for the same data and scope
WORLD = 20037508.342789244    # half the EPSG:3857 world width, metres
BBox = tuple[float, float, float, float]
Mode = Literal["rows", "cells", "risk-cells"]
T = TypeVar("T")

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
    ValueError (Chinese) naming an unknown field."""
    if requested is None or not requested.strip():
        return TILE_FIELDS.get(spec.id, spec.field_names)
    if requested.strip() == ALL_FIELDS:
        return spec.field_names
    names = tuple(dict.fromkeys(n.strip() for n in requested.split(",")
                                if n.strip() and n.strip() != "fid"))  # fid always comes
    unknown = [n for n in names if n not in spec.field_names]
    if unknown:
        raise ValueError(f"图层 {spec.id} 没有字段 {'、'.join(unknown)}；可选："
                         f"{'、'.join(spec.field_names)}，或 {ALL_FIELDS} 表示全部")
    return names


@dataclass(frozen=True)
class Tile:
    z: int
    x: int
    y: int

    @classmethod
    def checked(cls, z: int, x: int, y: int) -> Tile:
        """The tile z/x/y; ValueError (Chinese) outside 0 ≤ z ≤ 22, 0 ≤ x, y < 2^z."""
        if not 0 <= z <= MAX_ZOOM:
            raise ValueError(f"缩放级别 z 须在 0–{MAX_ZOOM} 之间")
        if not (0 <= x < 1 << z and 0 <= y < 1 << z):
            raise ValueError(f"瓦片坐标须满足 0 ≤ x, y < 2^z（z={z} 时小于 {1 << z}）")
        return cls(z, x, y)

    @property
    def size(self) -> float:
        """Width in EPSG:3857 metres."""
        return 2 * WORLD / (1 << self.z)

    def bounds(self) -> BBox:
        """minx, miny, maxx, maxy in EPSG:3857."""
        minx = -WORLD + self.x * self.size
        maxy = WORLD - self.y * self.size
        return minx, maxy - self.size, minx + self.size, maxy

    def lonlat_bounds(self, pad: float = 0.0) -> BBox:
        """The tile grown by ``pad`` EPSG:3857 metres each side, in lon/lat."""
        minx, miny, maxx, maxy = self.bounds()
        lon = np.degrees(np.array([minx - pad, maxx + pad]) / 6378137.0)
        lat = np.degrees(2 * np.arctan(np.exp(np.array([miny - pad, maxy + pad]) / 6378137.0))
                         - np.pi / 2)
        return float(lon[0]), float(lat[0]), float(lon[1]), float(lat[1])

    def cell_pad(self, resolution: int) -> float:
        """EPSG:3857 metres around the tile that hold every point of any H3 cell at
        ``resolution`` touching the tile: three mean edges (a cell is at most about 2.4
        across), at the tile's widest Mercator scale."""
        _, lat0, _, lat1 = self.lonlat_bounds()
        widest = min(max(abs(lat0), abs(lat1)), 85.0)
        ground = 3 * h3.average_hexagon_edge_length(resolution, unit="m")
        return ground / math.cos(math.radians(widest))


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

    @property
    def typed_fields(self) -> tuple[tuple[str, str], ...]:
        kinds = dict(self.spec.fields)
        return tuple((name, kinds[name]) for name in self.fields)


def plan_tile(caller: Principal, spec: LayerSpec, store: Store, tile: Tile,
              fields: tuple[str, ...] | None = None) -> Plan:
    """The caller's plan for ``tile`` of ``spec`` (row properties ``fields``, default
    :func:`tile_fields`); Forbidden if they may not see it."""
    fields = tile_fields(spec) if fields is None else fields
    if spec.id == "risk-cells":
        res = cell_resolution(tile.z)
        if caller.role == Role.ADMIN:
            return Plan(spec, "rows", (Condition("resolution", "eq", (res,)),), res, fields)
        return Plan(spec, "risk-cells", layer_scope(caller, ALL["equipment"], store), res)
    where = layer_scope(caller, spec, store)
    if aggregates(spec) and tile.z < AGGREGATE_BELOW_ZOOM:
        return Plan(spec, "cells", where, min(cell_resolution(tile.z), store.h3_resolution))
    return Plan(spec, "rows", where, fields=fields)


def etag(plan: Plan, tile: Tile, build_id: str | None, store_resolution: int) -> str:
    """A strong ETag: the same build, scope conditions, plan and tile give the same bytes."""
    key = repr((FORMAT, build_id, store_resolution, plan.spec.id, plan.mode, plan.where,
                plan.resolution, plan.fields, tile, EXTENT, BUFFER, MAX_FEATURES,
                AGGREGATE_BELOW_ZOOM))
    return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'


def matches(if_none_match: str | None, tag: str) -> bool:
    """Whether an If-None-Match header names ``tag`` (weak comparison, or ``*``)."""
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or tag in tags


# --------------------------------------------------------------------------- rendering

class TileCache:
    """Rendered tiles and the whole-scope H3 counts behind aggregated ones, by build, scope
    and address, up to about ``budget`` bytes; least recently used out first."""

    def __init__(self, budget: int = 256 << 20) -> None:
        self._items: OrderedDict[tuple, tuple[Any, int]] = OrderedDict()
        self._budget = budget
        self._used = 0
        self._lock = threading.Lock()

    def get(self, key: tuple, compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
        value = compute()  # outside the lock: a slow scope must not stall the others
        weight = _weight(value)
        with self._lock:
            if key not in self._items:
                self._items[key] = (value, weight)
                self._used += weight
            while self._used > self._budget and len(self._items) > 1:
                _, (_, dropped) = self._items.popitem(last=False)
                self._used -= dropped
        return value


def _weight(value: object) -> int:
    """Rough bytes held by a cached value (a hexagon polygon is ~400 bytes)."""
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, pd.DataFrame):
        return int(value.memory_usage(index=False).sum()) + 400 * len(value)
    if isinstance(value, tuple):
        return sum(getattr(v, "nbytes", 64) for v in value)
    return 1024


def render(store: Store, plan: Plan, tile: Tile, build_id: str, cache: TileCache) -> bytes:
    """The tile's MVT bytes (``b""`` when it holds nothing), kept in ``cache`` under its
    ETag: a tile is the same bytes for the same build, scope and address, so a second
    viewer of a region (or a panned-back map) costs a lookup. Whole-scope aggregates
    behind the low-zoom tiles are cached there too: slow to make, shared by many tiles."""
    key = ("tile", etag(plan, tile, build_id, store.h3_resolution))
    return cache.get(key, lambda: _draw(store, plan, tile, build_id, cache))


def _draw(store: Store, plan: Plan, tile: Tile, build_id: str, cache: TileCache) -> bytes:
    spec = plan.spec
    res = plan.resolution or cell_resolution(tile.z)
    if plan.mode == "rows":
        data = _rows_tile(store, plan, tile, MAX_FEATURES if aggregates(spec) else None)
        if data is not None:
            return data
        res = min(cell_resolution(tile.z), store.h3_resolution)  # too many rows: cells
    if plan.mode != "risk-cells":
        counts = _scope_counts(store, spec, plan.where, res, build_id, cache)
        cells = _cells_frame(*counts.around(tile.lonlat_bounds(tile.cell_pad(res))), res, spec)
        return encode(spec.id, _in_tile(cells, tile), tile, cell_ids=True)
    if res > 7:
        cells = _risk_frame(store, plan.where, tile.lonlat_bounds(tile.cell_pad(res)), (res,))
        return encode(spec.id, _in_tile(cells, tile), tile, cell_ids=True)

    def whole() -> gpd.GeoDataFrame:
        every = cache.get((build_id, "risk-cells", plan.where),
                          lambda: _risk_frame(store, plan.where, None, (5, 6, 7)))
        return every[(every["resolution"] == res).to_numpy()]

    cells = cache.get((build_id, plan.mode, spec.id, plan.where, res), whole)
    return encode(spec.id, _in_tile(cells, tile), tile, cell_ids=True)


def _rows_tile(store: Store, plan: Plan, tile: Tile, cap: int | None) -> bytes | None:
    """The rows' tile, or None when more than ``cap`` rows fall in it."""
    spec = plan.spec
    if _is_postgis(store):
        from service.store.postgis import tiles as pg

        with store.engine.connect() as conn:  # type: ignore[attr-defined]
            return pg.mvt(conn, spec.id, plan.where, tile.z, tile.x, tile.y, extent=EXTENT,
                          buffer=BUFFER, cap=cap, cell_ids=spec.cells,
                          fields=plan.typed_fields)
    pad = tile.size * BUFFER / EXTENT
    frame, matched = store.query_layer(LayerQuery(spec.id, plan.where, tile.lonlat_bounds(pad),
                                                  None, columns=(*plan.fields, "h3")))
    if cap is not None and matched > cap:
        return None
    return encode(spec.id, frame, tile, cell_ids=spec.cells, fields=plan.typed_fields)


def _is_postgis(store: Store) -> bool:
    from service.store.postgis import PostGISStore

    return isinstance(store, PostGISStore)


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
        fine, counts = cache.get((build_id, "counts", spec.id, where),
                                 lambda: _counts(store, spec, where, base, None))
        up, inverse = np.unique(parents(fine, res), return_inverse=True)
        total = np.zeros((len(up), counts.shape[1]), dtype=np.int64)
        np.add.at(total, inverse, counts)
        lat, lon = cell_centres(up)
        return ScopeCounts(up, total, lon, lat)

    return cache.get((build_id, "counts", spec.id, where, res), summed)


def _counts(store: Store, spec: LayerSpec, where: tuple[Condition, ...], res: int,
            bbox: BBox | None) -> tuple[np.ndarray, np.ndarray]:
    """(cells, count matrix) of the rows matching ``where`` in ``bbox``: the ``h3`` column's
    parents (in SQL on PostGIS), or the cells of the points for layers without one."""
    levels = tuple(value for value, _ in level_counts(spec))
    has_h3 = "h3" in spec.field_names
    if has_h3 and _is_postgis(store):
        from service.store.postgis import tiles as pg

        with store.engine.connect() as conn:  # type: ignore[attr-defined]
            return pg.cell_counts(conn, spec.id, where, res, bbox, levels)
    wanted = tuple(c for c in ("h3", "level") if c in spec.field_names)
    frame, _ = store.query_layer(LayerQuery(spec.id, where, bbox, None, columns=wanted))
    frame = frame[frame.geometry.notna()]
    if has_h3:
        cells = parents(from_strings(frame["h3"]), res)
    else:
        geoms = frame.geometry.to_numpy()
        cells = points_to_cells(shapely.get_x(geoms), shapely.get_y(geoms), res)
    located = cells != 0
    up, inverse = np.unique(cells[located], return_inverse=True)
    counts = np.zeros((len(up), 1 + len(levels)), dtype=np.int64)
    np.add.at(counts[:, 0], inverse, 1)
    if levels:
        level = frame["level"].astype("string").to_numpy(dtype=object, na_value=None)
        for j, value in enumerate(levels, start=1):
            np.add.at(counts[:, j], inverse[level[located] == value], 1)
    return up, counts


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


def _risk_frame(store: Store, where: tuple[Condition, ...], bbox: BBox | None,
                resolutions: tuple[int, ...]) -> gpd.GeoDataFrame:
    """Risk cells at ``resolutions`` of the equipment matching ``where`` in ``bbox``, nested
    as the built layer is: the finest level from the points, the others its parents."""
    if _is_postgis(store):
        from service.store.postgis import tiles as pg

        with store.engine.connect() as conn:  # type: ignore[attr-defined]
            rows: pd.DataFrame = pg.equipment_rows(conn, where, bbox)
    else:
        from service.store.postgis.tiles import EQUIPMENT_COLUMNS

        rows, _ = store.query_layer(LayerQuery("equipment", where, bbox, None,
                                               columns=EQUIPMENT_COLUMNS))
    if not len(rows):  # nothing of the caller's here: skip the indicator machinery
        return gpd.GeoDataFrame({"fid": [], "h3": []}, geometry=[], crs=4326)
    finest = max(aggregate.DEFAULT_RESOLUTIONS)
    cells = aggregate.risk_cells(rows, tuple(sorted({*resolutions, finest})))
    cells = cells[cells["resolution"].isin(resolutions).to_numpy()]
    cells.insert(0, "fid", cells["h3"].astype("string"))
    return cells.reset_index(drop=True)


def _in_tile(cells: gpd.GeoDataFrame, tile: Tile) -> gpd.GeoDataFrame:
    """The cells whose hexagon touches the tile (with its buffer)."""
    if not len(cells):
        return cells
    box = shapely.box(*tile.lonlat_bounds(tile.size * BUFFER / EXTENT))
    return cells[shapely.intersects(cells.geometry.to_numpy(), box)]


# --------------------------------------------------------------------------- encoding

def encode(layer: str, frame: gpd.GeoDataFrame, tile: Tile, *, cell_ids: bool,
           fields: tuple[tuple[str, str], ...] | None = None) -> bytes:
    """Features as one MVT layer: geometry in tile units (y down), clipped to the tile and
    its buffer and snapped to the grid like ``ST_AsMVTGeom``; properties ``fid`` then
    ``fields`` (all columns when None), nulls left out as ``ST_AsMVT`` does."""
    if not len(frame):
        return b""
    geoms = _tile_units(frame.geometry.to_numpy(), tile)
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if not keep.any():
        return b""
    frame, geoms = frame[keep], geoms[keep]
    if fields is None:
        fields = tuple((c, _kind(frame[c])) for c in frame.columns
                       if c not in ("fid", frame.geometry.name))
    props = _properties(frame, (("fid", "text"), *fields))
    ids = (from_strings(frame["h3"]).astype(np.int64).tolist() if cell_ids
           else [None] * len(frame))
    features = [{"geometry": g, "properties": p, "id": i}
                for g, p, i in zip(geoms.tolist(), props, ids, strict=True)]
    return mapbox_vector_tile.encode(
        [{"name": layer, "features": features}],
        default_options={"extents": EXTENT, "y_coord_down": True,
                         "check_winding_order": False})  # oriented in _tile_units


def _tile_units(geoms: np.ndarray, tile: Tile) -> np.ndarray:
    """Lon/lat geometries in the tile's 0..EXTENT grid (y down), clipped, snapped."""
    minx, _, _, maxy = tile.bounds()
    scale = EXTENT / tile.size

    def to_tile(xy: np.ndarray) -> np.ndarray:
        lon, lat = xy[:, 0], np.clip(xy[:, 1], -85.06, 85.06)
        mx = np.radians(lon) * 6378137.0
        my = np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) * 6378137.0
        return np.column_stack([(mx - minx) * scale, (maxy - my) * scale])

    out = shapely.transform(geoms, to_tile)
    lo, hi = -BUFFER, EXTENT + BUFFER
    points = shapely.get_type_id(out) == shapely.GeometryType.POINT
    if (~points).any():
        out[~points] = shapely.clip_by_rect(out[~points], lo, lo, hi, hi)
    if points.any():
        xy = shapely.get_coordinates(out[points])
        inside = ((xy >= lo) & (xy <= hi)).all(axis=1)
        moved = out[points]
        moved[~inside] = None
        out[points] = moved
    out = shapely.set_precision(out, 1.0)
    # exterior rings positive by the shoelace formula in y-down tile units (MVT 4.3.4.4)
    return shapely.orient_polygons(out, exterior_cw=False)


def _kind(column: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(column):
        return "bool"
    if pd.api.types.is_integer_dtype(column):
        return "int"
    if pd.api.types.is_float_dtype(column):
        return "float"
    return "text"


def _properties(frame: pd.DataFrame, fields: tuple[tuple[str, str], ...]) -> list[dict]:
    """One dict per row of plain Python values (the encoder skips NumPy scalars)."""
    columns: list[tuple[str, list]] = []
    for name, kind in fields:
        col = frame[name]
        if kind in ("date", "timestamp"):
            fmt = "%Y-%m-%d" if kind == "date" else "%Y-%m-%dT%H:%M:%S"
            values = col.dt.strftime(fmt).to_numpy(dtype=object, na_value=None)
        else:
            values = col.to_numpy(dtype=object, na_value=None)
        cast = {"int": int, "float": float, "bool": bool}.get(kind, str)
        out = [None if v is None or (kind == "float" and math.isnan(v)) else cast(v)
               for v in values]
        columns.append((name, out))
    rows: list[dict] = [{} for _ in range(len(frame))]
    for name, values in columns:
        for row, value in zip(rows, values, strict=True):
            if value is not None:
                row[name] = value
    return rows
