"""The yearly report's figures (年度报告：整体情况、主要措施、存在的问题、下一步工作安排).

陕西省《全省特种设备安全专项整治三年行动实施方案》四（一） asks each region for a yearly and a
three-year report "包括整体情况、主要措施、存在的问题、下一步工作安排等". This module turns
frames already read for one region (its row of the regions layer, its kept history, its
children, its equipment, units, warnings, hotspots, stored checks and hazards …, see
:class:`ReportInput`) into plain figures (:func:`assemble`), vectorised, with no web or
store code; ``service/report`` reads the frames in the caller's scope and renders them.

The next steps are rules of the rule file (``[report]``, :class:`ReportRules`): each fired
warning rule and each boost of the inspection frequency maps to an action with its basis.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from data.catalogue import TOP_CATEGORIES
from data.plans import cite
from layers.frames import LEVEL_ZH

CHILD_LEVEL = {"province": "city", "city": "county"}
LEVEL_NAME = {"province": "省", "city": "地市", "county": "区县"}
CHILD_NAME = {"province": "地市", "city": "区县"}


# --------------------------------------------------------------------------- rules

class NextStep(BaseModel):
    """One next step: when ``when`` fired in the region, the report proposes ``action``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    when: str = Field(pattern=r"^(warning|boost):[a-z][a-z0-9_]*$",
                      description="触发来源：warning:预警规则编号 或 boost:加频规则名"
                                  "（如 warning:overdue_rate、boost:crowded_venue）")
    action: str = Field(min_length=1, max_length=300, description="下一步工作安排（行动表述）")
    basis: str = Field(min_length=1, max_length=300, description="依据（文件名称、条款及原文）")


def _henan(clause: str, quote: str | None = None) -> str:
    return cite("henan", clause, quote)


def _shaanxi(clause: str, quote: str | None = None) -> str:
    return cite("shaanxi", clause, quote)


_REGIONAL = _henan("二（二）", "区域性或者普遍严重事故隐患")
_FREQUENCY = _henan("二（二）", "加大监督检查频次")
_DEMONSTRATION = _henan("二（四）", "每个地市按照每类特种设备分别建立1至2家示范试点企业")

DEFAULT_NEXT_STEPS: tuple[NextStep, ...] = (
    NextStep(when="warning:overdue_rate",
             action="督促逾期未检设备的使用单位限期申报检验，检验机构发现逾期未检设备及时报告属地"
                    "市场监管部门，逾期仍未检验的依法查处",
             basis=_henan("二（三）", "发现设备逾期未检……及时报告")),
    NextStep(when="warning:open_major_hazards",
             action="对未销号重大隐患实行挂牌督办，逐项明确整改责任、措施和时限，整改完成后核查销号",
             basis=_henan("二（二）", "推动建立特种设备安全综合治理、重大隐患挂牌督办制度")),
    NextStep(when="warning:open_major_rate",
             action="对重大隐患密度偏高地区的未销号重大隐患实行挂牌督办，逐项明确整改责任、措施和时限",
             basis=_henan("二（二）", "推动建立特种设备安全综合治理、重大隐患挂牌督办制度")),
    NextStep(when="warning:late_hazard_rate",
             action="督促逾期未整改隐患的使用单位限期整改销号，对整改不力的约谈并依法处理",
             basis=_henan("二（一）", "实现隐患排查、登记、治理、销号的全过程记录和闭环管理")),
    NextStep(when="warning:insurance_shortfall",
             action="推动电梯使用单位投保电梯安全责任保险，推广“保险+服务”模式，使覆盖率达到年度目标",
             basis=_shaanxi("二（五）")),
    NextStep(when="warning:hot_cells",
             action="对隐患热点网格内的使用单位加大监督检查频次，由网格员开展集中排查",
             basis=_REGIONAL),
    NextStep(when="warning:regional_clusters",
             action="对区域性隐患聚集区开展区域专项整治，会同属地政府和行业部门协同治理",
             basis=_REGIONAL),
    NextStep(when="warning:widespread_categories",
             action="对存在普遍性严重隐患的设备类别开展专项排查治理",
             basis=_REGIONAL),
    NextStep(when="boost:crowded_venue",
             action="对人员密集场所的在用设备加大监督检查频次",
             basis=_henan("二（二）", "加强人员密集场所特种设备……的双重预防")),
    NextStep(when="boost:key_equipment", action="对重点特种设备加大监督检查频次",
             basis=_FREQUENCY),
    NextStep(when="boost:hotspot",
             action="对存在区域性或者普遍严重事故隐患的使用单位加大监督检查频次",
             basis=_REGIONAL),
    NextStep(when="boost:blacklisted", action="对列入黑名单的使用单位加大监督检查频次并公开通报",
             basis=_henan("二（二）", "列入黑名单并及时进行通报")),
    NextStep(when="boost:overdue_inspection",
             action="对有逾期未检设备的使用单位加大监督检查频次，督促报检",
             basis=_henan("二（三）", "发现设备逾期未检……及时报告")),
    NextStep(when="boost:focus_category", action="对年度重点治理领域的设备加大监督检查频次",
             basis=_shaanxi("二（四）")),
    NextStep(when="boost:late_rectification",
             action="对逾期未整改一般隐患的使用单位加大监督检查频次，督促闭环整改",
             basis=_henan("二（一）", "实现隐患排查、登记、治理、销号的全过程记录和闭环管理")),
)


