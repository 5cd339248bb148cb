"""``riskmap build --engine dask``: grading, the per-unit and per-row layers and what
every whole-table stage reads of the pieces mapped over partitions of the input on a Dask
cluster (dask.distributed), each partition read and its largest layers written by a
worker. The driver never holds the equipment table, graded or not: of its pieces it reads the
keys that cut it into partitions.

The driver reads the stored tables but for equipment, of which it reads the three key
columns that cut it into partitions of counties (:mod:`layers.partitions`: a unit with all
its equipment, each piece with all its hazards). Each worker reads its partition's
equipment from the store by key, at the data version the build started from
(:meth:`Store.read_rows`), grades it (L, E, C, D, levels and reasons per piece; each
unit's level from its pieces and its own factors) and builds its partition of the layers
made of one row per unit or input row: equipment (a row per piece), the unit files (a
row per unit), the open hazards and the overdue pieces. It writes them to the store
itself, in parts (:meth:`Store.stage_layer_part`); the store puts the parts together in
the layer's order when the build is written (the driver makes that order from the plan,
and for the layers sorted by their values from the few columns each partition sends of
their rows).

For the stages that need the whole table, each worker sends what they read of its
pieces, summed where they sum (:class:`BuiltPartition`): the aggregate sums (risk cells,
regions, industries, grid cells, insurance, late hazards: :class:`layers.aggregate.Sums`),
the hotspot counts (:class:`layers.hotspots.HotspotSums`), the venue counts, and per unit
the demonstration candidates and the long-late major hazards, and per park the sums of
its pieces and their hazards (:class:`layers.parks.ParkSums`). The driver adds or joins
them. Every sum is a whole number (D counted in twentieths), and a
unit's rows come from one partition, so they add up to the in-process build's to the
last bit, whatever the partitions. The graded units come back joined in the whole
input's order (of the units table's, which the driver holds, only the columns grading
sets: :class:`layers.partitions.PartitionUnits`); the graded equipment and the per-row
layers do not come back at all.

A second round makes the check schedule where the units are: it needs the hotspot units
(every partition's counts added, then Gi*), and each county's capacity bounds only that
county's units, which a partition holds whole. The worker keeps its graded units and
their check-schedule facts from the first round (:class:`KeptPartition`, a Dask future
that never leaves it); the driver sends it its units' checks and the whole build's
hotspot units, widespread hazards and capacity; the worker stages its part of the
schedule and of the boosted units (:data:`layers.partitions.SCHEDULE_LAYERS`) and sends
back their credit codes, which rows are boosted, and its sums for the workload table
(:func:`layers.workload.schedule_sums`, per county: a county's sum is the same in any
partition).

The other stages (hotspot Gi* and its FDR, the workload table, demonstration picks and
ranks, park profiles, warnings) then run in the driver with the same code as in process.
The build report says ``engine``, how many ``partitions`` were built,
``dask_seconds``, the grading stage's parts (plan, submit, compute and gather, join,
schedule), and ``dask_attempts`` (a build whose worker was lost starts again:
:func:`build_on_dask`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from time import perf_counter, sleep
from typing import TYPE_CHECKING, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd

import layers.frequency
import layers.partitions
import layers.points
import layers.workload
from layers.aggregate import Sums
from layers.build import BuildResult, Grade, Inputs, build_layers
from layers.builders import Build
from layers.demonstration import UnitPieces
from layers.frequency import UnitFacts
from layers.hotspots import HotspotSums
from layers.parks import ParkSums
from layers.partitions import PartitionUnits
from layers.rules import Rules
from service.ingest.distributed import dask_client
from service.memory import release_memory
from service.store import reopen_store
from service.store.base import Keys, StagedLayer, Store
from service.store.errors import DataChanged
from service.store.layer_parts import new_token

if TYPE_CHECKING:
    from distributed import Client, Worker

PARTITION_ROWS = 200_000  # equipment rows a partition aims at (counties are not cut)
PER_WORKER = 2            # at least this many partitions per worker (balance)
#: What the driver reads of the equipment table: what cuts it into partitions.
PLAN_COLUMNS = ["registration_code", "unit_credit_code", "county_adcode"]
#: Builds started again after the cluster lost a worker (:func:`build_on_dask`).
LOST_WORKER_RETRIES = 1


@dataclass
class DaskBuild:
    """What :func:`build_on_dask` built: the layers held in memory, and those its workers
    staged in the store (to be written with them, or dropped)."""

    result: BuildResult
    staged: dict[str, StagedLayer]


def build_on_dask(store: Store, read: Callable[[list[str]], Inputs], rules: Rules,
                  progress: Callable[[str], None] | None = None, *,
                  client: Client | None = None, scheduler: str | None = None,
                  partitions: int | None = None) -> DaskBuild:
    """:func:`layers.build.build_layers` of ``store``'s tables (``read(columns)`` reads
    them, of equipment ``columns`` only), partitions on Dask: on ``client`` if given, else
    on the cluster at ``scheduler``, else on a LocalCluster. The workers stage the
    :data:`~layers.partitions.STAGED_LAYERS` (equipment, unit files) in ``store``; on
    failure nothing staged is left.

    A worker lost on the way takes with it what no task can compute again (what the
    driver scattered to it, what the first round keeps there for the second): the build
    drops what it staged and starts again, ``LOST_WORKER_RETRIES`` times at most, then
    raises :class:`WorkerLost`. The report's ``dask_attempts`` says how many it took."""
    if client is None:
        with dask_client(scheduler) as own:
            return build_on_dask(store, read, rules, progress, client=own,
                                 partitions=partitions)
    from distributed.client import FutureCancelledError
    from distributed.comm import CommClosedError

    for attempt in range(1, LOST_WORKER_RETRIES + 2):
        try:
            built = _build_once(store, read, rules, progress, client, partitions)
        except (FutureCancelledError, CommClosedError) as exc:
            if attempt > LOST_WORKER_RETRIES:
                raise WorkerLost(attempt, exc) from exc
            if progress:
                progress("worker lost, again")
            continue
        built.result.report["dask_attempts"] = attempt
        return built
    raise AssertionError("unreachable")


