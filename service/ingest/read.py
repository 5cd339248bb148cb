"""Read registry exports (CSV in UTF-8 or GBK, XLSX, GeoJSON, GeoPackage) into raw frames.

Everything is read as text (XLSX cells keep their Excel types, which the value parsers
understand), so codes with leading zeros or 20 digits are never mangled into floats.
Row numbers are the ones a person sees: in a spreadsheet the first data row is row 2,
in a GeoJSON/GeoPackage the first feature is row 1.

Files come from uploads, so each is opened only with the reader its suffix allows, after a
look at its first bytes: CSV/TXT/TSV by Arrow, XLSX/XLSM/XLS by calamine (a workbook's zip is
checked against bombs first), GeoJSON and GeoPackage by GDAL with that one driver named
(``GeoJSON:``/``GPKG:``). GDAL never guesses a driver from the content, so a VRT or any
other format that names server files or URLs is never opened.
"""

from __future__ import annotations

import copy
import csv
import logging
import mmap
import os
import re
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyogrio

from data.schema import (
    KIND_TITLES,
    POLYGON_KINDS,
    Kind,
    closest_header,
    detect_kind,
    filled_from,
    guess_kind,
    match_headers,
    needed_fields,
)

log = logging.getLogger("riskmap")

TABULAR = {".csv", ".txt", ".tsv"}
ZIPPED_EXCEL = {".xlsx", ".xlsm"}
EXCEL = ZIPPED_EXCEL | {".xls"}
GEOJSON = {".geojson", ".json"}
VECTOR = GEOJSON | {".gpkg"}
# No .shp (it reads sidecar files beside the one given) and no .fgb: not documented inputs.
ACCEPTED = ".csv .txt .tsv .xlsx .xlsm .xls .geojson .json .gpkg"
ENCODINGS = ("utf-8-sig", "gb18030")  # GB18030 is a superset of GBK and GB2312
SNIFF_BYTES = 1 << 16                  # how much of a file the first-bytes checks look at
UTF8_BOM = b"\xef\xbb\xbf"
SQLITE_MAGIC = b"SQLite format 3\x00"
GPKG_APPLICATION_IDS = {b"GPKG", b"GP10", b"GP11"}  # offset 68; GP10/GP11: GeoPackage 1.0/1.1
ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")

# Spreadsheet zip bombs. A registry workbook has a dozen parts (sheets, shared strings,
# styles); 10,000 leaves room for many sheets and images, and bounds zipfile's parse of the
# central directory (about 1 KB of memory per member: a 200 MB upload of empty members would
# otherwise take 2.4 GB before any count could be checked).
MAX_ZIP_MEMBERS = 10_000
# Excel's own limit is 1,048,576 rows a sheet. A registry sheet of 20 columns measures about
# 1.1 KB of XML a row (sheet + shared strings, as pandas writes it), so a full sheet is about
# 1.2 GB; 2 GiB leaves headroom, while deflate's ~1000:1 ratio lets a 200 MB upload claim
# 200 GB. Counted by inflating the members, since the sizes a zip declares can lie.
MAX_EXPANDED_BYTES = 2 << 30
ZIP_READ_BYTES = 1 << 20

# GDAL options for the whole process (the service uses GDAL only to read registry files),
# set once here. Each file is opened with one named driver, so these are a second line of
# defence: whatever a file names, GDAL reaches neither the network nor other files.
GDAL_CONFIG = {
    # SQLite/GPKG: no VirtualOGR tables and no SQL functions that open other datasets or
    # go online (ogr_datasource_load_layers, ogr_geocode…) from a file's views or triggers
    "OGR_SQLITE_ALLOW_EXTERNAL_ACCESS": "NO",
    # /vsicurl/ and kin (/vsis3/, /vsigs/, /vsiwebhdfs/, /vsizip//vsicurl/…) open only URLs
    # with a listed extension: list one that no real file has…
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".riskmap-no-network",
    # …but a URL can be given any extension, so also allow just one filename, which is not
    # a URL: every network file is then refused before a request is made
    "CPL_VSIL_CURL_ALLOWED_FILENAME": "riskmap:no-network",
    # never list the directory of an opened file (no sidecar files are looked for)
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    # VRTs are never opened here; should one be, it may neither run Python nor read the raw
    # bytes of other files, whatever the environment says
    "GDAL_VRT_ENABLE_PYTHON": "NO",
    "GDAL_VRT_ENABLE_RAWRASTERBAND": "NO",
}
pyogrio.set_gdal_config_options(GDAL_CONFIG)

