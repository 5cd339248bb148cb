"""End to end on the seeded demo province: every planted bad row is rejected for its
reason, nothing else is, and every good row lands — on both stores."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from data.demo import generate
from service.ingest.pipeline import IngestOptions, ingest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo")
    generate(province="河南省", equipment=4000, seed=7, out=out)
    return out, json.loads((out / "MANIFEST.json").read_text(encoding="utf-8"))


def _files(out: Path) -> list[str]:
    return sorted(str(p) for p in out.iterdir() if p.name != "MANIFEST.json")


def test_demo_ingest_rejects_exactly_the_planted_rows(store, demo):
    out, manifest = demo
    report = ingest(_files(out), store, IngestOptions())
    got: dict[tuple[str, int], set[str]] = defaultdict(set)
    for r in report["rejects"]:
        got[(Path(r["file"]).name, r["row"])].add(r["code"])
    planted: dict[tuple[str, int], str] = {}
    for name, spec in manifest["bad_rows"].items():
        for file, rows in spec["rows"].items():
            for row in rows:
                planted[(file, row)] = spec["reason"]
                assert spec["reason"] in got.get((file, row), set()), (name, file, row)
    extra = {k: v for k, v in got.items() if k not in planted}
    assert not extra, f"valid rows rejected: {sorted(extra.items())[:10]}"
    counts = manifest["counts"]
    assert len(store.read("equipment")) == counts["equipment_good"]
    assert len(store.read("units")) == counts["units"]
    assert len(store.read("hazards")) == counts["hazards"]
    assert len(store.read("checks")) == counts["checks"]
    assert len(store.read("parks")) == counts["parks"]
    assert len(store.read("venues")) == counts["venues"]
    assert len(store.read("officers")) == counts["officers"]
    assert report["by_flag"].get("lonlat_swapped", 0) >= 1
    assert report["by_flag"].get("geocoded_county", 0) >= 1


def test_demo_ingest_is_idempotent_and_links_parks(store, demo):
    out, _ = demo
    first = ingest(_files(out), store, IngestOptions())
    again = ingest(_files(out), store, IngestOptions())
    assert again["inserted"] == 0 and again["updated"] == 0
    assert again["unchanged"] == first["inserted"]
    eq = store.read("equipment")
    assert eq["park_id"].notna().mean() > 0.05     # parks hold a share of the equipment
    assert eq["venue_id"].notna().sum() > 0
    assert set(eq["province_adcode"].dropna()) == {"410000"}
    assert eq["geometry"].notna().all()
    counts = store.cell_counts(7)
    assert counts["count"].sum() == len(eq)


def _planted(out: Path, manifest: dict) -> set[tuple[str, int]]:
    return {(str(out / file), row) for spec in manifest["bad_rows"].values()
            for file, rows in spec["rows"].items() for row in rows}


def test_two_provinces_files_load_as_one_batch(store, demo, tmp_path):
    """Two provinces' demo files in one batch: no code or record number of one is the
    other's, so the rejects are each province's planted rows and nothing else, and the
    counts add up (the benchmarks' several-province runs rely on it)."""
    out, manifest = demo
    other = tmp_path / "shaanxi"
    generate(province="陕西省", equipment=2000, seed=8, out=other)
    second = json.loads((other / "MANIFEST.json").read_text(encoding="utf-8"))
    report = ingest(_files(out) + _files(other), store, IngestOptions())
    got = {(r["file"], r["row"]) for r in report["rejects"]}
    assert got == _planted(out, manifest) | _planted(other, second)
    for table in ("equipment_good", "units", "hazards", "checks", "officers"):
        name = "equipment" if table == "equipment_good" else table
        assert len(store.read(name)) == manifest["counts"][table] + second["counts"][table]
    hazards = store.read("hazards")["hazard_id"].astype(str)
    assert set(hazards.str[:4]) == {"YH41", "YH61"}
