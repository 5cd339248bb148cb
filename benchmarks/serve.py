"""Serving benchmark: tile p50/p99 and tiles/s against tipg, and worklist p95, at 1M equipment.

    python -m benchmarks.serve --store postgis --store embedded [--city [ADCODE]] [--level red]

Each store is served by ``riskmap serve`` (uvicorn, ``--workers`` processes, one by
default) in a subprocess on 127.0.0.1 with an admin token and a grid officer's token
(``riskmap users add``); with ``--city`` the tiles are asked by a city's regulator
instead, at that city's points (what the city regulator's map draws: their own rows);
with ``--level`` riskmap's tiles are asked with the map's 分级别 filter (``?level=red``:
other ETags than the seeded default views, so drawn on demand).
tipg (developmentseed; ``pip install tipg``, not a project dependency) serves the same
PostGIS table ``public.layer_equipment`` for the side-by-side ratio, once with riskmap's
default tile properties (``?properties=``) and once with its own default, every column.
Tile addresses are a fixed sample: equipment points drawn with NumPy seed 1, turned into
Web-Mercator x/y at each zoom. Every server gets the same URLs: a warm-up, then the
measured requests from ``--clients`` concurrent httpx clients; riskmap then gets the same
URLs once more ("warm": its tile cache answers). ``Accept-Encoding: identity`` for all, so
tipg's gzip middleware stays out of the figures (a reverse proxy would compress).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import psycopg

if not __package__:  # run as a file: the repository, not benchmarks/, first on sys.path
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks.ingest import BENCH
from layers.frames import LEVELS
from service.store import open_store
from service.store.conform import check_layers_current
from service.store.errors import StoreError
from service.tiles import TILE_FIELDS

N = 1_000_000
PG_DB = "riskmap_tiles_1000000"
ZOOMS = (8, 10, 12, 14)
AS_OF = "2026-11-01"
HEADERS = {"Accept-Encoding": "identity"}


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def postgis_store(database: str = PG_DB) -> str:
    """The 1M PostGIS database left by earlier runs, else a fresh one ingested and built."""
    base = os.environ.get("RISKMAP_TEST_DATABASE_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:55432/riskmap_test")
    url = f"{base.rpartition('/')[0]}/{database}"
    try:
        with psycopg.connect(_libpq(url)) as conn:
            found = conn.execute("SELECT to_regclass('public.layer_equipment') IS NOT NULL"
                                 " AND to_regclass('public.layer_builds') IS NOT NULL"
                                 ).fetchone()
        if found and found[0]:
            return url
    except psycopg.OperationalError:
        pass
    from benchmarks.build_layers import run

    run("postgis", N)  # ingests into riskmap_bench and builds (~4 min)
    return f"{base.rpartition('/')[0]}/riskmap_bench"


def ensure_built(url: str) -> None:
    """Build the layers when the store has none or they come from another registry."""
    with open_store(url) as store:
        try:
            check_layers_current(store.layer_build())
            current = store.layer_build() is not None
        except StoreError:
            current = False
    if not current:
        print(f"building layers in {url} …", flush=True)
        subprocess.run(["riskmap", "build", "--store", url, "--as-of", AS_OF], check=True,
                       stdout=subprocess.DEVNULL)


def seed_tiles(url: str, zooms: list[int], scopes: str = "province,city") -> dict:
    """``riskmap seed`` up to the largest zoom measured (at most 14), timed."""
    top = min(max(max(zooms), 8), 14)
    started = time.perf_counter()
    out = subprocess.run(["riskmap", "seed", "--store", url, "--max-zoom", str(top),
                          "--scopes", scopes],
                         check=True, capture_output=True, text=True).stdout
    seconds = round(time.perf_counter() - started, 1)
    print(f"seeded z8–z{top} in {seconds} s: {out.strip()}", flush=True)
    return {"max_zoom": top, "seconds": seconds, "output": out.strip()}


def drop_seeds(url: str) -> None:
    """Forget the store's seeded tiles: every tile is then drawn on its first request."""
    with open_store(url) as store:
        store.drop_seeded_tiles()


