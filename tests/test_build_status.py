"""建成率 (layers/build_status.py) and the small/micro mode (layers/small_micro.py): hand-made
units with answers by hand, the rule file, and the built demo on both stores."""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from layers.build_status import (
    BUILD_RATE_COLUMNS,
    BUILD_STATUSES,
    BuildStatusRules,
    BuildTarget,
    region_build_rates,
    unit_build_status,
)
from layers.registry import ALL
from layers.rules import Rules, load_rules, to_toml
from layers.small_micro import (
    DEFAULT_CHECKLIST,
    ChecklistItem,
    SmallMicroRules,
    checklists,
    small_micro,
)
from tests.servers import get

pytestmark = pytest.mark.reads_demo  # the demo tests only read the built demo

RULES = BuildStatusRules()
SMALL_SIZES = ("小型", "微型")


def regions() -> pd.DataFrame:
    """Henan: the province, 郑州 and 金水区; Shaanxi: the province, 西安 and 新城区."""
    rows = [("410000", "province", None, "410000", None),
            ("610000", "province", None, "610000", None),
            ("410100", "city", "410000", "410000", "410100"),
            ("610100", "city", "610000", "610000", "610100"),
            ("410105", "county", "410100", "410000", "410100"),
            ("610102", "county", "610100", "610000", "610100")]
    return pd.DataFrame(rows, columns=["adcode", "admin_level", "parent_adcode",
                                       "province_adcode", "city_adcode"]).astype("string")


def units(*rows: tuple[str, str | None, float | None, int]) -> pd.DataFrame:
    """Units as (county, size, 五有 score, pieces in use)."""
    columns = ["credit_code", "county_adcode", "city_adcode", "province_adcode", "size",
               "five_have_score", "in_use_count"]
    data = [(f"U{i}", county, county[:4] + "00", county[:2] + "0000", size, score, n)
            for i, (county, size, score, n) in enumerate(rows)]
    return pd.DataFrame(data, columns=columns).astype(
        {**{c: "string" for c in columns[:5]}, "five_have_score": "Float64"})


def rates(frame: pd.DataFrame, as_of: date = date(2026, 11, 1),
          rules: BuildStatusRules = RULES) -> pd.DataFrame:
    status = unit_build_status(frame, rules)
    small = small_micro(frame, SMALL_SIZES, 3)
    out = region_build_rates(regions(), frame, status, small, as_of, rules)
    out.index = regions()["adcode"].to_numpy()
    return out


# --------------------------------------------------------------------------- build status

def test_a_units_status_comes_from_its_five_have_score():
    frame = units(*(("410105", "大型", s, 1) for s in (5, 4, 3, 2, 0, None)))
    assert unit_build_status(frame, RULES).tolist() == [
        "已建成", "部分建成", "部分建成", "未建成", "未建成", "未评估"]
    looser = BuildStatusRules(five_have_min=4, partial_min=2)
    assert unit_build_status(frame, looser).tolist() == [
        "已建成", "已建成", "部分建成", "部分建成", "未建成", "未评估"]
    assert set(unit_build_status(frame, RULES)) <= set(BUILD_STATUSES)
    assert unit_build_status(frame.drop(columns="five_have_score"), RULES).tolist() == [
        "未评估"] * 6


def test_small_micro_by_size_or_else_by_equipment_count():
    frame = units(("410105", "小型", 5, 40), ("410105", "微型", 5, 1), ("410105", "中型", 5, 1),
                  ("410105", "大型", 5, 1), ("410105", None, 5, 3), ("410105", None, 5, 4),
                  ("410105", " ", 5, 0))
    assert small_micro(frame, SMALL_SIZES, 3).tolist() == [
        True, True, False, False, True, False, True]
    assert small_micro(frame, SMALL_SIZES, 0).tolist()[4:] == [False, False, True]


