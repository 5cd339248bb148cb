"""H3 indexing, vectorised (h3ronpy works on whole arrays; the h3 package per cell).

Cells are stored as 15-character hex strings so they read the same in GeoJSON, CSV,
PostGIS and the browser."""

from __future__ import annotations

import h3
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely
from h3ronpy import cells_parse, cells_to_string, change_resolution
from h3ronpy.vector import cells_to_coordinates, cells_to_wkb_polygons, coordinates_to_cells

PARENT_RESOLUTIONS = (5, 6, 7)


def _to_numpy_str(arr) -> np.ndarray:
    return np.asarray(pa.array(cells_to_string(arr)).to_numpy(zero_copy_only=False), dtype=object)


def points_to_cells(lon: np.ndarray, lat: np.ndarray, resolution: int) -> np.ndarray:
    """H3 cell (uint64) of each point; 0 where the point is missing."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    out = np.zeros(len(lon), dtype=np.uint64)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if ok.any():
        cells = coordinates_to_cells(lat[ok], lon[ok], resolution)
        out[ok] = pa.array(cells).to_numpy(zero_copy_only=False).astype(np.uint64)
    return out


def parents(cells: np.ndarray, resolution: int) -> np.ndarray:
    """Parent cells (uint64) at a coarser resolution; 0 stays 0."""
    cells = np.asarray(cells, dtype=np.uint64)
    out = np.zeros(len(cells), dtype=np.uint64)
    ok = cells != 0
    if ok.any():
        out[ok] = pa.array(change_resolution(pa.array(cells[ok]), resolution)).to_numpy(
            zero_copy_only=False).astype(np.uint64)
    return out


def to_strings(cells: np.ndarray) -> pd.Series:
    """uint64 cells -> hex strings (<NA> for 0)."""
    cells = np.asarray(cells, dtype=np.uint64)
    out = pd.Series(pd.NA, index=range(len(cells)), dtype="string")
    ok = cells != 0
    if ok.any():
        out[ok] = _to_numpy_str(pa.array(cells[ok]))
    return out


def from_strings(cells: pd.Series | list[str]) -> np.ndarray:
    """Hex strings -> uint64 (0 where invalid)."""
    s = pd.Series(cells, dtype="string").fillna("")
    arr = cells_parse(pa.array(s.tolist(), type=pa.string()), set_failing_to_invalid=True)
    return pa.array(arr).fill_null(0).to_numpy(zero_copy_only=False).astype(np.uint64)


def cell_polygons(cells: pd.Series) -> np.ndarray:
    """Shapely hexagons (EPSG:4326) of hex-string cells."""
    u = from_strings(cells)
    wkb = pa.array(cells_to_wkb_polygons(pa.array(u))).to_pylist()
    return shapely.from_wkb(np.asarray(wkb, dtype=object))


def cell_centres(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lat, lon) of the centres of uint64 cells."""
    if not len(cells):
        return np.zeros(0), np.zeros(0)
    table = cells_to_coordinates(pa.array(np.asarray(cells, dtype=np.uint64)))
    return table.column("lat").to_numpy(), table.column("lng").to_numpy()


def resolution_of(cell: str) -> int:
    return h3.get_resolution(cell)


def cell_resolution_or_none(text: str) -> int | None:
    """The resolution of the H3 cell ``text`` names, or None when it names none (any text:
    h3 raises OverflowError, not False, for a long string of digits)."""
    try:
        return h3.get_resolution(text) if h3.is_valid_cell(text) else None
    except (ValueError, OverflowError, TypeError):
        return None


def enrich_cells(lon: np.ndarray, lat: np.ndarray, resolution: int) -> pd.DataFrame:
    """``h3`` at ``resolution`` and ``h3_5``/``h3_6``/``h3_7`` parents, as strings."""
    base = points_to_cells(lon, lat, resolution)
    out = {"h3": to_strings(base)}
    for r in PARENT_RESOLUTIONS:
        out[f"h3_{r}"] = to_strings(base if r == resolution else parents(base, r))
    return pd.DataFrame(out)