def sample_points(url: str, n: int, city: str | None = None) -> np.ndarray:
    """``n`` equipment points (lon, lat) drawn with seed 1 from the store's equipment layer
    (of ``city`` only, if given)."""
    with open_store(url) as store:
        layer = store.read_layer("equipment", columns=["geometry", "city_adcode"])
    geoms = layer["geometry"] if city is None else layer["geometry"][
        (layer["city_adcode"] == city).to_numpy(dtype=bool)]
    xy = np.column_stack([geoms.x.to_numpy(), geoms.y.to_numpy()])
    xy = xy[~np.isnan(xy).any(axis=1)]
    rng = np.random.default_rng(1)
    return xy[rng.choice(len(xy), size=n, replace=False)]


def tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    """Standard Web-Mercator (slippy map) tile of a point."""
    n = 2 ** z
    x = int((lon + 180.0) / 360.0 * n)
    lat_r = math.radians(lat)
    y = int((1.0 - math.asinh(math.tan(lat_r)) / math.pi) / 2.0 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def busiest_city(url: str) -> str:
    """The city holding the most equipment (ties by adcode)."""
    with open_store(url) as store:
        cities = store.read_layer("equipment", columns=["city_adcode"])["city_adcode"]
    counts = cities.value_counts()
    return str(sorted(counts[counts == counts.max()].index)[0])


def officer_of(url: str) -> str:
    """The officer owning the most cells (the heaviest worklist), ties by id."""
    with open_store(url) as store:
        cells = store.read("officer_cells", columns=["officer_id"])
    counts = cells["officer_id"].value_counts()
    top = counts[counts == counts.max()].index
    return str(sorted(top)[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def add_user(url: str, role: str, scope: str | None = None) -> str:
    cmd = ["riskmap", "users", "add", "--role", role, "--store", url, "--name", "benchmark"]
    if scope:
        cmd += ["--scope", scope]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1].strip()


@contextmanager
def server(cmd: list[str], port: int, ready: str, log: Path,
           env: dict[str, str] | None = None) -> Iterator[str]:
    """A server subprocess, waited for until ``ready`` answers, always stopped after."""
    base = f"http://127.0.0.1:{port}"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[0]} exited: see {log}")
            try:
                status = httpx.get(base + ready, timeout=5).status_code
                if status == 200:
                    break
                if status < 500 and status != 503:
                    raise RuntimeError(f"{base + ready} answered {status}: see {log}")
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{cmd[0]} not ready after 300 s: see {log}")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _measure(urls: list[str], token: str | None, clients: int, warmup: int) -> dict:
    headers = dict(HEADERS)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=120) as client:
        async def run(batch: list[str]) -> tuple[list[float], list[int], list[int], float]:
            queue: asyncio.Queue[str] = asyncio.Queue()
            for u in batch:
                queue.put_nowait(u)
            times: list[float] = []
            codes: list[int] = []
            sizes: list[int] = []

            async def worker() -> None:
                while not queue.empty():
                    u = queue.get_nowait()
                    t = time.perf_counter()
                    r = await client.get(u)
                    times.append((time.perf_counter() - t) * 1000)
                    codes.append(r.status_code)
                    sizes.append(len(r.content))

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(clients)))
            return times, codes, sizes, time.perf_counter() - t0

        await run(urls[:warmup])
        times, codes, sizes, wall = await run(urls[warmup:])
    ms = np.array(times)
    return {"requests": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "per_s": round(len(ms) / wall, 1), "non_200": sum(c != 200 for c in codes),
            "mean_kb": round(float(np.mean(sizes)) / 1024, 1)}


def measure(urls: list[str], token: str | None, clients: int, warmup: int) -> dict:
    return asyncio.run(_measure(urls, token, clients, warmup))


def tile_paths(points: np.ndarray, z: int) -> list[str]:
    return [f"{z}/{x}/{y}" for x, y in (tile_xy(lon, lat, z) for lon, lat in points)]


