"""Read registry exports (CSV in UTF-8 or GBK, XLSX, GeoJSON, GeoPackage) into raw frames.

Everything is read as text (XLSX cells keep their Excel types, which the value parsers
understand), so codes with leading zeros or 20 digits are never mangled into floats.
Row numbers are the ones a person sees: in a spreadsheet the first data row is row 2,
in a GeoJSON/GeoPackage the first feature is row 1.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from service.ingest.schema import POLYGON_KINDS, Kind, detect_kind, match_headers

TABULAR = {".csv", ".txt", ".tsv"}
EXCEL = {".xlsx", ".xlsm", ".xls"}
VECTOR = {".geojson", ".json", ".gpkg", ".shp", ".fgb"}
ENCODINGS = ("utf-8-sig", "gb18030")  # GB18030 is a superset of GBK and GB2312


class FileRejected(Exception):
    """A whole file could not be read; the reason is reported (never silently skipped)."""

    def __init__(self, path: str, code: str, zh: str, en: str) -> None:
        super().__init__(f"{path}: {en}")
        self.path, self.code, self.zh, self.en = path, code, zh, en


@dataclass
class RawTable:
    """One input file: canonical columns as read, the row numbers, and what we learnt."""

    path: str
    kind: Kind
    frame: pd.DataFrame                      # canonical column names, raw values
    rows: np.ndarray                         # row number of each frame row
    encoding: str | None = None
    geometry: gpd.GeoSeries | None = None    # polygon kinds, or point files without lon/lat
    file_crs: str | None = None              # CRS declared by a vector file
    ignored_columns: list[str] = field(default_factory=list)
    raw: pd.DataFrame | None = None          # the source columns, for reporting rejects


def _decode(path: Path, data: bytes) -> tuple[str, str]:
    for enc in ENCODINGS:
        try:
            return data.decode(enc), ("utf-8" if enc == "utf-8-sig" else "gbk")
        except UnicodeDecodeError:
            continue
    raise FileRejected(str(path), "bad_encoding", "文件编码无法识别（应为 UTF-8 或 GBK）",
                       "unrecognised text encoding (expected UTF-8 or GBK)")


def _read_csv(path: Path) -> tuple[pd.DataFrame, str]:
    text, encoding = _decode(path, path.read_bytes())
    first_line = text.split("\n", 1)[0]
    sep = "\t" if first_line.count("\t") > first_line.count(",") else ","
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                            na_values=[], skip_blank_lines=True, engine="c")
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise FileRejected(str(path), "bad_table", "表格结构无法解析",
                           f"malformed table: {exc}") from exc
    return frame, encoding


def _read_excel(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_excel(path, engine="calamine", dtype=object, header=0)
    except Exception as exc:  # calamine raises its own error types for broken files
        raise FileRejected(str(path), "bad_table", "Excel 文件无法读取",
                           f"unreadable Excel file: {exc}") from exc
    return frame.dropna(how="all")


def _read_vector(path: Path) -> tuple[pd.DataFrame, gpd.GeoSeries, str | None]:
    try:
        gdf = pyogrio.read_dataframe(path)
    except Exception as exc:  # GDAL errors come in several types
        raise FileRejected(str(path), "bad_table", "地理数据文件无法读取",
                           f"unreadable vector file: {exc}") from exc
    crs = gdf.crs
    if crs is not None and crs.is_projected:
        # e.g. CGCS2000 Gauss-Kruger zones from government GIS: bring to lon/lat
        gdf = gdf.to_crs(4490)
        crs = gdf.crs
    file_crs = None if crs is None else crs.to_string()
    geometry = gdf.geometry
    frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    return frame, geometry, file_crs


def read_file(path: str | Path, kind: Kind | None = None, *, max_bytes: int | None = None
              ) -> RawTable:
    """Read one file and recognise its kind from its headers (or take ``kind``)."""
    path = Path(path)
    if not path.is_file():
        raise FileRejected(str(path), "not_found", "文件不存在", "file not found")
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise FileRejected(str(path), "too_large",
                           f"文件过大（{size / 2**20:.1f} MB，上限 {max_bytes / 2**20:.0f} MB）",
                           f"file too large ({size / 2**20:.1f} MB > {max_bytes / 2**20:.0f} MB)")
    suffix = path.suffix.lower()
    encoding = geometry = file_crs = None
    if suffix in TABULAR:
        source, encoding = _read_csv(path)
        first_row = 2
    elif suffix in EXCEL:
        source = _read_excel(path)
        first_row = 2
    elif suffix in VECTOR:
        source, geometry, file_crs = _read_vector(path)
        first_row = 1
    else:
        raise FileRejected(str(path), "bad_format",
                           "不支持的文件格式（支持 CSV/XLSX/GeoJSON/GPKG）",
                           "unsupported format (CSV, XLSX, GeoJSON, GeoPackage)")

    headers = [str(c) for c in source.columns]
    source.columns = headers
    found = kind or detect_kind(headers)
    if found is None:
        raise FileRejected(str(path), "unknown_kind", "无法从表头识别文件类型，请用 --kind 指定",
                           "cannot recognise the kind of file from its headers; use --kind")
    mapping = match_headers(found, headers)
    frame = source[list(mapping)].rename(columns=mapping).reset_index(drop=True)
    if found in POLYGON_KINDS and geometry is None:
        raise FileRejected(str(path), "no_geometry", "园区/场所须为带多边形的 GeoJSON 或 GPKG",
                           "parks and venues need polygons (GeoJSON or GeoPackage)")
    if geometry is not None:
        geometry = geometry.reset_index(drop=True)
        if found not in POLYGON_KINDS and not {"lon", "lat"} <= set(frame.columns):
            pts = geometry.where(geometry.geom_type == "Point")
            frame["lon"] = pts.x.astype("float64")
            frame["lat"] = pts.y.astype("float64")
    rows = np.arange(first_row, first_row + len(frame), dtype=np.int64)
    return RawTable(str(path), found, frame, rows, encoding, geometry, file_crs,
                    [h for h in headers if h not in mapping], source.reset_index(drop=True))
