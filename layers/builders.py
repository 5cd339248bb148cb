"""The builder of every layer and finding table: one function per id of the registry.

:mod:`layers.registry` names each layer's builder (``"layers.builders:regions"``) and
:func:`layers.build.build_layers` calls them stage by stage. A builder takes the
:class:`Build` (the inputs, the rules and what several layers read, each computed once:
the graded equipment and units, the hotspot cells, the check schedule …) and returns its
frame. Each builder is marked with the :data:`STAGES` entry it is timed under in the build
report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

import layers.aggregate
import layers.alerts
import layers.build_status
import layers.demonstration
import layers.frequency
import layers.hotspots
import layers.parks
import layers.points
import layers.risk
import layers.small_micro
import layers.workload

if TYPE_CHECKING:
    from layers.rules import Rules

#: The stages of a build after grading, in the order they run; every builder belongs to one.
STAGES: tuple[str, ...] = ("hotspots", "aggregate", "frequency", "demonstration", "parks",
                           "alerts", "points", "equipment")


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


class Build:
    """One build's inputs and rules, and the frames several layers read, each computed once
    when first asked for. Grading comes first: every layer reads the graded frames."""

    def __init__(self, inputs: Inputs, rules: Rules) -> None:
        self.inputs = inputs
        self.rules = rules
        self.as_of = inputs.as_of

    @cached_property
    def graded(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The graded equipment and units (:mod:`layers.frames` describes both)."""
        i, rules = self.inputs, self.rules.risk
        eq = layers.risk.grade_equipment(i.equipment, i.units, i.hazards, i.venues, self.as_of,
                                         rules)
        return eq, layers.risk.grade_units(i.units, eq, rules)

    @property
    def equipment(self) -> pd.DataFrame:
        """The graded equipment (not held by the Dask build's driver: what each stage reads
        of it comes from the partitions, in the cached properties below)."""
        eq = self.graded[0]
        if eq is None:
            raise RuntimeError("the graded equipment is not held here: a stage read it "
                               "instead of what the partitions send (service.build_dask)")
        return eq

    @property
    def units(self) -> pd.DataFrame:
        """The graded units."""
        return self.graded[1]

    @cached_property
    def grid_targets(self) -> dict[int, np.ndarray]:
        """The officers' cells by resolution (the grid cells' sums are of these)."""
        return layers.aggregate.grid_targets(self.inputs.officer_cells)

    @cached_property
    def sums(self) -> layers.aggregate.Sums:
        """The graded equipment's group sums the aggregate layers are made of (the Dask
        build adds its partitions' instead)."""
        return layers.aggregate.Sums.of(self.equipment, self.units,
                                        self.rules.aggregate.cell_resolutions[-1],
                                        self.grid_targets)

    @cached_property
    def unit_pieces(self) -> layers.demonstration.UnitPieces:
        """The in-use pieces per unit the demonstration picks read (the Dask build joins
        its partitions' instead)."""
        return layers.demonstration.UnitPieces.of(self.units, self.equipment,
                                                  self.rules.demonstration)

    @cached_property
    def park_sums(self) -> layers.parks.ParkSums:
        """What the park profiles read of the pieces and their hazards, summed per park (the
        Dask build adds its partitions' instead)."""
        return layers.parks.ParkSums.of(self.equipment, self.inputs.hazards)

    @cached_property
    def venue_counts(self) -> pd.DataFrame:
        """The in-use pieces counted per venue and category (the Dask build adds its
        partitions' instead)."""
        return layers.points.venue_counts(self.equipment)

    @cached_property
    def late_major(self) -> pd.DataFrame:
        """Per unit, its 重大 hazards long past their deadline (the Dask build joins its
        partitions' instead)."""
        return layers.points.late_major_hazards(self.inputs.hazards, self.equipment,
                                                self.as_of, self.rules.blacklist)

    @cached_property
    def hotspot_sums(self) -> layers.hotspots.HotspotSums:
        """The graded equipment's counts the hotspot layers are made of (the Dask build adds
        its partitions' instead)."""
        return layers.hotspots.HotspotSums.of(self.equipment, self.inputs.hazards, self.as_of,
                                              self.rules.hotspots)

    @cached_property
    def hotspot_cells(self) -> pd.DataFrame:
        """The hotspot cells (frequency and warnings read them too)."""
        return layers.hotspots.hotspot_cells_from(
            layers.hotspots.gi_star_cells_from(self.hotspot_sums, self.rules.hotspots))

    @cached_property
    def hotspot_units(self) -> pd.DataFrame:
        """The units inside hotspot cells (frequency reads them too)."""
        return layers.hotspots.hotspot_units_from(self.hotspot_sums.unit_cells,
                                                  self.hotspot_cells)

    @cached_property
    def widespread(self) -> pd.DataFrame:
        """Widespread serious hazards per county and category (frequency, warnings)."""
        return layers.hotspots.widespread_from(self.hotspot_sums.widespread,
                                               self.rules.hotspots)

    @cached_property
    def regions(self) -> gpd.GeoDataFrame:
        """The region indicators and 建成率 (the warnings are raised on them)."""
        regions = layers.aggregate.regions_from(self.sums.places, self.units,
                                                self.inputs.boundaries, self.rules.aggregate)
        return layers.build_status.with_build_rates(
            regions, self.units, self.build_status, self.small_micro, self.as_of,
            self.rules.build_status)

    @cached_property
    def build_status(self) -> pd.Series:
        """Each graded unit's double-prevention build status (已建成 …), in unit order."""
        return layers.build_status.unit_build_status(self.units, self.rules.build_status)

    @cached_property
    def small_micro(self) -> np.ndarray:
        """Per graded unit, whether it is in the small/micro simplified mode."""
        return layers.small_micro.small_micro(self.units, self.rules.parks.small_sizes,
                                              self.rules.small_micro.max_equipment)

    @cached_property
    def schedule(self) -> gpd.GeoDataFrame:
        """Every unit's check interval and next due date (the frequency layer is a part)."""
        return layers.frequency.inspection_frequency_from(
            self.unit_facts, self.units, self.inputs.checks, self.hotspot_units,
            self.widespread, self.as_of, self.rules.frequency,
            capacity=self.capacity["limit"])

    @cached_property
    def schedule_sums(self) -> pd.DataFrame:
        """What the workload table reads of the check schedule, summed per place (the Dask
        build adds its partitions' instead: each schedules its own counties)."""
        return layers.workload.schedule_sums(self.schedule, self.rules.frequency.ladder)

    @cached_property
    def unit_facts(self) -> layers.frequency.UnitFacts:
        """What the check schedule reads of each unit's pieces (the Dask build joins its
        partitions' instead)."""
        i = self.inputs
        return layers.frequency.UnitFacts.of(self.units, self.equipment, i.venues, self.as_of,
                                             self.rules.frequency, hazards=i.hazards)

    @cached_property
    def capacity(self) -> pd.DataFrame:
        """Each county's officers and inspection capacity (the schedule is bounded by it)."""
        i = self.inputs
        return layers.workload.county_capacity(i.officers, i.officer_cells, i.boundaries,
                                               self.rules.capacity)

    @cached_property
    def demonstration(self) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
        """The chosen demonstration enterprises and the coverage they leave."""
        return layers.demonstration.demonstration_from(
            self.unit_pieces, self.units, self.inputs.checks, self.as_of,
            self.rules.demonstration)

    @cached_property
    def insurance(self) -> gpd.GeoDataFrame:
        """Elevator insurance coverage per region, before its region codes (warnings read
        it as computed)."""
        counts = layers.alerts.elevator_counts(self.sums.places.frame())
        return layers.alerts.insurance_from(counts, self.inputs.boundaries, self.as_of,
                                            self.rules.insurance)


