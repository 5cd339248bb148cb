"""Cutting a build's input into partitions whose per-unit work is exact, and joining the
partitions' results back into what the whole table gives (plain pandas: the Dask engine,
:mod:`service.build_dask`, maps over these partitions; nothing here imports Dask).

A partition is a set of counties (the using unit's ``county_adcode``): every unit goes to
the partition of its county, every piece of equipment to the partition of its unit (so a
unit's grade sees all its equipment), and every hazard to the partition of the equipment
it names (so each piece counts all its hazards). Counties are packed into partitions by
their equipment rows, largest first, each into the lightest partition so far: the same
input always gives the same partitions.

On a partition (:func:`build_partition`) run grading, which is per piece and per unit,
and the builders of the layers made of one row per unit or per row of the input: the
equipment, the unit files, the open hazards and the overdue pieces (:data:`STAGED_LAYERS`,
which the Dask engine writes to the store part by part, put back in order by
:func:`staged_order`; the order of the last two, sorted by their values, from what each
partition sends of its rows: :func:`sort_keys`, :func:`sorted_positions`). With the graded
frames (:func:`join_graded`) they are exactly what the whole input gives: the same rows
in the same order, the same columns, dtypes and values (a unit's sums add its pieces in
the same order). Once the hotspot units are known, a partition's check schedule
(:func:`schedule_partition`: its counties whole, so each county's capacity is its own)
gives the :data:`SCHEDULE_LAYERS`, put in order by :func:`schedule_positions`. What needs
the whole table (cells, regions, hotspot Gi*, ranks, picks, warnings) is not here:
:func:`layers.build.build_layers` computes it from what the partitions sum and send of
their pieces (:class:`layers.aggregate.Sums` …) and the joined graded units
(:func:`join_units`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd
import pyarrow.compute as pc

import layers.builders
import layers.risk
from layers.builders import Build, Inputs
from layers.columns import arrow_text
from layers.frequency import UnitFacts

if TYPE_CHECKING:
    from layers.rules import Rules

NO_COUNTY = ""  # the partition key of a unit or piece without a county


@dataclass(frozen=True)
class Plan:
    """Which partition each row of the inputs goes to (0 … ``parts`` - 1).

    A hazard's home is the partition of the piece it names, else of the unit it names,
    else the first: the open hazards layer takes it there. ``hazard_rows`` /
    ``hazard_parts`` are pairs: a hazard whose registration code is held by pieces in two
    partitions (codes are unique after ingest, so not in practice) goes to both, so that
    each piece counts it."""

    parts: int
    units: np.ndarray        # per unit row
    equipment: np.ndarray    # per equipment row
    hazards: np.ndarray      # per hazard row: its home
    hazard_rows: np.ndarray  # hazard row positions …
    hazard_parts: np.ndarray  # … and another partition each goes to

    def rows(self, which: str, part: int) -> np.ndarray:
        """Row positions (ascending: the input order kept) of ``which`` in ``part``; a
        partition's hazards are those at home there and those naming its pieces."""
        if which == "hazards":
            return np.union1d(np.flatnonzero(self.hazards == part),
                              self.hazard_rows[self.hazard_parts == part])
        return np.flatnonzero(getattr(self, which) == part)


def _text(values: pd.Series) -> pd.Series:
    return values.astype("string").reset_index(drop=True)


