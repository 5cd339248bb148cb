"""The rule table: every tunable of the layers, in one TOML file a regulator can edit.

``data/rules.toml`` is the default; ``riskmap build --rules FILE`` uses another one. A file
may set only what it changes: sections and fields it leaves out keep their defaults (a
list, such as the LEC bands, is replaced whole). Anything unknown, out of range or
inconsistent is refused with the path of the offending entry and why, in Chinese.
"""

from __future__ import annotations

import hashlib
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import tomlkit
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tomlkit.items import Table

from layers.aggregate import AggregateRules
from layers.alerts import InsuranceRules, WarningRules
from layers.build_status import BuildStatusRules
from layers.campaigns import DEFAULT_CAMPAIGNS, Campaign
from layers.demonstration import DemonstrationRules
from layers.frequency import FrequencyRules
from layers.hotspots import HotspotRules
from layers.parks import ParkRules
from layers.points import BlacklistRules
from layers.report import ReportRules
from layers.risk import RiskRules
from layers.scope import Scope
from layers.small_micro import SmallMicroRules
from layers.workload import CapacityRules

__all__ = ["Campaign", "Rules", "RulesError", "Scope", "load_rules", "to_toml"]


class RulesError(ValueError):
    """A rule file that cannot be used; the message names the file, entry and reason."""


class Rules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field("default", min_length=1, max_length=64,
                         description="规则版本号，随图层一并记录")
    title: str = Field("默认规则", description="规则名称")
    risk: RiskRules = RiskRules()
    aggregate: AggregateRules = AggregateRules()
    hotspots: HotspotRules = HotspotRules()
    frequency: FrequencyRules = FrequencyRules()
    capacity: CapacityRules = Field(
        CapacityRules(), description="检查力量：各区县每年可完成的现场监督检查次数；"
        "加频只在力量之内缩短检查间隔（监管力量与监管任务相匹配）")
    demonstration: DemonstrationRules = DemonstrationRules()
    parks: ParkRules = ParkRules()
    insurance: InsuranceRules = InsuranceRules()
    warnings: WarningRules = WarningRules()
    blacklist: BlacklistRules = BlacklistRules()
    report: ReportRules = Field(
        ReportRules(), description="年度报告（整体情况、主要措施、存在的问题、下一步工作安排；"
        "陕西省《全省特种设备安全专项整治三年行动实施方案》四（一））：问题清单长度与下一步工作安排")
    build_status: BuildStatusRules = Field(
        BuildStatusRules(), description="双重预防体系建成情况与建成率（豫市监办〔2021〕55号 "
        "二（一）“五有”标准、二（四）“2021年底……全面建成双重预防体系”）")
    small_micro: SmallMicroRules = Field(
        SmallMicroRules(), description="小微企业简易模式（豫市监办〔2021〕55号 二（四）"
        "“一企一档一码”“简便、实用、管用”）")
    campaigns: tuple[Campaign, ...] = Field(
        DEFAULT_CAMPAIGNS, description="专项整治月历：每月专项任务（陕西省方案二（一）；"
        "provinces/from_year/to_year 为适用范围，不写表示全国、长期适用）")

    def fingerprint(self) -> str:
        """A short hash of the rules in force (not of the file's spelling)."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]


def default_rules_path() -> Path:
    return Path(str(resources.files("data").joinpath("rules.toml")))


def load_rules(path: str | Path | None = None) -> Rules:
    """Rules from ``path`` (default ``data/rules.toml``); :class:`RulesError` if unusable."""
    path = Path(path) if path is not None else default_rules_path()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RulesError(f"规则文件 {path} 无法读取：{exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RulesError(f"规则文件 {path} 不是 UTF-8 编码") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"规则文件 {path} 不是合法的 TOML：{exc}") from None
    try:
        return Rules.model_validate(data)
    except ValidationError as exc:
        raise RulesError(f"规则文件 {path} 有误：\n" + describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """One line per problem: the dotted path of the entry, the message, the value given."""
    lines = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(根)"
        given = err.get("input")
        shown = repr(given) if not isinstance(given, dict | list) else type(given).__name__
        message = _MESSAGES.get(err["type"], err["msg"])
        lines.append(f"  {where}: {message}（给定值 {shown}）")
    return "\n".join(lines)


_MESSAGES = {
    "extra_forbidden": "未知的规则项（拼写错误？）",
    "missing": "缺少必填项",
    "greater_than_equal": "取值过小",
    "less_than_equal": "取值过大",
    "greater_than": "取值过小",
    "less_than": "取值过大",
    "float_parsing": "应为数字",
    "int_parsing": "应为整数",
    "literal_error": "取值不在允许范围内",
}


HEADER = """riskmap 风险分级与监管图层规则表（默认）

监管部门可复制本文件修改后以 `riskmap build --rules 文件` 使用；只写需要改的项即可，
未写的项取默认值（列表整体替换）。每项注释说明其含义，依据见 docs/layers.md。
本文件由 `riskmap rules --write data/rules.toml` 从代码中的默认值生成。"""


def to_toml(rules: Rules) -> str:
    """The rules as a TOML document, each entry commented with its description."""
    doc = tomlkit.document()
    for line in HEADER.splitlines():
        doc.add(tomlkit.comment(line))
    doc.add(tomlkit.nl())
    _fill(doc, rules)
    return tomlkit.dumps(doc)


def _fill(container: Any, model: BaseModel, comments: bool = True) -> None:
    data = model.model_dump(mode="json")
    fields = type(model).model_fields
    scalars = [n for n in fields if not _is_table(getattr(model, n))]
    for name in scalars:  # TOML wants a table's plain keys before its sub-tables
        value = data[name]
        if value is None:
            continue
        if isinstance(value, dict):  # e.g. targets by year: an inline table
            item = tomlkit.inline_table()
            item.update(value)
        else:
            item = tomlkit.item(value)
        if comments and fields[name].description:
            item.comment(fields[name].description)
        container.add(name, item)
    for name in fields:
        value = getattr(model, name)
        if name in scalars:
            continue
        if isinstance(value, BaseModel):
            table = tomlkit.table()
            _describe(table, fields[name].description)
            _fill(table, value)
            container.add(name, table)
        elif isinstance(value, dict):
            table = tomlkit.table()
            _describe(table, fields[name].description)
            for key, sub in value.items():
                inner = tomlkit.table()
                _fill(inner, sub)
                table.add(str(key), inner)
            container.add(name, table)
        else:  # a tuple of models: an array of tables, described once above it
            if fields[name].description:
                container.add(tomlkit.comment(f"[[{name}]] {fields[name].description}"))
            aot = tomlkit.aot()
            for i, sub in enumerate(value):  # describe the fields once, on the first
                inner = tomlkit.table()
                _fill(inner, sub, comments=i == 0)
                aot.append(inner)
            container.add(name, aot)


def _is_table(value: object) -> bool:
    if isinstance(value, BaseModel):
        return True
    if isinstance(value, dict):
        return bool(value) and all(isinstance(v, BaseModel) for v in value.values())
    if isinstance(value, tuple | list):
        return bool(value) and all(isinstance(v, BaseModel) for v in value)
    return False


def _describe(table: Table, description: str | None) -> None:
    if description:
        table.add(tomlkit.comment(description))
