"""``riskmap build``: read the stored tables, build every layer, write them back at once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import pandas as pd

from geo.boundaries import load_boundaries
from layers.build import Inputs, build_layers
from layers.rules import Rules, load_rules
from service.memory import release_memory
from service.store.base import LayerBuild, StagedLayer, Store

if TYPE_CHECKING:
    from distributed import Client

STALE_STAGES = timedelta(days=1)  # older staging is a killed driver's, never a live one's
INPUT_TABLES = ("equipment", "units", "hazards", "checks", "parks", "venues", "officers",
                "officer_cells")


#: Columns of the units table no layer is made of: where a row came from and how it was
#: read (ingest, the rejects and the data pages show them) and the address text. A build
#: reads the others (at 5M units the ones left out are about a third of the table).
UNIT_COLUMNS_LEFT = ("address", "source_crs", "geocode_precision", "flags", "row_hash",
                     "batch_id", "source_file", "source_row", "updated_at")


def read_inputs(store: Store, provinces: list[str], as_of: date,
                equipment_columns: list[str] | None = None) -> Inputs:
    """The stored tables (of units, all but :data:`UNIT_COLUMNS_LEFT`) and the boundaries
    of the configured provinces (all three levels); of equipment only
    ``equipment_columns`` if given."""
    columns = {"equipment": equipment_columns, "units": [
        c for c in store.read_columns("units", None) if c not in UNIT_COLUMNS_LEFT]}
    tables = {name: store.read(name, columns.get(name)) for name in INPUT_TABLES}
    boundaries = gpd.GeoDataFrame(pd.concat(
        [load_boundaries(provinces, level) for level in ("province", "city", "county")],
        ignore_index=True), crs=4326)
    return Inputs(**tables, boundaries=boundaries, as_of=as_of)


def _releasing(progress: Callable[[str], None] | None) -> Callable[[str], None]:
    """``progress``, first giving back what the stage before freed
    (:func:`service.memory.release_memory`): the next stage's peak is then its own."""

    def stage(name: str) -> None:
        release_memory()
        if progress:
            progress(name)

    return stage


def run_build(store: Store, provinces: list[str], *, rules: Rules | None = None,
              rules_path: str | Path | None = None, as_of: date | None = None,
              progress: Callable[[str], None] | None = None, engine: str = "local",
              scheduler: str | None = None, client: Client | None = None,
              partitions: int | None = None) -> LayerBuild:
    """Build every layer from what the store holds now and write them as one build.

    ``engine="dask"`` grades on Dask (:mod:`service.build_dask`: on ``client``, else the
    cluster at ``scheduler``, else a LocalCluster; ``partitions`` at most) and gives the
    same layers; the report records the engine."""
    rules = rules or load_rules(rules_path)
    as_of = as_of or date.today()
    progress = _releasing(progress)
    # what a killed driver left staged (parts of a build, a batch's tables) goes
    store.drop_stale_stages(datetime.now(UTC) - STALE_STAGES)
    data_version = store.data_version()
    staged: dict[str, StagedLayer] = {}
    if engine == "dask":
        from service.build_dask import build_on_dask

        built = build_on_dask(store, lambda columns: read_inputs(
            store, provinces, as_of, columns), rules, progress, client=client,
            scheduler=scheduler, partitions=partitions)
        result, staged = built.result, built.staged
    elif engine == "local":
        result = build_layers(read_inputs(store, provinces, as_of), rules, progress)
    else:
        raise ValueError(f"unknown build engine {engine!r}; known: local, dask")
    result.report["engine"] = engine
    build = LayerBuild(
        build_id=f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}",
        built_at=datetime.now(UTC), as_of=as_of, rules_version=rules.version,
        rules_hash=rules.fingerprint(), data_version=data_version, report=result.report)
    progress("write")
    try:
        store.write_layers(result.frames, build, staged)
    finally:
        for token in {layer.token for layer in staged.values()}:
            store.drop_staged_layers(token)  # written (then gone) or not: none left
    return build
