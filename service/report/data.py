"""The frames one region's yearly report is made of, read in the caller's scope.

The caller must see the region's row of the regions layer, exactly as for
``/api/regions/{adcode}/summary`` (a county regulator asking for another county gets the
same 404). Every other frame is read with the caller's scope and the region's own
conditions ANDed in (:func:`service.scope.region_conditions`); stored checks and hazards are
those of the region's units and equipment. :func:`layers.report.assemble` turns the
:class:`layers.report.ReportInput` made here into figures.
"""

from __future__ import annotations

import pandas as pd

from geo.regions import Region
from layers.registry import ALL
from layers.report import CHILD_LEVEL, ReportInput, assemble
from layers.rules import Rules
from service.auth import Principal
from service.errors import Forbidden, NotFound, bilingual
from service.scope import layer_scope, region_conditions
from service.store.base import Store
from service.store.conform import empty_layer
from service.store.query import Condition, LayerQuery

#: columns read of the big layers (the rest of a 1M-row equipment layer is not needed)
EQUIPMENT_COLUMNS = ("registration_code", "top_category", "in_use", "level", "overdue",
                     "open_hazards", "open_major_hazards")
UNIT_COLUMNS = ("credit_code", "name", "level", "open_hazards", "open_major_hazards",
                "overdue", "county_adcode", "measures", "measure_ids")


def not_found(adcode: str) -> NotFound:
    """The answer for a region the caller may not see or that has no figures: the same
    as the region summary's."""
    return NotFound(bilingual(
        f"行政区 {adcode} 的汇总不存在（或不在您的管辖范围内）：请核对行政区划代码（adcode）",
        f"no summary of region {adcode} (or it is outside your region): check adcode"))


def no_year(region: Region, year: int) -> NotFound:
    return NotFound(bilingual(
        f"{region.label}没有 {year} 年的图层生成记录：请先以该年的统计日期生成图层"
        f"（riskmap build --as-of {year}-MM-DD）",
        f"no build of {year} holds figures of region {region.adcode}: build the layers "
        f"with an as-of date in {year} first"))


