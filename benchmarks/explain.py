"""EXPLAIN the service's own statements on PostGIS databases of growing size.

    python -m benchmarks.explain --database riskmap_scale_1000000 \\
        --database riskmap_scale_5000000 [--runs 5] [--out var/bench/explain]
    python -m benchmarks.explain densify --source riskmap_scale_5000000 \\
        --target riskmap_scale_10000000 [--inputs]
    python -m benchmarks.explain partitions --source riskmap_scale_5000000 [--rows N]
    python -m benchmarks.explain precount --database riskmap_scale_1000000 [...]
    python -m benchmarks.explain citus-ddl [--database riskmap_scale_5000000]
    python -m benchmarks.explain report var/bench/explain/explain-<stamp>.json

For each database the representative requests below are made through the project's own
code (``service.tiles`` for tiles, ``PostGISStore.query_layer`` for an items page,
``service.worklist.worklist`` for worklists), with fresh caches, and every statement they
send to the large tables is captured with an SQLAlchemy ``before_cursor_execute`` event
(the SQL and its bound parameters, exactly as the service sends them; a whole scope read
as ``COPY (SELECT …) TO STDOUT``, its SELECT). Each captured
statement is then run again ``--runs`` times (after one warm-up: warm cache) for its median,
and once under ``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`` for its plan: the scan nodes
(sequential, index, bitmap, index-only) with the index each uses, the rows, the shared
buffers hit and read, the planning and execution times. The whole request is timed too
(median of ``--runs``, each with fresh caches: what the first viewer of a scope waits).

The requests (chosen per database from its data, the same way at every size):

- tiles of the equipment layer as the administrator (whole province) at z8 and z10 (H3
  cells aggregated from the whole scope), z12 and z14 over the densest and the sparsest
  res-8 cell (rows, at most 4,000, else cells); the risk-cells layer at z8 and z10; the
  equipment and the risk cells (nested from the city's per-cell sums) at z12/z14 as the
  regulator of the city holding the most equipment, and the equipment at z10 and z14 as
  the officer owning the most cells (in their cells);
- an items page (100 rows, with the count) of the equipment in a bbox (the dense z12 tile)
  with a filter (``level = 'red'``), as the city regulator and as the administrator;
- the worklist of the grid officer owning the most cells, and of the city regulator.

``densify`` makes a larger database by SQL from a built one (``CREATE DATABASE … TEMPLATE``,
then each layer table the requests read, and the live hazards and checks the worklist looks
up, inserted once more with new keys (``X`` + key) and points jittered by up to ±0.002°
(~200 m), admin codes and H3 cells kept): twice the rows in the same counties, not run
through ingest and build; the per-build H3 counts and risk sums are made again from the
doubled layer (a doubled piece keeps its source's risk cell).
The registry table ``equipment`` is emptied in the copy (no measured request reads it;
3.9 GB saved). With ``--inputs`` it doubles the input tables a
build reads instead (equipment, units, hazards, checks: new keys, the same places), for the
build at twice the size. Run it under the benchmark lock.

``partitions``: the single-node analogue of distributing by province (a LIST-partitioned
copy of ``layer_equipment`` in a scratch database, dropped after). ``precount``: the
whole-scope H3 counts from a per-build table of counts (a TEMP table) against the rows.
``citus-ddl``: the distributed and reference tables Citus would need, derived from the
models and the layer registry. ``report``: the markdown again from a run's JSON.
See docs/scaling.md.

Output: ``<out>/explain-<stamp>.json`` (every plan in full) and ``.md`` (the summary).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import (
    Column,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateTable

if not __package__:  # run as a file: the repository, not benchmarks/, first on sys.path
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import service.store.postgis.query as pg_query
import service.store.postgis.risk_sums as pg_risk_sums
import service.store.postgis.tiles as pg_tiles
from layers.registry import ALL
from service import tiles as service_tiles
from service.auth import Principal, Role
from service.caches import TileCache, Worklists
from service.mvt import Tile
from service.selection import scope_of
from service.store.postgis import SESSION_OPTIONS, PostGISStore
from service.store.postgis.layers import COUNTED_LAYERS, COUNTS_SUFFIX, fill_counts, sql_table
from service.store.postgis.query import layer_sql_table
from service.store.postgis.risk_sums import RISK_SUFFIX, fill_risk_sums
from service.store.query import Compare, Condition, LayerQuery
from service.store.tables import LAYER_TABLES
from service.tiles import plan_tile
from service.worklist import worklist

DEFAULT_BASE = "postgresql+psycopg://postgres@127.0.0.1:55432/riskmap_test"
OUT = Path("var/bench/explain")
AS_OF = date(2026, 11, 1)  # the demo's day: the worklists' "today"
LARGE_TABLES = frozenset({t.name for t in LAYER_TABLES.values()} | {
    "equipment", "units", "hazards", "checks", "officer_cells", "audit",
    *(LAYER_TABLES[lid].name + COUNTS_SUFFIX for lid in COUNTED_LAYERS),
    LAYER_TABLES["equipment"].name + RISK_SUFFIX})
_TABLE_REF = re.compile(r'\b(?:FROM|JOIN)\s+"?([a-z_]+)"?', re.IGNORECASE)
SCANS = ("Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Index Scan",
         "Bitmap Heap Scan")
# densify: the tables made twice as large, and the key columns given new values
DENSIFY_TABLES = ("layer_equipment", "layer_units", "layer_check_schedule", "layer_overdue",
                  "layer_hazards", "hazards", "checks")
# densify --inputs: the stored input tables a build reads, for the build at twice the size
DENSIFY_INPUTS = ("equipment", "units", "hazards", "checks")
KEY_COLUMNS = frozenset({"fid", "registration_code", "unit_credit_code", "credit_code",
                         "hazard_id", "check_id"})
JITTER = 0.002  # degrees either way


def database_url(name: str) -> str:
    base = os.environ.get("RISKMAP_TEST_DATABASE_URL", DEFAULT_BASE)
    return f"{base.rpartition('/')[0]}/{name}"


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


# ------------------------------------------------------------------ capturing statements

@dataclass
class Captured:
    statement: str
    parameters: object
    tables: tuple[str, ...]


@contextlib.contextmanager
def capturing(*engines: Engine) -> Iterator[list[Captured]]:
    """Every statement on a large table sent through ``engines`` while the block runs."""
    seen: list[Captured] = []

    def hook(conn, cursor, statement, parameters, context, executemany) -> None:
        tables = tuple(dict.fromkeys(
            t for t in _TABLE_REF.findall(statement) if t in LARGE_TABLES))
        if tables and not statement.lstrip().upper().startswith("EXPLAIN"):
            seen.append(Captured(statement, parameters, tables))

    def copied(conn, statement, schema):  # rows read as COPY (…) TO STDOUT
        compiled = statement.compile(dialect=conn.dialect,
                                     compile_kwargs={"render_postcompile": True})
        hook(conn, None, str(compiled), compiled.params, None, False)  # its SELECT
        return read_copied(conn, statement, schema)

    engines = tuple(dict.fromkeys(engines))
    for engine in engines:
        event.listen(engine, "before_cursor_execute", hook)
    read_copied = pg_query.copied_arrow
    readers = (pg_query, pg_tiles, pg_risk_sums)  # the modules that call it by name
    for module in readers:
        module.copied_arrow = copied
    try:
        yield seen
    finally:
        for module in readers:
            module.copied_arrow = read_copied
        for engine in engines:
            event.remove(engine, "before_cursor_execute", hook)


# ------------------------------------------------------------------ the requests

@dataclass
class Facts:
    """What the requests are chosen by, read from the database (not timed)."""

    dense: tuple[float, float, str, int]   # lon, lat, h3, rows in the cell
    sparse: tuple[float, float, str, int]
    city: tuple[str, int]                  # adcode, equipment rows
    officer: tuple[str, int]               # officer_id, cells
    officer_at: tuple[float, float]        # a piece of equipment in the officer's cells
    rows: dict[str, int] = field(default_factory=dict)


def read_facts(url: str) -> Facts:
    """The cells, city and officer the requests are made around, and the table sizes."""
    with psycopg.connect(_libpq(url)) as conn:
        cells = conn.execute(
            "SELECT h3, count(*) AS n FROM layer_equipment WHERE h3 IS NOT NULL "
            "AND geom IS NOT NULL GROUP BY h3 ORDER BY n DESC, h3").fetchall()
        picked = {}
        for name, (h3, n) in (("dense", cells[0]), ("sparse", cells[-1])):
            lon, lat = conn.execute(
                "SELECT ST_X(geom), ST_Y(geom) FROM layer_equipment WHERE h3 = %s "
                "AND geom IS NOT NULL ORDER BY fid LIMIT 1", (h3,)).fetchone()
            picked[name] = (float(lon), float(lat), h3, int(n))
        city = conn.execute(
            "SELECT city_adcode, count(*) AS n FROM layer_equipment WHERE city_adcode IS "
            "NOT NULL GROUP BY 1 ORDER BY n DESC, 1 LIMIT 1").fetchone()
        officer = conn.execute(
            "SELECT officer_id, count(*) AS n FROM officer_cells GROUP BY 1 "
            "ORDER BY n DESC, 1 LIMIT 1").fetchone()
        officer_at = conn.execute(
            "SELECT ST_X(geom), ST_Y(geom) FROM layer_equipment WHERE geom IS NOT NULL AND "
            "h3 = ANY(ARRAY(SELECT h3 FROM officer_cells WHERE officer_id = %s)) "
            "ORDER BY fid LIMIT 1", (officer[0],)).fetchone()
        rows = {t: int(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(t))).fetchone()[0]) for t in DENSIFY_TABLES}
    return Facts(picked["dense"], picked["sparse"], (city[0], int(city[1])),
                 (officer[0], int(officer[1])),
                 (float(officer_at[0]), float(officer_at[1])), rows)


def tile_at(lon: float, lat: float, z: int) -> Tile:
    """The web-Mercator tile at zoom ``z`` holding the point."""
    n = 2 ** z
    x = min(max(int((lon + 180.0) / 360.0 * n), 0), n - 1)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return Tile(z, x, min(max(y, 0), n - 1))


def principals(store: PostGISStore, facts: Facts) -> dict[str, Principal]:
    officer_id = facts.officer[0]
    cells = store.lookup("officer_cells", "officer_id", (officer_id,), ["h3"])["h3"]
    return {
        "admin": Principal("bench-admin", "admin", Role.ADMIN, None),
        "city": Principal("bench-city", "city", Role.REGULATOR, facts.city[0]),
        "officer": Principal("bench-officer", "officer", Role.GRID_OFFICER, officer_id,
                             tuple(sorted(cells.dropna().astype(str).unique()))),
    }


Request = Callable[[], object]
# a tile drawn from the store as service.tiles renders it, past the tile cache (and the
# seeded tiles, where that exists: ``draw``; ``_draw`` before it)
draw_tile = getattr(service_tiles, "draw", None) or service_tiles._draw


def requests(store: PostGISStore, facts: Facts) -> dict[str, Request]:
    """Name → a call that makes the request through the service's code, caches fresh."""
    who = principals(store, facts)
    build = store.layer_build()
    build_id = build.build_id if build else ""

    def tile(caller: str, layer: str, where: str, z: int) -> Request:
        lon, lat = {"dense": facts.dense[:2], "sparse": facts.sparse[:2],
                    "officer": facts.officer_at}[where]
        address = tile_at(lon, lat, z)

        def run() -> bytes:
            plan = plan_tile(who[caller], ALL[layer], store, address)
            return draw_tile(store, plan, address, build_id, TileCache())
        return run

    def items(caller: str) -> Request:
        bounds = tile_at(*facts.dense[:2], 12).lonlat_bounds()
        scope = scope_of(who[caller], ALL["equipment"])

        def run() -> object:
            return store.query_layer(LayerQuery(
                "equipment", scope, bounds, 100, 0, filter=Compare("level", "=", "red")))
        return run

    def worklist_of(caller: str) -> Request:
        return lambda: worklist(store, who[caller], AS_OF, Worklists())

    out: dict[str, Request] = {}
    for z in (8, 10):
        out[f"tile equipment z{z} admin"] = tile("admin", "equipment", "dense", z)
        out[f"tile risk-cells z{z} admin"] = tile("admin", "risk-cells", "dense", z)
    for z in (12, 14):
        for where in ("dense", "sparse"):
            out[f"tile equipment z{z} {where} admin"] = tile("admin", "equipment", where, z)
        out[f"tile equipment z{z} dense city"] = tile("city", "equipment", "dense", z)
        out[f"tile risk-cells z{z} dense city"] = tile("city", "risk-cells", "dense", z)
    for z in (10, 14):
        out[f"tile equipment z{z} officer"] = tile("officer", "equipment", "officer", z)
    out["items equipment bbox+level city"] = items("city")
    out["items equipment bbox+level admin"] = items("admin")
    out["worklist officer"] = worklist_of("officer")
    out["worklist city"] = worklist_of("city")
    return out


