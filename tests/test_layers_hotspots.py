"""Serious-hazard hotspots (区域性或者普遍严重事故隐患) on small hand-built frames."""

from __future__ import annotations

from datetime import date

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from scipy.stats import norm, poisson

from layers.hotspots import (
    CELL_COLUMNS,
    LAYER_COLUMNS,
    UNIT_COLUMNS,
    WIDESPREAD_COLUMNS,
    HotspotRules,
    HotspotSums,
    analysis_cells,
    benjamini_hochberg,
    gi_star,
    gi_star_cells,
    gi_star_cells_from,
    hotspot_cells,
    hotspot_cells_from,
    hotspot_units,
    hotspot_units_from,
    k_ring_pairs,
    late_general_hazards,
    poisson_excess,
    serious_hazards,
    widespread,
    widespread_from,
)

AS_OF = date(2026, 11, 1)
RULES = HotspotRules()
C0 = h3.latlng_to_cell(34.7, 113.6, 7)  # a res-7 cell in Zhengzhou


def u64(cells: list[str]) -> np.ndarray:
    return np.asarray([int(c, 16) for c in cells], dtype=np.uint64)


def hazards(rows: list[dict]) -> pd.DataFrame:
    """Hazard rows; unspecified fields get a closed 一般 hazard found 2026-06-01."""
    base = {"hazard_id": None, "registration_code": None,
            "found_on": pd.Timestamp("2026-06-01"), "level": "一般", "status": "已销号",
            "deadline": pd.NaT, "closed_on": pd.NaT}
    frame = pd.DataFrame([{**base, "hazard_id": f"H{i:03d}", **r} for i, r in enumerate(rows)],
                         columns=list(base))
    for col in ("hazard_id", "registration_code", "level", "status"):
        frame[col] = frame[col].astype("string")
    for col in ("found_on", "deadline", "closed_on"):
        frame[col] = pd.to_datetime(frame[col]).astype("datetime64[s]")
    return frame


NO_HAZARDS = hazards([])


def major(code: str, **kw) -> dict:
    return {"registration_code": code, "level": "重大", **kw}


def pieces(cell: str, n: int, *, prefix: str | None = None, unit: str | None = "U1",
           county: str | None = "410102", category: str = "3000", in_use: bool = True,
           h3_col: bool = False) -> pd.DataFrame:
    """``n`` pieces at the centre of ``cell`` (res 7); h3 (res 8) filled when ``h3_col``."""
    lat, lon = h3.cell_to_latlng(cell)
    prefix = prefix or cell
    child = h3.cell_to_center_child(cell, 8) if h3_col else None
    return pd.DataFrame({
        "registration_code": [f"{prefix}-{i}" for i in range(n)],
        "unit_credit_code": pd.array([unit] * n, dtype="string"),
        "h3": pd.array([child] * n, dtype="string"), "lon": [lon] * n, "lat": [lat] * n,
        "county_adcode": pd.array([county] * n, dtype="string"),
        "top_category": pd.array([category] * n, dtype="string"), "in_use": [in_use] * n})


def equipment(*parts: pd.DataFrame) -> pd.DataFrame:
    out = pd.concat(parts, ignore_index=True)
    out["registration_code"] = out["registration_code"].astype("string")
    return out


# --------------------------------------------------------------------------- rules

def test_rules_defaults() -> None:
    r = HotspotRules()
    assert (r.resolution, r.k, r.alpha, r.fdr, r.lookback_days, r.min_equipment, r.test,
            r.own_excess, r.widespread_share, r.widespread_min_units) == (
        7, 1, 0.05, True, 365, 5, "poisson", True, 0.10, 3)
    for name, field in HotspotRules.model_fields.items():
        assert field.description, name


@pytest.mark.parametrize("bad", [
    {"resolution": 4}, {"resolution": 10}, {"k": 0}, {"k": 4}, {"alpha": 0}, {"alpha": 1},
    {"alpha": -0.1}, {"lookback_days": 0}, {"lookback_days": -5}, {"min_equipment": 0},
    {"widespread_share": 0}, {"widespread_share": 1.5}, {"widespread_min_units": 0},
    {"test": "t"}, {"test": None}, {"unknown": 1},
])
def test_rules_refuse_nonsense(bad: dict) -> None:
    with pytest.raises(ValidationError):
        HotspotRules(**bad)


def test_rules_frozen() -> None:
    with pytest.raises(ValidationError):
        RULES.k = 2  # type: ignore[misc]


# --------------------------------------------------------------------------- serious hazards

