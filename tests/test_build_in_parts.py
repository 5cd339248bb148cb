"""A build made in parts, as ``riskmap build --engine dask`` makes it, through the store:
a worker reads its partition by key at the build's data version (and is refused any
other), stages its part of the equipment layer, and the build's write puts the parts
together in the layer's order; a failure anywhere leaves the build in force and no part
behind. Both stores, on the seeded demo."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import create_engine, text

import service.build_dask
from layers.registry import ALL
from service.build import run_build
from service.ingest.distributed import dask_client
from service.store import open_store
from service.store.base import LayerBuild, StagedLayer
from service.store.errors import DataChanged, StoreError
from service.store.layer_parts import check_token, merge_parts, new_token
from tests.conftest import DEMO_AS_OF, DEMO_PROVINCES, _fill_demo
from tests.test_build_dask import _wkb, assert_same_frames, assert_same_report

pytestmark = pytest.mark.slow


@pytest.fixture
def demo(filled_store):
    store = open_store(filled_store(_fill_demo).url)
    yield store
    store.close()


def _left_behind(store) -> list[str]:
    """Staged parts still in the store (tables, or directories)."""
    if store.kind == "postgis":
        engine = create_engine(store.address)
        with engine.connect() as conn:
            names = conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'stage\\_%'")).scalars()
            found = list(names)
        engine.dispose()
        return found
    return [p.name for p in (Path(store.address) / "layers").glob(".stage-*")]


def test_a_worker_reads_its_rows_by_key_at_the_build_version_only(demo):
    whole = demo.read("equipment")
    keys = whole["registration_code"].to_numpy(dtype=object)[[40, 3, 2999, 7]]
    got = demo.read_rows("equipment", keys, demo.data_version())
    want = whole.iloc[[40, 3, 2999, 7]].reset_index(drop=True)
    assert list(got.columns) == list(want.columns)
    pd.testing.assert_frame_equal(_wkb(got), _wkb(want), check_exact=True)
    with pytest.raises(DataChanged, match="rows the build planned"):
        demo.read_rows("equipment", np.array([*keys, "NO-SUCH-CODE"], dtype=object),
                       demo.data_version())
    with pytest.raises(DataChanged):  # a version the store no longer gives
        demo.read_rows("equipment", keys, "999999")


def test_a_partition_is_read_through_the_key_index_not_a_scan_of_the_table(demo):
    """PostGIS: the keyed read looks its keys up in the table's key index (a hash join
    would scan the whole table for each partition: the reads would grow as N times the
    partitions), and gives the rows in the keys' order, the last key's row last."""
    if demo.kind != "postgis":
        pytest.skip("the embedded store filters its snapshot file")
    import psycopg

    from service.store.postgis.layer_parts import KEYS_TABLE, read_keyed
    from service.store.postgis.staging import libpq

    whole = demo.read("equipment")
    at = np.arange(len(whole))[::-3]  # a third of the table, backwards
    keys = whole["registration_code"].to_numpy(dtype=object)[at]
    spec = demo.spec("equipment")
    with psycopg.connect(libpq(demo.address)) as conn, conn.cursor() as cursor:
        got = read_keyed(cursor, spec, ["registration_code"], keys)
        plan = "\n".join(r[0] for r in cursor.execute(
            f"EXPLAIN SELECT t.* FROM equipment t JOIN {KEYS_TABLE} w "
            "ON t.registration_code = w._k").fetchall())
    assert got["registration_code"].tolist() == keys.tolist()
    assert "Index Scan using equipment_pkey" in plan and "Hash" not in plan, plan


def test_parts_staged_out_of_order_are_written_in_the_layer_order(demo):
    """Two parts holding alternate runs of rows: the written layer is the one in force
    (same rows, same order on the embedded store, same rows by fid on PostGIS), and the
    parts are gone."""
    layers = {lid: demo.read_layer(lid) for lid in ALL}
    before = demo.layer_build()
    equipment = layers.pop("equipment")
    order = (np.arange(len(equipment)) // 100) % 2  # runs of 100 rows, alternating
    token = "0123456789abcdef0123"
    for part in (1, 0):
        rows = np.flatnonzero(order == part)
        assert demo.stage_layer_part("equipment", token, part,
                                     equipment.iloc[rows]) == len(rows)
    assert _left_behind(demo)
    build = replace(before, build_id="parts", built_at=datetime.now(UTC))
    demo.write_layers(layers, build, {"equipment": StagedLayer(token, order)})
    assert demo.layer_build().build_id == "parts"
    got = demo.read_layer("equipment")
    if demo.kind == "postgis":
        got = got.sort_values("fid", ignore_index=True)
        equipment = equipment.sort_values("fid", ignore_index=True)
    pd.testing.assert_frame_equal(_wkb(got), _wkb(equipment), check_exact=True)
    assert not _left_behind(demo)


def test_a_part_that_does_not_match_the_order_is_refused(demo):
    """A part with fewer rows than the order gives it: the write fails and the build in
    force stays."""
    layers = {lid: demo.read_layer(lid) for lid in ALL}
    before = demo.layer_build()
    equipment = layers.pop("equipment")
    order = np.zeros(len(equipment), dtype=np.int64)
    order[::2] = 1
    token = "feedfeedfeedfeedfeed"
    demo.stage_layer_part("equipment", token, 0, equipment.iloc[1::2].iloc[:-1])
    demo.stage_layer_part("equipment", token, 1, equipment.iloc[::2])
    build = LayerBuild(build_id="short", built_at=datetime.now(UTC), as_of=DEMO_AS_OF,
                       rules_version=before.rules_version, rules_hash=before.rules_hash,
                       data_version=before.data_version, report=before.report)
    with pytest.raises(StoreError, match="rows"):
        demo.write_layers(layers, build, {"equipment": StagedLayer(token, order)})
    assert demo.layer_build().build_id == before.build_id
    assert len(demo.read_layer("equipment")) == len(equipment)
    assert demo.drop_staged_layers(token) == (2 if demo.kind == "embedded" else 1)
    assert not _left_behind(demo)


@pytest.mark.parametrize("token", ["../x", "", "A" * 10, "a/b", "a" * 41])
def test_a_staging_token_is_never_a_path_or_data(token):
    with pytest.raises(ValueError):
        check_token(token)


def test_the_merge_refuses_parts_longer_than_the_order(tmp_path):
    schema = pa.schema([("n", pa.int64())])
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"n": [0, 1, 2]}, schema=schema), tmp_path / "p0.parquet")
    with pytest.raises(StoreError, match="more rows"):
        merge_parts([tmp_path / "p0.parquet"], np.zeros(2, dtype=np.int64), schema,
                    tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()
    merge_parts([tmp_path / "p0.parquet"], np.zeros(3, dtype=np.int64), schema,
                tmp_path / "out.parquet")
    assert pq.read_table(tmp_path / "out.parquet")["n"].to_pylist() == [0, 1, 2]


@pytest.mark.parametrize("stage", ["build_stored_partition", "schedule_stored_partition"])
def test_a_worker_failing_leaves_the_build_in_force_and_no_part(demo, monkeypatch, stage):
    """One partition's worker fails after the others staged their parts, in the first
    round or in the second (the check schedule, after every partition staged its first
    layers): the build raises, the build in force stays, nothing staged is left."""
    before = demo.layer_build().build_id
    real = getattr(service.build_dask, stage)

    def failing(*args):
        if args[-1] == 2:  # the third partition
            raise RuntimeError("worker lost")
        return real(*args)

    monkeypatch.setattr(service.build_dask, stage, failing)
    with dask_client(processes=False) as client, pytest.raises(RuntimeError,
                                                                match="worker lost"):
        run_build(demo, DEMO_PROVINCES, as_of=DEMO_AS_OF, engine="dask", client=client,
                  partitions=4)
    assert demo.layer_build().build_id == before
    assert not _left_behind(demo)


def _killing_a_worker(monkeypatch, times: int) -> list[str]:
    """The second round made to start, ``times`` times, by killing the worker process that
    keeps the first partition for it (``os._exit``: no goodbye to the scheduler), once the
    scheduler has seen it go. Returns the addresses killed."""
    real = service.build_dask.schedule
    killed: list[str] = []

    def schedule(client, build, kept, *rest):
        if len(killed) < times:
            [holders] = client.who_has([kept[0]]).values()
            address = holders[0]
            with contextlib.suppress(Exception):  # it dies before it answers
                client.run(os._exit, 1, workers=[address])
            deadline = time.monotonic() + 60
            while (address in client.scheduler_info()["workers"]
                   and time.monotonic() < deadline):
                time.sleep(0.1)
            killed.append(address)
        return real(client, build, kept, *rest)

    monkeypatch.setattr(service.build_dask, "schedule", schedule)
    return killed


def test_a_worker_lost_between_the_rounds_builds_again(demo, monkeypatch):
    """A worker process dies after the first round: what it kept for the second, and what
    the driver scattered to it, are gone, and no task can compute them again. The build
    drops what it staged and starts again: the same layers and report as the demo's
    in-process build, two attempts reported, nothing left staged."""
    before = demo.layer_build()
    stored = {lid: demo.read_layer(lid) for lid in ALL}
    killed = _killing_a_worker(monkeypatch, times=1)
    with dask_client() as client:  # worker processes, each with its nanny
        built = run_build(demo, DEMO_PROVINCES, as_of=DEMO_AS_OF, engine="dask",
                          client=client, partitions=4)
    assert len(killed) == 1
    assert built.report["dask_attempts"] == 2
    assert demo.layer_build().build_id == built.build_id != before.build_id
    assert_same_report(built.report, before.report)
    assert_same_frames({lid: demo.read_layer(lid) for lid in ALL}, stored,
                       by_fid=demo.kind == "postgis")
    assert not _left_behind(demo)


def test_a_worker_lost_in_every_attempt_is_said_and_nothing_changes(demo, monkeypatch):
    """Through the command: a worker lost in the first attempt and in the retry ends the
    build with a clear error (exit 2), the build in force stays, nothing staged is left."""
    from typer.testing import CliRunner

    from service import cli

    before = demo.layer_build().build_id
    killed = _killing_a_worker(monkeypatch, times=2)
    result = CliRunner().invoke(cli.app, ["build", "--store", demo.address, "--engine",
                                          "dask", "--partitions", "4"])
    assert len(killed) == 2
    assert result.exit_code == 2, result.output
    assert "Dask 工作进程丢失" in result.output and "no build was written" in result.output
    assert "each of 2 attempts" in result.output
    assert demo.layer_build().build_id == before
    assert not _left_behind(demo)


def test_a_batch_landing_during_the_build_refuses_it(demo, monkeypatch):
    """The data version moves between the driver's read and a worker's: the worker's
    read is refused, so is the build; the build in force stays, nothing staged is left."""
    before = demo.layer_build().build_id
    real = service.build_dask.build_stored_partition

    def moved(address, resolution, version, *rest):
        return real(address, resolution, "999999", *rest)

    monkeypatch.setattr(service.build_dask, "build_stored_partition", moved)
    with dask_client(processes=False) as client, pytest.raises(DataChanged):
        run_build(demo, DEMO_PROVINCES, as_of=DEMO_AS_OF, engine="dask", client=client,
                  partitions=3)
    assert demo.layer_build().build_id == before
    assert not _left_behind(demo)


def test_a_build_sweeps_what_a_killed_driver_left_staged(demo):
    """Parts (and, on PostGIS, a batch's staging tables) a build or batch started two days
    ago left behind are dropped by the next build; a build running now keeps its own."""
    equipment = demo.read_layer("equipment").iloc[:50]
    old = new_token(datetime.now(UTC) - timedelta(days=2))
    fresh = new_token()
    for token in (old, fresh):
        demo.stage_layer_part("equipment", token, 0, equipment)
    if demo.kind == "postgis":
        engine = create_engine(demo.address)
        with engine.begin() as conn:
            conn.execute(text(f"CREATE UNLOGGED TABLE stage_{old}_equipment_0 (n int)"))
        engine.dispose()
    assert len(_left_behind(demo)) == (3 if demo.kind == "postgis" else 2)
    run_build(demo, DEMO_PROVINCES, as_of=DEMO_AS_OF)
    left = _left_behind(demo)
    assert left and all(fresh in name for name in left)
    assert demo.drop_staged_layers(fresh) == 1
    assert not _left_behind(demo)