# ------------------------------------------------------------------ plans

def _nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def summarise(explained: dict) -> dict:
    """The facts of one EXPLAIN (ANALYZE, BUFFERS) that tell whether it grows with N."""
    top = explained["Plan"]
    scans = []
    for node in _nodes(top):
        if node["Node Type"] in SCANS:
            scans.append({
                "node": node["Node Type"], "relation": node.get("Relation Name"),
                "index": node.get("Index Name"),
                "rows": node.get("Actual Rows", 0) * node.get("Actual Loops", 1),
                "removed": node.get("Rows Removed by Filter", 0)
                + node.get("Rows Removed by Index Recheck", 0)})
    hit = top.get("Shared Hit Blocks", 0)
    read = top.get("Shared Read Blocks", 0)
    return {"top": top["Node Type"], "rows": top.get("Actual Rows"), "scans": scans,
            "seq_scans": sorted({s["relation"] for s in scans if s["node"] == "Seq Scan"}),
            "indexes": sorted({s["index"] for s in scans if s["index"]}),
            "shared_hit": hit, "shared_read": read,
            "planning_ms": round(explained.get("Planning Time", 0.0), 2),
            "execution_ms": round(explained.get("Execution Time", 0.0), 2)}


SLOW_MS = 1000.0  # a call slower than this is timed at most SLOW_RUNS times
SLOW_RUNS = 3