class ReportRules(BaseModel):
    """年度报告：问题清单的长度与下一步工作安排的规则（rules TOML section ``report``）."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    top_children: int = Field(10, ge=1, le=100,
                              description="“存在的问题”中按逾期未检率列出的下级行政区数")
    top_units: int = Field(10, ge=1, le=100,
                           description="“存在的问题”中列出的重大风险使用单位数")
    next_steps: tuple[NextStep, ...] = Field(
        DEFAULT_NEXT_STEPS,
        description="下一步工作安排：预警规则（warning:编号）或加频规则（boost:名称）触发时的行动与依据；"
                    "未列出的预警规则按其提示语提出核查整改")

    @field_validator("next_steps")
    @classmethod
    def _unique(cls, v: tuple[NextStep, ...]) -> tuple[NextStep, ...]:
        seen = [s.when for s in v]
        if len(seen) != len(set(seen)):
            raise ValueError("next_steps 的 when 须唯一")
        return v


# --------------------------------------------------------------------------- input

@dataclass
class ReportInput:
    """What one region's report is made of, read in the caller's scope."""

    adcode: str
    name: str
    level: str                    # province / city / county
    year: int
    build_as_of: date             # the build in force (problems, next steps)
    region: pd.DataFrame          # its row of the regions layer (may be empty: another year)
    insurance: pd.DataFrame       # its row of the insurance layer
    history: pd.DataFrame         # region_history rows of the region (indicators dicts)
    children: pd.DataFrame        # regions rows one level down
    equipment: pd.DataFrame       # top_category, in_use, level, overdue, open_hazards, …
    units: pd.DataFrame           # credit_code, name, level, open_hazards, …, measure_ids
    parks: pd.DataFrame           # park_id, name, measure_ids
    frequency: pd.DataFrame       # credit_code, boosts
    warnings: pd.DataFrame        # the region's and its children's rows
    hotspots: pd.DataFrame
    widespread: pd.DataFrame
    checks: pd.DataFrame          # stored checks of the region's units
    hazards: pd.DataFrame         # stored hazards of the region's equipment
    demonstration: pd.DataFrame
    coverage: pd.DataFrame        # demonstration-coverage rows
    rules: ReportRules
    region_names: dict[str, str] = field(default_factory=dict)  # adcode → name
    campaigns: pd.DataFrame | None = None    # campaign-completion, when built
    workload: pd.DataFrame | None = None     # workload, when built
    labels: dict[str, dict[str, str]] = field(default_factory=dict)  # layer → field labels


class NoReportData(LookupError):
    """No build of the year has figures for the region."""


# --------------------------------------------------------------------------- overview

#: (indicator, label, kind): kind "n" a count, "rate" a share shown in per cent
OVERVIEW: tuple[tuple[str, str, str], ...] = (
    ("equipment", "在用设备（台）", "n"),
    ("n_red", "重大风险设备（台）", "n"),
    ("n_orange", "较大风险设备（台）", "n"),
    ("n_yellow", "一般风险设备（台）", "n"),
    ("n_blue", "低风险设备（台）", "n"),
    ("units", "使用单位（家）", "n"),
    ("units_red", "重大风险使用单位（家）", "n"),
    ("units_orange", "较大风险使用单位（家）", "n"),
    ("overdue", "逾期未检设备（台）", "n"),
    ("overdue_rate", "逾期未检率", "rate"),
    ("open_hazards", "未销号隐患（项）", "n"),
    ("open_major_hazards", "未销号重大隐患（项）", "n"),
    ("insurance_coverage", "电梯责任保险覆盖率", "rate"),
    ("units_built", "已建成双重预防体系的使用单位（家）", "n"),
    ("build_rate", "双重预防体系建成率", "rate"),
    ("build_rate_large_medium", "建成率（大中型企业）", "rate"),
    ("build_rate_small_micro", "建成率（小微企业）", "rate"),
    ("build_target", "建成率目标", "rate"),
)


def _number(value: object) -> float | None:
    if value is None or value is pd.NA:
        return None
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if np.isnan(out) else out


def current_indicators(inp: ReportInput) -> tuple[dict, date | None, dict | None, date | None]:
    """The figures of the latest build of the year and of the last build of the year
    before, from the kept history (the layer row when the history has none for the year
    and the build in force is of it). NoReportData when the year has none."""
    hist = inp.history
    if len(hist):
        hist = hist[(hist["level"] == inp.level).to_numpy(dtype=bool)]
        years = pd.to_datetime(hist["as_of"]).dt.year.to_numpy()
    else:
        years = np.array([], dtype=int)
    now = hist[years == inp.year] if len(hist) else hist
    before = hist[years == inp.year - 1] if len(hist) else hist
    if len(now):
        last = now.iloc[-1]
        current, as_of = dict(last["indicators"]), pd.Timestamp(last["as_of"]).date()
    elif inp.build_as_of.year == inp.year and len(inp.region):
        current, as_of = layer_indicators(inp.region, inp.insurance), inp.build_as_of
    else:
        raise NoReportData(inp.year)
    if len(before):
        prev = before.iloc[-1]
        return current, as_of, dict(prev["indicators"]), pd.Timestamp(prev["as_of"]).date()
    return current, as_of, None, None


def layer_indicators(region: pd.DataFrame, insurance: pd.DataFrame) -> dict:
    """The numeric fields of one regions row (and its insurance coverage)."""
    row = region.iloc[0]
    out = {c: _number(row[c]) for c in region.columns
           if c != "geometry" and pd.api.types.is_numeric_dtype(region[c])
           and not pd.api.types.is_bool_dtype(region[c])}
    if len(insurance):
        ins = insurance.iloc[0]
        out["insurance_elevators"] = _number(ins.get("elevators"))
        out["insurance_insured"] = _number(ins.get("insured"))
        out["insurance_coverage"] = _number(ins.get("coverage"))
    return out


def overview_rows(current: dict, previous: dict | None) -> list[dict]:
    """One row per indicator the build has: value, last year's value and the change."""
    rows = []
    for key, label, kind in OVERVIEW:
        if key not in current:
            continue
        value = _number(current.get(key))
        before = _number(previous.get(key)) if previous else None
        change = None if value is None or before is None else value - before
        rows.append({"key": key, "label": label, "kind": kind, "value": value,
                     "previous": before, "change": change})
    return rows


