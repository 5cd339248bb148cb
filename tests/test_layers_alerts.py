"""layers.alerts: elevator insurance coverage and 风险提示/警示/预警 on hand-built frames."""

from __future__ import annotations

import json
from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pydantic import ValidationError

from layers.alerts import (
    IndicatorRule,
    InsuranceRules,
    RateRule,
    WarningRules,
    excess_p,
    warnings,
)
from layers.alerts import insurance as scoped_insurance

NATIONAL = {"provinces": None, "from_year": None, "to_year": None}


def insurance(equipment, boundaries, as_of, rules=None):
    """Insurance with the targets applying everywhere (these regions are in Henan; the
    scope itself is tested below)."""
    rules = (rules or InsuranceRules()).model_copy(update=NATIONAL)
    return scoped_insurance(equipment, boundaries, as_of, rules)

# province 410000 > city 410100 > counties 410101, 410102; 419001 is both a city and a county
REGIONS = [
    ("410000", "甲省", "province", None, "410000", None),
    ("410100", "乙市", "city", "410000", "410000", "410100"),
    ("410101", "丙区", "county", "410100", "410000", "410100"),
    ("410102", "丁县", "county", "410100", "410000", "410100"),
    ("419001", "戊市", "city", "410000", "410000", "419001"),
    ("419001", "戊市", "county", "419001", "410000", "419001"),
]


def boundaries() -> gpd.GeoDataFrame:
    rows = pd.DataFrame(REGIONS, columns=["adcode", "name", "level", "parent_adcode",
                                          "province_adcode", "city_adcode"]).astype("string")
    geoms = [shapely.box(i, 0, i + 1, 1) for i in range(len(rows))]
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=4326)


def elevators(rows: list[tuple[str, bool, object, str | None, str | None]]) -> pd.DataFrame:
    """(top_category, in_use, insured, city, county) rows in province 410000."""
    df = pd.DataFrame(rows, columns=["top_category", "in_use", "insured", "city_adcode",
                                     "county_adcode"])
    return df.assign(province_adcode="410000").astype({
        "top_category": "string", "in_use": "boolean", "insured": "boolean",
        "city_adcode": "string", "county_adcode": "string", "province_adcode": "string"})


EQ = elevators([
    # 丙区: 4 in-use elevators (3 insured, 1 unknown), a stopped insured one, an insured boiler
    ("3000", True, True, "410100", "410101"), ("3000", True, True, "410100", "410101"),
    ("3000", True, True, "410100", "410101"), ("3000", True, None, "410100", "410101"),
    ("3000", False, True, "410100", "410101"), ("1000", True, True, "410100", "410101"),
    # 丁县: 2 elevators, 1 insured
    ("3000", True, True, "410100", "410102"), ("3000", True, False, "410100", "410102"),
])


def by_region(gdf: pd.DataFrame) -> pd.DataFrame:
    return gdf.set_index(["admin_level", "adcode"])


# --------------------------------------------------------------------------- insurance

def test_insurance_counts_and_coverage_per_level() -> None:
    out = by_region(insurance(EQ, boundaries(), date(2021, 6, 30)))
    a = out.loc[("county", "410101")]
    assert (a["elevators"], a["insured"], a["insured_unknown"]) == (4, 3, 1)
    assert a["coverage"] == pytest.approx(0.75)
    assert a["target"] == pytest.approx(0.55)
    assert bool(a["meets_target"]) is True
    b = out.loc[("county", "410102")]
    assert b["coverage"] == pytest.approx(0.5)
    assert b["gap"] == pytest.approx(0.05)
    assert bool(b["meets_target"]) is False
    city = out.loc[("city", "410100")]
    assert (city["elevators"], city["insured"]) == (6, 4)
    prov = out.loc[("province", "410000")]
    assert (prov["elevators"], prov["insured"], prov["insured_unknown"]) == (6, 4, 1)


def test_insurance_output_frame() -> None:
    out = insurance(EQ, boundaries(), date(2021, 1, 1))
    assert out.crs.to_epsg() == 4326
    assert len(out) == len(REGIONS)
    assert "admin_level" in out and "level" not in out
    assert str(out["elevators"].dtype) == "Int64"
    assert str(out["meets_target"].dtype) == "boolean"
    assert out["coverage"].dtype == np.float64
    assert out.geometry.geom_type.eq("Polygon").all()