# GeoJSON's old "crs" member may name the CRS by URL ({"type": "link", "properties":
# {"href": "http://…"}}), on the collection or on any geometry, and GDAL then fetches it (no
# option turns that off). GDAL matches member names case-insensitively and up to a NUL, its
# JSON parser takes '…' strings too, and a letter may be written as \u0063. So, on the
# lower-cased bytes: a file with escaped ASCII letters is refused (no JSON writer escapes
# them), and then a file with both a string starting "crs" and one starting "url" or "href".
ESCAPED_LETTER = re.compile(rb"\\u00(?:4[1-9a-f]|5[0-9a]|6[1-9a-f]|7[0-9a])")
CRS_TOKENS = (b'"crs', b"'crs")
URL_TOKENS = (b'"url', b"'url", b'"href', b"'href")
SCAN_BYTES = 16 << 20


class FileRejected(Exception):
    """A whole file could not be read; the reason is reported (never silently skipped)."""

    def __init__(self, path: str, code: str, zh: str, en: str) -> None:
        super().__init__(f"{path}: {en}")
        self.path, self.code, self.zh, self.en = path, code, zh, en


def _mismatch(path: Path, zh: str, en: str) -> FileRejected:
    return FileRejected(str(path), "content_mismatch", f"文件内容与扩展名不符（应为 {zh}）",
                        f"file content does not match its extension (expected {en})")


def _no_geometry(path: Path) -> FileRejected:
    return FileRejected(str(path), "no_geometry", "文件没有几何图形：属性表请以 CSV 或 XLSX 提交",
                        "the layer has no geometry: send attribute tables as CSV or XLSX")


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
    headers: dict[str, str] = field(default_factory=dict)  # canonical name -> source header
    # needed fields (``data.schema.needed_fields``) the file has no column for -> the file's
    # unmatched header closest to it, or None
    absent: dict[str, str | None] = field(default_factory=dict)


def _header(path: Path) -> tuple[list[str], str, str]:
    """Column names, delimiter and encoding, from the first line of a text table."""
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if b"\x00" in head:  # no text table holds a NUL: binary, or UTF-16/32 text
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise FileRejected(str(path), "bad_encoding", "文件编码无法识别（应为 UTF-8 或 GBK）",
                               "unrecognised text encoding (expected UTF-8 or GBK)")
        raise _mismatch(path, "文本表格（CSV）", "a text table (CSV)")
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


def _head(path: Path, n: int = SNIFF_BYTES) -> bytes:
    with path.open("rb") as fh:
        return fh.read(n)


def _read_excel(path: Path, max_expanded_bytes: int) -> pd.DataFrame:
    head = _head(path, 8)
    if path.suffix.lower() in ZIPPED_EXCEL:
        if not head.startswith(ZIP_MAGIC):
            raise _mismatch(path, "XLSX", "XLSX")
        _check_zip(path, max_expanded_bytes)
    elif not head.startswith(OLE2_MAGIC):
        raise _mismatch(path, "XLS", "XLS")
    try:
        frame = pd.read_excel(path, engine="calamine", dtype=object, header=0)
    except Exception as exc:  # calamine raises its own error types for broken files
        raise FileRejected(str(path), "bad_table", "Excel 文件无法读取",
                           f"unreadable Excel file: {exc}") from exc
    return frame.dropna(how="all")


