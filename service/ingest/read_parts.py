"""Read a file by partitions of rows, each on its own (on a Dask worker), so that no process
ever holds a whole file: the Dask engine's reading (``service.ingest.distributed``).

The driver only *plans* a file (:func:`plan_file`): the same checks as
:func:`service.ingest.read.read_file` before any row is parsed (exists, size, suffix, first
bytes, header line, GeoJSON's CRS and escapes, layer info), the kind from the headers, and
where each partition starts and stops:

- CSV/TXT/TSV: byte ranges cut at line ends outside quoted values, every
  ``partition_rows`` lines (found by scanning the file for ``\\n`` and ``"`` in blocks:
  :func:`line_ranges`). Arrow reads each range with the file's options; its record numbers
  (blank lines skipped, the header being record 1) are moved by the records of the ranges
  before it, so malformed lines and row numbers come out as ``read_file`` numbers them
  (:func:`csv_numbers`). ``read_file`` takes UTF-8 only when the whole file is valid
  UTF-8, else GB18030: each range tries UTF-8 then GB18030, and when any range needed
  GB18030 the ranges read as UTF-8 are read again as GB18030 (the driver decides).
- GeoJSON/GeoPackage: feature ranges (``skip_features``/``max_features``), the CRS brought
  to lon/lat per range as ``read_file`` does for the whole layer.
- XLSX/XLS: read whole in the driver (calamine has no streaming reader, and a sheet holds
  at most 1,048,576 rows): the partitions are slices of it, scattered to the workers.

A whole-file refusal that ``read_file`` makes after parsing every row (encoding, a layer
with no geometry at all) is made by the driver from what the partitions report; a refusal
by the headers (unknown kind, polygons without geometry) waits until the rows were read,
since ``read_file`` refuses a badly encoded file for its encoding first.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyogrio

from data.schema import POLYGON_KINDS, Kind, detect_kind
from service.ingest.read import (
    ACCEPTED,
    EXCEL,
    TABULAR,
    VECTOR,
    FileRejected,
    RawTable,
    _gdal_name,
    _header,
    _no_geometry,
    _row_numbers,
    _unknown_kind,
    checked_file,
    log,
    read_file,
    source_table,
    vector_driver,
)

SCAN_BLOCK = 16 << 20  # bytes read at a time while looking for line ends


@dataclass
class FilePlan:
    """One file as the driver knows it before its rows are read."""

    path: str
    form: str                                # "csv", "vector" or "excel"
    kind: Kind | None                        # None: ``deferred`` says why
    headers: list[str]
    parts: list[tuple[int, int]]             # byte (CSV) or feature (vector) ranges
    first_row: int = 2
    names: list[str] = field(default_factory=list)  # CSV: the header line's names as read
    sep: str = ","
    encodings: tuple[str, ...] = ("utf8", "gb18030")
    driver: str = ""                         # vector: GDAL driver
    deferred: FileRejected | None = None     # refused by its headers, once its rows read
    whole: RawTable | None = None            # XLSX: read in the driver
    encoding: str | None = None              # CSV: decided once every range was read

    @property
    def template(self) -> RawTable:
        """A table of no rows with the file's columns: what the report needs of a file
        (headers, columns ignored, needed columns absent)."""
        assert self.kind is not None
        if self.whole is not None:
            return _slice_raw(self.whole, 0, 0)
        geometry = gpd.GeoSeries([], crs=4326) if self.form == "vector" else None
        source = pd.DataFrame({h: pd.Series([], dtype=object) for h in self.headers})
        return source_table(self.path, self.kind, source, np.zeros(0, dtype=np.int64),
                            None, geometry)


@dataclass
class PartRead:
    """One partition's rows as read (kept on its worker) and what the driver needs of it."""

    source: pd.DataFrame | None
    encoding: str | None = None
    malformed: list[tuple[int | None, str]] = field(default_factory=list)  # local numbers
    error: str | None = None                 # neither encoding could read it
    geometry: gpd.GeoSeries | None = None
    file_crs: str | None = None
    geometries: int = 0                      # features with a geometry
    count: int = 0                           # rows read (of a summary, without them)

    def summary(self) -> PartRead:
        """Without the rows: what is sent back to the driver."""
        return PartRead(None, self.encoding, self.malformed, self.error, None, self.file_crs,
                        self.geometries, self.rows)

    @property
    def rows(self) -> int:
        return self.count if self.source is None else len(self.source)


