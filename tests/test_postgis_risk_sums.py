"""PostGIS only: a scoped caller's risk cells from the build's per-cell sums
(``layer_equipment__risk``) are the cells made from the pieces themselves, for every kind
of scope, the whole scope and tiles at the zooms of each cell resolution; a tile reads the
sums through their spatial index; a filter the sums do not keep falls back to the pieces."""

from __future__ import annotations

import json

import mapbox_vector_tile
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from layers.aggregate import TOTAL_COLUMNS
from layers.registry import ALL
from service import tiles
from service.caches import TileCache
from service.mvt import Tile, encode
from service.selection import scoped_risk_cells
from service.store.base import Store
from service.store.postgis import SESSION_OPTIONS, PostGISStore, risk_sums
from service.store.postgis.query import copied_arrow
from service.store.query import Condition
from service.tiles import Plan, _in_tile, _kept_scope_cells, cell_resolution

pytestmark = pytest.mark.postgis


@pytest.fixture(scope="module")
def store(demo_postgis_store: PostGISStore) -> PostGISStore:
    return demo_postgis_store


def _scopes(store: PostGISStore, demo_api: dict) -> dict[str, tuple[Condition, ...]]:
    eq = store.read_layer("equipment")
    county = eq["county_adcode"].value_counts().index[0]
    park = eq["park_id"].value_counts().index[0]
    return {"province": (), "city": (Condition("county_adcode", "prefix", (county[:4],)),),
            "county": (Condition("county_adcode", "eq", (county,)),),
            "park": (Condition("park_id", "eq", (park,)),),
            "officer": (Condition("h3", "in", tuple(sorted(demo_api["officer_cells"]))),)}


def _from_pieces(store: PostGISStore, where, bbox) -> tuple[np.ndarray, np.ndarray]:
    return Store.risk_cell_sums(store, where, bbox)


def _busiest_tile(store: PostGISStore, z: int) -> Tile:
    eq = store.read_layer("equipment")
    eq = eq[eq.geometry.notna().to_numpy()]
    county = eq[eq["county_adcode"] == eq["county_adcode"].value_counts().index[0]]
    x, y = float(county.geometry.x.median()), float(county.geometry.y.median())
    n = 1 << z
    tx = int((x + 180) / 360 * n)
    ty = int((1 - np.arcsinh(np.tan(np.radians(y))) / np.pi) / 2 * n)
    return Tile(z, tx, ty)


def _same_sums(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray]) -> None:
    np.testing.assert_array_equal(got[0], want[0])
    assert got[1].shape == want[1].shape == (len(want[0]), len(TOTAL_COLUMNS))
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=0)


@pytest.mark.parametrize("demo_api", ["postgis"], indirect=True)
def test_the_whole_scopes_sums_are_its_pieces_sums(demo_api, store):
    for name, where in _scopes(store, demo_api).items():
        want = _from_pieces(store, where, None)
        assert len(want[0]) > 0, name
        _same_sums(store.risk_cell_sums(where, None), want)
    every = store.risk_cell_sums((), None)[1]
    located = store.read_layer("equipment").geometry.notna().sum()
    rows = [n for n, _, _ in TOTAL_COLUMNS].index("rows")
    assert every[:, rows].sum() == located  # every located piece in exactly one cell


@pytest.mark.parametrize("demo_api", ["postgis"], indirect=True)
@pytest.mark.parametrize("z", [10, 12, 14])
def test_a_tiles_cells_are_the_cells_of_its_pieces(demo_api, store, monkeypatch, z):
    """The cells touching a dense tile, from the sums in the padded tile, are those the
    pieces in it make: whole, with the same indicators."""
    tile = _busiest_tile(store, z)
    res = cell_resolution(z)
    bbox = tile.lonlat_bounds(tile.cell_pad(res))
    for name, where in _scopes(store, demo_api).items():
        fast = _in_tile(scoped_risk_cells(store, where, bbox, (res,)), tile)
        with monkeypatch.context() as m:
            m.setattr(store, "risk_cell_sums", lambda w, b: _from_pieces(store, w, b))
            slow = _in_tile(scoped_risk_cells(store, where, bbox, (res,)), tile)
        if name in ("province", "city", "county"):
            assert len(slow) > 0, name
        pd.testing.assert_frame_equal(fast.reset_index(drop=True), slow.reset_index(drop=True),
                                      check_exact=False, rtol=1e-12)


