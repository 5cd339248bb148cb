"""A worklist for another day reuses what does not depend on the day (issue 16: a fresh
list within 50 ms at 1M) without changing what it says: the same items as a list made
from nothing, for every day; a hazard moved or closed, or a new build, shows on every day's
list at once. Both stores, the built demo. No timings here: see docs/benchmarks.md."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import date

import pandas as pd
import pytest

from service.auth import Principal, Role
from service.caches import Worklists
from service.store.base import Store
from service.store.query import Condition
from service.worklist import default_campaigns, worklist
from tests.servers import call

pytestmark = pytest.mark.slow
DAYS = ("2026-10-01", "2026-11-01", "2027-01-15", "2027-06-30")


@pytest.fixture(scope="module")
def store(api_store: Store) -> Store:
    return api_store


def _officer(store: Store, officer: str) -> Principal:
    cells = store.lookup("officer_cells", "officer_id", (officer,), ["h3"])["h3"]
    return Principal("u-officer", "officer", Role.GRID_OFFICER, officer,
                     tuple(sorted(cells.dropna().astype(str).unique())))


def _callers(store: Store, api: dict) -> list[tuple[Principal, tuple[Condition, ...]]]:
    officer = _officer(store, api["officer"])
    return [(officer, ()), (officer, (Condition("h3", "eq", (officer.cells[0],)),)),
            (Principal("u-county", "county", Role.REGULATOR, api["county"]), ()),
            (Principal("u-admin", "admin", Role.ADMIN, None), ())]


def _counting(monkeypatch: pytest.MonkeyPatch, store: Store) -> Counter:
    """Counts the store's layer queries and lookups from now on."""
    calls: Counter = Counter()

    def counted(name: str) -> Callable:
        method = getattr(store, name)

        def run(*args: object, **kwargs: object) -> object:
            calls[name] += 1
            return method(*args, **kwargs)
        return run

    for name in ("query_layer", "lookup", "read"):
        monkeypatch.setattr(store, name, counted(name))
    return calls


def test_every_days_list_is_the_list_made_from_nothing(store, api):
    kept = Worklists()
    campaigns = default_campaigns()
    for caller, extra in _callers(store, api):
        for day in map(date.fromisoformat, DAYS):
            again = worklist(store, caller, day, kept, extra, campaigns)
            anew = worklist(store, caller, day, Worklists(), extra, campaigns)
            pd.testing.assert_frame_equal(again, anew)
    officer = worklist(store, _callers(store, api)[0][0], date(2026, 11, 1), kept)
    assert len(officer), "the demo officer has work on the demo's day"


def test_a_scope_too_large_to_keep_its_items_gets_the_same_lists(store, api, monkeypatch):
    """Past KEPT_ITEM_ROWS hazards or scheduled units, only the day's rows become items,
    every time (the cache would not keep them all): the lists are the same."""
    campaigns = default_campaigns()
    kept = {(c, e, d): worklist(store, c, d, Worklists(), e, campaigns)
            for c, e in _callers(store, api) for d in map(date.fromisoformat, DAYS)}
    monkeypatch.setattr("service.worklist.KEPT_ITEM_ROWS", 0)
    for (caller, extra, day), items in kept.items():
        pd.testing.assert_frame_equal(worklist(store, caller, day, Worklists(), extra,
                                               campaigns), items)
    assert any(len(items) for items in kept.values())


def test_a_list_for_another_day_queries_nothing_again(store, api, monkeypatch):
    kept = Worklists()
    caller, _ = _callers(store, api)[0]
    first = worklist(store, caller, date(2026, 11, 1), kept)
    calls = _counting(monkeypatch, store)
    other = worklist(store, caller, date(2027, 1, 15), kept)
    assert not calls  # the layers' rows and the live lookups were kept
    assert len(first) and len(other)
    # the items that hold whatever the day: every overdue inspection on both days
    overdue = [set(f.loc[f["kind"] == "overdue_inspection", "registration_code"])
               for f in (first, other)]
    assert overdue[0] == overdue[1] and overdue[0]


def test_a_new_build_is_read_anew(store, api, monkeypatch):
    kept = Worklists()
    caller, _ = _callers(store, api)[0]
    before = worklist(store, caller, date(2026, 11, 1), kept)
    build = store.layer_build()
    monkeypatch.setattr(store, "layer_build", lambda: replace(build, build_id="another"))
    calls = _counting(monkeypatch, store)
    after = worklist(store, caller, date(2027, 1, 15), kept)
    assert calls["query_layer"] >= 3  # hazards, overdue, the check schedule (and units)
    pd.testing.assert_frame_equal(after, worklist(store, caller, date(2027, 1, 15),
                                                  Worklists()))
    assert len(before)


def _hazards(api, day: str) -> dict[str, dict]:
    body = call(api, "officer", "GET", "/api/worklist", params={"today": day}).json()
    return {i["hazard_id"]: i for i in body["items"] if i["hazard_id"]}


def test_a_hazard_moved_or_closed_shows_on_every_days_list(api):
    before = {day: _hazards(api, day) for day in DAYS}  # kept, with their parts
    listed = {h for h, i in before[DAYS[0]].items() if i["kind"] == "listed_hazard"
              and i["reason"].endswith("（已登记）")}
    assert listed, "the demo officer has a listed hazard 已登记"
    hazard = sorted(listed)[0]
    assert all(hazard in before[day] for day in DAYS)  # listed: on the list whatever the day
    path = f"/api/hazards/{hazard}/transitions"
    r = call(api, "officer", "POST", path, json={
        "from": "已登记", "to": "整改中", "evidence": "已安排整改"})
    assert r.status_code == 200, r.text
    moved = {day: _hazards(api, day) for day in (*DAYS, "2027-12-31")}
    for day, items in moved.items():
        assert items[hazard]["reason"].endswith("（整改中）"), day
        if day in before:
            assert set(items) == set(before[day])
    r = call(api, "officer", "POST", path, json={
        "from": "整改中", "to": "已销号", "evidence": "复查合格", "closed_on": "2026-11-01",
        "verified_by": "王"})
    assert r.status_code == 200, r.text
    for day in (*DAYS, "2028-01-01"):
        items = _hazards(api, day)
        assert hazard not in items, day
        if day in before:
            assert set(items) == set(before[day]) - {hazard}