@dataclass(frozen=True)
class Builder:
    """A layer's builder: the function computing its frame, and its stage of the build."""

    stage: str
    compute: Callable[[Build], pd.DataFrame]

    def __call__(self, build: Build) -> pd.DataFrame:
        return self.compute(build)


def builder(stage: str) -> Callable[[Callable[[Build], pd.DataFrame]], Builder]:
    """Decorator: the function builds a layer and is timed under ``stage``."""
    if stage not in STAGES:
        raise ValueError(f"unknown build stage {stage!r}; known: {', '.join(STAGES)}")
    return lambda compute: Builder(stage, compute)


# --------------------------------------------------------------------------- finishing

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


# --------------------------------------------------------------------------- the builders
# One per layer and finding table, named after its id ("risk-cells" → risk_cells).

@builder("equipment")
def equipment(b: Build) -> gpd.GeoDataFrame:
    """Every piece of equipment, graded, at its point, with the finest risk cell it is
    counted in (so a store can sum a caller's risk cells where the rows are)."""
    out = gpd.GeoDataFrame(b.equipment, geometry=point_geometry(b.equipment), crs=4326)
    out["risk_cell"] = layers.aggregate.risk_cell_of(b.equipment)
    return out


@builder("parks")
def units(b: Build) -> pd.DataFrame:
    """Every unit's file (一企一策), located like the unit."""
    files = layers.parks.unit_files(b.equipment, b.units, b.inputs.hazards, b.as_of,
                                    b.rules.parks)
    return _with_location(_with_build_status(files, b), b.units)


