"""Grid officers (网格员): the H3 cells each one owns, listed or covering a county."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from h3ronpy import cells_resolution, change_resolution, change_resolution_list
from h3ronpy.vector import wkb_to_cells

from geo import boundaries, cells
from service.ingest.read import RawTable
from service.ingest.reasons import Reason
from service.ingest.rejects import RejectLog

SEPARATORS = r"[;,；，、\s|]+"


def _at_resolution(u: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Bring cells to ``resolution``: children of coarser cells, parents of finer ones.
    Returns (cells, index of the input cell each came from)."""
    res = pa.array(cells_resolution(pa.array(u))).to_numpy(zero_copy_only=False)
    out_cells, out_idx = [], []
    same = res == resolution
    out_cells.append(u[same])
    out_idx.append(np.flatnonzero(same))
    finer = res > resolution
    if finer.any():
        parents = pa.array(change_resolution(pa.array(u[finer]), resolution))
        out_cells.append(parents.to_numpy(zero_copy_only=False).astype(np.uint64))
        out_idx.append(np.flatnonzero(finer))
    coarser = res < resolution
    if coarser.any():
        lists = pa.array(change_resolution_list(pa.array(u[coarser]), resolution))
        flat = lists.flatten().to_numpy(zero_copy_only=False).astype(np.uint64)
        lengths = pa.compute.list_value_length(lists).to_numpy(zero_copy_only=False)
        out_cells.append(flat)
        out_idx.append(np.repeat(np.flatnonzero(coarser), lengths))
    return np.concatenate(out_cells), np.concatenate(out_idx)


def expand_officer_cells(raw: RawTable, parsed: pd.DataFrame, log: RejectLog, resolution: int,
                         provinces: list[str]) -> pd.DataFrame:
    """(officer_id, h3) pairs at the store resolution, from listed cells or a county."""
    n = len(parsed)
    listed = parsed["cells"].astype("string")
    county = parsed["county_adcode"].astype("string")
    log.add(raw.path, raw.kind, raw.rows, (listed.isna() & county.isna()).to_numpy(), "cells",
            Reason.MISSING)

    parts: list[pd.DataFrame] = []
    exploded = listed.str.lower().str.split(SEPARATORS, regex=True).explode()
    exploded = exploded[exploded.notna() & (exploded != "")]
    if len(exploded):
        u = cells.from_strings(exploded)
        bad_rows = np.zeros(n, dtype=bool)
        bad_rows[exploded.index[u == 0].to_numpy()] = True
        bad_values = exploded[u == 0].groupby(level=0).agg(",".join).reindex(range(n))
        log.add(raw.path, raw.kind, raw.rows, bad_rows, "cells", Reason.BAD_CELL, bad_values)
        ok = u != 0
        at_res, src = _at_resolution(u[ok], resolution)
        owners = parsed["officer_id"].to_numpy(dtype=object)[exploded.index.to_numpy()[ok][src]]
        parts.append(pd.DataFrame({"officer_id": owners,
                                   "h3": cells.to_strings(at_res).to_numpy()}))

    has_county = county.notna().to_numpy()
    if has_county.any():
        counties = boundaries.load_boundaries(provinces, level="county").set_index("adcode")
        known = county.isin(counties.index).to_numpy()
        log.add(raw.path, raw.kind, raw.rows, has_county & ~known, "county_adcode",
                Reason.UNKNOWN_ADCODE, county)
        wanted = pd.unique(county[has_county & known])
        if len(wanted):
            geoms = counties.loc[wanted].geometry
            lists = pa.array(wkb_to_cells(pa.array(geoms.to_wkb().tolist(), pa.binary()),
                                          resolution))
            flat = lists.flatten().to_numpy(zero_copy_only=False).astype(np.uint64)
            lengths = pa.compute.list_value_length(lists).to_numpy(zero_copy_only=False)
            per_county = pd.DataFrame({"county": np.repeat(np.asarray(wanted), lengths),
                                       "h3": cells.to_strings(flat).to_numpy()})
            owners = pd.DataFrame({"officer_id": parsed["officer_id"], "county": county})[
                has_county & known]
            parts.append(owners.merge(per_county, on="county")[["officer_id", "h3"]])
    if not parts:
        return pd.DataFrame({"officer_id": pd.Series(dtype="string"),
                             "h3": pd.Series(dtype="string")})
    out = pd.concat(parts, ignore_index=True).dropna().drop_duplicates()
    return out.astype({"officer_id": "string", "h3": "string"})
