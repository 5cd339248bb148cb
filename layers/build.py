"""Build every layer of :mod:`layers.registry` from the ingested tables, in dependency order.

Each registry entry names its builder (:mod:`layers.builders`); the build calls them stage
by stage. Grading comes first (every other layer reads the graded equipment and units),
then the hotspots (frequency and warnings read them), then the rest. Each stage is timed;
the report says what every layer holds and what could not be placed (nothing is dropped
silently).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pandas as pd

import layers.workload
from layers.builders import STAGES, Build, Builder, Inputs
from layers.registry import ALL, LayerSpec
from layers.registry import fingerprint as registry_fingerprint
from layers.rules import Rules

__all__ = ["BuildResult", "Grade", "Inputs", "build_layers", "builder_of"]


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


def builder_of(spec: LayerSpec) -> Builder:
    """The builder the registry names for ``spec`` (``"module:function"``), imported."""
    module, _, name = spec.builder.partition(":")
    found = getattr(importlib.import_module(module), name, None)
    if not isinstance(found, Builder):
        raise TypeError(f"layer {spec.id}: {spec.builder} is not a layers.builders.builder")
    return found


#: Grades a build's input elsewhere (the Dask engine, :mod:`service.build_dask`): the graded
#: units exactly as :attr:`layers.builders.Build.graded` gives them, and the graded
#: equipment, or None where it is not held (what the stages read of it filled in instead).
Grade = Callable[[Build], tuple[pd.DataFrame | None, pd.DataFrame]]


def build_layers(inputs: Inputs, rules: Rules,
                 progress: Callable[[str], None] | None = None, *,
                 grade: Grade | None = None,
                 made: dict[str, pd.DataFrame] | None = None) -> BuildResult:
    """Every layer and finding table of the registry, keyed by id, and a build report.

    Each layer is computed by the builder the registry names for it; builders run stage by
    stage (:data:`layers.builders.STAGES`, after grading) and each stage is timed. ``grade``,
    if given, grades instead of :attr:`Build.graded` (timed as the grading stage); ``made``
    holds layers already built elsewhere (by id; ``grade`` may fill it), whose builders are
    then not run."""
    t = _Timer(progress)
    builders = {lid: builder_of(spec) for lid, spec in ALL.items()}
    build = Build(inputs, rules)
    with t.stage("grade"):
        if grade is not None:
            build.graded = grade(build)  # type: ignore[misc]  # fills the cached property
        units = build.units
    built: dict[str, pd.DataFrame] = {}
    for stage in STAGES:
        with t.stage(stage):
            for lid, make in builders.items():
                if make.stage == stage:
                    built[lid] = made[lid] if made and lid in made else make(build)
    frames = {lid: built[lid] for lid in ALL}
    equipment, cells, regions = frames["equipment"], frames["risk-cells"], frames["regions"]
    hot, wide, coverage = frames["hotspots"], frames["widespread"], frames["demonstration-coverage"]
    warnings = frames["warnings"]
    report = {
        "as_of": inputs.as_of.isoformat(), "rules_version": rules.version,
        "rules_hash": rules.fingerprint(), "registry": registry_fingerprint(),
        "rows": {lid: len(f) for lid, f in frames.items()},
        "levels": build.sums.levels(),
        "unit_levels": {str(k): int(v) for k, v in units["level"].value_counts().items()},
        "equipment_not_graded": build.sums.not_graded(),
        "equipment_unlocated": int(equipment.geometry.isna().sum()),
        "equipment_outside_cells": int(cells.attrs.get("unlocated", 0)),
        "equipment_outside_regions": int(regions.attrs.get("unplaced", 0)),
        "grid_cells_outside_counties": int(
            frames["grid-cells"].attrs.get("rows_outside_counties", 0)),
        "hotspot_cells": len(hot),
        "regional_hotspot_cells": int(hot["regional"].sum()) if len(hot) else 0,
        "widespread": int(wide["widespread"].sum()) if len(wide) else 0,
        "demonstration_gaps": int(coverage["gap"].sum()) if len(coverage) else 0,
        "warnings": {str(k): int(v) for k, v in warnings["grade"].value_counts().items()}
        if len(warnings) else {},
        "over_capacity": _over_capacity(frames["workload"], inputs.boundaries),
        "seconds": t.seconds,
    }
    return BuildResult(frames, report)


def _over_capacity(workload: pd.DataFrame, boundaries: pd.DataFrame) -> list[dict]:
    """The counties whose planned checks exceed their capacity, named in full (郑州市金水区)."""
    names = layers.workload.region_names(boundaries)
    rows = layers.workload.over_capacity(workload)
    return [{**row, "name": names.get(row["adcode"], row["name"])} for row in rows]
