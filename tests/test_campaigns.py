"""The monthly campaign calendar: rule-file data, Shaanxi's units in 2020–2022 only."""

from __future__ import annotations

from datetime import date

import pandas as pd

from layers.campaigns import DEFAULT_CAMPAIGNS, Campaign
from layers.rules import load_rules
from service.worklist import _campaign_items

UNITS = pd.DataFrame({
    "credit_code": ["SX1", "SX2", "HN1"], "name": ["陕甲", "陕乙", "豫甲"],
    "level": ["red", "blue", "red"], "province_adcode": ["610000", "610000", "410000"],
    "county_adcode": ["610102", "610102", "410102"], "h3": ["a", "b", "c"]})


def items(day: date, campaigns=DEFAULT_CAMPAIGNS) -> pd.DataFrame:
    return _campaign_items(day, lambda: UNITS, campaigns)


def test_the_calendar_comes_from_the_rule_file() -> None:
    assert load_rules().campaigns == DEFAULT_CAMPAIGNS


def test_campaigns_only_for_shaanxi_units_in_2020_to_2022() -> None:
    got = items(date(2021, 9, 15))  # an 应急演练月
    assert got["unit_credit_code"].tolist() == ["SX1"]  # Shaanxi, red; not blue, not Henan
    assert "企业应急演练月" in got["reason"].iloc[0]
    assert "陕西省《全省特种设备安全专项整治三年行动实施方案》二（一）" in got["reason"].iloc[0]
    assert items(date(2026, 9, 15)).empty  # after the plan
    assert items(date(2021, 11, 15)).empty  # no campaign in November


def test_a_national_campaign_from_the_file_reaches_every_province() -> None:
    mine = (Campaign(months=(11,), text="自定专项月", levels=("red",)),)
    got = items(date(2026, 11, 2), mine)
    assert sorted(got["unit_credit_code"]) == ["HN1", "SX1"]


def test_the_service_takes_the_calendar_of_its_own_rule_file(tmp_path) -> None:
    """The worklist routes read ``RISKMAP_RULES``, the file the builds use."""
    from service.worklist import default_campaigns

    custom = tmp_path / "rules.toml"
    custom.write_text('[[campaigns]]\nmonths = [11]\ntext = "自定专项月"\nlevels = ["red"]\n',
                      encoding="utf-8")
    mine = default_campaigns(custom)
    assert [c.text for c in mine] == ["自定专项月"]
    assert default_campaigns(None) == DEFAULT_CAMPAIGNS


# --------------------------------------------------------------------------- completion

def shaanxi_boundaries() -> pd.DataFrame:
    from geo.boundaries import load_boundaries

    return pd.concat([load_boundaries(["410000", "610000"], level)
                      for level in ("province", "city", "county")], ignore_index=True)


SX_UNITS = pd.DataFrame({
    "credit_code": ["A", "B", "C", "D", "E", "F", "H"],
    "level": ["red", "orange", "red", "blue", "red", "orange", "red"],
    "province_adcode": ["610000"] * 6 + ["410000"],
    "city_adcode": ["610100", "610100", "610100", "610100", "610200", None, "410100"],
    "county_adcode": ["610102", "610102", "610103", "610103", "610202", "610202", "410102"]})


def checks(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"credit_code": [r[0] for r in rows],
                         "checked_on": pd.to_datetime([r[1] for r in rows])})


def completion(as_of: date, the_checks: pd.DataFrame, units=SX_UNITS) -> pd.DataFrame:
    from layers.workload import campaign_completion

    return campaign_completion(units, the_checks, shaanxi_boundaries(), DEFAULT_CAMPAIGNS,
                               as_of).set_index(["admin_level", "adcode", "campaign"])


def test_campaign_completion_per_region_for_shaanxi_2021() -> None:
    done = checks(("A", "2021-08-03"), ("A", "2021-09-01"),  # drill months, twice: one unit
                  ("B", "2021-07-30"),                       # the month before: not counted
                  ("C", "2021-09-20"),                       # after as_of: not counted
                  ("E", "2020-08-10"),                       # last year's: not counted
                  ("F", "2021-08-31"),                       # no city code: by its county
                  ("D", "2021-08-15"),                       # blue: not named
                  ("H", "2021-08-15"))                       # Henan: no campaign
    got = completion(date(2021, 9, 15), done)
    drill = "企业应急演练月"
    xincheng = got.loc[("county", "610102", drill)]
    assert (xincheng["units_named"], xincheng["units_checked"]) == (2, 1)
    assert xincheng["completion"] == 0.5 and xincheng["status"] == "进行中"
    assert xincheng["year"] == 2021 and xincheng["months"] == "8–9月"
    assert xincheng["levels"] == "重大风险、较大风险"
    assert "陕西省《全省特种设备安全专项整治三年行动实施方案》二（一）" in xincheng["basis"]
    beilin = got.loc[("county", "610103", drill)]
    assert (beilin["units_named"], beilin["units_checked"]) == (1, 0)  # C's check is later
    xian = got.loc[("city", "610100", drill)]
    assert (xian["units_named"], xian["units_checked"]) == (3, 1)
    tongchuan = got.loc[("city", "610200", drill)]
    assert (tongchuan["units_named"], tongchuan["units_checked"]) == (2, 1)  # E last year; F
    province = got.loc[("province", "610000", drill)]
    assert (province["units_named"], province["units_checked"]) == (5, 2)
    assert province["completion"] == 0.4
    spring = got.loc[("province", "610000", "春节后企业复工复产隐患自我排查月")]
    assert spring["status"] == "已结束" and spring["units_checked"] == 0
    # only Shaanxi's regions: Henan has no row
    assert not got.reset_index()["adcode"].str.startswith("41").any()
    empty = got[got["units_named"] == 0]
    assert empty["completion"].isna().all()


def test_campaign_completion_before_a_campaign_and_outside_its_years() -> None:
    got = completion(date(2021, 3, 10), checks(("A", "2021-03-01")))
    assert got.loc[("province", "610000", "春节后企业复工复产隐患自我排查月"), "units_checked"] == 1
    drill = got.loc[("province", "610000", "企业应急演练月")]
    assert drill["status"] == "未开始" and drill["units_checked"] == 0
    assert completion(date(2026, 9, 15), checks(("A", "2026-09-01"))).empty  # after the plan


def test_the_henan_demo_year_has_no_campaign_rows() -> None:
    from layers.workload import COMPLETION_COLUMNS

    got = completion(date(2026, 11, 1), checks(("H", "2026-08-15")))
    assert got.empty and sorted(got.reset_index().columns) == sorted(COMPLETION_COLUMNS)


def test_the_worklist_names_the_campaign_and_its_basis_for_shaanxi_units() -> None:
    got = _campaign_items(date(2021, 8, 2), lambda: SX_UNITS.assign(
        name="单位", h3="c"), DEFAULT_CAMPAIGNS)
    assert sorted(got["unit_credit_code"]) == ["A", "B", "C", "E", "F"]
    assert got["reason"].str.contains("8月为企业应急演练月").all()
    basis = "陕西省《全省特种设备安全专项整治三年行动实施方案》二（一）"
    assert got["reason"].str.contains(basis).all()