def test_build_rate_per_size_class_and_level():
    frame = units(
        ("410105", "大型", 5, 9), ("410105", "中型", 3, 9),                   # large/medium: 1 of 2
        ("410105", "小型", 5, 1), ("410105", "微型", 2, 1), ("410105", None, None, 1),  # small
        ("610102", "小型", 5, 1))
    out = rates(frame)
    assert list(out.columns) == list(BUILD_RATE_COLUMNS)
    county = out.loc["410105"]
    assert (county["units_assessed"], county["units_built"], county["units_small_micro"]) == (
        4, 2, 3)
    assert county["build_rate"] == pytest.approx(2 / 5)  # the unassessed unit is not built
    assert county["build_rate_large_medium"] == pytest.approx(1 / 2)
    assert county["build_rate_small_micro"] == pytest.approx(1 / 3)
    for code in ("410100", "410000"):  # the city and the province hold the county
        assert out.loc[code, "build_rate"] == pytest.approx(2 / 5)
    assert out.loc["610102", "build_rate"] == 1.0
    assert math.isnan(out.loc["610102", "build_rate_large_medium"])  # no such units there
    # rates over the assessed units only, if the rule file says so
    over_assessed = rates(frame, rules=BuildStatusRules(unassessed_in_rate=False))
    assert over_assessed.loc["410105", "build_rate"] == pytest.approx(2 / 4)
    assert over_assessed.loc["410105", "build_rate_small_micro"] == pytest.approx(1 / 2)


def test_the_target_only_in_henan_from_2021():
    frame = units(("410105", "大型", 5, 9), ("610102", "大型", 5, 9))
    now = rates(frame, date(2026, 11, 1))
    assert (now.loc[["410000", "410100", "410105"], "build_target"] == 1.0).all()
    assert (now.loc[["410000", "410100", "410105"], "build_target_date"] == "2021-12-31").all()
    assert now.loc[["610000", "610100", "610102"], "build_target"].isna().all()
    assert now.loc[["610000", "610100", "610102"], "build_target_date"].isna().all()
    before = rates(frame, date(2020, 12, 31))
    assert before["build_target"].isna().all() and before["build_target_date"].isna().all()
    assert (before["build_rate"].dropna() == 1.0).all()  # the rate is shown all the same
    shaanxi = BuildStatusRules(targets=(
        BuildTarget(), BuildTarget(provinces=("610000",), from_year=2020, to_year=2022,
                                   target=0.9, target_date=date(2022, 12, 31), basis="试行")))
    assert rates(frame, date(2022, 6, 1), shaanxi).loc["610102", "build_target"] == 0.9
    assert math.isnan(rates(frame, date(2023, 6, 1), shaanxi).loc["610102", "build_target"])


def test_no_units_no_rate():
    out = rates(units())
    assert (out["units_built"] == 0).all() and out["build_rate"].isna().all()


# --------------------------------------------------------------------------- checklist

def test_a_small_units_checklist_fits_its_equipment():
    frame = units(("410105", "小型", 5, 2), ("410105", "微型", 5, 1), ("410105", "大型", 5, 2),
                  ("410105", "小型", 5, 0))
    equipment = pd.DataFrame({
        "unit_credit_code": ["U0", "U0", "U1", "U1", "U2", "U2"],
        "top_category": ["3000", "5000", "1000", "3000", "3000", "1000"],
        "in_use": [True, True, True, False, True, True]}).astype(
        {"unit_credit_code": "string", "top_category": "string", "in_use": "boolean"})
    small = small_micro(frame, SMALL_SIZES, 3)
    lists = [[item["id"] for item in json.loads(c)]
             for c in checklists(frame, equipment, small, SmallMicroRules())]
    general = ["self_check", "inspection_due"]
    assert lists[0] == [*general, "elevator_maintenance", "elevator_96333", "vehicle_drivers"]
    assert lists[1] == [*general, "boiler_operators", "boiler_water"]  # its elevator is idle
    assert lists[2] == []  # a large unit gets the full measures, not the checklist
    assert lists[3] == general
    item = json.loads(checklists(frame, equipment, small, SmallMicroRules())[0])[2]
    assert set(item) == {"id", "text", "basis"} and "第四十五条" in item["basis"]