def _which_count() -> pd.DataFrame:
    return hazards([
        major("A", status="已销号", found_on="2026-06-01"),               # 0 recent major
        major("B", status="已销号", found_on="2025-06-01"),               # 1 old, closed: no
        major("C", status="整改中", found_on="2024-01-01"),               # 2 old but open
        {"registration_code": "D", "status": "已登记", "deadline": "2026-10-31"},  # 3 late
        {"registration_code": "E", "status": "整改中", "deadline": "2026-11-01"},  # 4 due today
        {"registration_code": "F", "status": "已销号", "deadline": "2026-01-01"},  # 5 closed
        major("G", status="已登记", found_on="2026-11-02"),               # 6 future: no
        major("H", found_on="2025-11-01"),                                 # 7 365 days: yes
        major("I", found_on="2025-10-31"),                                 # 8 366 days: no
        {"registration_code": "J", "status": "已登记", "deadline": None},  # 9 no deadline
        major("K", status="整改中", found_on=None),                        # 10 undated, open
        major("L", status="整改中", found_on="2026-10-01", deadline="2026-10-15"),  # 11
        {"registration_code": "M", "status": "整改中", "found_on": "2026-11-02",
         "deadline": "2026-10-31"},                                        # 12 future: no
        major("N", status="已销号", found_on="2024-01-01", deadline="2024-02-01"),  # 13
    ])


def test_serious_hazards_are_the_major_grade() -> None:
    """严重事故隐患 are 重大 hazards, as the law means them: recent or still open (挂牌督办). A
    一般 hazard past its deadline (3) is an overdue rectification, not serious."""
    h = _which_count()
    s = serious_hazards(h, AS_OF, RULES)
    assert s["hazard_id"].tolist() == ["H000", "H002", "H007", "H010", "H011"]
    assert s["rule"].tolist() == ["major_recent", "major_open", "major_recent", "major_open",
                                  "major_recent"]
    assert (s["level"] == "重大").all()
    assert s["why"].iloc[0] == "近365天内发现的重大隐患"
    assert s["why"].iloc[1] == "重大隐患尚未销号（挂牌督办中）"
    assert s["why"].dtype == "string"
    assert set(h.columns) < set(s.columns)


def test_late_general_hazards_are_overdue_rectifications() -> None:
    h = _which_count()
    late = late_general_hazards(h, AS_OF)
    # D: 一般, open, deadline passed. Not E (due today), F (closed), J (no deadline), M
    # (found after as_of), nor the 重大 ones past their deadline (L, N): those are serious
    assert late["hazard_id"].tolist() == ["H003"]
    assert late["rule"].tolist() == ["general_past_deadline"]
    assert late["why"].tolist() == ["一般隐患超过整改期限仍未销号（逾期整改）"]
    assert not set(late["hazard_id"]) & set(serious_hazards(h, AS_OF, RULES)["hazard_id"])
    empty = late_general_hazards(NO_HAZARDS, AS_OF)
    assert len(empty) == 0 and {"hazard_id", "rule", "why"} <= set(empty.columns)


def test_serious_hazards_lookback_is_a_knob() -> None:
    h = hazards([major("A", found_on="2026-09-01")])  # 61 days before as_of
    assert len(serious_hazards(h, AS_OF, HotspotRules(lookback_days=61))) == 1
    assert len(serious_hazards(h, AS_OF, HotspotRules(lookback_days=60))) == 0


def test_serious_hazards_empty() -> None:
    s = serious_hazards(NO_HAZARDS, AS_OF, RULES)
    assert len(s) == 0
    assert {"hazard_id", "rule", "why"} <= set(s.columns)


# --------------------------------------------------------------------------- cells, pairs

def test_analysis_cells_from_h3_or_lonlat() -> None:
    c = h3.grid_disk(C0, 1)
    eq = equipment(pieces(c[0], 1, h3_col=True), pieces(c[1], 1))
    eq.loc[1, "h3"] = pd.NA
    eq.loc[2] = eq.loc[1]
    eq.loc[2, ["lon", "lat"]] = np.nan  # nowhere
    cells = analysis_cells(eq, 7)
    assert cells.tolist() == [int(c[0], 16), int(c[1], 16), 0]
    # resolution 9 is finer than the stored h3: from lon/lat
    fine = analysis_cells(eq, 9)
    lat, lon = h3.cell_to_latlng(c[0])
    assert fine[0] == int(h3.latlng_to_cell(lat, lon, 9), 16)


def test_analysis_cells_prefers_stored_h3() -> None:
    eq = pieces(C0, 1, h3_col=True)
    far = h3.cell_to_latlng(h3.grid_ring(C0, 3)[0])
    eq.loc[0, ["lat", "lon"]] = far  # disagreeing lon/lat: the stored h3 wins
    assert analysis_cells(eq, 7).tolist() == [int(C0, 16)]


def test_k_ring_pairs() -> None:
    ring = sorted(h3.grid_disk(C0, 1))
    far = h3.grid_ring(C0, 3)[0]
    cells = np.sort(u64([*ring, far]))
    i, j = k_ring_pairs(cells, 1)
    pairs = set(zip(i.tolist(), j.tolist(), strict=True))
    centre = int(np.searchsorted(cells, int(C0, 16)))
    lone = int(np.searchsorted(cells, int(far, 16)))
    assert sum(1 for a, _ in pairs if a == centre) == 7      # itself + 6 neighbours
    assert {b for a, b in pairs if a == lone} == {lone}      # nobody near: only itself
    assert all((b, a) in pairs for a, b in pairs)            # symmetric
    assert len(k_ring_pairs(np.zeros(0, dtype=np.uint64), 1)[0]) == 0