def _scoped(store: Store, caller: Principal, layer: str, where: tuple[Condition, ...],
            columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The rows of ``layer`` matching ``where`` that the caller may see (Forbidden if they
    may see none of the layer)."""
    spec = ALL[layer]
    scope = layer_scope(caller, spec)
    wanted = None if columns is None else tuple(c for c in columns if c in spec.field_names)
    frame, _ = store.query_layer(LayerQuery(layer, (*scope, *where), None, None,
                                            columns=wanted))
    return frame


def _inside(store: Store, caller: Principal, layer: str, region: Region,
            columns: tuple[str, ...] | None = None) -> pd.DataFrame | None:
    """The caller's rows of ``layer`` inside ``region``; None when the layer cannot be
    restricted to the region (it is coarser) or the caller may not see it."""
    where = region_conditions(ALL[layer], region.adcode, region.level)
    if where is None:
        return None
    try:
        return _scoped(store, caller, layer, where, columns)
    except Forbidden:
        return None


def _finding(store: Store, caller: Principal, layer: str, region: Region, year: int
             ) -> pd.DataFrame | None:
    """A finding table another part of the product builds (campaign completion, workload),
    when this build has it: its rows inside the region (and of the year, if it has one)."""
    if layer not in ALL:
        return None
    spec = ALL[layer]
    frame = _inside(store, caller, layer, region)
    if frame is None and "adcode" in spec.field_names:
        try:
            frame = _scoped(store, caller, layer, (
                Condition("adcode", "prefix", (region.prefix,)),))
        except Forbidden:
            return None
    if frame is None:
        return None
    if "year" in frame.columns:
        frame = frame[(frame["year"] == year).fillna(False).to_numpy(dtype=bool)]
    if "over_capacity" in frame.columns:
        frame = frame[frame["over_capacity"].fillna(False).astype(bool).to_numpy()]
    return frame.drop(columns=[c for c in ("fid", "geometry") if c in frame.columns])


def gather(store: Store, caller: Principal, region: Region, year: int, rules: Rules
           ) -> ReportInput:
    """Everything the report of ``region`` for ``year`` draws from, in the caller's scope."""
    build = store.layer_build()
    own = (Condition("adcode", "eq", (region.adcode,)),
           Condition("admin_level", "eq", (region.level,)))
    row = _scoped(store, caller, "regions", own)
    if build is None or row.empty:
        raise not_found(region.adcode)
    child = CHILD_LEVEL.get(region.level)
    children = (_scoped(store, caller, "regions", (
        Condition("parent_adcode", "eq", (region.adcode,)),
        Condition("admin_level", "eq", (child,)))) if child else row.iloc[:0])
    inside = _inside(store, caller, "regions", region, ("adcode", "name"))
    names = dict(zip(inside["adcode"].astype(str), inside["name"].astype(str), strict=True)) \
        if inside is not None else {}
    codes = (region.adcode, *children["adcode"].astype(str))
    warnings = _scoped(store, caller, "warnings", (
        Condition("adcode", "in", codes),
        Condition("admin_level", "in", tuple(x for x in (region.level, child) if x))))
    equipment = _inside(store, caller, "equipment", region, EQUIPMENT_COLUMNS)
    units = _inside(store, caller, "units", region, UNIT_COLUMNS)
    assert equipment is not None and units is not None  # the region row was visible
    checks = store.read("checks", ["check_id", "credit_code", "checked_on", "result"])
    checks = checks[checks["credit_code"].isin(units["credit_code"]).to_numpy(dtype=bool)]
    hazards = store.read("hazards", ["hazard_id", "registration_code", "found_on", "level",
                                     "status", "deadline", "closed_on"])
    hazards = hazards[hazards["registration_code"].isin(
        equipment["registration_code"]).to_numpy(dtype=bool)]
    demonstration = _inside(store, caller, "demonstration", region)
    if demonstration is None:  # chosen per city: a county sees its own units among them
        demonstration = store.read_layer("demonstration")
        demonstration = demonstration[demonstration["credit_code"].isin(
            units["credit_code"]).to_numpy(dtype=bool)]
    coverage = _inside(store, caller, "demonstration-coverage", region)
    return ReportInput(
        adcode=region.adcode, name=region.name, level=region.level, year=year,
        build_as_of=build.as_of, region=row,
        insurance=_scoped(store, caller, "insurance", own),
        history=store.region_history(region.adcode, region.level),
        children=children, equipment=equipment, units=units,
        parks=_or_empty(_inside(store, caller, "parks", region,
                                ("park_id", "name", "measures", "measure_ids")), "parks"),
        frequency=_or_empty(_inside(store, caller, "frequency", region,
                                    ("credit_code", "boosts")), "frequency"),
        warnings=warnings,
        hotspots=_or_empty(_inside(store, caller, "hotspots", region), "hotspots"),
        widespread=_or_empty(_inside(store, caller, "widespread", region), "widespread"),
        checks=checks, hazards=hazards, demonstration=demonstration,
        coverage=_or_empty(coverage, "demonstration-coverage"),
        rules=rules.report, region_names=names,
        campaigns=_finding(store, caller, "campaign-completion", region, year),
        workload=_finding(store, caller, "workload", region, year),
        labels={lid: ALL[lid].field_labels for lid in ("campaign-completion", "workload")
                if lid in ALL})


def _or_empty(frame: pd.DataFrame | None, layer: str) -> pd.DataFrame:
    return empty_layer(layer) if frame is None else frame


def figures(store: Store, caller: Principal, region: Region, year: int, rules: Rules
            ) -> dict:
    """The report's figures (see :func:`layers.report.assemble`); NotFound when the
    caller may not see the region or no build of the year has its figures."""
    from layers.report import NoReportData

    inp = gather(store, caller, region, year, rules)
    boosts = {name: getattr(getattr(rules.frequency, name, None), "reason", name)
              for name in type(rules.frequency).model_fields}
    try:
        return assemble(inp, rules.parks.measures, boosts)
    except NoReportData:
        raise no_year(region, year) from None
