"""The Dask engine ingests exactly as the in-process one: on the seeded demo province, in
partitions small enough that every large file is cut into several, both stores give the
same report, the same rejected rows (file, row, field, reason) and the same stored rows.

What legitimately differs between two batches and is left out of the comparison: the
batch id and the stage timings of the report; in the stored tables the ``batch_id`` and
``updated_at`` of each row (the batch and when it started); the ``reject_id`` and
``batch_id`` of the stored rejects; the ids and times of the audit entries (compared by
action, entity, entity id, actor and place; the batch's own entry by a placeholder id)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import shapely

from service.ingest.distributed import dask_client, ingest_on_dask, partitions
from service.ingest.pipeline import IngestOptions, ingest
from service.ingest.read import read_file
from service.store.base import Store
from service.store.tables import OFFICER_CELLS, TABLES
from tests.conftest import DEMO_AS_OF, DEMO_PROVINCES, STORE_KINDS

pytestmark = pytest.mark.slow

PARTITION_ROWS = 1_000  # the demo's 6,000 equipment in 6 partitions, its units in several
_numbers = itertools.count()


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    """One LocalCluster (2 single-threaded worker processes) for the module."""
    with dask_client() as c:
        yield c


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    from data.demo import generate

    out = tmp_path_factory.mktemp("demo")
    generate(province="河南省", equipment=6000, seed=5, out=out, as_of=DEMO_AS_OF)
    return sorted(str(p) for p in out.iterdir() if p.name != "MANIFEST.json")


@pytest.fixture(params=STORE_KINDS)
def two_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """Two empty stores of one kind: for the in-process and for the Dask ingest."""
    if request.param == "postgis":
        from service.store.postgis import PostGISStore

        server = request.getfixturevalue("postgis_server")
        template = request.getfixturevalue("postgis_template")
        names = [f"{template}_dask{os.getpid()}x{next(_numbers)}" for _ in range(2)]
        stores = [PostGISStore(server.create_database(n, template=template), h3_resolution=8)
                  for n in names]
    else:
        from service.store.embedded import EmbeddedStore

        names = []
        stores = [EmbeddedStore(tmp_path / n, h3_resolution=8) for n in ("local", "dask")]
    yield stores[0], stores[1]
    for s in stores:
        s.close()
    for n in names:
        server.drop_database(n)


def _options() -> IngestOptions:
    return IngestOptions(provinces=DEMO_PROVINCES, today=DEMO_AS_OF)


def _comparable(frame: pd.DataFrame, key: str | list[str], drop: list[str]) -> pd.DataFrame:
    """``frame`` without ``drop``, geometry as WKB, sorted by ``key``, plain index."""
    out = pd.DataFrame(frame).drop(columns=[c for c in drop if c in frame.columns])
    for column in out.columns:
        if out[column].dtype == "geometry" or column == "geometry":
            out[column] = shapely.to_wkb(out[column].to_numpy(dtype=object), hex=True)
    return out.sort_values(key, kind="stable").reset_index(drop=True)


def test_demo_is_cut_into_several_partitions(demo_files):
    equipment = next(read_file(p) for p in demo_files if "设备" in Path(p).name
                     or "equipment" in Path(p).name)
    assert len(partitions(equipment, PARTITION_ROWS)) >= 5


def test_dask_ingest_equals_in_process(two_stores, demo_files, client):
    local_store, dask_store = two_stores
    local = ingest(demo_files, local_store, _options())
    on_dask = ingest_on_dask(demo_files, dask_store, _options(), client=client,
                             partition_rows=PARTITION_ROWS)

    # the report, but for the batch id and the timings
    assert local["rejected"] > 0 and local["loaded"] > 0  # the demo plants bad rows
    assert set(local) == set(on_dask)
    for key in set(local) - {"batch_id", "timings"}:
        assert on_dask[key] == local[key], key
    # the rejected rows: same file, row, field and reason
    assert [(r["file"], r["row"], r["field"], r["code"], r["reason"])
            for r in on_dask["rejects"]] == [
        (r["file"], r["row"], r["field"], r["code"], r["reason"]) for r in local["rejects"]]

    # every ingested table, row by row
    for name, spec in TABLES.items():
        a = _comparable(local_store.read(name), spec.key, ["batch_id", "updated_at"])
        b = _comparable(dask_store.read(name), spec.key, ["batch_id", "updated_at"])
        assert len(a) > 0, name
        pd.testing.assert_frame_equal(b, a, obj=name)
    cells = ["officer_id", "h3"]
    pd.testing.assert_frame_equal(
        _comparable(dask_store.read(OFFICER_CELLS.name), cells, []),
        _comparable(local_store.read(OFFICER_CELLS.name), cells, []), obj="officer_cells")
    order = ["file", "row", "field", "code"]
    pd.testing.assert_frame_equal(
        _comparable(dask_store.read("rejects"), order, ["reject_id", "batch_id"]),
        _comparable(local_store.read("rejects"), order, ["reject_id", "batch_id"]),
        obj="rejects")
    audit = ["action", "entity", "entity_id", "actor", "county_adcode", "h3"]
    pd.testing.assert_frame_equal(  # the batch's own entry is named by its batch id
        _comparable(dask_store.read("audit")[audit].replace(on_dask["batch_id"], "<batch>"),
                    audit, []),
        _comparable(local_store.read("audit")[audit].replace(local["batch_id"], "<batch>"),
                    audit, []), obj="audit")


def test_dask_engine_rejects_bad_input_the_same_way(tmp_path, demo_files, client):
    """Bad rows spread over several partitions of one file (and a duplicate key across
    partitions) are rejected with the same file, row and field by both engines."""
    from service.store.embedded import EmbeddedStore

    source = next(p for p in demo_files if Path(p).name == "设备台账.csv")
    lines = Path(source).read_text(encoding="utf-8-sig").splitlines()[:26]
    rows = [lines[0]]
    for i, line in enumerate(lines[1:]):
        cells = line.split(",")
        if i % 7 == 3:
            cells[6] = "abc"          # longitude not a number
        if i == 5:
            cells[8] = "北京54"        # an unknown datum
        if i == 21:
            cells[0] = lines[3].split(",")[0]  # the key of row 4 again, partitions apart
        rows.append(",".join(cells))
    path = tmp_path / "equipment.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    local = ingest([str(path)], EmbeddedStore(tmp_path / "a"), _options())
    on_dask = ingest_on_dask([str(path)], EmbeddedStore(tmp_path / "b"), _options(),
                             client=client, partition_rows=4)
    got = {(r["row"], r["field"], r["code"]) for r in local["rejects"]}
    assert {(5, "lon", "bad_number"), (23, "registration_code", "duplicate")} <= got, got
    assert on_dask["rejects"] == local["rejects"]
    assert on_dask["by_table"] == local["by_table"]


def test_cli_engine_dask_from_the_environment(tmp_path, demo_files, monkeypatch):
    """``RISKMAP_ENGINE=dask`` makes ``riskmap ingest`` run on a LocalCluster it starts;
    the report is the in-process one's. The option's default is the runner's constant."""
    import inspect
    import json

    from typer.testing import CliRunner

    from service import cli
    from service.ingest.distributed import PARTITION_ROWS as DEFAULT_ROWS

    assert inspect.signature(cli.ingest).parameters["partition_rows"].default == DEFAULT_ROWS
    files = [p for p in demo_files if Path(p).name in ("使用单位.csv", "隐患.csv")]
    reports = {}
    for engine in ("local", "dask"):
        monkeypatch.setenv("RISKMAP_ENGINE", engine)
        result = CliRunner().invoke(cli.app, [
            "ingest", *files, "--store", str(tmp_path / engine), "--partition-rows", "500",
            "--report", str(tmp_path / f"{engine}.json")])
        assert result.exit_code in (0, 1), result.output
        reports[engine] = json.loads((tmp_path / f"{engine}.json").read_text(encoding="utf-8"))
    assert "dask" in reports["dask"]["timings"] and "dask" not in reports["local"]["timings"]
    for report in reports.values():
        del report["batch_id"], report["timings"]
    assert reports["dask"] == reports["local"]
