"""Counts per H3 cell as a polygon layer (the first map layer; risk layers build on it)."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import shapely

from geo.boundaries import locate
from geo.cells import cell_polygons, resolution_of


def provinces_with_data(cells: gpd.GeoDataFrame, provinces: list[str]) -> list[str]:
    """Adcodes of the loaded provinces that hold at least one counted cell (by centroid)."""
    if cells.empty:
        return []
    centres = shapely.centroid(cells.geometry.to_numpy())
    where = locate(shapely.get_x(centres), shapely.get_y(centres), provinces)
    return sorted(where["province_adcode"].dropna().unique().tolist())


def count_cells(counts: pd.DataFrame) -> gpd.GeoDataFrame:
    """``counts`` (h3, count) → hexagon polygons with ``h3``, ``resolution`` and ``count``."""
    counts = counts[counts["h3"].notna()].reset_index(drop=True)
    res = resolution_of(counts["h3"].iloc[0]) if len(counts) else None
    return gpd.GeoDataFrame(
        {"h3": counts["h3"].astype(str), "resolution": res,
         "count": counts["count"].astype("int64")},
        geometry=cell_polygons(counts["h3"]) if len(counts) else [], crs=4326)