class WorkerLost(RuntimeError):
    """The cluster lost a worker, and with it data no task computes again, in every attempt
    of a build: the build in force stays, nothing staged is left."""

    def __init__(self, attempts: int, cause: BaseException) -> None:
        super().__init__(f"Dask 工作进程丢失，请检查集群后重新运行 a Dask worker was lost in "
                         f"each of {attempts} attempts; check the cluster and run it again "
                         f"({type(cause).__name__}: {cause})")


def _build_once(store: Store, read: Callable[[list[str]], Inputs], rules: Rules,
                progress: Callable[[str], None] | None, client: Client,
                partitions: int | None) -> DaskBuild:
    """One attempt of :func:`build_on_dask`."""
    if progress:
        progress("read")
    version = store.data_version()
    inputs = read(PLAN_COLUMNS)
    if store.data_version() != version:
        raise DataChanged("a batch landed while the build read the tables; run it again")
    made: dict[str, pd.DataFrame] = {}
    token = new_token()
    grade = on_dask(client, made, store, version, token, partitions)
    try:
        result = build_layers(inputs, rules, progress, grade=grade, made=made)
    except BaseException:
        store.drop_staged_layers(token)
        raise
    staged = {lid: StagedLayer(token, order)
              for lid, order in grade.orders.items()}  # type: ignore[attr-defined]
    for lid, layer in staged.items():  # placeholders: the layers are in the store
        del result.frames[lid]
        result.report["rows"][lid] = layer.rows
    result.report["equipment_unlocated"] = grade.unlocated  # type: ignore[attr-defined]
    result.report["partitions"] = grade.parts  # type: ignore[attr-defined]
    result.report["dask_seconds"] = grade.seconds  # type: ignore[attr-defined]
    return DaskBuild(result, staged)


def partition_count(client: Client, equipment_rows: int) -> int:
    """Partitions for ``equipment_rows``: ``PER_WORKER`` per worker at least, more when a
    partition would pass ``PARTITION_ROWS`` rows."""
    workers = max(len(client.scheduler_info().get("workers", {})), 1)
    return max(PER_WORKER * workers, math.ceil(equipment_rows / PARTITION_ROWS))