def test_checklist_rules_are_checked():
    with pytest.raises(ValidationError):
        ChecklistItem(id="x", categories=("3100",), text="t", basis="b")
    with pytest.raises(ValidationError):
        SmallMicroRules(checklist=(DEFAULT_CHECKLIST[0], DEFAULT_CHECKLIST[0]))
    with pytest.raises(ValidationError):
        BuildStatusRules(five_have_min=3, partial_min=4)
    assert all(item.basis for item in DEFAULT_CHECKLIST)


def test_the_rule_file_holds_both_sections(tmp_path):
    text = to_toml(Rules())
    assert "[build_status]" in text and "[[build_status.targets]]" in text
    assert "[[small_micro.checklist]]" in text and 'target_date = "2021-12-31"' in text
    path = tmp_path / "rules.toml"
    path.write_text("[build_status]\nfive_have_min = 4\n\n[[build_status.targets]]\n"
                    'provinces = ["610000"]\nfrom_year = 2020\ntarget = 0.8\n'
                    'target_date = "2022-06-30"\nbasis = "试行"\n\n[small_micro]\n'
                    "max_equipment = 5\n", encoding="utf-8")
    rules = load_rules(path)
    assert rules.build_status.five_have_min == 4 and rules.small_micro.max_equipment == 5
    assert rules.build_status.targets[0].provinces == ("610000",)
    assert rules.build_status.targets[0].target_date == date(2022, 6, 30)
    assert rules.small_micro.checklist == DEFAULT_CHECKLIST


def test_the_registry_carries_the_fields_the_report_reads():
    fields = set(ALL["regions"].field_names)
    assert set(BUILD_RATE_COLUMNS) <= fields
    assert {"build_status", "small_micro", "checklist"} <= set(ALL["units"].field_names)


# --------------------------------------------------------------------------- the demo

@pytest.mark.slow
def test_the_demo_build_rates_add_up(api):
    province = get(api, "admin", "/api/regions/410000/summary").json()["region"]
    assert province["build_target"] == 1.0 and province["build_target_date"] == "2021-12-31"
    assert 0 < province["units_built"] <= province["units_assessed"] <= province["units"]
    assert province["build_rate"] == pytest.approx(province["units_built"] / province["units"])
    assert 0 < province["build_rate_small_micro"] < 1
    assert 0 < province["build_rate_large_medium"] < 1
    assert 0 < province["units_small_micro"] < province["units"]
    county = get(api, "county", f"/api/regions/{api['county']}/summary")
    assert county.status_code == 200
    region = county.json()["region"]
    assert region["build_rate"] == pytest.approx(region["units_built"] / region["units"])
    assert region["build_target"] == 1.0
    shaanxi = get(api, "admin", "/api/regions/610000/summary").json()["region"]
    assert shaanxi["build_target"] is None and shaanxi["build_target_date"] is None
    rows = get(api, "admin", "/api/layers/regions", limit=10_000).json()["features"]
    henan = [r["properties"] for r in rows if r["properties"]["admin_level"] == "county"
             and r["properties"]["adcode"].startswith("41")]
    assert sum(c["units_built"] for c in henan) == province["units_built"]


@pytest.mark.slow
def test_the_demo_units_carry_their_status_and_mode(api):
    page = get(api, "admin", "/api/layers/units", limit=10_000).json()["features"]
    units_ = pd.DataFrame([f["properties"] for f in page])
    status = unit_build_status(units_, RULES)
    assert (units_["build_status"] == status).all()
    small = units_["size"].isin(SMALL_SIZES).to_numpy()
    assert (units_["small_micro"].to_numpy(dtype=bool) == small).all()  # every size given
    has = np.asarray([len(c) > 0 for c in units_["checklist"]])
    assert (has == small).all()
