"""One scoped selection: what of a layer a caller gets, with filters, bbox, paging and the
output datum. Every reader of layers goes through here: ``/api/layers``, ``/ogc``, the map
pages, the tiles and the exports.

The rule, written once: the caller's scope conditions (:mod:`service.scope`) are ANDed into
the query, so no filter widens them; a caller who is not an administrator gets the risk
cells re-aggregated from the equipment they may see (a cell on their border counts only
their side), nested from the finest resolution as the build nests them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.cells import parents
from layers import aggregate
from layers.registry import ALL, LayerSpec
from service.auth import Principal, Role
from service.errors import Forbidden
from service.geojson import OutputCrs, feature_collection
from service.mvt import BBox
from service.scope import layer_scope
from service.store.base import Store
from service.store.conform import empty_layer
from service.store.query import Condition, Expr, LayerQuery, count_bound, query_frame

RISK_CELLS = "risk-cells"
DEFAULT_CELL_RESOLUTION = 7   # risk cells when no resolution is asked for


@dataclass(frozen=True)
class Selection:
    """What a caller asks of one layer: ``where`` are the filters (the scope is added by
    :func:`select`), ``bbox`` lon/lat, a page of ``limit`` rows (None: all) from
    ``offset``, geometry written in ``crs``; ``filter`` a further expression (a CQL2
    filter, ``datetime``), ANDed like the rest, ``order`` (field, descending) pairs
    before ``fid``, ``properties`` the fields written (None: all)."""

    spec: LayerSpec
    where: tuple[Condition, ...] = ()
    bbox: BBox | None = None
    limit: int | None = None
    offset: int = 0
    crs: OutputCrs = "EPSG:4326"
    filter: Expr | None = None
    order: tuple[tuple[str, bool], ...] = ()
    properties: tuple[str, ...] | None = None
    count: bool = True   # False: ``matched`` may be the page's length (no count asked)
    # count at most this many matches (service.store.query.count_bound): past it a count
    # costs what the rows cost, growing with the registry; None counts them all
    count_cap: int | None = None


@dataclass(frozen=True)
class Page:
    """The rows a selection got (in its order, then by ``fid``) and how many matched in
    all."""

    selection: Selection
    frame: pd.DataFrame
    matched: int
    capped: bool = False  # the count stopped at its cap: ``matched`` is "more than"

    def geojson(self, links: list[dict], *, lat_lon: bool = False,
                members: dict | None = None) -> bytes:
        """A GeoJSON FeatureCollection of the page in the selection's datum; without
        ``numberMatched`` when the count stopped at its cap (OGC API – Features: the
        member is optional when the number is not known; the next link says more)."""
        spec = output_spec(self.selection.spec, self.selection.properties)
        return feature_collection(self.frame, spec,
                                  matched=None if self.capped else self.matched,
                                  crs=self.selection.crs, lat_lon=lat_lon, links=links,
                                  members=members)


def reaggregated(caller: Principal, spec: LayerSpec) -> bool:
    """Whether ``caller`` gets ``spec`` computed from their own rows, not the stored layer."""
    return spec.id == RISK_CELLS and caller.role != Role.ADMIN


def source_spec(caller: Principal, spec: LayerSpec) -> LayerSpec:
    """The layer whose rows the caller's scope restricts: the equipment for re-aggregated
    risk cells, else the layer itself."""
    return ALL["equipment"] if reaggregated(caller, spec) else spec


def scope_of(caller: Principal, spec: LayerSpec) -> tuple[Condition, ...]:
    """The caller's scope conditions on the rows behind ``spec``; Forbidden if none can."""
    return layer_scope(caller, source_spec(caller, spec))


def can_see(caller: Principal, spec: LayerSpec) -> bool:
    """Whether any of ``spec`` is within the caller's scope."""
    try:
        scope_of(caller, spec)
    except Forbidden:
        return False
    return True


