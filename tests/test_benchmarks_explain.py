"""PostGIS only: ``benchmarks.explain`` runs on the seeded demo (tiny sizes, one run each),
captures the service's own statements and records their plans."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from benchmarks import explain
from tests.conftest import _fill_demo

pytestmark = pytest.mark.postgis


@pytest.fixture(scope="module")
def demo_database(request: pytest.FixtureRequest, store_templates) -> Iterator[str]:
    filled = store_templates.copy("postgis", _fill_demo, request)
    yield make_url(filled.url).database
    store_templates.drop(filled.url)


@pytest.fixture(scope="module")
def report(demo_database: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("explain")
    assert explain.main(["--database", demo_database, "--runs", "1", "--out", str(out)]) == 0
    (written,) = out.glob("explain-*.json")
    assert written.with_suffix(".md").exists()
    return {"data": json.loads(written.read_text()), "md": written.with_suffix(".md"),
            "name": demo_database}


def _statements(report: dict, label: str) -> list[dict]:
    return report["data"]["results"][0]["requests"][label]["statements"]


def test_every_request_is_timed_and_its_statements_explained(report: dict) -> None:
    (result,) = report["data"]["results"]
    assert result["database"] == report["name"]
    assert result["facts"]["rows"]["layer_equipment"] > 1000
    assert set(result["requests"]) == {
        "tile equipment z8 admin", "tile risk-cells z8 admin", "tile equipment z10 admin",
        "tile risk-cells z10 admin", "tile equipment z12 dense admin",
        "tile equipment z12 sparse admin", "tile equipment z12 dense city",
        "tile equipment z14 dense admin", "tile equipment z14 sparse admin",
        "tile equipment z14 dense city", "tile risk-cells z12 dense city",
        "tile risk-cells z14 dense city", "tile equipment z10 officer",
        "tile equipment z14 officer", "items equipment bbox+level city",
        "items equipment bbox+level admin", "worklist officer", "worklist city"}
    for label, request in result["requests"].items():
        assert request["median_ms"] > 0, label
        assert request["statements"], label  # every request reads a large table
        for s in request["statements"]:
            assert s["plan"]["Plan"]["Node Type"] == s["top"]
            assert s["scans"], (label, s["sql"])
            assert set(s["tables"]) <= explain.LARGE_TABLES


def test_the_captured_statements_are_the_services(report: dict) -> None:
    tile = _statements(report, "tile equipment z14 sparse admin")
    assert any("ST_AsMVT" in s["sql"] and "ST_TileEnvelope" in s["sql"] for s in tile)
    counts = _statements(report, "tile equipment z8 admin")
    assert any("GROUP BY" in s["sql"] for s in counts)  # the whole-scope H3 counts
    items = _statements(report, "items equipment bbox+level city")
    # the page; before it the count, unless the page is short and shows the number
    assert [("count(*)" in s["sql"]) for s in items] in ([True, False], [False])
    assert all("LIKE" in s["sql"] and "ST_Intersects" in s["sql"] for s in items)
    officer = _statements(report, "worklist officer")
    layers = {t for s in officer for t in s["tables"]}
    assert {"layer_hazards", "layer_overdue", "layer_check_schedule"} <= layers
    assert all("json_array_elements_text" in s["sql"] for s in officer
               if s["tables"][0].startswith("layer_"))  # the officer's cells, one array


def test_markdown_summary(report: dict) -> None:
    text = report["md"].read_text()
    assert f"| {report['name']} |" in text
    assert "### worklist officer" in text and "## Requests (median ms)" in text


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        explain.main(["--database", "x", "--runs", "0", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        explain.main([])


def test_summarise_reads_scans_and_buffers() -> None:
    plan = {"Plan": {"Node Type": "Limit", "Actual Rows": 3, "Shared Hit Blocks": 7,
                     "Shared Read Blocks": 2, "Plans": [
                         {"Node Type": "Index Scan", "Relation Name": "t",
                          "Index Name": "ix_t_a", "Actual Rows": 3, "Actual Loops": 1},
                         {"Node Type": "Seq Scan", "Relation Name": "u", "Actual Rows": 1,
                          "Actual Loops": 2, "Rows Removed by Filter": 5}]},
            "Planning Time": 0.5, "Execution Time": 1.25}
    got = explain.summarise(plan)
    assert got["indexes"] == ["ix_t_a"] and got["seq_scans"] == ["u"]
    assert got["scans"][1]["rows"] == 2 and got["scans"][1]["removed"] == 5
    assert (got["shared_hit"], got["shared_read"], got["execution_ms"]) == (7, 2, 1.25)


def test_citus_tables_follow_the_province_column() -> None:
    plan = explain.citus_plan({"hazards": 50_000, "users": 3})
    assert {"equipment", "units", "layer_equipment", "layer_units", "layer_hazards",
            "layer_check_schedule"} <= set(plan["distributed"])
    assert {"users", "sessions", "layer_builds", "parks", "venues", "layer_regions",
            "hazards", "officer_cells"} <= set(plan["reference"])
    assert not set(plan["distributed"]) & set(plan["reference"])
    assert plan["large_without_province"] == ["hazards"]
    ddl = explain.citus_ddl()
    assert "SELECT create_distributed_table('layer_equipment', 'province_adcode', " \
           "colocate_with => 'equipment');" in ddl
    assert "ADD PRIMARY KEY (province_adcode, registration_code);" in ddl


def test_precounted_cells_give_the_same_counts(demo_database: str) -> None:
    got = explain.precount(demo_database, 1)
    assert got["summary_rows"] > 0
    for who in ("admin", "city"):
        assert got["scopes"][who]["cells"] > 0
        assert got["scopes"][who]["same"], who


def test_province_condition_is_a_comparison_not_a_selected_column() -> None:
    assert explain.province_condition(
        "SELECT fid FROM layer_units WHERE layer_units.province_adcode = %(p)s")
    assert explain.province_condition('SELECT 1 FROM t WHERE "province_adcode" LIKE %(p)s')
    assert not explain.province_condition(
        "SELECT layer_units.province_adcode, layer_units.h3 FROM layer_units "
        "WHERE layer_units.county_adcode LIKE %(c)s")