def _check_zip(path: Path, max_expanded_bytes: int) -> None:
    """Refuse a workbook whose zip has too many members or inflates past the limit, before
    calamine parses it. Every member is inflated once, in chunks, stopping past the limit."""
    if _count(path, b"PK\x01\x02", MAX_ZIP_MEMBERS + 1) > MAX_ZIP_MEMBERS:
        # each central directory entry starts with this signature: an upper bound on the
        # members zipfile would parse, found without parsing them
        raise FileRejected(str(path), "too_expanded",
                           f"压缩包成员过多（超过 {MAX_ZIP_MEMBERS} 个），疑为压缩炸弹",
                           f"too many members in the workbook's zip (over {MAX_ZIP_MEMBERS}):"
                           " refused as a possible zip bomb")
    try:
        expanded = _expanded_bytes(path, max_expanded_bytes)
    except Exception as exc:  # BadZipFile, zlib.error, EOFError, encrypted or unknown method
        log.warning("unreadable zip in %s: %s", path, exc)
        raise FileRejected(str(path), "bad_table", "Excel 文件无法读取（压缩包已损坏）",
                           "unreadable Excel file (corrupt zip)") from exc
    if expanded > max_expanded_bytes:
        limit = f"{max_expanded_bytes / 2**20:g} MB"
        raise FileRejected(str(path), "too_expanded",
                           f"解压后内容过大（超过 {limit}），疑为压缩炸弹",
                           f"the workbook expands to more than {limit} when unzipped:"
                           " refused as a possible zip bomb")


def _count(path: Path, needle: bytes, stop: int) -> int:
    """Occurrences of ``needle`` in the file, counting no further than ``stop``."""
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        n, at = 0, mm.find(needle)
        while at >= 0 and n < stop:
            n, at = n + 1, mm.find(needle, at + 1)
    return n


def _expanded_bytes(path: Path, limit: int) -> int:
    """Bytes the zip's members inflate to, counted until past ``limit``."""
    total = 0
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            # zipfile stops at the declared size, which can lie (and checks the CRC only
            # there): declare no bound and read what the data holds, stopping past limit
            unbounded = copy.copy(info)
            unbounded.file_size = 1 << 62
            with zf.open(unbounded) as member:
                while chunk := member.read(ZIP_READ_BYTES):
                    total += len(chunk)
                    if total > limit:
                        return total
    return total


def _lowered_blocks(path: Path) -> Iterator[bytes]:
    """The file lower-cased (ASCII letters only, which is all ``bytes.lower`` folds), in
    blocks, each block preceded by the seam where a short token may span two blocks."""
    seam = b""
    with path.open("rb") as fh:
        while block := fh.read(SCAN_BYTES):
            low = block.lower()
            yield seam + low[:8]
            yield low
            seam = low[-8:]


def _check_geojson(path: Path) -> None:
    """A GeoJSON starts with ``{`` (after an optional BOM) and may not name a CRS by URL."""
    if not _head(path).removeprefix(UTF8_BOM).lstrip(b" \t\r\n").startswith(b"{"):
        raise _mismatch(path, "GeoJSON", "GeoJSON")
    crs = False
    for text in _lowered_blocks(path):
        if ESCAPED_LETTER.search(text):
            raise FileRejected(str(path), "bad_format",
                               "GeoJSON 中的英文字母以 \\u 转义，无法安全检查：请以 UTF-8 重新导出",
                               "the GeoJSON writes plain letters as \\u escapes, which cannot"
                               " be checked safely: export it again as UTF-8")
        crs = crs or (b"crs" in text and any(t in text for t in CRS_TOKENS))
    # a second pass only for the (few, small) files with a crs member
    if crs and any(any(t in text for t in URL_TOKENS) for text in _lowered_blocks(path)):
        raise FileRejected(str(path), "crs_url",
                           "GeoJSON 可能以网址引用坐标系（含 crs 与 url/href），不予读取："
                           "请写明坐标系名称（如 EPSG:4490）",
                           "the GeoJSON may refer to its CRS by URL (it has crs and url/href"
                           " members), which is not read: name the CRS (e.g. EPSG:4490)")


def _check_gpkg(path: Path) -> None:
    head = _head(path, 100)
    if not head.startswith(SQLITE_MAGIC) or head[68:72] not in GPKG_APPLICATION_IDS:
        raise _mismatch(path, "GeoPackage", "GeoPackage")


@contextmanager
def _gdal_name(path: Path) -> Iterator[str]:
    """The absolute path, or, if it holds a ':' (``GPKG:file:layer`` splits there), a
    symlink to it with a plain name in a private temporary directory, removed afterwards."""
    target = os.path.abspath(path)
    if ":" not in target:
        yield target
        return
    with tempfile.TemporaryDirectory(prefix="riskmap-read-") as folder:
        link = os.path.join(folder, "input" + path.suffix.lower())
        os.symlink(target, link)
        yield link