def plan_file(path: str | Path, kind: Kind | None, partition_rows: int, *,
              max_bytes: int | None = None) -> FilePlan:
    """The checks ``read_file`` makes before parsing rows, and the partitions; raises
    :class:`FileRejected` as ``read_file`` would."""
    path = checked_file(path, max_bytes)
    suffix = path.suffix.lower()
    if suffix in TABULAR:
        return _plan_csv(path, kind, partition_rows)
    if suffix in EXCEL:
        whole = read_file(path, kind)
        n = len(whole.frame)
        size_rows = max(n, 1) if whole.kind == Kind.OFFICERS else partition_rows
        parts = [(a, min(a + size_rows, n)) for a in range(0, n, size_rows)] or [(0, 0)]
        return FilePlan(str(path), "excel", whole.kind, list(whole.raw.columns), parts,
                        whole=whole)
    if suffix in VECTOR:
        return _plan_vector(path, kind, partition_rows)
    raise FileRejected(str(path), "bad_format",
                       f"不支持的文件格式：{suffix or '无扩展名'}（支持 {ACCEPTED}）",
                       f"unsupported format {suffix or '(no suffix)'} (accepted: {ACCEPTED})")


def _kind_of(path: Path, kind: Kind | None, headers: list[str], geometry: bool
             ) -> tuple[Kind | None, FileRejected | None]:
    found = kind or detect_kind(headers)
    if found is None:
        return None, _unknown_kind(path, headers)
    if found in POLYGON_KINDS and not geometry:
        return None, FileRejected(str(path), "no_geometry",
                                  "园区/场所须为带多边形的 GeoJSON 或 GPKG",
                                  "parks and venues need polygons (GeoJSON or GeoPackage)")
    return found, None


def _plan_csv(path: Path, kind: Kind | None, partition_rows: int) -> FilePlan:
    names, sep, first_enc = _header(path)
    if not names or not any(n.strip() for n in names):
        raise FileRejected(str(path), "bad_table", "表格没有表头", "table has no header row")
    headers = [str(n).lstrip("\ufeff") for n in names]
    found, deferred = _kind_of(path, kind, headers, geometry=False)
    # an officers file stays whole: the cap on an officer's cells counts every row
    lines = None if found == Kind.OFFICERS else partition_rows
    return FilePlan(str(path), "csv", found, headers, line_ranges(path, lines), 2, names, sep,
                    ("utf8", "gb18030") if first_enc == "utf-8-sig" else ("gb18030",),
                    deferred=deferred)


def line_ranges(path: Path, lines: int | None) -> list[tuple[int, int]]:
    """Byte ranges of ``path``, each ending after a line end: the first holds the header
    line and ``lines`` lines after it, every other ``lines`` lines (one range: ``None``).

    A line end inside a quoted value (an odd number of ``"`` before it in the file) is
    never a cut: Arrow's parser reads such a value across lines, so the range after it
    would start mid-value. The count is exact for quoting as CSV writers do it; a file
    that has both a stray ``"`` inside an unquoted value and values across lines can be
    cut inside a value (the rows around that cut are then reported malformed)."""
    size = path.stat().st_size
    if lines is None:
        return [(0, size)]
    cuts, seen, need, offset = [0], 0, lines + 1, 0  # the first range has the header too
    odd = 0  # quotes so far, mod 2
    with path.open("rb") as fh:
        while block := fh.read(SCAN_BLOCK):
            data = np.frombuffer(block, dtype=np.uint8)
            ends = np.flatnonzero(data == 10)
            if odd or b'"' in block:  # keep the line ends outside quoted values
                quotes = np.cumsum(data == 34, dtype=np.uint8)  # wraps: parity is kept
                ends = ends[(quotes[ends] + odd) % 2 == 0]
                odd = int(quotes[-1] + odd) % 2
            # the line ends, counting from the file's first, that close a range
            at = np.arange(need - seen - 1, len(ends), lines)
            if len(at):
                cuts += (offset + ends[at] + 1).tolist()
                need = lines
                seen = len(ends) - 1 - at[-1]
            else:
                seen += len(ends)
            offset += len(block)
    if cuts[-1] < size:
        cuts.append(size)
    return list(itertools.pairwise(cuts)) or [(0, size)]


