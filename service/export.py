"""Exports of a layer for government GIS: GeoJSON, GeoPackage or CSV, in WGS84, CGCS2000
or GCJ-02, written page by page so a large layer never sits in memory whole, with a
metadata record (source, time, datum, rule version, and every field's Chinese title, unit
and meaning) beside it.

What a planner sees without reading code:

- every coded field (risk level, equipment category, industry, admin level) has its
  Chinese name in ``<field>_name`` right after it (:func:`export_spec`);
- a GeoPackage carries each field's Chinese title as its alias (GeoPackage schema
  extension, ``gpkg_data_columns``, which GDAL reads as the field's alternative name) and
  its meaning and unit as its description; coded fields get an enum constraint listing
  their codes' names (GDAL: a coded field domain);
- a GeoJSON in CGCS2000 declares ``urn:ogc:def:crs:EPSG::4490`` in the ``crs`` member GDAL
  reads; one in GCJ-02 declares a CRS of its own named GCJ-02 (GCJ-02 has no EPSG code) and
  says so in its layer name, and so does a GeoPackage (its own ``gpkg_spatial_ref_sys`` row);
- CSV flags read 是/否; file names say layer, scope and CRS (:func:`export_filename`).
"""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import pyogrio
import pyproj

from data.catalogue import TOP_CATEGORIES, load_catalogue
from geo.regions import Region, UnknownRegion, resolve_region
from layers.aggregate import INDUSTRY_NAMES
from layers.frames import LEVEL_ZH
from layers.labels import ADMIN_LEVEL_NAMES, PRECISION_NAMES
from layers.registry import ALL, LayerSpec
from service import tabular
from service.geojson import CRS_URI, OutputCrs, features, output_geometries
from service.store.base import Store
from service.store.query import Condition, LayerQuery

Order = tuple[tuple[str, bool], ...]  # (field, descending) before fid

ExportFormat = Literal["geojson", "gpkg", "csv"]
PAGE_ROWS = 20_000
GPKG_ID = "feature_id"  # GeoPackage keeps "fid" for its own integer key
MEDIA = {"geojson": "application/geo+json", "gpkg": "application/geopackage+sqlite3",
         "csv": "text/csv"}
METADATA_TABLE = "riskmap_metadata"

DATUM = {"EPSG:4326": "WGS84 (EPSG:4326)", "EPSG:4490": "CGCS2000 (EPSG:4490)",
         "GCJ02": "GCJ-02（高德/腾讯偏移坐标，仅用于叠加在 GCJ-02 底图上）"}
DATUM_SHORT = {"EPSG:4326": "WGS84", "EPSG:4490": "CGCS2000", "GCJ02": "GCJ-02"}
CRS_TOKEN = {"EPSG:4326": "EPSG4326", "EPSG:4490": "EPSG4490", "GCJ02": "GCJ02"}
GCJ02_WARNING = "坐标系为 GCJ-02（高德/腾讯偏移坐标），非 WGS84/CGCS2000，勿与其他图层直接叠加"

# GCJ-02 is WGS84 shifted by an undisclosed function: no datum, no EPSG code, no
# transformation. Declared as a CRS of its own (WGS84's ellipsoid and axes under another
# name) so that GIS shows a distinct CRS and will not silently overlay it on WGS84 data.
GCJ02_SRS_NAME = "GCJ-02 (WGS84 shifted; not a real datum)"
GCJ02_WKT = (
    f'GEOGCRS["{GCJ02_SRS_NAME}",'
    'DATUM["GCJ-02 offset of World Geodetic System 1984",'
    'ELLIPSOID["WGS 84",6378137,298.257223563,LENGTHUNIT["metre",1]]],'
    'PRIMEM["Greenwich",0,ANGLEUNIT["degree",0.0174532925199433]],'
    'CS[ellipsoidal,2],'
    'AXIS["geodetic longitude (Lon)",east,ORDER[1],ANGLEUNIT["degree",0.0174532925199433]],'
    'AXIS["geodetic latitude (Lat)",north,ORDER[2],ANGLEUNIT["degree",0.0174532925199433]],'
    'REMARK["AMap/Tencent offset coordinates; no transformation to any datum is defined"]]')
GCJ02_ORGANIZATION, GCJ02_CODE = "riskmap", 990002
GEOJSON_CRS = {  # the GeoJSON 2008 "crs" member, which GDAL reads (RFC 7946 readers ignore it)
    "EPSG:4490": "urn:ogc:def:crs:EPSG::4490",
    "GCJ02": GCJ02_WKT,
}