def vector_driver(path: Path) -> str:
    """The one GDAL driver a vector file is opened with, by its suffix, after the checks
    that file must pass before GDAL sees it."""
    if path.suffix.lower() in GEOJSON:
        _check_geojson(path)
        return "GeoJSON"
    _check_gpkg(path)
    return "GPKG"


def _read_vector(path: Path) -> tuple[pd.DataFrame, gpd.GeoSeries, str | None]:
    driver = vector_driver(path)
    try:
        with _gdal_name(path) as name:
            gdf = pyogrio.read_dataframe(f"{driver}:{name}")  # this driver and no other
    except Exception as exc:  # GDAL errors come in several types
        # their text names paths and SQL: logged for the operator, never reported
        log.warning("GDAL could not read %s as %s: %s", path, driver, exc)
        raise FileRejected(str(path), "bad_table", "地理数据文件无法读取",
                           f"unreadable {driver} file") from exc
    if not isinstance(gdf, gpd.GeoDataFrame) or (len(gdf) and gdf.geometry.isna().all()):
        raise _no_geometry(path)  # an attribute-only layer, or no feature has a geometry
    crs = gdf.crs
    if crs is not None and crs.is_projected:
        # e.g. CGCS2000 Gauss-Kruger zones from government GIS: bring to lon/lat
        gdf = gdf.to_crs(4490)
        crs = gdf.crs
    file_crs = None if crs is None else crs.to_string()
    geometry = gdf.geometry
    frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    return frame, geometry, file_crs


def checked_file(path: str | Path, max_bytes: int | None) -> Path:
    """``path`` if it is a file of at most ``max_bytes``; else :class:`FileRejected`."""
    path = Path(path)
    if not path.is_file():
        raise FileRejected(str(path), "not_found", "文件不存在", "file not found")
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise FileRejected(str(path), "too_large",
                           f"文件过大（{size / 2**20:.1f} MB，上限 {max_bytes / 2**20:.0f} MB）",
                           f"file too large ({size / 2**20:.1f} MB > {max_bytes / 2**20:.0f} MB)")
    return path


def read_file(path: str | Path, kind: Kind | None = None, *, max_bytes: int | None = None,
              max_expanded_bytes: int = MAX_EXPANDED_BYTES) -> RawTable:
    """Read one file and recognise its kind from its headers (or take ``kind``).
    ``max_expanded_bytes`` bounds what a workbook's zip may unpack to."""
    path = checked_file(path, max_bytes)
    suffix = path.suffix.lower()
    encoding = geometry = file_crs = None
    malformed: list[tuple[int | None, str]] = []
    if suffix in TABULAR:
        source, encoding, malformed = _read_csv(path)
        first_row = 2
    elif suffix in EXCEL:
        source = _read_excel(path, max_expanded_bytes)
        first_row = 2
    elif suffix in VECTOR:
        source, geometry, file_crs = _read_vector(path)
        first_row = 1
    else:
        raise FileRejected(str(path), "bad_format",
                           f"不支持的文件格式：{suffix or '无扩展名'}（支持 {ACCEPTED}）",
                           f"unsupported format {suffix or '(no suffix)'} (accepted: {ACCEPTED})")

    headers = [str(c) for c in source.columns]
    source.columns = headers
    found = kind or detect_kind(headers)
    if found is None:
        raise _unknown_kind(path, headers)
    if found in POLYGON_KINDS and geometry is None:
        raise FileRejected(str(path), "no_geometry", "园区/场所须为带多边形的 GeoJSON 或 GPKG",
                           "parks and venues need polygons (GeoJSON or GeoPackage)")
    rows = _row_numbers(len(source), first_row, [n for n, _ in malformed])
    return source_table(path, found, source, rows, encoding, geometry, file_crs, malformed)