# --------------------------------------------------------------------------- Gi*

def test_gi_star_by_hand() -> None:
    # A and B neighbours, C alone; x = (1, 0, 0): x̄ = 1/3, s = √2/3, W = (2, 2, 1)
    # z_A = (1 − 2/3) / (√2/3 · √((3·2 − 4)/2)) = 1/√2; z_B the same; z_C = −1/√2
    i = np.array([0, 0, 1, 1, 2])
    j = np.array([0, 1, 0, 1, 2])
    z = gi_star(np.array([1.0, 0.0, 0.0]), i, j)
    assert z == pytest.approx([2 ** -0.5, 2 ** -0.5, -(2 ** -0.5)])


def test_gi_star_undefined() -> None:
    i = j = np.array([0, 1])
    assert np.isnan(gi_star(np.array([0.3, 0.3]), i, j)).all()     # no variance
    assert np.isnan(gi_star(np.array([0.3]), i[:1], j[:1])).all()  # one value
    # every cell a neighbour of every other: W_i = n, nothing to compare with
    full_i, full_j = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    assert np.isnan(gi_star(np.array([0.1, 0.5]), full_i, full_j)).all()


def test_poisson_excess_by_hand() -> None:
    # A and B neighbours, C alone; equipment (10, 10, 20)
    i = np.array([0, 0, 1, 1, 2])
    j = np.array([0, 1, 0, 1, 2])
    equipment_n = np.array([10, 10, 20])
    # hazards (3, 0, 1): global rate 4/40 = 0.1; O = (3, 3, 1), E = 0.1 × (20, 20, 20) = 2
    # P(X ≥ 3 | 2) = 1 − e⁻²(1 + 2 + 2) = 1 − 5e⁻²; P(X ≥ 1 | 2) = 1 − e⁻²
    p = poisson_excess(np.array([3, 0, 1]), equipment_n, i, j)
    assert p == pytest.approx([1 - 5 * np.exp(-2), 1 - 5 * np.exp(-2), 1 - np.exp(-2)])
    # hazards (0, 0, 2): rate 0.05; O = (0, 0, 2), E = (1, 1, 1); nothing observed → p = 1
    # P(X ≥ 2 | 1) = 1 − e⁻¹(1 + 1) = 1 − 2/e
    p = poisson_excess(np.array([0, 0, 2]), equipment_n, i, j)
    assert p == pytest.approx([1.0, 1.0, 1 - 2 / np.e])
    # no hazards anywhere: nothing is in excess
    assert poisson_excess(np.zeros(3, dtype=np.int64), equipment_n, i, j).tolist() == [1.0] * 3


@pytest.mark.parametrize("k", [1, 2])
def test_gi_star_cells_matches_esda(k: int) -> None:
    """z-scores agree with esda.G_Local(star=True, transform="B") to 1e-6, on a W built
    independently from h3.grid_disk; the default p is the exact Poisson upper tail of the
    same neighbourhood sum, ``test="normal"`` gives Gi*'s normal p."""
    esda = pytest.importorskip("esda")
    libpysal = pytest.importorskip("libpysal")
    rng = np.random.default_rng(7)
    cells = sorted(h3.grid_disk(C0, 4))
    cells = [c for c in cells if rng.random() < 0.8]  # holes: absent neighbours
    parts, rows = [], []
    for c in cells:
        n = int(rng.integers(5, 30))
        parts.append(pieces(c, n))
        rows += [{"registration_code": f"{c}-{p}", "level": "重大"}
                 for p in range(int(rng.integers(0, n + 1)))]
    eq, hz = equipment(*parts), hazards(rows)
    got = gi_star_cells(eq, hz, AS_OF, HotspotRules(k=k))
    normal = gi_star_cells(eq, hz, AS_OF, HotspotRules(k=k, test="normal"))
    assert got["h3"].tolist() == cells
    present = set(cells)
    neighbours = {c: [d for d in h3.grid_disk(c, k) if d in present and d != c]
                  for c in cells}
    w = libpysal.weights.W(neighbours, id_order=cells, silence_warnings=True)
    g = esda.G_Local(got["rate"].to_numpy(), w, transform="B", star=True, permutations=0)
    np.testing.assert_allclose(got["gi_star"].to_numpy(), g.Zs, rtol=0, atol=1e-6)
    assert got["neighbours"].tolist() == [len(neighbours[c]) + 1 for c in cells]
    # Gi*'s normal approximation, upper tail
    np.testing.assert_allclose(normal["gi_star"].to_numpy(), g.Zs, rtol=0, atol=1e-6)
    np.testing.assert_allclose(normal["p_value"], norm.sf(g.Zs), rtol=1e-9)
    # default: O = serious hazards in the k-ring, E = global rate × equipment in the k-ring
    by_cell = got.set_index("h3")
    haz, eqn = by_cell["serious_hazards"].astype(int), by_cell["equipment"].astype(int)
    rate = haz.sum() / eqn.sum()
    observed = np.array([sum(haz[d] for d in [c, *neighbours[c]]) for c in cells])
    expected = np.array([rate * sum(eqn[d] for d in [c, *neighbours[c]]) for c in cells])
    assert (observed > 0).all()
    np.testing.assert_allclose(got["p_value"], poisson.sf(observed - 1, expected), rtol=1e-9)