def _median_ms(run: Callable[[], object], runs: int) -> float:
    """The median of ``runs`` timed calls (``SLOW_RUNS`` if the first takes over a second:
    the whole-scope counts at 10M take seconds each)."""
    times: list[float] = []
    while len(times) < (runs if not times or times[0] < SLOW_MS else min(runs, SLOW_RUNS)):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 2)


def explain_statement(engine: Engine, captured: Captured, runs: int) -> dict:
    """The statement's median (warm: one run first) and its EXPLAIN ANALYZE summary."""
    with engine.connect() as conn:
        def run() -> None:
            conn.exec_driver_sql(captured.statement, captured.parameters).fetchall()
            conn.rollback()
        run()
        median = _median_ms(run, runs)
        raw = conn.exec_driver_sql(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + captured.statement,
            captured.parameters).scalar_one()
        conn.rollback()
    explained = (raw if isinstance(raw, list) else json.loads(raw))[0]
    return {"median_ms": median, **summarise(explained), "plan": explained}


_PROVINCE_TEST = re.compile(r'province_adcode"?\s*(?:=|<>|IN\b|LIKE\b|BETWEEN\b)',
                            re.IGNORECASE)


def province_condition(statement: str) -> bool:
    """Whether ``statement`` compares province_adcode (a condition, not a selected column)."""
    return bool(_PROVINCE_TEST.search(statement))