def plan(units: pd.DataFrame, equipment: pd.DataFrame, hazards: pd.DataFrame,
         parts: int) -> Plan:
    """Partitions of at most ``parts`` (fewer when there are fewer counties with equipment),
    by the units' counties; see the module's docstring.

    Vectorised on codes, not on text: every credit code (the units', the pieces' owners',
    the hazards' units) is factorized once into one code space and every registration
    code into another, and the rest is integer arrays (at 5M pieces, text keyed by text
    took half a minute and a copy of every key as Python strings)."""
    if parts < 1:
        raise ValueError("parts must be at least 1")
    n_units, n_eq = len(units), len(equipment)
    hazard_units = (_text(hazards["unit_credit_code"]) if "unit_credit_code" in hazards
                    else pd.Series(pd.NA, index=range(len(hazards)), dtype="string"))
    credit, _ = pd.factorize(pd.concat([_text(units["credit_code"]),
                                        _text(equipment["unit_credit_code"]), hazard_units],
                                       ignore_index=True))
    unit_code, owner, hazard_unit = np.split(credit, [n_units, n_units + n_eq])
    county, counties = pd.factorize(pd.concat(
        [_text(units["county_adcode"]), _text(equipment["county_adcode"])],
        ignore_index=True).fillna(NO_COUNTY))
    unit_county, eq_county = county[:n_units], county[n_units:]
    codes = int(credit.max(initial=-1)) + 1
    # a code's county: its first unit row's; for a unit only equipment names, its first
    # piece's (a code twice keeps its rows together)
    table_county = _first_per_code(unit_code, unit_county, codes)
    county_of = np.where(table_county >= 0, table_county,
                         _first_per_code(owner, eq_county, codes))
    key = np.where(owner >= 0, county_of[np.maximum(owner, 0)], eq_county)  # no unit: own
    weights = np.bincount(key, minlength=len(counties))
    packed = np.flatnonzero(weights)
    part_of = _pack(pd.Series(weights[packed], index=counties[packed]), parts)
    part_by_county = np.full(len(counties), -1, dtype=np.int64)
    part_by_county[packed] = [part_of[c] for c in counties[packed]]
    eq_part = part_by_county[key]
    # units whose county has no equipment: by their county if packed, else partition 0
    unit_county_of = np.where(unit_code >= 0, table_county[np.maximum(unit_code, 0)],
                              unit_county)
    unit_part = np.maximum(part_by_county[unit_county_of], 0)
    hazard_rows, hazard_parts, home = _hazard_parts(equipment, hazards, eq_part)
    if len(hazard_unit):  # a hazard naming no piece here: its unit's partition
        unit_home = _first_per_code(unit_code, unit_part, codes)
        by_unit = np.where(hazard_unit >= 0, unit_home[np.maximum(hazard_unit, 0)], -1)
        home = np.where(home >= 0, home, by_unit)
    return Plan(max(len(set(part_of.values())), 1), unit_part, eq_part,
                np.maximum(home, 0), hazard_rows, hazard_parts)


def _first_per_code(code: np.ndarray, values: np.ndarray, codes: int) -> np.ndarray:
    """Per code 0 … ``codes`` - 1 the value of its first row (-1: no row); rows whose code
    is -1 (no code) count for none."""
    out = np.full(codes, -1, dtype=np.int64)
    has = np.flatnonzero(code >= 0)
    found, first = np.unique(code[has], return_index=True)
    out[found] = values[has[first]]
    return out