def test_region_without_elevators_has_na_coverage() -> None:
    out = by_region(insurance(EQ, boundaries(), date(2021, 1, 1)))
    row = out.loc[("county", "419001")]
    assert row["elevators"] == 0
    assert np.isnan(row["coverage"]) and np.isnan(row["gap"])
    assert pd.isna(row["meets_target"])


def test_targets_by_year() -> None:
    b = boundaries()
    target = {y: insurance(EQ, b, date(y, 3, 1))["target"].iloc[0]
              for y in (2019, 2020, 2021, 2022, 2026)}
    assert np.isnan(target[2019])  # no target before the plan
    assert target[2020] == pytest.approx(0.40)
    assert target[2021] == pytest.approx(0.55)
    assert target[2022] == pytest.approx(0.70)
    assert target[2026] == pytest.approx(0.70)  # later years hold the last target
    out = insurance(EQ, b, date(2026, 1, 1), InsuranceRules(hold_last=False))
    assert out["target"].isna().all()
    assert out["meets_target"].isna().all()
    custom = InsuranceRules(targets={2020: 0.4, 2023: 0.8})
    assert custom.target_for(2021) == pytest.approx(0.4)  # a gap inside the table
    assert custom.target_for(2023) == pytest.approx(0.8)


def test_exactly_on_target_meets_it() -> None:
    rows = [("3000", True, i < 11, "410100", "410101") for i in range(20)]
    out = by_region(insurance(elevators(rows), boundaries(), date(2021, 1, 1)))
    row = out.loc[("county", "410101")]
    assert row["coverage"] == pytest.approx(0.55)
    assert row["gap"] == 0
    assert bool(row["meets_target"]) is True


def test_na_adcodes_count_only_where_known() -> None:
    rows = [("3000", True, True, "410100", None), ("3000", True, False, None, None)]
    out = by_region(insurance(elevators(rows), boundaries(), date(2021, 1, 1)))
    assert out.loc[("city", "410100"), "elevators"] == 1
    assert out.loc[("province", "410000"), "elevators"] == 2
    assert out.loc[("county", "410101"), "elevators"] == 0


def test_city_and_county_with_the_same_adcode() -> None:
    rows = [("3000", True, True, "419001", "419001"), ("3000", True, False, "419001", "419001")]
    out = by_region(insurance(elevators(rows), boundaries(), date(2022, 1, 1)))
    assert out.loc[("city", "419001"), "elevators"] == 2
    assert out.loc[("county", "419001"), "elevators"] == 2
    assert out.loc[("county", "419001"), "coverage"] == pytest.approx(0.5)


def test_insurance_empty_equipment() -> None:
    out = insurance(EQ.iloc[0:0], boundaries(), date(2021, 1, 1))
    assert len(out) == len(REGIONS)
    assert (out["elevators"] == 0).all()
    assert out["meets_target"].isna().all()


def test_insurance_rules_validation() -> None:
    for bad in ({2020: 1.5}, {2020: -0.1}, {2020: 0}, {}, {1900: 0.4}):
        with pytest.raises(ValidationError):
            InsuranceRules(targets=bad)
    with pytest.raises(ValidationError):
        InsuranceRules(target=0.4)  # unknown field
    # TOML tables have string keys
    assert InsuranceRules.model_validate({"targets": {"2023": 0.8}}).targets == {2023: 0.8}


# --------------------------------------------------------------------------- warnings

def regions(with_parents: bool = True, **columns: list[float]) -> gpd.GeoDataFrame:
    """The REGIONS rows as an aggregate.regions-like frame; extra columns by keyword."""
    b = boundaries().rename(columns={"level": "admin_level"})
    if not with_parents:
        b = b.drop(columns=["province_adcode", "city_adcode"])
    n = len(b)
    base = {"equipment": [100.0] * n, "overdue": [0.0] * n, "overdue_rate": [0.0] * n,
            "open_major_hazards": [0.0] * n}
    base.update(columns)
    for name, values in base.items():
        b[name] = values
    return b


def ins_frame(gaps: list[float]) -> pd.DataFrame:
    r = regions()
    return pd.DataFrame({"adcode": r["adcode"], "admin_level": r["admin_level"],
                         "gap": gaps, "coverage": [0.7 - g for g in gaps],
                         "target": [0.7] * len(gaps)})


