"""Layer rows → GeoJSON, encoded once with orjson (geometries from Shapely's vectorised
``to_geojson``, passed through as pre-encoded fragments), in the requested output datum."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import orjson
import pandas as pd
import shapely

from geo.datum import Datum, transform_geometries
from layers.registry import LayerSpec

OutputCrs = Literal["EPSG:4326", "EPSG:4490", "GCJ02"]
CRS_URI = {"EPSG:4326": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
           "EPSG:4490": "http://www.opengis.net/def/crs/EPSG/0/4490",
           "GCJ02": "GCJ-02 (AMap/Tencent offset of WGS84; not an EPSG code)"}


def output_geometries(geoms: np.ndarray, crs: OutputCrs) -> np.ndarray:
    """CGCS2000 equals WGS84 at map scale (domain.md); GCJ-02 is shifted for AMap-based
    systems."""
    if crs == "GCJ02":
        return transform_geometries(geoms, Datum.GCJ02, to_wgs=False)
    return geoms


def _properties(frame: pd.DataFrame, spec: LayerSpec) -> list[dict]:
    columns: dict[str, list] = {}
    for name, kind in spec.fields:
        col = frame[name]
        if kind == "json":
            columns[name] = [orjson.Fragment(v) if isinstance(v, str) else None for v in col]
        elif kind in ("date", "timestamp"):
            text = col.dt.strftime("%Y-%m-%d" if kind == "date" else "%Y-%m-%dT%H:%M:%S")
            columns[name] = text.astype(object).where(col.notna(), None).tolist()
        elif kind == "float":
            values = col.to_numpy(dtype="float64", na_value=np.nan)
            columns[name] = [None if math.isnan(v) else v for v in values.tolist()]
        else:
            columns[name] = col.astype(object).where(col.notna(), None).tolist()
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def swap_axes(geoms: np.ndarray) -> np.ndarray:
    """Coordinates as (y, x): EPSG:4490 orders its axes latitude first, where the OGC API
    (Part 2) must follow the CRS definition."""
    return shapely.transform(geoms, lambda xy: np.ascontiguousarray(xy[:, ::-1]))


def features(frame: pd.DataFrame, spec: LayerSpec, crs: OutputCrs = "EPSG:4326",
             lat_lon: bool = False) -> tuple[list[dict], list[float] | None]:
    """GeoJSON features (geometries pre-encoded) and the bbox of the drawn ones.
    ``lat_lon`` swaps the axes (OGC API requests of EPSG:4490)."""
    geoms = output_geometries(frame.geometry.to_numpy(), crs) if spec.geometry else None
    if geoms is not None and lat_lon:
        geoms = swap_axes(geoms)
    props = _properties(frame, spec) if len(frame) else []
    if geoms is not None and len(geoms):
        encoded = shapely.to_geojson(geoms)
        geometry = [orjson.Fragment(g) if g is not None else None for g in encoded]
        present = geoms[~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)]
        bounds = shapely.total_bounds(present) if len(present) else None
    else:
        geometry = [None] * len(frame)
        bounds = None
    items = [{"type": "Feature", "id": fid, "geometry": g, "properties": p}
             for fid, g, p in zip(frame["fid"].tolist(), geometry, props, strict=True)]
    box = None
    if bounds is not None and np.isfinite(bounds).all():
        box = [round(float(b), 7) for b in bounds]
    return items, box


def feature_collection(frame: pd.DataFrame, spec: LayerSpec, *, matched: int | None,
                       links: list[dict], crs: OutputCrs = "EPSG:4326",
                       lat_lon: bool = False, members: dict | None = None) -> bytes:
    """``members`` are added to the top-level object (e.g. ``timeStamp``); ``matched``
    None leaves ``numberMatched`` out (the number is not known)."""
    items, box = features(frame, spec, crs, lat_lon)
    body: dict = {"type": "FeatureCollection", "features": items,
                  **({} if matched is None else {"numberMatched": matched}),
                  "numberReturned": len(items), "links": links, **(members or {})}
    if box is not None:
        body["bbox"] = box
    return orjson.dumps(body)
