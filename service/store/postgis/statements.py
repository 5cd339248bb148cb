"""The SQL the PostGIS store runs, built from the fixed table specs.

Identifiers come only from :data:`service.store.tables.ALL_TABLES` (checked by
:func:`ident` and double-quoted); values are always bound parameters.
"""

from __future__ import annotations

from service.store.postgis.models import GEOMETRY_COLUMN, Base
from service.store.tables import ALL_TABLES, LAYER_TABLES, LINKS, Table

STAGE_PREFIX = "stage_"
EXPECT_PREFIX = "expect_"
NEXT_SUFFIX = "__next"  # a layer table being built, swapped in at the end of the build
_NAMES = frozenset(
    {name for name in Base.metadata.tables}
    | {c.name for t in Base.metadata.tables.values() for c in t.columns}
    | {f"{STAGE_PREFIX}{name}" for name in ALL_TABLES}
    | {f"{EXPECT_PREFIX}{name}" for name in ALL_TABLES}
    | {t.name for t in LAYER_TABLES.values()}
    | {f"{t.name}{NEXT_SUFFIX}" for t in LAYER_TABLES.values()}
    | {c for t in LAYER_TABLES.values() for c in t.column_names}
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
    return (f"CREATE TEMPORARY TABLE {ident(stage_name(table))} (LIKE {ident(table)})"
            f" ON COMMIT DROP")


def expect_name(table: str) -> str:
    return f"{EXPECT_PREFIX}{table}"


def expect_spec(table: str) -> Table:
    """The (key, row_hash) pairs a batch expects to find in ``table``."""
    spec = ALL_TABLES[table]
    return Table(expect_name(table), spec.key, ((spec.key, "text"), ("row_hash", "int")))


def expect_table_sql(table: str) -> str:
    key = ALL_TABLES[table].key
    return (f"CREATE TEMPORARY TABLE {ident(expect_name(table))} ({ident(key)} text COLLATE "
            f"\"C\", row_hash bigint) ON COMMIT DROP")


def unmet_expectations_sql(table: str) -> str:
    """How many expected rows differ now (a null expected hash: the key must be absent)."""
    key = ident(ALL_TABLES[table].key)
    return (f"SELECT count(*) FROM {ident(expect_name(table))} AS e"
            f" LEFT JOIN {ident(table)} AS t ON t.{key} = e.{key}"
            f" WHERE t.row_hash IS DISTINCT FROM e.row_hash")


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
    polygons its point intersects, NULL when none.

    Binds ``everything`` (relink every row: the polygons changed) and ``batch_id`` (else
    only the rows this batch wrote). The spatial join is driven by the polygons: a hundred
    parks probe the points' GiST index a hundred times, where a LATERAL per point would probe
    the parks' index a million times (8-15 s per link at 1M points). Only rows that gain,
    change or lose a link are candidates (``hit`` FULL JOIN the rows linked now), and only
    those whose link differs are rewritten. ``min(… COLLATE "C")`` is the code-point order
    that the embedded store's pandas ``min`` uses, whatever the column's collation.
    """
    polygons = dict(LINKS)[column]
    key, col, geom = ident(ALL_TABLES[table].key), ident(column), ident(GEOMETRY_COLUMN)
    points, scope = ident(table), "(:everything OR s.batch_id = :batch_id)"
    return (
        f"WITH hit AS ("
        f"SELECT s.{key} AS key, min(p.{ident(ALL_TABLES[polygons].key)} COLLATE \"C\") AS id"
        f" FROM {ident(polygons)} AS p JOIN {points} AS s ON ST_Intersects(p.{geom}, s.{geom})"
        f" WHERE {scope} GROUP BY s.{key}"
        f"), linked AS ("
        f"SELECT s.{key} AS key FROM {points} AS s WHERE s.{col} IS NOT NULL AND {scope}"
        f"), wanted AS ("
        f"SELECT coalesce(hit.key, linked.key) AS key, hit.id"
        f" FROM hit FULL JOIN linked ON linked.key = hit.key"
        f") UPDATE {points} AS t SET {col} = wanted.id FROM wanted"
        f" WHERE t.{key} = wanted.key AND t.{col} IS DISTINCT FROM wanted.id"
    )


def cell_counts_sql(table: str, column: str) -> str:
    c = ident(column)
    return (f"SELECT {c} AS h3, count(*) AS count FROM {ident(table)} WHERE {c} IS NOT NULL"
            f" GROUP BY {c} ORDER BY {c} COLLATE \"C\"")