# columns an export adds to the layer's fields: title, unit, meaning ({datum} filled in)
EXTRA_COLUMNS: dict[str, tuple[str, str, str]] = {
    "fid": ("要素编号", "", "要素的唯一编号：关键字段的值以“:”连接（GeoJSON 中为要素的 id）"),
    "lon": ("经度", "度", "{datum} 经度"),
    "lat": ("纬度", "度", "{datum} 纬度"),
    "wkt": ("几何（WKT）", "", "要素的几何，WKT 文本，坐标为 {datum} 经纬度"),
}
_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


# names and descriptions ----------------------------------------------------------------------

def content_disposition(name: str, ascii_name: str, *, inline: bool = False) -> str:
    """``filename`` in ASCII for old clients (anything but letters, digits, ``._-`` becomes
    ``_``, so data can never break the header) and ``filename*`` (RFC 5987) in UTF-8."""
    kind = "inline" if inline else "attachment"
    plain = re.sub(r"[^A-Za-z0-9._-]", "_", ascii_name)
    return f"{kind}; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


def export_filename(layer: str, scope: str | None, crs: str, fmt: str) -> str:
    """The file name of an export: layer, scope and CRS, e.g. ``regions-410100-EPSG4490.gpkg``
    or ``equipment-all-GCJ02.csv``. ``scope`` is the region (an adcode or its prefix form:
    ``4101`` names ``410100``), a park or an officer id; None is ``all``. ASCII only."""
    def safe(text: str) -> str:
        return _SAFE.sub("_", text).strip("_") or "_"

    region = _region(scope)
    if region is not None:
        scope = region.adcode
    token = CRS_TOKEN.get(crs) or safe(crs)
    return f"{safe(layer)}-{safe(scope) if scope else 'all'}-{token}.{safe(fmt)}"


def export_scope(caller_scope: str | None, adcode: str | None = None,
                 park: str | None = None) -> str | None:
    """The scope an export's file name states: the region filter when it lies inside the
    caller's region (an adcode scope), else the caller's region; a park filter is added.
    None when neither limits the rows (an administrator's whole export)."""
    own, wanted = _region(caller_scope), _region(adcode)
    label = caller_scope if own is None else own.adcode
    if wanted and (own is None or wanted.adcode.startswith(own.prefix)):
        label = wanted.adcode
    if park:
        label = f"{label}-{park}" if label else park
    return label or None


def _region(code: str | None) -> Region | None:
    """The region an adcode (or its prefix form) names; None for anything else."""
    if not code or not code.isdigit():
        return None
    try:
        return resolve_region(code)
    except UnknownRegion:
        return None


@cache
def code_lists() -> dict[str, dict[str, str]]:
    """Code → Chinese name of each code list of :data:`layers.labels.CODED_FIELDS`."""
    catalogue = load_catalogue()
    return {
        "level": dict(LEVEL_ZH),
        "category": dict(TOP_CATEGORIES),
        "catalogue": dict(zip(catalogue["code"].tolist(), catalogue["name"].tolist(),
                              strict=True)),
        "industry": dict(INDUSTRY_NAMES),
        "admin_level": dict(ADMIN_LEVEL_NAMES),
        "precision": dict(PRECISION_NAMES),
    }


@cache
def export_spec(spec: LayerSpec) -> LayerSpec:
    """``spec`` as exported: each coded field followed by ``<field>_name`` (text)."""
    coded = spec.coded_fields
    fields: list[tuple[str, str]] = []
    for name, kind in spec.fields:
        fields.append((name, kind))
        if name in coded:
            fields.append((f"{name}_name", "text"))
    return dataclasses.replace(spec, fields=tuple(fields))


def code_names(codes: pd.Series, names: dict[str, str]) -> pd.Series:
    """The name of each code (looked up once per distinct code); <NA> for a missing code or
    one outside the list."""
    index, distinct = pd.factorize(codes.astype("string"), use_na_sentinel=True)
    looked_up = [names.get(code) for code in distinct.tolist()]
    table = np.asarray([*looked_up, None], dtype=object)  # the sentinel -1 takes the last
    return pd.Series(table[index], index=codes.index, dtype="string")


def with_code_names(frame: pd.DataFrame, spec: LayerSpec) -> pd.DataFrame:
    """``frame`` with the ``<field>_name`` column of each coded field of ``spec``."""
    lists = code_lists()
    names = {f"{name}_name": code_names(frame[name], lists[vocab])
             for name, vocab in spec.coded_fields.items()}
    return frame.assign(**names) if names else frame


