"""Parks and crowded venues: check polygons, convert their datum, place them in a county."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from data.reasons import Reason
from geo import boundaries
from geo.datum import Datum, transform_geometries
from service.ingest.read import RawTable
from service.ingest.rejects import RejectLog

# Albers equal-area for China (standard parallels 25°N/47°N): areas in km² without a loop
CHINA_ALBERS = "+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +datum=WGS84 +units=m"


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Repair invalid rings and keep only the polygonal parts, as MultiPolygons (None when
    nothing polygonal is left)."""
    geoms = np.asarray(geoms, dtype=object).copy()
    invalid = ~shapely.is_missing(geoms) & ~shapely.is_valid(geoms)
    if invalid.any():
        geoms[invalid] = shapely.make_valid(geoms[invalid])
    # two levels of parts: collection -> multipolygon -> polygon
    parts1, idx1 = shapely.get_parts(geoms, return_index=True)
    parts2, idx2 = shapely.get_parts(parts1, return_index=True)
    idx = idx1[idx2]
    keep = (shapely.get_type_id(parts2) == 3) & ~shapely.is_empty(parts2)
    out = np.full(len(geoms), None, dtype=object)
    if keep.any():
        rows, dense = np.unique(idx[keep], return_inverse=True)
        out[rows] = shapely.multipolygons(parts2[keep], indices=dense)
    return out


def prepare(raw: RawTable, parsed: pd.DataFrame, log: RejectLog, default_datum: Datum | None,
            provinces: list[str]) -> pd.DataFrame:
    geoms = np.asarray(raw.geometry.to_numpy() if raw.geometry is not None else
                       np.full(len(parsed), None), dtype=object)
    cleaned = _polygonal(geoms)
    empty = shapely.is_missing(cleaned)
    log.add(raw.path, raw.kind, raw.rows, empty, "geometry", Reason.BAD_GEOMETRY,
            pd.Series(shapely.get_type_id(geoms)).map(
                {-1: "空", 0: "Point", 1: "LineString", 7: "GeometryCollection"}).astype("string"))

    fallback = default_datum or (Datum.CGCS2000 if raw.file_crs and "4490" in raw.file_crs
                                 else Datum.WGS84)
    datum = parsed["crs"].fillna(str(fallback)).to_numpy(dtype=object)
    wgs = cleaned.copy()
    for d in (Datum.GCJ02, Datum.BD09):
        sel = (datum == d) & ~empty
        if sel.any():
            wgs[sel] = transform_geometries(cleaned[sel], d, to_wgs=True)

    lon, lat = np.full(len(wgs), np.nan), np.full(len(wgs), np.nan)
    if (~empty).any():
        anchor = shapely.point_on_surface(wgs[~empty])
        lon[~empty], lat[~empty] = shapely.get_x(anchor), shapely.get_y(anchor)
    where = boundaries.locate(lon, lat, provinces)
    outside = ~empty & where["county_adcode"].isna().to_numpy()
    log.add(raw.path, raw.kind, raw.rows, outside, "geometry", Reason.OUTSIDE_REGION)

    area = np.full(len(wgs), np.nan)
    if (~empty).any():
        area[~empty] = gpd.GeoSeries(wgs[~empty], crs=4326).to_crs(CHINA_ALBERS).area / 1e6
    out = parsed.copy()
    out["source_crs"] = pd.Series(datum, dtype="string")
    out["province_adcode"] = where["province_adcode"].astype("string").to_numpy()
    out["city_adcode"] = where["city_adcode"].astype("string").to_numpy()
    out["county_adcode"] = where["county_adcode"].astype("string").to_numpy()
    out["area_km2"] = area
    out["geometry"] = wgs
    return out
