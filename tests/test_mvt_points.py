"""The vectorised point encoder (issue 16 §3: the embedded store's row tiles) against
mapbox-vector-tile, the encoder it replaces for points.

Same input, same bytes: the feature order, ids, tags, value table and snapped points of
:func:`service.mvt.encode`'s NumPy path equal those mapbox-vector-tile writes, on the
demo's equipment tiles and on frames made to hit the edge cases (nulls of every kind,
points on and past the buffer's edge, half-unit coordinates, missing and empty points,
negative and large integers, text that looks like a number, non-ASCII text).
"""

from __future__ import annotations

from datetime import date

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pandas as pd
import pytest
import shapely

from benchmarks.serve import tile_xy
from layers.registry import ALL
from service import mvt
from service.mvt import BUFFER, EXTENT, Tile, encode
from service.mvt_points import _varint, _varint_lengths, _varints
from service.store import open_store
from service.tiles import TILE_FIELDS

FIELDS = (("name", "text"), ("level", "text"), ("count", "int"), ("ratio", "float"),
          ("in_use", "bool"), ("due", "date"))


def _reference(frame: gpd.GeoDataFrame, tile: Tile, cell_ids: bool, fields) -> bytes:
    """mapbox-vector-tile's bytes (its path takes no empty point: left out first, as both
    paths leave them out)."""
    geoms = frame.geometry.to_numpy()
    frame = frame[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    return mvt._encode_features("equipment", frame, tile, cell_ids, fields)


def _decoded(data: bytes) -> list[dict]:
    layers = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})
    return layers["equipment"]["features"] if layers else []


def _edge_frame(tile: Tile, n: int = 400, seed: int = 3) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    west, south, east, north = tile.lonlat_bounds(tile.size * 2 * BUFFER / EXTENT)
    lon = rng.uniform(west, east, n)
    lat = rng.uniform(south, north, n)
    # points exactly on the buffer's edges and on half units of the grid
    minx, _, _, maxy = tile.bounds()
    unit = tile.size / EXTENT
    for i, (ux, uy) in enumerate([(-BUFFER, 10), (EXTENT + BUFFER, 20), (10.5, 30.5),
                                  (-0.5, -0.5), (EXTENT + BUFFER + 0.01, 5), (2047.5, 4095.5)]):
        mx, my = minx + ux * unit, maxy - uy * unit
        lon[i] = np.degrees(mx / 6378137.0)
        lat[i] = np.degrees(2 * np.arctan(np.exp(my / 6378137.0)) - np.pi / 2)
    geoms = shapely.points(lon, lat)
    geoms[10] = None
    geoms[11] = shapely.Point()
    levels = np.array(["red", "orange", "yellow", "blue", None], dtype=object)
    frame = gpd.GeoDataFrame({
        "fid": [f"F{i:05d}" for i in range(n)],
        "name": pd.array(["甲公司", "1", "", "锅炉 <b>", None] * (n // 5), dtype="string"),
        "level": levels[rng.integers(0, 5, n)],
        "count": pd.array(rng.choice([0, 1, -5, 2**40, None], n), dtype="Int64"),
        "ratio": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n).round(3) + 5e-4),
        "in_use": pd.array(rng.choice([True, False, None], n), dtype="boolean"),
        "due": pd.to_datetime(pd.Series(rng.choice(
            [date(2026, 1, 31), date(2025, 12, 1), None], n))),
        "h3": ["88" + f"{i:013x}" for i in rng.integers(0, 2**40, n)],
    }, geometry=geoms, crs=4326)
    return frame


@pytest.mark.parametrize("z", [8, 12, 14, 18])
@pytest.mark.parametrize("cell_ids", [False, True])
def test_edge_cases_give_the_reference_bytes(z, cell_ids):
    x, y = tile_xy(113.65, 34.76, z)
    tile = Tile(z, x, y)
    frame = _edge_frame(tile)
    fast = encode("equipment", frame, tile, cell_ids=cell_ids, fields=FIELDS)
    assert fast == _reference(frame, tile, cell_ids, FIELDS)
    decoded = mapbox_vector_tile.decode(fast, default_options={"y_coord_down": True})
    features = decoded["equipment"]["features"]
    assert 0 < len(features) < len(frame)  # the ones past the buffer and missing are out
    assert all(-BUFFER <= f["geometry"]["coordinates"][0] <= EXTENT + BUFFER for f in features)