def grades(out: pd.DataFrame) -> dict[tuple[str, str], str]:
    return dict(zip(zip(out["admin_level"], out["adcode"], strict=True), out["grade"],
                    strict=True))


def sized(**rows: tuple[float, float]) -> dict[str, list[float]]:
    """Per REGIONS row (by key p, c1, k1, k2, c2, k3): (in-use pieces, events)."""
    keys = ("p", "c1", "k1", "k2", "c2", "k3")
    n = [float(rows.get(k, (0, 0))[0]) for k in keys]
    x = [float(rows.get(k, (0, 0))[1]) for k in keys]
    return {"equipment": n, "count": x}


def overdue_regions(with_parents: bool = True, **rows: tuple[float, float]) -> gpd.GeoDataFrame:
    s = sized(**rows)
    rate = [x / n if n else 0.0 for n, x in zip(s["equipment"], s["count"], strict=True)]
    return regions(with_parents, equipment=s["equipment"], overdue=s["count"],
                   overdue_rate=rate)


# province 2% overdue; 乙市 and 戊市 at the province's rate
BASE = {"p": (10_000, 200), "c1": (5_000, 100), "c2": (5_000, 100), "k3": (5_000, 100)}


def test_small_county_with_one_overdue_of_three_is_not_warned() -> None:
    r = overdue_regions(**BASE, k1=(3, 1), k2=(4_997, 99))  # 丙区: 33%, 16 times the province
    assert grades(warnings(r)) == {}
    # not only because one is fewer than min_events: the test itself says "could be chance"
    rule = WarningRules().rates[0].model_copy(update={"min_events": 1})
    out = warnings(r, rules=WarningRules(rates=(rule,), rules=()))
    assert grades(out) == {}
    assert excess_p(np.array([1]), np.array([3]), np.array([0.02]), "binomial")[0] == \
        pytest.approx(1 - 0.98 ** 3)


def test_large_county_at_three_times_the_province_is_warned() -> None:
    r = overdue_regions(**BASE, k1=(3_000, 60), k2=(2_000, 120))  # 丁县 6% = 3 × 2%
    out = warnings(r)
    assert grades(out) == {("county", "410102"): "alert"}
    row = out.iloc[0]
    assert row["message"] == (
        "丁县逾期未检率6.0%，为全省2.0%的3.0倍（预警阈值≥3倍，在用2,000台、逾期120台，"
        "单侧精确二项检验 p<0.001、多重检验校正后q<0.001）。")
    (t,) = json.loads(row["triggers"])
    assert t["rule"] == "overdue_rate" and t["basis"] == "ratio" and t["test"] == "binomial"
    assert (t["n"], t["count"], t["threshold"]) == (2000, 120, 3)
    assert t["value"] == pytest.approx(0.06) and t["parent_value"] == pytest.approx(0.02)
    assert t["ratio"] == pytest.approx(3.0) and t["p_value"] < 1e-12
    assert t["q_value"] >= t["p_value"]


@pytest.mark.parametrize("overdue, grade", [(60, "prompt"), (90, "caution"), (150, "alert"),
                                            (50, None)])
def test_grades_by_ratio_band(overdue: int, grade: str | None) -> None:
    # 丁县 2,000 pieces against 2%: 3% = 1.5×, 4.5% = 2.25×, 7.5% = 3.75×, 2.5% = 1.25×
    g = grades(warnings(overdue_regions(**BASE, k1=(3_000, 60), k2=(2_000, overdue))))
    assert g.get(("county", "410102")) == grade


def test_a_rate_excess_must_be_significant() -> None:
    # 1.5× the province on 100 pieces (3 of 100 against 2%) is within chance
    r = overdue_regions(**BASE, k1=(3_000, 60), k2=(100, 3))
    assert grades(warnings(r)) == {}
    # without the correction for many regions a borderline p can pass, with it not
    p = excess_p(np.array([5]), np.array([100]), np.array([0.02]), "binomial")[0]
    assert 0.01 < p < 0.06


