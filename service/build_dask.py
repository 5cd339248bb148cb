"""``riskmap build --engine dask``: grading and the per-unit and per-row layers mapped
over partitions of the input on a Dask cluster (dask.distributed); every stage that needs
the whole table as in process, on the joined graded frames.

The driver reads the stored tables (as in process), cuts them into partitions of counties
(:mod:`layers.partitions`: a unit with all its equipment, each piece with all its
hazards), scatters them one at a time and drops its own copy of the equipment table. Each
worker grades its partition (L, E, C, D, levels and reasons per piece; each unit's level
from its pieces and its own factors) and builds its partition of the layers made of one
row per unit or input row (:data:`layers.partitions.PARTITION_LAYERS`: unit files, open
hazards, overdue pieces). The partitions come back and are joined in the whole input's
order, so the graded frames and those layers are exactly the in-process build's.

The stages that need the whole table (hotspot Gi* and its FDR, H3 cells and their
parents, regions, industries, grid cells, schedules within county capacity, demonstration
picks and ranks, park profiles, warnings) run in the driver on the joined graded frames,
with the same code as in process: that is what makes every layer identical to the last
bit. Their partial sums mapped over partitions would add risk scores and rates in another
order and change the last digits. The build report says ``engine``, how many
``partitions`` were built and ``dask_seconds``, the grading stage's parts (plan, scatter,
compute and gather, join).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING

import pandas as pd

import layers.partitions
from layers.build import BuildResult, Grade, Inputs, build_layers
from layers.builders import Build
from layers.rules import Rules
from service.ingest.distributed import dask_client

if TYPE_CHECKING:
    from distributed import Client

PARTITION_ROWS = 200_000  # equipment rows a partition aims at (counties are not cut)
PER_WORKER = 2            # at least this many partitions per worker (balance)


def build_on_dask(read: Callable[[], Inputs], rules: Rules,
                  progress: Callable[[str], None] | None = None, *,
                  client: Client | None = None, scheduler: str | None = None,
                  partitions: int | None = None) -> BuildResult:
    """:func:`layers.build.build_layers` of what ``read`` gives, partitions on Dask: on
    ``client`` if given, else on the cluster at ``scheduler``, else on a LocalCluster.
    ``read`` is called here (so that no caller keeps the equipment table alive)."""
    if client is None:
        with dask_client(scheduler) as own:
            return build_on_dask(read, rules, progress, client=own, partitions=partitions)
    if progress:
        progress("read")
    made: dict[str, pd.DataFrame] = {}
    grade = on_dask(client, made, partitions)
    result = build_layers(read(), rules, progress, grade=grade, made=made)
    result.report["partitions"] = grade.parts  # type: ignore[attr-defined]
    result.report["dask_seconds"] = grade.seconds  # type: ignore[attr-defined]
    return result


def partition_count(client: Client, equipment_rows: int) -> int:
    """Partitions for ``equipment_rows``: ``PER_WORKER`` per worker at least, more when a
    partition would pass ``PARTITION_ROWS`` rows."""
    workers = max(len(client.scheduler_info().get("workers", {})), 1)
    return max(PER_WORKER * workers, math.ceil(equipment_rows / PARTITION_ROWS))


def on_dask(client: Client, made: dict[str, pd.DataFrame], partitions: int | None = None
            ) -> Grade:
    """A ``grade`` for :func:`layers.build.build_layers` that builds partitions of counties
    on ``client`` (``partitions``: how many at most; default :func:`partition_count`); it
    puts the joined :data:`~layers.partitions.PARTITION_LAYERS` in ``made``."""
    if partitions is not None and partitions < 1:
        raise ValueError("partitions must be at least 1")

    def grade(build: Build) -> tuple[pd.DataFrame, pd.DataFrame]:
        i = build.inputs
        seconds: dict[str, float] = grade.seconds  # type: ignore[attr-defined]
        started = perf_counter()

        def lap(name: str) -> None:
            nonlocal started
            seconds[name] = round(perf_counter() - started, 3)
            started = perf_counter()

        plan = layers.partitions.plan(i.units, i.equipment, i.hazards,
                                      partitions or partition_count(client, len(i.equipment)))
        grade.parts = plan.parts  # type: ignore[attr-defined]
        lap("plan")
        futures = []
        for p in range(plan.parts):
            # one partition at a time: the driver never holds a second copy of the input;
            # not hashed (tokenizing 200,000 rows with their geometry takes seconds)
            part, home = client.scatter(layers.partitions.partition_inputs(i, plan, p),
                                        hash=False)
            futures.append(client.submit(layers.partitions.build_partition, part, home,
                                         build.rules, pure=False))
        equipment_index = i.equipment.index
        # the graded frames replace the equipment table (nothing after grading reads it);
        # a new empty frame, not a slice, which would keep the table's buffers alive
        i.equipment = pd.DataFrame({c: pd.Series(dtype=t)
                                    for c, t in i.equipment.dtypes.items()})
        lap("scatter")
        results = []
        for k, future in enumerate(futures):  # one at a time, each released once here
            results.append(future.result())
            futures[k] = None  # type: ignore[call-overload]
        lap("compute_gather")
        counts = [len(plan.rows("units", p)) for p in range(plan.parts)]
        extra = [units["credit_code"].iloc[n:].astype("string").to_numpy(dtype=object)
                 for (_, units, _), n in zip(results, counts, strict=True)]
        joined = layers.partitions.join_layers([f for _, _, f in results], plan, counts,
                                               extra)
        if joined is not None:  # else (keys not unique) built in process, as locally
            made.update(joined)
        graded = [(eq, units) for eq, units, _ in results]
        results.clear()
        joined_graded = layers.partitions.join_graded(graded, plan, equipment_index, i.units)
        lap("join")
        return joined_graded

    grade.parts = 0  # type: ignore[attr-defined]
    grade.seconds = {}  # type: ignore[attr-defined]  # the grading stage's parts
    return grade
