"""The one list of layers: id, Chinese title, geometry, key, typed and labelled fields,
and the builder that computes each.

The API catalogue, vector tiles, OGC collections, exports, the stores' layer tables and
the map's layer control all read this list. Field types use the stores' abstract
vocabulary (text, float, int, bool, date, timestamp, json); field labels come from the
shared vocabulary :data:`layers.labels.FIELD_LABELS` unless a layer gives its own. Each
layer names its builder as ``"module:function"`` (the functions live in
:mod:`layers.builders`); :func:`layers.build.build_layers` imports and calls them, so this
module stays a description that imports no computation.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from data.catalogue import TOP_CATEGORIES
from data.plans import LEC, cite
from layers.frames import LEVEL_COUNT_COLUMNS, LEVEL_ZH, LEVELS
from layers.labels import CODED_FIELDS, FIELD_LABELS, FIELD_MEANINGS, FIELD_UNITS

_BUILDER = re.compile(r"^[a-z_][a-z0-9_.]*:[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class LayerSpec:
    id: str
    title: str
    geometry: str | None           # "point" | "polygon" | "multipolygon" | None (a table)
    key: tuple[str, ...]           # columns whose values identify a feature (its ``fid``)
    fields: tuple[tuple[str, str], ...]
    description: str
    source: str = ""               # the plan clause or practice it implements (data.plans)
    cells: bool = False            # an H3 cell layer with a ``resolution`` column
    #: ``"module:function"`` computing the layer from a :class:`layers.builders.Build`
    builder: str = dataclasses.field(kw_only=True)
    #: (field, Chinese label) where the layer's field is not what ``FIELD_LABELS`` says
    labels: tuple[tuple[str, str], ...] = dataclasses.field(default=(), kw_only=True)
    #: the title in the map's layer control, before what the map adds; defaults to ``title``
    short_title: str = dataclasses.field(default="", kw_only=True)
    #: (field, meaning) where the layer's field is not what ``FIELD_MEANINGS`` says
    meanings: tuple[tuple[str, str], ...] = dataclasses.field(default=(), kw_only=True)
    #: fields named like a coded field (``CODED_FIELDS``) that hold plain text instead, or
    #: whose Chinese name the layer already holds under another name
    not_coded: tuple[str, ...] = dataclasses.field(default=(), kw_only=True)

    def __post_init__(self) -> None:
        if not _BUILDER.match(self.builder):
            raise ValueError(f"layer {self.id}: builder {self.builder!r} is not module:function")
        names = set(self.field_names)
        if stray := [n for n, _ in self.labels if n not in names]:
            raise ValueError(f"layer {self.id}: labels for fields it lacks: {stray}")
        if stray := [n for n in (*dict(self.meanings), *self.not_coded) if n not in names]:
            raise ValueError(f"layer {self.id}: meanings or not_coded for fields it lacks: "
                             f"{stray}")
        own = dict(self.labels)
        if unlabelled := [n for n in self.field_names if n not in own and n not in FIELD_LABELS]:
            raise ValueError(f"layer {self.id}: no Chinese label for {unlabelled}")
        if not self.short_title:
            object.__setattr__(self, "short_title", self.title)

    @property
    def table(self) -> str:
        """Store table name (SQL identifiers take no hyphen)."""
        return "layer_" + self.id.replace("-", "_")

    @property
    def field_names(self) -> list[str]:
        return [name for name, _ in self.fields]

    @property
    def field_labels(self) -> dict[str, str]:
        """The Chinese label of every field, in field order."""
        own = dict(self.labels)
        return {name: own.get(name) or FIELD_LABELS[name] for name in self.field_names}

    @property
    def field_meanings(self) -> dict[str, str]:
        """What every field means ("" where the vocabulary lacks it), in field order."""
        own = dict(self.meanings)
        return {name: own.get(name) or FIELD_MEANINGS.get(name, "") for name in self.field_names}

    @property
    def field_units(self) -> dict[str, str]:
        """The unit of every numeric field ("" for none, and for every other type)."""
        return {name: FIELD_UNITS.get(name, "") if kind in ("int", "float") else ""
                for name, kind in self.fields}

    @property
    def coded_fields(self) -> dict[str, str]:
        """Coded fields that have no ``<field>_name`` beside them: field → code list."""
        names = set(self.field_names)
        return {name: CODED_FIELDS[name] for name in self.field_names
                if name in CODED_FIELDS and name not in self.not_coded
                and f"{name}_name" not in names}

    def type_of(self, field: str) -> str:
        return dict(self.fields)[field]


def _ints(*names: str) -> tuple[tuple[str, str], ...]:
    return tuple((n, "int") for n in names)


def _henan(clause: str, quote: str | None = None) -> str:
    """A layer's source in the Henan plan (豫市监办〔2021〕55号), cited in full."""
    return cite("henan", clause, quote)


