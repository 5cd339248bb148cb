"""A whole scope's rows read through COPY into Arrow (PostGIS, ``copied_frame``: what a
worklist reads of a city) are the frames the row-by-row read made: every layer of the
built demo, with scopes, long ``in`` lists, filters, a bbox, an order, an offset and a
subset of columns; and the worklists of several callers and days are the lists the old
read made, on both stores (the embedded store reads as before: its lists are the
reference there). No timings here: see docs/benchmarks.md."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pandas as pd
import pytest

import service.store.postgis.query as pg_query
from layers.registry import ALL
from service.auth import Principal, Role
from service.caches import Worklists
from service.store.base import Store
from service.store.query import (
    And,
    Compare,
    Condition,
    In,
    IsNull,
    LayerQuery,
    Like,
    Not,
    Or,
    query_frame,
)
from service.worklist import default_campaigns, worklist

pytestmark = [pytest.mark.slow, pytest.mark.reads_demo]
DAYS = ("2026-10-01", "2026-11-01", "2026-12-20", "2027-03-31")


@pytest.fixture(scope="module")
def store(api_store: Store) -> Store:
    return api_store


def _row_by_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """The PostGIS store reads whole scopes as before: the rows as Python tuples."""
    def old(conn, statement, spec, names):  # the geometry as WKB bytes, as typed_frame wants
        table = pg_query.layer_sql_table(next(
            lid for lid, s in pg_query.LAYER_TABLES.items() if s is spec))
        columns = pg_query.selected_columns(table, spec, names, spec.geometry)
        rows = conn.execute(statement.with_only_columns(*columns)).all()
        return pg_query.typed_frame(spec, names, rows, bool(spec.geometry))
    monkeypatch.setattr(pg_query, "copied_frame", old)


def _queries(store: Store, api: dict) -> Iterator[LayerQuery]:
    county = api["county"]
    cells = tuple(sorted(store.read("officer_cells")["h3"].dropna().astype(str).unique()))
    assert len(cells) > pg_query.ARRAY_VALUES  # the long list goes as one array parameter
    for layer, spec in ALL.items():
        names = {n for n, _ in spec.fields}
        yield LayerQuery(layer, (), None, None, 0)
        if "county_adcode" in names:
            yield LayerQuery(layer, (Condition("county_adcode", "prefix", (county[:4],)),),
                             None, None, 0)
        if "h3" in names:
            yield LayerQuery(layer, (Condition("h3", "in", cells),), None, None, 0)
    yield LayerQuery("equipment", (Condition("county_adcode", "eq", (county,)),),
                     (110.0, 31.0, 116.0, 36.5), None, 3,
                     columns=("registration_code", "level", "D", "unit_name"),
                     filter=Or((And((Compare("level", "=", "red"), Compare("D", ">=", 160))),
                                Not(Like("unit_name", "%公司%")))),
                     order=(("D", True), ("unit_name", False)))
    yield LayerQuery("check-schedule", (Condition("county_adcode", "prefix", (county[:4],)),),
                     None, None, 0, filter=Compare("next_due", "<=", date(2026, 12, 31)))
    yield LayerQuery("hazards", (), None, None, 0,
                     filter=And((In("status", ("已登记", "整改中")), Not(IsNull("deadline")))))


def test_a_whole_read_through_copy_is_the_row_by_row_frame(store, api, monkeypatch):
    """PostGIS: a whole scope read through COPY is the frame the row-by-row read made. The
    embedded store (no COPY): its own read, an STR-tree for a bbox, is the plain filter of
    the whole layer."""
    queries = list(_queries(store, api))
    new = [store.query_layer(q) for q in queries]
    if api["kind"] == "postgis":
        _row_by_row(monkeypatch)
        old = [store.query_layer(q) for q in queries]
    else:
        old = [(frame[list(a.columns)], n) for q, (a, _) in zip(queries, new, strict=True)
               for frame, n in [query_frame(store.read_layer(q.layer), q)]]
    assert sum(len(f) for f, _ in new) > 10_000
    for query, (a, n), (b, m) in zip(queries, new, old, strict=True):
        assert n == m, query
        pd.testing.assert_frame_equal(a, b, obj=repr(query)[:200])


def _callers(store: Store, api: dict) -> list[tuple[Principal, tuple[Condition, ...]]]:
    officer = api["officer"]
    cells = store.lookup("officer_cells", "officer_id", (officer,), ["h3"])["h3"]
    mine = Principal("u-officer", "officer", Role.GRID_OFFICER, officer,
                     tuple(sorted(cells.dropna().astype(str).unique())))
    return [(mine, ()), (mine, (Condition("h3", "eq", (mine.cells[0],)),)),
            (Principal("u-county", "county", Role.REGULATOR, api["county"]), ()),
            (Principal("u-city", "city", Role.REGULATOR, api["city"]), ()),
            (Principal("u-admin", "admin", Role.ADMIN, None), ())]


def test_every_callers_list_is_the_list_the_old_read_made(store, api, monkeypatch):
    campaigns = default_campaigns()
    callers = _callers(store, api)
    days = list(map(date.fromisoformat, DAYS))
    new = {(i, d): worklist(store, c, d, Worklists(), e, campaigns)
           for i, (c, e) in enumerate(callers) for d in days}
    if api["kind"] == "postgis":
        _row_by_row(monkeypatch)
    old = {(i, d): worklist(store, c, d, Worklists(), e, campaigns)
           for i, (c, e) in enumerate(callers) for d in days}
    for key, items in new.items():
        pd.testing.assert_frame_equal(items, old[key], obj=str(key))
    assert all(len(new[i, date(2026, 11, 1)]) for i in (0, 2, 3, 4))
    kinds = set().union(*(set(f["kind"]) for f in new.values()))
    assert {"check_due", "overdue_inspection"} <= kinds
