"""Exports of a layer for government GIS: GeoJSON, GeoPackage or CSV, in WGS84, CGCS2000
or GCJ-02, written page by page so a large layer never sits in memory whole, with a
metadata record (source, time, datum, rule version) beside it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import geopandas as gpd
import orjson
import pandas as pd
import pyogrio

from layers.registry import ALL, LayerSpec
from service import tabular
from service.geojson import CRS_URI, OutputCrs, features, output_geometries
from service.store.base import Store
from service.store.query import Condition, LayerQuery

ExportFormat = Literal["geojson", "gpkg", "csv"]
PAGE_ROWS = 20_000
GPKG_ID = "feature_id"  # GeoPackage keeps "fid" for its own integer key
MEDIA = {"geojson": "application/geo+json", "gpkg": "application/geopackage+sqlite3",
         "csv": "text/csv"}


def metadata(store: Store, spec: LayerSpec, crs: OutputCrs, where: tuple[Condition, ...],
             rows: int | None = None) -> dict:
    build = store.layer_build()
    return {
        "layer": spec.id, "title": spec.title, "description": spec.description,
        "source": f"riskmap 图层（{spec.source}）", "exported_at": datetime.now(UTC).isoformat(),
        "datum": {"EPSG:4326": "WGS84 (EPSG:4326)", "EPSG:4490": "CGCS2000 (EPSG:4490)",
                  "GCJ02": "GCJ-02（高德/腾讯偏移坐标，仅用于叠加在 GCJ-02 底图上）"}[crs],
        "crs": CRS_URI[crs],
        "build": None if build is None else {
            "build_id": build.build_id, "built_at": build.built_at.isoformat(),
            "as_of": build.as_of.isoformat(), "rules_version": build.rules_version,
            "rules_hash": build.rules_hash},
        "filters": [{"column": c.column, "op": c.op, "values": list(c.values)} for c in where],
        "rows": rows, "fields": [{"name": n, "type": t} for n, t in spec.fields],
    }


def count(store: Store, spec: LayerSpec, where: tuple[Condition, ...]) -> int:
    return store.query_layer(LayerQuery(spec.id, where, None, 0, 0))[1]


def pages(store: Store, spec: LayerSpec, where: tuple[Condition, ...],
          page_rows: int = PAGE_ROWS) -> Iterator[pd.DataFrame]:
    """The selected rows, a page at a time, in ``fid`` order."""
    offset = 0
    while True:
        frame, matched = store.query_layer(LayerQuery(spec.id, where, None, page_rows, offset))
        if len(frame):
            yield frame
        offset += page_rows
        if offset >= matched or not len(frame):
            return


def geojson_chunks(store: Store, spec: LayerSpec, where: tuple[Condition, ...],
                   crs: OutputCrs) -> Iterator[bytes]:
    """A FeatureCollection as byte chunks, the metadata as a foreign member first."""
    meta = metadata(store, spec, crs, where, count(store, spec, where))
    yield b'{"type":"FeatureCollection","metadata":' + orjson.dumps(meta) + b',"features":['
    first = True
    for frame in pages(store, spec, where):
        items, _ = features(frame, spec, crs)
        yield (b"" if first else b",") + orjson.dumps(items)[1:-1]
        first = False
    yield b"]}"


def _plain_frame(frame: pd.DataFrame, spec: LayerSpec, crs: OutputCrs) -> pd.DataFrame:
    out = pd.DataFrame(frame[["fid", *spec.field_names]])
    if spec.geometry:
        geoms = output_geometries(frame.geometry.to_numpy(), crs)
        if spec.geometry == "point":
            series = gpd.GeoSeries(geoms)
            ok = series.notna() & ~series.is_empty
            out["lon"] = series.x.where(ok)
            out["lat"] = series.y.where(ok)
        else:
            out["wkt"] = gpd.GeoSeries(geoms).to_wkt()
    return out


def csv_chunks(store: Store, spec: LayerSpec, where: tuple[Condition, ...],
               crs: OutputCrs) -> Iterator[bytes]:
    """UTF-8 CSV with a BOM (Excel reads Chinese), points as lon/lat, polygons as WKT."""
    header = True
    for frame in pages(store, spec, where):
        text = tabular.to_csv(_plain_frame(frame, spec, crs), header=header)
        yield ("\ufeff" + text).encode("utf-8") if header else text.encode("utf-8")
        header = False
    if header:  # nothing selected: still the header row
        empty = pd.DataFrame(columns=["fid", *spec.field_names])
        yield ("\ufeff" + empty.to_csv(index=False)).encode("utf-8")


def write_gpkg(store: Store, spec: LayerSpec, where: tuple[Condition, ...], crs: OutputCrs,
               path: Path) -> int:
    """A GeoPackage at ``path``, appended page by page; returns the rows written. The
    metadata goes into a ``riskmap_metadata`` table of the same file."""
    epsg = 4490 if crs == "EPSG:4490" else 4326
    rows = 0
    for frame in pages(store, spec, where):
        out = gpd.GeoDataFrame(pd.DataFrame(frame[["fid", *spec.field_names]]).rename(
                                   columns={"fid": GPKG_ID}),
                               geometry=output_geometries(frame.geometry.to_numpy(), crs)
                               if spec.geometry else None, crs=epsg if spec.geometry else None)
        pyogrio.write_dataframe(out, path, layer=spec.id, driver="GPKG", append=rows > 0)
        rows += len(frame)
    if rows == 0:
        empty = gpd.GeoDataFrame(pd.DataFrame(columns=[GPKG_ID, *spec.field_names]),
                                 geometry=gpd.GeoSeries([], crs=epsg))
        pyogrio.write_dataframe(empty, path, layer=spec.id, driver="GPKG")
    meta = metadata(store, spec, crs, where, rows)
    pyogrio.write_dataframe(pd.DataFrame({"key": list(meta), "value": [
        json.dumps(v, ensure_ascii=False) for v in meta.values()]}), path,
        layer="riskmap_metadata", driver="GPKG", append=False)
    return rows


def export_to_file(store: Store, layer: str, fmt: ExportFormat, crs: OutputCrs, path: Path,
                   where: tuple[Condition, ...] = ()) -> dict:
    """Write an export and its ``<file>.meta.json`` sidecar; returns the metadata."""
    spec = ALL[layer]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    if fmt == "gpkg":
        rows = write_gpkg(store, spec, where, crs, path)
    else:
        chunks = geojson_chunks if fmt == "geojson" else csv_chunks
        with open(path, "wb") as fh:
            for chunk in chunks(store, spec, where, crs):
                fh.write(chunk)
        rows = count(store, spec, where)
    meta = metadata(store, spec, crs, where, rows)
    Path(f"{path}.meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n",
                                         encoding="utf-8")
    return meta