def test_all_fields_inferred_and_no_fields():
    tile = Tile(14, *tile_xy(113.65, 34.76, 14))
    frame = _edge_frame(tile, 100)
    inferred = frame.drop(columns=["due"])
    assert encode("equipment", inferred, tile, cell_ids=False) == _reference(
        inferred, tile, False, tuple((c, mvt._kind(inferred[c])) for c in inferred.columns
                                     if c not in ("fid", "geometry")))
    only_fid = frame[["fid", "h3", "geometry"]]
    assert encode("equipment", only_fid, tile, cell_ids=True, fields=()) == _reference(
        only_fid, tile, True, ())


def test_nothing_inside_is_an_empty_tile():
    tile = Tile(14, *tile_xy(113.65, 34.76, 14))
    far = gpd.GeoDataFrame({"fid": ["a"], "level": ["red"]},
                           geometry=[shapely.Point(100.0, 20.0)], crs=4326)
    assert encode("equipment", far, tile, cell_ids=False, fields=(("level", "text"),)) == b""
    missing = gpd.GeoDataFrame({"fid": ["a"], "level": ["red"]}, geometry=[None], crs=4326)
    assert encode("equipment", missing, tile, cell_ids=False, fields=(("level", "text"),)) \
        == b""


@pytest.mark.reads_demo
def test_demo_equipment_tiles_match(api):
    """The demo's equipment row tiles at z12–z14 (the tiles of 40 sampled pieces each) with
    the map's default properties and every field, both encoders."""
    with open_store(api["url"]) as store:
        layer = store.read_layer("equipment")
    kinds = dict(ALL["equipment"].fields)
    every = tuple((c, kinds[c]) for c in ALL["equipment"].field_names)
    default = tuple((c, kinds[c]) for c in TILE_FIELDS["equipment"])
    located = layer[layer.geometry.notna()]
    sample = located.geometry.sample(40, random_state=1)
    for z in (12, 13, 14):
        for tile in {Tile(z, *tile_xy(p.x, p.y, z)) for p in sample}:
            west, south, east, north = tile.lonlat_bounds(tile.size * BUFFER / EXTENT)
            rows = layer.cx[west:east, south:north]
            # the map's default properties: the same bytes
            assert encode("equipment", rows, tile, cell_ids=False, fields=default) == \
                _reference(rows, tile, False, default), tile
            # every field: the same features. Not always the same bytes: mapbox-vector-tile
            # files a float 1.0 under an equal int 1 already in its value table (so 1.0
            # decodes as the int 1); each (type, value) is its own value here
            fast = _decoded(encode("equipment", rows, tile, cell_ids=False, fields=every))
            assert fast == _decoded(_reference(rows, tile, False, every)), tile
            for feature in fast:
                for name, kind in every:
                    if kind == "float" and name in feature["properties"]:
                        assert isinstance(feature["properties"][name], float)


def test_varints():
    values = np.array([0, 1, 127, 128, 300, 2**35, 2**63 - 1, 2**64 - 1], dtype=np.uint64)
    assert _varints(values).tobytes() == b"".join(_varint(int(v)) for v in values)
    assert _varint_lengths(values).tolist() == [len(_varint(int(v))) for v in values]


def _hexagons(tile: Tile, res: int, n: int = 300, seed: int = 5) -> gpd.GeoDataFrame:
    """H3 cells around and across the tile's edges, as the over-full tiles ship them."""
    import h3

    from geo.cells import cell_polygons

    rng = np.random.default_rng(seed)
    west, south, east, north = tile.lonlat_bounds(tile.size * 3 * BUFFER / EXTENT)
    ids = sorted({h3.latlng_to_cell(lat, lon, res) for lon, lat in zip(
        rng.uniform(west, east, n), rng.uniform(south, north, n), strict=True)})
    return gpd.GeoDataFrame({
        "fid": ids, "h3": ids, "resolution": pd.array([res] * len(ids), dtype="Int64"),
        "count": pd.array(rng.integers(1, 5000, len(ids)), dtype="Int64"),
        "n_red": pd.array(rng.choice([0, 3, None], len(ids)), dtype="Int64")},
        geometry=cell_polygons(ids), crs=4326)


@pytest.mark.parametrize(("z", "res"), [(6, 5), (8, 7), (10, 8), (12, 9), (12, 8), (5, 8),
                                        (3, 8)])
def test_hexagon_tiles_give_the_reference_bytes(z, res):
    """Cells of every size against the tile, tiny ones (snapped to a point or a line: left
    out or encoded as mapbox-vector-tile does) included."""
    tile = Tile(z, *tile_xy(113.65, 34.76, z))
    cells = _hexagons(tile, res)
    fields = (("resolution", "int"), ("count", "int"), ("n_red", "int"))
    for cell_ids in (True, False):
        fast = encode("risk-cells", cells, tile, cell_ids=cell_ids, fields=fields)
        reference = mvt._encode_features("risk-cells", cells, tile, cell_ids, fields,
                                         reference=True)
        _same_polygons(fast, reference, "risk-cells")


