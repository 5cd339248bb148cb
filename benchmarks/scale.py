"""Scale benchmark: ingest (in process and on Dask), build and serve from PostGIS at 1M, 5M, 10M.

    python -m benchmarks.scale --equipment 1000000 --equipment 5000000 [--drop-dask]

For each size N the seeded demo province (河南省, seed 7: the same province densified) is
generated under var/bench/demo-N, or reused, and then, each step a ``riskmap`` subprocess:

1. ``riskmap ingest --engine local`` into a fresh PostGIS database ``riskmap_scale_N``;
2. ``riskmap build --as-of 2026-11-01`` on it, in process;
3. ``riskmap serve`` on it: equipment tiles at z12 and z14, each tile address once ("cold":
   riskmap's tile cache empty, a freshly started server), then the same addresses again
   ("warm"), from ``--clients`` concurrent clients; then the worklist of the officer owning
   the most cells, a different ``today`` each request (never cached), one client;
4. ``riskmap ingest --engine dask`` (a LocalCluster of 2 single-threaded workers) into a
   fresh ``riskmap_scale_N_dask`` (dropped afterwards with ``--drop-dask``); the two ingest
   reports must agree (all but the batch id and the timings) and so must the row counts
   of every stored table;
5. ``riskmap build --engine dask`` (a LocalCluster of 2 single-threaded workers grading
   partitions of counties) on the in-process ingest's database, after serving: its build
   report must be the in-process build's but for the timings, the engine and the
   partitions (``--no-dask-build`` skips it).

``--prefix`` names the databases (default ``riskmap_scale``: ``riskmap_scale_N`` …);
``--provinces 河南省,陕西省`` shares N out over several provinces (the demo generator run
for each, its own seed; var/bench/demo-N/2-<province>). ``--dask-pipeline`` runs steps 4, 5
and 3 alone, in that order, on the Dask ingest's database: for a size whose in-process
steps do not fit in memory.
``--no-serve`` skips step 3, ``--no-dask`` step 4; ``--builds-only`` runs steps 2 and 5
alone on the database an earlier run ingested (no files generated; a database without
input equipment, densified for serving, is refused), ``--dask-build-only`` with it step 5
alone (compared with the report of the build in force).

Every step's wall time, the peak RSS of its largest process (``wait4`` rusage: the ingest
process, or the largest Dask worker), the command's own process alone (the Dask driver;
psutil, sampled every 0.2 s) and the peak of the sum over its process tree (sampled
likewise: the ingest plus its Dask workers) are recorded, with the
load averages at the start of the step (another benchmark may share the machine). The
PostgreSQL server's own memory is not counted. A step whose tree passes ``--max-rss-gb``,
or that leaves the machine under 1 GiB available, is killed and recorded as such.
Results (written after every step): var/bench/scale-<stamp>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import psutil
import psycopg

if not __package__:  # run as a file: the repository, not benchmarks/, first on sys.path
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks.ingest import BENCH, demo_files
from benchmarks.serve import (
    add_user,
    free_port,
    measure,
    officer_of,
    sample_points,
    server,
    tile_paths,
)

AS_OF = "2026-11-01"
ZOOMS = (12, 14)
BIN = Path(sys.executable).parent
NOT_INGEST = {"users", "sessions", "audit", "region_history", "tile_seeds"}
DEFAULT_BASE = "postgresql+psycopg://postgres@127.0.0.1:55432/riskmap_test"


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def fresh_database(name: str) -> str:
    """Drop and create database ``name`` on the test server; its riskmap URL."""
    base = os.environ.get("RISKMAP_TEST_DATABASE_URL", DEFAULT_BASE)
    with psycopg.connect(_libpq(base), autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            psycopg.sql.Identifier(name)))
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(
            psycopg.sql.Identifier(name)))
    return f"{base.rpartition('/')[0]}/{name}"


def fresh_database_url(name: str) -> str:
    """The URL of database ``name`` on the test server (left as it is)."""
    base = os.environ.get("RISKMAP_TEST_DATABASE_URL", DEFAULT_BASE)
    return f"{base.rpartition('/')[0]}/{name}"


def drop_database(url: str) -> None:
    base = os.environ.get("RISKMAP_TEST_DATABASE_URL", DEFAULT_BASE)
    with psycopg.connect(_libpq(base), autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            psycopg.sql.Identifier(url.rpartition("/")[2])))


def database_size_mb(url: str) -> float:
    with psycopg.connect(_libpq(url)) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return round(row[0] / 2**20, 1)


def table_counts(url: str) -> dict[str, int]:
    """Exact row counts of every table ingest writes (a few seconds at 5M): not those the
    build and the benchmark's users write (layers, region history, users, sessions, audit): the
    in-process database has been built and served by the time the Dask one is compared."""
    with psycopg.connect(_libpq(url)) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
            if not r[0].startswith("layer_") and r[0] not in NOT_INGEST]
        return {n: conn.execute(psycopg.sql.SQL("SELECT count(*) FROM {}").format(
            psycopg.sql.Identifier(n))).fetchone()[0] for n in names}


def timed(cmd: list[str], log: Path, max_rss_gb: float) -> dict:
    """Run ``cmd``; wall seconds, exit code, peak RSS of its largest process and of its tree.

    The command's process group is killed (``"killed"`` says why) when its tree passes
    ``max_rss_gb`` or the machine has under 1 GiB available: the machine is shared."""
    load = os.getloadavg()
    t = time.perf_counter()
    with open(log, "w") as out:
        proc = psutil.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    tree_peak = own_peak = 0
    killed = None
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        total = 0
        with contextlib.suppress(psutil.Error):
            for p in [proc, *proc.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    rss = p.memory_info().rss
                    total += rss
                    if p.pid == proc.pid:  # the command's own process: the Dask driver
                        own_peak = max(own_peak, rss)
        tree_peak = max(tree_peak, total)
        available = psutil.virtual_memory().available
        if killed is None and (total > max_rss_gb * 2**30 or available < 2**30):
            killed = (f"tree RSS {total / 2**30:.1f} GiB, machine available "
                      f"{available / 2**30:.1f} GiB after {time.perf_counter() - t:.0f} s")
            print(f"[{_now()}]   killing {cmd[1]}: {killed}", flush=True)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.2)
    wall = time.perf_counter() - t
    return {"seconds": round(wall, 1), "exit": os.waitstatus_to_exitcode(status),
            "killed": killed,
            "peak_rss_mb": round(usage.ru_maxrss / 1024),  # KiB on Linux
            "peak_own_rss_mb": round(own_peak / 2**20),  # sampled: the driver alone
            "peak_tree_rss_mb": round(tree_peak / 2**20), "load_at_start": load}


def ingest(n: int, engine: str, files: list[str], args: argparse.Namespace
           ) -> tuple[dict, dict | None, str]:
    name = f"{args.prefix}_{n}" + ("_dask" if engine == "dask" else "")
    url = fresh_database(name)
    report_path = BENCH / f"scale-{n}{_tag(args)}-{engine}-report.json"
    cmd = [str(BIN / "riskmap"), "ingest", "--store", url, "--engine", engine,
           "--report", str(report_path)]
    if engine == "dask":
        cmd += ["--partition-rows", str(args.partition_rows)]
    print(f"[{_now()}] ingest {n:,} {engine} → {name}", flush=True)
    step = timed(cmd + files, BENCH / f"scale-{n}{_tag(args)}-ingest-{engine}.log",
                 args.max_rss_gb)
    step |= {"engine": engine, "database": name}
    if step["exit"] not in (0, 1):  # 1: some rows rejected, as the demo plants
        print(f"[{_now()}]   ingest {engine} failed: {_step_line(step)}", flush=True)
        return step, None, url
    report = json.loads(report_path.read_text(encoding="utf-8"))
    step |= {"read": report.get("read"),
             "inserted": report.get("inserted"), "rejected": report.get("rejected"),
             "timings": report.get("timings"), "db_mb": database_size_mb(url)}
    print(f"[{_now()}]   {_step_line(step)}", flush=True)
    return step, report, url


def compare(local: dict, dask: dict, local_url: str, dask_url: str) -> dict:
    """Reports (but for batch id and timings) and stored row counts, local against Dask."""
    keys = (set(local) | set(dask)) - {"batch_id", "timings"}
    report_diff = sorted(k for k in keys if local.get(k) != dask.get(k))
    a, b = table_counts(local_url), table_counts(dask_url)
    count_diff = {t: [a.get(t), b.get(t)] for t in sorted(set(a) | set(b))
                  if a.get(t) != b.get(t)}
    return {"reports_equal": not report_diff, "report_keys_differing": report_diff,
            "counts_equal": not count_diff, "counts_differing": count_diff,
            "counts": a}


def _tag(args: argparse.Namespace) -> str:
    """What the files of a run with its own ``--prefix`` add to their names."""
    return "" if args.prefix == "riskmap_scale" else f"-{args.prefix}"


def build(n: int, url: str, args: argparse.Namespace, engine: str = "local") -> dict:
    """``riskmap build`` with ``engine``; the step, and the build report it stored."""
    print(f"[{_now()}] build {n:,} {engine}", flush=True)
    log = BENCH / (f"scale-{n}{_tag(args)}-build.log" if engine == "local"
                   else f"scale-{n}{_tag(args)}-build-{engine}.log")
    step = timed([str(BIN / "riskmap"), "build", "--store", url, "--as-of", AS_OF,
                  "--engine", engine], log, args.max_rss_gb)
    if step["exit"] != 0:
        raise RuntimeError(f"build exited {step['exit']}: see {log}")
    step["db_mb"] = database_size_mb(url)
    step["engine"] = engine
    step["report"] = build_report(url)
    step["stage_seconds"] = step["report"].get("seconds")
    print(f"[{_now()}]   {_step_line(step)}", flush=True)
    return step


def build_report(url: str) -> dict:
    """The report of the build in force at ``url``."""
    from service.store import open_store

    store = open_store(url)
    try:
        found = store.layer_build()
        return dict(found.report) if found else {}
    finally:
        store.close()


# what two engines may report apart
BUILD_REPORT_APART = {"seconds", "engine", "partitions", "dask_seconds"}


def compare_builds(local: dict, dask: dict) -> dict:
    """The two builds' reports, but for what the engines may report apart."""
    keys = (set(local) | set(dask)) - BUILD_REPORT_APART
    differing = sorted(k for k in keys if local.get(k) != dask.get(k))
    return {"reports_equal": not differing, "report_keys_differing": differing}