def test_fdr_over_the_regions_of_a_level() -> None:
    # 丁县 3% of 1,000 against 2%: 1.5×, p ≈ 0.02 alone; one of three counties tested
    r = overdue_regions(**BASE, k1=(3_000, 60), k2=(1_000, 30))
    (p,) = excess_p(np.array([30]), np.array([1000]), np.array([0.02]), "binomial")
    assert 0.01 < p < 0.05 < 3 * p
    lax = warnings(r, rules=WarningRules(alpha=0.05, fdr=False))
    assert grades(lax) == {("county", "410102"): "prompt"}
    (t,) = json.loads(lax.iloc[0]["triggers"])
    assert t["q_value"] == t["p_value"] == pytest.approx(p, rel=1e-3)  # no correction
    assert "p=0.021" in lax.iloc[0]["message"] and "q=" not in lax.iloc[0]["message"]
    # Benjamini–Hochberg over the three counties: q = 3p > 5%, chance among many
    assert grades(warnings(r, rules=WarningRules(alpha=0.05))) == {}


def test_province_is_judged_on_absolute_rates() -> None:
    # everywhere 6%: no region stands out against the province, the province is over 5%
    r = overdue_regions(p=(10_000, 600), c1=(5_000, 300), k1=(3_000, 180), k2=(2_000, 120),
                        c2=(5_000, 300), k3=(5_000, 300))
    out = warnings(r)
    assert grades(out) == {("province", "410000"): "caution"}
    assert out.iloc[0]["message"] == "甲省逾期未检率6.0%（警示阈值≥5%，在用10,000台、逾期600台）。"
    (t,) = json.loads(out.iloc[0]["triggers"])
    assert t["basis"] == "absolute" and t["parent_value"] is None and t["threshold"] == 0.05
    # a rate without an absolute table is not judged at the province
    rule = WarningRules().rates[0].model_copy(update={"absolute": {}})
    assert grades(warnings(r, rules=WarningRules(rates=(rule,), rules=()))) == {}


@pytest.mark.parametrize("with_parents", [True, False])
def test_reference_province_or_parent(with_parents: bool) -> None:
    # 乙市 and its 丁县 at 6%, the province 2% (戊市 lower)
    r = overdue_regions(with_parents, p=(20_000, 400), c1=(10_000, 600), k1=(8_000, 480),
                        k2=(2_000, 120), c2=(10_000, 50), k3=(10_000, 50))
    g = grades(warnings(r))
    assert g[("county", "410102")] == "alert" and g[("city", "410100")] == "alert"
    g = grades(warnings(r, rules=WarningRules(reference="parent")))
    assert ("county", "410102") not in g  # as its city: nothing stands out
    assert g[("city", "410100")] == "alert"


def test_open_major_hazards_per_thousand() -> None:
    s = sized(p=(10_000, 15), c1=(5_000, 13), k1=(3_000, 1), k2=(2_000, 12), c2=(5_000, 2),
              k3=(5_000, 2))
    out = warnings(regions(equipment=s["equipment"], open_major_hazards=s["count"]))
    assert grades(out) == {("county", "410102"): "alert"}  # 6 per 1,000 = 4 × 1.5 per 1,000
    msg = out.iloc[0]["message"]
    assert msg.startswith("丁县每千台在用设备未销号重大隐患6.0处，为全省1.5处的4.0倍"
                          "（预警阈值≥3倍，在用2,000台、未销号重大隐患12处，"
                          "单侧精确泊松检验 p<0.001")
    (t,) = json.loads(out.iloc[0]["triggers"])
    assert t["test"] == "poisson" and t["value"] == pytest.approx(6.0)


def test_late_rectifications_from_the_equipment() -> None:
    n = [10_000.0, 5_000.0, 3_000.0, 2_000.0, 5_000.0, 5_000.0]
    eq = pd.DataFrame({"county_adcode": ["410102"] * 20 + ["410101"] * 2 + ["419001"] * 3,
                       "late_hazards": [1] * 25}).astype({"county_adcode": "string"})
    out = warnings(regions(equipment=n), equipment=eq)
    assert grades(out) == {("county", "410102"): "alert"}  # 10 per 1,000 = 4 × 2.5
    (t,) = json.loads(out.iloc[0]["triggers"])
    assert t["rule"] == "late_hazard_rate" and t["count"] == 20
    assert t["parent_value"] == pytest.approx(2.5)
    # without the equipment the count is unknown and nothing is raised on it
    assert grades(warnings(regions(equipment=n))) == {}


