"""Filtered item queries at 1M equipment: riskmap's /ogc against tipg on the same database.

    python -m benchmarks.ogc_filter                      # PostGIS, riskmap and tipg
    python -m benchmarks.ogc_filter --store embedded     # riskmap's embedded store too

Each CQL2-text filter below is asked of ``/ogc/collections/equipment/items`` (riskmap, as an
administrator and as a county regulator, whose scope is ANDed in) and of tipg's
``/collections/public.layer_equipment/items`` (no scope: it has none), with ``limit=100``,
from one client, ``--requests`` times each after ``--warmup`` (the same URL: the database's
own caches are warm, riskmap has no cache of item pages). Both servers answer with
GeoJSON and ``numberMatched``. tipg (developmentseed) is not a project dependency: it runs
from its own virtual environment, ``var/bench/tipg-venv``, made on first use (``pip install
tipg``), so its pins never touch the project's. The 1M PostGIS store is the one
benchmarks/serve.py uses.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx

if not __package__:  # run as a file: the repository, not benchmarks/, first on sys.path
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks.ingest import BENCH
from benchmarks.serve import (
    N,
    _libpq,
    add_user,
    ensure_built,
    free_port,
    measure,
    postgis_store,
    server,
)
from service.store import open_store

LIMIT = 100
TIPG = ("tipg==1.6.1", "uvicorn")  # tipg's server is not among its dependencies
# (name, CQL2 text): equality on an indexed code, a combination, a box, a date range, a
# LIKE that no index serves; {geom} is the geometry's queryable name (riskmap publishes
# "geometry", tipg the table's column "geom")
FILTERS = (
    ("level = 'red'", "level = 'red'"),
    ("level IN + category", "level IN ('red','orange') AND top_category = '3000'"),
    # a box as a polygon: tipg 1.6 gives BBOX(...) no SRID, and PostGIS refuses the mix
    ("S_INTERSECTS box", "S_INTERSECTS({geom}, POLYGON((113.55 34.70, 113.75 34.70, "
                         "113.75 34.85, 113.55 34.85, 113.55 34.70)))"),
    ("overdue AND due <", "overdue = true AND next_inspection_due < DATE('2026-06-01')"),
    ("unit_name LIKE", "unit_name LIKE '%机械%'"),
)


def busiest_county(url: str) -> str:
    with open_store(url) as store:
        eq = store.read_layer("equipment", columns=["county_adcode"])
    return str(eq["county_adcode"].value_counts().index[0])


def _urls(base: str, path: str, cql: str, n: int, geom: str = "geometry") -> list[str]:
    # a distinct offset-free URL each time would defeat nothing (no page cache): repeat it
    text = cql.replace("{geom}", geom)
    url = f"{base}{path}?limit={LIMIT}&filter-lang=cql2-text&filter={quote(text)}"
    return [url] * n


def _check(base: str, path: str, token: str | None, geom: str = "geometry") -> None:
    """Every filter answers 200 before anything is measured (a 400 would time an error)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for name, cql in FILTERS:
        r = httpx.get(_urls(base, path, cql, 1, geom)[0], headers=headers, timeout=300)
        if r.status_code != 200:
            raise SystemExit(f"{base}{path} {name}: {r.status_code} {r.text[:300]}")


def bench_riskmap(kind: str, url: str, args: argparse.Namespace) -> list[dict]:
    admin = add_user(url, "admin")
    county = busiest_county(url)
    regulator = add_user(url, "regulator", county)
    port = free_port()
    cmd = ["riskmap", "serve", "--store", url, "--host", "127.0.0.1", "--port", str(port)]
    rows = []
    path = "/ogc/collections/equipment/items"
    with server(cmd, port, "/healthz", BENCH / f"ogc-filter-{kind}.log") as base:
        for who, token in (("administrator", admin), (f"county {county}", regulator)):
            _check(base, path, token)
            for name, cql in FILTERS:
                figures = measure(_urls(base, path, cql, args.warmup + args.requests),
                                  token, 1, args.warmup)
                rows.append({"server": f"riskmap {kind}", "caller": who, "filter": name,
                             "cql2": cql, **figures})
                print(_line(rows[-1]), flush=True)
    return rows


def tipg_python() -> str:
    """The Python of tipg's own virtual environment (made and filled on first use)."""
    venv = BENCH / "tipg-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *TIPG], check=True)
    return str(python)


def bench_tipg(url: str, args: argparse.Namespace) -> list[dict]:
    port = free_port()
    env = {"DATABASE_URL": _libpq(url), "TIPG_DB_SCHEMAS": '["public"]',
           "TIPG_DB_TABLES": '["public.layer_equipment"]', "TIPG_DB_SPATIAL_EXTENT": "false",
           "TIPG_DB_DATETIME_EXTENT": "false"}
    cmd = [tipg_python(), "-m", "uvicorn", "tipg.main:app", "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning"]
    path = "/collections/public.layer_equipment/items"
    rows = []
    with server(cmd, port, "/collections/public.layer_equipment", BENCH / "ogc-filter-tipg.log",
                env) as base:
        _check(base, path, None, "geom")
        for name, cql in FILTERS:
            figures = measure(_urls(base, path, cql, args.warmup + args.requests, "geom"),
                              None, 1, args.warmup)
            rows.append({"server": "tipg postgis", "caller": "–", "filter": name, "cql2": cql,
                         **figures})
            print(_line(rows[-1]), flush=True)
    return rows


def _line(row: dict) -> str:
    return (f"{row['server']:<18} {row['caller']:<22} {row['filter']:<22} "
            f"p50 {row['p50_ms']:>8} ms  p99 {row['p99_ms']:>8} ms  {row['mean_kb']:>7} KiB  "
            f"non-200 {row['non_200']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["embedded", "postgis"], action="append")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-tipg", action="store_true", help="skip tipg")
    parser.add_argument("--only-tipg", action="store_true", help="tipg alone")
    args = parser.parse_args()
    kinds = args.store or ["postgis"]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}", flush=True)
    BENCH.mkdir(parents=True, exist_ok=True)
    stores = {k: postgis_store() if k == "postgis" else str(BENCH / f"store-{N}")
              for k in kinds}
    for url in stores.values():
        ensure_built(url)
    rows: list[dict] = []
    for kind, url in stores.items():
        if not args.only_tipg:
            rows += bench_riskmap(kind, url, args)
    if "postgis" in stores and not args.no_tipg:
        rows += bench_tipg(stores["postgis"], args)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = BENCH / f"ogc-filter-{stamp}.json"
    out.write_text(json.dumps({"at": datetime.now(UTC).isoformat(timespec="seconds"),
                               "equipment": N, "limit": LIMIT, "requests": args.requests,
                               "stores": stores, "rows": rows}, ensure_ascii=False, indent=1)
                   + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