def category_rows(current: dict, previous: dict | None) -> list[dict]:
    """In-use equipment by category this year and last (from the ``cat_`` indicators)."""
    rows = []
    for code, name in TOP_CATEGORIES.items():
        value = _number(current.get(f"cat_{code}"))
        if value is None or (value == 0 and not (previous and previous.get(f"cat_{code}"))):
            continue
        before = _number(previous.get(f"cat_{code}")) if previous else None
        rows.append({"code": code, "name": name, "value": value, "previous": before,
                     "change": None if before is None else value - before})
    return rows


# --------------------------------------------------------------------------- measures

def _in_year(values: pd.Series, year: int) -> np.ndarray:
    days = pd.to_datetime(values, errors="coerce")
    return (days.dt.year == year).fillna(False).to_numpy(dtype=bool)


def check_figures(checks: pd.DataFrame, year: int) -> dict:
    """Supervision checks recorded in the year: how many, units, results, by month."""
    done = checks[_in_year(checks["checked_on"], year)] if len(checks) else checks
    months = np.zeros(12, dtype=int)
    if len(done):
        np.add.at(months, pd.to_datetime(done["checked_on"]).dt.month.to_numpy() - 1, 1)
    results = (done["result"].fillna("未填写").value_counts().sort_index()
               if len(done) else pd.Series(dtype="int64"))
    return {"checks": len(done), "units": int(done["credit_code"].nunique()) if len(done) else 0,
            "results": [{"result": str(k), "count": int(v)} for k, v in results.items()],
            "by_month": months.tolist()}