def select(store: Store, caller: Principal, selection: Selection) -> Page:
    """The caller's page of a layer; Forbidden if they may not see it."""
    spec = selection.spec
    where = selection.where
    if spec.id == RISK_CELLS and resolution_of(where) is None:
        where = (*where, Condition("resolution", "eq", (DEFAULT_CELL_RESOLUTION,)))
    scope = scope_of(caller, spec)
    cap = selection.count_cap if selection.count else None  # no count asked: none capped
    if reaggregated(caller, spec):
        res = resolution_of(where) or DEFAULT_CELL_RESOLUTION
        frame = scoped_risk_cells(store, scope, None, (res,))
        rest = tuple(c for c in where if c.column != "resolution")
        # the filter and order apply to the cells the caller gets, so paging counts them
        query = LayerQuery(spec.id, rest, selection.bbox, selection.limit, selection.offset,
                           filter=selection.filter, order=selection.order, count_cap=cap)
        frame, matched = query_frame(frame, query)
    else:
        query = LayerQuery(spec.id, (*scope, *where), selection.bbox, selection.limit,
                           selection.offset, columns=selection.properties,
                           filter=selection.filter, order=selection.order,
                           count=selection.count, count_cap=cap)
        frame, matched = store.query_layer(query)
    bound = count_bound(query)
    return Page(selection, frame, matched, capped=bound is not None and matched > bound)


@lru_cache(maxsize=256)
def output_spec(spec: LayerSpec, properties: tuple[str, ...] | None) -> LayerSpec:
    """``spec`` with only ``properties`` among its fields (all when None): what a page
    written with a ``properties`` subset describes."""
    if properties is None:
        return spec
    keep = set(properties)
    return dataclasses.replace(
        spec, fields=tuple(f for f in spec.fields if f[0] in keep),
        labels=tuple(x for x in spec.labels if x[0] in keep),
        meanings=tuple(x for x in spec.meanings if x[0] in keep),
        not_coded=tuple(x for x in spec.not_coded if x in keep))


def select_visible(store: Store, caller: Principal, selection: Selection) -> pd.DataFrame:
    """All the caller may see of a selection, or the layer's empty frame when their role
    sees none of it (a map page leaves such a layer out instead of refusing)."""
    try:
        return select(store, caller, selection).frame
    except Forbidden:
        return empty_layer(selection.spec.id)


def resolution_of(where: tuple[Condition, ...]) -> int | None:
    """The H3 resolution a ``resolution = n`` condition asks for, if any."""
    for condition in where:
        if condition.column == "resolution" and condition.op == "eq":
            return int(condition.values[0])
    return None


def scoped_risk_cells(store: Store, equipment_where: tuple[Condition, ...],
                      bbox: BBox | None, resolutions: tuple[int, ...], *,
                      hexagons: bool = True, max_cells: int | None = None
                      ) -> gpd.GeoDataFrame | pd.DataFrame | None:
    """Risk cells at ``resolutions`` of the equipment matching ``equipment_where`` within
    ``bbox`` (None: everywhere), nested from the finest resolution as the build nests
    them, so a point falls in the same cell at every zoom; ``fid`` is the cell. Without
    ``hexagons``, a plain frame of the same columns but the geometry. None when there
    would be more than ``max_cells`` cells: counted from the finest sums, before any cell
    is graded."""
    finest = aggregate.FINEST_RISK_RESOLUTION
    if max(resolutions) > finest:  # finer than the stored risk cell: from the points
        finest = max(resolutions)
        rows = store.layer_points("equipment", equipment_where, bbox, aggregate.TOTAL_INPUTS)
        cells, totals, _ = aggregate.finest_totals(rows, finest)
    else:  # the store's sums per finest cell (PostGIS: summed by each build)
        cells, totals = store.risk_cell_sums(equipment_where, bbox)
    if max_cells is not None and sum(
            len(np.unique(parents(cells, r))) for r in set(resolutions)) > max_cells:
        return None
    if not len(cells):  # nothing of the caller's here: skip the indicator machinery
        empty = empty_layer(RISK_CELLS)
        return empty if hexagons else pd.DataFrame(empty.drop(columns="geometry"))
    out = aggregate.nested_risk_cells(cells, totals, tuple(sorted({*resolutions, finest})),
                                      keep=tuple(resolutions), hexagons=hexagons)
    out.insert(0, "fid", out["h3"].astype("string"))
    out = out.reset_index(drop=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=4326) if hexagons else out
