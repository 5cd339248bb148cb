"""Grid officers (网格员): the H3 cells each one owns, listed or covering a county.

A listed cell is taken at the store's resolution or a coarser one down to
``MIN_RESOLUTION`` (a coarser cell stands for its children); a finer or coarser one is a
bad cell, so one code cannot expand into thousands of cells. Every listed cell must touch a
county of the loaded provinces, and an officer holds at most ``MAX_OFFICER_KM2`` of cells.
Besides the cells, the counties each officer's cells touch are returned: an upload is
checked against the uploader's scope by them (service/ingest/write_scope.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import h3
import numpy as np
import pandas as pd
import pyarrow as pa
from h3ronpy import cells_resolution, change_resolution_list
from h3ronpy.vector import wkb_to_cells

from data.reasons import Reason
from geo import boundaries, cells
from service.ingest.read import RawTable
from service.ingest.rejects import RejectLog

SEPARATORS = r"[;,；，、\s|]+"
MIN_RESOLUTION = 5  # the coarsest cell stored with each row (h3_5)
# An officer's grid is at most about a county: the largest county of the loaded provinces,
# 神木市, is 12,667 res-8 cells (~9,300 km²). 20,000 km² leaves room for a county and some
# neighbouring cells, and bounds the cell list that every scoped request of the officer
# carries into the query.
MAX_OFFICER_KM2 = 20_000


def max_cells(resolution: int) -> int:
    """The most cells at ``resolution`` one officer may hold (MAX_OFFICER_KM2 of them)."""
    return math.ceil(MAX_OFFICER_KM2 / h3.average_hexagon_area(resolution, unit="km^2"))


@dataclass
class OfficerCells:
    cells: pd.DataFrame     # officer_id, h3 (at the store's resolution)
    # officer_id, cell (as given, or the county given), county_adcode: the counties each
    # given cell touches (a cell on a border touches several)
    counties: pd.DataFrame


def _children(u: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Bring cells (none finer than ``resolution``) to ``resolution``: coarser cells become
    their children. Returns (cells, index of the input cell each came from)."""
    res = pa.array(cells_resolution(pa.array(u))).to_numpy(zero_copy_only=False)
    same = res == resolution
    out_cells, out_idx = [u[same]], [np.flatnonzero(same)]
    coarser = res < resolution
    if coarser.any():
        lists = pa.array(change_resolution_list(pa.array(u[coarser]), resolution))
        out_cells.append(lists.flatten().to_numpy(zero_copy_only=False).astype(np.uint64))
        lengths = pa.compute.list_value_length(lists).to_numpy(zero_copy_only=False)
        out_idx.append(np.repeat(np.flatnonzero(coarser), lengths))
    return np.concatenate(out_cells), np.concatenate(out_idx)


