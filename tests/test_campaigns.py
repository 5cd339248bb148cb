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
