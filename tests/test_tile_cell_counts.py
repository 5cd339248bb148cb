"""The per-build H3 counts of the equipment layer on PostGIS (issue 16 §2–3).

The whole-scope counts behind low-zoom and over-full tiles were one GROUP BY over every row
of the caller's scope (0.9 s for a province at 1M, 5.6 s at 10M). A build now also writes
``layer_equipment__cells``, the rows counted by stored cell, region codes, park and level,
and the counts are sums over it whenever the scope and filters name only those columns.
Here: the sums equal the GROUP BY of the rows for every kind of scope and filter, at every
resolution; a filter on another column, a bounding box, or a build written before the
table existed fall back to the rows; the table is replaced with its layer by each build.
"""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

from service.build import run_build
from service.store import open_store
from service.store.postgis import tiles as sql_tiles
from service.store.query import Condition
from tests.conftest import DEMO_AS_OF, DEMO_PROVINCES, _fill_demo

pytestmark = pytest.mark.postgis
WORLD = (-180.0, -90.0, 180.0, 90.0)  # a box holding every row: the rows' own GROUP BY
LEVELS = ("red", "orange", "yellow", "blue")


@pytest.fixture
def demo(filled_store):
    filled = filled_store(_fill_demo)
    store = open_store(filled.url)
    yield store, filled.facts
    store.close()


def _both(store, where, res, levels=LEVELS):
    with store._reads.connect() as conn:
        summed = sql_tiles.cell_counts(conn, "equipment", where, res, None, levels)
        direct = sql_tiles.cell_counts(conn, "equipment", where, res, WORLD, levels)
    return summed, direct


@pytest.mark.parametrize("filled_store", ["postgis"], indirect=True)
def test_sums_equal_the_rows_group_by_for_every_scope(demo):
    store, facts = demo
    cells = sorted(facts["officer_cells"])
    scopes = {
        "all": (),
        "province": (Condition("province_adcode", "eq", ("410000",)),),
        "city": (Condition("city_adcode", "eq", (facts["city"],)),),
        "county prefix": (Condition("county_adcode", "prefix", (facts["county"][:4],)),),
        "park": (Condition("park_id", "eq", (facts["park"],)),),
        "officer": (Condition("h3", "in", tuple(cells)),),
        "city, red and orange": (Condition("city_adcode", "eq", (facts["city"],)),
                                 Condition("level", "in", ("red", "orange"))),
        "nobody": (Condition("county_adcode", "eq", ("999999",)),),
    }
    for name, where in scopes.items():
        for res in (5, 7, 8):
            (c1, n1), (c2, n2) = _both(store, where, res)
            assert np.array_equal(c1, c2) and np.array_equal(n1, n2), (name, res)
            assert c1.dtype == np.uint64 and n1.dtype == np.int64
        if name != "nobody":
            assert len(c1) and n1[:, 0].sum() >= n1[:, 1:].sum() > 0  # some not graded
    # no levels asked: one column
    (c1, n1), (c2, n2) = _both(store, (), 8, ())
    assert np.array_equal(n1, n2) and n1.shape[1] == 1


@pytest.mark.parametrize("filled_store", ["postgis"], indirect=True)
def test_other_filters_and_old_builds_count_the_rows(demo, monkeypatch):
    store, _ = demo
    calls: list[str] = []
    real = sql_tiles.sql_condition

    def spy(table, condition, **options):
        calls.append(table.name)
        return real(table, condition, **options)

    monkeypatch.setattr(sql_tiles, "sql_condition", spy)
    category = (Condition("top_category", "eq", ("4000",)),)
    (c1, n1), (c2, n2) = _both(store, category, 7)
    assert np.array_equal(c1, c2) and np.array_equal(n1, n2) and len(c1)
    assert "layer_equipment__cells" not in calls  # top_category is not counted by
    calls.clear()
    _both(store, (Condition("level", "eq", ("red",)),), 7)
    assert "layer_equipment__cells" in calls
    # a build from before the table: the rows again, the same figures
    with store.engine.begin() as conn:
        before = _both(store, (), 6)
        conn.execute(text("DROP TABLE layer_equipment__cells"))
    after = _both(store, (), 6)
    assert np.array_equal(before[0][1], after[0][1]) and np.array_equal(after[0][1],
                                                                        after[1][1])
    # the next build writes it again, with its layer
    run_build(store, DEMO_PROVINCES, as_of=DEMO_AS_OF)
    with store._reads.connect() as conn:
        rows = conn.execute(text("SELECT sum(n) FROM layer_equipment__cells")).scalar()
        located = conn.execute(text("SELECT count(*) FROM layer_equipment WHERE h3 IS NOT "
                                    "NULL AND geom IS NOT NULL")).scalar()
    assert rows == located > 0
