"""Cold tiles (issue 16 §3): what the profile of a cold request led to.

- :class:`service.caches.TileCache` computes a key once however many requests miss it at
  the same time (on a cold start every over-full tile wanted the whole-scope H3 counts, and
  each of the eight clients' requests ran that GROUP BY again);
- the PostGIS row-tile statement is made once per layer, scope and fields and reused for
  every tile with the tile bound at execution: each tile must still get its own rows;
- the whole-scope counts come back as plain integer arrays.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import numpy as np
import pytest

from service.caches import TileCache
from service.store.query import Condition


def test_concurrent_misses_of_one_key_compute_it_once():
    cache = TileCache()
    calls = Counter()
    start = threading.Barrier(8)
    got: list[bytes] = []

    def slow() -> bytes:
        calls["counts"] += 1
        time.sleep(0.2)
        return b"counts"

    def ask() -> None:
        start.wait()
        got.append(cache.get(("build", "counts"), slow))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert calls["counts"] == 1 and got == [b"counts"] * 8
    # other keys are not held up by a slow one
    assert cache.get(("build", "other"), lambda: b"x") == b"x"


def test_a_failed_computation_leaves_the_key_to_the_next_caller():
    cache = TileCache()
    entered, release = threading.Event(), threading.Event()
    errors: list[Exception] = []

    def failing() -> bytes:
        entered.set()
        release.wait(5)
        raise RuntimeError("store down")

    def first() -> None:
        try:
            cache.get(("k",), failing)
        except RuntimeError as exc:
            errors.append(exc)

    t = threading.Thread(target=first)
    t.start()
    entered.wait(5)
    waiter: list[bytes] = []
    w = threading.Thread(target=lambda: waiter.append(cache.get(("k",), lambda: b"ok")))
    w.start()
    time.sleep(0.05)
    assert not waiter  # waiting for the first computation, not computing beside it
    release.set()
    t.join(5)
    w.join(5)
    assert len(errors) == 1 and waiter == [b"ok"]
    assert cache.get(("k",), lambda: b"other") == b"ok"


def test_asking_for_a_key_inside_its_own_computation_does_not_wait_on_itself():
    cache = TileCache()

    def outer() -> bytes:
        return b"outer+" + cache.get(("k",), lambda: b"inner")

    assert cache.get(("k",), outer) == b"outer+inner"


def test_a_tiny_budget_still_answers_every_waiter():
    cache = TileCache(budget=1)
    assert cache.get(("a",), lambda: b"aaaa") == b"aaaa"
    assert cache.get(("b",), lambda: b"bbbb") == b"bbbb"
    assert cache.get(("a",), lambda: b"again") == b"again"  # dropped, made anew


@pytest.mark.postgis
@pytest.mark.parametrize("demo_api", ["postgis"], indirect=True)
def test_the_reused_tile_statement_answers_each_tile_with_its_own_rows(demo_api):
    """The cached statement with the tile bound at execution gives, tile by tile, the
    bytes of the statement with that tile's values written in; and the whole-scope counts
    are integer arrays summing to the located rows."""
    from sqlalchemy import text
    from sqlalchemy.dialects import postgresql

    from benchmarks.serve import tile_xy
    from layers.registry import ALL
    from service import mvt, tiles
    from service.store import open_store
    from service.store.postgis import tiles as sql_tiles

    kinds = dict(ALL["equipment"].fields)
    fields = tuple((n, kinds[n]) for n in tiles.TILE_FIELDS["equipment"])
    store = open_store(demo_api["url"])
    try:
        points = store.read_layer("equipment", columns=["geometry", "county_adcode", "h3"])
        located = points[~points.geometry.is_empty & points.geometry.notna()]
        county = Counter(located["county_adcode"]).most_common(1)[0][0]
        where = (Condition("county_adcode", "prefix", (county,)),)
        xy = np.column_stack([located.geometry.x, located.geometry.y])
        addresses = {(z, *tile_xy(lon, lat, z)) for lon, lat in xy[:40] for z in (12, 14)}
        assert len(addresses) >= 4
        seen = set()
        with store.engine.connect() as conn:
            for z, x, y in sorted(addresses):
                got = sql_tiles.mvt(conn, "equipment", where, z, x, y, extent=mvt.EXTENT,
                                    buffer=mvt.BUFFER, cap=10_000, cell_ids=False,
                                    fields=fields)
                literal = sql_tiles.mvt_statement(
                    "equipment", where, z, x, y, extent=mvt.EXTENT, buffer=mvt.BUFFER,
                    cap=10_000, cell_ids=False, fields=fields).compile(
                        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
                row = conn.execute(text(str(literal))).one()
                conn.rollback()
                assert got == bytes(row.tile or b""), (z, x, y)
                seen.add(got)
            assert len(seen) >= 3  # different tiles, different bytes
            cells, counts = sql_tiles.cell_counts(conn, "equipment", (), store.h3_resolution,
                                                  None, ("red", "blue"))
            conn.rollback()
        assert cells.dtype == np.uint64 and counts.dtype == np.int64
        assert counts.shape == (len(cells), 3)
        assert int(counts[:, 0].sum()) == int(located["h3"].notna().sum())
        assert (counts[:, 1] + counts[:, 2] <= counts[:, 0]).all()
    finally:
        store.close()
