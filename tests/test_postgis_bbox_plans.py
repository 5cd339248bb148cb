"""PostGIS only, the plans of what a small bounding box bounds (an items page's bbox, a
row tile): a risk level in it is read from that level's own GiST index (a partial index
per level of the point layers), also as a list of levels and on a connection that has run
the statement often enough to prepare it; a regulator's region is checked on the bbox's
rows, not read from its index. The rows are what a mask of the whole layer gives."""

from __future__ import annotations

import json

import morecantile
import pandas as pd
import pytest
import shapely
from sqlalchemy import create_engine, event, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.pool import NullPool

from service.store.postgis import SESSION_OPTIONS, PostGISStore
from service.store.postgis.layers import LEVEL_INDEXED
from service.store.postgis.query import NARROW_DEG
from service.store.postgis.tiles import mvt_statement
from service.store.query import Compare, Condition, In, LayerQuery

pytestmark = pytest.mark.postgis


@pytest.fixture(scope="module")
def store(demo_postgis_store: PostGISStore) -> PostGISStore:
    return demo_postgis_store


def _busiest_bbox(store: PostGISStore) -> tuple[float, float, float, float]:
    """A bbox around the equipment of the busiest county, holding every level."""
    eq = store.read_layer("equipment")
    county = eq[eq["county_adcode"] == eq["county_adcode"].value_counts().index[0]]
    x0, y0, x1, y1 = county.geometry.total_bounds
    return float(x0), float(y0), float(x1), float(y1)


def _statements(store: PostGISStore, query: LayerQuery) -> tuple[pd.DataFrame, list]:
    """The page ``query`` gives and the SELECTs the store sent for it."""
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    engines = (store.engine, store._reads)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", capture)
    try:
        frame, _ = store.query_layer(query)
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", capture)
    return frame, [s for s in seen if "layer_equipment" in s[0]]


def _plans(url: str, statements: list) -> list[str]:
    engine = create_engine(url, poolclass=NullPool, connect_args={"options": SESSION_OPTIONS})
    try:
        with engine.connect() as conn:
            conn.execute(text("SET enable_seqscan = off"))  # a small table may prefer a scan
            return [json.dumps(conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + sql,
                                                    params).scalar_one())
                    for sql, params in statements]
    finally:
        engine.dispose()


@pytest.mark.parametrize("demo_api", ["postgis"], indirect=True)
@pytest.mark.parametrize("how", ["filter", "condition"])
def test_a_level_in_a_bbox_reads_its_own_index(demo_api, store, how):
    bbox = _busiest_bbox(store)
    query = LayerQuery("equipment", bbox=bbox, limit=50,
                       filter=Compare("level", "=", "red") if how == "filter" else None,
                       where=(Condition("level", "eq", ("red",)),) if how == "condition"
                       else ())
    _, statements = _statements(store, query)
    assert statements, "the page and its count were read"
    for plan in _plans(demo_api["url"], statements):
        assert "gix_layer_equipment_geom_red" in plan
        assert "ix_layer_equipment_level" not in plan


@pytest.mark.parametrize("demo_api", ["postgis"], indirect=True)
@pytest.mark.parametrize("how", ["filter", "condition"])
def test_a_list_of_levels_reads_each_levels_index(demo_api, store, how):
    bbox = _busiest_bbox(store)
    levels = ("red", "orange")
    query = LayerQuery("equipment", bbox=bbox, limit=10_000,  # a page: no COPY to capture
                       filter=In("level", levels) if how == "filter" else None,
                       where=(Condition("level", "in", levels),) if how == "condition"
                       else ())
    frame, statements = _statements(store, query)
    plans = _plans(demo_api["url"], statements)
    assert plans and all("gix_layer_equipment_geom_red" in p and
                         "gix_layer_equipment_geom_orange" in p for p in plans)
    # the rows: the levels' rows in the bbox, as a mask of the whole layer gives them
    eq = store.read_layer("equipment")
    inside = shapely.intersects(eq.geometry.to_numpy(), shapely.box(*bbox))
    want = eq[inside & eq["level"].isin(levels).to_numpy()]
    assert len(want) > 0
    assert sorted(frame["fid"]) == sorted(want["fid"])
    # NOT IN keeps SQL's logic: no row of those levels, and no row without a level
    negated, _ = store.query_layer(LayerQuery("equipment", bbox=bbox, limit=None,
                                              filter=In("level", levels, negate=True)))
    assert sorted(negated["fid"]) == sorted(
        eq[inside & eq["level"].notna().to_numpy() & ~eq["level"].isin(levels).to_numpy()]
        ["fid"])


@pytest.mark.parametrize("demo_api", ["postgis"], indirect=True)
def test_statements_are_planned_with_their_values(demo_api, store):
    """A statement run often on one connection is prepared by psycopg; PostgreSQL would
    then plan it once for any value, which no per-level index serves: the store's
    connections plan every run with its values."""
    for engine in (store.engine, store._reads):
        with engine.connect() as conn:
            assert conn.execute(text("SHOW plan_cache_mode")).scalar_one() == \
                "force_custom_plan"
    bbox = _busiest_bbox(store)
    query = LayerQuery("equipment", bbox=bbox, limit=20, filter=Compare("level", "=", "red"))
    first, _ = store.query_layer(query)
    for _ in range(12):  # past psycopg's prepare threshold and PostgreSQL's five custom plans
        again, _ = store.query_layer(query)
    assert list(again["fid"]) == list(first["fid"])


