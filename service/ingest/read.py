"""Read registry exports (CSV in UTF-8 or GBK, XLSX, GeoJSON, GeoPackage) into raw frames.

Everything is read as text (XLSX cells keep their Excel types, which the value parsers
understand), so codes with leading zeros or 20 digits are never mangled into floats.
Row numbers are the ones a person sees: in a spreadsheet the first data row is row 2,
in a GeoJSON/GeoPackage the first feature is row 1.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
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
    malformed: list[tuple[int | None, str]] = field(default_factory=list)  # (row, text)


def _header(path: Path) -> tuple[list[str], str, str]:
    """Column names, delimiter and encoding, from the first line of a text table."""
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    for enc in ENCODINGS:
        try:
            line = first.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise FileRejected(str(path), "bad_encoding", "文件编码无法识别（应为 UTF-8 或 GBK）",
                           "unrecognised text encoding (expected UTF-8 or GBK)")
    sep = "\t" if line.count("\t") > line.count(",") else ","
    names = next(csv.reader([line], delimiter=sep)) if line else []
    return names, sep, enc


def _read_csv(path: Path) -> tuple[pd.DataFrame, str, list[tuple[int | None, str]]]:
    """Read a CSV with Arrow (multithreaded, ~70x faster than pandas' parser on 1M rows),
    every column as text. UTF-8 is tried first; invalid UTF-8 anywhere means GBK/GB18030.
    Rows with the wrong number of fields are kept aside and reported, not fatal."""
    names, sep, first_enc = _header(path)
    if not names or not any(n.strip() for n in names):
        raise FileRejected(str(path), "bad_table", "表格没有表头", "table has no header row")
    malformed: list[tuple[int | None, str]] = []

    def _bad_row(row: pacsv.InvalidRow) -> str:
        malformed.append((row.number, row.text[:500]))
        return "skip"

    def _read(enc: str, threads: bool) -> pa.Table:
        malformed.clear()
        return pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(encoding=enc, column_names=names, skip_rows=1,
                                           use_threads=threads),
            parse_options=pacsv.ParseOptions(delimiter=sep, invalid_row_handler=_bad_row),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=False,
                quoted_strings_can_be_null=False))

    encodings = ("utf8", "gb18030") if first_enc == "utf-8-sig" else ("gb18030",)
    last_error: Exception | None = None
    for enc in encodings:
        try:
            table = _read(enc, threads=True)
            if malformed:  # row numbers are only known to the single-threaded parser
                table = _read(enc, threads=False)
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            last_error = exc
            continue
        frame = table.to_pandas()
        frame.columns = [str(n).lstrip("\ufeff") for n in names]
        return frame, ("utf-8" if enc == "utf8" else "gbk"), list(malformed)
    message = str(last_error).lower()
    if "utf" in message or "decode" in message or ("invalid" in message and "byte" in message):
        raise FileRejected(str(path), "bad_encoding", "文件编码无法识别（应为 UTF-8 或 GBK）",
                           "unrecognised text encoding (expected UTF-8 or GBK)")
    raise FileRejected(str(path), "bad_table", "表格结构无法解析",
                       f"malformed table: {last_error}")


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
    malformed: list[tuple[int | None, str]] = []
    if suffix in TABULAR:
        source, encoding, malformed = _read_csv(path)
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
    rows = _row_numbers(len(frame), first_row, [n for n, _ in malformed])
    return RawTable(str(path), found, frame, rows, encoding, geometry, file_crs,
                    [h for h in headers if h not in mapping], source.reset_index(drop=True),
                    malformed)


def _row_numbers(n: int, first_row: int, skipped: list[int | None]) -> np.ndarray:
    """Row numbers of the rows read, leaving out the numbers of rows skipped as malformed
    (Arrow numbers them as lines of the file, the header being line 1)."""
    gaps = sorted(k for k in skipped if k is not None)
    numbers = np.arange(first_row, first_row + n + len(gaps), dtype=np.int64)
    return numbers[~np.isin(numbers, gaps)][:n] if gaps else numbers[:n]
