"""The one entry point: demo → ingest (with --report) on the embedded store."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from service.cli import app
from service.store import open_store

runner = CliRunner()


def empty_store(tmp_path) -> str:
    """A store that exists and holds nothing (as an administrator's before the first
    ingest): only ingest and demo create one."""
    path = str(tmp_path / "s")
    open_store(path, create=True).close()
    return path


def test_demo_then_ingest_writes_the_report(tmp_path):
    out, store, report = tmp_path / "demo", tmp_path / "store", tmp_path / "report.json"
    result = runner.invoke(app, ["demo", "--equipment", "600", "--seed", "3", "--out", str(out),
                                 "--store", str(store)])
    assert result.exit_code == 0, result.output
    # one demo user per role, each token printed once and stored only as a hash
    tokens = re.findall(r"rmk_[A-Za-z0-9_\-]{40,}", result.output)
    assert len(tokens) == 5
    listed = runner.invoke(app, ["users", "list", "--store", str(store)]).output
    for role in ("regulator", "grid_officer", "park_admin", "planner", "admin"):
        assert role in listed
    assert not any(t in (store / "users.json").read_text() for t in tokens)
    files = sorted(str(p) for p in out.iterdir() if p.suffix != ".json")
    result = runner.invoke(app, ["ingest", *files, "--store", str(store), "--report",
                                 str(report)])
    assert result.exit_code == 1, result.output  # the demo's bad rows rejected, the rest loaded
    assert "inserted" in result.output and "拒收" in result.output
    body = json.loads(report.read_text(encoding="utf-8"))
    for key in ("files", "read", "inserted", "updated", "unchanged", "rejected", "rejects",
                "by_reason"):
        assert key in body
    assert body["inserted"] > 0 and body["rejected"] > 0
    assert set(body["rejects"][0]) >= {"file", "row", "field", "reason"}
    assert len(body["files"]) == len(files)


def test_unknown_datum_on_the_command_line_is_refused(tmp_path):
    result = runner.invoke(app, ["ingest", str(tmp_path / "x.csv"), "--crs", "Beijing54",
                                 "--store", str(tmp_path / "s")])
    assert result.exit_code != 0
    assert "Beijing54" in result.output


def test_users_add_prints_the_token_alone_on_its_last_line(tmp_path):
    store = empty_store(tmp_path)
    result = runner.invoke(app, ["users", "add", "--role", "regulator", "--scope", "410100",
                                 "--name", "郑州市局", "--store", store])
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    assert re.fullmatch(r"rmk_[A-Za-z0-9_\-]{40,}", last)


def test_users_add_refuses_bad_roles_and_scopes(tmp_path):
    store = empty_store(tmp_path)
    for args, words in ((["--role", "king"], "未知角色"),
                        (["--role", "regulator", "--scope", "999999"], "行政区划代码"),
                        (["--role", "regulator"], "须指定范围"),
                        (["--role", "admin", "--scope", "410000"], "不设范围"),
                        (["--role", "park_admin", "--scope", "a b"], "有效的编号")):
        result = runner.invoke(app, ["users", "add", *args, "--store", store])
        assert result.exit_code != 0 and words in result.output, (args, result.output)


def test_users_disable_turns_a_token_away(tmp_path):
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    store = empty_store(tmp_path)
    added = runner.invoke(app, ["users", "add", "--role", "admin", "--store", store])
    token = added.output.strip().splitlines()[-1]
    user_id = re.search(r"u-[0-9a-f]{12}", added.output).group(0)
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(Settings(store=store))) as client:
        assert client.get("/api/layers", headers=auth).status_code == 200
    result = runner.invoke(app, ["users", "disable", user_id, "--store", store])
    assert result.exit_code == 0 and "已停用" in result.output, result.output
    assert "已停用" in runner.invoke(app, ["users", "list", "--store", store]).output
    with TestClient(create_app(Settings(store=store))) as client:
        assert client.get("/api/layers", headers=auth).status_code == 401
    unknown = runner.invoke(app, ["users", "disable", "u-nobody", "--store", store])
    assert unknown.exit_code != 0 and "没有用户" in unknown.output
