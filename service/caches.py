"""What one app remembers between requests, made in its lifespan and reached through
:data:`service.deps.CachesDep`: two apps in one process (tests) never share an entry.

- :class:`VerifiedTokens`: callers the store recognised in the last seconds;
- :class:`OfficerCells`: grid officers' cells, by data version;
- :class:`TileCache`: rendered tiles and the whole-scope counts behind them;
- :class:`Worklists`: callers' worklists, by everything a list depends on.

The stores keep their own caches of tables and layers (one store per app).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pandas as pd

from service.settings import Settings
from service.store.base import Store

T = TypeVar("T")


class VerifiedTokens:
    """Tokens (and sessions) the store recognised in the last ``ttl`` seconds, by hash:
    a map page fetches dozens of tiles a second, each would otherwise ask the store again.
    Only recognised ones are kept (a new user's token works at once); a user disabled in
    the store is refused within ``ttl``."""

    def __init__(self, ttl: float = 10.0, size: int = 10_000) -> None:
        self.ttl, self.size = ttl, size
        self._items: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, token_hash: str) -> Any | None:
        with self._lock:
            hit = self._items.get(token_hash)
        return hit[1] if hit and hit[0] > time.monotonic() else None

    def forget(self, token_hash: str) -> None:
        with self._lock:
            self._items.pop(token_hash, None)

    def put(self, token_hash: str, caller: Any) -> None:
        with self._lock:
            if len(self._items) >= self.size:
                self._items.clear()
            self._items[token_hash] = (time.monotonic() + self.ttl, caller)


class OfficerCells:
    """Each grid officer's H3 cells, sorted; looked up by officer id and kept until the
    store's data version changes (every request of an officer is scoped by them)."""

    def __init__(self) -> None:
        self._version: str | None = None
        self._cells: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def of(self, store: Store, officer_id: str) -> tuple[str, ...]:
        version = store.data_version()  # cells are read after the version: never older
        with self._lock:
            if self._version != version:
                self._version, self._cells = version, {}
            cells = self._cells.get(officer_id)
        if cells is None:
            mine = store.lookup("officer_cells", "officer_id", (officer_id,), ["h3"])["h3"]
            cells = tuple(sorted(mine.dropna().astype(str).unique()))
            with self._lock:
                if self._version == version:
                    self._cells[officer_id] = cells
        return cells


class TileCache:
    """Rendered tiles and the whole-scope H3 counts behind aggregated ones, by build, scope
    and address, up to about ``budget`` bytes; least recently used out first.

    One computation per key at a time: a request missing a key another thread is already
    computing waits for that result instead of computing it again. On a cold start every
    concurrent over-full tile wants the same whole-scope counts (a GROUP BY over the scope,
    ~1 s at 1M); computing them once per client instead stalled the server for seconds."""

    def __init__(self, budget: int = 256 << 20) -> None:
        self._items: OrderedDict[tuple, tuple[Any, int]] = OrderedDict()
        self._budget = budget
        self._used = 0
        self._lock = threading.Lock()
        self._pending: dict[tuple, tuple[int, threading.Event]] = {}  # key: (thread, done)

    def peek(self, key: tuple) -> Any | None:
        """The value kept for ``key``, or None: never computes, never waits."""
        with self._lock:
            held = self._items.get(key)
            return None if held is None else held[0]

    def get(self, key: tuple, compute: Callable[[], T]) -> T:
        me = threading.get_ident()
        while True:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key][0]
                owner, done = self._pending.get(key, (me, None))
                if done is None:
                    done = threading.Event()
                    self._pending[key] = (me, done)
                    break
            if owner == me:  # asked again inside its own computation: no waiting on oneself
                return compute()
            done.wait()  # then a hit, or (it failed or was dropped at once) compute it here
        try:
            value = compute()  # outside the lock: a slow scope must not stall the others
            weight = _weight(value)
            with self._lock:
                if key not in self._items:
                    self._items[key] = (value, weight)
                    self._used += weight
                while self._used > self._budget and len(self._items) > 1:
                    _, (_, dropped) = self._items.popitem(last=False)
                    self._used -= dropped
            return value
        finally:
            with self._lock:
                self._pending.pop(key, None)
            done.set()


def _weight(value: object) -> int:
    """Rough bytes held by a cached value (a hexagon polygon is ~400 bytes)."""
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, pd.DataFrame):
        shapes = 400 * len(value) if "geometry" in value.columns else 0
        return int(value.memory_usage(index=False, deep=not shapes).sum()) + shapes
    if isinstance(value, tuple):
        return sum(getattr(v, "nbytes", 64) for v in value)
    return int(getattr(value, "nbytes", 1024))  # a kept structure says what it holds


class Worklists:
    """Callers' worklists by key, least recently used first: at most ``lists`` of them and
    ``items`` items in all (a longer list is made every time, never kept)."""

    def __init__(self, lists: int = 256, items: int = 200_000) -> None:
        self.lists, self.items = lists, items
        self._kept: OrderedDict[tuple, pd.DataFrame] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
                return kept
        made = compute()
        if len(made) <= self.items:
            with self._lock:
                self._kept[key] = made
                while (len(self._kept) > self.lists
                       or sum(map(len, self._kept.values())) > self.items):
                    self._kept.popitem(last=False)
        return made


@dataclass
class Caches:
    """One app's caches (see the module docstring)."""

    tokens: VerifiedTokens = field(default_factory=VerifiedTokens)
    officer_cells: OfficerCells = field(default_factory=OfficerCells)
    tiles: TileCache = field(default_factory=TileCache)
    worklists: Worklists = field(default_factory=Worklists)

    @classmethod
    def for_settings(cls, settings: Settings) -> Caches:
        return cls(tiles=TileCache(settings.tile_cache_mb << 20))
