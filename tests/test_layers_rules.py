"""The rule file: the shipped default is the code's default, partial files override,
anything wrong is refused naming the entry."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from layers.rules import Rules, RulesError, default_rules_path, load_rules, to_toml
from service.cli import app


def test_the_shipped_rule_file_is_the_default_and_is_current():
    assert load_rules() == Rules()
    # regenerate with: riskmap rules --write data/rules.toml
    assert default_rules_path().read_text(encoding="utf-8") == to_toml(Rules())


def test_a_partial_file_changes_only_what_it_names(tmp_path: Path):
    path = tmp_path / "r.toml"
    path.write_text('version = "2027试行"\n[risk]\nmajor_hazard_level = "orange"\n'
                    '[frequency.base_months]\nred = 2\n', encoding="utf-8")
    rules = load_rules(path)
    assert rules.version == "2027试行" and rules.risk.major_hazard_level == "orange"
    assert rules.risk.bands == Rules().risk.bands and rules.hotspots == Rules().hotspots
    assert rules.fingerprint() != Rules().fingerprint()


@pytest.mark.parametrize("text, where", [
    ("[risk]\nbogus = 1\n", "risk.bogus"),
    ("[hotspots]\nalpha = 1.5\n", "hotspots.alpha"),
    ('[risk.likelihood.overdue]\nvalue = 7\nreason = "x"\n', "risk.likelihood"),
    ("[hotspots]\nk = \"two\"\n", "hotspots.k"),
    ("[risk\nmethod = 1\n", "不是合法的 TOML"),
])
def test_invalid_rule_files_are_refused_naming_the_entry(tmp_path: Path, text: str,
                                                         where: str):
    path = tmp_path / "r.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError, match=where.replace(".", r"\.")):
        load_rules(path)


def test_a_gbk_or_missing_rule_file_is_refused(tmp_path: Path):
    path = tmp_path / "r.toml"
    path.write_bytes('title = "规则"\n'.encode("gbk"))
    with pytest.raises(RulesError, match="UTF-8"):
        load_rules(path)
    with pytest.raises(RulesError, match="无法读取"):
        load_rules(tmp_path / "missing.toml")


def test_cli_checks_rules_and_build_refuses_a_bad_file(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[warnings]\nnope = true\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["rules", "--check", str(bad)])
    assert result.exit_code == 2 and "warnings.nope" in result.output
    result = runner.invoke(app, ["build", "--store", str(tmp_path / "s"), "--rules", str(bad)])
    assert result.exit_code == 2 and "未知的规则项" in result.output
    good = runner.invoke(app, ["rules", "--check", str(default_rules_path())])
    assert good.exit_code == 0 and "规则有效" in good.output


# --------------------------------------------------------------------------- scopes

def test_scope_applies_and_masks() -> None:
    from datetime import date

    import pandas as pd

    from layers.rules import Scope

    shaanxi = Scope(provinces=("610000",), from_year=2020, to_year=2022)
    assert shaanxi.applies("610000", date(2022, 12, 31))
    assert not shaanxi.applies("610000", date(2023, 1, 1))
    assert not shaanxi.applies("410000", date(2021, 1, 1))
    mask = shaanxi.mask(pd.Series(["610000", "410000", None]), date(2021, 5, 1))
    assert mask.tolist() == [True, False, False]
    national = Scope()
    assert national.applies(None, date(1999, 1, 1))
    assert national.mask(pd.Series(["410000", None]), date(2026, 1, 1)).tolist() == [True, True]
    henan = Scope(provinces=("410000",), from_year=2021)
    assert henan.applies("410000", date(2030, 1, 1)) and not henan.applies("410000",
                                                                          date(2020, 1, 1))


def test_the_shaanxi_rules_are_scoped_by_default() -> None:
    rules = Rules()
    for scoped in (rules.frequency.focus_category, rules.insurance, *rules.campaigns):
        assert (scoped.provinces, scoped.from_year, scoped.to_year) == (("610000",), 2020, 2022)
    assert {m for c in rules.campaigns for m in c.months} == set(range(2, 10))


@pytest.mark.parametrize(("toml", "where", "what"), [
    ('[insurance]\nprovinces = ["990000"]\n', "insurance", "990000"),
    ('[insurance]\nfrom_year = 2022\nto_year = 2020\n', "insurance", "to_year=2020"),
    ('[frequency.focus_category]\nprovinces = ["4100"]\n', "frequency.focus_category", "4100"),
    ('[[campaigns]]\nmonths = [3]\ntext = "x"\nfrom_year = 2023\nto_year = 2021\n',
     "campaigns.0", "from_year=2023"),
])
def test_rules_check_refuses_bad_scopes(tmp_path, toml, where, what) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(RulesError) as err:
        load_rules(path)
    assert f"  {where}" in str(err.value) and what in str(err.value)
    out = CliRunner().invoke(app, ["rules", "--check", str(path)])
    assert out.exit_code != 0 and what in out.output
