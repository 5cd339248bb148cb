"""PostGIS only: the relink joins use the polygons' GiST index, and the schema that the
migrations build is the one the models describe."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from service.store.postgis import PostGISStore, relink_sql
from service.store.postgis.models import (
    INDEXED,
    Base,
    include_object,
    index_name,
    spatial_index_name,
)
from service.store.tables import LINKS, TABLES

pytestmark = pytest.mark.postgis

N_POINTS, N_PARKS, N_VENUES = 20_000, 100, 1_000
HENAN = (110.4, 31.4, 116.6, 36.3)


def _boxes(prefix: str, n: int, size_km: tuple[float, float], rng: np.random.Generator
           ) -> dict[str, tuple[float, float, float, float]]:
    minx, miny, maxx, maxy = HENAN
    x, y = rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)
    half = rng.uniform(*size_km, n) / 111.0 / 2
    return {f"{prefix}{i:05d}": (x[i] - half[i], y[i] - half[i], x[i] + half[i], y[i] + half[i])
            for i in range(n)}


@pytest.fixture(scope="module")
def loaded_url(postgis_server, postgis_template, frames) -> Iterator[str]:
    """One database for the module, loaded through the store with realistic sizes."""
    name = f"{postgis_template}_plans"
    url = postgis_server.create_database(name, template=postgis_template)
    rng = np.random.default_rng(42)
    minx, miny, maxx, maxy = HENAN
    lon, lat = rng.uniform(minx, maxx, N_POINTS), rng.uniform(miny, maxy, N_POINTS)
    points = [(f"TS{i:08d}", float(x), float(y)) for i, (x, y) in
              enumerate(zip(lon, lat, strict=True))]
    store = PostGISStore(url)
    store.write_batch(frames.batch("plans", {
        "equipment": frames.equipment(points),
        "units": frames.units(points[: N_POINTS // 4]),
        "parks": frames.polygons("parks", _boxes("P", N_PARKS, (2.0, 8.0), rng)),
        "venues": frames.polygons("venues", _boxes("V", N_VENUES, (0.2, 1.0), rng)),
    }))
    store.close()
    yield url
    postgis_server.drop_database(name)


def _nodes(plan: dict, parents: tuple[dict, ...] = ()):
    """Every plan node with its ancestors."""
    yield plan, parents
    for child in plan.get("Plans", []):
        yield from _nodes(child, (*parents, plan))


def _explain(url: str, table: str, column: str, everything: bool) -> dict:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            raw = conn.execute(text("EXPLAIN (FORMAT JSON) " + relink_sql(table, column)),
                               {"everything": everything, "batch_id": "plans"}).scalar_one()
    finally:
        engine.dispose()
    return (raw if isinstance(raw, list) else json.loads(raw))[0]["Plan"]


def _inner_side_of_a_nested_loop(node: dict, parents: tuple[dict, ...]) -> bool:
    """Whether ``node`` is (under) the inner side of its nearest Nested Loop, i.e. run once
    per outer row."""
    path = (*parents, node)
    for i in range(len(path) - 2, -1, -1):
        if path[i]["Node Type"] == "Nested Loop":
            return path[i + 1].get("Parent Relationship") == "Inner"
    return False


@pytest.mark.parametrize("everything", [True, False], ids=["all-rows", "batch-rows"])
@pytest.mark.parametrize("table", ["equipment", "units"])
@pytest.mark.parametrize(("column", "polygons"), LINKS)
def test_relink_joins_through_a_gist_index(loaded_url, table, column, polygons, everything):
    """The point-in-polygon join is a nested loop whose inner side probes a GiST index (the
    store drives it from the polygons, so it is the points' index: 1,100 probes, not 20,000
    or 1M); neither table is ever scanned whole once per row of the other."""
    plan = _explain(loaded_url, table, column, everything)
    shown = json.dumps(plan, indent=1)
    nodes = list(_nodes(plan))
    gist = {spatial_index_name(table), spatial_index_name(polygons)}
    probes = [(n, p) for n, p in nodes
              if n["Node Type"] in ("Index Scan", "Bitmap Index Scan", "Index Only Scan")
              and n.get("Index Name") in gist and "&&" in n.get("Index Cond", "")]
    assert probes, shown
    assert all(_inner_side_of_a_nested_loop(n, p) for n, p in probes), shown
    for node, parents in nodes:
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in (table, polygons):
            assert not _inner_side_of_a_nested_loop(node, parents), shown


def test_relink_results_match_a_brute_force_join(loaded_url):
    """The same answer as shapely on every point, so the fast plan is also the right one."""
    from service.store.embedded import smallest_containing

    store = PostGISStore(loaded_url)
    try:
        for table in ("equipment", "units"):
            points = store.read(table)
            for column, polygons in LINKS:
                expected = smallest_containing(points.geometry, store.read(polygons),
                                               TABLES[polygons].key)
                assert expected.notna().sum() > 0
                pd.testing.assert_series_equal(points[column], expected, check_names=False)
    finally:
        store.close()


def test_migrations_build_what_the_models_describe(postgis_db_url):
    engine = create_engine(postgis_db_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={
                "include_object": include_object, "compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            inspector = inspect(conn)
            for table, columns in INDEXED.items():
                names = {i["name"] for i in inspector.get_indexes(table)}
                assert {index_name(table, c) for c in columns} <= names
                if table in ("equipment", "units", "parks", "venues"):
                    assert spatial_index_name(table) in names
    finally:
        engine.dispose()


def test_opening_a_bare_database_migrates_it(postgis_server):
    """A database with nothing in it (no postgis even) becomes a store on open."""
    name = f"riskmap_t_{os.getpid()}_bare"
    url = postgis_server.create_database(name)
    try:
        store = PostGISStore(url)
        assert store.data_version() == "0"
        assert store.read("equipment").empty
        store.close()
        PostGISStore(url).close()  # a second open finds the schema current
    finally:
        postgis_server.drop_database(name)