class BuiltPartition(NamedTuple):
    """What a worker sends back of its partition."""

    units: PartitionUnits      # the graded units (of the table's, what grading sets)
    sort_keys: dict[str, pd.DataFrame]  # what orders the rows of its sorted staged layers
    staged: dict[str, int]     # the rows of each layer it staged
    firsts: pd.DataFrame       # the first pieces of units only equipment names
    unlocated: int             # pieces without a location
    sums: Sums                 # the aggregate layers' group sums of its pieces
    hotspot_sums: HotspotSums  # the hotspot layers' counts of its pieces
    venue_counts: pd.DataFrame  # its in-use pieces per venue and category
    late_major: pd.DataFrame   # its units' 重大 hazards long past their deadline
    unit_pieces: UnitPieces    # its in-use pieces per unit (demonstration picks)
    park_sums: ParkSums        # the park profiles' sums of its pieces and their hazards


class KeptPartition(NamedTuple):
    """What a worker keeps of its partition for the second round (the check schedule)."""

    inputs: Inputs             # its tables but equipment, units and hazards
    units: pd.DataFrame        # its graded units
    facts: UnitFacts           # what the check schedule reads of their pieces


def build_stored_partition(address: str, h3_resolution: int, version: str, keys: Keys,
                           inputs: Inputs, home: np.ndarray,
                           grid_targets: dict[int, np.ndarray], rules: Rules, token: str,
                           part: int) -> tuple[BuiltPartition, KeptPartition]:
    """On a worker: partition ``part`` (its equipment keyed ``keys``, read here from the
    store at ``address`` as it was at ``version``), graded and built
    (:func:`layers.partitions.build_partition`); its :data:`~layers.partitions.STAGED_LAYERS`
    staged in the store; what the whole-table stages read of its pieces made here
    (:class:`BuiltPartition`; the grid cells' sums over the officers' cells
    ``grid_targets``), and what the second round reads (:class:`KeptPartition`: it stays
    on the worker)."""
    with reopen_store(address, h3_resolution) as store:
        equipment = store.read_rows("equipment", keys, version)
        graded_eq, graded_units, frames = layers.partitions.build_partition(
            replace(inputs, equipment=equipment), home, rules)
        del equipment
        unlocated = int(frames["equipment"].geometry.isna().sum())
        sort_keys = layers.partitions.sort_keys(frames)
        staged = {lid: len(frames[lid]) for lid in layers.partitions.STAGED_LAYERS}
        for lid in layers.partitions.STAGED_LAYERS:
            store.stage_layer_part(lid, token, part, frames.pop(lid))
    firsts = layers.partitions.first_pieces(graded_eq, graded_units, len(inputs.units))
    sums = Sums.of(graded_eq, graded_units, rules.aggregate.cell_resolutions[-1],
                   grid_targets)
    hotspot_sums = HotspotSums.of(graded_eq, inputs.hazards, inputs.as_of, rules.hotspots)
    late_major = layers.points.late_major_hazards(
        inputs.hazards[home].reset_index(drop=True), graded_eq, inputs.as_of, rules.blacklist)
    venues = layers.points.venue_counts(graded_eq)
    unit_pieces = UnitPieces.of(graded_units, graded_eq, rules.demonstration)
    park_sums = ParkSums.of(graded_eq, inputs.hazards[home])
    unit_facts = UnitFacts.of(graded_units, graded_eq, inputs.venues, inputs.as_of,
                              rules.frequency, hazards=inputs.hazards)
    units = PartitionUnits.of(graded_units, len(inputs.units))
    kept = KeptPartition(replace(inputs, equipment=inputs.equipment.iloc[:0],
                                 units=inputs.units.iloc[:0], hazards=inputs.hazards.iloc[:0]),
                         graded_units, unit_facts)
    del graded_eq, graded_units
    release_memory()  # the worker's next partition starts from what it holds, not its peak
    return BuiltPartition(units, sort_keys, staged, firsts, unlocated, sums,
                          hotspot_sums, venues, late_major, unit_pieces, park_sums), kept


