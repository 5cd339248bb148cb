"""A row tile the scope's kept H3 counts already show to be over-full is drawn as cells
without asking the store for its rows (the store would refuse them); the bytes are those
of the refusal's fallback, and a tile with room still gets its rows."""

from __future__ import annotations

from collections import Counter

import morecantile
import pytest

from layers.registry import ALL
from service import tiles
from service.auth import Principal, Role
from service.caches import TileCache
from service.mvt import Tile
from service.store import open_store

pytestmark = pytest.mark.slow

CAP = 40  # MAX_FEATURES for the demo's 6,000 pieces: its dense z12 tiles pass it


class CountingStore:
    """The store, counting the row tiles asked of it."""

    def __init__(self, store: object) -> None:
        self._store = store
        self.row_tiles = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    def layer_tile(self, *args: object, **kwargs: object) -> bytes | None:
        self.row_tiles += 1
        return self._store.layer_tile(*args, **kwargs)


@pytest.fixture
def store(demo_api):
    opened = open_store(demo_api["url"])
    try:
        yield CountingStore(opened)
    finally:
        opened.close()


def _tiles_by_rows(store: CountingStore, z: int) -> list[tuple[Tile, int]]:
    """The z tiles holding the demo's equipment, densest first, with their rows."""
    eq = store.read_layer("equipment")
    eq = eq[eq.geometry.notna().to_numpy()]
    quad = morecantile.tms.get("WebMercatorQuad")
    held = Counter((t.x, t.y) for t in (quad.tile(x, y, z) for x, y in
                                        zip(eq.geometry.x, eq.geometry.y, strict=True)))
    return [(Tile(z, x, y), n) for (x, y), n in held.most_common()]


@pytest.mark.parametrize("caller", [Principal("t-admin", "admin", Role.ADMIN, None),
                                    Principal("t-prov", "prov", Role.REGULATOR, "410000")])
def test_a_tile_known_over_full_is_drawn_from_the_counts(store, monkeypatch, caller):
    monkeypatch.setattr(tiles, "MAX_FEATURES", CAP)
    build_id = store.layer_build().build_id
    ranked = _tiles_by_rows(store, 12)
    dense = next(t for t, n in ranked if n > 3 * CAP)
    roomy = next(t for t, n in ranked if n < CAP // 4)
    spec = ALL["equipment"]
    cache = TileCache()
    plan = tiles.plan_tile(caller, spec, store, dense)
    first = tiles.draw(store, plan, dense, build_id, cache)   # refused rows, then counts
    assert store.row_tiles == 1
    again = tiles.draw(store, plan, dense, build_id, cache)   # the counts are kept now
    assert store.row_tiles == 1 and again == first
    fresh = tiles.draw(store, plan, dense, build_id, TileCache())  # as drawn with no counts
    assert fresh == first and store.row_tiles == 2
    before = store.row_tiles
    tiles.draw(store, tiles.plan_tile(caller, spec, store, roomy), roomy, build_id, cache)
    assert store.row_tiles == before + 1  # room in the tile: its rows are asked for