def source_table(path: str | Path, found: Kind, source: pd.DataFrame, rows: np.ndarray,
                 encoding: str | None = None, geometry: gpd.GeoSeries | None = None,
                 file_crs: str | None = None,
                 malformed: list[tuple[int | None, str]] | None = None) -> RawTable:
    """The raw table of ``source`` (a whole file, or a partition of its rows numbered
    ``rows``) read as ``found``: canonical columns, the columns ignored, the needed ones
    absent. ``source``'s columns are the file's headers as text."""
    headers = [str(c) for c in source.columns]
    mapping = match_headers(found, headers)
    frame = source[list(mapping)].rename(columns=mapping).reset_index(drop=True)
    others = filled_from(found, headers)
    for canonical, columns in others.items():
        frame[canonical] = _first_filled(frame[canonical], source[columns].reset_index(drop=True))
    # the file's own header of each canonical field, for the report
    own = {canonical: header for header, canonical in mapping.items()}
    if geometry is not None:
        geometry = geometry.reset_index(drop=True)
        own["geometry"] = "geometry"
        if found not in POLYGON_KINDS and not {"lon", "lat"} <= set(frame.columns):
            pts = geometry.where(geometry.geom_type == "Point")
            frame["lon"] = pts.x.astype("float64")
            frame["lat"] = pts.y.astype("float64")
            own["lon"] = own["lat"] = "geometry"
    used = {*mapping, *(h for hs in others.values() for h in hs)}
    ignored = [h for h in headers if h not in used]
    absent = {f.name: closest_header(f, ignored) for f in needed_fields(found)
              if f.name not in own}
    return RawTable(str(path), found, frame, rows, encoding, geometry, file_crs, ignored,
                    source.reset_index(drop=True), list(malformed or []), own, absent)


def _blank(values: pd.Series) -> np.ndarray:
    return (values.isna() | values.astype("string").str.strip().eq("")).to_numpy(dtype=bool)


def _first_filled(first: pd.Series, others: pd.DataFrame) -> pd.Series:
    """``first``, with each empty value taken from the first of ``others`` (in order) that
    has one."""
    out = first.astype(object).to_numpy(copy=True)
    empty = np.flatnonzero(_blank(first))
    for n in range(others.shape[1]):
        if not len(empty):
            break
        taken = others.iloc[empty, n]
        filled = ~_blank(taken)
        out[empty[filled]] = taken.to_numpy(dtype=object)[filled]
        empty = empty[~filled]
    return pd.Series(out, index=first.index, dtype=object)


def _unknown_kind(path: Path, headers: list[str]) -> FileRejected:
    """The refusal of a file whose kind its headers do not tell: for the likeliest kinds,
    the required columns missing and the file's headers closest to them."""
    guesses = guess_kind(headers)
    shown = "、".join(h for h in headers[:12] if h.strip()) + ("…" if len(headers) > 12 else "")
    if not guesses:
        return FileRejected(str(path), "unknown_kind",
                            "无法从表头识别文件类型：没有一列是已知的表头"
                            f"（表头：{shown or '无'}）",
                            "cannot recognise the kind of file: none of its headers is known"
                            f" (headers: {shown or 'none'}); use the template's headers or"
                            " --kind")
    zh, en = [], []
    for g in guesses:
        zh_parts, en_parts = [], []
        for f in g.missing:
            near = g.closest.get(f.name)
            zh_parts.append(f.zh + (f"（最接近的表头：{near}）" if near else ""))
            en_parts.append(f"{f.zh} {f.name}" + (f" (closest header: {near})" if near else ""))
        zh.append(f"按{KIND_TITLES[g.kind]}缺少必填列 " + "、".join(zh_parts))
        en.append(f"as {g.kind} it lacks the required columns " + ", ".join(en_parts))
    return FileRejected(str(path), "unknown_kind",
                        "无法从表头识别文件类型：" + "；或".join(zh),
                        "cannot recognise the kind of file from its headers: " + "; or ".join(en)
                        + ". Fix the headers or use --kind")


def _row_numbers(n: int, first_row: int, skipped: list[int | None]) -> np.ndarray:
    """Row numbers of the rows read, leaving out the numbers of rows skipped as malformed
    (Arrow numbers them as lines of the file, the header being line 1)."""
    gaps = sorted(k for k in skipped if k is not None)
    numbers = np.arange(first_row, first_row + n + len(gaps), dtype=np.int64)
    return numbers[~np.isin(numbers, gaps)][:n] if gaps else numbers[:n]
