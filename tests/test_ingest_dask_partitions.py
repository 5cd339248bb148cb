"""The Dask engine reads each partition on its worker (service.ingest.read_parts) and, on
PostGIS, COPYs each partition into a staging table merged in one transaction
(service.store.postgis.staging): the same rejects and report as in process, whatever the
partitions; and a failure in one partition leaves the store as it was."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from service.ingest.distributed import dask_client, ingest_on_dask
from service.ingest.pipeline import IngestOptions, ingest
from service.ingest.read import _read_csv, read_file
from service.ingest.read_parts import csv_numbers, plan_file, read_csv_part
from service.store.embedded import EmbeddedStore
from tests.conftest import DEMO_AS_OF, DEMO_PROVINCES

pytestmark = pytest.mark.slow
_numbers = itertools.count()

HEADER = "设备注册代码,设备类别代码,设备名称,统一社会信用代码,使用单位名称,使用地址,经度,纬度"


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    """Worker threads in this process: a fault injected here reaches the workers."""
    with dask_client(processes=False) as c:
        yield c


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from data.demo import generate

    out = tmp_path_factory.mktemp("demo")
    generate(province="河南省", equipment=1500, seed=11, out=out, as_of=DEMO_AS_OF)
    return {p.name: str(p) for p in out.iterdir() if p.name != "MANIFEST.json"}


def _options() -> IngestOptions:
    return IngestOptions(provinces=DEMO_PROVINCES, today=DEMO_AS_OF)


def _same(local: dict, on_dask: dict) -> None:
    assert set(local) == set(on_dask)
    for key in set(local) - {"batch_id", "timings"}:
        assert on_dask[key] == local[key], key


def _both(tmp_path: Path, files: list[str], client: object, rows: int) -> tuple[dict, dict]:
    n = next(_numbers)
    local = ingest(files, EmbeddedStore(tmp_path / f"local{n}"), _options())
    on_dask = ingest_on_dask(files, EmbeddedStore(tmp_path / f"dask{n}"), _options(),
                             client=client, partition_rows=rows)
    return local, on_dask


def _rows(demo: dict[str, str], n: int) -> list[str]:
    return Path(demo["设备台账.csv"]).read_text(encoding="utf-8-sig").splitlines()[1:n + 1]


# reading by byte ranges ---------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["utf-8-sig", "gbk"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_byte_ranges_read_as_the_whole_file(tmp_path, encoding, newline):
    """Blank lines, malformed lines (too few and too many fields), values across lines, a
    quote never closed, a BOM, CRLF, GBK: the ranges give read_file's rows, row numbers and
    malformed lines, whatever their size."""
    body = ["3101080226,3110,电梯,114101020149212491,单位,地址,113.6,34.7", "",
            "3101080227,3110,电梯,114101020149212491,单位,地址,113.6",
            "3101080228,3110,电梯,114101020149212491,单位,地址,113.6,34.7", "", "",
            "3101080229,3110,电梯", "3101080230,3110,电梯,1141,单位,地址,113.6,34.7,x,y",
            "3101080231,3110,\"电梯\",114101020149212491,单位,地址,113.6,34.7",
            # a value across lines, doubled quotes, then a quote never closed
            "3101080232,3110,\"电\n梯\",114101020149212491,单位,\"地\"\"址\",113.6,34.7",
            "3101080233,3110,电梯,114101020149212491,单位,地址,113.6,34.7",
            "3101080234,3110,\"电梯,114101020149212491,单位,地址,113.6,34.7",
            "3101080235,3110,电梯,114101020149212491,单位,地址,113.6,34.7"]
    path = tmp_path / "t.csv"
    path.write_bytes(newline.join([HEADER, *body, ""]).encode(encoding))
    whole, _, malformed = _read_csv(path)
    expected = read_file(path)
    for rows in (1, 2, 3, 100):
        plan = plan_file(path, None, rows)
        assert (len(plan.parts) == 1) == (rows == 100)
        enc = plan.encodings if encoding != "gbk" else ("gb18030",)
        parts = [read_csv_part(str(path), a, b, plan.names, plan.sep, enc)
                 for a, b in plan.parts]
        numbers, bad = csv_numbers(parts)
        pd.testing.assert_frame_equal(
            pd.concat([p.source for p in parts], ignore_index=True), whole)
        assert bad == malformed == expected.malformed
        np.testing.assert_array_equal(np.concatenate(numbers), expected.rows)


# the same rejects and report as in process ----------------------------------------------------

def test_bad_rows_in_several_partitions_and_duplicates_across_them(tmp_path, demo, client):
    """Bad values, malformed and blank lines in many partitions; a key repeated across
    partitions and across two files: rejected with the same file, row and field."""
    lines = _rows(demo, 40)
    rows = []
    for i, line in enumerate(lines):
        cells = line.split(",")
        if i % 6 == 2:
            cells[6] = "abc"                      # longitude not a number
        if i % 9 == 4:
            cells[8] = "北京54"                    # an unknown datum
        if i in (17, 33):
            cells[0] = lines[1].split(",")[0]     # the key of row 3 again
        rows.append(",".join(cells))
        if i % 11 == 5:
            rows += ["", "1,2,3"]                 # a blank and a malformed line
    header = Path(demo["设备台账.csv"]).read_text(encoding="utf-8-sig").splitlines()[0]
    first = tmp_path / "equipment.csv"
    first.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    second = tmp_path / "more.csv"  # repeats keys of the first file
    second.write_text("\n".join([header, *lines[5:9]]) + "\n", encoding="utf-8")
    files = [str(first), str(second), demo["使用单位.csv"]]
    for partition in (2, 5):
        local, on_dask = _both(tmp_path, files, client, partition)
        codes = {r["code"] for r in local["rejects"]}
        assert {"bad_number", "duplicate", "malformed_row"} <= codes, codes
        _same(local, on_dask)


def test_wrong_encoding_is_refused_or_read_the_same_way(tmp_path, demo, client):
    """A GBK file; a file UTF-8 in its first partitions and GBK further on (read_file
    reads it all as GB18030); a UTF-16 file; bytes no encoding reads."""
    lines = _rows(demo, 12)
    header = Path(demo["设备台账.csv"]).read_text(encoding="utf-8-sig").splitlines()[0]
    text = "\n".join([header, *lines]) + "\n"
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(text.encode("gbk"))
    mixed = tmp_path / "mixed.csv"
    ascii_rows = [",".join(c if n != 2 else "lift" for n, c in enumerate(r.split(",")))
                  for r in lines[:8]]
    mixed.write_bytes(("\n".join([header, *ascii_rows]) + "\n").encode("utf-8")
                      + ("\n".join(lines[8:]) + "\n").encode("gbk"))
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes(text.encode("utf-16"))
    broken = tmp_path / "broken.csv"
    broken.write_bytes((header + "\n").encode("utf-8") + b"3101080226,\x81\xff\xfe,x\n" * 5)
    for files in ([gbk], [mixed], [utf16], [broken], [gbk, mixed, utf16, broken]):
        local, on_dask = _both(tmp_path, [str(f) for f in files], client, 3)
        _same(local, on_dask)
    assert {f["encoding"] for f in local["files"] if "encoding" in f} == {"gbk"}
    assert local["files"][0]["rows"] == 12
    assert any(r["code"] == "bad_encoding" for r in local["rejects"])


def test_polygon_layers_and_unknown_kind_by_partitions(tmp_path, demo, client):
    """GeoJSON and GeoPackage layers cut into feature ranges; a file no header explains."""
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("甲,乙\n1,2\n", encoding="utf-8")
    files = [demo["园区.geojson"], demo["人员密集场所.gpkg"], demo["使用单位.csv"],
             str(unknown)]
    local, on_dask = _both(tmp_path, files, client, 7)
    assert any(r["code"] == "unknown_kind" for r in local["rejects"])
    _same(local, on_dask)


# PostGIS: parallel COPY into staging tables, one transaction ----------------------------------

@pytest.fixture
def postgis_store(request: pytest.FixtureRequest) -> Iterator[object]:
    from service.store.postgis import PostGISStore

    server = request.getfixturevalue("postgis_server")
    template = request.getfixturevalue("postgis_template")
    name = f"{template}_stage{os.getpid()}x{next(_numbers)}"
    store = PostGISStore(server.create_database(name, template=template), h3_resolution=8)
    yield store
    store.close()
    server.drop_database(name)


def _state(store: object) -> tuple[dict, str, list[str]]:
    """Row counts, data version and the tables of the database."""
    from sqlalchemy import text

    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        tables = sorted(r[0] for r in conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")))
    return store.row_counts(), store.data_version(), tables  # type: ignore[attr-defined]


@pytest.mark.postgis
def test_a_failed_partition_leaves_the_store_as_it_was(postgis_store, demo, client,
                                                       monkeypatch):
    from service.store.postgis import staging

    store = postgis_store
    ingest([demo["使用单位.csv"]], store, _options())  # something to keep
    before = _state(store)
    files = sorted(demo.values())
    copied: list[tuple[str, int]] = []

    def fault(table: str, n: int) -> None:
        copied.append((table, n))
        if table == "equipment" and n == 2:
            raise RuntimeError("injected: partition 2 of equipment fails")

    monkeypatch.setattr(staging, "FAULT", fault)
    with pytest.raises(RuntimeError, match="injected"):
        ingest_on_dask(files, store, _options(), client=client, partition_rows=200)
    assert ("equipment", 2) in copied and len(copied) > 1  # other partitions were staged
    assert _state(store) == before  # counts, data version, no staging table left

    # a partition failing on its worker before its COPY (the others staged theirs)
    from service.ingest import distributed

    finish = distributed.finish_part

    def bad_partition(part, rejected, batch_id, started, shown, stage):
        if stage is not None and part.item.kind == "units" and stage[1] == 1:
            raise ValueError("injected: a bad partition of units")
        return finish(part, rejected, batch_id, started, shown, stage)

    monkeypatch.setattr(staging, "FAULT", None)
    monkeypatch.setattr(distributed, "finish_part", bad_partition)
    with pytest.raises(ValueError, match="bad partition"):
        ingest_on_dask(files, store, _options(), client=client, partition_rows=200)
    assert _state(store) == before
    monkeypatch.setattr(distributed, "finish_part", finish)

    monkeypatch.setattr(staging, "FAULT", lambda table, n: copied.append((table, n)))
    copied.clear()
    report = ingest_on_dask(files, store, _options(), client=client, partition_rows=200)
    assert report["written"] and report["loaded"] > 0
    assert {t for t, _ in copied} == {"equipment", "units"} and len(copied) >= 8
    counts, version, tables = _state(store)
    assert version != before[1] and tables == before[2]  # the staging tables are gone
    assert counts["equipment"] == report["by_table"]["equipment"]["inserted"]


@pytest.mark.postgis
def test_staged_merge_equals_local_on_a_store_with_rows(postgis_store, request, demo, client):
    """Into stores holding rows already (the merge inserts, updates and leaves rows): the
    staged write counts and stores what the in-process write does."""
    from service.store.postgis import PostGISStore

    server = request.getfixturevalue("postgis_server")
    template = request.getfixturevalue("postgis_template")
    name = f"{template}_stagelocal{os.getpid()}x{next(_numbers)}"
    local_store = PostGISStore(server.create_database(name, template=template),
                               h3_resolution=8)
    try:
        files = sorted(demo.values())
        reports = []
        for store, run in ((local_store, ingest), (postgis_store, ingest_on_dask)):
            ingest([demo["使用单位.csv"], demo["设备台账_补录.xlsx"]], store, _options())
            extra = {"client": client, "partition_rows": 300} if run is ingest_on_dask else {}
            reports.append(run(files, store, _options(), **extra))
        local, on_dask = reports
        _same(local, on_dask)
        assert local["by_table"]["units"].get("unchanged", 0) > 0
        assert local_store.row_counts() == postgis_store.row_counts()
        for table in ("equipment", "units"):
            a = local_store.read(table).drop(columns=["batch_id", "updated_at"])
            b = postgis_store.read(table).drop(columns=["batch_id", "updated_at"])
            key = a.columns[0]
            pd.testing.assert_frame_equal(
                pd.DataFrame(b).sort_values(key, ignore_index=True).drop(columns="geometry"),
                pd.DataFrame(a).sort_values(key, ignore_index=True).drop(columns="geometry"))
    finally:
        local_store.close()
        server.drop_database(name)