def schedule_stored_partition(address: str, h3_resolution: int, kept: KeptPartition,
                              checks: pd.DataFrame, shared: tuple, rules: Rules, token: str,
                              part: int) -> layers.partitions.Scheduled:
    """On a worker, the second round: partition ``part``'s check schedule
    (:func:`layers.partitions.schedule_partition`, from what the first round ``kept``
    here, its units' ``checks`` and the whole build's hotspot units, widespread hazards
    and capacity, ``shared``), its :data:`~layers.partitions.SCHEDULE_LAYERS` staged in
    the store at ``address``."""
    frames, scheduled = layers.partitions.schedule_partition(
        replace(kept.inputs, checks=checks), kept.units, kept.facts, *shared, rules)
    with reopen_store(address, h3_resolution) as store:
        for lid in layers.partitions.SCHEDULE_LAYERS:
            store.stage_layer_part(lid, token, part, frames.pop(lid))
    return scheduled


STOP_SECONDS = 600.0  # how long a failed build waits for its running partitions


def stop(client: Client, futures: list) -> None:
    """Cancel ``futures`` and wait until none of them still runs on a worker (a task
    cancelled while running goes on in its thread, and could stage its part after the
    build dropped the others)."""
    keys = {f.key for f in futures}
    client.cancel(futures)
    deadline = perf_counter() + STOP_SECONDS
    while keys and perf_counter() < deadline:
        running = client.run(_executing, on_error="ignore")  # a lost worker runs nothing
        if not keys.intersection(k for found in running.values() for k in found):
            return
        sleep(0.2)


def _executing(dask_worker: Worker) -> list:
    """On a worker: the keys of the tasks running there (cancelled ones included)."""
    return [ts.key for ts in dask_worker.state.executing]


def schedule(client: Client, build: Build, kept: list, unit_parts: np.ndarray, store: Store,
             token: str) -> dict[str, np.ndarray]:
    """The second round: each partition's check schedule, from what its worker ``kept``
    (a future per partition), its units' checks (``unit_parts``: the partition of each
    graded unit) and the whole build's hotspot units, widespread hazards and capacity
    (which ``build`` computes now, from the partitions' sums); staged by the workers under
    ``token``. Fills ``build.schedule_sums``; the order of each of
    :data:`~layers.partitions.SCHEDULE_LAYERS`."""
    checks = build.inputs.checks[["credit_code", "checked_on"]]
    at = layers.frequency.positions(checks["credit_code"], build.units["credit_code"])
    part = np.where(at >= 0, unit_parts[np.maximum(at, 0)], -1)
    [shared] = client.scatter([(build.hotspot_units, build.widespread, build.capacity)],
                              broadcast=True, hash=False)
    futures = []
    for p, kept_p in enumerate(kept):
        [own] = client.scatter([checks.iloc[np.flatnonzero(part == p)].reset_index(drop=True)],
                               hash=False)
        futures.append(client.submit(schedule_stored_partition, store.address,
                                     store.h3_resolution, kept_p, own, shared, build.rules,
                                     token, p, pure=False))
    results = []
    try:
        for k, future in enumerate(futures):
            results.append(future.result())
            futures[k] = kept[k] = None
    except BaseException:
        stop(client, [f for f in [*futures, *kept] if f is not None])
        raise
    positions = layers.partitions.schedule_positions(results)
    if positions is None:
        raise DataChanged("credit codes are not unique in the stored units; the Dask build "
                          "needs them unique (as ingest keeps them)")
    build.schedule_sums = layers.workload.combined_schedule_sums([r.sums for r in results])
    sizes = {"check-schedule": [len(r.codes) for r in results],
             "frequency": [int(r.boosted.sum()) for r in results]}
    return {lid: layers.partitions.staged_order(positions[lid], sizes[lid])
            for lid in layers.partitions.SCHEDULE_LAYERS}


def _first(pair: tuple) -> object:
    return pair[0]


def _second(pair: tuple) -> object:
    return pair[1]


