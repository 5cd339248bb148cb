"""Build every layer of :mod:`layers.registry` from the ingested tables, in dependency order.

Grading comes first (every other layer reads the graded equipment and units), then the
hotspots (frequency and warnings read them), then the rest. Each stage is timed; the
report says what every layer holds and what could not be placed (nothing is dropped
silently).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers import aggregate, alerts, demonstration, frequency, hotspots, parks, points, risk
from layers.registry import ALL
from layers.registry import fingerprint as registry_fingerprint
from layers.rules import Rules


@dataclass
class Inputs:
    """The stored tables a build reads (as the store returns them) and the day it is for."""

    equipment: pd.DataFrame
    units: pd.DataFrame
    hazards: pd.DataFrame
    checks: pd.DataFrame
    parks: gpd.GeoDataFrame
    venues: gpd.GeoDataFrame
    officers: pd.DataFrame
    officer_cells: pd.DataFrame
    boundaries: gpd.GeoDataFrame  # provinces, cities and counties of the loaded provinces
    as_of: date


@dataclass
class BuildResult:
    frames: dict[str, pd.DataFrame]
    report: dict = field(default_factory=dict)


class _Timer:
    def __init__(self, progress: Callable[[str], None] | None) -> None:
        self.seconds: dict[str, float] = {}
        self.progress = progress

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.progress:
            self.progress(name)
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 3)


def point_geometry(frame: pd.DataFrame) -> gpd.GeoSeries:
    """Points from lon/lat; unlocated rows get an empty geometry (kept, not dropped)."""
    lon = pd.to_numeric(frame["lon"]).to_numpy(dtype="float64", na_value=np.nan)
    lat = pd.to_numeric(frame["lat"]).to_numpy(dtype="float64", na_value=np.nan)
    geoms = shapely.points(lon, lat)
    geoms[~(np.isfinite(lon) & np.isfinite(lat))] = None
    return gpd.GeoSeries(geoms, index=frame.index, crs=4326)


def _with_location(files: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """Unit files with the unit's admin codes, cell and venue (for filters and scopes)."""
    cols = ["province_adcode", "city_adcode", "county_adcode", "h3", "venue_id"]
    first = units.drop_duplicates("credit_code")
    where = first.set_index(first["credit_code"].astype("string"))[cols]
    located = where.reindex(files["credit_code"].astype("string")).reset_index(drop=True)
    out = files.drop(columns=[c for c in cols if c in files.columns]).reset_index(drop=True)
    for col in cols:
        out[col] = located[col].to_numpy()
    return out


def _with_region_codes(frame: pd.DataFrame, boundaries: pd.DataFrame) -> pd.DataFrame:
    """The province and city codes of each region row (scopes filter on them)."""
    codes = boundaries[["level", "adcode", "province_adcode", "city_adcode"]].rename(
        columns={"level": "admin_level"}).astype("string")
    out = frame.drop(columns=["province_adcode", "city_adcode"], errors="ignore")
    keys = out[["admin_level", "adcode"]].astype("string")
    merged = keys.merge(codes, on=["admin_level", "adcode"], how="left")
    out = out.reset_index(drop=True)
    out["province_adcode"] = merged["province_adcode"].to_numpy()
    out["city_adcode"] = merged["city_adcode"].to_numpy()
    return out


