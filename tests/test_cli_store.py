"""The CLI and its store: only ``ingest`` (and ``demo``) create one; every other command on a
missing or empty store names it, says what to run and exits 2; exit codes scripts can
trust; ``info``; choices and help that fit 80 columns. On both stores."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest
import typer
from rich.cells import cell_len
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from service.cli import app
from service.store import open_store, store_location
from tests import ingest_files as f

runner = CliRunner()
AS_OF = "2026-11-01"
STORES = ["embedded", pytest.param("postgis", marks=pytest.mark.postgis)]
_numbers = itertools.count(1)


def cli(*args: str) -> object:
    return runner.invoke(app, [str(a) for a in args])


def flat(output: str) -> str:
    """Output without the error panel's frame, its lines joined (rich wraps at spaces)."""
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", output))


def shown(address: str) -> str:
    """How messages name a store: the absolute directory, or the URL without password."""
    location = store_location(address)
    return str(Path(address).absolute()) if location.kind == "embedded" else location.safe


@pytest.fixture(params=STORES)
def nowhere(request, tmp_path):
    """An address where no store is: a directory that does not exist, or a database with no
    riskmap tables (never migrated)."""
    if request.param == "embedded":
        yield str(tmp_path / "absent" / "store")
        return
    server = request.getfixturevalue("postgis_server")
    name = f"{request.getfixturevalue('postgis_template')}_cli{next(_numbers)}"
    yield server.create_database(name)
    server.drop_database(name)


def exists(address: str) -> bool:
    """Whether anything of a store was created at ``address``."""
    location = store_location(address)
    if location.kind == "embedded":
        return Path(address).exists()
    engine = create_engine(location.target, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT to_regclass('meta') IS NOT NULL OR to_regclass('alembic_version') "
                "IS NOT NULL")).scalar_one())
    finally:
        engine.dispose()


def equipment_csv(tmp_path: Path, name: str, rows: list[int] | None = None) -> Path:
    """The equipment test file, all of it or only the rows numbered (2 = the first)."""
    every = f.equipment_rows()
    chosen = every if rows is None else [every[n - 2] for n in rows]
    return f.write_equipment_csv(tmp_path / name, rows=chosen)


CLEAN = [2, 3, 4, 15]      # every row loads
BAD = [5, 6, 7]            # every row is rejected


# a store is opened, not conjured --------------------------------------------------------------

def test_commands_on_a_missing_store_name_it_and_create_nothing(nowhere, tmp_path):
    for args in (["build"], ["export", "regions", "-o", tmp_path / "r.geojson"],
                 ["users", "list"], ["users", "add", "--role", "admin"],
                 ["users", "disable", "u-000000000000"], ["info"], ["status"], ["serve"]):
        result = cli(*args, "--store", nowhere)
        assert result.exit_code == 2, (args, result.output)
        assert shown(nowhere) in result.output, (args, result.output)
        assert "riskmap ingest FILES --store" in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert not exists(nowhere)
    assert not (tmp_path / "r.geojson").exists()


def test_an_unreachable_database_is_a_missing_store():
    url = "postgresql+psycopg://riskmap:secret@127.0.0.1:1/riskmap"
    result = cli("info", "--store", url)
    assert result.exit_code == 2
    assert "127.0.0.1:1/riskmap" in result.output and "secret" not in result.output
    assert "无法连接" in result.output


def test_build_and_export_refuse_an_empty_store(nowhere, tmp_path):
    open_store(nowhere, create=True).close()  # there, but nothing loaded
    for args in (["build"], ["export", "regions", "-o", tmp_path / "r.geojson"]):
        result = cli(*args, "--store", nowhere)
        assert result.exit_code == 2, (args, result.output)
        assert "存储是空的" in result.output and shown(nowhere) in result.output
        assert "riskmap ingest FILES --store" in result.output
    listed = cli("users", "list", "--store", nowhere)
    assert listed.exit_code == 0 and "没有用户" in listed.output
    assert "riskmap users add --role admin" in listed.output
    # an administrator adds users before the first delivery
    added = cli("users", "add", "--role", "regulator", "--scope", "4101", "--store", nowhere)
    assert added.exit_code == 0, added.output
    listed = cli("users", "list", "--store", nowhere)
    assert "\tregulator\t410100\t" in listed.output  # 4101 and 410100 are the same city


# exit codes scripts can trust -----------------------------------------------------------------

def test_ingest_exit_codes(nowhere, tmp_path):
    missing = cli("ingest", tmp_path / "nope.csv", "--store", nowhere)
    assert missing.exit_code == 2
    assert "nope.csv" in missing.output and "文件不存在" in missing.output
    assert "layers are now stale" not in missing.output
    assert not exists(nowhere)  # refused before any store was opened
    # a file whose kind is not recognised is refused: 2
    odd = tmp_path / "odd.csv"
    odd.write_text("甲,乙\n1,2\n", encoding="utf-8")
    result = cli("ingest", odd, "--store", nowhere)
    assert result.exit_code == 2, result.output
    assert "layers are now stale" not in result.output
    # every row rejected: 2, and nothing to rebuild
    result = cli("ingest", equipment_csv(tmp_path, "bad.csv", BAD), "--store", nowhere)
    assert result.exit_code == 2, result.output
    assert "layers are now stale" not in result.output
    # some rejected, the rest loaded: 1
    result = cli("ingest", equipment_csv(tmp_path, "all.csv"), "--store", nowhere)
    assert result.exit_code == 1, result.output
    assert "layers are now stale: riskmap build --store" in result.output
    # all loaded: 0
    result = cli("ingest", equipment_csv(tmp_path, "clean.csv", CLEAN), "--store", nowhere)
    assert result.exit_code == 0, result.output