def hazard_figures(hazards: pd.DataFrame, year: int) -> dict:
    """Hazards found and closed in the year, major ones apart, and closed by the deadline."""
    if not len(hazards):
        return {"found": 0, "found_major": 0, "closed": 0, "closed_major": 0,
                "closed_on_time": 0, "on_time_rate": None, "found_by_month": [0] * 12,
                "closed_by_month": [0] * 12}
    major = (hazards["level"] == "重大").fillna(False).to_numpy(dtype=bool)
    found = _in_year(hazards["found_on"], year)
    closed = _in_year(hazards["closed_on"], year)
    closed_on = pd.to_datetime(hazards["closed_on"], errors="coerce")
    deadline = pd.to_datetime(hazards["deadline"], errors="coerce")
    on_time = closed & (closed_on <= deadline).fillna(False).to_numpy(dtype=bool)

    def by_month(mask: np.ndarray, column: str) -> list[int]:
        months = np.zeros(12, dtype=int)
        np.add.at(months, pd.to_datetime(hazards.loc[mask, column]).dt.month.to_numpy() - 1, 1)
        return months.tolist()

    return {"found": int(found.sum()), "found_major": int((found & major).sum()),
            "closed": int(closed.sum()), "closed_major": int((closed & major).sum()),
            "closed_on_time": int(on_time.sum()),
            "on_time_rate": float(on_time.sum() / closed.sum()) if closed.any() else None,
            "found_by_month": by_month(found, "found_on"),
            "closed_by_month": by_month(closed, "closed_on")}


def demonstration_rows(chosen: pd.DataFrame, coverage: pd.DataFrame, names: dict[str, str],
                       *, by_city: bool) -> dict:
    """The demonstration enterprises chosen: listed (a city, a county), or counted per city
    with the categories still without one (a province)."""
    city = chosen["city_adcode"].astype("string")
    if not by_city:
        rows = chosen.assign(city=city.map(names).fillna(city)).sort_values(
            ["city_adcode", "top_category", "rank"])
        return {"by_city": False, "rows": _records(rows[["city", "category_name", "name",
                                                         "reasons"]])}
    counts = pd.DataFrame({"city_adcode": city.to_numpy(),
                           "top_category": chosen["top_category"].astype("string").to_numpy()})
    per_city = counts.groupby("city_adcode").agg(
        chosen=("top_category", "size"), categories=("top_category", "nunique"))
    if len(coverage):
        gaps = coverage[coverage["gap"].fillna(False).astype(bool).to_numpy()]
        per_gap = gaps.groupby(gaps["city_adcode"].astype("string"))["top_category"].size()
        per_city = per_city.join(per_gap.rename("gaps"), how="outer")
    else:
        per_city["gaps"] = 0
    per_city = per_city.fillna(0).astype(int).reset_index()
    per_city.insert(0, "city", per_city["city_adcode"].map(names).fillna(per_city["city_adcode"]))
    return {"by_city": True, "rows": _records(per_city.drop(columns="city_adcode"))}


# --------------------------------------------------------------------------- problems

