"""Web Mercator tiles and their Mapbox Vector Tile (2.1) encoding.

:class:`Tile` is one z/x/y address of the WebMercatorQuad grid; :func:`encode` draws
lon/lat features into one MVT layer the way PostGIS ``ST_AsMVTGeom``/``ST_AsMVT`` do
(clipped to the tile and its buffer, snapped to the grid, nulls left out), so both stores'
tiles read the same in a map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
import h3
import mapbox_vector_tile
import numpy as np
import pandas as pd
import shapely

from geo.cells import from_strings
from service.mvt_points import Column, encode_points, encode_polygons

MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
EXTENT = 4096
BUFFER = 64                   # tile units around the tile (ST_AsMVTGeom's buffer)
MAX_ZOOM = 22
MIN_RING_AREA = 16.0          # square tile units: smaller polygons go through GEOS's snapping
WORLD = 20037508.342789244    # half the EPSG:3857 world width, metres
BBox = tuple[float, float, float, float]


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


def encode(layer: str, frame: gpd.GeoDataFrame, tile: Tile, *, cell_ids: bool,
           fields: tuple[tuple[str, str], ...] | None = None) -> bytes:
    """Features as one MVT layer: geometry in tile units (y down), clipped to the tile and
    its buffer and snapped to the grid like ``ST_AsMVTGeom``; properties ``fid`` then
    ``fields`` (all columns when None), nulls left out as ``ST_AsMVT`` does."""
    if not len(frame):
        return b""
    if fields is None:
        fields = tuple((c, _kind(frame[c])) for c in frame.columns
                       if c not in ("fid", frame.geometry.name))
    kinds = shapely.get_type_id(frame.geometry.to_numpy())
    if ((kinds == shapely.GeometryType.POINT) | (kinds == shapely.GeometryType.MISSING)).all():
        return _encode_points(layer, frame, tile, cell_ids, fields)
    return _encode_features(layer, frame, tile, cell_ids, fields)


def _encode_features(layer: str, frame: gpd.GeoDataFrame, tile: Tile, cell_ids: bool,
                     fields: tuple[tuple[str, str], ...], *, reference: bool = False) -> bytes:
    """:func:`encode` for any geometry: polygons of one ring each (hexagons, most parks)
    vectorised (:func:`_encode_rings`), the rest clipped, snapped and oriented with
    shapely and encoded feature by feature with mapbox-vector-tile (all of them so with
    ``reference``)."""
    if not reference:
        fast = _encode_rings(layer, frame, tile, cell_ids, fields)
        if fast is not None:
            return fast
    geoms = _tile_units(frame.geometry.to_numpy(), tile)
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if not keep.any():
        return b""
    frame, geoms = frame[keep], geoms[keep]
    props = _properties(frame, (("fid", "text"), *fields))
    ids = (from_strings(frame["h3"]).astype(np.int64).tolist() if cell_ids
           else [None] * len(frame))
    features = [{"geometry": g, "properties": p, "id": i}
                for g, p, i in zip(geoms.tolist(), props, ids, strict=True)]
    return mapbox_vector_tile.encode(
        [{"name": layer, "features": features}],
        default_options={"extents": EXTENT, "y_coord_down": True,
                         "check_winding_order": False})  # oriented in _tile_units


def _encode_rings(layer: str, frame: gpd.GeoDataFrame, tile: Tile, cell_ids: bool,
                  fields: tuple[tuple[str, str], ...]) -> bytes | None:
    """Polygons without holes, vectorised (:func:`encode_polygons`); None when some
    geometry is anything else or would not stay valid, for the general path."""
    units = ring_units(frame.geometry.to_numpy(), tile)
    if units is None:
        return None
    out, keep = units
    if not keep.any():
        return b""
    frame = frame[keep]
    columns = [_codes(frame[name], name, kind) for name, kind in (("fid", "text"), *fields)]
    ids = from_strings(frame["h3"]).astype(np.int64) if cell_ids else None
    return encode_rings(layer, out, columns, ids)


def encode_rings(layer: str, rings: np.ndarray, columns: list[Column],
                 ids: np.ndarray | None) -> bytes | None:
    """One MVT layer of ``rings`` (:func:`ring_units`' polygons, in tile units) with
    ``columns`` coded as :func:`coded_columns` codes them, a row per ring."""
    xy = shapely.get_coordinates(rings)
    return encode_polygons(layer, xy[:, 0].astype(np.int64), xy[:, 1].astype(np.int64),
                           shapely.get_num_coordinates(rings), columns, ids, EXTENT)


def ring_units(geoms: np.ndarray, tile: Tile) -> tuple[np.ndarray, np.ndarray] | None:
    """Lon/lat polygons without holes in the tile's grid, clipped to its buffer, snapped
    and oriented as :func:`_tile_units` does them, and which of ``geoms`` are left (the
    rest are missing, or empty once clipped); None when some geometry is not such a
    polygon or one would not stay valid, for the general path.

    The same clip and orientation as :func:`_tile_units`, but snapped vertex by vertex
    (``set_precision(mode="pointwise")``, 0.4 ms for 280 hexagons) instead of GEOS's
    snap-rounding to a valid output (3.7 ms): for a polygon that stays valid when each
    vertex is snapped, both give the same ring (GEOS's may start at another vertex). One
    that does not, and a polygon of a few square units (a hexagon at a zoom far below its
    resolution or cut to a sliver by the buffer's edge, a small park seen from far), is
    snapped by GEOS alone, as the general path would: GEOS collapses or keeps such a
    sliver by rules of its own."""
    known = ~shapely.is_missing(geoms)
    if not ((shapely.get_type_id(geoms[known]) == shapely.GeometryType.POLYGON).all()
            and (shapely.get_num_interior_rings(geoms[known]) == 0).all()):
        return None
    lo, hi = -BUFFER, EXTENT + BUFFER
    clipped = shapely.clip_by_rect(shapely.transform(geoms, lambda xy: np.column_stack(
        _mercator_units(xy[:, 0], xy[:, 1], tile))), lo, lo, hi, hi)
    out = shapely.set_precision(clipped, 1.0, mode="pointwise")
    # A ring that crosses itself once snapped vertex by vertex (a hexagon cut by the
    # buffer's edge, two vertices a unit apart), or a sliver of a few square units (GEOS
    # collapses or keeps one by rules of its own): GEOS's snap-rounding for those alone,
    # the general path's shape of them. The tile's other rings stay vectorised.
    odd = ~(shapely.is_missing(out) | shapely.is_empty(out))
    odd[odd] = ~shapely.is_valid(out[odd]) | (shapely.area(out[odd]) < MIN_RING_AREA)
    if odd.any():
        out[odd] = shapely.set_precision(clipped[odd], 1.0)
    keep = ~(shapely.is_missing(out) | shapely.is_empty(out))
    out = out[keep]
    if not ((shapely.get_type_id(out) == shapely.GeometryType.POLYGON).all()
            and (shapely.get_num_interior_rings(out) == 0).all()
            and shapely.is_valid(out).all()):
        return None
    return shapely.orient_polygons(out, exterior_cw=False), keep  # MVT 4.3.4.4


def _encode_points(layer: str, frame: gpd.GeoDataFrame, tile: Tile, cell_ids: bool,
                   fields: tuple[tuple[str, str], ...]) -> bytes:
    """:func:`encode` for points (the point layers' row tiles), vectorised
    (:mod:`service.mvt_points`): the same features, snapped and kept as
    :func:`_tile_units` does (inside the tile and its buffer, then to the grid)."""
    geoms = frame.geometry.to_numpy()
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    x, y = _mercator_units(shapely.get_x(geoms[keep]), shapely.get_y(geoms[keep]), tile)
    lo, hi = -BUFFER, EXTENT + BUFFER
    inside = (x >= lo) & (x <= hi) & (y >= lo) & (y <= hi)
    keep[keep] = inside
    if not keep.any():
        return b""
    frame = frame[keep]
    # GEOS snaps half up (floor(v + 0.5)), as shapely.set_precision does in _tile_units
    x, y = np.floor(x[inside] + 0.5), np.floor(y[inside] + 0.5)
    columns = [_codes(frame[name], name, kind) for name, kind in (("fid", "text"), *fields)]
    ids = from_strings(frame["h3"]).astype(np.int64) if cell_ids else None
    return encode_points(layer, x.astype(np.int64), y.astype(np.int64), columns, ids, EXTENT)


def _codes(column: pd.Series, name: str, kind: str) -> tuple[str, np.ndarray, list]:
    """A property column as (key, codes, distinct values): codes index the values (-1 for
    null, as :func:`_properties` leaves nulls out), values cast as there."""
    if kind in ("date", "timestamp"):
        fmt = "%Y-%m-%d" if kind == "date" else "%Y-%m-%dT%H:%M:%S"
        values = column.dt.strftime(fmt).to_numpy(dtype=object, na_value=None)
    else:
        values = column.to_numpy(dtype=object, na_value=None)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    cast = {"int": int, "float": float, "bool": bool}.get(kind, str)
    distinct = [cast(v) for v in uniques]
    if kind == "float":  # NaN is null, as in _properties
        nan = [j for j, v in enumerate(distinct) if math.isnan(v)]
        if nan:
            codes = np.where(np.isin(codes, nan), -1, codes)
    return name, np.asarray(codes, dtype=np.int64), distinct


def coded_columns(frame: pd.DataFrame) -> list[Column]:
    """``fid`` and every other column of ``frame`` but its geometry, coded as
    :func:`encode` codes them when it is given no fields (for a frame kept to cut many
    tiles from: code once, then take each tile's rows)."""
    geometry = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else None
    fields = [(c, _kind(frame[c])) for c in frame.columns if c not in ("fid", geometry)]
    return [_codes(frame[name], name, kind) for name, kind in (("fid", "text"), *fields)]


def _mercator_units(lon: np.ndarray, lat: np.ndarray, tile: Tile
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat in the tile's 0..EXTENT grid (y down), unsnapped."""
    minx, _, _, maxy = tile.bounds()
    scale = EXTENT / tile.size
    lat = np.clip(lat, -85.06, 85.06)
    mx = np.radians(lon) * 6378137.0
    my = np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) * 6378137.0
    return (mx - minx) * scale, (maxy - my) * scale


def _tile_units(geoms: np.ndarray, tile: Tile) -> np.ndarray:
    """Lon/lat geometries in the tile's 0..EXTENT grid (y down), clipped, snapped."""

    def to_tile(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(_mercator_units(xy[:, 0], xy[:, 1], tile))

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