def _shaanxi(clause: str, quote: str | None = None) -> str:
    """A layer's source in the Shaanxi three-year plan, cited in full."""
    return cite("shaanxi", clause, quote)


ADMIN = (("province_adcode", "text"), ("city_adcode", "text"), ("county_adcode", "text"))
LOCATION = (*ADMIN, ("h3", "text"), ("park_id", "text"), ("venue_id", "text"))
CATEGORY_COUNTS = _ints(*(f"cat_{code}" for code in TOP_CATEGORIES))
INDICATORS = (
    ("equipment", "int"), *_ints(*LEVEL_COUNT_COLUMNS), *CATEGORY_COUNTS,
    ("risk_score", "float"), ("risk_index", "float"), ("max_level", "text"),
    ("dominant_category", "text"), ("dominant_category_name", "text"),
    ("open_hazards", "int"), ("open_major_hazards", "int"), ("overdue", "int"),
    ("overdue_rate", "float"),
)
AREA_LEVEL = (("level", "text"), ("level_share", "float"))
AREA_LEVEL_MEANINGS = (
    ("level", "区域风险等级代码（" + "、".join(f"{lv} {LEVEL_ZH[lv]}" for lv in LEVELS)
     + "）：按区域内在用设备的风险占比定级——重大占比达到规则下限为红色，否则较大及以上占比"
       "达到下限为橙色，否则一般及以上占比达到下限为黄色，其余为蓝色；无在用设备为空。"
       "单台最高风险见 max_level"),)
REGION = (("adcode", "text"), ("name", "text"), ("admin_level", "text"),
          ("parent_adcode", "text"), ("province_adcode", "text"), ("city_adcode", "text"))
REGION_LABELS = (("name", "行政区"),)
FREQUENCY_LABELS = (("name", "使用单位"), ("reasons", "检查频次依据"))
FREQUENCY_MEANINGS = (("reasons", "确定基础检查间隔及加频的依据"),)