def read_csv_part(path: str, start: int, stop: int, names: list[str], sep: str,
                  encodings: tuple[str, ...]) -> PartRead:
    """Bytes ``start:stop`` of a CSV as ``read_file`` reads the whole (every column as
    text), in the first of ``encodings`` that reads them. Line numbers are the range's own
    (the header, in the first range, is line 1)."""
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read(stop - start)
    skip = 1 if start == 0 else 0
    body = data.split(b"\n", 1)[1] if skip and b"\n" in data else (b"" if skip else data)
    headers = [str(n).lstrip("\ufeff") for n in names]
    if not body.strip(b"\r\n"):  # no line but blank ones (Arrow refuses an empty input)
        empty = pa.table({f"c{i}": pa.array([], pa.string())
                          for i in range(len(names))}).to_pandas()
        empty.columns = headers
        return PartRead(empty, encodings[0])
    malformed: list[tuple[int | None, str]] = []

    def _bad_row(row: pacsv.InvalidRow) -> str:
        malformed.append((row.number, row.text[:500]))
        return "skip"

    error = None
    for enc in encodings:
        malformed.clear()
        try:
            table = pacsv.read_csv(
                io.BytesIO(data),
                read_options=pacsv.ReadOptions(encoding=enc, column_names=names,
                                               skip_rows=skip, use_threads=False),
                parse_options=pacsv.ParseOptions(delimiter=sep, invalid_row_handler=_bad_row),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names}, strings_can_be_null=False,
                    quoted_strings_can_be_null=False))
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            error = str(exc)
            continue
        frame = table.to_pandas()
        frame.columns = headers
        return PartRead(frame, enc, list(malformed))
    return PartRead(None, None, [], error)


def encoding_refusal(path: str, message: str) -> FileRejected:
    """``read_file``'s refusal of a text table none of its encodings reads."""
    message_l = message.lower()
    if "utf" in message_l or "decode" in message_l or (
            "invalid" in message_l and "byte" in message_l):
        return FileRejected(path, "bad_encoding", "文件编码无法识别（应为 UTF-8 或 GBK）",
                            "unrecognised text encoding (expected UTF-8 or GBK)")
    return FileRejected(path, "bad_table", "表格结构无法解析", f"malformed table: {message}")


def csv_numbers(parts: list[PartRead], first_row: int = 2
                ) -> tuple[list[np.ndarray], list[tuple[int | None, str]]]:
    """Row numbers of each partition's rows and the file's malformed lines, numbered as
    ``read_file`` numbers them for the whole file."""
    malformed: list[tuple[int | None, str]] = []
    lines = 0  # records before the partition, the header included (Arrow's numbering)
    for n, part in enumerate(parts):
        shift = 0 if n == 0 else lines
        malformed += [(None if k is None or k < 0 else k + shift, text)
                      for k, text in part.malformed]
        lines += part.rows + len(part.malformed) + (1 if n == 0 else 0)  # + the header
    total = sum(p.rows for p in parts)
    every = _row_numbers(total, first_row, [k for k, _ in malformed])
    bounds = np.cumsum([0, *(p.rows for p in parts)])
    return [every[a:b] for a, b in itertools.pairwise(bounds)], malformed


