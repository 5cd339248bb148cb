"""``riskmap ingest --engine dask``: one ingest batch with its rows read, prepared and (on
PostGIS) COPYed by the workers of a Dask cluster (dask.distributed), partition by partition,
so that no process holds a whole file.

1. The driver *plans* each file (``service.ingest.read_parts``): ``read_file``'s checks
   before any row is parsed, the kind from the headers, the partitions' byte or feature
   ranges. Each worker scans its own partitions; the driver gathers only their sizes,
   malformed lines and encodings, numbers the rows as ``read_file`` numbers the whole file
   and refuses a file as it would (encoding, no geometry, kind).
2. Each worker reads its partition again (nothing read is held while the driver waits for
   the last scan) and runs the per-file stages on it
   (:func:`service.ingest.pipeline.prepare_file`: validate, place on the map, check dates);
   the prepared partitions stay on the workers (futures). Of the big kinds (equipment,
   units: :data:`STREAMED`) the driver gathers only what the batch-wide checks read (key,
   county, H3 cell, rejected so far); the small kinds (polygons, hazards, checks,
   officers: the hazard loop and the audit need their whole rows, and an officers file is
   one partition) come whole.
3. The batch-wide stages run in the driver as in process (de-duplication, references,
   scope, hazard loop, audit), on those columns. Then each worker turns its partitions'
   surviving rows into the table's rows (fingerprint) and, on PostGIS, COPYs them into a
   staging table of its own (``service.store.postgis.staging``); the driver merges the
   staging tables in one transaction with the rest of the batch (upsert, audit, rejects,
   relink, batch record). A failure anywhere drops the staging tables and leaves the
   store as it was. The embedded store (GeoParquet snapshots, one writer) gets the rows
   gathered from the workers and written by the driver.
4. The source rows of rejected rows (the report's and the rejects table's raw JSON) are
   read again from their partitions: only those rows come to the driver.

The same rows are rejected with the same file, row and field, and the report is the one
the in-process engine writes (tests/test_ingest_dask.py). ``riskmap build`` has its own
runner (service/build_dask.py).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from data.schema import KEYS, Kind
from geo.geocode import CountyGeocoder
from service.ingest.officers import OfficerCells
from service.ingest.pipeline import (
    ATTEMPTS,
    ORDER,
    IngestOptions,
    assembled_batch,
    batch_audit,
    check_against_store,
    finish_report,
    locate_options,
    prepare_file,
    table_frame,
)
from service.ingest.prepared import Batches, Prepared
from service.ingest.read import FileRejected, RawTable
from service.ingest.read_parts import (
    FilePlan,
    PartRead,
    _slice_raw,
    csv_numbers,
    encoding_refusal,
    part_table,
    plan_file,
    read_csv_part,
    read_vector_part,
    vector_refusal,
)
from service.ingest.rejects import RejectLog
from service.ingest.report import build_report
from service.ingest.timing import StageTimer
from service.store.base import Batch, Store, UpsertCounts
from service.store.errors import ConflictError

if TYPE_CHECKING:
    from distributed import Client

PARTITION_ROWS = 200_000  # rows of one file per task
LOCAL_WORKERS = 2         # the LocalCluster started when no scheduler is given
CONNECT_SECONDS = 30      # to reach an existing scheduler
# Kinds whose prepared rows stay on the workers: the driver holds only the columns the
# batch-wide checks read of them (the key, and where each row is for the scope checks and
# the audit of hazards and checks).
STREAMED = frozenset({Kind.EQUIPMENT, Kind.UNITS})
SLIM = ("county_adcode", "h3")


class DaskUnavailable(RuntimeError):
    """The scheduler named could not be reached."""

    def __init__(self, scheduler: str, cause: BaseException) -> None:
        super().__init__(f"无法连接 Dask 调度器 cannot reach the Dask scheduler {scheduler}: "
                         f"{cause}")


@contextmanager
def dask_client(scheduler: str | None = None, *, processes: bool = True
                ) -> Iterator[Client]:
    """A client of the cluster at ``scheduler`` (e.g. ``tcp://host:8786``), else of a
    LocalCluster of ``LOCAL_WORKERS`` single-threaded workers, closed on exit."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_SECONDS)
        except (OSError, TimeoutError) as exc:
            raise DaskUnavailable(scheduler, exc) from exc
        with client:
            yield client
        return
    with LocalCluster(n_workers=LOCAL_WORKERS, threads_per_worker=1, processes=processes,
                      dashboard_address=":0",  # any free port: 8787 may be taken
                      ) as cluster, Client(cluster) as client:
        yield client


def ingest_on_dask(paths: Sequence[str | Path], store: Store, options: IngestOptions, *,
                   client: Client | None = None, scheduler: str | None = None,
                   partition_rows: int = PARTITION_ROWS) -> dict:
    """:func:`service.ingest.pipeline.ingest` with reading, the per-file stages and (on
    PostGIS) the COPY on Dask: on ``client`` if given, else on the cluster at
    ``scheduler``, else on a LocalCluster."""
    if partition_rows < 1:
        raise ValueError("partition_rows must be at least 1")
    if client is not None:
        return _DaskBatch(client, store, options, partition_rows).run(paths)
    with dask_client(scheduler) as own:
        return _DaskBatch(own, store, options, partition_rows).run(paths)


def partitions(raw: RawTable, partition_rows: int) -> list[tuple[int, int]]:
    """(start, stop) of each partition of a table read whole (one, empty, for no rows)."""
    n = len(raw.frame)
    size = max(n, 1) if raw.kind == Kind.OFFICERS else partition_rows
    return [(start, min(start + size, n)) for start in range(0, n, size)] or [(0, 0)]


# on the workers -------------------------------------------------------------------------

@dataclass
class PartResult:
    """One prepared partition: its rows (``item.raw`` without the file's columns), its
    rejects and flags (indexed within the partition) and the seconds per stage."""

    item: Prepared
    rejects: list[pd.DataFrame]
    flags: list[pd.DataFrame]
    seconds: dict[str, float]


def read_part(plan: FilePlan, start: int, stop: int,
              encodings: tuple[str, ...] | None = None) -> PartRead:
    if plan.form == "csv":
        return read_csv_part(plan.path, start, stop, plan.names, plan.sep,
                             encodings or plan.encodings)
    return read_vector_part(plan.path, plan.driver, start, stop)


def scan_part(plan: FilePlan, start: int, stop: int,
              encodings: tuple[str, ...] | None = None) -> PartRead:
    """What the driver needs of a partition before its rows are numbered (sizes, malformed
    lines, encoding): the rows are read again by :func:`prepare_part`, so that no worker
    holds every partition as read while the driver waits for the last."""
    return read_part(plan, start, stop, encodings).summary()


def summary(read: RawTable) -> PartRead:
    """A workbook's slice (read in the driver) as a partition read."""
    return PartRead(None, count=len(read.frame))


def _read_encoding(plan: FilePlan) -> tuple[str, ...] | None:
    """The encoding the driver decided for a text table, as Arrow names it."""
    if plan.encoding is None:
        return None
    return ("utf8",) if plan.encoding == "utf-8" else ("gb18030",)


@lru_cache(maxsize=4)
def _geocoder(provinces: tuple[str, ...]) -> CountyGeocoder:
    """One county geocoder per worker process and provinces (loading it takes a while)."""
    return CountyGeocoder(list(provinces))


def prepare_part(plan: FilePlan, read: RawTable | None, span: tuple[int, int],
                 rows: np.ndarray, options: IngestOptions) -> PartResult:
    """The per-file stages of one partition (``span`` of the file, or the workbook slice
    ``read``), on its worker."""
    if read is None:
        read = read_part(plan, *span, _read_encoding(plan))
        if read.source is None:  # the file changed since it was scanned
            raise FileRejected(plan.path, "bad_table", "文件在导入过程中被修改",
                               f"the file changed while it was read: {read.error}")
    raw = part_table(plan, read, rows)
    log, timer = RejectLog(), StageTimer()
    geocoder = None if options.geocoder else _geocoder(tuple(options.provinces))
    locate = locate_options(options, timer, geocoder)
    item = prepare_file(raw, options, log, timer, locate, options.today or date.today())
    # what the later stages read of the file: its path, kind and row numbers
    item.raw = replace(raw, frame=raw.frame.iloc[:0], geometry=None, raw=None)
    return PartResult(item, *log.entries(), dict(timer.seconds))


def slim_part(part: PartResult) -> PartResult:
    """A partition of a :data:`STREAMED` kind as the driver holds it."""
    item = part.item
    columns = [KEYS[item.kind], *(c for c in SLIM if c in item.parsed.columns)]
    return replace(part, item=replace(item, parsed=item.parsed[columns]))


def finish_part(part: PartResult, rejected: np.ndarray, batch_id: str, started: datetime,
                shown: Callable[[str], str], stage: tuple[str, int] | None
                ) -> pd.DataFrame | int:
    """A partition's surviving rows as the table stores them; with ``stage`` (the store's
    URL, the partition's number) COPYed into its staging table (returns the rows)."""
    item = replace(part.item, rejected=rejected)
    frame = table_frame(item.kind, [item], batch_id, started, shown)
    if stage is None:
        return frame
    from service.store.postgis.staging import copy_partition

    url, n = stage
    return copy_partition(url, batch_id, str(item.kind), n, frame)


def source_rows(plan: FilePlan, read: RawTable | None, start: int, stop: int,
                index: np.ndarray) -> pd.DataFrame:
    """The file's own columns of rows ``index`` (within the partition), read again."""
    if isinstance(read, RawTable):
        assert read.raw is not None
        return read.raw.iloc[index]
    again = read_part(plan, start, stop, _read_encoding(plan))
    assert again.source is not None
    return again.source.iloc[index]


# in the driver ----------------------------------------------------------------------------

@dataclass
class _File:
    """One file read: its plan, its partitions on the workers."""

    plan: FilePlan
    template: RawTable
    reads: list[Any]                       # futures (or, for a workbook, scattered slices)
    summaries: list[PartRead] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)
    parts: list[Any] = field(default_factory=list)  # futures of PartResult
    starts: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))

    @property
    def kind(self) -> Kind:
        assert self.plan.kind is not None
        return self.plan.kind