def unique_tiles(points: np.ndarray, z: int, count: int) -> list[str]:
    """The first ``count`` distinct tile addresses of ``points`` at ``z`` (each asked once
    in the cold pass, so none of them is answered from the tile cache)."""
    return list(dict.fromkeys(tile_paths(points, z)))[:count]


def serve(n: int, url: str, args: argparse.Namespace) -> list[dict]:
    admin = add_user(url, "admin")
    officer_id = officer_of(url)
    officer = add_user(url, "grid_officer", officer_id)
    points = sample_points(url, 20 * (args.requests + args.warmup))
    port = free_port()
    cmd = [str(BIN / "riskmap"), "serve", "--store", url, "--port", str(port),
           "--workers", "1"]
    rows = []
    with server(cmd, port, "/healthz", BENCH / f"scale-{n}{_tag(args)}-serve.log") as base:
        for z in ZOOMS:
            paths = unique_tiles(points, z, args.warmup + args.requests)
            urls = [f"{base}/tiles/equipment/{p}.mvt" for p in paths]
            for what in ("cold", "warm"):
                load = os.getloadavg()
                # warm: the same addresses again (warm-up included), all from the cache
                figures = measure(urls, admin, args.clients, args.warmup)
                rows.append({"what": f"equipment z{z} {what}", "z": z,
                             "clients": args.clients, "load_at_start": load, **figures})
                print(f"[{_now()}]   {_serve_line(rows[-1])}", flush=True)
        k = args.worklist_requests
        urls = [f"{base}/api/worklist?today={date(2026, 1, 1) + timedelta(days=i)}"
                for i in range(5 + k)]
        load = os.getloadavg()
        figures = measure(urls, officer, 1, 5)
        rows.append({"what": f"worklist {officer_id} fresh", "z": None, "clients": 1,
                     "load_at_start": load, **figures})
        print(f"[{_now()}]   {_serve_line(rows[-1])}", flush=True)
    return rows