def _lonlat_of_units(tile: Tile, ring: list[tuple[float, float]]) -> shapely.Polygon:
    """A polygon given in the tile's units (y down), in lon/lat."""
    minx, _, _, maxy = tile.bounds()
    xy = np.asarray(ring)
    mx, my = minx + xy[:, 0] * tile.size / EXTENT, maxy - xy[:, 1] * tile.size / EXTENT
    lon = np.degrees(mx / 6378137.0)
    lat = np.degrees(2 * np.arctan(np.exp(my / 6378137.0)) - np.pi / 2)
    return shapely.Polygon(np.column_stack([lon, lat]))


def test_a_ring_that_crosses_itself_when_snapped_is_snapped_by_geos_alone():
    """Two vertices of a hexagon cut by the buffer's edge, a unit apart, snap into a spike
    (3194 → 3193 along the edge): that ring takes GEOS's snap-rounding, the general path's
    shape; the tile stays on the vectorised path."""
    tile = Tile(12, *tile_xy(113.65, 34.76, 12))
    edge = EXTENT + BUFFER - 0.1
    spiked = [(3050.2, edge), (3193.6, edge), (3193.4, edge - 0.3), (3104.2, 4121.1)]
    assert not shapely.Polygon(np.floor(np.asarray(spiked) + 0.5)).is_valid
    square = [(100.2, 100.2), (900.4, 100.3), (900.1, 900.2), (100.3, 900.4)]
    frame = gpd.GeoDataFrame({"fid": ["a", "b"], "name": ["x", "y"]},
                             geometry=[_lonlat_of_units(tile, square),
                                       _lonlat_of_units(tile, spiked)], crs=4326)
    fields = (("name", "text"),)
    fast = mvt._encode_rings("parks", frame, tile, False, fields)
    assert fast is not None  # vectorised, the spike included
    _same_polygons(fast, mvt._encode_features("parks", frame, tile, False, fields,
                                              reference=True), "parks")
    assert fast == encode("parks", frame, tile, cell_ids=False, fields=fields)


def _same_polygons(fast: bytes, reference: bytes, layer: str) -> None:
    """The same features, ids and properties in the same order, and rings of the same
    shape (GEOS's snapping may start a ring at another vertex)."""
    a = mapbox_vector_tile.decode(fast, default_options={"y_coord_down": True})
    b = mapbox_vector_tile.decode(reference, default_options={"y_coord_down": True})
    fa = a[layer]["features"] if a else []
    fb = b[layer]["features"] if b else []
    assert len(fa) == len(fb)
    for x, y in zip(fa, fb, strict=True):
        assert (x["id"], x["properties"]) == (y["id"], y["properties"])
        gx, gy = shapely.geometry.shape(x["geometry"]), shapely.geometry.shape(y["geometry"])
        assert gx.equals(gy) and gx.exterior.is_ccw == gy.exterior.is_ccw


def test_polygons_with_holes_and_multipolygons_go_feature_by_feature():
    tile = Tile(10, *tile_xy(113.65, 34.76, 10))
    west, south, east, north = tile.lonlat_bounds()
    dx, dy = (east - west) / 10, (north - south) / 10
    outer = shapely.box(west + dx, south + dy, west + 5 * dx, south + 5 * dy)
    holed = outer.difference(shapely.box(west + 2 * dx, south + 2 * dy, west + 3 * dx,
                                         south + 3 * dy))
    multi = shapely.MultiPolygon([shapely.box(west + 6 * dx, south + dy, west + 7 * dx,
                                              south + 2 * dy),
                                  shapely.box(west + 8 * dx, south + dy, west + 9 * dx,
                                              south + 2 * dy)])
    frame = gpd.GeoDataFrame({"fid": ["a", "b", "c"], "name": ["园区", None, "x"]},
                             geometry=[holed, multi, outer], crs=4326)
    fields = (("name", "text"),)
    fast = encode("parks", frame, tile, cell_ids=False, fields=fields)
    assert fast == mvt._encode_features("parks", frame, tile, False, fields, reference=True)
    assert len(mapbox_vector_tile.decode(fast)["parks"]["features"]) == 3
    # one ring each: vectorised, the same shapes
    boxes = frame.iloc[[2, 2]].assign(fid=["d", "e"])
    boxes.geometry = [outer, shapely.box(west, south, east + 5 * dx, north)]  # clipped
    fast = encode("parks", boxes, tile, cell_ids=False, fields=fields)
    _same_polygons(fast, mvt._encode_features("parks", boxes, tile, False, fields,
                                              reference=True), "parks")
