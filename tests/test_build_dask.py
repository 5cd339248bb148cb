"""The Dask build engine builds exactly what the in-process one builds: on the seeded demo
province, graded in several partitions of counties, every layer and finding table has the
same rows in the same order, the same columns and dtypes, the same values to the last bit
and the same geometry, and the build report is the same but for its timings, its engine
and the partitions; both stores, from the stored tables to the stored layers.

The module's cluster runs its workers as threads (fast to start); one test runs worker
processes (every frame and the rules pickled to and from them)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import shapely

import layers.partitions
import layers.workload
from layers.build import build_layers, builder_of
from layers.builders import Build
from layers.frequency import UnitFacts
from layers.registry import ALL
from layers.rules import load_rules
from service.build import UNIT_COLUMNS_LEFT, read_inputs, run_build
from service.build_dask import build_on_dask
from service.ingest.distributed import DaskUnavailable, dask_client
from service.store import open_store
from tests.conftest import DEMO_AS_OF, DEMO_PROVINCES, _fill_demo

#: The layers the Dask build's workers write to the store, in the first round and the second.
WORKER_LAYERS = (*layers.partitions.STAGED_LAYERS, *layers.partitions.SCHEDULE_LAYERS)

pytestmark = pytest.mark.slow

PARTITIONS = 5  # the demo's counties in five partitions
# what the engines may report apart
NOT_COMPARED = {"seconds", "engine", "partitions", "dask_seconds", "dask_attempts"}


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    """One LocalCluster of 2 threaded workers for the module."""
    with dask_client(processes=False) as c:
        yield c


@pytest.fixture
def demo_copy(filled_store):
    """This test's copy of the built demo, in each store."""
    return filled_store(_fill_demo)


@pytest.fixture
def demo(demo_copy):
    """The store of this test's copy of the built demo."""
    store = open_store(demo_copy.url)
    yield store
    store.close()