def rows_of(address: str) -> dict[str, int]:
    with open_store(address) as store:
        return store.row_counts()


def test_strict_writes_nothing_when_a_row_is_rejected(nowhere, tmp_path):
    assert cli("ingest", equipment_csv(tmp_path, "clean.csv", CLEAN), "--store", nowhere
               ).exit_code == 0
    before = rows_of(nowhere)
    workbook = tmp_path / "rejects.xlsx"
    result = cli("ingest", equipment_csv(tmp_path, "all.csv"), "--strict", "--report-xlsx",
                 workbook, "--store", nowhere)
    assert result.exit_code == 2, result.output
    assert "layers are now stale" not in result.output and "严格模式" in result.output
    assert rows_of(nowhere) == before
    assert workbook.exists()
    # a clean file passes --strict
    result = cli("ingest", equipment_csv(tmp_path, "clean2.csv", CLEAN), "--strict",
                 "--store", nowhere)
    assert result.exit_code == 0, result.output


# export and info on a built store ------------------------------------------------------------

@pytest.fixture(params=STORES)
def built(request, tmp_path):
    """A store with the equipment test file loaded and built: its address."""
    if request.param == "embedded":
        address = str(tmp_path / "store")
    else:
        address = request.getfixturevalue("postgis_db_url")
    assert cli("ingest", equipment_csv(tmp_path, "eq.csv"), "--store", address
               ).exit_code == 1
    result = cli("build", "--as-of", AS_OF, "--store", address)
    assert result.exit_code == 0, result.output
    return address


def features(path: Path) -> list:
    return sorted(json.dumps(x, sort_keys=True) for x in
                  json.loads(path.read_text(encoding="utf-8"))["features"])


def test_export_takes_an_adcode_in_either_form(built, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    city = cli("export", "equipment", "--adcode", "410100", "-o", tmp_path / "a.geojson",
               "--store", built)
    assert city.exit_code == 0, city.output
    prefix = cli("export", "equipment", "--adcode", "4101", "-o", tmp_path / "b.geojson",
                 "--store", built)
    assert prefix.exit_code == 0, prefix.output
    rows = features(tmp_path / "a.geojson")
    assert rows and rows == features(tmp_path / "b.geojson")
    # without --out: a name stating layer, region and datum, in the current folder
    named = cli("export", "equipment", "--adcode", "4101", "--crs", "EPSG:4490", "--format",
                "gpkg", "--store", built)
    assert named.exit_code == 0, named.output
    assert (tmp_path / "equipment-410100-EPSG4490.gpkg").exists()
    nowhere = cli("export", "equipment", "--adcode", "4199", "--store", built)
    assert nowhere.exit_code == 2 and "4199" in nowhere.output
    bad = cli("export", "nolayer", "--store", built)
    assert bad.exit_code == 2 and "没有图层 nolayer" in flat(bad.output)
    assert "risk-cells" in bad.output
    bad = cli("export", "regions", "--format", "shp", "--store", built)
    assert bad.exit_code == 2 and "geojson、gpkg、csv" in flat(bad.output)


def test_info_shows_the_store_its_batches_build_and_staleness(built, tmp_path):
    result = cli("info", "--store", built)
    assert result.exit_code == 0, result.output
    out = result.output
    assert shown(built) in out
    assert re.search(r"大小 size: [\d.,]+ (B|KB|MB|GB)", out)
    assert "equipment 6" in out  # the six good rows
    assert "最近批次 last batch: " in out and "eq.csv" in out
    assert "图层 build: " in out and AS_OF in out and "图层为最新 layers are current" in out
    facts = json.loads(cli("info", "--json", "--store", built).output)
    assert facts["size_bytes"] > 0 and facts["tables"]["equipment"] == 6
    assert facts["last_batch"]["report"]["rejected"] > 0
    assert facts["build"]["as_of"] == AS_OF and facts["stale"] is False
    # a new batch: the layers are stale until the next build
    assert cli("ingest", equipment_csv(tmp_path, "more.csv", CLEAN), "--store", built
               ).exit_code == 0
    status = cli("status", "--store", built)
    assert status.exit_code == 0 and "图层已过期 layers are stale" in status.output
    assert "riskmap build --store" in status.output
    assert json.loads(cli("info", "--json", "--store", built).output)["stale"] is True


# choices and help ------------------------------------------------------------------------------

def test_an_unknown_role_lists_the_roles(tmp_path):
    result = cli("users", "add", "--role", "planer", "--store", tmp_path / "s")
    assert result.exit_code == 2
    assert "未知角色 planer；可选：regulator、grid_officer、park_admin、planner、admin" in flat(
        result.output), result.output


def _commands(command, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_every_option_has_help_and_every_help_fits_80_columns():
    for path, command in _commands(typer.main.get_command(app)):
        for param in command.params:
            assert getattr(param, "help", None), (path, param.name)
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
        assert result.exit_code == 0, (path, result.output)
        for line in result.output.splitlines():
            assert cell_len(line) <= 80, (path, line)
            assert "…" not in line, (path, line)  # nothing cut short
    usage = runner.invoke(app, ["--help"], env={"COLUMNS": "80"}).output
    assert "退出码 exit codes" in usage
    export = runner.invoke(app, ["export", "--help"], env={"COLUMNS": "80"}).output
    for choice in ("geojson", "gpkg", "EPSG:4490", "GCJ02", "risk-cells", "warnings"):
        assert choice in export
    assert "grid_officer" in runner.invoke(app, ["users", "add", "--help"],
                                           env={"COLUMNS": "80"}).output