def test_benjamini_hochberg_by_hand() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.2, np.nan])
    # sorted 0.01, 0.03, 0.04, 0.2 (m = 4) → 0.04, 0.06, 0.0533, 0.2 → running min from top
    q = benjamini_hochberg(p)
    assert q[:4] == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.2])
    assert np.isnan(q[4])
    assert benjamini_hochberg(np.array([0.9, 0.8])) == pytest.approx([0.9, 0.9])
    assert len(benjamini_hochberg(np.zeros(0))) == 0


def _patch() -> tuple[pd.DataFrame, pd.DataFrame, list[str], str]:
    """127 cells × 10 in-use pieces; 6 of 10 pieces in C0 and its 6 neighbours have a
    serious hazard, and 8 of 10 in one lone cell 5 rings away."""
    hot = set(h3.grid_disk(C0, 1))
    lone = sorted(h3.grid_ring(C0, 5))[0]
    parts, rows = [], []
    for c in sorted(h3.grid_disk(C0, 6)):
        parts.append(pieces(c, 10, unit=f"U{c}"))
        n = 6 if c in hot else 8 if c == lone else 0
        rows += [major(f"{c}-{p}") for p in range(n)]
    return equipment(*parts), hazards(rows), sorted(hot), lone


def test_hotspot_cells_regional_cluster() -> None:
    eq, hz, hot, lone = _patch()
    tested = gi_star_cells(eq, hz, AS_OF, RULES)
    assert len(tested) == 127 and list(tested.columns) == list(CELL_COLUMNS)
    assert tested["h3"].is_monotonic_increasing
    everything = hotspot_cells(eq, hz, AS_OF, RULES)
    assert isinstance(everything, gpd.GeoDataFrame) and everything.crs.to_epsg() == 4326
    assert list(everything.columns) == [*LAYER_COLUMNS, "geometry"]
    # the exact Poisson test also finds the lone cell (8 hazards in its k-ring against
    # E = 70 × 50/1270), q just under alpha; it is a hot cell of its own, not regional
    assert everything["h3"].tolist() == sorted([*hot, lone])
    single = everything.set_index("h3").loc[lone]
    assert single["p_value"] == pytest.approx(poisson.sf(7, 70 * 50 / 1270), rel=1e-9)
    assert single["q_value"] <= RULES.alpha
    assert single["cluster_id"] == lone and single["cluster_size"] == 1
    assert not single["regional"]
    # Gi*'s normal approximation does not find the lone cell (z ≈ 1.33)
    normal = hotspot_cells(eq, hz, AS_OF, HotspotRules(test="normal"))
    assert normal["h3"].tolist() == hot
    layer = everything[everything["h3"] != lone].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        pd.DataFrame(layer).drop(columns=["p_value", "q_value", "geometry"]),
        pd.DataFrame(normal).drop(columns=["p_value", "q_value", "geometry"]))
    assert layer["h3"].tolist() == hot
    assert set(layer["cluster_id"]) == {hot[0]}             # smallest h3 names the cluster
    assert layer["cluster_size"].tolist() == [7] * 7
    assert layer["regional"].all()
    assert layer["serious_hazards"].sum() == 42 and layer["equipment"].sum() == 70
    assert layer["rate"].tolist() == [0.6] * 7
    assert (layer["q_value"] <= RULES.alpha).all() and (layer["gi_star"] > 0).all()
    centre = layer.set_index("h3").loc[C0]
    assert centre["gi_star"] == layer["gi_star"].max()
    assert layer["resolution"].tolist() == [7] * 7
    assert layer.geometry.geom_type.eq("Polygon").all()
    expected = gpd.GeoSeries.from_wkt([_hex_wkt(hot[0])]).iloc[0]
    assert layer.geometry.iloc[0].hausdorff_distance(expected) < 1e-9
    assert layer["unit_count"].tolist() == [1] * 7
    assert layer["main_category"].tolist() == ["3000"] * 7
    assert str(layer["regional"].dtype) == "boolean"
    assert str(layer["cluster_size"].dtype) == "Int64"


def _hex_wkt(cell: str) -> str:
    ring = [(lng, lat) for lat, lng in h3.cell_to_boundary(cell)]
    ring.append(ring[0])
    return "POLYGON ((" + ", ".join(f"{x} {y}" for x, y in ring) + "))"