def _plan_vector(path: Path, kind: Kind | None, partition_rows: int) -> FilePlan:
    driver = vector_driver(path)
    try:
        with _gdal_name(path) as name:
            info = pyogrio.read_info(f"{driver}:{name}", force_feature_count=True)
    except Exception as exc:  # GDAL errors come in several types
        log.warning("GDAL could not read %s as %s: %s", path, driver, exc)
        raise FileRejected(str(path), "bad_table", "地理数据文件无法读取",
                           f"unreadable {driver} file") from exc
    if info.get("geometry_type") is None:
        raise _no_geometry(path)  # an attribute-only layer
    headers = [str(f) for f in info["fields"]]
    found, deferred = _kind_of(path, kind, headers, geometry=True)
    n = max(int(info.get("features") or 0), 0)
    size = max(n, 1) if found == Kind.OFFICERS else partition_rows
    parts = [(a, min(a + size, n)) for a in range(0, n, size)] or [(0, 0)]
    return FilePlan(str(path), "vector", found, headers, parts, 1, driver=driver,
                    deferred=deferred)


def read_vector_part(path: str, driver: str, start: int, stop: int) -> PartRead:
    """Features ``start:stop`` of a GeoJSON/GeoPackage layer, as ``read_file`` reads the
    layer (projected coordinates brought to lon/lat)."""
    window = {} if stop <= start else {"skip_features": start, "max_features": stop - start}
    try:
        with _gdal_name(Path(path)) as name:
            gdf = pyogrio.read_dataframe(f"{driver}:{name}", **window)
    except Exception as exc:  # as read_file: logged, never reported
        log.warning("GDAL could not read %s as %s: %s", path, driver, exc)
        return PartRead(None, error=f"unreadable {driver} file")
    if not isinstance(gdf, gpd.GeoDataFrame):
        return PartRead(None, error="no_geometry")
    crs = gdf.crs
    if crs is not None and crs.is_projected:
        gdf = gdf.to_crs(4490)
        crs = gdf.crs
    frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    frame.columns = [str(c) for c in frame.columns]
    return PartRead(frame, geometry=gdf.geometry.reset_index(drop=True),
                    file_crs=None if crs is None else crs.to_string(),
                    geometries=int(gdf.geometry.notna().sum()))


def vector_refusal(plan: FilePlan, parts: list[PartRead]) -> FileRejected | None:
    """``read_file``'s refusal of a layer after reading it: unreadable, or no feature with
    a geometry."""
    path = Path(plan.path)
    for part in parts:
        if part.error == "no_geometry":
            return _no_geometry(path)
        if part.error:
            return FileRejected(plan.path, "bad_table", "地理数据文件无法读取", part.error)
    if sum(p.rows for p in parts) and not sum(p.geometries for p in parts):
        return _no_geometry(path)
    return None


def _slice_raw(raw: RawTable, start: int, stop: int) -> RawTable:
    """Rows ``start:stop`` of a table read whole, with their row numbers and source."""
    from dataclasses import replace

    geometry = raw.geometry
    if geometry is not None:
        geometry = geometry.iloc[start:stop].reset_index(drop=True)
    source = None if raw.raw is None else raw.raw.iloc[start:stop].reset_index(drop=True)
    return replace(raw, frame=raw.frame.iloc[start:stop].reset_index(drop=True),
                   rows=raw.rows[start:stop], geometry=geometry, raw=source, malformed=[])


def part_table(plan: FilePlan, read: PartRead | RawTable, rows: np.ndarray) -> RawTable:
    """One partition as a raw table (on its worker): its canonical columns, numbered
    ``rows``."""
    if isinstance(read, RawTable):  # a slice of a workbook read in the driver
        return read
    assert plan.kind is not None and read.source is not None
    return source_table(plan.path, plan.kind, read.source, rows, plan.encoding, read.geometry,
                        read.file_crs)
