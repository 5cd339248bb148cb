"""The stored tables: one column list that both store implementations follow.

Column types are abstract (``text``, ``float``, ``int``, ``bool``, ``date``,
``timestamp``, ``point``, ``multipolygon``, ``json``); each store maps them to its own.
``row_hash`` fingerprints a row's content (not where it came from), so an upsert can
tell inserted, updated and unchanged rows apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from layers.registry import ALL as LAYER_SPECS
from layers.registry import LayerSpec

META = [("row_hash", "int"), ("batch_id", "text"), ("source_file", "text"),
        ("source_row", "int"), ("updated_at", "timestamp")]

LOCATION = [
    ("lon", "float"), ("lat", "float"), ("source_crs", "text"), ("geocode_precision", "text"),
    ("province_adcode", "text"), ("city_adcode", "text"), ("county_adcode", "text"),
    ("h3", "text"), ("h3_5", "text"), ("h3_6", "text"), ("h3_7", "text"),
    ("park_id", "text"), ("venue_id", "text"), ("flags", "text"),
]


@dataclass(frozen=True)
class Table:
    name: str
    key: str
    columns: tuple[tuple[str, str], ...]
    geometry: str | None = None  # "point" | "multipolygon" | None

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]

    def type_of(self, column: str) -> str:
        return dict(self.columns)[column]


TABLES: dict[str, Table] = {
    "equipment": Table("equipment", "registration_code", (
        ("registration_code", "text"), ("category_code", "text"), ("category", "text"),
        ("unit_credit_code", "text"), ("unit_name", "text"), ("address", "text"),
        *LOCATION,
        ("commissioned_on", "date"), ("last_inspected_on", "date"),
        ("next_inspection_due", "date"), ("inspection_conclusion", "text"), ("status", "text"),
        ("insured", "bool"), ("use_place", "text"), *META,
    ), "point"),
    "units": Table("units", "credit_code", (
        ("credit_code", "text"), ("name", "text"), ("industry", "text"), ("size", "text"),
        ("address", "text"), *LOCATION,
        ("five_have_score", "int"), ("blacklisted", "bool"), ("accidents_3y", "int"), *META,
    ), "point"),
    "hazards": Table("hazards", "hazard_id", (
        ("hazard_id", "text"), ("registration_code", "text"), ("found_on", "date"),
        ("level", "text"), ("description", "text"), ("status", "text"), ("deadline", "date"),
        ("closed_on", "date"), ("verified_by", "text"), ("evidence", "text"), *META,
    )),
    "checks": Table("checks", "check_id", (
        ("check_id", "text"), ("credit_code", "text"), ("checked_on", "date"),
        ("officer_id", "text"), ("result", "text"), *META,
    )),
    "parks": Table("parks", "park_id", (
        ("park_id", "text"), ("name", "text"), ("kind", "text"), ("source_crs", "text"),
        ("province_adcode", "text"), ("city_adcode", "text"), ("county_adcode", "text"),
        ("area_km2", "float"), *META,
    ), "multipolygon"),
    "venues": Table("venues", "venue_id", (
        ("venue_id", "text"), ("name", "text"), ("kind", "text"), ("daily_visitors", "int"),
        ("source_crs", "text"), ("province_adcode", "text"), ("city_adcode", "text"),
        ("county_adcode", "text"), ("area_km2", "float"), *META,
    ), "multipolygon"),
    "officers": Table("officers", "officer_id", (
        ("officer_id", "text"), ("name", "text"), ("county_adcode", "text"), ("phone", "text"),
        ("cell_count", "int"), *META,
    )),
}

# Cells owned by each officer (at the configured H3 resolution); replaced per officer.
OFFICER_CELLS = Table("officer_cells", "officer_id", (("officer_id", "text"), ("h3", "text")))

REJECTS = Table("rejects", "reject_id", (
    ("reject_id", "int"), ("batch_id", "text"), ("file", "text"), ("row", "int"),
    ("kind", "text"), ("field", "text"), ("code", "text"), ("reason_zh", "text"),
    ("reason_en", "text"), ("value", "text"), ("raw", "json"),
))

BATCHES = Table("batches", "batch_id", (
    ("batch_id", "text"), ("started_at", "timestamp"), ("finished_at", "timestamp"),
    ("files", "json"), ("report", "json"),
))

# What the store links by spatial join after each batch (point table -> polygon table).
LINKS = (("park_id", "parks"), ("venue_id", "venues"))

# The append-only audit trail of every change made through the service (who, when, what
# it was before and after). ``county_adcode`` and ``h3`` place the changed row for scopes.
AUDIT = Table("audit", "audit_id", (
    ("audit_id", "text"), ("at", "timestamp"), ("actor", "text"), ("action", "text"),
    ("entity", "text"), ("entity_id", "text"), ("before", "json"), ("after", "json"),
    ("note", "text"), ("county_adcode", "text"), ("h3", "text"),
))

# 双随机、一公开: each published random draw of units and inspectors, reproducible from its
# seed and the build it was drawn from.
DRAWS = Table("draws", "draw_id", (
    ("draw_id", "text"), ("created_at", "timestamp"), ("actor", "text"), ("region", "text"),
    ("seed", "text"), ("method", "text"), ("params", "json"), ("build_id", "text"),
    ("result", "json"), *META,
))

# Every stored table by name, the ingested ones and the bookkeeping tables.
ALL_TABLES: dict[str, Table] = {
    **TABLES, OFFICER_CELLS.name: OFFICER_CELLS, REJECTS.name: REJECTS, BATCHES.name: BATCHES,
    AUDIT.name: AUDIT, DRAWS.name: DRAWS,
}


# Derived layers (``riskmap build``): one table per layer or finding table of
# :mod:`layers.registry`, keyed by ``fid`` (the layer's key columns joined by ":"), replaced
# whole by each build, plus the record of the builds.
def _layer_table(spec: LayerSpec) -> Table:
    return Table(spec.table, "fid", (("fid", "text"), *spec.fields), spec.geometry)


LAYER_TABLES: dict[str, Table] = {lid: _layer_table(spec) for lid, spec in LAYER_SPECS.items()}

LAYER_BUILDS = Table("layer_builds", "build_id", (
    ("build_id", "text"), ("built_at", "timestamp"), ("as_of", "date"),
    ("rules_version", "text"), ("rules_hash", "text"), ("data_version", "text"),
    ("report", "json"),
))

# Users of the service; a token is stored only as its keyed hash (service/auth.py).
USERS = Table("users", "user_id", (
    ("user_id", "text"), ("name", "text"), ("role", "text"), ("scope", "text"),
    ("token_hash", "text"), ("created_at", "timestamp"), ("disabled", "bool"),
))

# Browser sessions (the login cookie holds a random session id, stored only as its keyed
# hash): when each began, was last used and ends at the latest; ``ended`` at logout.
SESSIONS = Table("sessions", "session_hash", (
    ("session_hash", "text"), ("user_id", "text"), ("created_at", "timestamp"),
    ("last_seen", "timestamp"), ("expires_at", "timestamp"), ("ended", "bool"),
))

# The kept history of builds (``riskmap report``): every build's region indicators, one row
# per (build, admin level, region), written with the layers in the same write and never
# replaced, so figures compare year on year. The numeric indicators are one JSON object:
# the regions layer gains fields as the product grows (建成率 …), and a JSON column keeps
# older builds readable without a migration per indicator (see service/store/history.py).
REGION_HISTORY = Table("region_history", "build_id", (
    ("build_id", "text"), ("built_at", "timestamp"), ("as_of", "date"),
    ("rules_hash", "text"), ("level", "text"), ("adcode", "text"), ("name", "text"),
    ("parent_adcode", "text"), ("indicators", "json"),
))