def bench_riskmap(kind: str, url: str, points: np.ndarray, args: argparse.Namespace) -> list:
    # the tiles' caller: the administrator, or with --city the city's regulator
    admin = add_user(url, "regulator", args.city) if args.city else add_user(url, "admin")
    officer_id = officer_of(url)
    officer = add_user(url, "grid_officer", officer_id)
    port = free_port()
    rows = []
    cmd = ["riskmap", "serve", "--store", url, "--port", str(port),
           "--workers", str(args.workers)]
    query = f"?level={args.level}" if args.level else ""
    with server(cmd, port, "/healthz", BENCH / f"serve-{kind}.log") as base:
        for layer in ("equipment", "risk-cells"):
            for z in args.zoom:
                urls = [f"{base}/tiles/{layer}/{p}.mvt{query}" for p in tile_paths(points, z)]
                figures = measure(urls, admin, args.clients, args.warmup)
                rows.append({"server": f"riskmap {kind}", "what": layer, "z": z,
                             "caller": args.city or "admin", "level": args.level, **figures})
                print(_line(rows[-1]), flush=True)
                # the same tiles again: what the next viewer of the area gets (tile cache)
                figures = measure(urls, admin, args.clients, args.warmup)
                rows.append({"server": f"riskmap {kind}", "what": f"{layer} (warm)", "z": z,
                             **figures})
                print(_line(rows[-1]), flush=True)
        # one client: the latency an officer sees, not a queue behind seven others. "again"
        # asks for today's list repeatedly (kept until the data or the build changes);
        # "fresh" asks for a different day each time, so every list is made anew.
        n = args.worklist_requests
        for what, urls in (
                ("again", [f"{base}/api/worklist"] * (5 + n)),
                ("fresh", [f"{base}/api/worklist?today={date(2026, 1, 1) + timedelta(days=i)}"
                           for i in range(5 + n)])):
            figures = measure(urls, officer, 1, 5)
            rows.append({"server": f"riskmap {kind}", "what": f"worklist {officer_id} {what}",
                         "z": None, "clients": 1, **figures})
            print(_line(rows[-1]), flush=True)
    return rows


def tipg_python() -> str:
    """tipg's interpreter: this one if it has tipg, else the venv benchmarks/ogc_filter.py
    makes for it (var/bench/tipg-venv: tipg pins its own FastAPI and pydantic)."""
    import importlib.util

    if importlib.util.find_spec("tipg") is not None:
        return sys.executable
    venv = BENCH / "tipg-venv" / "bin" / "python"
    if venv.exists():
        return str(venv)
    raise SystemExit(f"tipg is not installed: python -m venv {venv.parent.parent} && "
                     f"{venv.parent}/pip install tipg==1.6.1 (or pass --no-tipg)")


def bench_tipg(url: str, points: np.ndarray, args: argparse.Namespace) -> list:
    port = free_port()
    env = {"DATABASE_URL": _libpq(url), "TIPG_DB_SCHEMAS": '["public"]',
           "TIPG_DB_TABLES": '["public.layer_equipment"]', "TIPG_DB_SPATIAL_EXTENT": "false",
           "TIPG_DB_DATETIME_EXTENT": "false"}
    cmd = [tipg_python(), "-m", "uvicorn", "tipg.main:app", "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning", "--workers", str(args.workers)]
    rows = []
    # tipg's default is every column; ?properties= asks for riskmap's default tile fields
    slim = "?properties=" + ",".join(("fid", *TILE_FIELDS["equipment"]))
    with server(cmd, port, "/collections/public.layer_equipment", BENCH / "serve-tipg.log",
                env) as base:
        for what, query in (("equipment", slim), ("equipment (all columns)", "")):
            for z in args.zoom:
                urls = [f"{base}/collections/public.layer_equipment/tiles/WebMercatorQuad/"
                        f"{p}{query}" for p in tile_paths(points, z)]
                figures = measure(urls, None, args.clients, args.warmup)
                rows.append({"server": "tipg postgis", "what": what, "z": z, **figures})
                print(_line(rows[-1]), flush=True)
    return rows


