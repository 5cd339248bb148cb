"""``riskmap ingest --engine dask``: the per-file stages of an ingest mapped over partitions
of rows on a Dask cluster (dask.distributed).

The files are read here, as in process. Each file's rows are cut into partitions of
``partition_rows`` (an officers file stays whole: the cap on an officer's cells counts
every row of the file), each partition keeps its source row numbers, and
:func:`service.ingest.pipeline.prepare_file` (validate, place on the map, check dates) runs
on the workers, one task per partition. The partitions come back in order and are joined
into one prepared file each, their rejects and flags re-indexed to the whole file, so the
rest of the batch (de-duplication, references, scope, hazard loop, write, report) runs
exactly as in process: the same rows are rejected with the same file, row and field.

``riskmap build`` does not run on Dask yet (it stays in process).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from functools import lru_cache
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from data.schema import Kind
from geo.geocode import CountyGeocoder
from service.ingest.officers import OfficerCells
from service.ingest.pipeline import (
    IngestOptions,
    PrepareFiles,
    in_order,
    ingest,
    locate_options,
    prepare_file,
)
from service.ingest.prepared import Batches, Prepared
from service.ingest.read import RawTable
from service.ingest.rejects import RejectLog
from service.ingest.timing import StageTimer
from service.store.base import Store

if TYPE_CHECKING:
    from distributed import Client

PARTITION_ROWS = 200_000  # rows of one file per task
LOCAL_WORKERS = 2         # the LocalCluster started when no scheduler is given
CONNECT_SECONDS = 30      # to reach an existing scheduler


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
    """:func:`service.ingest.pipeline.ingest` with the per-file stages on Dask: on
    ``client`` if given, else on the cluster at ``scheduler``, else on a LocalCluster."""
    if client is not None:
        return ingest(paths, store, options, prepare=on_dask(client, partition_rows))
    with dask_client(scheduler) as own:
        return ingest(paths, store, options, prepare=on_dask(own, partition_rows))


def on_dask(client: Client, partition_rows: int = PARTITION_ROWS) -> PrepareFiles:
    """A ``prepare`` for :func:`service.ingest.pipeline.ingest` that maps the per-file
    stages over partitions of ``partition_rows`` rows on ``client``."""
    if partition_rows < 1:
        raise ValueError("partition_rows must be at least 1")

    def prepare(raws: list[RawTable], options: IngestOptions, log: RejectLog,
                timer: StageTimer, step: Callable[[str], None]) -> Batches:
        # what a worker needs of the options (no progress callback, no write scope)
        remote = replace(options, progress=None, scope=None,
                         today=options.today or date.today())
        files = in_order(raws)
        jobs: list[tuple[int, int, int]] = []  # (file, start, stop)
        for n, raw in enumerate(files):
            step(f"校验 {options.shown_name(raw.path)}")
            jobs += [(n, start, stop) for start, stop in partitions(raw, partition_rows)]
        started = perf_counter()
        parts = client.scatter([_slice(files[n], start, stop) for n, start, stop in jobs])
        futures = client.map(prepare_partition, parts, options=remote, pure=False)
        results = client.gather(futures)
        timer.seconds["dask"] += perf_counter() - started
        prepared: Batches = {k: [] for k in Kind}
        for n, raw in enumerate(files):
            mine = [(start, result) for (f, start, _), result in zip(jobs, results, strict=True)
                    if f == n]
            prepared[raw.kind].append(_join(raw, mine, log, timer))
        return prepared

    return prepare


def partitions(raw: RawTable, partition_rows: int) -> list[tuple[int, int]]:
    """(start, stop) of each partition of ``raw``'s rows (one, empty, for no rows)."""
    n = len(raw.frame)
    size = max(n, 1) if raw.kind == Kind.OFFICERS else partition_rows
    return [(start, min(start + size, n)) for start in range(0, n, size)] or [(0, 0)]


def _slice(raw: RawTable, start: int, stop: int) -> RawTable:
    """Rows ``start:stop`` of ``raw`` with their source row numbers, without what only the
    report needs (the source columns, malformed lines: kept by the whole file here)."""
    geometry = raw.geometry
    if geometry is not None:
        geometry = geometry.iloc[start:stop].reset_index(drop=True)
    return replace(raw, frame=raw.frame.iloc[start:stop].reset_index(drop=True),
                   rows=raw.rows[start:stop], geometry=geometry, raw=None, malformed=[])


@lru_cache(maxsize=4)
def _geocoder(provinces: tuple[str, ...]) -> CountyGeocoder:
    """One county geocoder per worker process and provinces (loading it takes a while)."""
    return CountyGeocoder(list(provinces))


def prepare_partition(raw: RawTable, options: IngestOptions
                      ) -> tuple[Prepared, list[pd.DataFrame], list[pd.DataFrame],
                                 dict[str, float]]:
    """On a worker: the per-file stages of one partition. Returns the prepared rows (its
    ``raw`` dropped), the partition's reject and flag frames (indexed within the
    partition) and the seconds per stage."""
    log, timer = RejectLog(), StageTimer()
    geocoder = None if options.geocoder else _geocoder(tuple(options.provinces))
    locate = locate_options(options, timer, geocoder)
    item = prepare_file(raw, options, log, timer, locate, options.today or date.today())
    item.raw = None  # type: ignore[assignment]  # the driver holds the file
    return item, *log.entries(), dict(timer.seconds)


def _join(raw: RawTable, parts: list[tuple[int, tuple]], log: RejectLog,
          timer: StageTimer) -> Prepared:
    """One prepared file from its partitions in order; their rejects and flags go to
    ``log``, indexed within the whole file."""
    log.lacks(raw.path, raw.absent)
    items: list[Prepared] = []
    for start, (item, rejects, flags, seconds) in parts:
        log.take(rejects, flags, start)  # row indexes from the partition's to the file's
        for stage, s in seconds.items():
            timer.seconds[stage] += s
        items.append(item)
    if len(items) == 1:
        joined = items[0]
        joined.raw = raw
        return joined
    cells = [i.officer_cells for i in items if i.officer_cells is not None]
    return Prepared(
        raw, pd.concat([i.parsed for i in items], ignore_index=True),
        officer_cells=OfficerCells(*(pd.concat(c, ignore_index=True) for c in
                                     zip(*((o.cells, o.counties) for o in cells),
                                         strict=True))) if cells else None,
        rejected=np.concatenate([i.rejected for i in items]))