def _has_province(table: str) -> bool:
    from service.store.postgis.models import Base

    if table in Base.metadata.tables:
        return "province_adcode" in Base.metadata.tables[table].c
    return any(t.name == table and "province_adcode" in t.column_names
               for t in LAYER_TABLES.values())


def _flat_sql(statement: str) -> str:
    return " ".join(statement.split())


def _params_repr(parameters: object, limit: int = 300) -> str:
    def short(v: object) -> object:
        s = repr(v)
        return s if len(s) <= 80 else f"{s[:60]}… ({len(s)} chars)"
    if isinstance(parameters, dict):
        text_ = ", ".join(f"{k}={short(v)}" for k, v in parameters.items())
    else:
        text_ = repr(parameters)
    return text_[:limit]


def _loadavg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


def run_database(name: str, runs: int, only: set[str] | None = None) -> dict:
    """Every request on database ``name``: timings, statements, plans."""
    url = database_url(name)
    started = {"loadavg": _loadavg(),
               "at": datetime.now(UTC).isoformat(timespec="seconds")}
    facts = read_facts(url)
    store = PostGISStore(url, migrate_schema=False)
    engine = create_engine(url, poolclass=NullPool, connect_args={"options": SESSION_OPTIONS})
    out: dict = {"database": name, "facts": facts.__dict__, "started": started,
                 "requests": {}}
    try:
        with engine.connect() as conn:
            out["size_bytes"] = int(conn.execute(text(
                "SELECT pg_database_size(current_database())")).scalar_one())
        for label, call in requests(store, facts).items():
            if only and label not in only:
                continue
            call()  # warm: the tables' pages, and the store's per-build checks
            with capturing(store.engine, store._reads) as seen:
                call()
            statements = []
            for i, captured in enumerate(seen):
                statements.append({
                    "n": i, "tables": list(captured.tables),
                    # could the statement go to one province's shard as the service words it
                    "province_condition": province_condition(captured.statement),
                    "tables_have_province": all(_has_province(t) for t in captured.tables),
                    "sql": _flat_sql(captured.statement),
                    "params": _params_repr(captured.parameters),
                    **explain_statement(engine, captured, runs)})
            out["requests"][label] = {"median_ms": _median_ms(call, runs),
                                      "statements": statements}
            print(f"{name} {label}: {out['requests'][label]['median_ms']} ms, "
                  f"{len(statements)} statements", flush=True)
    finally:
        store.close()
        engine.dispose()
    out["finished"] = {"loadavg": _loadavg(),
                       "at": datetime.now(UTC).isoformat(timespec="seconds")}
    return out


# ------------------------------------------------------------------ report

def _scan_text(s: dict) -> str:
    what = {"Seq Scan": "Seq", "Index Scan": "Idx", "Index Only Scan": "IdxOnly",
            "Bitmap Index Scan": "BmpIdx", "Bitmap Heap Scan": "BmpHeap"}[s["node"]]
    on = s["index"] or s["relation"] or ""
    return f"{what} {on} ({s['rows']:,})"


def markdown(results: list[dict], runs: int) -> str:
    names = [r["database"] for r in results]
    lines = [f"# EXPLAIN of the service's statements ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
             "", f"Medians of {runs} runs, warm cache, fresh service caches per request "
             "(a request's whole time, Python included); statements re-run alone.", ""]
    lines += ["| database | layer_equipment rows | size | load avg start → end |",
              "|---|---:|---:|---|"]
    for r in results:
        lines.append(f"| {r['database']} | {r['facts']['rows']['layer_equipment']:,} | "
                     f"{r['size_bytes'] / 2**30:.1f} GiB | {' '.join(r['started']['loadavg'])}"
                     f" → {' '.join(r['finished']['loadavg'])} |")
    lines += ["", "## Requests (median ms)", "",
              "| request | " + " | ".join(names) + " |",
              "|---|" + "---:|" * len(names)]
    labels = list(dict.fromkeys(k for r in results for k in r["requests"]))
    for label in labels:
        cells = [str(r["requests"].get(label, {}).get("median_ms", "–")) for r in results]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "## Statements", "",
              "Per statement: median ms / execution ms in EXPLAIN ANALYZE / rows returned / "
              "shared buffers (hit+read); then the scans of the plan at the largest size "
              "(node, index or table, rows).", ""]
    for label in labels:
        counts = [len(r["requests"].get(label, {}).get("statements", [])) for r in results]
        lines += [f"### {label}", ""]
        lines += ["| # | tables | province_adcode: in WHERE / column | " + " | ".join(names)
                  + " | scans (largest) |", "|---|---|---|" + "---|" * len(names) + "---|"]
        for i in range(max(counts, default=0)):
            row = []
            last = None
            tables = province = ""
            for r in results:
                st = r["requests"].get(label, {}).get("statements", [])
                if i < len(st):
                    s = st[i]
                    tables = ", ".join(s["tables"])
                    province = (f"{'yes' if province_condition(s['sql']) else 'no'} / "
                                f"{'yes' if s['tables_have_province'] else 'no'}")
                    row.append(f"{s['median_ms']} / {s['execution_ms']} / {s['rows']:,} / "
                               f"{s['shared_hit'] + s['shared_read']:,}")
                    last = s
                else:
                    row.append("–")
            scans = "; ".join(_scan_text(x) for x in last["scans"]) if last else ""
            lines.append(f"| {i} | {tables} | {province} | " + " | ".join(row)
                         + f" | {scans} |")
        lines.append("")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ densify