def _now() -> str:
    return datetime.now().strftime("%H:%M:%S")


def _step_line(s: dict) -> str:
    load = " ".join(f"{x:.2f}" for x in s["load_at_start"])
    return (f"{s['seconds']:>7.1f} s  peak RSS {s['peak_rss_mb']:>6} MB (largest process)  "
            f"{s.get('peak_own_rss_mb', 0):>6} MB (the command's own, sampled)  "
            f"{s['peak_tree_rss_mb']:>6} MB (tree)  exit {s['exit']}  load {load}")


def _serve_line(r: dict) -> str:
    return (f"{r['what']:<28} p50 {r['p50_ms']:>7} ms  p95 {r['p95_ms']:>7}  "
            f"p99 {r['p99_ms']:>7} ms  {r['per_s']:>6}/s  {r['mean_kb']:>6} KiB  "
            f"n {r['requests']}  non-200 {r['non_200']}")


def _refuse_without_inputs(url: str) -> None:
    """Stops before building a database whose input equipment is empty (a copy densified
    for the serving benchmarks, ``benchmarks.explain densify`` without ``--inputs``): its
    build would replace the layers with empty ones."""
    with psycopg.connect(_libpq(url)) as conn:
        if conn.execute("SELECT NOT EXISTS (SELECT FROM equipment)").fetchone()[0]:
            raise SystemExit(f"{url.rpartition('/')[2]} holds no input equipment (densified "
                             "for serving?): build one ingested by this benchmark or "
                             "densified with --inputs")