def test_insurance_shortfall_thresholds() -> None:
    gaps = [0.0, 0.01, 0.10, 0.25, -0.1, float("nan")]
    g = grades(warnings(regions(), insurance=ins_frame(gaps)))
    assert ("province", "410000") not in g  # on target: gap 0 is not short
    assert g[("city", "410100")] == "prompt"
    assert g[("county", "410101")] == "caution"
    assert g[("county", "410102")] == "alert"
    assert ("city", "419001") not in g and ("county", "419001") not in g
    out = warnings(regions(), insurance=ins_frame(gaps))
    msg = out.set_index("adcode").loc["410101", "message"]
    assert "覆盖率60.0%" in msg and "目标70%" in msg and "警示" in msg


def test_insurance_frame_from_insurance_function() -> None:
    ins = insurance(EQ, boundaries(), date(2021, 6, 30))
    g = grades(warnings(regions(), insurance=ins))
    assert g == {("county", "410102"): "prompt"}  # 50% against 55%


HOT = pd.DataFrame({
    "h3": ["a1", "a2", "b1", "c1"],
    "county_adcode": ["410101", "410101", "410102", "419001"],
    "regional": [True, True, True, False],
    "cluster_id": ["k1", "k1", "k1", None],
})


@pytest.mark.parametrize("with_parents", [True, False])
def test_hotspots_roll_up_to_city_and_province(with_parents: bool) -> None:
    out = warnings(regions(with_parents), hotspots=HOT)
    g = grades(out)
    assert g[("county", "410101")] == "caution"  # 2 hot cells (prompt) + a regional cluster
    assert g[("county", "410102")] == "caution"  # 1 hot cell + the same cluster
    assert g[("city", "410100")] == "alert"  # 3 hot cells; cluster k1 counted once
    assert g[("province", "410000")] == "alert"  # 4 hot cells
    assert g[("county", "419001")] == "prompt"
    assert g[("city", "419001")] == "prompt"
    trig = json.loads(out.set_index(["admin_level", "adcode"]).loc[("city", "410100"),
                                                                   "triggers"])
    by_rule = {t["rule"]: t for t in trig}
    assert by_rule["hot_cells"]["value"] == 3 and by_rule["hot_cells"]["grade"] == "alert"
    assert by_rule["regional_clusters"]["value"] == 1


def test_regional_cell_without_cluster_id_is_its_own_cluster() -> None:
    hot = pd.DataFrame({"h3": ["x1", "x2"], "county_adcode": ["410101", "410101"],
                        "regional": [True, True], "cluster_id": [None, None]})
    out = warnings(regions(), hotspots=hot)
    trig = json.loads(out.set_index(["admin_level", "adcode"]).loc[("county", "410101"),
                                                                   "triggers"])
    assert {t["rule"]: t["value"] for t in trig}["regional_clusters"] == 2


def test_widespread_categories_roll_up() -> None:
    wide = pd.DataFrame({"county_adcode": ["410101", "410102", "410102"],
                         "top_category": ["3000", "3000", "4000"],
                         "widespread": [True, True, False]})
    out = warnings(regions(), widespread=wide)
    g = grades(out)
    assert g == {("province", "410000"): "caution", ("city", "410100"): "caution",
                 ("county", "410101"): "caution", ("county", "410102"): "caution"}
    city = out.set_index(["admin_level", "adcode"]).loc[("city", "410100")]
    assert json.loads(city["triggers"])[0]["value"] == 1  # 3000 in two counties counts once


def test_region_grade_is_highest_trigger_and_message() -> None:
    r = overdue_regions(**BASE, k1=(3_000, 60), k2=(2_000, 60))  # 丁县 1.5×: prompt
    out = warnings(r, hotspots=HOT.iloc[[2]].assign(regional=False))  # and 1 hot cell: prompt
    row = out.set_index(["admin_level", "adcode"]).loc[("county", "410102")]
    assert (row["grade"], row["grade_zh"], row["grade_rank"]) == ("prompt", "风险提示", 1)
    out = warnings(r, hotspots=HOT)  # 丁县 also in regional cluster k1: caution
    row = out.set_index(["admin_level", "adcode"]).loc[("county", "410102")]
    assert (row["grade"], row["grade_rank"], row["trigger_count"]) == ("caution", 2, 3)
    trig = json.loads(row["triggers"])
    assert [(t["rule"], t["grade"]) for t in trig] == [
        ("overdue_rate", "prompt"), ("hot_cells", "prompt"), ("regional_clusters", "caution")]
    assert set(trig[1]) >= {"rule", "indicator", "value", "threshold", "grade"}
    sentences = row["message"].rstrip("。").split("；")
    assert len(sentences) == 3
    assert sentences[0].startswith("丁县逾期未检率3.0%，为全省2.0%的1.5倍（风险提示阈值≥1.5倍")
    assert sentences[1] == "丁县有1个隐患热点网格（经Gi*与精确泊松检验，风险提示阈值≥1个）"