def _hazard_parts(equipment: pd.DataFrame, hazards: pd.DataFrame, eq_part: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (hazard row, partition) pairs of the partitions holding a piece of each hazard's
    registration code (each partition once, in the order its first such piece comes), and
    each hazard's home: the first of them (-1: no piece has its code)."""
    hz_text = _text(hazards["registration_code"])
    # only the pieces whose code a hazard names: a hash of the hazards' codes, not of
    # every piece's (at 5M pieces that was most of the plan's time and memory)
    wanted = pc.unique(arrow_text(hz_text).drop_null())
    held = np.flatnonzero(pc.is_in(arrow_text(_text(equipment["registration_code"])),
                                   value_set=wanted).to_numpy(zero_copy_only=False))
    reg, _ = pd.factorize(pd.concat([_text(equipment["registration_code"].iloc[held]),
                                     hz_text], ignore_index=True))
    held_reg, hz_reg = reg[:len(held)], reg[len(held):]
    parts = int(eq_part.max(initial=0)) + 1
    # distinct (code, partition) pairs, in the order of their first piece
    _, first = np.unique(held_reg * parts + eq_part[held], return_index=True)
    first = np.sort(first)
    by_code = np.argsort(held_reg[first], kind="stable")
    pair_code, pair_part = held_reg[first][by_code], eq_part[held][first][by_code]
    named = np.flatnonzero(hz_reg >= 0)
    start = np.searchsorted(pair_code, hz_reg[named], side="left")
    count = np.searchsorted(pair_code, hz_reg[named], side="right") - start
    rows = np.repeat(named, count)
    at = np.repeat(start - np.cumsum(count) + count, count) + np.arange(count.sum())
    home = np.full(len(hazards), -1, dtype=np.int64)
    home[named[count > 0]] = pair_part[start[count > 0]]
    return rows.astype(np.int64), pair_part[at].astype(np.int64), home


def _pack(weights: pd.Series, parts: int) -> dict[str, int]:
    """County → partition: largest first, each into the lightest partition so far (ties:
    the lower partition; counties of equal size by code), never an empty partition."""
    order = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))
    n = max(1, min(parts, len(order)))
    load = [0] * n
    out: dict[str, int] = {}
    for county, rows in order:
        part = min(range(n), key=lambda p: (load[p], p))
        out[county] = part
        load[part] += int(rows)
    return out