def run(n: int, args: argparse.Namespace, save: Callable[[dict], None]) -> dict:
    """Every step for ``n``; ``save`` after each (a long run keeps what it measured).

    The Dask ingest comes last: serving reads only the in-process ingest's database."""
    t = time.perf_counter()
    provinces = args.provinces or ["河南省"]
    if args.builds_only:  # both builds on the database an earlier run ingested: no files
        url = fresh_database_url(f"{args.prefix}_{n}")
        result = {"equipment": n, "provinces": provinces, "database": url.rpartition("/")[2]}
        _refuse_without_inputs(url)
        if args.dask_build_only:  # compared with the build in force, as it was recorded
            result["build"] = {"report": build_report(url), "recorded": True}
        else:
            result["build"] = build(n, url, args)
        save(result)
        dask_build_step(n, url, args, result, save)
        return result
    files = [f for k, province in enumerate(provinces)  # N shared out, a seed each
             for f in demo_files(n // len(provinces), province, 7 + k)]
    result: dict = {"equipment": n, "provinces": provinces,
                    "files": [str(Path(f).relative_to(BENCH)) for f in files],
                    "generate_s": round(time.perf_counter() - t, 1)}
    if args.dask_pipeline:  # where in process does not fit: Dask ingest, build, serve
        dask, _, url = ingest(n, "dask", files, args)
        result["ingest_dask"] = dask
        result["database"] = url.rpartition("/")[2]
        save(result)
        if dask.get("exit") in (0, 1):
            result["build_dask"] = build(n, url, args, engine="dask")
            save(result)
            if not args.no_serve:
                result["serve"] = serve(n, url, args)
                save(result)
        return result
    if args.dask_only:  # against the database and report an earlier run left
        url = fresh_database_url(f"{args.prefix}_{n}")
        local_report = json.loads((BENCH / f"scale-{n}{_tag(args)}-local-report.json").read_text(
            encoding="utf-8"))
        return dask_step(n, files, args, result, local_report, url, save)
    local, local_report, url = ingest(n, "local", files, args)
    result["ingest_local"] = local
    result["database"] = url.rpartition("/")[2]
    save(result)
    if local_report is None:
        return result
    result["build"] = build(n, url, args)
    save(result)
    if not args.no_serve:
        result["serve"] = serve(n, url, args)
        save(result)
    if not args.no_dask_build:
        dask_build_step(n, url, args, result, save)
    if args.no_dask:
        return result
    return dask_step(n, files, args, result, local_report, url, save)


def dask_build_step(n: int, url: str, args: argparse.Namespace, result: dict,
                    save: Callable[[dict], None]) -> None:
    """The Dask build on the database the in-process build wrote, compared with it."""
    result["build_dask"] = build(n, url, args, engine="dask")
    result["local_vs_dask_build"] = compare_builds(result["build"]["report"],
                                                   result["build_dask"]["report"])
    print(f"[{_now()}]   local = dask build: report "
          f"{result['local_vs_dask_build']['reports_equal']}", flush=True)
    save(result)


def dask_step(n: int, files: list[str], args: argparse.Namespace, result: dict,
              local_report: dict, url: str, save: Callable[[dict], None]) -> dict:
    """The Dask ingest into its own database, compared with the in-process one."""
    dask, dask_report, dask_url = ingest(n, "dask", files, args)
    result["ingest_dask"] = dask
    if dask_report is not None:
        result["local_vs_dask"] = compare(local_report, dask_report, url, dask_url)
        print(f"[{_now()}]   local = dask: reports "
              f"{result['local_vs_dask']['reports_equal']}, stored row counts "
              f"{result['local_vs_dask']['counts_equal']}", flush=True)
    if args.drop_dask:
        drop_database(dask_url)
    save(result)
    return result


def table(results: list[dict]) -> str:
    lines = ["N           ingest local       ingest dask        build              "
             "build dask         z12 cold p50/p99  z12 warm p50/p99  z14 cold p50/p99  "
             "z14 warm p50/p99  worklist p95"]
    def step(r: dict, key: str) -> str:
        s = r.get(key)
        if not s or "seconds" not in s:  # not run (or a build recorded, not timed)
            return f"{'—':>17}"
        mark = "killed" if s.get("killed") else "s"
        return f"{s['seconds']:>6.1f} {mark} {s['peak_tree_rss_mb']:>6} MB"

    for r in results:
        tiles = {row["what"]: row for row in r.get("serve", [])}
        cells = []
        for z in ZOOMS:
            for what in ("cold", "warm"):
                row = tiles.get(f"equipment z{z} {what}")
                cells.append(f"{row['p50_ms']:>6.1f}/{row['p99_ms']:<6.1f} ms" if row
                             else f"{'—':>16}")
        worklist = next((row["p95_ms"] for what, row in tiles.items()
                         if what.startswith("worklist")), None)
        lines.append(f"{r['equipment']:<11,} {step(r, 'ingest_local')}  "
                     f"{step(r, 'ingest_dask')}  {step(r, 'build')}  "
                     f"{step(r, 'build_dask')}  " + "  ".join(cells)
                     + (f"  {worklist:>6.1f} ms" if worklist is not None else "  —"))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--equipment", type=int, action="append",
                        help="sizes to run (default 1,000,000 and 5,000,000)")
    parser.add_argument("--partition-rows", type=int, default=200_000,
                        help="--engine dask: rows of a file per partition")
    parser.add_argument("--requests", type=int, default=200,
                        help="measured tile requests per zoom (distinct tiles)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--worklist-requests", type=int, default=50)
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask ingest")
    parser.add_argument("--no-dask-build", action="store_true", help="skip the Dask build")
    parser.add_argument("--no-serve", action="store_true", help="skip serving")
    parser.add_argument("--provinces", type=lambda v: v.split(","), default=None,
                        help="provinces to share N out over, comma-separated names "
                             "(default 河南省; each its own seed)")
    parser.add_argument("--dask-pipeline", action="store_true",
                        help="the Dask ingest into PREFIX_N_dask, the Dask build on it and "
                             "serving from it: no in-process step (where it does not fit)")
    parser.add_argument("--dask-build-only", action="store_true",
                        help="with --builds-only: the Dask build alone, compared with the "
                             "report of the build in force (where the in-process build "
                             "does not fit in memory)")
    parser.add_argument("--builds-only", action="store_true",
                        help="only the in-process and the Dask build, on PREFIX_N as an "
                             "earlier run ingested it")
    parser.add_argument("--prefix", default="riskmap_scale",
                        help="databases: PREFIX_N (in process), PREFIX_N_dask (Dask ingest)")
    parser.add_argument("--dask-only", action="store_true",
                        help="only the Dask ingest, compared with riskmap_scale_N and the "
                             "in-process report an earlier run left")
    parser.add_argument("--max-rss-gb", type=float, default=16.0,
                        help="kill a step whose process tree passes this (GiB)")
    parser.add_argument("--drop-dask", action="store_true",
                        help="drop the Dask ingest's database once compared")
    args = parser.parse_args()
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"  # riskmap users
    BENCH.mkdir(parents=True, exist_ok=True)
    sizes = args.equipment or [1_000_000, 5_000_000]
    meta = {"at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {os.cpu_count()} cores, "
                       f"{round(psutil.virtual_memory().total / 2**30)} GiB",
            "python": platform.python_version(), "clients": args.clients,
            "requests": args.requests, "warmup": args.warmup,
            "partition_rows": args.partition_rows, "results": []}
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = BENCH / f"scale-{stamp}.json"

    def save(result: dict) -> None:
        out.write_text(json.dumps({**meta, "results": [*meta["results"], result]},
                                  ensure_ascii=False, indent=1) + "\n")

    for n in sizes:
        meta["results"].append(run(n, args, save))
        print(f"[{_now()}] wrote {out}", flush=True)
    print(table(meta["results"]))


if __name__ == "__main__":
    main()
