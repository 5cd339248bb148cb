"""The SQL the PostGIS store runs, built once from the fixed table specs.

Identifiers come only from :data:`service.store.tables.ALL_TABLES` (checked by
:func:`ident` and double-quoted); values are always bound parameters.
"""

from __future__ import annotations

from service.store.postgis.models import GEOMETRY_COLUMN, Base
from service.store.tables import ALL_TABLES, LINKS, Table

STAGE_PREFIX = "stage_"
_NAMES = frozenset(
    {name for name in Base.metadata.tables}
    | {c.name for t in Base.metadata.tables.values() for c in t.columns}
    | {f"{STAGE_PREFIX}{name}" for name in ALL_TABLES}
)


def ident(name: str) -> str:
    """A quoted identifier, only for the names of our own tables and columns."""
    if name not in _NAMES:
        raise ValueError(f"not a table or column of the store: {name!r}")
    return f'"{name}"'


def column_list(names: list[str]) -> str:
    return ", ".join(ident(n) for n in names)


def stored_columns(spec: Table) -> list[str]:
    """Columns as stored in SQL: the spec's plus ``geom`` for geometry tables."""
    return [*spec.column_names, *([GEOMETRY_COLUMN] if spec.geometry else [])]


def stage_name(table: str) -> str:
    return f"{STAGE_PREFIX}{table}"


def create_stage_sql(table: str) -> str:
    """A temporary twin without indexes, dropped with the transaction (even on rollback)."""
    return (f"CREATE TEMPORARY TABLE {ident(stage_name(table))} "
            f"(LIKE {ident(table)}) ON COMMIT DROP")


def upsert_sql(table: str) -> str:
    """Merge the stage into ``table`` by key; a row whose row_hash is unchanged is not touched
    (the WHERE of DO UPDATE), so it returns nothing. ``xmax = 0`` marks a fresh insert."""
    spec = ALL_TABLES[table]
    columns = stored_columns(spec)
    cols = column_list(columns)
    assignments = ", ".join(f"{ident(c)} = EXCLUDED.{ident(c)}" for c in columns
                            if c != spec.key)
    return (
        f"WITH up AS ("
        f" INSERT INTO {ident(table)} AS t ({cols})"
        f" SELECT {cols} FROM {ident(stage_name(table))}"
        f" ON CONFLICT ({ident(spec.key)}) DO UPDATE SET {assignments}"
        f" WHERE t.row_hash IS DISTINCT FROM EXCLUDED.row_hash"
        f" RETURNING (t.xmax = 0) AS inserted)"
        f" SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)"
        f" FROM up"
    )


def relink_sql(table: str, column: str) -> str:
    """Set ``column`` (park_id or venue_id) of the point ``table`` to the smallest id of the
    polygons its point intersects (NULL when none).

    Binds ``everything`` (relink every row: the polygons changed) and ``batch_id`` (else
    only the rows this batch wrote). The LATERAL aggregate probes the polygons' GiST index
    once per point; ``min(... COLLATE "C")`` is the code-point order that the embedded
    store's pandas ``min`` uses, whatever the database collation. Rows whose link does not
    change are not rewritten.
    """
    polygons = dict(LINKS)[column]
    key = ALL_TABLES[table].key
    polygon_key = ALL_TABLES[polygons].key
    return (
        f"UPDATE {ident(table)} AS t SET {ident(column)} = l.id"
        f" FROM {ident(table)} AS s"
        f" CROSS JOIN LATERAL ("
        f"SELECT min(p.{ident(polygon_key)} COLLATE \"C\") AS id"
        f" FROM {ident(polygons)} AS p"
        f" WHERE ST_Intersects(p.{ident(GEOMETRY_COLUMN)}, s.{ident(GEOMETRY_COLUMN)})"
        f") AS l"
        f" WHERE t.{ident(key)} = s.{ident(key)}"
        f" AND (:everything OR s.batch_id = :batch_id)"
        f" AND t.{ident(column)} IS DISTINCT FROM l.id"
    )


def cell_counts_sql(table: str, column: str) -> str:
    c = ident(column)
    return (f"SELECT {c} AS h3, count(*) AS count FROM {ident(table)} WHERE {c} IS NOT NULL"
            f" GROUP BY {c} ORDER BY {c} COLLATE \"C\"")