def densify(source: str, target: str, inputs: bool = False) -> dict:
    """``target``: a copy of ``source`` with the request tables' rows twice over (see the
    module docstring), or with ``inputs`` the input tables a build reads
    (:data:`DENSIFY_INPUTS`: new keys, the same places, no jitter: a point's H3 cells stay
    its own). Refuses to replace an existing ``target``."""
    admin_url = _libpq(database_url("postgres"))
    started = time.perf_counter()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (target,)).fetchone():
            raise SystemExit(f"{target} exists already: drop it first")
        for attempt in range(30):  # the template may have no other session
            try:
                conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(target), sql.Identifier(source)))
                break
            except psycopg.errors.ObjectInUse:
                if attempt == 29:
                    raise
                time.sleep(10)
    steps = {"copy_s": round(time.perf_counter() - started, 1)}
    with psycopg.connect(_libpq(database_url(target)), autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        if not inputs:
            conn.execute("TRUNCATE equipment")
        conn.execute("SELECT setseed(0.5)")
        for table in DENSIFY_INPUTS if inputs else DENSIFY_TABLES:
            t = time.perf_counter()
            columns = [r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                "'public' AND table_name = %s ORDER BY ordinal_position", (table,))]
            indexes = conn.execute(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = "
                "'public' AND i.tablename = %s AND NOT EXISTS (SELECT FROM pg_constraint c "
                "WHERE c.conname = i.indexname)", (table,)).fetchall()
            for index, _ in indexes:
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(index)))
            picked = []
            for c in columns:
                col = sql.Identifier(c)
                if c in KEY_COLUMNS:
                    picked.append(sql.SQL("'X' || {}").format(col))
                elif c == "geom" and not inputs:
                    picked.append(sql.SQL(
                        "ST_Translate({}, (random() - 0.5) * {j}, (random() - 0.5) * {j})"
                    ).format(col, j=sql.Literal(2 * JITTER)))
                else:
                    picked.append(col)
            conn.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.SQL(", ").join(picked), sql.Identifier(table)))
            for _, definition in indexes:  # the definitions as the catalogue gave them
                conn.execute(definition)
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
            steps[f"{table}_s"] = round(time.perf_counter() - t, 1)
            print(f"densified {table}: {steps[f'{table}_s']} s", flush=True)
        if not inputs:  # the per-build counts, as a build makes them from its layer
            for lid in COUNTED_LAYERS:
                t = time.perf_counter()
                name = LAYER_TABLES[lid].name
                fill_counts(conn.cursor(), name, name + COUNTS_SUFFIX)
                steps[f"{name}{COUNTS_SUFFIX}_s"] = round(time.perf_counter() - t, 1)
            t = time.perf_counter()  # and its risk sums (their risk_cell is the source
            name = LAYER_TABLES["equipment"].name  # piece's, the point jittered from it)
            fill_risk_sums(conn.cursor(), name, name + RISK_SUFFIX)
            steps[f"{name}{RISK_SUFFIX}_s"] = round(time.perf_counter() - t, 1)
        conn.execute("VACUUM equipment")
        if inputs:  # caches keyed by the data version must not take it for the source
            conn.execute("UPDATE meta SET value = value || '-x2' WHERE key = 'data_version'")
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return {"source": source, "target": target, "steps": steps, "size_bytes": int(size)}


# ------------------------------------------------------------------ partitions

PARTITION_DB = "riskmap_explain_partitions"
OTHER_PROVINCE = "610000"  # 陕西: the second province riskmap serves (its layers translated)
SHIFT = (-5.0, 0.4)        # degrees: Henan's sample moved into Shaanxi's longitudes


def _partitioned_table(definition: str) -> Table:
    """``layer_equipment`` as the service declares it, partitioned by LIST of province_adcode:
    its key must then include province_adcode (PostgreSQL refuses a key without it)."""
    plain = layer_sql_table("equipment")
    return Table("layer_equipment", MetaData(), *(c._copy() for c in plain.columns
                                                  if not c.primary_key),
                 Column("fid", Text(collation="C"), nullable=False),
                 PrimaryKeyConstraint("province_adcode", "fid"),
                 postgresql_partition_by=definition)


