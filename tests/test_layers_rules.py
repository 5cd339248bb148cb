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