def test_warnings_frame_shape_and_order() -> None:
    r = overdue_regions(p=(10_000, 400), c1=(5_000, 700), k1=(3_000, 60), k2=(2_000, 140),
                        c2=(5_000, 100), k3=(5_000, 100))
    out = warnings(r)  # province 4% (prompt), 乙市 14% (3.5×: alert), 丁县 7% (1.75×: prompt)
    assert out.crs.to_epsg() == 4326
    assert list(out["grade_rank"]) == [3, 1, 1]
    assert list(out["adcode"]) == ["410100", "410000", "410102"]
    for col in ("adcode", "name", "admin_level", "grade", "grade_zh", "triggers", "message"):
        assert str(out[col].dtype) == "string", col
    assert str(out["grade_rank"].dtype) == "Int64"
    assert out.geometry.geom_type.eq("Polygon").all()


def test_no_regions_or_no_triggers_give_empty_frames() -> None:
    empty = warnings(regions().iloc[0:0])
    assert len(empty) == 0 and "grade" in empty and empty.crs.to_epsg() == 4326
    quiet = warnings(regions(), insurance=None, hotspots=HOT.iloc[0:0],
                     widespread=pd.DataFrame(columns=["county_adcode", "top_category",
                                                      "widespread"]))
    assert len(quiet) == 0


def test_lower_is_worse_direction() -> None:
    rule = IndicatorRule(id="coverage", indicator="insurance_coverage", direction="lower",
                         thresholds={"prompt": 0.7, "caution": 0.55, "alert": 0.4},
                         template="{name}电梯保险覆盖率{value:.0%}（{grade_zh}阈值{op}{threshold:.0%}）")
    rules = WarningRules(rules=(rule,))
    gaps = [0.0, 0.05, 0.2, 0.4, -0.1, float("nan")]  # coverage 0.7, 0.65, 0.5, 0.3, 0.8, nan
    out = warnings(regions(), insurance=ins_frame(gaps), rules=rules)
    g = grades(out)
    assert g == {("province", "410000"): "prompt", ("city", "410100"): "prompt",
                 ("county", "410101"): "caution", ("county", "410102"): "alert"}
    assert "覆盖率30%（预警阈值≤40%）" in out.set_index("adcode").loc["410102", "message"]


def test_default_rules_and_ids() -> None:
    assert [r.id for r in WarningRules().rates] == ["overdue_rate", "open_major_rate",
                                                    "late_hazard_rate"]
    ids = [r.id for r in WarningRules().rules]
    assert ids == ["insurance_shortfall", "hot_cells", "regional_clusters",
                   "widespread_categories"]
    ins = next(r for r in WarningRules().rules if r.id == "insurance_shortfall")
    assert ins.op("prompt") == ">" and ins.op("caution") == "≥"
    assert WarningRules().reference == "province" and WarningRules().fdr


@pytest.mark.parametrize("kwargs", [
    {"ratios": {"prompt": 1.0}},  # equal to the reference is no excess
    {"ratios": {"prompt": 2.0, "caution": 1.5}},  # not increasing
    {"ratios": {}},
    {"absolute": {"prompt": 1.5}},  # an overdue rate above 1
    {"absolute": {"prompt": 0.0}},
    {"absolute": {"prompt": 0.05, "caution": 0.03}},
    {"min_events": 0},
    {"indicator": "hot_cells"},  # a count, not a rate
    {"template": "{name}{nonsense}"},
    {"absolute_template": "{name}{ratio}"},  # no reference at the province
    {"extra": 1},
])
def test_rate_rule_validation(kwargs: dict) -> None:
    base = {"id": "r", "indicator": "overdue_rate", "ratios": {"prompt": 1.5},
            "template": "{name}{value:.1%}{ratio:.1f}{p_text}",
            "absolute_template": "{name}{value:.1%}"}
    RateRule(**base)
    with pytest.raises(ValidationError):
        RateRule(**{**base, **kwargs})