def partitions(source: str, rows: int, keep: bool) -> dict:
    """The single-node analogue of distributing by province: ``layer_equipment`` as a LIST
    partitioned table (410000, 610000, default) in a scratch database, filled with ``rows``
    rows of ``source`` and the same rows moved into a second province; the service's own
    tile and items statements (``tiles.mvt``, ``query.run_query``) EXPLAINed with a city
    regulator's scope as the service words it (a county_adcode prefix) and with a
    ``province_adcode`` condition added, and the key error a plain key gets."""
    from sqlalchemy.exc import DBAPIError

    from service.mvt import BUFFER, EXTENT
    from service.store.postgis import tiles as sql_tiles
    from service.store.postgis.layers import create_indexes
    from service.store.postgis.query import run_query
    from service.tiles import TILE_FIELDS

    admin_url = _libpq(database_url("postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(PARTITION_DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PARTITION_DB)))
    url = database_url(PARTITION_DB)
    out: dict = {"source": source, "rows_per_province": rows, "cases": {}}
    engine = create_engine(url, poolclass=NullPool, connect_args={"options": SESSION_OPTIONS})
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        spec = LAYER_TABLES["equipment"]
        try:  # the service's own key (fid) on a partitioned table
            with engine.begin() as conn:
                plain = sql_table(spec, "layer_equipment")
                plain.kwargs["postgresql_partition_by"] = "LIST (province_adcode)"
                conn.execute(CreateTable(plain))
        except DBAPIError as exc:
            out["plain_key_error"] = str(exc.orig).strip().splitlines()[0]
        table = _partitioned_table("LIST (province_adcode)")
        with engine.begin() as conn:
            conn.execute(CreateTable(table))
            for name, values in (("410000", "IN ('410000')"),
                                 (OTHER_PROVINCE, f"IN ('{OTHER_PROVINCE}')")):
                conn.execute(text(f"CREATE TABLE layer_equipment_{name} PARTITION OF "
                                  f"layer_equipment FOR VALUES {values}"))
            conn.execute(text("CREATE TABLE layer_equipment_other PARTITION OF "
                              "layer_equipment DEFAULT"))
        columns = [c.name for c in table.columns]
        listed = sql.SQL(", ").join(map(sql.Identifier, columns))
        with psycopg.connect(_libpq(database_url(source))) as src, \
                psycopg.connect(_libpq(url)) as dst:
            with src.cursor().copy(sql.SQL(
                    "COPY (SELECT {} FROM layer_equipment ORDER BY fid LIMIT {}) TO STDOUT "
                    "(FORMAT BINARY)").format(listed, sql.Literal(rows))) as reading, \
                    dst.cursor().copy(sql.SQL("COPY layer_equipment ({}) FROM STDIN "
                                              "(FORMAT BINARY)").format(listed)) as writing:
                for block in reading:
                    writing.write(block)
            moved = [sql.SQL("'S' || fid") if c == "fid" else
                     sql.SQL("{} || substr({}, 3)").format(
                         sql.Literal(OTHER_PROVINCE[:2]), sql.Identifier(c))
                     if c in ("province_adcode", "city_adcode", "county_adcode") else
                     sql.SQL("ST_Translate(geom, {}, {})").format(*map(sql.Literal, SHIFT))
                     if c == "geom" else sql.Identifier(c) for c in columns]
            dst.execute(sql.SQL("INSERT INTO layer_equipment ({}) SELECT {} FROM "
                                "layer_equipment").format(listed, sql.SQL(", ").join(moved)))
            dst.commit()
            with engine.begin() as conn:  # the indexes a build gives the layer
                create_indexes(conn, spec, "layer_equipment")
                conn.execute(text("ANALYZE layer_equipment"))
            out["partition_rows"] = dict(dst.execute(
                "SELECT tableoid::regclass::text, count(*) FROM layer_equipment GROUP BY 1"
            ).fetchall())
            lon, lat, city = dst.execute(
                "SELECT ST_X(geom), ST_Y(geom), city_adcode FROM layer_equipment WHERE "
                "province_adcode = '410000' AND h3 = (SELECT h3 FROM layer_equipment GROUP BY "
                "h3 ORDER BY count(*) DESC, h3 LIMIT 1) LIMIT 1").fetchone()
        city_scope = (Condition("county_adcode", "prefix", (city[:4],)),)
        province = (Condition("province_adcode", "eq", ("410000",)),)
        address = tile_at(lon, lat, 14)
        bounds = tile_at(lon, lat, 12).lonlat_bounds()
        fields = tuple((n, k) for n, k in spec.columns if n in TILE_FIELDS["equipment"])
        cases = {
            "tile z14, city scope (county prefix)": city_scope,
            "tile z14, city scope + province_adcode": (*city_scope, *province),
            "tile z14, administrator (no scope)": (),
            "items, city scope (county prefix)": city_scope,
            "items, city scope + province_adcode": (*city_scope, *province),
        }
        for label, where in cases.items():
            with capturing(engine) as seen, engine.connect() as conn:
                if label.startswith("tile"):
                    sql_tiles.mvt(conn, "equipment", where, address.z, address.x, address.y,
                                  extent=EXTENT, buffer=BUFFER, cap=4000, cell_ids=False,
                                  fields=fields)
                else:
                    run_query(conn, LayerQuery("equipment", where, bounds, 100, 0,
                                               filter=Compare("level", "=", "red")))
                conn.rollback()
            out["cases"][label] = []
            for captured in seen:
                got = explain_statement(engine, captured, 3)
                got.pop("plan")
                got["partitions"] = sorted({s["relation"] for s in got["scans"]
                                            if s["relation"]})
                out["cases"][label].append({"sql": _flat_sql(captured.statement), **got})
            print(label, [s["partitions"] for s in out["cases"][label]], flush=True)
    finally:
        engine.dispose()
        if not keep:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(PARTITION_DB)))
    return out