def take(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """Rows ``rows`` of ``frame`` with a fresh 0 … n - 1 index (as the store gives a table)."""
    return frame.iloc[rows].reset_index(drop=True)


def grade_partition(equipment: pd.DataFrame, units: pd.DataFrame, hazards: pd.DataFrame,
                    venues: pd.DataFrame, as_of: date, rules: layers.risk.RiskRules
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The graded equipment and units of one partition (as :class:`layers.builders.Build`
    grades the whole input)."""
    eq = layers.risk.grade_equipment(equipment, units, hazards, venues, as_of, rules)
    return eq, layers.risk.grade_units(units, eq, rules)


#: The layers built on each partition and written by it in parts, never joined: one row
#: per piece of equipment, per unit (the unit files), per open hazard, per overdue piece.
STAGED_LAYERS: tuple[str, ...] = ("equipment", "units", "hazards", "overdue")
#: Of the staged layers, those sorted by their values (as :mod:`layers.points` sorts
#: them): the columns of each row a partition sends to put the parts in that order.
SORT_KEYS: dict[str, tuple[str, ...]] = {
    "hazards": ("hazard_id", "days_past_deadline", "listed"),
    "overdue": ("registration_code", "days_overdue")}


#: The layers a partition builds in a second round, once the hotspot units (which need
#: every partition's counts) are known: its units' check schedule and those boosted. A
#: partition holds its counties whole, so each county's capacity bounds its own units.
SCHEDULE_LAYERS: tuple[str, ...] = ("check-schedule", "frequency")


class Scheduled(NamedTuple):
    """What a partition sends back of its check schedule."""

    codes: pd.Series      # the credit codes of its schedule's rows, in their order
    boosted: np.ndarray   # which of those rows the frequency layer holds
    sums: pd.DataFrame    # what the workload table reads (layers.workload.schedule_sums)


def schedule_partition(inputs: Inputs, units: pd.DataFrame, facts: UnitFacts,
                       hotspot_units: pd.DataFrame, widespread: pd.DataFrame,
                       capacity: pd.DataFrame, rules: Rules
                       ) -> tuple[dict[str, pd.DataFrame], Scheduled]:
    """A partition's :data:`SCHEDULE_LAYERS` by their registry builders, from its graded
    ``units``, their :class:`~layers.frequency.UnitFacts` and ``inputs.checks`` (its
    units'), with the whole build's hotspot units, widespread hazards and capacity."""
    build = Build(inputs, rules)
    build.graded = (None, units)  # type: ignore[assignment]
    build.unit_facts = facts
    build.hotspot_units = hotspot_units
    build.widespread = widespread
    build.capacity = capacity
    frames = {"check-schedule": layers.builders.check_schedule(build),
              "frequency": layers.builders.frequency(build)}
    s = build.schedule
    return frames, Scheduled(s["credit_code"].astype("string").reset_index(drop=True),
                             s["boosted"].fillna(False).to_numpy(dtype=bool),
                             build.schedule_sums)


def schedule_positions(parts: list[Scheduled]) -> dict[str, np.ndarray] | None:
    """Where the partitions' schedule rows (one partition after another) go in the whole
    :data:`SCHEDULE_LAYERS`: by credit code, as the schedule orders its units; None when a
    credit code is in two partitions' (not after ingest, which keeps them unique)."""
    codes = pd.concat([p.codes for p in parts], ignore_index=True)
    if not _unique(codes):
        return None
    at = np.empty(len(codes), dtype=np.int64)
    at[np.argsort(codes.to_numpy(dtype=object), kind="stable")] = np.arange(len(codes))
    boosted = at[np.concatenate([p.boosted for p in parts])]
    rank = np.empty(len(boosted), dtype=np.int64)
    rank[np.argsort(boosted, kind="stable")] = np.arange(len(boosted))
    return {"check-schedule": at, "frequency": rank}


def partition_inputs(inputs: Inputs, plan: Plan, part: int) -> tuple[Inputs, np.ndarray]:
    """Partition ``part`` of ``inputs`` (the tables its builders do not read left empty)
    and which of its hazards are at home there."""
    hazard_rows = plan.rows("hazards", part)
    return replace(
        inputs, equipment=take(inputs.equipment, plan.rows("equipment", part)),
        units=take(inputs.units, plan.rows("units", part)),
        hazards=take(inputs.hazards, hazard_rows),
        checks=inputs.checks.iloc[:0], parks=inputs.parks.iloc[:0],
        officers=inputs.officers.iloc[:0], officer_cells=inputs.officer_cells.iloc[:0],
        boundaries=inputs.boundaries.iloc[:0]), plan.hazards[hazard_rows] == part


def build_partition(inputs: Inputs, home: np.ndarray, rules: Rules
                    ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame]]:
    """A partition graded, and its :data:`STAGED_LAYERS` by their registry builders (the
    open hazards of the hazards at ``home`` only: the others are there to be counted by
    the pieces they name)."""
    build = Build(inputs, rules)
    build.graded = grade_partition(inputs.equipment, inputs.units, inputs.hazards,
                                   inputs.venues, inputs.as_of, rules.risk)
    at_home = Build(replace(inputs, hazards=inputs.hazards[home].reset_index(drop=True)),
                    rules)
    at_home.graded = build.graded
    frames = {"units": layers.builders.units(build),
              "hazards": layers.builders.hazards(at_home),
              "overdue": layers.builders.overdue(build),
              "equipment": layers.builders.equipment(build)}
    return *build.graded, frames


def first_pieces(graded_eq: pd.DataFrame, graded_units: pd.DataFrame, table_units: int
                 ) -> pd.DataFrame:
    """The first piece of each unit a partition's equipment names but its units table
    lacks (graded units after the first ``table_units``): all :func:`join_units` needs of
    the equipment for them."""
    codes = graded_units["credit_code"].iloc[table_units:].astype("string")
    owner = graded_eq["unit_credit_code"].astype("string")
    named = graded_eq[owner.isin(codes).fillna(False).to_numpy(dtype=bool)]
    return named[~named["unit_credit_code"].astype("string").duplicated().to_numpy()]


@dataclass(frozen=True)
class PartitionUnits:
    """What the joining side needs of a partition's graded units: of the units table's
    (which it holds) only the columns grading sets, of the units only the partition's
    equipment names every column."""

    graded: pd.DataFrame  # the table's units, in the partition's order: GRADED_UNIT_COLUMNS
    extra: pd.DataFrame   # then the units only its equipment names, every column

    @classmethod
    def of(cls, graded_units: pd.DataFrame, table_units: int) -> PartitionUnits:
        """A partition's graded units, its first ``table_units`` from its units table."""
        return cls(graded_units.iloc[:table_units][list(layers.risk.GRADED_UNIT_COLUMNS)]
                   .reset_index(drop=True),
                   graded_units.iloc[table_units:].reset_index(drop=True))

    @property
    def rows(self) -> int:
        return len(self.graded) + len(self.extra)


def join_graded(parts: list[tuple[pd.DataFrame, pd.DataFrame]], plan: Plan,
                equipment_index: pd.Index, units: pd.DataFrame,
                pieces: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The graded partitions (in partition order) as the whole input's graded frames: the
    equipment and the units in their input order, with the input's index (``units``: the
    input's units table). ``parts`` is emptied as it is read (the partitions and the
    joined frames are not all held at once). ``pieces``: the partitions'
    :func:`first_pieces`, in partition order, when their equipment came back with some
    columns only (default: the joined equipment has them all)."""
    eq_order = np.argsort(np.concatenate([plan.rows("equipment", p)
                                          for p in range(plan.parts)]), kind="stable")
    graded_units = [PartitionUnits.of(u, len(plan.rows("units", p)))
                    for p, (_, u) in enumerate(parts)]
    graded_eq = [g for g, _ in parts]
    parts.clear()
    eq = stacked(graded_eq, eq_order)
    eq.index = equipment_index
    return eq, join_units(graded_units, plan, units, eq if pieces is None else pieces)


def join_units(parts: list[PartitionUnits], plan: Plan, units: pd.DataFrame,
               pieces: pd.DataFrame) -> pd.DataFrame:
    """The graded units of the partitions (in partition order) as the whole input's: the
    table's units in their input order, with its index (``units``: the input's units
    table, whose columns the graded units share, not copy), then the units only equipment
    names, by credit code. ``pieces``: the partitions' :func:`first_pieces` (or the whole
    graded equipment)."""
    order = np.argsort(np.concatenate([plan.rows("units", p) for p in range(plan.parts)]),
                       kind="stable")
    graded = pd.concat([p.graded for p in parts], ignore_index=True).take(order)
    known = units.copy(deep=False)  # copy on write: the table's columns are shared
    known["credit_code"] = known["credit_code"].astype("string")  # as grading makes it
    for column in layers.risk.GRADED_UNIT_COLUMNS:
        known[column] = graded[column].set_axis(known.index)
    extra = [p.extra for p in parts if len(p.extra)]
    if not extra:
        return known
    return _with_units_from_equipment(known, pd.concat(extra, ignore_index=True), pieces,
                                      units)


def stacked(frames: list[pd.DataFrame], order: np.ndarray) -> pd.DataFrame:
    """``frames`` one under another, rows then taken in ``order``, as ``pd.concat`` and
    ``take`` give them (each column's dtype as concat makes it), but column by column,
    each frame's column dropped once copied: the partitions and the joined frame are never
    both held whole (``frames`` is emptied of its columns)."""
    columns = list(frames[0].columns)
    out: dict[str, pd.Series] = {}
    for column in columns:
        joined = pd.concat([f[column] for f in frames], ignore_index=True)
        out[column] = joined.take(order).reset_index(drop=True)
        for f in frames:
            del f[column]
    return pd.DataFrame(out, columns=columns, copy=False)


def _with_units_from_equipment(known: pd.DataFrame, added: pd.DataFrame, eq: pd.DataFrame,
                               units: pd.DataFrame) -> pd.DataFrame:
    """The graded units when equipment names units the units table lacks: after the table's
    units, those, by credit code (as :func:`layers.risk.grade_units` appends them). Their
    stored columns are made again here from the whole equipment, as grading the whole
    input makes them: each partition's own rows would give a column the dtype of what
    that partition's rows hold (a text column all empty in one partition is ``object``)."""
    added = added.take(np.argsort(added["credit_code"].astype("string").to_numpy(
        dtype=object), kind="stable"))
    graded = pd.concat([known, added], ignore_index=True)
    base = pd.DataFrame(units).copy()
    base["credit_code"] = base["credit_code"].astype("string")
    codes = pd.Index(added["credit_code"].astype("string"), dtype="string")
    base = pd.concat([base, layers.risk._units_from_equipment(eq, codes, base.columns)],
                     ignore_index=True)
    for column in graded.columns:
        if column not in units.columns:  # what grading adds (it changes no stored column)
            base[column] = graded[column]
    return base[list(graded.columns)]


def unit_positions(plan: Plan, unit_counts: list[int], extra_codes: list[np.ndarray]
                   ) -> np.ndarray:
    """Where the partitions' graded units (one partition after another, each its table
    units, then the units only its equipment names) go among the whole input's graded
    units: the table's units in their input order, then the others by credit code.
    ``unit_counts``: the table's units in each partition; ``extra_codes``: the codes of
    the units each added, in its order."""
    table_rows = np.concatenate([plan.rows("units", p) for p in range(plan.parts)])
    codes = np.concatenate(extra_codes) if extra_codes else np.zeros(0, dtype=object)
    extra_rank = np.empty(len(codes), dtype=np.int64)
    extra_rank[np.argsort(codes.astype(object), kind="stable")] = np.arange(len(codes))
    position = np.empty(len(table_rows) + len(codes), dtype=np.int64)
    at, t, e = 0, 0, 0
    for p in range(plan.parts):  # each partition: its table units, then what it added
        n, k = unit_counts[p], len(extra_codes[p])
        position[at:at + n] = table_rows[t:t + n]
        position[at + n:at + n + k] = len(table_rows) + extra_rank[e:e + k]
        at, t, e = at + n + k, t + n, e + k
    return position


def staged_order(positions: np.ndarray, sizes: list[int]) -> np.ndarray:
    """The partition of each row of a whole layer whose partitions' rows (one partition
    after another, ``sizes`` rows each) go to ``positions``: what a store needs to put a
    layer staged in parts back in order (each part holds its rows in that order)."""
    order = np.empty(len(positions), dtype=np.int64)
    order[positions] = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    return order


def sort_keys(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """What a partition sends of its sorted layers (:data:`SORT_KEYS`) to be merged."""
    return {lid: frames[lid][list(columns)].reset_index(drop=True)
            for lid, columns in SORT_KEYS.items()}


def sorted_positions(keys: list[dict[str, pd.DataFrame]]) -> dict[str, np.ndarray] | None:
    """For each layer of :data:`SORT_KEYS`, where the partitions' rows (one partition after
    another; ``keys``: their :func:`sort_keys`, in partition order) go in the whole layer:
    the open hazards and the overdue pieces sorted as :mod:`layers.points` sorts them,
    which is a total order when hazard ids and registration codes are unique (ingest's
    keys). None when they are not."""
    joined = {lid: pd.concat([k[lid] for k in keys], ignore_index=True) for lid in SORT_KEYS}
    hazards, overdue = joined["hazards"], joined["overdue"]
    if not (_unique(hazards["hazard_id"]) and _unique(overdue["registration_code"])):
        return None
    # as layers.points.open_hazards and overdue_inspections order their rows
    orders = {
        "hazards": np.lexsort((
            hazards["hazard_id"].to_numpy(dtype=object, na_value=""),
            -hazards["days_past_deadline"].fillna(-1).to_numpy(dtype=np.int64),
            ~hazards["listed"].to_numpy(dtype=bool))),
        "overdue": np.lexsort((
            overdue["registration_code"].to_numpy(dtype=object, na_value=""),
            -overdue["days_overdue"].to_numpy(dtype=np.int64)))}
    positions = {}
    for lid, order in orders.items():
        positions[lid] = np.empty(len(order), dtype=np.int64)
        positions[lid][order] = np.arange(len(order), dtype=np.int64)
    return positions


def _unique(values: pd.Series) -> bool:
    return bool(values.notna().all() and values.is_unique)
