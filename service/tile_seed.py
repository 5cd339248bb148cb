"""Tile seeding (``riskmap seed``): the busiest tiles of a build rendered ahead and kept in
the store, so that their first viewer is answered by one indexed read.

Which tiles: the map's default view of each seeded layer (no filter, default properties)
for the administrator and the regulators of each configured province and, as asked
(``scopes``), of each of its cities and counties (a regulator's map shows their own rows
only, so each scope has tiles of its own; the cities of a province together hold about
the province's tiles again, and so do its counties) — at the zooms where a tile holds the
most rows and so costs the most to draw (:data:`DEFAULT_ZOOMS`, z8–z12: ~2,000 tiles per
layer and caller at 1M equipment). Other callers (an officer's cells, a park, a filter)
are drawn on demand. The addresses are the tiles holding a centre of the caller's equipment cells
at the stored H3 resolution; a tile left out (one only brushed by a hexagon) is drawn on
demand as before. Finer zooms can be seeded too (``--max-zoom``, up to
:data:`MAX_SEED_ZOOM`), at about three times the tiles per zoom.

The bytes are those :func:`service.tiles.draw` renders for the same plan, kept under the
same ETag (which names the build): a seeded tile and a drawn one cannot differ, and a new
build's tiles are never answered from an old build's seeds (writing a build deletes them).
Seeding while another build lands stops with :class:`SeedSuperseded`.

This is the practice of tile caches' seeding (GeoWebCache, MapProxy ``mapproxy-seed``,
``tegola cache seed``) applied to tiles that are scoped to their caller.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from geo.boundaries import load_boundaries
from geo.cells import cell_centres
from layers.registry import ALL, LayerSpec
from service.auth import Principal, Role
from service.caches import TileCache
from service.mvt import Tile
from service.selection import reaggregated, scope_of
from service.store.base import Store
from service.store.errors import SeedSuperseded, StoreError
from service.store.query import LayerQuery
from service.tiles import draw, etag, plan_tile

SEED_LAYERS = ("equipment", "risk-cells")
SEED_SCOPES = ("province", "city", "county")  # whose regulators' tiles may be seeded
SCOPE_NAMES = {"province": "省级", "city": "市级", "county": "县级"}
DEFAULT_ZOOMS = tuple(range(8, 13))
MAX_SEED_ZOOM = 14
BATCH = 200  # tiles written per transaction
MAX_WORKERS = 8

__all__ = ["DEFAULT_ZOOMS", "SEED_LAYERS", "SEED_SCOPES", "SeedReport", "SeedSuperseded",
           "seed", "seed_callers", "tile_addresses"]


@dataclass
class SeedReport:
    build_id: str
    tiles: int = 0        # rendered and kept
    empty: int = 0        # rendered empty: not kept (an empty tile is quick to answer)
    bytes: int = 0
    seconds: float = 0.0
    by_layer: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"build_id": self.build_id, "tiles": self.tiles, "empty": self.empty,
                "bytes": self.bytes, "seconds": round(self.seconds, 1),
                "by_layer": self.by_layer}


def seed_callers(provinces: list[str], scopes: tuple[str, ...] = ("province",)
                 ) -> list[Principal]:
    """The callers whose default tiles are seeded: the administrator, then a regulator of
    each province, city and county of ``provinces`` whose level ``scopes`` names
    (:data:`SEED_SCOPES`), by level then adcode."""
    unknown = [s for s in scopes if s not in SEED_SCOPES]
    if unknown:
        raise ValueError(f"预生成范围须为 {'、'.join(SEED_SCOPES)} 之一：{'、'.join(unknown)}")
    callers = [Principal("seed", "系统管理员", Role.ADMIN, None)]
    seen: set[str] = set()
    for level in SEED_SCOPES:
        if level not in scopes:
            continue
        codes = list(provinces) if level == "province" else \
            load_boundaries(provinces, level)["adcode"].astype(str).tolist()
        for code in codes:
            if code not in seen:  # 济源市 (419001) is a city and a county: one caller
                seen.add(code)
                callers.append(Principal("seed", f"{SCOPE_NAMES[level]}监管", Role.REGULATOR,
                                         code))
    return callers


def tile_addresses(store: Store, caller: Principal, zooms: tuple[int, ...]) -> list[Tile]:
    """The tiles at ``zooms`` holding a centre of a cell (at the stored H3 resolution) of
    the equipment the caller may see, in zoom then row-major order."""
    where = scope_of(caller, ALL["equipment"])
    cells, _ = store.layer_cell_counts("equipment", where, store.h3_resolution, None, ())
    if not len(cells):
        return []
    lat, lon = cell_centres(cells)
    lat = np.clip(np.asarray(lat, dtype=float), -85.0511, 85.0511)
    lon = np.asarray(lon, dtype=float)
    out: list[Tile] = []
    for z in zooms:
        n = 1 << z
        x = np.clip(np.floor((lon + 180.0) / 360.0 * n), 0, n - 1).astype(np.int64)
        phi = np.radians(lat)
        y = np.clip(np.floor((1.0 - np.log(np.tan(phi) + 1.0 / np.cos(phi)) / math.pi)
                             / 2.0 * n), 0, n - 1).astype(np.int64)
        for key in np.unique(y * n + x):
            out.append(Tile(z, int(key % n), int(key // n)))
    return out


def seed(store: Store, provinces: list[str], *, zooms: tuple[int, ...] = DEFAULT_ZOOMS,
         layers: tuple[str, ...] = SEED_LAYERS, scopes: tuple[str, ...] = ("province",),
         workers: int = 4, progress: Callable[[str], None] | None = None) -> SeedReport:
    """Render and keep the default tiles of ``layers`` at ``zooms`` for the callers of
    ``provinces`` at ``scopes`` (:func:`seed_callers`), from the build in force."""
    if not zooms or min(zooms) < 0 or max(zooms) > MAX_SEED_ZOOM:
        raise ValueError(f"缩放级别须在 0–{MAX_SEED_ZOOM} 之间")
    unknown = [lid for lid in layers if lid not in ALL or ALL[lid].geometry is None]
    if unknown:
        raise ValueError(f"无法预生成瓦片的图层：{'、'.join(unknown)}")
    callers = seed_callers(provinces, scopes)
    build = store.layer_build()
    if build is None:
        raise StoreError("尚未生成图层，请先运行 riskmap build")
    report = SeedReport(build.build_id)
    started = time.perf_counter()
    store.drop_seeded_tiles()  # seeding again replaces what an earlier run kept
    cache = TileCache()  # whole-scope counts shared by the tiles of one caller
    workers = max(1, min(workers, MAX_WORKERS))
    zooms = tuple(sorted(set(zooms)))
    with ThreadPoolExecutor(workers, thread_name_prefix="seed") as pool:
        for lid in layers:
            spec = ALL[lid]
            for group in same_tiles(store, spec, callers):
                first = group[0]
                addresses = tile_addresses(store, first, zooms)
                if progress:
                    who = "、".join(c.scope or "全部" for c in group)
                    progress(f"{lid} {who}: {len(addresses)} 个瓦片")

                def render(tile: Tile, group: list[Principal] = group, spec=spec
                           ) -> list[tuple[str, bytes]]:
                    plans = [plan_tile(c, spec, store, tile) for c in group]
                    data = draw(store, plans[0], tile, build.build_id, cache)
                    return [(etag(plan, tile, build.build_id, store.h3_resolution), data)
                            for plan in plans]

                for chunk in _chunks(addresses, BATCH):
                    rendered = [pair for pairs in pool.map(render, chunk) for pair in pairs]
                    kept = [(tag, data) for tag, data in rendered if data]
                    report.empty += len(rendered) - len(kept)
                    added = store.add_seeded_tiles(build.build_id, kept)
                    report.tiles += added
                    report.bytes += sum(len(data) for _, data in kept)
                    report.by_layer[lid] = report.by_layer.get(lid, 0) + added
    report.seconds = time.perf_counter() - started
    return report


def same_tiles(store: Store, spec: LayerSpec, callers: list[Principal]
               ) -> list[list[Principal]]:
    """``callers`` in groups whose tiles of ``spec`` are the same bytes, each rendered
    once: a province's regulator draws the administrator's tiles when the province holds
    every row of the layer (a store of one province), the rows being the same. Risk cells
    re-aggregated from a regulator's equipment are not the stored layer: never grouped."""
    groups: list[list[Principal]] = []
    total: int | None = None
    for caller in callers:
        if groups and not reaggregated(caller, spec) and not reaggregated(groups[0][0], spec):
            if total is None:
                total = _rows(store, spec, scope_of(groups[0][0], spec))
            if _rows(store, spec, scope_of(caller, spec)) == total and \
                    not scope_of(groups[0][0], spec):
                groups[0].append(caller)
                continue
        groups.append([caller])
    return groups


def _rows(store: Store, spec: LayerSpec, where: tuple) -> int:
    return store.query_layer(LayerQuery(spec.id, where, None, 0, columns=("fid",)))[1]


def _chunks(items: list[Tile], size: int) -> Iterator[list[Tile]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