def test_hotspot_fdr_off_uses_raw_p() -> None:
    eq, hz, _, lone = _patch()
    raw = gi_star_cells(eq, hz, AS_OF, HotspotRules(fdr=False))
    assert raw["q_value"].equals(raw["p_value"])
    adjusted = gi_star_cells(eq, hz, AS_OF, RULES)
    assert (adjusted["q_value"] >= adjusted["p_value"]).all()
    # Gi*'s normal p, alpha 0.1 without FDR: the lone cell (z ≈ 1.33, p ≈ 0.09) and its
    # ring become hot too
    assert lone not in set(hotspot_cells(eq, hz, AS_OF, HotspotRules(test="normal"))["h3"])
    loose = hotspot_cells(eq, hz, AS_OF, HotspotRules(test="normal", fdr=False, alpha=0.1,
                                                      own_excess=False))
    assert lone in set(loose["h3"])
    assert loose.set_index("h3").loc[lone, "cluster_size"] == 7
    # by default a ring cell whose own rate is not above the mean is a halo, not a hotspot
    core = hotspot_cells(eq, hz, AS_OF, HotspotRules(test="normal", fdr=False, alpha=0.1))
    assert core.set_index("h3").loc[lone, "cluster_size"] == 1
    # the same with the exact Poisson test: the ring shares the lone cell's k-ring count
    halo = hotspot_cells(eq, hz, AS_OF, HotspotRules(own_excess=False))
    assert halo.set_index("h3").loc[lone, "cluster_size"] == 7
    assert hotspot_cells(eq, hz, AS_OF, RULES).set_index("h3").loc[lone, "cluster_size"] == 1


BACKGROUND_RATE = 0.01