@pytest.mark.parametrize("demo_api", ["postgis"], indirect=True)
def test_the_level_indexed_layers_have_an_index_per_level(demo_api, store):
    with store.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE indexname LIKE "
            "'gix\\_%\\_geom\\_%'")).all()
    by_table: dict[str, set[str]] = {}
    for table, name, definition in rows:
        by_table.setdefault(table, set()).add(name.rsplit("_", 1)[1])
        assert f"WHERE (level = '{name.rsplit('_', 1)[1]}'" in definition
    assert by_table == {t: {"red", "orange", "yellow", "blue"} for t in LEVEL_INDEXED}


def _city_and_narrow_bbox(store: PostGISStore) -> tuple[str, tuple[float, float, float, float]]:
    """The busiest city's prefix and a bbox NARROW_DEG wide on its border: around the
    midpoint of its piece nearest to another city's."""
    eq = store.read_layer("equipment")
    eq = eq[eq.geometry.notna().to_numpy()]
    city = eq["county_adcode"].str[:4].value_counts().index[0]
    is_mine = (eq["county_adcode"].str[:4] == city).to_numpy()
    mine, other = eq.geometry.to_numpy()[is_mine], eq.geometry.to_numpy()[~is_mine]
    (at, near), distance = shapely.STRtree(other).query_nearest(mine, return_distance=True)
    k = int(distance.argmin())
    a, b = mine[at[k]], other[near[k]]
    x, y = (a.x + b.x) / 2, (a.y + b.y) / 2
    half = NARROW_DEG / 2
    return city, (x - half, y - half, x + half, y + half)


@pytest.mark.parametrize("demo_api", ["postgis"], indirect=True)
def test_a_narrow_bbox_checks_the_region_on_its_rows(demo_api, store):
    eq = store.read_layer("equipment")
    city, bbox = _city_and_narrow_bbox(store)
    scope = (Condition("county_adcode", "prefix", (city,)),)
    frame, statements = _statements(store, LayerQuery("equipment", scope, bbox, 10_000))
    assert statements and all("county_adcode ||" in sql for sql, _ in statements)
    for plan in _plans(demo_api["url"], statements):
        assert "gix_layer_equipment_geom" in plan
        assert "ix_layer_equipment_county_adcode" not in plan
    inside = shapely.intersects(eq.geometry.to_numpy(), shapely.box(*bbox))
    want = eq[inside & eq["county_adcode"].str.startswith(city).to_numpy()]
    assert 0 < len(want) < inside.sum()  # the bbox holds the city's rows and others
    assert sorted(frame["fid"]) == sorted(want["fid"])
    # a wide bbox leaves the choice to the planner: the region's index may serve it
    wide = (bbox[0] - 1, bbox[1] - 1, bbox[2] + 1, bbox[3] + 1)
    _, statements = _statements(store, LayerQuery("equipment", scope, wide, 10_000))
    assert all("county_adcode LIKE" in sql for sql, _ in statements)
    assert not any("county_adcode ||" in sql for sql, _ in statements)


@pytest.mark.parametrize("demo_api", ["postgis"], indirect=True)
def test_a_regulators_row_tile_checks_the_region_on_the_tiles_rows(demo_api, store):
    """A z14 tile of a city regulator: the tile's GiST entries, the city on each row; a z8
    tile (wide) keeps the region's index available."""
    city, bbox = _city_and_narrow_bbox(store)
    scope = (Condition("county_adcode", "prefix", (city,)),)
    lon, lat = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    statements = []
    for z in (14, 8):
        tile = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, z)
        statement = mvt_statement("equipment", scope, z, tile.x, tile.y, extent=4096,
                                  buffer=64, cap=10_000, cell_ids=False)
        statements.append(str(statement.compile(dialect=postgresql.dialect(),
                                                compile_kwargs={"literal_binds": True})))
    narrow_sql, wide_sql = statements
    assert "county_adcode ||" in narrow_sql and "county_adcode ||" not in wide_sql
    (plan,) = _plans(demo_api["url"], [(narrow_sql.replace("%", "%%"), {})])
    assert "gix_layer_equipment_geom" in plan
    assert "ix_layer_equipment_county_adcode" not in plan


@pytest.mark.parametrize("demo_api", ["postgis"], indirect=True)
def test_a_bboxs_points_come_exactly_as_the_layer_holds_them(demo_api, store):
    """The points a scoped risk cell is made of (read through COPY and Arrow): the layer's
    rows in the bbox and the region, their columns in the store's dtypes and their lon/lat
    the stored points' to the last bit."""
    from layers.aggregate import TOTAL_INPUTS as RISK_CELL_INPUTS

    eq = store.read_layer("equipment")
    city, bbox = _city_and_narrow_bbox(store)
    scope = (Condition("county_adcode", "prefix", (city,)),)
    got = store.layer_points("equipment", scope, bbox, RISK_CELL_INPUTS)
    inside = shapely.intersects(eq.geometry.to_numpy(), shapely.box(*bbox))
    want = eq[inside & eq["county_adcode"].str.startswith(city).to_numpy()]
    assert len(got) == len(want) > 0
    key = ["lon", "lat", *RISK_CELL_INPUTS]
    expected = pd.DataFrame({"lon": want.geometry.x.to_numpy(),
                             "lat": want.geometry.y.to_numpy(),
                             **{c: want[c].to_numpy() for c in RISK_CELL_INPUTS}})
    expected = expected.astype({c: want[c].dtype for c in RISK_CELL_INPUTS})
    ordered = got[key].sort_values(["lon", "lat"], ignore_index=True)
    pd.testing.assert_frame_equal(ordered, expected.sort_values(["lon", "lat"],
                                                                ignore_index=True))
    empty = store.layer_points("equipment", scope, (0.0, 0.0, 0.01, 0.01), RISK_CELL_INPUTS)
    assert len(empty) == 0 and list(empty.dtypes) == list(got.dtypes)