class _DaskBatch:
    def __init__(self, client: Client, store: Store, options: IngestOptions,
                 partition_rows: int) -> None:
        self.client, self.store, self.options = client, store, options
        self.partition_rows = partition_rows
        # what a worker needs of the options (no progress callback, no write scope)
        self.remote = replace(options, progress=None, scope=None,
                              today=options.today or date.today())
        self.timer, self.log = StageTimer(), RejectLog()
        self.step = options.progress or (lambda _msg: None)
        self.files: list[dict] = []
        self.read: list[_File] = []
        self.started = datetime.now(UTC).replace(tzinfo=None)
        self.batch_id = f"{self.started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"

    @contextmanager
    def _dask(self) -> Iterator[None]:
        started = perf_counter()
        try:
            yield
        finally:
            self.timer.seconds["dask"] += perf_counter() - started

    def run(self, paths: Sequence[str | Path]) -> dict:
        options, log, timer = self.options, self.log, self.timer
        paths = list(dict.fromkeys(str(p) for p in paths))  # the same file twice: once
        self._read_all(paths)
        prepared = self._prepare()
        written = True
        counts: dict[str, UpsertCounts] = {}
        sources: tuple[pd.DataFrame, list[RawTable]] | None = None
        try:
            for attempt in range(1, ATTEMPTS + 1):
                mark = log.mark()
                originals = {id(i): i.parsed.copy() for i in prepared[Kind.HAZARDS]}
                self.step("查重与关联校验")
                batch, per_kind, sources = self._checked_batch(prepared, paths)
                if options.strict and log.has_rejects():
                    written = False  # all or nothing: the store is not touched
                    break
                self.step("写入数据库")
                try:
                    with timer("write"):
                        batch = self._finish(batch, prepared)
                        counts = self.store.write_batch(batch)
                    break
                except ConflictError:
                    if attempt == ATTEMPTS:
                        raise
                    self._drop_stages()
                    log.rollback(mark)  # the store changed meanwhile: check again
                    for item in prepared[Kind.HAZARDS]:
                        item.parsed = originals[id(item)]
        finally:
            self._drop_stages()
        rejects, raws = sources if sources is not None else (log.rejects(), [])
        report = build_report(self.batch_id, self.files, per_kind, log.rejects(), log.flags(),
                              counts, headers=self._headers(), written=written,
                              strict=options.strict)
        return finish_report(report, rejects, raws, paths, timer, options.shown_names)

    def _headers(self) -> dict[str, dict[str, str]]:
        return {f.template.path: f.template.headers for f in self.read}

    # reading --------------------------------------------------------------------------

    def _read_all(self, paths: list[str]) -> None:
        """Plan every file, read its partitions on the workers, refuse a file as
        ``read_file`` would."""
        client, options = self.client, self.options
        entries: list[tuple[str, _File | None]] = []
        for path in paths:
            self.step(f"读取 {options.shown_name(path)}")
            try:
                with self.timer("read"):
                    plan = plan_file(path, options.kind, self.partition_rows,
                                     max_bytes=options.max_bytes)
            except FileRejected as exc:
                entries.append((path, None))
                self._refuse(exc)
                continue
            if plan.whole is not None:  # a workbook: read here, its slices to the workers
                whole, plan.whole = plan.whole, None
                template = _slice_raw(whole, 0, 0)
                reads = client.scatter([_slice_raw(whole, a, b) for a, b in plan.parts],
                                       hash=False)
                del whole
            else:
                template = plan.template if plan.kind is not None else None
                reads = [client.submit(scan_part, plan, a, b, pure=False)
                         for a, b in plan.parts]
            entries.append((path, _File(plan, template, reads)))  # type: ignore[arg-type]
        with self._dask():
            sums = self.client.gather([
                ([client.submit(summary, r, pure=False) for r in f.reads]
                 if f.plan.form == "excel" else f.reads) if f else [] for _, f in entries])
        refused = iter(self.files)
        self.files = []  # in the order of the paths, as read_file's engine lists them
        for (_path, f), got in zip(entries, sums, strict=True):
            if f is None:
                self.files.append(next(refused))
                continue
            f.summaries = got
            try:
                self._numbered(f)
            except FileRejected as exc:
                self.log.add_file(exc.path, exc.code, exc.zh, exc.en)
                self.files.append({"path": exc.path, "kind": None, "rows": 0,
                                   "error": exc.en})
                f.reads = []
                continue
            raw = f.template
            self.log.add_malformed(raw.path, raw.kind, raw.malformed)
            self.files.append({"path": raw.path, "kind": str(raw.kind),
                               "rows": int(sum(len(r) for r in f.rows)),
                               "encoding": raw.encoding,
                               "ignored_columns": raw.ignored_columns})
            self.read.append(f)

    def _refuse(self, exc: FileRejected) -> None:
        self.log.add_file(exc.path, exc.code, exc.zh, exc.en)
        self.files.append({"path": exc.path, "kind": None, "rows": 0, "error": exc.en})

    def _numbered(self, f: _File) -> None:
        """The encoding, row numbers and malformed lines of a file read by partitions, or
        its refusal."""
        plan = f.plan
        if plan.form == "csv":
            if any(s.encoding != "utf8" for s in f.summaries) and "utf8" in plan.encodings:
                # read_file takes UTF-8 only for a file valid throughout: GB18030 it is
                again = [n for n, s in enumerate(f.summaries) if s.encoding == "utf8"]
                if not any(s.error for s in f.summaries):
                    futures = {n: self.client.submit(scan_part, plan, *plan.parts[n],
                                                     ("gb18030",), pure=False) for n in again}
                    with self._dask():
                        got = self.client.gather(list(futures.values()))
                    for n, s in zip(futures, got, strict=True):
                        f.summaries[n] = s
            failed = next((s.error for s in f.summaries if s.error), None)
            if failed is not None:
                raise encoding_refusal(plan.path, failed)
            plan.encoding = ("utf-8" if all(s.encoding == "utf8" for s in f.summaries)
                             else "gbk")
            f.rows, malformed = csv_numbers(f.summaries)
        elif plan.form == "vector":
            refusal = vector_refusal(plan, f.summaries)
            if refusal is not None:
                raise refusal
            total = sum(s.rows for s in f.summaries)
            every = np.arange(1, total + 1, dtype=np.int64)
            bounds = np.cumsum([0, *(s.rows for s in f.summaries)])
            f.rows = [every[a:b] for a, b in itertools.pairwise(bounds)]
            malformed = []
        else:  # the workbook's slices carry their row numbers: positions, to count them
            f.rows = [np.arange(a, b) for a, b in plan.parts]
            malformed = []
        if plan.deferred is not None:
            raise plan.deferred
        f.template = replace(f.template, encoding=plan.encoding, malformed=malformed,
                             file_crs=next((s.file_crs for s in f.summaries if s.file_crs),
                                           None))
        f.starts = np.cumsum([0, *(len(r) for r in f.rows)])

    # the per-file stages ------------------------------------------------------------------

    def _prepare(self) -> Batches:
        client = self.client
        for f in sorted(self.read, key=lambda f: ORDER.index(f.kind)):
            self.step(f"校验 {self.options.shown_name(f.plan.path)}")
            plan = f.plan
            reads = f.reads if plan.form == "excel" else [None] * len(plan.parts)
            f.parts = [client.submit(prepare_part, plan, read, span, rows, self.remote,
                                     pure=False)
                       for read, span, rows in zip(reads, plan.parts, f.rows, strict=True)]
            if plan.form != "excel":
                f.reads = []  # the summaries: the rows are read by prepare_part
        prepared: Batches = {k: [] for k in Kind}
        ordered = sorted(self.read, key=lambda f: ORDER.index(f.kind))
        with self._dask():
            got = client.gather([[client.submit(slim_part, p, pure=False) if f.kind in STREAMED
                                  else p for p in f.parts] for f in ordered])
        for f, parts in zip(ordered, got, strict=True):
            if f.kind not in STREAMED:
                f.parts = []  # the whole rows are here now
            prepared[f.kind].append(self._join(f, parts))
        return prepared

    def _join(self, f: _File, parts: list[PartResult]) -> Prepared:
        """One prepared file from its partitions in order; their rejects and flags go to
        the log, indexed within the whole file."""
        log, timer, raw = self.log, self.timer, f.template
        log.lacks(raw.path, raw.absent)
        for start, part in zip(f.starts, parts, strict=False):
            log.take(part.rejects, part.flags, int(start))
            for stage, s in part.seconds.items():
                timer.seconds[stage] += s
        items = [p.item for p in parts]
        rows = np.concatenate([i.raw.rows for i in items])
        whole = replace(raw, rows=rows)
        cells = [i.officer_cells for i in items if i.officer_cells is not None]
        return Prepared(
            whole, pd.concat([i.parsed for i in items], ignore_index=True),
            officer_cells=OfficerCells(*(pd.concat(c, ignore_index=True) for c in
                                         zip(*((o.cells, o.counties) for o in cells),
                                             strict=True))) if cells else None,
            rejected=np.concatenate([i.rejected for i in items]))

    # the batch ------------------------------------------------------------------------------

    def _checked_batch(self, prepared: Batches, paths: list[str]
                       ) -> tuple[Batch, dict[str, dict[str, int]],
                                  tuple[pd.DataFrame, list[RawTable]]]:
        """``pipeline._checked_batch``, the rows of :data:`STREAMED` kinds left on the
        workers; also the rejects with the source rows they name."""
        options, log, timer = self.options, self.log, self.timer
        stored, expect = check_against_store(prepared, self.store, options, log, timer)
        with timer("fingerprint"):
            frames = {str(k): table_frame(k, items, self.batch_id, self.started,
                                          options.shown_name)
                      for k, items in prepared.items() if items and k not in STREAMED}
        # where the rows of the streamed kinds are, for the batch's own audit entry
        placed = {str(k): pd.DataFrame({"county_adcode": pd.concat(
            [i.parsed.loc[~i.rejected, "county_adcode"] for i in items],
            ignore_index=True).astype("string")})
            for k, items in prepared.items() if items and k in STREAMED}
        with timer("audit"):
            audit = batch_audit(prepared, {**frames, **placed}, stored, options,
                                self.batch_id, self.started)
        with timer("report"):
            rejects, raws = self._sources(log.rejects())
        batch, per_kind = assembled_batch(
            prepared, frames, audit, expect, log, rejects, raws, options, self.batch_id,
            self.started, paths, self.files, self._headers())
        return batch, per_kind, (rejects, raws)

    def _sources(self, rejects: pd.DataFrame) -> tuple[pd.DataFrame, list[RawTable]]:
        """The files as tables of only their rejected rows' source columns, and the
        rejects indexed within those (the rows are read again on the workers)."""
        out = rejects.copy()
        raws: list[RawTable] = []
        jobs: list[tuple[_File, np.ndarray, list[Any]]] = []
        for f in self.read:
            raw = f.template
            mine = (out["file"] == raw.path).to_numpy()
            index = out["index"].to_numpy(dtype=np.int64)[mine]
            wanted = np.unique(index[index >= 0])
            futures = []
            for n, (a, b) in enumerate(itertools.pairwise(f.starts)):
                local = wanted[(wanted >= a) & (wanted < b)] - a
                if not len(local):
                    continue
                read = f.reads[n] if f.plan.form == "excel" else None
                start, stop = f.plan.parts[n]
                futures.append(self.client.submit(source_rows, f.plan, read, start, stop,
                                                  local, pure=False))
            jobs.append((f, wanted, futures))
        with self._dask():
            got = self.client.gather([futures for _, _, futures in jobs])
        for (f, wanted, _), frames in zip(jobs, got, strict=True):
            raw = f.template
            columns = raw.raw.columns if raw.raw is not None else pd.Index(f.plan.headers)
            source = (pd.concat(frames, ignore_index=True) if frames
                      else pd.DataFrame(columns=columns))
            mine = (out["file"] == raw.path).to_numpy()
            index = out.loc[mine, "index"].to_numpy(dtype=np.int64)
            out.loc[mine, "index"] = np.where(index >= 0, np.searchsorted(wanted, index), index)
            raws.append(replace(raw, raw=source.reset_index(drop=True)))
        return out, raws

    def _finish(self, batch: Batch, prepared: Batches) -> Batch:
        """The rows of the streamed kinds that survived the checks: on PostGIS COPYed by
        the workers into staging tables (a :class:`StagedBatch`), else gathered here."""
        from distributed import wait

        staging = getattr(self.store, "kind", None) == "postgis"
        url = self.store.address if staging else None
        jobs: dict[str, list[Any]] = {}
        for f in sorted(self.read, key=lambda f: ORDER.index(f.kind)):
            if f.kind not in STREAMED:
                continue
            table = str(f.kind)
            item = next(i for i in prepared[f.kind] if i.raw.path == f.plan.path)
            for p, (a, b) in zip(f.parts, itertools.pairwise(f.starts),
                                 strict=True):
                stage = (url, len(jobs.get(table, []))) if staging else None
                jobs.setdefault(table, []).append(self.client.submit(
                    finish_part, p, item.rejected[a:b], self.batch_id, self.started,
                    self.remote.shown_name, stage, pure=False))
        try:
            with self._dask():
                got = self.client.gather(jobs)
        except BaseException:
            # every partition's COPY over before the staging tables are dropped
            with suppress(Exception):
                wait([f for fs in jobs.values() for f in fs])
            raise
        if not staging:
            frames = dict(batch.frames)
            for table, parts in got.items():
                frames[table] = pd.concat(parts, ignore_index=True)
            return replace(batch, frames=_in_kind_order(frames))
        from service.store.postgis.staging import StagedBatch, stage_table

        names = {table: [stage_table(self.batch_id, table, n) for n in range(len(parts))]
                 for table, parts in jobs.items()}
        return StagedBatch(**{f.name: getattr(batch, f.name)
                              for f in batch.__dataclass_fields__.values()},
                           staged=names, staged_rows={t: int(sum(r)) for t, r in got.items()})

    def _drop_stages(self) -> None:
        if getattr(self.store, "kind", None) == "postgis":
            from service.store.postgis.staging import drop_stages

            with suppress(Exception):  # never hides the batch's own error
                drop_stages(self.store.address, self.batch_id)


def _in_kind_order(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Tables in the order the in-process engine writes them (by kind)."""
    return {str(k): frames[str(k)] for k in Kind if str(k) in frames}
