"""Administrative boundaries (province, city, county) shipped as ``data/boundaries.gpkg``.

The file is built by ``python -m data.build_boundaries`` (WGS84, counties simplified as one
coverage; see docs/data.md). Everything here reads that file once and caches it: the
boundaries are small (a few hundred polygons) while the point sets located against them
can be millions of rows.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

LAYER = "boundaries"
LEVELS = ("province", "city", "county")
ATTRIBUTES = ("adcode", "name", "level", "parent_adcode", "province_adcode", "city_adcode")
# Pole-of-inaccessibility precision for representative points, in degrees (~10 m).
_REPRESENTATIVE_TOLERANCE_DEG = 1e-4


def boundaries_path() -> Path:
    """Path of the shipped GeoPackage (package data of the ``data`` package)."""
    return Path(str(resources.files("data").joinpath("boundaries.gpkg")))


@lru_cache(maxsize=1)
def _all_boundaries() -> gpd.GeoDataFrame:
    """Every row of the file, read once; callers get copies."""
    gdf = pyogrio.read_dataframe(boundaries_path(), layer=LAYER)
    for col in ATTRIBUTES:
        gdf[col] = gdf[col].astype("string")
    if gdf.geometry.name != "geometry":
        gdf = gdf.rename_geometry("geometry")
    return gdf


def province_codes(provinces: list[str] | tuple[str, ...] | None = None) -> tuple[str, ...]:
    """Normalise province selectors to sorted 6-digit adcodes.

    Accepts adcodes ('410000'), two-digit prefixes ('41'), full names ('河南省') and short
    names ('河南'); ``None`` means every province in the file. Unknown selectors raise, since
    silently dropping a province would make its data look like "outside the boundaries".
    """
    rows = _all_boundaries()
    rows = rows[rows["level"] == "province"]
    known = dict(zip(rows["adcode"], rows["name"], strict=True))
    if provinces is None:
        return tuple(sorted(known))
    out = set()
    for item in provinces:
        key = str(item).strip()
        if len(key) == 2 and key.isdigit():
            key += "0000"
        if key in known:
            out.add(key)
            continue
        hits = [code for code, name in known.items() if name == key or name.startswith(key)]
        if len(hits) != 1 or not key:
            raise ValueError(f"unknown province {item!r}; the boundaries hold "
                             f"{', '.join(f'{c} {n}' for c, n in sorted(known.items()))}")
        out.add(hits[0])
    return tuple(sorted(out))


def load_boundaries(provinces: list[str] | None = None,
                    level: str | None = None) -> gpd.GeoDataFrame:
    """Boundaries of the given provinces (all by default), optionally one level only.

    Sorted by level (province, city, county) then adcode. Note that 济源市 (419001) appears
    both as a city and as a county.
    """
    if level is not None and level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    codes = province_codes(provinces)
    gdf = _all_boundaries()
    mask = gdf["province_adcode"].isin(codes)
    if level is not None:
        mask = mask & (gdf["level"] == level)
    return gdf[mask.to_numpy()].reset_index(drop=True).copy()


@lru_cache(maxsize=8)
def _county_index(codes: tuple[str, ...]) -> tuple[np.ndarray, pd.DataFrame]:
    """Prepared county polygons (sorted by adcode) and their adcode columns, per selection."""
    counties = load_boundaries(list(codes), level="county").sort_values("adcode")
    geoms = counties.geometry.to_numpy().copy()
    shapely.prepare(geoms)
    attrs = counties[["province_adcode", "city_adcode", "adcode"]].reset_index(drop=True)
    return geoms, attrs.rename(columns={"adcode": "county_adcode"})


def locate(lon: np.ndarray, lat: np.ndarray,
           provinces: list[str] | None = None) -> pd.DataFrame:
    """Province, city and county adcode of each WGS84 point (``pd.NA`` outside every county).

    The points go into an STRtree and each prepared county polygon queries it, so the work
    is one indexed point-in-polygon test per point and nearby county, not a Python loop.
    A point on a shared border touches two counties; it gets the smallest adcode, so the
    answer never depends on input order. Missing coordinates give ``pd.NA``.
    """
    lon = np.asarray(lon, dtype=np.float64).ravel()
    lat = np.asarray(lat, dtype=np.float64).ravel()
    if lon.shape != lat.shape:
        raise ValueError("lon and lat must have the same length")
    geoms, attrs = _county_index(province_codes(provinces))

    best = np.full(len(lon), -1, dtype=np.int64)
    ok = np.flatnonzero(np.isfinite(lon) & np.isfinite(lat))
    if len(ok) and len(geoms):
        tree = shapely.STRtree(shapely.points(lon[ok], lat[ok]))
        county_idx, point_idx = tree.query(geoms, predicate="intersects")
        hit = np.full(len(ok), len(geoms), dtype=np.int64)
        hit[point_idx] = county_idx
        on_border = np.bincount(point_idx, minlength=len(ok))[point_idx] > 1
        if on_border.any():  # rare: resolve only those points, to the smallest adcode
            hit[point_idx[on_border]] = len(geoms)
            np.minimum.at(hit, point_idx[on_border], county_idx[on_border])
        found = hit < len(geoms)
        best[ok[found]] = hit[found]

    out = {}
    for col in ("province_adcode", "city_adcode", "county_adcode"):
        values = np.append(attrs[col].to_numpy(dtype=object, na_value=None), None)
        out[col] = pd.array(values[best], dtype="string")  # best == -1 -> the appended None
    return pd.DataFrame(out)


def intersecting_counties(geoms: np.ndarray,
                          provinces: list[str] | None = None) -> pd.DataFrame:
    """Every (``index`` of a geometry, ``county_adcode``) pair where the geometry
    intersects the county: a grid cell on a border belongs to both sides. A geometry
    outside every county has no pair."""
    geoms = np.asarray(geoms, dtype=object)
    counties, attrs = _county_index(province_codes(provinces))
    if not len(geoms) or not len(counties):
        return pd.DataFrame({"index": np.zeros(0, dtype=np.int64),
                             "county_adcode": pd.array([], dtype="string")})
    county_idx, geom_idx = shapely.STRtree(geoms).query(counties, predicate="intersects")
    order = np.lexsort((county_idx, geom_idx))
    return pd.DataFrame({
        "index": geom_idx[order].astype(np.int64),
        "county_adcode": pd.array(attrs["county_adcode"].to_numpy(dtype=object)[
            county_idx[order]], dtype="string")})


@lru_cache(maxsize=16)
def _representative_points(level: str, codes: tuple[str, ...]) -> gpd.GeoDataFrame:
    gdf = load_boundaries(list(codes), level=level)
    # Pole of inaccessibility: the interior point farthest from the border, so a place put
    # there is unambiguously inside its unit and locate() maps it back to the same unit.
    circles = shapely.maximum_inscribed_circle(gdf.geometry.to_numpy(),
                                               _REPRESENTATIVE_TOLERANCE_DEG)
    points = shapely.get_point(circles, 0)
    cols = ["adcode", "name", "province_adcode", "city_adcode"]
    return gpd.GeoDataFrame(gdf[cols].copy(), geometry=points, crs="EPSG:4326")


def representative_points(level: str = "county",
                          provinces: list[str] | None = None) -> gpd.GeoDataFrame:
    """One point inside each unit of ``level``: adcode, name, parents and geometry (WGS84)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    return _representative_points(level, province_codes(provinces)).copy()