def _with_cell(frame: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """Each unit row's res-8 cell (grid officers' scope is their cells)."""
    first = units.drop_duplicates("credit_code")
    cell = first.set_index(first["credit_code"].astype("string"))["h3"]
    out = frame.reset_index(drop=True)
    out["h3"] = cell.reindex(out["credit_code"].astype("string")).to_numpy()
    return out


def build_layers(inputs: Inputs, rules: Rules,
                 progress: Callable[[str], None] | None = None) -> BuildResult:
    """Every layer and finding table of the registry, keyed by id, and a build report."""
    t = _Timer(progress)
    as_of = inputs.as_of
    with t.stage("grade"):
        eq = risk.grade_equipment(inputs.equipment, inputs.units, inputs.hazards,
                                  inputs.venues, as_of, rules.risk,
                                  risk.urban_counties(inputs.boundaries))
        units = risk.grade_units(inputs.units, eq, rules.risk)
    with t.stage("hotspots"):
        hot = hotspots.hotspot_cells(eq, inputs.hazards, as_of, rules.hotspots)
        hot_units = hotspots.hotspot_units(eq, hot)
        wide = hotspots.widespread(eq, inputs.hazards, as_of, rules.hotspots)
    with t.stage("aggregate"):
        cells = aggregate.risk_cells(eq, rules.aggregate.cell_resolutions)
        regions = aggregate.regions(eq, units, inputs.boundaries)
        industries = aggregate.industries(eq, units, inputs.boundaries)
        grid = aggregate.grid_cells(eq, inputs.officers, inputs.officer_cells)
    with t.stage("frequency"):
        schedule = frequency.inspection_frequency(
            units, eq, inputs.checks, inputs.venues, hot_units, wide, as_of, rules.frequency)
    with t.stage("demonstration"):
        chosen, coverage = demonstration.demonstration(units, eq, inputs.checks, as_of,
                                                       rules.demonstration)
    with t.stage("parks"):
        park_layer = parks.park_profiles(eq, units, inputs.parks, inputs.hazards, as_of,
                                         rules.parks)
        unit_layer = _with_location(
            parks.unit_files(eq, units, inputs.hazards, as_of, rules.parks), units)
    with t.stage("alerts"):
        insurance = alerts.insurance(eq, inputs.boundaries, as_of, rules.insurance)
        warnings = alerts.warnings(regions, insurance, hot, wide, rules.warnings)
    with t.stage("points"):
        open_hazards = points.open_hazards(inputs.hazards, eq, units, as_of)
        overdue = points.overdue_inspections(eq, as_of)
        blacklist = points.blacklist(units)
        candidates = points.blacklist_candidates(units, inputs.hazards, as_of, rules.blacklist,
                                                 equipment=eq)
        venues = points.venues_risk(inputs.venues, eq)
    with t.stage("equipment"):
        equipment = gpd.GeoDataFrame(eq, geometry=point_geometry(eq), crs=4326)

    frames: dict[str, pd.DataFrame] = {
        "equipment": equipment, "units": unit_layer, "risk-cells": cells, "regions": regions,
        "industries": industries, "grid-cells": grid, "hotspots": hot,
        "frequency": frequency.boosted_units(schedule), "demonstration": chosen,
        "parks": park_layer, "venues": venues, "hazards": open_hazards, "overdue": overdue,
        "blacklist": blacklist, "insurance": insurance, "warnings": warnings,
        "check-schedule": schedule, "demonstration-coverage": coverage,
        "hotspot-units": hot_units, "widespread": wide, "blacklist-candidates": candidates,
    }
    for lid in ("industries", "insurance", "warnings"):
        frames[lid] = _with_region_codes(frames[lid], inputs.boundaries)
    frames["frequency"] = _with_cell(frames["frequency"], units)
    frames["check-schedule"] = _with_cell(frames["check-schedule"], units)
    missing = [lid for lid in ALL if lid not in frames]
    if missing:  # the registry and the builders must list the same ids
        raise RuntimeError(f"no builder for layers {missing}")
    report = {
        "as_of": as_of.isoformat(), "rules_version": rules.version,
        "rules_hash": rules.fingerprint(), "registry": registry_fingerprint(),
        "rows": {lid: len(f) for lid, f in frames.items()},
        "levels": {str(k): int(v) for k, v in eq["level"].value_counts().items()},
        "unit_levels": {str(k): int(v) for k, v in units["level"].value_counts().items()},
        "equipment_not_graded": int((~eq["in_use"]).sum()),
        "equipment_unlocated": int(equipment.geometry.isna().sum()),
        "equipment_outside_cells": int(cells.attrs.get("unlocated", 0)),
        "equipment_outside_regions": int(regions.attrs.get("unplaced", 0)),
        "hotspot_cells": len(hot),
        "regional_hotspot_cells": int(hot["regional"].sum()) if len(hot) else 0,
        "widespread": int(wide["widespread"].sum()) if len(wide) else 0,
        "demonstration_gaps": int(coverage["gap"].sum()) if len(coverage) else 0,
        "warnings": {str(k): int(v) for k, v in warnings["grade"].value_counts().items()}
        if len(warnings) else {},
        "seconds": t.seconds,
    }
    return BuildResult(frames, report)