def _columns(spec: LayerSpec, fmt: ExportFormat | None) -> list[str]:
    """The attribute columns of an export of ``spec`` (already :func:`export_spec`)."""
    out = [GPKG_ID if fmt == "gpkg" else "fid", *spec.field_names]
    if fmt == "csv" and spec.geometry:
        out += ["lon", "lat"] if spec.geometry == "point" else ["wkt"]
    return out


def field_descriptions(spec: LayerSpec, crs: OutputCrs, fmt: ExportFormat | None = None
                       ) -> list[dict]:
    """Every column of an export of ``spec`` in ``fmt``: name, type, Chinese title, unit
    (None for none), meaning, and for a coded field its codes' names."""
    out_spec = export_spec(spec)
    titles, units, meanings = (out_spec.field_labels, out_spec.field_units,
                               out_spec.field_meanings)
    lists = code_lists()
    coded = spec.coded_fields
    kinds = dict(out_spec.fields)
    rows = []
    for column in _columns(out_spec, fmt):
        if column in kinds:
            row = {"name": column, "type": kinds[column], "title": titles[column],
                   "unit": units[column] or None, "meaning": meanings[column]}
            if column in coded:
                row["codes"] = lists[coded[column]]
        else:
            title, unit, meaning = EXTRA_COLUMNS["fid" if column == GPKG_ID else column]
            row = {"name": column, "type": "float" if unit else "text", "title": title,
                   "unit": unit or None, "meaning": meaning.format(datum=DATUM_SHORT[crs])}
        rows.append(row)
    return rows


def metadata(store: Store, spec: LayerSpec, crs: OutputCrs, where: tuple[Condition, ...],
             rows: int | None = None, fmt: ExportFormat | None = None) -> dict:
    build = store.layer_build()
    meta = {
        "layer": spec.id, "title": spec.title, "description": spec.description,
        "source": f"riskmap 图层（{spec.source}）", "exported_at": datetime.now(UTC).isoformat(),
        "datum": DATUM[crs], "crs": CRS_URI[crs],
        "build": None if build is None else {
            "build_id": build.build_id, "built_at": build.built_at.isoformat(),
            "as_of": build.as_of.isoformat(), "rules_version": build.rules_version,
            "rules_hash": build.rules_hash},
        "filters": [{"column": c.column, "op": c.op, "values": list(c.values)} for c in where],
        "rows": rows, "fields": field_descriptions(spec, crs, fmt),
    }
    if crs == "GCJ02":
        meta["crs_warning"] = GCJ02_WARNING
    return meta


# reading ---------------------------------------------------------------------------------------

def count(store: Store, spec: LayerSpec, where: tuple[Condition, ...]) -> int:
    return store.query_layer(LayerQuery(spec.id, where, None, 0, 0))[1]


def pages(store: Store, spec: LayerSpec, where: tuple[Condition, ...],
          page_rows: int = PAGE_ROWS, order: Order = ()) -> Iterator[pd.DataFrame]:
    """The selected rows, a page at a time, in ``order`` (``sortby``: (field, descending)
    pairs) then ``fid`` order, with the Chinese names of their coded fields
    (:func:`with_code_names`)."""
    offset = 0
    while True:
        frame, matched = store.query_layer(LayerQuery(spec.id, where, None, page_rows, offset,
                                                      order=order))
        if len(frame):
            yield with_code_names(frame, spec)
        offset += page_rows
        if offset >= matched or not len(frame):
            return


# GeoJSON ---------------------------------------------------------------------------------------

def geojson_head(spec: LayerSpec, crs: OutputCrs, meta: dict) -> dict:
    """The FeatureCollection's members before ``features``: for CGCS2000 and GCJ-02 the
    ``crs`` member GDAL reads (RFC 7946 GeoJSON is WGS84 only, so WGS84 needs none); for
    GCJ-02 a layer ``name`` and ``description`` that say it; the metadata (foreign member)."""
    head: dict = {"type": "FeatureCollection"}
    if crs == "GCJ02":
        head["name"] = f"{spec.id}：{GCJ02_WARNING}"
        head["description"] = f"{spec.title}。{GCJ02_WARNING}"
    if crs in GEOJSON_CRS:
        head["crs"] = {"type": "name", "properties": {"name": GEOJSON_CRS[crs]}}
    head["metadata"] = meta
    return head


def geojson_chunks(store: Store, spec: LayerSpec, where: tuple[Condition, ...],
                   crs: OutputCrs, order: Order = ()) -> Iterator[bytes]:
    """A FeatureCollection as byte chunks, the CRS and the metadata first."""
    meta = metadata(store, spec, crs, where, count(store, spec, where), "geojson")
    yield orjson.dumps(geojson_head(spec, crs, meta))[:-1] + b',"features":['
    out_spec = export_spec(spec)
    first = True
    for frame in pages(store, spec, where, order=order):
        items, _ = features(frame, out_spec, crs)
        yield (b"" if first else b",") + orjson.dumps(items)[1:-1]
        first = False
    yield b"]}"