def _wkb(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its geometry as WKB (exact coordinates, compared as bytes)."""
    out = pd.DataFrame(frame).copy()
    for column in out.columns:
        if column == "geometry" or str(out[column].dtype) == "geometry":
            out[column] = shapely.to_wkb(out[column].to_numpy(dtype=object), hex=True)
    return out


def assert_same_frames(got: dict[str, pd.DataFrame], want: dict[str, pd.DataFrame],
                       staged: tuple[str, ...] = (), by_fid: bool = False) -> None:
    """Every layer of ``want`` in ``got`` the same, but for ``staged`` (written by the
    workers to the store, not held). ``by_fid``: rows compared in ``fid`` order (a PostGIS
    table is a set of rows: its physical order is where the heap found room, and every
    query of the service orders by ``fid``)."""
    assert list(got) == [lid for lid in want if lid not in staged]
    assert list(want) == list(ALL)
    for lid, frame in want.items():
        if lid in staged:
            continue
        other = got[lid]
        if by_fid:
            frame = frame.sort_values("fid", kind="stable", ignore_index=True)
            other = other.sort_values("fid", kind="stable", ignore_index=True)
        assert type(other) is type(frame), lid
        pd.testing.assert_frame_equal(_wkb(other), _wkb(frame), check_exact=True, obj=lid)
        assert other.attrs == frame.attrs, lid
        if hasattr(frame, "crs"):
            assert other.crs == frame.crs, lid


def assert_same_report(got: dict, want: dict) -> None:
    assert set(got) - NOT_COMPARED == set(want) - NOT_COMPARED
    for key in set(want) - NOT_COMPARED:
        assert got[key] == want[key], key


def _inputs(store, equipment_columns=None):
    return read_inputs(store, DEMO_PROVINCES, DEMO_AS_OF, equipment_columns)


def test_the_unit_columns_a_build_leaves_make_no_layer(demo):
    """The units' provenance and address columns, which the build does not read, change
    no layer: the demo built from every column of its units gives the same frames."""
    narrow = _inputs(demo)
    assert not set(UNIT_COLUMNS_LEFT) & set(narrow.units.columns)
    assert set(UNIT_COLUMNS_LEFT) <= set(demo.read_columns("units", None))
    full = replace(narrow, units=demo.read("units"))
    assert full.units["address"].notna().all() and len(full.units) > 1000
    rules = load_rules()
    assert_same_frames(build_layers(narrow, rules).frames, build_layers(full, rules).frames)


def test_partitions_keep_units_with_their_pieces_and_grade_exactly(demo):
    """The plan: five partitions, none empty, a unit with all its pieces and each hazard
    with its piece. Graded by partition and joined, the frames are the whole input's,
    also with units only equipment names, a unit code twice and pieces without a unit."""
    inputs = _inputs(demo)
    plan = layers.partitions.plan(inputs.units, inputs.equipment, inputs.hazards, PARTITIONS)
    assert plan.parts == PARTITIONS
    sizes = np.bincount(plan.equipment, minlength=plan.parts)
    assert (sizes > 0).all() and sizes.sum() == len(inputs.equipment)
    unit_part = dict(zip(inputs.units["credit_code"], plan.units, strict=True))
    owned = inputs.equipment["unit_credit_code"].map(unit_part)
    known = owned.notna().to_numpy()
    assert known.all()
    assert (owned.to_numpy() == plan.equipment).all()
    eq_part = dict(zip(inputs.equipment["registration_code"], plan.equipment, strict=True))
    named = inputs.hazards["registration_code"].iloc[plan.hazard_rows].map(eq_part)
    assert (named.to_numpy() == plan.hazard_parts).all() and len(named) > 100

    # what ingest never leaves, graded the same way all the same
    units, eq = inputs.units, inputs.equipment.copy()
    counties = units.drop_duplicates("county_adcode")
    gone = counties["credit_code"].iloc[:4]  # units in four counties, their pieces kept
    units = units[~units["credit_code"].isin(gone)]
    units = pd.concat([units, units.iloc[[7]]], ignore_index=True)  # a code twice
    eq.loc[eq.index[[3, 400, 2500]], "unit_credit_code"] = pd.NA
    for parts in (1, 2, PARTITIONS):
        assert_same_grading(eq, units, inputs, parts)


def assert_same_grading(eq, units, inputs, parts: int) -> None:
    """Built by partition and joined: the graded frames and the per-unit and per-row
    layers of the whole input."""
    rules = load_rules()
    inputs = replace(inputs, equipment=eq, units=units)
    whole = Build(inputs, rules)
    plan = layers.partitions.plan(units, eq, inputs.hazards, parts)
    results = [layers.partitions.build_partition(
        *layers.partitions.partition_inputs(inputs, plan, p), rules)
        for p in range(plan.parts)]
    counts = [len(plan.rows("units", p)) for p in range(plan.parts)]
    extra = [u["credit_code"].iloc[n:].astype("string").to_numpy(dtype=object)
             for (_, u, _), n in zip(results, counts, strict=True)]
    keys = [layers.partitions.sort_keys(f) for _, _, f in results]
    positions = layers.partitions.sorted_positions(keys)
    # a hazard id twice (not after ingest): no total order to restore
    twice = [dict(k) for k in keys]
    twice[-1]["hazards"] = pd.concat([twice[-1]["hazards"], twice[0]["hazards"].iloc[:1]])
    assert layers.partitions.sorted_positions(twice) is None
    # the staged layers: each partition's rows in the order the store is given
    assert positions is not None
    positions["units"] = layers.partitions.unit_positions(plan, counts, extra)
    orders = {"equipment": plan.equipment, **{
        lid: layers.partitions.staged_order(at, [len(f[lid]) for _, _, f in results])
        for lid, at in positions.items()}}
    # the second round: each partition's check schedule, with the whole's hotspot units
    units_part = dict(zip(whole.units["credit_code"], orders["units"], strict=False))
    check_part = inputs.checks["credit_code"].map(units_part).to_numpy()
    scheduled = []
    for p, (e, u, f) in enumerate(results):
        own, _ = layers.partitions.partition_inputs(inputs, plan, p)
        facts = UnitFacts.of(u, e, own.venues, own.as_of, rules.frequency, hazards=own.hazards)
        frames, done = layers.partitions.schedule_partition(
            replace(own, checks=inputs.checks[check_part == p]), u, facts,
            whole.hotspot_units, whole.widespread, whole.capacity, rules)
        f.update(frames)
        scheduled.append(done)
    positions = layers.partitions.schedule_positions(scheduled)
    assert positions is not None
    orders.update({lid: layers.partitions.staged_order(at, [len(f[lid]) for _, _, f in results])
                   for lid, at in positions.items()})
    pd.testing.assert_frame_equal(
        layers.workload.combined_schedule_sums([d.sums for d in scheduled[::-1]]),
        whole.schedule_sums, check_exact=True)
    for lid, order in orders.items():
        parts = [f[lid] for _, _, f in results]
        assert [len(f) for f in parts] == list(np.bincount(order, minlength=plan.parts))
        # the merge the store makes: each row of the layer the next row of its part
        by_part = np.argsort(order, kind="stable")
        at = np.empty(len(order), dtype=np.int64)
        at[by_part] = np.arange(len(order))
        got = pd.concat(parts, ignore_index=True).take(at).reset_index(drop=True)
        want = builder_of(ALL[lid])(whole)
        for column in want.columns:  # a part's column whose rows are all empty has its
            if got[column].dtype != want[column].dtype:  # own dtype until the store
                got[column] = got[column].astype(want[column].dtype)  # conforms it
        pd.testing.assert_frame_equal(_wkb(got), _wkb(want), check_exact=True,
                                      obj=f"{lid} {parts}")
        if lid in ("hazards", "overdue", "frequency"):
            assert len(want) > 10, lid
    assert set(orders) == set(WORKER_LAYERS)
    graded = [(e, u) for e, u, _ in results]
    joined = layers.partitions.join_graded(graded, plan, eq.index, units)
    assert not graded  # emptied as it was read
    for got, want, name in zip(joined, whole.graded, ("equipment", "units"), strict=True):
        pd.testing.assert_frame_equal(got, want, check_exact=True, obj=f"{name} {parts}")
    assert len(whole.units) == len(units) + 4  # the four units only equipment names



def test_dask_build_equals_in_process(demo, client):
    """In memory, every frame the two engines build from the same stored tables; then
    through the store, the layers ``run_build`` writes on Dask against those the demo's
    in-process build wrote."""
    rules = load_rules()
    local = build_layers(_inputs(demo), rules)
    built = build_on_dask(demo, lambda columns: _inputs(demo, columns), rules,
                          client=client, partitions=PARTITIONS)
    on_dask = built.result
    assert on_dask.report["partitions"] == PARTITIONS
    assert local.report["rows"]["equipment"] > 5000  # the demo, not an empty build
    assert_same_frames(on_dask.frames, local.frames, WORKER_LAYERS)
    assert_same_report(on_dask.report, local.report)
    assert set(built.staged) == set(WORKER_LAYERS)
    for lid, staged in built.staged.items():
        assert staged.rows == len(local.frames[lid]) and staged.parts == PARTITIONS
    token = built.staged["equipment"].token
    # a file per part and layer (embedded), a table per layer (PostGIS)
    staged = len(WORKER_LAYERS)
    assert demo.drop_staged_layers(token) == (
        staged * PARTITIONS if demo.kind == "embedded" else staged)
    assert demo.drop_staged_layers(token) == 0

    before = demo.layer_build()  # the demo's own build, in process
    assert before.report["engine"] == "local"
    stored = {lid: demo.read_layer(lid) for lid in ALL}
    built = run_build(demo, DEMO_PROVINCES, as_of=DEMO_AS_OF, engine="dask", client=client,
                      partitions=PARTITIONS)
    assert built.report["engine"] == "dask" and built.build_id != before.build_id
    after = demo.layer_build()
    assert after.build_id == built.build_id and after.report["engine"] == "dask"
    assert_same_report(after.report, before.report)
    assert_same_frames({lid: demo.read_layer(lid) for lid in ALL}, stored,
                       by_fid=demo.kind == "postgis")


def test_dask_layers_equal_with_worker_processes(request, store_templates):
    """Worker processes: the partitions and the rules go to them pickled, each reads its
    equipment from the store and writes its part of the equipment layer there, the graded
    frames come back pickled; still the same layers (the embedded demo)."""
    filled = store_templates.copy("embedded", _fill_demo, request)
    store = open_store(filled.url)
    try:
        rules = load_rules()
        local = build_layers(_inputs(store), rules)
        stored = {lid: store.read_layer(lid) for lid in ALL}
        with dask_client() as processes:
            built = run_build(store, DEMO_PROVINCES, as_of=DEMO_AS_OF, engine="dask",
                              client=processes, partitions=3)
        assert built.report["partitions"] == 3
        assert_same_report(built.report, local.report)
        assert_same_frames({lid: store.read_layer(lid) for lid in ALL}, stored)
    finally:
        store.close()
        store_templates.drop(filled.url)


def test_an_unknown_engine_is_refused(tmp_path):
    from service.store.embedded import EmbeddedStore

    store = EmbeddedStore(tmp_path / "store")
    with pytest.raises(ValueError, match="unknown build engine"):
        run_build(store, DEMO_PROVINCES, as_of=DEMO_AS_OF, engine="spark")
    store.close()


def test_a_scheduler_that_cannot_be_reached_is_named(demo, demo_copy, monkeypatch):
    """No cluster at the address (given, or from ``RISKMAP_ENGINE`` and
    ``RISKMAP_DASK_SCHEDULER``): a clear error naming it, exit 2, the build in force kept;
    an address that is no address is refused before anything runs."""
    from typer.testing import CliRunner

    import service.ingest.distributed
    from service import cli

    monkeypatch.setattr(service.ingest.distributed, "CONNECT_SECONDS", 2)
    before = demo.layer_build().build_id
    with pytest.raises(DaskUnavailable, match=r"tcp://127\.0\.0\.1:9"):
        run_build(demo, DEMO_PROVINCES, as_of=DEMO_AS_OF, engine="dask",
                  scheduler="tcp://127.0.0.1:9")
    url = demo_copy.url
    runner = CliRunner()
    result = runner.invoke(cli.app, ["build", "--store", url, "--engine", "dask",
                                     "--scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "tcp://127.0.0.1:9" in result.output and "no build was written" in result.output
    monkeypatch.setenv("RISKMAP_ENGINE", "dask")
    monkeypatch.setenv("RISKMAP_DASK_SCHEDULER", "tcp://127.0.0.1:7")
    result = runner.invoke(cli.app, ["build", "--store", url])
    assert result.exit_code == 2 and "tcp://127.0.0.1:7" in result.output
    result = runner.invoke(cli.app, ["build", "--store", url, "--scheduler", "localhost"])
    assert result.exit_code == 2 and "--scheduler" in result.output
    assert demo.layer_build().build_id == before