def category_problems(equipment: pd.DataFrame) -> list[dict]:
    """In-use equipment per category: red/orange shares, overdue rate, open hazards; worst
    (by the share of red and orange) first."""
    eq = equipment[equipment["in_use"].fillna(False).astype(bool).to_numpy()]
    if not len(eq):
        return []
    level = eq["level"].astype("string")
    frame = pd.DataFrame({
        "code": eq["top_category"].astype("string").to_numpy(),
        "n": 1,
        "red": (level == "red").fillna(False).to_numpy(dtype=int),
        "orange": (level == "orange").fillna(False).to_numpy(dtype=int),
        "overdue": eq["overdue"].fillna(False).astype(bool).to_numpy(dtype=int),
        "open_hazards": eq["open_hazards"].fillna(0).to_numpy(dtype=int),
        "open_major_hazards": eq["open_major_hazards"].fillna(0).to_numpy(dtype=int),
    })
    sums = frame.groupby("code").sum()
    sums["high_share"] = (sums["red"] + sums["orange"]) / sums["n"]
    sums["red_share"] = sums["red"] / sums["n"]
    sums["overdue_rate"] = sums["overdue"] / sums["n"]
    sums = sums.sort_values(["high_share", "n"], ascending=False)
    return [{"code": str(code), "name": TOP_CATEGORIES.get(str(code), str(code)),
             **{k: (float(v) if isinstance(v, float) else int(v)) for k, v in row.items()}}
            for code, row in sums.iterrows()]


