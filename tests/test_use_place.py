"""The equipment's 使用场所 (use place): read from registry files that have it, stored on both
stores, absent from files and stores that predate it, and added by PostGIS migration 0007."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from data.schema import Kind, match_headers
from service.ingest.pipeline import IngestOptions, ingest
from tests import ingest_files as f

GOOD = ["31104101052015000001", "31104101052015000002", "41104101052016000003"]


def _file(path: Path, places: list[str] | None) -> Path:
    rows = f.equipment_rows()[:3]
    if places is None:
        return f.write_equipment_csv(path, rows=rows)
    return f.write_equipment_csv(path, rows=[[*r, p] for r, p in zip(rows, places, strict=True)],
                                 headers=[*f.EQUIPMENT_HEADERS, "使用场所"])


def test_the_registry_form_names_map_to_use_place():
    for header in ("使用场所", "设备使用场所", "使用场所类别", "use_place"):
        assert match_headers(Kind.EQUIPMENT, [header]) == {header: "use_place"}
    # the place where it stands is still the address, not the use place
    assert match_headers(Kind.EQUIPMENT, ["设备使用地点", "使用场所"]) == {
        "设备使用地点": "address", "使用场所": "use_place"}


def test_use_place_round_trips_and_files_without_it_still_load(store, tmp_path):
    report = ingest([str(_file(tmp_path / "with.csv", ["住宅", " 商场 ", ""]))], store,
                    IngestOptions())
    assert report["inserted"] == 3 and not report["rejects"]
    eq = store.read("equipment").set_index("registration_code")
    assert str(eq["use_place"].dtype) == "string"
    assert eq.loc[GOOD[0], "use_place"] == "住宅" and eq.loc[GOOD[1], "use_place"] == "商场"
    assert eq["use_place"].isna().sum() == 1
    # a file without the column (every registry export before it) loads as before
    other = [[r[0][:-2] + "99", *r[1:]] for r in f.equipment_rows()[:1]]
    path = f.write_equipment_csv(tmp_path / "without.csv", rows=other)
    report = ingest([str(path)], store, IngestOptions())
    assert report["inserted"] == 1 and not report["rejects"]
    eq = store.read("equipment").set_index("registration_code")
    assert len(eq) == 4 and eq["use_place"].isna().sum() == 2
    assert eq.loc[GOOD[0], "use_place"] == "住宅"


def test_an_embedded_store_written_before_use_place_opens_and_reads(tmp_path):
    from service.store.embedded import EmbeddedStore

    root = tmp_path / "store"
    store = EmbeddedStore(root)
    ingest([str(_file(tmp_path / "old.csv", None))], store, IngestOptions())
    store.close()
    # as a store written before the column existed: its equipment file has no use_place
    for path in root.glob("snapshots/*/equipment.parquet"):
        table = pq.read_table(path)
        table = table.drop_columns(["use_place"])
        tmp = path.with_suffix(".old")
        pq.write_table(table, tmp)
        os.replace(tmp, path)  # a new file: other snapshots' hard links keep theirs
        assert "use_place" not in pq.read_schema(path).names
    store = EmbeddedStore(root)
    try:
        eq = store.read("equipment")
        assert len(eq) == 3 and eq["use_place"].isna().all()
        assert str(eq["use_place"].dtype) == "string"
        report = ingest([str(_file(tmp_path / "new.csv", ["学校", "医院", "住宅"]))], store,
                        IngestOptions())
        assert report["updated"] == 3 and not report["rejects"]
        assert sorted(store.read("equipment")["use_place"]) == ["住宅", "医院", "学校"]
    finally:
        store.close()


@pytest.mark.postgis
def test_migration_0007_adds_use_place_to_a_0006_database(postgis_server):
    from alembic import command

    from service.store.postgis import alembic_config, migrate

    name = f"riskmap_t_{os.getpid()}_use_place"
    url = postgis_server.create_database(name)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
        migrate(engine, "0006")
        assert "use_place" not in {c["name"] for c in inspect(engine).get_columns("equipment")}
        migrate(engine)
        assert "use_place" in {c["name"] for c in inspect(engine).get_columns("equipment")}
        with engine.begin() as conn:  # and down again
            command.downgrade(alembic_config(conn), "0006")
        assert "use_place" not in {c["name"] for c in inspect(engine).get_columns("equipment")}
    finally:
        engine.dispose()
        postgis_server.drop_database(name)