_LAYERS = (
    LayerSpec(
        "equipment", "设备风险分级", "point", ("registration_code",), (
            ("registration_code", "text"), ("category_code", "text"), ("category", "text"),
            ("top_category", "text"), ("unit_credit_code", "text"), ("unit_name", "text"),
            ("address", "text"), *LOCATION, ("risk_cell", "text"),
            ("geocode_precision", "text"),
            ("status", "text"), ("in_use", "bool"), ("commissioned_on", "date"),
            ("next_inspection_due", "date"),
            ("inspection_conclusion", "text"), ("insured", "bool"), ("overdue", "bool"),
            ("use_place", "text"),
            *_ints("open_hazards", "open_major_hazards", "late_hazards"),
            ("L", "float"), ("E", "float"), ("C", "float"), ("D", "float"),
            ("lec_band", "text"), ("level", "text"), ("level_rank", "int"),
            ("L_reason", "text"), ("L_also", "text"), ("E_reason", "text"),
            ("C_reason", "text"), ("level_reason", "text")),
        "每台设备按 LEC 法（D=L×E×C）分级，附 L、E、C 取值及其依据",
        f"{LEC}；{_henan('二（一）', '风险辨识、风险评估和风险分级管控')}",
        builder="layers.builders:equipment", labels=(("in_use", "在用"),), short_title="设备",
        meanings=(("in_use", "设备状态为在用（状态未填写的按在用计）"),
                  ("overdue", "在用且已超过下次检验日期"))),
    LayerSpec(
        "units", "使用单位风险（一企一策）", "point", ("credit_code",), (
            ("credit_code", "text"), ("name", "text"), ("industry", "text"), ("size", "text"),
            *LOCATION, ("level", "text"), ("level_rank", "int"), ("level_reason", "text"),
            ("equipment", "int"), ("in_use", "int"), *_ints(*LEVEL_COUNT_COLUMNS),
            ("D_max", "float"), ("categories", "json"),
            *_ints("open_hazards", "open_major_hazards", "overdue"),
            ("late_hazards", "int"), ("hazards_found", "int"), ("hazards_closed", "int"),
            ("overdue_rate", "float"), ("risk_score", "float"),
            ("dominant_category", "text"), ("dominant_category_name", "text"),
            ("elevators", "int"), ("elevators_insured", "int"), ("insurance_coverage", "float"),
            ("five_have_score", "int"), ("build_status", "text"), ("small_micro", "bool"),
            ("blacklisted", "bool"), ("accidents_3y", "int"),
            ("measures", "json"), ("measure_ids", "json"), ("checklist", "json")),
        "使用单位等级取其最高风险在用设备，并按黑名单、事故、重大隐患上调；附一企一策措施、"
        "双重预防建成情况，小微企业附简易清单",
        _henan("二（四）") + "“一园一策”“一企一策”；小微企业“一企一档一码”",
        builder="layers.builders:units", labels=(("name", "使用单位"), ("equipment", "设备")),
        meanings=(("equipment", "该单位登记的设备台数（全部状态）"),)),
    LayerSpec(
        "risk-cells", "网格风险（H3）", "polygon", ("h3",), (
            ("h3", "text"), ("resolution", "int"), *AREA_LEVEL, *INDICATORS),
        "H3 第 5–9 级六边形网格的风险指标，父网格合计等于子网格之和",
        _henan("二（二）", "分区域、分级别、分行业、网格化"), cells=True,
        builder="layers.builders:risk_cells", short_title="网格风险",
        meanings=AREA_LEVEL_MEANINGS),
    LayerSpec(
        "regions", "行政区风险", "multipolygon", ("admin_level", "adcode"), (
            *REGION, *AREA_LEVEL, *INDICATORS, ("units", "int"),
            *_ints("units_red", "units_orange", "units_yellow", "units_blue"),
            *_ints("units_assessed", "units_built", "units_small_micro"),
            ("build_rate", "float"), ("build_rate_large_medium", "float"),
            ("build_rate_small_micro", "float"), ("build_target", "float"),
            ("build_target_date", "text")),
        "省、市、县三级行政区的风险指标（按行政区划代码），及双重预防体系建成率与目标",
        _henan("二（二）", "分区域、分级别")
        + "；二（四）“2021年底，在全省特种设备领域全面建成双重预防体系”",
        builder="layers.builders:regions", labels=(*REGION_LABELS, ("units", "使用单位")),
        meanings=AREA_LEVEL_MEANINGS),
    LayerSpec(
        "industries", "分行业风险", "multipolygon", ("admin_level", "adcode", "industry"), (
            *REGION, ("industry", "text"), ("industry_name", "text"), *INDICATORS),
        "各行政区按使用单位国民经济行业门类（GB/T 4754）分列的风险指标",
        _henan("二（二）", "分行业") + "，按应用行业开展分类监管",
        builder="layers.builders:industries", labels=REGION_LABELS),
    LayerSpec(
        "grid-cells", "网格员网格", "polygon", ("officer_id", "h3"), (
            ("officer_id", "text"), ("officer_name", "text"), ("county_adcode", "text"),
            ("h3", "text"), *INDICATORS),
        "每名网格员负责的网格及其风险指标", _henan("二（二）", "网格化"),
        builder="layers.builders:grid_cells"),
    LayerSpec(
        "hotspots", "严重隐患聚集区", "polygon", ("h3",), (
            ("h3", "text"), ("resolution", "int"), ("equipment", "int"),
            ("serious_hazards", "int"), ("late_general_hazards", "int"), ("rate", "float"),
            ("gi_star", "float"),
            ("p_value", "float"), ("q_value", "float"), ("cluster_id", "text"),
            ("cluster_size", "int"), ("regional", "bool"), ("unit_count", "int"),
            ("county_adcode", "text"), ("main_category", "text")),
        "严重隐患发生率的 Getis-Ord Gi* 热点网格；相邻成片者为区域性隐患",
        _henan("二（二）", "区域性或者普遍严重事故隐患"), cells=True,
        builder="layers.builders:hotspots"),
    LayerSpec(
        "frequency", "加大监督检查频次", "point", ("credit_code",), (
            ("credit_code", "text"), ("name", "text"), ("level", "text"),
            ("base_interval_months", "int"), ("boost_steps", "int"),
            ("interval_months", "int"), ("checks_per_year", "float"), ("boosts", "json"),
            ("reasons", "text"), ("last_check_on", "date"), ("next_due", "date"),
            ("due_in_days", "int"), ("check_overdue", "bool"), ("boosted", "bool"),
            ("priority", "int"), ("interval_capped", "bool"), *ADMIN, ("h3", "text")),
        "按单位风险等级确定监督检查周期，并因人员密集场所、重点设备、隐患热点等加密"
        "（在区县检查力量之内，按风险高低依次加密）",
        f"{_henan('二（二）', '加大监督检查频次')}；{_shaanxi('二（四）')}年度重点治理领域",
        builder="layers.builders:frequency", labels=FREQUENCY_LABELS,
        meanings=FREQUENCY_MEANINGS),
    LayerSpec(
        "demonstration", "示范试点企业", "point", ("city_adcode", "top_category", "credit_code"),
        (("city_adcode", "text"), ("top_category", "text"), ("category_name", "text"),
         ("credit_code", "text"), ("name", "text"), ("industry", "text"), ("rank", "int"),
         ("equipment_in_category", "int"), ("passed_checks_3y", "int"), ("reasons", "text")),
        "每个地市每类特种设备遴选 1–2 家示范试点企业，附遴选依据",
        _henan("二（四）", "每个地市按照每类特种设备分别建立1至2家示范试点企业"),
        builder="layers.builders:demonstration", not_coded=("top_category",),
        labels=(("name", "使用单位"), ("rank", "名次"), ("reasons", "遴选依据")),
        meanings=(("rank", "在该地市该种类中的入选名次（1 或 2）"),
                  ("reasons", "入选示范试点企业的依据"))),
    LayerSpec(
        "parks", "园区风险画像（一园一策）", "multipolygon", ("park_id",), (
            ("park_id", "text"), ("name", "text"), ("kind", "text"), *ADMIN,
            ("area_km2", "float"), ("units", "int"), ("equipment", "int"), ("in_use", "int"),
            *_ints(*LEVEL_COUNT_COLUMNS), ("categories", "json"), ("units_by_level", "json"),
            ("red_units", "int"),
            *_ints("open_hazards", "open_major_hazards", "late_hazards", "overdue"),
            ("overdue_rate", "float"), ("elevators", "int"), ("elevators_insured", "int"),
            ("insurance_coverage", "float"), ("five_have_score", "float"),
            ("five_have_compliant", "int"), ("five_have_rate", "float"),
            ("small_micro_units", "int"), ("small_micro_share", "float"),
            ("blacklisted_units", "int"), ("accidents_3y", "int"),
            ("risk_score", "float"), ("D_max", "float"), ("risk_index", "float"),
            ("rank", "int"), ("dominant_category", "text"), ("dominant_category_name", "text"),
            ("top_units", "json"), ("monthly", "json"), ("measures", "json"),
            ("measure_ids", "json")),
        "园区风险画像与按规则生成的一园一策措施", _henan("二（四）", "一园一策"),
        builder="layers.builders:parks", short_title="园区",
        labels=(("name", "园区"), ("rank", "风险排名"), ("equipment", "设备")),
        meanings=(("equipment", "园区内使用单位的设备台数（全部状态）"),
                  ("five_have_score", "园区内使用单位“五有”得分的平均值（0–5，不计未知）"),
                  ("risk_index", "风险指数 0–100：园区风险总分 / 最高园区风险总分 × 100"),
                  ("rank", "园区按风险总分的排名（1 为最高）"))),
    LayerSpec(
        "venues", "人员密集场所", "multipolygon", ("venue_id",), (
            ("venue_id", "text"), ("name", "text"), ("kind", "text"),
            ("daily_visitors", "int"), ("equipment", "int"), *_ints(*LEVEL_COUNT_COLUMNS),
            ("max_level", "text"), ("max_level_rank", "int"),
            *_ints("open_hazards", "open_major_hazards", "overdue"),
            ("elevators", "int"), ("elevators_insured", "int"), ("categories", "json")),
        "人员密集场所及其内部设备风险", _henan("二（二）", "加强人员密集场所特种设备……的双重预防"),
        builder="layers.builders:venues", labels=(("name", "场所"),)),
    LayerSpec(
        "hazards", "未销号隐患", "point", ("hazard_id",), (
            ("hazard_id", "text"), ("registration_code", "text"), ("unit_credit_code", "text"),
            ("unit_name", "text"), ("category_code", "text"), ("top_category", "text"),
            ("level", "text"), ("description", "text"), ("status", "text"),
            ("found_on", "date"), ("deadline", "date"), ("listed", "bool"),
            ("past_deadline", "bool"), ("days_open", "int"), ("days_past_deadline", "int"),
            ("equipment_level", "text"), *LOCATION),
        "未销号隐患；重大隐患挂牌督办，逾期未整改者标出",
        _henan("二（一）") + "隐患排查、登记、治理、销号闭环管理；二（二）重大隐患挂牌督办",
        builder="layers.builders:hazards", labels=(("level", "隐患等级"), ("status", "隐患状态")),
        meanings=(("level", "隐患等级（重大、一般）"), ("status", "隐患状态（已登记、整改中）")),
        not_coded=("level",)),
    LayerSpec(
        "overdue", "逾期未检设备", "point", ("registration_code",), (
            ("registration_code", "text"), ("category_code", "text"), ("category", "text"),
            ("top_category", "text"), ("unit_credit_code", "text"), ("unit_name", "text"),
            ("next_inspection_due", "date"), ("days_overdue", "int"), ("level", "text"),
            *LOCATION),
        "超过下次检验日期仍在使用的设备", _henan("二（三）", "发现设备逾期未检……及时报告"),
        builder="layers.builders:overdue"),
    LayerSpec(
        "blacklist", "黑名单单位", "point", ("credit_code",), (
            ("credit_code", "text"), ("name", "text"), ("industry", "text"), ("level", "text"),
            ("accidents_3y", "int"), ("open_major_hazards", "int"), ("equipment_count", "int"),
            *ADMIN, ("h3", "text")),
        "列入黑名单的使用单位",
        _henan("二（二）") + "“黑名单”制度；"
        + _shaanxi("四（三）", "对失信企业要纳入“黑名单”，实施联合惩戒"),
        builder="layers.builders:blacklist", labels=(("name", "使用单位"),)),
    LayerSpec(
        "insurance", "电梯责任保险覆盖率", "multipolygon", ("admin_level", "adcode"), (
            *REGION, ("year", "int"), ("elevators", "int"), ("insured", "int"),
            ("insured_unknown", "int"),
            ("coverage", "float"), ("target", "float"), ("gap", "float"),
            ("meets_target", "bool")),
        "各行政区电梯责任保险覆盖率与当年目标",
        _shaanxi("二（五）")
        + "电梯保险覆盖率不低于保有量的40%（2020年）、55%（2021年）、70%（2022年）",
        builder="layers.builders:insurance",
        labels=(*REGION_LABELS, ("insured", "已投保电梯"), ("gap", "距目标差距")),
        meanings=(("insured", "已投保责任保险的在用电梯台数"),
                  ("gap", "当年目标减覆盖率（大于 0 为未达标，0 为达标）"))),
    LayerSpec(
        "warnings", "风险提示·警示·预警", "multipolygon", ("admin_level", "adcode"), (
            *REGION, ("grade", "text"), ("grade_zh", "text"), ("grade_rank", "int"),
            ("trigger_count", "int"), ("triggers", "json"), ("message", "text")),
        "行政区逾期未检率、重大隐患与逾期未整改隐患的比率为全省的规定倍数以上且经精确检验"
        "（同级错误发现率校正）显著，或热点、普遍性隐患等计数越过阈值时，发布的三级风险提示、"
        "警示、预警",
        _shaanxi("二（三）", "开展风险提示、警示、预警及压力测试活动"),
        builder="layers.builders:warnings", labels=REGION_LABELS),
)