# ------------------------------------------------------------------ Citus DDL

LARGE_ROWS = 10_000  # with --database: a table at least this big is "large"


def citus_plan(rows: dict[str, int] | None = None) -> dict[str, list[str]]:
    """The tables of the store (models.py) and of the layers (layers/registry.py, through
    service.store.tables) sorted for Citus: ``distributed`` by province_adcode (every table
    with the column, but those keyed by region (an ``adcode`` column: one row per region)
    and the polygons points are joined with (parks, venues: relink_sql)), ``reference``
    (the rest), and among these ``large_without_province``: tables of ``rows`` or more
    rows (given a database's counts) that have no province column to distribute by."""
    from service.store.postgis.models import Base

    tables: dict[str, tuple[set[str], str | None]] = {
        name: ({c.name for c in t.columns},
               next((str(c.type.geometry_type).lower() for c in t.columns
                     if c.name == "geom"), None))
        for name, t in Base.metadata.tables.items()}
    tables.update({spec.name: (set(spec.column_names), spec.geometry)
                   for spec in LAYER_TABLES.values()})
    out: dict[str, list[str]] = {"distributed": [], "reference": [],
                                 "large_without_province": []}
    for name, (columns, geometry) in sorted(tables.items()):
        polygon = geometry is not None and "polygon" in geometry
        if "province_adcode" in columns and "adcode" not in columns and not polygon:
            out["distributed"].append(name)
            continue
        out["reference"].append(name)
        if rows is not None and rows.get(name, 0) >= LARGE_ROWS:
            out["large_without_province"].append(name)
    return out


def citus_ddl(rows: dict[str, int] | None = None) -> str:
    """The Citus calls :func:`citus_plan` implies, as SQL to run on the coordinator after
    the migrations (the layer tables are made by every build: their call belongs in
    ``layers.fill_next``, right after CREATE TABLE)."""
    from service.store.postgis.models import Base

    plan = citus_plan(rows)
    layer_names = {spec.name for spec in LAYER_TABLES.values()}
    lines = ["-- derived by `python -m benchmarks.explain citus-ddl` from models.py and "
             "layers/registry.py", "-- distributed by province_adcode, one colocation "
             "group; a key must contain the distribution column"]
    first = None
    for name in plan["distributed"]:
        table = Base.metadata.tables.get(name)
        key = ([c.name for c in table.primary_key.columns] if table is not None
               else ["fid"])
        if "province_adcode" not in key:
            lines.append(f"ALTER TABLE {name} DROP CONSTRAINT {name}_pkey, "
                         f"ADD PRIMARY KEY (province_adcode, {', '.join(key)});")
        colocate = "" if first is None else f", colocate_with => '{first}'"
        where = "  -- per build, in layers.fill_next" if name in layer_names else ""
        lines.append(f"SELECT create_distributed_table('{name}', 'province_adcode'"
                     f"{colocate});{where}")
        first = first or name
    lines.append("-- reference tables: a copy on every node (small, or joined with the "
                 "distributed ones)")
    for name in plan["reference"]:
        flag = ("  -- large here, no province_adcode: add one to distribute it"
                if name in plan["large_without_province"] else "")
        lines.append(f"SELECT create_reference_table('{name}');{flag}")
    return "\n".join(lines) + "\n"


def table_rows(name: str) -> dict[str, int]:
    """The planner's row estimates of a database's tables (after ANALYZE: close enough)."""
    with psycopg.connect(_libpq(database_url(name))) as conn:
        return {r[0]: max(int(r[1]), 0) for r in conn.execute(
            "SELECT c.relname, c.reltuples FROM pg_class c JOIN pg_namespace n ON "
            "n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'")}


# ------------------------------------------------------------------ pre-counted cells