def child_problems(children: pd.DataFrame, warnings: pd.DataFrame, top: int) -> list[dict]:
    """The child regions with the highest overdue rates, with their red/orange shares and
    warning grade."""
    if not len(children):
        return []
    n = children["equipment"].fillna(0).astype("float64").to_numpy()
    safe = np.where(n > 0, n, np.nan)
    grade = pd.Series(dtype="string")
    if len(warnings):
        grade = warnings.drop_duplicates("adcode").set_index("adcode")["grade_zh"]
    frame = pd.DataFrame({
        "adcode": children["adcode"].astype("string").to_numpy(),
        "name": children["name"].astype("string").to_numpy(),
        "equipment": n.astype(int),
        "red": children["n_red"].fillna(0).to_numpy(dtype=int),
        "red_share": children["n_red"].fillna(0).to_numpy(dtype=float) / safe,
        "high_share": (children["n_red"].fillna(0).to_numpy(dtype=float)
                       + children["n_orange"].fillna(0).to_numpy(dtype=float)) / safe,
        "overdue": children["overdue"].fillna(0).to_numpy(dtype=int),
        "overdue_rate": children["overdue_rate"].astype("float64").to_numpy(),
        "open_hazards": children["open_hazards"].fillna(0).to_numpy(dtype=int),
        "open_major_hazards": children["open_major_hazards"].fillna(0).to_numpy(dtype=int),
    })
    frame["warning"] = grade.reindex(frame["adcode"]).to_numpy()
    frame = frame[frame["equipment"] > 0].sort_values(
        ["overdue_rate", "high_share"], ascending=False, na_position="last").head(top)
    return _records(frame)


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain Python values (None for missing)."""
    out = frame.astype(object).where(frame.notna(), None)
    return [{k: _plain(v) for k, v in row.items()} for row in out.to_dict("records")]


def _plain(value: object) -> object:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return value


def warning_rows(warnings: pd.DataFrame) -> list[dict]:
    if not len(warnings):
        return []
    order = {"province": 0, "city": 1, "county": 2}
    frame = warnings.assign(_lvl=warnings["admin_level"].map(order)).sort_values(
        ["_lvl", "grade_rank"], ascending=[True, False])
    return _records(frame[["adcode", "name", "admin_level", "grade_zh", "message"]])


def hotspot_rows(hotspots: pd.DataFrame, names: dict[str, str]) -> list[dict]:
    if not len(hotspots):
        return []
    frame = hotspots.sort_values("gi_star", ascending=False)
    out = pd.DataFrame({
        "h3": frame["h3"].astype("string").to_numpy(),
        "county": frame["county_adcode"].astype("string").map(names).to_numpy(),
        "category": frame["main_category"].astype("string").map(TOP_CATEGORIES).to_numpy(),
        "serious_hazards": frame["serious_hazards"].to_numpy(),
        "rate": frame["rate"].to_numpy(),
        "regional": frame["regional"].fillna(False).astype(bool).to_numpy(),
    })
    return _records(out)


def widespread_rows(widespread: pd.DataFrame, names: dict[str, str]) -> list[dict]:
    if not len(widespread):
        return []
    hit = widespread[widespread["widespread"].fillna(False).astype(bool).to_numpy()]
    out = pd.DataFrame({
        "county": hit["county_adcode"].astype("string").map(names).to_numpy(),
        "category": hit["top_category"].astype("string").map(TOP_CATEGORIES).to_numpy(),
        "units": hit["units"].to_numpy(),
        "units_with_serious": hit["units_with_serious"].to_numpy(),
        "share": hit["share"].to_numpy()})
    return _records(out.sort_values("share", ascending=False))


def top_units(units: pd.DataFrame, top: int) -> list[dict]:
    """The red units with the most open major hazards, open hazards and overdue pieces."""
    red = units[(units["level"] == "red").fillna(False).to_numpy(dtype=bool)]
    if not len(red):
        return []
    red = red.sort_values(["open_major_hazards", "open_hazards", "overdue", "credit_code"],
                          ascending=[False, False, False, True]).head(top)
    return _records(red[["credit_code", "name", "open_hazards", "open_major_hazards",
                         "overdue"]])


def table_rows(frame: pd.DataFrame | None, labels: dict[str, str]) -> dict | None:
    """A finding table shown whole (campaigns, workload): its labelled columns and rows."""
    if frame is None:
        return None
    columns = [c for c in frame.columns if c not in ("fid", "geometry")]
    return {"columns": [{"key": c, "label": labels.get(c, c)} for c in columns],
            "rows": _records(frame[columns])}


# --------------------------------------------------------------------------- next steps

def fired_counts(values: pd.Series, ids: list[str]) -> dict[str, int]:
    """How many rows' JSON list ``values`` holds each id (a substring test per id, so no
    row is parsed)."""
    text = values.astype("string").fillna("")
    return {i: int(text.str.contains(f'"{i}"', regex=False).sum()) for i in ids}


def trigger_ids(warnings: pd.DataFrame) -> dict[str, dict]:
    """Per fired warning rule: in how many regions, the worst grade and one message."""
    out: dict[str, dict] = {}
    if not len(warnings):
        return out
    rules = warnings["triggers"].astype("string").str.findall(r'"rule":\s*"([^"]+)"')
    exploded = pd.DataFrame({"rule": rules, "name": warnings["name"].to_numpy(),
                             "grade_rank": warnings["grade_rank"].to_numpy()}).explode("rule")
    exploded = exploded.dropna(subset=["rule"])
    for rule, group in exploded.groupby("rule", sort=True):
        out[str(rule)] = {"regions": int(group["name"].nunique()),
                          "names": "、".join(group["name"].astype(str).unique()[:5])}
    return out


def next_steps(inp: ReportInput, measure_rules: tuple = (), boost_reasons: dict | None = None
               ) -> list[dict]:
    """Actions from the rules that fired: the warning rules, the frequency boosts (with the
    rule file's action and basis), then the park and unit measures and the demonstration
    gaps. Each with why (what fired where) and its basis."""
    steps: list[dict] = []
    by_when = {s.when: s for s in inp.rules.next_steps}
    for rule, fired in trigger_ids(inp.warnings).items():
        step = by_when.get(f"warning:{rule}")
        why = f"{fired['regions']}个行政区触发（{fired['names']}）"
        if step is not None:
            steps.append({"action": step.action, "why": why, "basis": step.basis})
        else:
            steps.append({"action": f"针对预警规则“{rule}”所示问题组织核查整改",
                          "why": why,
                          "basis": _shaanxi("二（三）", "开展风险提示、警示、预警及压力测试活动")})
    boosts = [s.when.split(":", 1)[1] for s in inp.rules.next_steps if s.when.startswith("boost:")]
    if len(inp.frequency):
        counts = fired_counts(inp.frequency["boosts"], boosts)
        for name in boosts:
            if counts[name]:
                step = by_when[f"boost:{name}"]
                reason = (boost_reasons or {}).get(name, name)
                steps.append({"action": step.action, "basis": step.basis,
                              "why": f"{counts[name]}家使用单位因“{reason}”加频"})
    for rule in measure_rules:
        units = _holding(inp.units, rule.id)
        parks = _holding(inp.parks, rule.id)
        if not len(units) and not len(parks):
            continue
        whom = "、".join(p for p in (f"{len(units)}家使用单位" if len(units) else "",
                                     f"{len(parks)}个园区" if len(parks) else "") if p)
        example = _measure_text(parks if len(parks) else units, rule.id)
        steps.append({"action": f"落实“一园一策”“一企一策”措施，如{example}",
                      "why": f"措施规则 {rule.id} 触发：{whom}",
                      "basis": rule.basis or _henan("二（四）", "一园一策")})
    if len(inp.coverage):
        gaps = inp.coverage[inp.coverage["gap"].fillna(False).astype(bool).to_numpy()]
        if len(gaps):
            names = "、".join(gaps["category_name"].astype(str).unique()[:6])
            steps.append({"action": f"在示范企业遴选缺口的设备种类（{names}）中培育示范试点企业",
                          "why": f"{len(gaps)}个地市×设备种类无符合条件的候选企业",
                          "basis": _DEMONSTRATION})
    return steps


def _holding(frame: pd.DataFrame, measure_id: str) -> pd.DataFrame:
    """The rows whose ``measure_ids`` list holds ``measure_id`` (a substring test, so no
    row is parsed)."""
    if not len(frame):
        return frame
    text = frame["measure_ids"].astype("string").fillna("")
    return frame[text.str.contains(f'"{measure_id}"', regex=False).to_numpy(dtype=bool)]


def _measure_text(rows: pd.DataFrame, measure_id: str) -> str:
    """The measure as written for the first row holding it (its own numbers filled in)."""
    first = rows.iloc[0]
    ids = json.loads(first["measure_ids"])
    texts = json.loads(first["measures"])
    name = str(first["name"])
    text = texts[ids.index(measure_id)] if measure_id in ids and len(texts) == len(ids) else ""
    return f"{name}：{text}" if text else name


# --------------------------------------------------------------------------- all of it

def assemble(inp: ReportInput, measure_rules: tuple = (), boost_reasons: dict | None = None
             ) -> dict:
    """Every figure of the report, as plain values (what the templates draw)."""
    current, as_of, previous, previous_as_of = current_indicators(inp)
    level_counts = {lv: _number(current.get(f"n_{lv}")) or 0.0 for lv in LEVEL_ZH}
    return {
        "adcode": inp.adcode, "name": inp.name, "level": inp.level,
        "level_name": LEVEL_NAME[inp.level], "year": inp.year,
        "child_level_name": CHILD_NAME.get(inp.level),
        "as_of": as_of.isoformat() if as_of else None,
        "previous_as_of": previous_as_of.isoformat() if previous_as_of else None,
        "build_as_of": inp.build_as_of.isoformat(),
        "overview": overview_rows(current, previous),
        "categories": category_rows(current, previous),
        "levels": [{"level": lv, "name": LEVEL_ZH[lv], "count": level_counts[lv]}
                   for lv in LEVEL_ZH],
        "checks": check_figures(inp.checks, inp.year),
        "hazards": hazard_figures(inp.hazards, inp.year),
        "campaigns": table_rows(inp.campaigns, inp.labels.get("campaign-completion", {})),
        "demonstration": demonstration_rows(inp.demonstration, inp.coverage,
                                            inp.region_names, by_city=inp.level == "province"),
        "category_problems": category_problems(inp.equipment),
        "child_problems": child_problems(inp.children, inp.warnings, inp.rules.top_children),
        "warnings": warning_rows(inp.warnings),
        "hotspots": hotspot_rows(inp.hotspots, inp.region_names),
        "widespread": widespread_rows(inp.widespread, inp.region_names),
        "workload": table_rows(inp.workload, inp.labels.get("workload", {})),
        "top_units": top_units(inp.units, inp.rules.top_units),
        "next_steps": next_steps(inp, measure_rules, boost_reasons),
        "source": _shaanxi("四（一）", "要形成专项整治行动年度报告和三年行动报告"),
    }


def dumps(figures: dict) -> str:
    """The figures as JSON (for tests and debugging)."""
    return json.dumps(figures, ensure_ascii=False, default=str)