def _listed(raw: RawTable, parsed: pd.DataFrame, log: RejectLog, resolution: int,
            provinces: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cells and touched counties of the officers whose cells are listed."""
    n = len(parsed)
    exploded = parsed["cells"].astype("string").str.lower().str.split(
        SEPARATORS, regex=True).explode()
    exploded = exploded[exploded.notna() & (exploded != "")]
    if not len(exploded):
        return _listed_empty()
    u = cells.from_strings(exploded)
    res = np.full(len(u), -1)
    valid = u != 0
    res[valid] = pa.array(cells_resolution(pa.array(u[valid]))).to_numpy(zero_copy_only=False)
    usable = valid & (res >= MIN_RESOLUTION) & (res <= resolution)
    rows = exploded.index.to_numpy()

    def reject(bad: np.ndarray, reason: Reason, note: str) -> None:
        per_row = exploded[bad].groupby(level=0).agg(lambda v: ",".join(v.iloc[:5]))
        mask = np.zeros(n, dtype=bool)
        mask[rows[bad]] = True
        log.add(raw.path, raw.kind, raw.rows, mask, "cells", reason, per_row.reindex(range(n)),
                note)

    reject(~valid, Reason.BAD_CELL, "不是 H3 网格编码 / not an H3 cell")
    reject(valid & ~usable, Reason.BAD_CELL,
           f"分辨率须为 {MIN_RESOLUTION}–{resolution} / resolution must be "
           f"{MIN_RESOLUTION}–{resolution}")
    touched = boundaries.intersecting_counties(cells.cell_polygons(exploded[usable]),
                                               provinces)
    outside = usable.copy()
    outside[np.flatnonzero(usable)[touched["index"].unique()]] = False
    reject(outside, Reason.OUTSIDE_REGION, "网格不在已加载的省份内 / cell outside the "
                                           "loaded provinces")
    keep = usable & ~outside
    owners = parsed["officer_id"].to_numpy(dtype=object)
    at_res, src = _children(u[keep], resolution)
    listed = pd.DataFrame({"officer_id": owners[rows[keep][src]],
                           "h3": cells.to_strings(at_res).to_numpy()})
    index = touched["index"].to_numpy()
    counties = pd.DataFrame({"officer_id": owners[rows[usable][index]],
                             "cell": exploded[usable].to_numpy()[index],
                             "county_adcode": touched["county_adcode"].to_numpy()})
    return listed, counties


def _by_county(raw: RawTable, parsed: pd.DataFrame, log: RejectLog, resolution: int,
               provinces: list[str]) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Every cell whose centre lies in the officer's county, when the county is given."""
    county = parsed["county_adcode"].astype("string")
    has_county = county.notna().to_numpy()
    if not has_county.any():
        return None
    counties = boundaries.load_boundaries(provinces, level="county").set_index("adcode")
    known = county.isin(counties.index).to_numpy()
    log.add(raw.path, raw.kind, raw.rows, has_county & ~known, "county_adcode",
            Reason.UNKNOWN_ADCODE, county)
    wanted = pd.unique(county[has_county & known])
    if not len(wanted):
        return None
    geoms = counties.loc[wanted].geometry
    lists = pa.array(wkb_to_cells(pa.array(geoms.to_wkb().tolist(), pa.binary()), resolution))
    flat = lists.flatten().to_numpy(zero_copy_only=False).astype(np.uint64)
    lengths = pa.compute.list_value_length(lists).to_numpy(zero_copy_only=False)
    per_county = pd.DataFrame({"county": np.repeat(np.asarray(wanted), lengths),
                               "h3": cells.to_strings(flat).to_numpy()})
    owners = pd.DataFrame({"officer_id": parsed["officer_id"], "county": county})[
        has_county & known]
    return (owners.merge(per_county, on="county")[["officer_id", "h3"]],
            owners.assign(cell=owners["county"]).rename(columns={"county": "county_adcode"}))


def expand_officer_cells(raw: RawTable, parsed: pd.DataFrame, log: RejectLog, resolution: int,
                         provinces: list[str]) -> OfficerCells:
    """(officer_id, h3) pairs at the store resolution, from listed cells or a county, and
    the counties they touch; rows with a bad cell, or too many cells, are rejected."""
    listed = parsed["cells"].astype("string")
    county = parsed["county_adcode"].astype("string")
    log.add(raw.path, raw.kind, raw.rows, (listed.isna() & county.isna()).to_numpy(), "cells",
            Reason.MISSING)
    cell_parts, county_parts = zip(_listed(raw, parsed, log, resolution, provinces),
                                   _by_county(raw, parsed, log, resolution, provinces)
                                   or _listed_empty(), strict=True)
    out = pd.concat(cell_parts, ignore_index=True).dropna().drop_duplicates()
    out = out.astype({"officer_id": "string", "h3": "string"})
    limit = max_cells(resolution)
    held = out.groupby("officer_id").size()
    over = parsed["officer_id"].astype("string").map(held).fillna(0).to_numpy() > limit
    log.add(raw.path, raw.kind, raw.rows, over, "cells", Reason.TOO_MANY_CELLS,
            parsed["officer_id"].astype("string").map(held).astype("string"),
            f"上限 {limit} 个（约 {MAX_OFFICER_KM2:,} 平方公里）/ at most {limit} cells")
    touched = pd.concat(county_parts, ignore_index=True).dropna().drop_duplicates()
    return OfficerCells(out.reset_index(drop=True),
                        touched.astype("string").reset_index(drop=True))


def _listed_empty() -> tuple[pd.DataFrame, pd.DataFrame]:
    return (pd.DataFrame({"officer_id": pd.Series(dtype="string"),
                          "h3": pd.Series(dtype="string")}),
            pd.DataFrame({"officer_id": pd.Series(dtype="string"),
                          "cell": pd.Series(dtype="string"),
                          "county_adcode": pd.Series(dtype="string")}))