FREQUENCY_FIELDS = next(spec for spec in _LAYERS if spec.id == "frequency").fields

# Tables that go with the layers but are not drawn: the findings behind them.
_TABLES = (
    LayerSpec(
        "check-schedule", "监督检查计划", None, ("credit_code",), FREQUENCY_FIELDS,
        "每个使用单位的监督检查周期、加密理由与下次应检日期（网格员工作清单用）",
        _henan("二（二）", "加大监督检查频次"),
        builder="layers.builders:check_schedule", labels=FREQUENCY_LABELS,
        meanings=FREQUENCY_MEANINGS),
    LayerSpec(
        "workload", "检查力量与计划检查", None, ("admin_level", "adcode"), (
            *REGION, *_ints("officers", "capacity"), ("capacity_source", "text"),
            *_ints("units", "never_checked", "boosted_units", "capped_units"),
            ("planned_base", "float"), ("planned_full", "float"), ("planned", "float"),
            ("utilisation", "float"), ("over_capacity", "bool"), ("counties_over", "int"),
            ("note", "text")),
        "各省、市、区县网格员检查力量与计划监督检查次数（基础间隔、全部加频、力量之内加频），"
        "计划超出力量的区县标出",
        f"{_henan('二（二）', '加大监督检查频次')}；"
        f"{_henan('三（二）', '综合部署、统筹推进')}；监管力量与监管任务相匹配",
        builder="layers.builders:workload",
        labels=(*REGION_LABELS, ("units", "使用单位")),
        meanings=(("units", "本行政区的使用单位数（检查计划中的单位）"),)),
    LayerSpec(
        "campaign-completion", "专项任务完成情况", None,
        ("admin_level", "adcode", "year", "campaign"), (
            *REGION, ("year", "int"), ("campaign", "text"), ("months", "text"),
            ("levels", "text"), ("status", "text"), *_ints("units_named", "units_checked"),
            ("completion", "float"), ("basis", "text")),
        "本年度适用的专项整治月历任务：各行政区应落实单位与任务月份内已监督检查的单位、完成率",
        _shaanxi("二（一）") + "专项整治月历（按规则文件 [[campaigns]] 的适用范围）",
        builder="layers.builders:campaign_completion",
        labels=(*REGION_LABELS, ("status", "进度")),
        meanings=(("year", "专项任务所属年度（统计日期所在年度）"),
                  ("status", "专项任务进度：未开始、进行中、已结束"))),
    LayerSpec(
        "demonstration-coverage", "示范企业遴选覆盖", None, ("city_adcode", "top_category"), (
            ("city_adcode", "text"), ("top_category", "text"), ("category_name", "text"),
            *_ints("candidates", "qualified", "chosen"), ("gap", "bool"),
            ("failed_counts", "text")),
        "每个地市×设备种类的候选、合格、入选数；无人符合条件即为缺口",
        _henan("二（四）", "每个地市按照每类特种设备分别建立1至2家示范试点企业"),
        builder="layers.builders:demonstration_coverage", not_coded=("top_category",)),
    LayerSpec(
        "hotspot-units", "热点内使用单位", None, ("credit_code",), (
            ("credit_code", "text"), ("h3", "text"), ("gi_star", "float"),
            ("regional", "bool"), ("cluster_id", "text")),
        "位于严重隐患热点网格内的使用单位", _henan("二（二）", "区域性或者普遍严重事故隐患"),
        builder="layers.builders:hotspot_units"),
    LayerSpec(
        "widespread", "普遍性严重隐患", None, ("county_adcode", "top_category"), (
            ("county_adcode", "text"), ("top_category", "text"), ("units", "int"),
            ("units_with_serious", "int"), ("share", "float"), ("widespread", "bool")),
        "各区县各类设备中存在严重隐患的单位占比",
        _henan("二（二）", "区域性或者普遍严重事故隐患"),
        builder="layers.builders:widespread", labels=(("units", "单位数"),),
        meanings=(("units", "该区县有该种类设备的使用单位数"),)),
    LayerSpec(
        "blacklist-candidates", "建议列入黑名单", None, ("credit_code",), (
            ("credit_code", "text"), ("name", "text"), ("industry", "text"), ("level", "text"),
            ("accidents_3y", "int"), ("open_major_hazards", "int"),
            ("late_major_hazards", "int"), ("max_days_past_deadline", "int"),
            *ADMIN, ("criteria", "json"), ("reason", "text")),
        "符合列入黑名单情形但尚未列入的单位（供监管部门研判）",
        _henan("二（二）", "对发生特种设备事故、存在重大隐患整改不力的使用单位，列入黑名单"),
        builder="layers.builders:blacklist_candidates", labels=(("name", "使用单位"),)),
)

LAYERS: dict[str, LayerSpec] = {spec.id: spec for spec in _LAYERS}
TABLES: dict[str, LayerSpec] = {spec.id: spec for spec in _TABLES}
ALL: dict[str, LayerSpec] = {**LAYERS, **TABLES}


def fingerprint() -> str:
    """A hash of every layer's fields and of how per-build sums count a score: a build made
    by another version of the registry cannot be read as this one (it must be built
    again)."""
    import hashlib

    from layers.aggregate import SCORE_STEPS

    text = repr([(spec.id, spec.geometry, spec.key, spec.fields) for spec in ALL.values()]
                + [("score_steps", SCORE_STEPS)])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def layer(layer_id: str) -> LayerSpec:
    """The spec of a layer or finding table (KeyError names the known ids)."""
    try:
        return ALL[layer_id]
    except KeyError:
        raise KeyError(f"unknown layer {layer_id!r}; known: {', '.join(ALL)}") from None