def _line(row: dict) -> str:
    z = f"z{row['z']}" if row.get("z") is not None else f"{row.get('clients')} client(s)"
    return (f"{row['server']:<18} {row['what']:<22} {z:<12} p50 {row['p50_ms']:>7} ms  "
            f"p95 {row['p95_ms']:>7}  p99 {row['p99_ms']:>7} ms  {row['per_s']:>7}/s  "
            f"{row['mean_kb']:>7} KiB  non-200 {row['non_200']}")


def ratios(rows: list[dict]) -> list[dict]:
    """riskmap's cold equipment tiles/s over tipg's (same properties), per store and zoom."""
    tipg = {r["z"]: r["per_s"] for r in rows
            if r["server"] == "tipg postgis" and r["what"] == "equipment"}
    return [{"server": r["server"], "z": r["z"],
             "ratio_to_tipg": round(r["per_s"] / tipg[r["z"]], 2)}
            for r in rows if r["what"] == "equipment" and r["server"].startswith("riskmap")
            and r["z"] in tipg]


def main() -> None:
    # the riskmap commands of this interpreter's environment, activated or not
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["embedded", "postgis"], action="append")
    parser.add_argument("--zoom", type=int, action="append")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--worklist-requests", type=int, default=50,
                        help="worklist requests from one client, after 5 warm-up ones")
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes, for riskmap and tipg alike")
    parser.add_argument("--no-tipg", action="store_true", help="skip tipg")
    parser.add_argument("--database", default=PG_DB, help="the 1M PostGIS database's name")
    seeding = parser.add_mutually_exclusive_group()
    seeding.add_argument("--seed", action="store_true",
                         help="riskmap seed each store first (z8 to the largest zoom asked)")
    parser.add_argument("--city", nargs="?", const="busiest", default=None,
                        help="tiles as a city's regulator (default: the city with the most "
                             "equipment), at that city's points; no tipg (it has no scope)")
    parser.add_argument("--level", choices=LEVELS, default=None,
                        help="riskmap's tiles filtered to one risk level (?level=); no tipg")
    seeding.add_argument("--drop-seeds", action="store_true",
                         help="forget seeded tiles first: every tile drawn on demand")
    args = parser.parse_args()
    args.zoom = args.zoom or list(ZOOMS)
    kinds = args.store or ["postgis", "embedded"]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}", flush=True)
    BENCH.mkdir(parents=True, exist_ok=True)
    stores = {k: postgis_store(args.database) if k == "postgis" else str(BENCH / f"store-{N}")
              for k in kinds}
    seeded: dict[str, dict | None] = {}
    for kind, url in stores.items():
        ensure_built(url)
        if args.drop_seeds:
            drop_seeds(url)
        seeded[kind] = seed_tiles(url, args.zoom) if args.seed else None
    first = next(iter(stores.values()))
    if args.city == "busiest":
        args.city = busiest_city(first)
    if args.city or args.level:
        args.no_tipg = True
    if args.city:
        print(f"tiles as the regulator of {args.city}", flush=True)
    if args.level:
        print(f"tiles filtered to level {args.level}", flush=True)
    points = sample_points(first, args.warmup + args.requests, args.city)
    rows: list[dict] = []
    for kind, url in stores.items():
        rows += bench_riskmap(kind, url, points, args)
    if "postgis" in stores and not args.no_tipg:
        rows += bench_tipg(stores["postgis"], points, args)
    result = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "equipment": N,
              "clients": args.clients, "workers": args.workers, "requests": args.requests,
              "warmup": args.warmup, "caller": args.city or "admin", "level": args.level,
              "stores": stores, "seeded": seeded, "dropped_seeds": args.drop_seeds,
              "rows": rows, "ratios": ratios(rows)}
    for r in result["ratios"]:
        print(f"{r['server']:<18} equipment z{r['z']:<3} tiles/s ÷ tipg = {r['ratio_to_tipg']}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = BENCH / f"serve-{stamp}.json"
    out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
