"""Warnings point somewhere: on the seeded demo the warned counties are the planted troubled
ones (MANIFEST ``troubled_counties``), precision and recall both at least 0.8.

The demo (50,000 pieces, seed 7, as in ``riskmap demo``) is ingested into an embedded store
and the warnings are built from what the store holds, as of the MANIFEST's ``as_of``, exactly
as ``riskmap build`` builds that layer (:func:`layers.builders.warnings` on a
:class:`layers.builders.Build`)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

EQUIPMENT, SEED = 50_000, 7


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from data.demo import generate
    from layers.builders import Build
    from layers.builders import warnings as build_warnings
    from layers.rules import Rules
    from service.build import read_inputs
    from service.ingest.pipeline import IngestOptions
    from service.ingest.pipeline import ingest as run_ingest
    from service.store import open_store

    root = tmp_path_factory.mktemp("warning-precision")
    files = root / "files"
    manifest = generate(province="河南省", equipment=EQUIPMENT, seed=SEED, out=files)
    store = open_store(root / "store", create=True)
    run_ingest(sorted(str(p) for p in files.iterdir() if p.name != "MANIFEST.json"), store,
               IngestOptions(provinces=[manifest["province"]["adcode"]]))
    as_of = date.fromisoformat(manifest["as_of"])
    build = Build(read_inputs(store, [manifest["province"]["adcode"]], as_of), Rules())
    return {"manifest": manifest, "warnings": build_warnings(build), "regions": build.regions,
            "written": json.loads(Path(files / "MANIFEST.json").read_text(encoding="utf-8"))}


def test_manifest_names_the_troubled_counties(demo: dict) -> None:
    troubled = demo["written"]["troubled_counties"]
    assert troubled == demo["manifest"]["troubled_counties"]
    assert 5 <= len(troubled) <= 10
    counties = demo["regions"].query("admin_level == 'county'")
    assert {t["adcode"] for t in troubled} <= set(counties["adcode"])
    assert all(t["name"] and t["planted"] and t["what"] for t in troubled)
    planted = {t["planted"] for t in troubled}
    assert {"overdue", "late_rectification"} <= {p for kind in planted for p in kind.split("+")}
    # every troubled area's main county is listed
    assert {a["county_adcode"] for a in demo["written"]["troubled_areas"]} <= {
        t["adcode"] for t in troubled}


def test_warned_counties_are_the_troubled_ones(demo: dict) -> None:
    w = demo["warnings"]
    truth = {t["adcode"] for t in demo["manifest"]["troubled_counties"]}
    warned = set(w.loc[w["admin_level"] == "county", "adcode"])
    hit = len(truth & warned)
    precision = hit / len(warned) if warned else 0.0
    recall = hit / len(truth)
    print(f"\nwarned counties {len(warned)}, troubled {len(truth)}, precision {precision:.2f}, "
          f"recall {recall:.2f}; warned cities "
          f"{int((w['admin_level'] == 'city').sum())}")
    assert precision >= 0.8, sorted(warned - truth)
    assert recall >= 0.8, sorted(truth - warned)


def test_warnings_discriminate(demo: dict) -> None:
    """A warning points somewhere: few counties and cities, not nearly all of them."""
    w, r = demo["warnings"], demo["regions"]
    for level in ("county", "city"):
        warned = int((w["admin_level"] == level).sum())
        assert warned <= 0.4 * int((r["admin_level"] == level).sum()), level


def test_rate_messages_say_rate_reference_size_and_test(demo: dict) -> None:
    w = demo["warnings"]
    triggers = [t for s in w["triggers"] for t in json.loads(s)]
    rates = [t for t in triggers if t.get("basis") == "ratio"]
    assert rates
    for t in rates:
        assert t["ratio"] >= 1.5 and t["q_value"] <= 0.01 and t["n"] > 0 and t["count"] >= 3
    county = w[w["admin_level"] == "county"]
    text = "；".join(county["message"])
    assert "为全省" in text and "倍" in text and "在用" in text and "p<" in text
    assert not pd.Series(county["message"]).str.contains("nan").any()