# CSV -------------------------------------------------------------------------------------------

def yes_no(values: pd.Series) -> pd.Series:
    """Flags as 是/否 (empty where unknown)."""
    flags = values.astype("boolean")
    text = np.where(flags.fillna(False).to_numpy(dtype=bool), "是", "否").astype(object)
    text[flags.isna().to_numpy(dtype=bool)] = None
    return pd.Series(text, index=values.index, dtype=object)


def _plain_frame(frame: pd.DataFrame, spec: LayerSpec, crs: OutputCrs) -> pd.DataFrame:
    """The CSV rows of a page: fields (flags as 是/否), points as lon/lat, others as WKT."""
    out_spec = export_spec(spec)
    out = pd.DataFrame(frame[["fid", *out_spec.field_names]])
    for name, kind in out_spec.fields:
        if kind == "bool":
            out[name] = yes_no(out[name])
    if spec.geometry:
        geoms = output_geometries(frame.geometry.to_numpy(), crs)
        if spec.geometry == "point":
            series = gpd.GeoSeries(geoms, index=out.index)
            ok = series.notna() & ~series.is_empty
            out["lon"] = series.x.where(ok)
            out["lat"] = series.y.where(ok)
        else:
            out["wkt"] = gpd.GeoSeries(geoms, index=out.index).to_wkt()
    return out


def csv_chunks(store: Store, spec: LayerSpec, where: tuple[Condition, ...],
               crs: OutputCrs, order: Order = ()) -> Iterator[bytes]:
    """UTF-8 CSV with a BOM (Excel reads Chinese), points as lon/lat, polygons as WKT;
    text that a spreadsheet would run stays text (:mod:`service.tabular`)."""
    header = True
    for frame in pages(store, spec, where, order=order):
        text = tabular.to_csv(_plain_frame(frame, spec, crs), header=header)
        yield ("\ufeff" + text).encode("utf-8") if header else text.encode("utf-8")
        header = False
    if header:  # nothing selected: still the header row
        empty = pd.DataFrame(columns=_columns(export_spec(spec), "csv"))
        yield ("\ufeff" + empty.to_csv(index=False)).encode("utf-8")


# GeoPackage ------------------------------------------------------------------------------------

def _gpkg_crs(crs: OutputCrs) -> int | pyproj.CRS:
    return {"EPSG:4326": 4326, "EPSG:4490": 4490}.get(crs) or pyproj.CRS.from_wkt(GCJ02_WKT)


def _gpkg_frame(frame: pd.DataFrame, spec: LayerSpec, crs: OutputCrs) -> gpd.GeoDataFrame:
    out_spec = export_spec(spec)
    attrs = pd.DataFrame(frame[["fid", *out_spec.field_names]]).rename(columns={"fid": GPKG_ID})
    if not spec.geometry:
        return gpd.GeoDataFrame(attrs)
    return gpd.GeoDataFrame(attrs, geometry=output_geometries(frame.geometry.to_numpy(), crs),
                            crs=_gpkg_crs(crs))


def write_gpkg(store: Store, spec: LayerSpec, where: tuple[Condition, ...], crs: OutputCrs,
               path: Path, order: Order = ()) -> int:
    """A GeoPackage at ``path``, appended page by page; returns the rows written. The
    metadata goes into a ``riskmap_metadata`` table of the same file; field titles, units,
    meanings and code names into the GeoPackage schema tables (:func:`describe_gpkg`)."""
    rows = 0
    description = spec.description + (f"。{GCJ02_WARNING}" if crs == "GCJ02" else "")
    options = {"IDENTIFIER": spec.title, "DESCRIPTION": description}
    for frame in pages(store, spec, where, order=order):
        pyogrio.write_dataframe(_gpkg_frame(frame, spec, crs), path, layer=spec.id,
                                driver="GPKG", append=rows > 0,
                                layer_options=None if rows else options)
        rows += len(frame)
    if rows == 0:  # nothing selected: the empty layer, its columns typed as the store's
        empty, _ = store.query_layer(LayerQuery(spec.id, where, None, 0, 0))
        pyogrio.write_dataframe(_gpkg_frame(with_code_names(empty, spec), spec, crs), path,
                                layer=spec.id, driver="GPKG", layer_options=options)
    meta = metadata(store, spec, crs, where, rows, "gpkg")
    pyogrio.write_dataframe(pd.DataFrame({"key": list(meta), "value": [
        json.dumps(v, ensure_ascii=False) for v in meta.values()]}), path,
        layer=METADATA_TABLE, driver="GPKG", append=False,
        layer_options={"IDENTIFIER": "riskmap 导出元数据",
                       "DESCRIPTION": f"图层 {spec.id} 导出的元数据（JSON 值）"})
    describe_gpkg(path, spec, crs, meta["fields"])
    return rows