def precount(name: str, runs: int) -> dict:
    """What the whole-scope H3 counts would cost from a per-build table of counts by cell,
    county and level instead of from the rows: made here as a TEMP table (gone with the
    session; the database is not changed), then the service's own ``cell_counts`` shape
    (``tiles.h3_parent``, the scope's conditions through ``query.sql_condition``) run on
    it for the administrator and the city regulator, against the same counts from the
    rows (``tiles.cell_counts``)."""
    from sqlalchemy import BigInteger, func, select

    from service.store.postgis import tiles as sql_tiles
    from service.store.postgis.query import sql_condition
    from service.tiles import level_counts

    url = database_url(name)
    facts = read_facts(url)
    levels = tuple(v for v, _ in level_counts(ALL["equipment"]))
    engine = create_engine(url, poolclass=NullPool, connect_args={"options": SESSION_OPTIONS})
    summary = Table("cell_level_counts", MetaData(), Column("h3", Text),
                    Column("county_adcode", Text), Column("level", Text),
                    Column("n", BigInteger), prefixes=["TEMPORARY"])
    scopes = {"admin": (), "city": (Condition("county_adcode", "prefix",
                                              (facts.city[0][:4],)),)}
    out: dict = {"database": name, "loadavg": _loadavg(), "scopes": {}}
    with engine.connect() as conn:
        start = time.perf_counter()
        conn.exec_driver_sql(
            "CREATE TEMPORARY TABLE cell_level_counts AS SELECT h3, county_adcode, level, "
            "count(*) AS n FROM layer_equipment WHERE h3 IS NOT NULL AND geom IS NOT NULL "
            "GROUP BY 1, 2, 3")
        conn.exec_driver_sql("CREATE INDEX ON cell_level_counts (county_adcode)")
        conn.exec_driver_sql("ANALYZE cell_level_counts")
        out["make_ms"] = round((time.perf_counter() - start) * 1000, 1)
        out["summary_rows"] = conn.exec_driver_sql(
            "SELECT count(*) FROM cell_level_counts").scalar_one()
        for who, where in scopes.items():
            cell = sql_tiles.h3_parent(summary.c.h3, 8).label("cell")
            statement = select(cell, func.sum(summary.c.n), *(
                func.sum(summary.c.n).filter(summary.c.level == v) for v in levels)).where(
                *(sql_condition(summary, c) for c in where)).group_by(cell)
            from_summary = _median_ms(lambda st=statement: conn.execute(st).all(), runs)
            summed = sorted(tuple(int(v or 0) for v in r)
                            for r in conn.execute(statement).all())
            from_rows = _median_ms(lambda w=where: sql_tiles.cell_counts(
                conn, "equipment", w, 8, None, levels), runs)
            ids, counts = sql_tiles.cell_counts(conn, "equipment", where, 8, None, levels)
            rows = sorted((int(c), *map(int, n)) for c, n in zip(
                ids.astype("int64"), counts, strict=True))
            cells = len(summed)
            out["scopes"][who] = {"cells": cells, "from_rows_ms": from_rows,
                                  "from_summary_ms": from_summary, "same": summed == rows}
            print(f"{name} {who}: {cells} cells, rows {from_rows} ms, "
                  f"summary {from_summary} ms", flush=True)
        conn.rollback()
    engine.dispose()
    out["loadavg_end"] = _loadavg()
    return out


# ------------------------------------------------------------------ command line

def _write_result(out: Path, name: str, data: object) -> None:
    """A subcommand's result as ``out/<name>-<stamp>.json``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(data, indent=1, default=str))
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["report"]:  # the markdown again, from a run's JSON
        data = json.loads(Path(argv[1]).read_text())
        Path(argv[1]).with_suffix(".md").write_text(markdown(data["results"], data["runs"]))
        return 0
    if argv[:1] == ["precount"]:
        parser = argparse.ArgumentParser(prog="python -m benchmarks.explain precount")
        parser.add_argument("--database", action="append", required=True)
        parser.add_argument("--runs", type=int, default=5)
        parser.add_argument("--out", type=Path, default=OUT)
        args = parser.parse_args(argv[1:])
        _write_result(args.out, "precount", [precount(name, args.runs)
                                              for name in args.database])
        return 0
    if argv[:1] == ["citus-ddl"]:
        parser = argparse.ArgumentParser(prog="python -m benchmarks.explain citus-ddl")
        parser.add_argument("--database", help="a built database: flags large tables")
        args = parser.parse_args(argv[1:])
        print(citus_ddl(table_rows(args.database) if args.database else None), end="")
        return 0
    if argv[:1] == ["partitions"]:
        parser = argparse.ArgumentParser(prog="python -m benchmarks.explain partitions")
        parser.add_argument("--source", required=True, help="a built database to sample")
        parser.add_argument("--rows", type=int, default=200_000, help="rows per province")
        parser.add_argument("--keep", action="store_true", help="keep the scratch database")
        parser.add_argument("--out", type=Path, default=OUT)
        args = parser.parse_args(argv[1:])
        _write_result(args.out, "partitions", partitions(args.source, args.rows, args.keep))
        return 0
    if argv[:1] == ["densify"]:
        parser = argparse.ArgumentParser(prog="python -m benchmarks.explain densify")
        parser.add_argument("--source", required=True)
        parser.add_argument("--target", required=True)
        parser.add_argument("--inputs", action="store_true",
                            help="the input tables a build reads, not the layers")
        args = parser.parse_args(argv[1:])
        print(json.dumps(densify(args.source, args.target, args.inputs), indent=1))
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.explain",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", action="append", required=True,
                        help="a built riskmap database on the test server (repeatable)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per median")
    parser.add_argument("--request", action="append", help="only these requests")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    results = []
    for name in args.database:
        try:
            results.append(run_database(name, args.runs, set(args.request or ()) or None))
        except Exception as exc:  # one database failing leaves the others' figures
            if len(args.database) == 1:
                raise
            print(f"{name} failed: {exc!r}", file=sys.stderr, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"explain-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    stem.with_suffix(".json").write_text(json.dumps(
        {"runs": args.runs, "results": results}, indent=1, default=str))
    stem.with_suffix(".md").write_text(markdown(results, args.runs))
    print(f"wrote {stem}.json and {stem}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