def _random_field(seed: int, plant: tuple[str, ...] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The 331 cells of C0's 10-disk, 5–19 in-use pieces each (≈ 4,000 in all), each piece
    with a serious hazard with probability ``BACKGROUND_RATE`` whatever its place (spatially
    random). A ``plant`` cell instead holds 50 pieces, 4 with a serious hazard (8× the rate);
    the other cells are drawn as without the plant."""
    rng = np.random.default_rng(seed)
    parts, rows = [], []
    for c in sorted(h3.grid_disk(C0, 10)):
        n = int(rng.integers(5, 20))
        hit = np.flatnonzero(rng.random(n) < BACKGROUND_RATE)
        if c in plant:
            n, hit = 50, np.arange(round(8 * BACKGROUND_RATE * 50))
        parts.append(pieces(c, n, unit=f"U{c}"))
        rows += [major(f"{c}-{p}") for p in hit]
    return equipment(*parts), hazards(rows)


def test_random_hazards_give_no_hotspot() -> None:
    """Why the Poisson test is the default: on spatially random hazards Gi*'s normal
    approximation, even with FDR, calls sparse cells (one hazard among a few pieces, or
    none beside such a cell) hot; the exact test does not."""
    eq, hz = _random_field(1)
    assert 3000 <= len(eq) <= 5000 and 20 <= len(hz) <= 80
    default = gi_star_cells(eq, hz, AS_OF, RULES)
    assert len(default) == 331
    assert default["hot"].sum() <= 1
    assert (default["q_value"] > RULES.alpha).sum() >= 330
    normal = gi_star_cells(eq, hz, AS_OF, HotspotRules(test="normal", own_excess=False))
    assert normal["hot"].sum() >= 5
    flagged = normal[normal["hot"]]
    assert (flagged["serious_hazards"] <= 2).all()  # sparse counts, not a cluster
    # Gi* z itself does not depend on the test
    np.testing.assert_array_equal(default["gi_star"], normal["gi_star"])


def test_planted_cluster_is_found_and_regional() -> None:
    """Three mutually adjacent cells with 8× the background rate in the random field."""
    b = sorted(h3.grid_ring(C0, 1))[0]
    c = next(x for x in sorted(h3.grid_ring(C0, 1)) if h3.are_neighbor_cells(x, b))
    plant = tuple(sorted([C0, b, c]))
    eq, hz = _random_field(1, plant)
    tested = gi_star_cells(eq, hz, AS_OF, RULES).set_index("h3")
    assert tested.loc[list(plant), "rate"].tolist() == [0.08] * 3
    layer = hotspot_cells(eq, hz, AS_OF, RULES).set_index("h3")
    assert set(plant) <= set(layer.index)
    assert set(layer.index) <= {d for p in plant for d in h3.grid_disk(p, 1)}  # nothing else
    assert layer.loc[list(plant), "cluster_id"].nunique() == 1
    assert layer.loc[list(plant), "regional"].all()
    assert (layer.loc[list(plant), "cluster_size"] >= 3).all()
    assert (layer.loc[list(plant), "q_value"] <= RULES.alpha).all()


def test_clusters_and_singletons_from_a_tested_frame() -> None:
    a, b = C0, h3.grid_ring(C0, 1)[0]  # neighbours
    c = h3.grid_ring(C0, 4)[0]          # alone
    tested = pd.DataFrame({"h3": sorted([a, b, c, h3.grid_ring(C0, 8)[0]])})
    tested["hot"] = tested["h3"].isin([a, b, c])
    tested["gi_star"] = 3.0
    tested["resolution"] = 7
    layer = hotspot_cells(pd.DataFrame(), NO_HAZARDS, AS_OF, RULES, tested=tested)
    got = layer.set_index("h3")
    assert sorted(got.index) == sorted([a, b, c])
    assert got.loc[a, "cluster_id"] == got.loc[b, "cluster_id"] == min(a, b)
    assert got.loc[a, "cluster_size"] == 2 and got.loc[a, "regional"]
    assert got.loc[c, "cluster_id"] == c and got.loc[c, "cluster_size"] == 1
    assert not got.loc[c, "regional"]


def test_min_equipment_and_in_use() -> None:
    c = sorted(h3.grid_disk(C0, 1))
    eq = equipment(
        pieces(c[0], 5, unit="A"), pieces(c[1], 4, unit="B"),
        pieces(c[1], 3, prefix="stopped", unit="B", in_use=False),  # not in use: not counted
        pieces(c[2], 6, unit=None),
    )
    hz = hazards([major(f"{c[0]}-0"), major("stopped-0"), major("unknown-code"),
                  major(f"{c[2]}-1"), major(f"{c[2]}-1", status="整改中")])
    t = gi_star_cells(eq, hz, AS_OF, RULES).set_index("h3")
    assert sorted(t.index) == [c[0], c[2]]               # c[1]: 4 in-use pieces, not tested
    assert t.loc[c[0], "serious_hazards"] == 1 and t.loc[c[0], "equipment"] == 5
    assert t.loc[c[2], "serious_hazards"] == 2 and t.loc[c[2], "rate"] == pytest.approx(2 / 6)
    assert t.loc[c[0], "neighbours"] == 2                 # itself + c[2]; c[1] absent
    assert t.loc[c[2], "unit_count"] == 0                 # NA unit codes are not units
    assert len(gi_star_cells(eq, hz, AS_OF, HotspotRules(min_equipment=7))) == 0


def test_county_and_main_category() -> None:
    eq = equipment(
        pieces(C0, 3, prefix="a", unit="A", county="410105", category="3000"),
        pieces(C0, 2, prefix="b", unit="B", county="410102", category="4000"),
        pieces(C0, 3, prefix="c", unit="C", county="410102", category="2000"),
        pieces(C0, 4, prefix="d", unit="D", county=None, category="1000"),
    )
    hz = hazards([major("a-0"), major("b-0"), major("b-1"), major("c-0"), major("c-1")])
    t = gi_star_cells(eq, hz, AS_OF, RULES)
    row = t.iloc[0]
    assert row["county_adcode"] == "410102"  # 5 pieces vs 3; the NA county does not win
    assert row["main_category"] == "2000"    # 2000 and 4000 tie on 2: smallest code
    assert row["unit_count"] == 4
    quiet = gi_star_cells(eq, NO_HAZARDS, AS_OF, RULES)
    assert pd.isna(quiet["main_category"].iloc[0])
    assert np.isnan(quiet["gi_star"].iloc[0])  # one cell: Gi* undefined, not hot
    assert not quiet["hot"].iloc[0]


def test_equal_rates_give_no_hotspot() -> None:
    parts = [pieces(c, 5, unit="A") for c in sorted(h3.grid_disk(C0, 2))]
    rows = [major(f"{c}-0") for c in sorted(h3.grid_disk(C0, 2))]
    t = gi_star_cells(equipment(*parts), hazards(rows), AS_OF, RULES)
    assert t["gi_star"].isna().all() and not t["hot"].any()
    assert len(hotspot_cells(equipment(*parts), hazards(rows), AS_OF, RULES)) == 0


def test_output_does_not_depend_on_row_order() -> None:
    eq, hz, _, _ = _patch()
    shuffled = eq.sample(frac=1, random_state=3).reset_index(drop=True)
    a = hotspot_cells(eq, hz, AS_OF, RULES)
    b = hotspot_cells(shuffled, hz.sample(frac=1, random_state=4), AS_OF, RULES)
    pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b))


def test_empty_inputs() -> None:
    empty = equipment(pieces(C0, 0))
    t = gi_star_cells(empty, NO_HAZARDS, AS_OF, RULES)
    assert len(t) == 0 and list(t.columns) == list(CELL_COLUMNS)
    layer = hotspot_cells(empty, NO_HAZARDS, AS_OF, RULES)
    assert len(layer) == 0 and list(layer.columns) == [*LAYER_COLUMNS, "geometry"]
    assert layer.crs.to_epsg() == 4326
    u = hotspot_units(empty, layer)
    assert len(u) == 0 and list(u.columns) == list(UNIT_COLUMNS)
    w = widespread(empty, NO_HAZARDS, AS_OF, RULES)
    assert len(w) == 0 and list(w.columns) == list(WIDESPREAD_COLUMNS)
    # equipment but no hazards: cells are tested, none is hot
    eq, _, _, _ = _patch()
    assert len(gi_star_cells(eq, NO_HAZARDS, AS_OF, RULES)) == 127
    assert len(hotspot_cells(eq, NO_HAZARDS, AS_OF, RULES)) == 0


# --------------------------------------------------------------------------- units

def test_hotspot_units() -> None:
    eq, hz, hot, lone = _patch()
    layer = hotspot_cells(eq, hz, AS_OF, RULES)
    ring = [c for c in hot if c != C0]
    extra = equipment(
        pieces(ring[0], 1, prefix="x1", unit="MULTI"), pieces(C0, 1, prefix="x2", unit="MULTI"),
        pieces(C0, 1, prefix="x3", unit="IDLE", in_use=False),
        pieces(C0, 1, prefix="x4", unit=None),
        pieces(h3.grid_ring(C0, 4)[0], 1, prefix="x5", unit="OUTSIDE"),
    )
    u = hotspot_units(equipment(eq, extra), layer)
    assert list(u.columns) == list(UNIT_COLUMNS)
    assert u["credit_code"].is_monotonic_increasing and u["credit_code"].is_unique
    got = u.set_index("credit_code")
    assert "IDLE" not in got.index and "OUTSIDE" not in got.index
    assert got.loc["MULTI", "h3"] == C0  # the centre has the highest Gi*
    assert got.loc["MULTI", "gi_star"] == layer["gi_star"].max()
    assert got.loc["MULTI", "regional"] and got.loc["MULTI", "cluster_id"] == hot[0]
    assert set(got.index) == {"MULTI", f"U{lone}", *(f"U{c}" for c in hot)}
    assert got.loc[f"U{lone}", "h3"] == lone and not got.loc[f"U{lone}", "regional"]
    assert got.loc[f"U{lone}", "cluster_id"] == lone
    assert got.drop(index=f"U{lone}")["regional"].all()
    # with Gi*'s normal p only the regional cluster is hot
    normal = hotspot_cells(eq, hz, AS_OF, HotspotRules(test="normal"))
    u_normal = hotspot_units(equipment(eq, extra), normal)
    assert set(u_normal["credit_code"]) == {"MULTI", *(f"U{c}" for c in hot)}
    assert str(u["regional"].dtype) == "boolean"


# --------------------------------------------------------------------------- widespread

def _units(county: str | None, category: str, n: int, serious: int, tag: str
           ) -> tuple[list[pd.DataFrame], list[dict]]:
    """``n`` units with two in-use pieces each; the first ``serious`` have a major hazard
    on one piece."""
    parts = [pieces(C0, 2, prefix=f"{tag}{i}", unit=f"{tag}{i}", county=county,
                    category=category) for i in range(n)]
    return parts, [major(f"{tag}{i}-0") for i in range(serious)]


def test_widespread() -> None:
    a, ha = _units("410102", "3000", 30, 3, "A")   # 10 %, 3 units: widespread
    b, hb = _units("410102", "4000", 10, 2, "B")   # 20 % but only 2 units
    c, hc = _units("410105", "3000", 31, 3, "C")   # 3 units but 9.7 %
    d, hd = _units(None, "3000", 5, 5, "D")        # no county: left out
    e, _ = _units("410105", "2000", 4, 0, "E")     # nobody: share 0
    # a 4000 hazard of a unit that also holds 3000 does not count for 3000
    f = [pieces(C0, 1, prefix="F3", unit="F", county="410105", category="3000"),
         pieces(C0, 1, prefix="F4", unit="F", county="410105", category="4000")]
    stopped = [pieces(C0, 1, prefix="S", unit="S", county="410105", category="3000",
                      in_use=False)]
    eq = equipment(*a, *b, *c, *d, *e, *f, *stopped)
    hz = hazards([*ha, *hb, *hc, *hd, major("F4-0"), major("S-0")])
    w = widespread(eq, hz, AS_OF, RULES)
    assert list(w.columns) == list(WIDESPREAD_COLUMNS)
    assert list(zip(w["county_adcode"], w["top_category"], strict=True)) == [
        ("410102", "3000"), ("410102", "4000"), ("410105", "2000"), ("410105", "3000"),
        ("410105", "4000")]
    assert w["units"].tolist() == [30, 10, 4, 32, 1]
    assert w["units_with_serious"].tolist() == [3, 2, 0, 3, 1]
    assert w["share"].tolist() == pytest.approx([0.1, 0.2, 0.0, 3 / 32, 1.0])
    assert w["widespread"].tolist() == [True, False, False, False, False]
    loose = widespread(eq, hz, AS_OF, HotspotRules(widespread_min_units=1))
    assert loose["widespread"].tolist() == [True, True, False, False, True]
    assert str(w["units"].dtype) == "Int64" and str(w["widespread"].dtype) == "boolean"


def test_widespread_counts_a_unit_once() -> None:
    parts = [pieces(C0, 3, prefix=f"U{i}", unit=f"U{i}") for i in range(3)]
    hz = hazards([major("U0-0"), major("U0-1"), major("U0-2"),
                  major("U1-0", status="已登记", found_on="2024-01-01")])
    w = widespread(equipment(*parts), hz, AS_OF, RULES)
    assert w[["units", "units_with_serious"]].iloc[0].tolist() == [3, 2]


def test_late_general_hazards_are_not_serious_anywhere() -> None:
    """A 一般 hazard past its deadline is an overdue rectification: counted per cell as
    ``late_general_hazards``, never as a serious hazard (not in the rate, the test, the
    hot cells or the widespread share)."""
    late = {"status": "整改中", "deadline": "2026-01-01"}
    eq, hz, hot, lone = _patch()
    # a general late hazard on every piece of a far cell, and on one piece of the centre
    far = sorted(h3.grid_ring(C0, 3))[0]
    extra = hazards([{"registration_code": f"{far}-{p}", **late} for p in range(10)]
                    + [{"registration_code": f"{C0}-9", **late}])
    extra["hazard_id"] = "L" + extra["hazard_id"]
    both = pd.concat([hz, extra], ignore_index=True)
    tested = gi_star_cells(eq, both, AS_OF, RULES).set_index("h3")
    assert tested.loc[far, "serious_hazards"] == 0 and tested.loc[far, "rate"] == 0
    assert tested.loc[far, "late_general_hazards"] == 10 and not tested.loc[far, "hot"]
    assert tested.loc[C0, "late_general_hazards"] == 1
    assert tested["late_general_hazards"].sum() == 11
    assert str(tested["late_general_hazards"].dtype) == "Int64"
    without = gi_star_cells(eq, hz, AS_OF, RULES)
    pd.testing.assert_frame_equal(tested.reset_index().drop(columns="late_general_hazards"),
                                  without.drop(columns="late_general_hazards"))
    layer = hotspot_cells(eq, both, AS_OF, RULES)
    assert layer["h3"].tolist() == sorted([*hot, lone])
    assert layer.set_index("h3").loc[C0, "late_general_hazards"] == 1
    # only late general hazards: nothing is serious, nothing is hot, nothing widespread
    parts, rows = _units("410102", "3000", 10, 0, "G")
    rows = [{"registration_code": f"G{i}-0", **late} for i in range(10)]
    w = widespread(equipment(*parts), hazards(rows), AS_OF, RULES)
    assert w["units_with_serious"].tolist() == [0] and not w["widespread"].any()


# --------------------------------------------------------------------------- sums of parts

@pytest.mark.parametrize("seed", [1, 2])
def test_counts_of_any_split_keeping_units_whole_add_up_to_the_whole(seed: int) -> None:
    """The random field with a planted cluster, units spread over several cells, counties
    and categories, cut into parts at random (each unit's pieces in one part, each part's
    rows shuffled): the parts' counts added give exactly the whole's hotspot cells, units
    and widespread rows (what lets the Dask build count partitions on its workers)."""
    b = sorted(h3.grid_ring(C0, 1))[0]
    c = next(x for x in sorted(h3.grid_ring(C0, 1)) if h3.are_neighbor_cells(x, b))
    eq, hz = _random_field(seed, tuple(sorted([C0, b, c])))
    rng = np.random.default_rng(seed)
    unit = rng.integers(0, 80, len(eq))
    eq["unit_credit_code"] = pd.array([f"U{u:02d}" for u in unit], dtype="string")
    eq["county_adcode"] = pd.array(rng.choice(["410102", "410103", "410104", None],
                                              len(eq)), dtype="string")
    eq["top_category"] = pd.array(rng.choice(["3000", "4000", "2000"], len(eq)),
                                  dtype="string")
    rules = HotspotRules(widespread_min_units=1)
    whole = HotspotSums.of(eq, hz, AS_OF, rules)
    part_of_unit = rng.integers(0, 4, 80)
    parts = []
    for p in range(4):
        rows = rng.permutation(np.flatnonzero(part_of_unit[unit] == p))
        parts.append(HotspotSums.of(eq.iloc[rows], hz, AS_OF, rules))
    added = HotspotSums.combined(parts[::-1])
    for name in ("cells", "equipment", "serious", "late"):
        assert np.array_equal(getattr(added, name), getattr(whole, name))
    tested = gi_star_cells_from(added, rules)
    pd.testing.assert_frame_equal(tested, gi_star_cells(eq, hz, AS_OF, rules),
                                  check_exact=True)
    hot = hotspot_cells_from(tested)
    assert hot["regional"].sum() >= 3
    pd.testing.assert_frame_equal(hotspot_units_from(added.unit_cells, hot),
                                  hotspot_units(eq, hot), check_exact=True)
    wide = widespread_from(added.widespread, rules)
    pd.testing.assert_frame_equal(wide, widespread(eq, hz, AS_OF, rules), check_exact=True)
    assert (wide["units_with_serious"] > 0).all() and len(wide) == 9