def on_dask(client: Client, made: dict[str, pd.DataFrame], store: Store, version: str,
            token: str, partitions: int | None = None) -> Grade:
    """A ``grade`` for :func:`layers.build.build_layers` that builds partitions of counties
    on ``client`` (``partitions``: how many at most; default :func:`partition_count`) from
    ``store`` at ``version``; it puts in ``made`` placeholders for the
    :data:`~layers.partitions.STAGED_LAYERS` its workers stage under ``token``, and keeps
    the staged layers' order and unlocated rows."""
    if partitions is not None and partitions < 1:
        raise ValueError("partitions must be at least 1")

    def grade(build: Build) -> tuple[None, pd.DataFrame]:
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
        # Arrow strings, not Python objects (~70 bytes a key less: 0.7 GB at 10M)
        keys = i.equipment["registration_code"].astype("string[pyarrow]").array
        lap("plan")
        [targets] = client.scatter([build.grid_targets], broadcast=True, hash=False)
        futures = []
        for p in range(plan.parts):
            part, home = layers.partitions.partition_inputs(i, plan, p)
            # not hashed (tokenizing 200,000 rows takes seconds)
            sent = client.scatter([keys[plan.rows("equipment", p)], replace(
                part, equipment=part.equipment.iloc[:0]), home], hash=False)
            futures.append(client.submit(build_stored_partition, store.address,
                                         store.h3_resolution, version, *sent, targets,
                                         build.rules, token, p, pure=False))
        i.equipment = i.equipment.iloc[:0].copy()  # nothing after grading reads it
        store.forget("equipment")  # nor the key columns the store keeps of it
        del keys
        release_memory()  # the driver waits from what it holds, not from the plan's peak
        # what comes back, and what stays on the worker for the second round
        built = [client.submit(_first, f, pure=False) for f in futures]
        kept = [client.submit(_second, f, pure=False) for f in futures]
        lap("submit")
        results = []
        try:
            for k, future in enumerate(built):  # one at a time, each released once here
                results.append(future.result())
                built[k] = None  # type: ignore[call-overload]
        except BaseException:
            stop(client, [f for f in [*futures, *built, *kept] if f is not None])
            raise
        futures.clear()  # each pair's second half is held by ``kept``
        lap("compute_gather")
        grade.unlocated = sum(r.unlocated for r in results)  # type: ignore[attr-defined]
        # fill the cached properties: the aggregate and hotspot layers are made of these
        build.sums = Sums.combined([r.sums for r in results])
        build.hotspot_sums = HotspotSums.combined([r.hotspot_sums for r in results])
        build.venue_counts = layers.points.added_venue_counts(
            [r.venue_counts for r in results])
        build.late_major = pd.concat([r.late_major for r in results]).sort_index(
            kind="stable")  # each unit's rows in one partition
        build.unit_pieces = UnitPieces.joined([r.unit_pieces for r in results])
        build.park_sums = ParkSums.combined([r.park_sums for r in results])
        counts = [len(plan.rows("units", p)) for p in range(plan.parts)]
        extra = [r.units.extra["credit_code"].astype("string").to_numpy(dtype=object)
                 for r in results]
        positions = layers.partitions.sorted_positions([r.sort_keys for r in results])
        if positions is None:
            raise DataChanged("hazard ids or registration codes are not unique in the "
                              "stored tables; the Dask build needs them unique (as ingest "
                              "keeps them)")
        positions["units"] = layers.partitions.unit_positions(plan, counts, extra)
        # each staged layer's order: the part of each of its rows (the store's merge)
        orders = {"equipment": plan.equipment, **{
            lid: layers.partitions.staged_order(at, [r.staged[lid] for r in results])
            for lid, at in positions.items()}}
        grade.orders = {lid: orders[lid]  # type: ignore[attr-defined]
                        for lid in layers.partitions.STAGED_LAYERS}
        for lid in layers.partitions.STAGED_LAYERS:  # built by the workers, in the store
            made[lid] = gpd.GeoDataFrame(geometry=[], crs=4326)
        pieces = pd.concat([r.firsts for r in results], ignore_index=True)
        graded_units = [r.units for r in results]
        results.clear()
        units = layers.partitions.join_units(graded_units, plan, i.units, pieces)
        lap("join")
        build.graded = (None, units)  # type: ignore[assignment]  # the schedule's inputs
        grade.orders.update(schedule(client, build, kept, orders["units"], store, token))  # type: ignore[attr-defined]
        lap("schedule")
        for lid in layers.partitions.SCHEDULE_LAYERS:
            made[lid] = gpd.GeoDataFrame(geometry=[], crs=4326)
        return None, units  # the graded equipment is not held here

    grade.parts = 0  # type: ignore[attr-defined]
    grade.seconds = {}  # type: ignore[attr-defined]  # the grading stage's parts
    grade.orders = {}  # type: ignore[attr-defined]
    grade.unlocated = 0  # type: ignore[attr-defined]
    return grade

