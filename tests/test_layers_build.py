"""End to end on the seeded demo province: demo → ingest → build → every layer stored, on
both stores; the planted regional problems are found; totals agree across layers."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from data.demo import generate
from layers.build import build_layers
from layers.registry import ALL, LAYERS
from layers.rules import Rules
from service.build import read_inputs, run_build
from service.ingest.pipeline import IngestOptions, ingest
from service.store.conform import conform_layer

pytestmark = pytest.mark.slow
AS_OF = date(2026, 11, 1)
PROVINCES = ["410000", "610000"]


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("layers_demo")
    generate(province="河南省", equipment=20_000, seed=11, out=out, as_of=AS_OF)
    return out, json.loads((out / "MANIFEST.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module",
                params=["embedded", pytest.param("postgis", marks=pytest.mark.postgis)])
def built(request, demo, tmp_path_factory):
    """The demo ingested and built once per store kind (the tests below only read)."""
    out, manifest = demo
    if request.param == "postgis":
        from service.store.postgis import PostGISStore

        server = request.getfixturevalue("postgis_server")
        template = request.getfixturevalue("postgis_template")
        name = f"{template}_layers"
        store = PostGISStore(server.create_database(name, template=template))
    else:
        from service.store.embedded import EmbeddedStore

        store = EmbeddedStore(tmp_path_factory.mktemp("layers_store") / "store")
    files = sorted(str(p) for p in out.iterdir() if p.name != "MANIFEST.json")
    ingest(files, store, IngestOptions(h3_resolution=8, provinces=PROVINCES))
    build = run_build(store, PROVINCES, as_of=AS_OF)
    yield store, build, manifest
    store.close()
    if request.param == "postgis":
        server.drop_database(name)


def test_every_layer_is_stored_with_its_fields_and_the_build_is_recorded(built):
    store, build, _ = built
    assert store.layer_build().build_id == build.build_id
    assert store.layer_build().rules_hash == Rules().fingerprint()
    assert store.layer_build().data_version == store.data_version()
    for lid, spec in ALL.items():
        frame = store.read_layer(lid)
        assert list(frame.columns[:len(spec.fields) + 1]) == ["fid", *spec.field_names], lid
        assert frame["fid"].is_unique, lid
        assert len(frame) == build.report["rows"][lid], lid
        if spec.geometry:
            assert frame.crs.to_epsg() == 4326
    for lid in ("equipment", "units", "risk-cells", "regions", "hazards", "parks"):
        assert len(store.read_layer(lid)) > 0, lid


def test_stored_layers_equal_what_the_build_computed(built):
    store, _, _ = built
    result = build_layers(read_inputs(store, PROVINCES, AS_OF), Rules())
    for lid in ALL:  # computing again gives the same layers: the build is deterministic
        expected = conform_layer(lid, result.frames[lid])
        stored = store.read_layer(lid).sort_values("fid").reset_index(drop=True)
        expected = expected.sort_values("fid").reset_index(drop=True)
        plain = [c for c in stored.columns if c != "geometry"]
        pd.testing.assert_frame_equal(pd.DataFrame(stored[plain]), pd.DataFrame(expected[plain]),
                                      check_exact=False, rtol=1e-9, obj=lid)
        if ALL[lid].geometry:
            same = shapely.equals_exact(stored.geometry.to_numpy(),
                                        expected.geometry.to_numpy(), tolerance=1e-9)
            empty = stored.geometry.isna().to_numpy() & expected.geometry.isna().to_numpy()
            assert (same | empty).all(), lid




def test_the_planted_regional_problems_are_hotspots(built):
    store, _, manifest = built
    hot = store.read_layer("hotspots")
    assert len(hot) > 0 and hot["regional"].any()
    areas = [a for a in manifest["troubled_areas"] if a["pieces"] >= 40]
    assert areas, manifest["troubled_areas"]
    for area in areas:
        centre = shapely.Point(area["lon"], area["lat"])
        # within the planted radius plus a res-7 cell's width (~2.6 km): ~0.05°
        near = shapely.distance(hot.geometry.to_numpy(), centre) < 0.05
        assert near.any(), area


def test_totals_agree_across_layers(built):
    store, build, _ = built
    eq = store.read_layer("equipment")
    graded = eq[eq["level_rank"] > 0]
    cells = store.read_layer("risk-cells")
    for res in range(5, 10):
        at = cells[cells["resolution"] == res]
        assert at["equipment"].sum() == len(graded), res
        for lv in ("red", "orange", "yellow", "blue"):
            assert at[f"n_{lv}"].sum() == (graded["level"] == lv).sum()
        assert at["open_hazards"].sum() == eq["open_hazards"].sum()  # on any piece
    regions = store.read_layer("regions")
    province = regions[regions["admin_level"] == "province"].set_index("adcode")
    counties = regions[regions["admin_level"] == "county"]
    sums = counties.groupby("parent_adcode")["equipment"].sum()
    cities = regions[regions["admin_level"] == "city"].set_index("adcode")
    assert (cities["equipment"] >= sums.reindex(cities.index).fillna(0)).all()
    assert province.loc["410000", "equipment"] == len(graded[graded["province_adcode"]
                                                             == "410000"])
    assert sum(build.report["levels"].values()) == len(graded)
    units = store.read_layer("units")
    assert units["credit_code"].is_unique
    assert set(eq["unit_credit_code"].dropna()) <= set(units["credit_code"])


def test_layers_say_why(built):
    store, _, _ = built
    eq = store.read_layer("equipment")
    graded = eq[eq["level_rank"] > 0]
    assert graded[["L_reason", "E_reason", "C_reason", "lec_band"]].notna().all().all()
    assert np.allclose(graded["D"], graded["L"] * graded["E"] * graded["C"])
    red_by_hazard = graded[graded["open_major_hazards"] > 0]
    assert (red_by_hazard["level"] == "red").all()
    freq = store.read_layer("frequency")
    assert freq["boosted"].all() and freq["reasons"].str.len().gt(0).all()
    parks = store.read_layer("parks")
    assert parks["rank"].min() == 1 and parks["measures"].map(json.loads).map(len).gt(0).any()
    coverage = store.read_layer("demonstration-coverage")
    demo = store.read_layer("demonstration")
    assert (demo.groupby(["city_adcode", "top_category"]).size() <= 2).all()
    assert len(coverage) > 0 and (coverage["chosen"] == 0).eq(coverage["gap"]).all()


def test_demonstration_enterprises_are_enterprises_and_each_fact_boosts_once(built):
    store, _, _ = built
    eq = store.read_layer("equipment")
    holders = eq.loc[eq["in_use"].fillna(False).astype(bool), "unit_credit_code"].dropna()
    assert (~holders.str.startswith("9")).any()  # the demo's courts and schools hold equipment
    demo = store.read_layer("demonstration")
    assert len(demo) > 0 and demo["credit_code"].str.startswith("9").all()
    schedule = store.read_layer("check-schedule")
    facts = schedule["boosts"].map(json.loads)
    assert (facts.map(len) == facts.map(set).map(len)).all()
    assert (schedule["boost_steps"] == facts.map(len)).all()  # default: one step per fact
    assert facts.map(lambda f: "late_rectification" in f).any()
    hot = store.read_layer("hotspots")
    assert (hot["late_general_hazards"] >= 0).all()


def test_every_registry_layer_has_a_builder():
    assert set(LAYERS) <= set(ALL)
    assert {"equipment", "units", "risk-cells", "regions", "industries", "grid-cells",
            "hotspots", "frequency", "demonstration", "parks", "venues", "hazards", "overdue",
            "blacklist", "insurance", "warnings"} == set(LAYERS)


def test_a_second_build_replaces_the_first(built):  # last: it changes the stored build
    store, first, _ = built
    second = run_build(store, PROVINCES, as_of=date(2026, 12, 1))
    assert store.layer_build().build_id == second.build_id != first.build_id
    assert store.layer_build().as_of == date(2026, 12, 1)
    # a month later more equipment is overdue, never less
    assert len(store.read_layer("overdue")) >= first.report["rows"]["overdue"]


def test_red_or_orange_cells_are_about_as_common_as_red_or_orange_equipment(built):
    """Issue 13 §2: at every resolution the share of red-or-orange cells (by the cell's
    level, not its worst piece) is within a factor of two of that share of equipment."""
    store, _, _ = built
    levels = store.read_layer("equipment", ["level"])["level"].dropna()
    pieces = levels.isin(["red", "orange"]).mean()
    cells = store.read_layer("risk-cells", ["resolution", "level"])
    for res in range(5, 10):
        at = cells.loc[(cells["resolution"] == res).to_numpy(), "level"].dropna()
        share = at.isin(["red", "orange"]).mean()
        assert pieces / 2 <= share <= pieces * 2, (res, share, pieces)
