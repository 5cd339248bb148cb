"""The one entry point: demo → ingest (with --report) on the embedded store."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from service.cli import app

runner = CliRunner()


def test_demo_then_ingest_writes_the_report(tmp_path):
    out, store, report = tmp_path / "demo", tmp_path / "store", tmp_path / "report.json"
    result = runner.invoke(app, ["demo", "--equipment", "600", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    files = sorted(str(p) for p in out.iterdir() if p.suffix != ".json")
    result = runner.invoke(app, ["ingest", *files, "--store", str(store), "--report",
                                 str(report)])
    assert result.exit_code == 0, result.output
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