def _with_build_status(files: pd.DataFrame, b: Build) -> pd.DataFrame:
    """Unit files with the unit's build status, small/micro mode and checklist."""
    checklists = layers.small_micro.checklists(b.units, b.equipment, b.small_micro,
                                               b.rules.small_micro)
    # a few checklists, each held by many units: carried as codes, made text once at the end
    checklist, texts = pd.factorize(checklists, use_na_sentinel=True)
    first = ~b.units["credit_code"].astype("string").duplicated().to_numpy()
    per_unit = pd.DataFrame({"build_status": b.build_status.to_numpy()[first],
                             "small_micro": b.small_micro[first],
                             "checklist": checklist[first]},
                            index=pd.Index(b.units["credit_code"].astype("string")[first]))
    found = per_unit.reindex(files["credit_code"].astype("string"))
    out = files.reset_index(drop=True)
    out["build_status"] = pd.array(found["build_status"].to_numpy(), dtype="string")
    out["small_micro"] = pd.array(found["small_micro"].to_numpy(), dtype="boolean")
    code = found["checklist"].to_numpy(dtype="float64", na_value=np.nan)
    out["checklist"] = _texts_of(np.where(np.isnan(code), -1, code).astype(np.int64), texts)
    return out


def _texts_of(codes: np.ndarray, texts: object) -> pd.api.extensions.ExtensionArray:
    """``texts[codes]`` as a string array (<NA> where a code is -1), copied by Arrow from
    each text encoded once, not encoded row by row from Python objects."""
    table = pa.array(np.asarray(texts, dtype=object), type=pa.large_string())
    return pd.array(table.take(pa.array(codes, mask=codes < 0)), dtype="string")


@builder("aggregate")
def risk_cells(b: Build) -> gpd.GeoDataFrame:
    """Risk indicators per H3 cell at every configured resolution."""
    s = b.sums
    return layers.aggregate.risk_cells_from(s.cells, s.cell_totals, s.unlocated,
                                            b.rules.aggregate.cell_resolutions,
                                            b.rules.aggregate)


@builder("aggregate")
def regions(b: Build) -> gpd.GeoDataFrame:
    """Risk indicators per province, city and county."""
    return b.regions


@builder("aggregate")
def industries(b: Build) -> pd.DataFrame:
    """Risk indicators per region and industry."""
    frame = layers.aggregate.industries_from(b.sums.places, b.inputs.boundaries)
    return _with_region_codes(frame, b.inputs.boundaries)