def _sums_plan(store, demo_api, monkeypatch, where, bbox) -> str:
    """The plan of the statement ``risk_cell_sums`` runs (sequential scans off: the demo's
    table is small)."""
    seen: list = []

    def capture(conn, statement, schema):
        seen.append(statement)
        return copied_arrow(conn, statement, schema)

    monkeypatch.setattr(risk_sums, "copied_arrow", capture)
    store.risk_cell_sums(where, bbox)
    (statement,) = seen
    compiled = str(statement.compile(dialect=store.engine.dialect,
                                     compile_kwargs={"literal_binds": True}))
    assert "layer_equipment__risk" in compiled
    engine = create_engine(demo_api["url"], poolclass=NullPool,
                           connect_args={"options": SESSION_OPTIONS})
    try:
        with engine.connect() as conn:
            conn.execute(text("SET enable_seqscan = off"))
            return json.dumps(conn.exec_driver_sql(
                "EXPLAIN (FORMAT JSON) " + compiled.replace("%", "%%")).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.parametrize("demo_api", ["postgis"], indirect=True)
def test_a_tile_reads_the_sums_through_their_spatial_index(demo_api, store, monkeypatch):
    tile = _busiest_tile(store, 14)
    bbox = tile.lonlat_bounds(tile.cell_pad(cell_resolution(14)))
    plan = _sums_plan(store, demo_api, monkeypatch, _scopes(store, demo_api)["city"], bbox)
    assert "layer_equipment__risk_geom" in plan


@pytest.mark.parametrize("demo_api", ["postgis"], indirect=True)
@pytest.mark.parametrize(("scope", "index"), [("city", "_county"), ("county", "_county"),
                                              ("park", "_park"), ("officer", "_h3")])
def test_a_whole_scope_reads_the_sums_by_its_key(demo_api, store, monkeypatch, scope, index):
    """A scope's whole read (its cells graded once) takes its rows by the scope's key,
    not by scanning every row of the province."""
    plan = _sums_plan(store, demo_api, monkeypatch, _scopes(store, demo_api)[scope], None)
    assert "layer_equipment__risk" + index in plan


@pytest.mark.parametrize("demo_api", ["postgis"], indirect=True)
def test_a_filter_the_sums_do_not_keep_falls_back_to_the_pieces(demo_api, store):
    county = _scopes(store, demo_api)["county"]
    where = (*county, Condition("level", "in", ("red", "orange")))
    got = store.risk_cell_sums(where, None)
    _same_sums(got, _from_pieces(store, where, None))
    everything = store.risk_cell_sums(county, None)
    assert got[1][:, 0].sum() < everything[1][:, 0].sum()  # the filter took effect


@pytest.mark.parametrize("demo_api", ["postgis"], indirect=True)
@pytest.mark.parametrize("z", [10, 12, 14])
def test_a_kept_scopes_tile_is_the_tile_summed_around_it(demo_api, store, monkeypatch, z):
    """A scope's finer cells graded once and kept: the cells a tile draws from them are
    those summed around the tile; a scope over KEPT_SCOPE_CELLS is not kept."""
    tile = _busiest_tile(store, z)
    res = cell_resolution(z)
    where = _scopes(store, demo_api)["city"]
    plan = Plan(ALL["risk-cells"], "risk-cells", where, res)
    cells = _kept_scope_cells(store, plan, res, "b", TileCache())
    kept = cells.cells(cells.near(tile, res))
    around = _in_tile(scoped_risk_cells(store, where, tile.lonlat_bounds(tile.cell_pad(res)),
                                        (res,)), tile)
    assert len(around) > 0
    pd.testing.assert_frame_equal(kept.reset_index(drop=True), around.reset_index(drop=True),
                                  check_exact=False, rtol=1e-12)
    monkeypatch.setattr(tiles, "KEPT_SCOPE_CELLS", len(around) - 1)
    assert _kept_scope_cells(store, plan, res, "b", TileCache()) is None


@pytest.mark.parametrize("demo_api", ["postgis"], indirect=True)
@pytest.mark.parametrize("z", [12, 14])
def test_a_kept_scopes_tile_bytes_are_those_of_its_frame(demo_api, store, z):
    """Cut from the kept scope (properties coded once, each tile taking its rows), a tile
    is byte for byte the tile :func:`service.mvt.encode` makes of the same cells as a
    frame: every tile around the city's busiest, hexagons cut by the buffer's edge
    included; a filter on the cells (the frame path) keeps only what matches."""
    centre = _busiest_tile(store, z)
    res = cell_resolution(z)
    where = _scopes(store, demo_api)["city"]
    kept = _kept_scope_cells(store, Plan(ALL["risk-cells"], "risk-cells", where, res), res,
                             "b", TileCache())
    drawn = 0
    for dx in range(-2, 3):
        for dy in range(-2, 3):
            tile = Tile(z, centre.x + dx, centre.y + dy)
            rows = kept.near(tile, res)
            frame = kept.cells(rows)
            assert len(frame) == len(_in_tile(frame, tile))
            assert kept.encode("risk-cells", rows, tile) == encode(
                "risk-cells", frame, tile, cell_ids=True)
            drawn += len(rows) > 0
    assert drawn >= 5
    red = Plan(ALL["risk-cells"], "risk-cells", where, res,
               cell_filters=(Condition("level", "in", ("red", "orange")),))
    data = tiles.draw(store, red, centre, "b", TileCache())
    layer = mapbox_vector_tile.decode(data)["risk-cells"] if data else {"features": []}
    assert {f["properties"]["level"] for f in layer["features"]} <= {"red", "orange"}


@pytest.mark.parametrize("demo_api", ["postgis"], indirect=True)
def test_a_scope_over_its_cap_is_counted_not_graded(demo_api, store, monkeypatch):
    """``max_cells``: a scope with more cells is refused from the count of its finest sums'
    parents, before any cell is graded (a province's first res-8 tile used to grade all
    of its cells only to drop them); at or under the cap, the cells are the same."""
    where = _scopes(store, demo_api)["city"]
    whole = scoped_risk_cells(store, where, None, (8,), hexagons=False)
    at_cap = scoped_risk_cells(store, where, None, (8,), hexagons=False, max_cells=len(whole))
    pd.testing.assert_frame_equal(at_cap, whole)

    def graded(*_args, **_kw):
        raise AssertionError("graded a scope over its cap")

    monkeypatch.setattr("layers.aggregate.nested_risk_cells", graded)
    assert scoped_risk_cells(store, where, None, (8,), hexagons=False,
                             max_cells=len(whole) - 1) is None
