"""An items page counts at most a cap of matches (``LayerQuery.count_cap``), as a row tile
draws at most its cap of rows: both stores answer the same capped number, a short page
needs no count, a page past the cap still knows whether another follows; the routes leave
``numberMatched`` out when the count stopped at its cap (OGC API – Features allows it) and
the next links still walk every row; a caller's count is of their own rows whatever they
send. On the seeded demo, both stores, with the routes' cap lowered."""

from __future__ import annotations

import pytest

import service.routes.layers as layers_route
import service.routes.ogc as ogc_route
from layers.registry import ALL
from service.auth import Principal, Role
from service.scope import layer_scope
from service.selection import Selection, select
from service.store.base import Store
from service.store.query import Compare, Condition, LayerQuery, count_bound
from tests.servers import call, get

pytestmark = [pytest.mark.slow, pytest.mark.reads_demo]
CAP = 50


@pytest.fixture(scope="module")
def store(api_store: Store) -> Store:
    return api_store


@pytest.fixture
def low_cap(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(layers_route, "COUNT_CAP", CAP)
    monkeypatch.setattr(ogc_route, "COUNT_CAP", CAP)
    return CAP


def _province() -> tuple[Condition, ...]:
    return layer_scope(Principal("u", "province", Role.REGULATOR, "410000"),
                       ALL["equipment"])


def test_a_capped_count_counts_to_the_cap_or_the_pages_end(store, api):
    where = _province()
    _, exact = store.query_layer(LayerQuery("equipment", where, None, 10, 0))
    assert exact > 400, "the province has more equipment than the cases below"
    cases = [(10, 0, 100), (10, 300, 100), (10, 0, exact), (10, 0, exact - 1),
             (exact + 5, 0, 10), (10, exact, 10), (10, exact + 20, 10), (1, exact - 1, 5)]
    for limit, offset, cap in cases:
        query = LayerQuery("equipment", where, None, limit, offset, count_cap=cap)
        frame, matched = store.query_layer(query)
        bound = count_bound(query)
        assert bound == max(cap, offset + limit)
        assert matched == min(exact, bound + 1), (limit, offset, cap)
        assert len(frame) == max(0, min(limit, exact - offset))
        if matched > bound:  # "more than the bound": another page follows this one
            assert offset + len(frame) < matched
    few = LayerQuery("equipment", where, None, 10, 0, filter=Compare("D", ">=", 10**9),
                     count_cap=5)
    assert store.query_layer(few)[1] == 0
    # no limit: every row is read, and counted exactly
    assert store.query_layer(LayerQuery("equipment", where, None, None, 0, count_cap=5)
                             )[1] == exact


def test_a_selection_caps_only_paged_counted_queries(store, api):
    """``Selection.count_cap``: a page's count stops at the cap and says so (``capped``);
    a whole read, or a page with no count asked, is never capped."""
    caller = Principal("u", "province", Role.REGULATOR, "410000")
    spec = ALL["equipment"]
    page = select(store, caller, Selection(spec, limit=5, count_cap=20))
    assert page.matched == 21 and page.capped
    assert b"numberMatched" not in page.geojson([])
    whole = select(store, caller, Selection(spec, count_cap=20))
    assert whole.matched > 21 and not whole.capped
    quiet = select(store, caller, Selection(spec, limit=5, count=False, count_cap=20))
    assert quiet.matched in (5, whole.matched) and not quiet.capped
    exact = select(store, caller, Selection(spec, limit=5))
    assert exact.matched == whole.matched and not exact.capped
    assert b'"numberMatched":%d' % whole.matched in exact.geojson([])


def _walk(api, who: str, path: str, **params) -> list[dict]:
    """Every feature by following the next links from the first page."""
    body = get(api, who, path, **params).json()
    features = list(body["features"])
    while (nxt := {x["rel"]: x["href"] for x in body["links"]}.get("next")):
        r = call(api, who, "GET", nxt)
        assert r.status_code == 200, r.text
        body = r.json()
        features += body["features"]
    return features


@pytest.mark.parametrize("path", ["/api/layers/equipment", "/ogc/collections/equipment/items"])
def test_past_the_cap_the_page_says_more_and_the_links_walk_every_row(api, low_cap, path):
    whole = get(api, "county", path, limit=10_000).json()  # one page: its number exact
    total = whole["numberMatched"]
    assert total == len(whole["features"]) > 2 * low_cap
    first = get(api, "county", path, limit=20).json()
    assert "numberMatched" not in first and first["numberReturned"] == 20
    assert any(x["rel"] == "next" for x in first["links"])
    walked = _walk(api, "county", path, limit=20)
    assert [f["id"] for f in walked] == [f["id"] for f in whole["features"]]
    # the last page (short) and a page past the cap, to its end, give the number exactly
    last = get(api, "county", path, limit=20, offset=total - 7).json()
    assert last["numberMatched"] == total and last["numberReturned"] == 7
    assert "numberMatched" not in get(api, "county", path, limit=20, offset=low_cap + 5
                                      ).json() or total <= low_cap + 25
    few = get(api, "county", path, limit=10, level="red").json()
    red = sum(f["properties"]["level"] == "red" for f in whole["features"])
    if red <= low_cap:
        assert few["numberMatched"] == red
    else:
        assert "numberMatched" not in few


def test_the_html_items_page_says_nothing_it_did_not_count(api, low_cap):
    r = get(api, "county", "/ogc/collections/equipment/items", limit=10, f="html")
    assert r.status_code == 200 and "本页 10 个要素" in r.text and "个符合条件" not in r.text


@pytest.mark.parametrize("path", ["/api/layers/equipment", "/ogc/collections/equipment/items"])
def test_a_hostile_caller_counts_only_their_own_rows(api, low_cap, path):
    """However they page or filter, a regulator's count and rows are of their county: a
    capped count is a bound of their own rows, never the province's, and parameters
    naming the count are refused or change nothing."""
    mine = _walk(api, "county", path, limit=20)
    assert mine and all(f["properties"]["county_adcode"] == api["county"] for f in mine)
    province = get(api, "admin", path, limit=10_000).json()["numberMatched"]
    assert province > len(mine)
    deep = get(api, "county", path, limit=10, offset=len(mine) - 5).json()
    assert deep["numberMatched"] == len(mine)  # short page: exact, and theirs
    past = get(api, "county", path, limit=10, offset=len(mine) + 100).json()
    assert past["numberMatched"] == len(mine) and not past["features"]
    assert not any(x["rel"] == "next" for x in past["links"])
    other = "410102" if api["county"] != "410102" else "410103"
    for params in ({"county_adcode": other}, {"adcode": other}, {"count_cap": 10**9},
                   {"numberMatched": 10**9}, {"limit": 10**9}, {"offset": -1}):
        r = get(api, "county", path, **{"limit": 10, **params})
        if r.status_code != 200:
            assert r.status_code in (400, 422), (params, r.text)
            continue
        body = r.json()
        assert all(f["properties"]["county_adcode"] == api["county"]
                   for f in body["features"]), params
        assert body.get("numberMatched", 0) <= len(mine), params