def test_ids_unique_across_rates_and_counts() -> None:
    rate = WarningRules().rates[0]
    count = WarningRules().rules[1].model_copy(update={"id": rate.id})
    with pytest.raises(ValidationError):
        WarningRules(rates=(rate,), rules=(count,))


@pytest.mark.parametrize("kwargs", [
    {"thresholds": {"prompt": 0.05, "caution": 0.03}},  # not increasing
    {"thresholds": {"prompt": 0.05, "alert": 0.05}},  # equal
    {"thresholds": {"prompt": 0.05, "caution": 0.1}, "direction": "lower"},  # not decreasing
    {"thresholds": {}},
    {"thresholds": {"prompt": 1.5}},  # a rate above 1
    {"thresholds": {"prompt": -0.1}},  # negative rate
    {"thresholds": {"prompt": 0.0}},  # would trigger for every region
    {"thresholds": {"prompt": 0.1}, "strict": ("alert",)},
    {"thresholds": {"warn": 0.1}},
    {"indicator": "unknown_indicator"},
    {"template": "{name}{nonsense}"},
    {"template": "{name}{value:d}"},
    {"extra": 1},
])
def test_indicator_rule_validation(kwargs: dict) -> None:
    base = {"id": "r", "indicator": "overdue_rate", "thresholds": {"prompt": 0.03},
            "template": "{name}{value:.1%}"}
    with pytest.raises(ValidationError):
        IndicatorRule(**{**base, **kwargs})


def test_zero_threshold_allowed_when_strict_and_duplicate_ids_refused() -> None:
    rule = IndicatorRule(id="r", indicator="overdue", thresholds={"prompt": 0}, strict=("prompt",),
                         template="{name}{value:.0f}")
    assert rule.op("prompt") == ">"
    with pytest.raises(ValidationError):
        WarningRules(rules=(rule, rule))


def test_hotspots_use_their_own_parents_when_regions_lack_counties() -> None:
    r = regions()
    r = r[r["admin_level"] != "county"]
    hot = pd.DataFrame({"h3": ["a1", "a2", "a3"], "county_adcode": ["410101"] * 3,
                        "city_adcode": ["410100"] * 3, "province_adcode": ["410000"] * 3})
    g = grades(warnings(r, hotspots=hot))  # no "regional" column: no regional clusters
    assert g == {("province", "410000"): "alert", ("city", "410100"): "alert"}


def test_duplicate_insurance_rows_take_the_first() -> None:
    ins = ins_frame([0.3, 0.0, 0.0, 0.0, 0.0, 0.0])
    ins = pd.concat([ins, ins.iloc[[0]].assign(gap=0.0)], ignore_index=True)
    assert grades(warnings(regions(), insurance=ins)) == {("province", "410000"): "alert"}


# --------------------------------------------------------------------------- scopes

def test_insurance_targets_are_shaanxis_for_2020_to_2022() -> None:
    henan = by_region(scoped_insurance(EQ, boundaries(), date(2022, 6, 30)))
    assert henan["target"].isna().all() and henan["meets_target"].isna().all()
    assert henan.loc[("province", "410000"), "coverage"] > 0  # coverage still shown
    shaanxi = boundaries().assign(province_adcode="610000")
    sx = scoped_insurance(EQ.assign(province_adcode="610000"), shaanxi, date(2022, 6, 30))
    assert sx["target"].tolist() == pytest.approx([0.70] * len(sx))
    later = scoped_insurance(EQ, shaanxi, date(2026, 6, 30))
    assert later["target"].isna().all()


def test_no_insurance_warning_where_no_target_is_in_force() -> None:
    short = elevators([("3000", True, False, "410100", "410101")] * 4)
    henan = scoped_insurance(short, boundaries(), date(2022, 6, 30))
    assert "insurance_shortfall" not in json.dumps(
        warnings(regions(), insurance=henan)["triggers"].tolist(), ensure_ascii=False)
    shaanxi = scoped_insurance(short, boundaries().assign(province_adcode="610000"),
                               date(2022, 6, 30))
    assert "insurance_shortfall" in json.dumps(
        warnings(regions(), insurance=shaanxi)["triggers"].tolist(), ensure_ascii=False)