_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS gpkg_extensions (
  table_name TEXT, column_name TEXT, extension_name TEXT NOT NULL, definition TEXT NOT NULL,
  scope TEXT NOT NULL, CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name));
CREATE TABLE IF NOT EXISTS gpkg_data_columns (
  table_name TEXT NOT NULL, column_name TEXT NOT NULL, name TEXT, title TEXT,
  description TEXT, mime_type TEXT, constraint_name TEXT,
  CONSTRAINT pk_gdc PRIMARY KEY (table_name, column_name),
  CONSTRAINT gdc_tn UNIQUE (table_name, name));
CREATE TABLE IF NOT EXISTS gpkg_data_column_constraints (
  constraint_name TEXT NOT NULL, constraint_type TEXT NOT NULL, value TEXT, min NUMERIC,
  min_is_inclusive BOOLEAN, max NUMERIC, max_is_inclusive BOOLEAN, description TEXT,
  CONSTRAINT gdcc_ntv UNIQUE (constraint_name, constraint_type, value));
"""
_SCHEMA_EXTENSION = "http://www.geopackage.org/spec/#extension_schema"


def describe_gpkg(path: Path, spec: LayerSpec, crs: OutputCrs, fields: list[dict]) -> None:
    """Write the GeoPackage schema extension into ``path`` (after GDAL has closed it):

    - ``gpkg_data_columns``: each column's Chinese title as its ``name`` (GDAL ≥ 3.7 reads it
      as the field's alternative name, QGIS as its alias) and ``title``, its meaning and unit
      as its ``description`` (GDAL: the field's comment);
    - ``gpkg_data_column_constraints``: an ``enum`` of the codes of each coded field, each
      code's Chinese name as its description (GDAL: a coded field domain);
    - in GCJ-02, the layer's ``gpkg_spatial_ref_sys`` row as riskmap's own CRS, with its
      warning, so no GIS takes it for EPSG:4326.
    """
    data_columns = []
    constraints = []
    for field in fields:
        constraint = None
        if "codes" in field:
            constraint = f"riskmap_{field['name']}"
            constraints += [(constraint, code, name) for code, name in field["codes"].items()]
        unit = f"（单位：{field['unit']}）" if field["unit"] else ""
        data_columns.append((spec.id, field["name"], field["title"], field["title"],
                             field["meaning"] + unit, constraint))
    data_columns += [(METADATA_TABLE, "key", "项", "项", "元数据项", None),
                     (METADATA_TABLE, "value", "值", "值", "元数据的值（JSON）", None)]
    with closing(sqlite3.connect(path)) as db, db:
        db.executescript(_SCHEMA_SQL)
        for table in ("gpkg_data_columns", "gpkg_data_column_constraints"):
            if not db.execute("SELECT 1 FROM gpkg_extensions WHERE table_name = ? AND "
                              "extension_name = 'gpkg_schema'", (table,)).fetchone():
                db.execute("INSERT INTO gpkg_extensions VALUES (?, NULL, 'gpkg_schema', ?, "
                           "'read-write')", (table, _SCHEMA_EXTENSION))
        # a fresh file: a title twice in a table is an error (UNIQUE), never a lost row
        db.executemany("INSERT INTO gpkg_data_columns VALUES (?, ?, ?, ?, ?, NULL, ?)",
                       data_columns)
        db.executemany("INSERT OR REPLACE INTO gpkg_data_column_constraints (constraint_name, "
                       "constraint_type, value, description) VALUES (?, 'enum', ?, ?)",
                       constraints)
        if crs == "GCJ02" and spec.geometry:
            db.execute(
                "UPDATE gpkg_spatial_ref_sys SET organization = ?, organization_coordsys_id = ?, "
                "description = ? WHERE srs_id = (SELECT srs_id FROM gpkg_geometry_columns "
                "WHERE table_name = ?)", (GCJ02_ORGANIZATION, GCJ02_CODE, GCJ02_WARNING, spec.id))


# files -----------------------------------------------------------------------------------------

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
    meta = metadata(store, spec, crs, where, rows, fmt)
    Path(f"{path}.meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n",
                                         encoding="utf-8")
    return meta