@builder("aggregate")
def grid_cells(b: Build) -> gpd.GeoDataFrame:
    """Risk indicators per grid officer's cell, each in the county holding its centre."""
    return layers.aggregate.grid_cells_from(b.grid_targets, b.sums.grid_totals,
                                            b.inputs.officers, b.inputs.officer_cells,
                                            b.inputs.boundaries)


@builder("hotspots")
def hotspots(b: Build) -> pd.DataFrame:
    """The hotspot cells of serious hazards."""
    return b.hotspot_cells


@builder("hotspots")
def hotspot_units(b: Build) -> pd.DataFrame:
    """The units inside hotspot cells."""
    return b.hotspot_units


@builder("hotspots")
def widespread(b: Build) -> pd.DataFrame:
    """Widespread serious hazards per county and category."""
    return b.widespread


@builder("frequency")
def frequency(b: Build) -> pd.DataFrame:
    """The units whose check frequency was raised, with their cell."""
    return _with_cell(layers.frequency.boosted_units(b.schedule), b.units)


@builder("frequency")
def check_schedule(b: Build) -> pd.DataFrame:
    """Every unit's check schedule, with its cell."""
    return _with_cell(b.schedule, b.units)


@builder("frequency")
def workload(b: Build) -> pd.DataFrame:
    """Planned checks against inspection capacity per province, city and county."""
    return layers.workload.workload_from(b.schedule_sums, b.capacity, b.inputs.boundaries)


@builder("frequency")
def campaign_completion(b: Build) -> pd.DataFrame:
    """The year's campaigns: units named and checked during the campaign, per region."""
    return layers.workload.campaign_completion(b.units, b.inputs.checks, b.inputs.boundaries,
                                               b.rules.campaigns, b.as_of)


@builder("demonstration")
def demonstration(b: Build) -> gpd.GeoDataFrame:
    """The chosen demonstration enterprises."""
    return b.demonstration[0]


@builder("demonstration")
def demonstration_coverage(b: Build) -> pd.DataFrame:
    """Candidates, qualified and chosen per city and category."""
    return b.demonstration[1]


@builder("parks")
def parks(b: Build) -> gpd.GeoDataFrame:
    """Every park's profile (一园一策)."""
    return layers.parks.park_profiles_from(b.park_sums, b.units, b.inputs.parks, b.as_of,
                                           b.rules.parks)


@builder("alerts")
def insurance(b: Build) -> pd.DataFrame:
    """Elevator insurance coverage per region, with its region codes."""
    return _with_region_codes(b.insurance, b.inputs.boundaries)


@builder("alerts")
def warnings(b: Build) -> pd.DataFrame:
    """The regions' 风险提示·警示·预警, with their region codes."""
    frame = layers.alerts.warnings(b.regions, b.insurance, b.hotspot_cells, b.widespread,
                                   b.rules.warnings, equipment=b.sums.places.frame())
    return _with_region_codes(frame, b.inputs.boundaries)


@builder("points")
def venues(b: Build) -> gpd.GeoDataFrame:
    """Crowded venues with the risk inside them."""
    return layers.points.venues_risk_from(b.inputs.venues, b.venue_counts)


@builder("points")
def hazards(b: Build) -> gpd.GeoDataFrame:
    """Open hazards at their equipment."""
    return layers.points.open_hazards(b.inputs.hazards, b.equipment, b.units, b.as_of)


@builder("points")
def overdue(b: Build) -> gpd.GeoDataFrame:
    """Equipment past its inspection date."""
    return layers.points.overdue_inspections(b.equipment, b.as_of)


@builder("points")
def blacklist(b: Build) -> gpd.GeoDataFrame:
    """Blacklisted units."""
    return layers.points.blacklist(b.units)


@builder("points")
def blacklist_candidates(b: Build) -> gpd.GeoDataFrame:
    """Units meeting the blacklist criteria but not listed yet."""
    return layers.points.blacklist_candidates(b.units, b.inputs.hazards, b.as_of,
                                              b.rules.blacklist, late=b.late_major)
