"""Ingest benchmark: demo equipment → embedded store and/or PostGIS, seconds per stage.

    python -m benchmarks.ingest --equipment 100000 --equipment 1000000 \
        --store embedded --store postgis [--scope 410000]

Each run generates (or reuses) the seeded demo province under var/bench/, ingests every file
into a fresh store, and prints the per-stage seconds from the ingest report (read,
validate, datum, geocode, join, h3, polygons, officers, references, scope — the checks of
the uploader's region and of the hazard loop against the store —, fingerprint, audit,
write). ``--scope 410000`` loads as a province regulator's upload does (every row checked
against the region, where it is and where the store has it).
The PostGIS run uses $RISKMAP_TEST_DATABASE_URL (or starts one with scripts/postgis.sh) and
a fresh database ``riskmap_bench``. A second identical ingest is timed too (all unchanged).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import psycopg

from data.demo import generate
from service.ingest.pipeline import IngestOptions, ingest
from service.ingest.write_scope import WriteScope
from service.store import open_store

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "var" / "bench"
STAGES = ("read", "validate", "datum", "geocode", "join", "h3", "polygons", "officers",
          "references", "scope", "fingerprint", "audit", "write")


def demo_files(n: int, province: str = "河南省", seed: int = 7) -> list[str]:
    """The demo files of ``n`` equipment in ``province`` (generated once, then reused):
    var/bench/demo-N for 河南省, var/bench/demo-N-<province> for another."""
    out = BENCH / (f"demo-{n}" if province == "河南省" else f"demo-{n}-{province}")
    if not (out / "MANIFEST.json").exists():
        t = time.perf_counter()
        generate(province=province, equipment=n, seed=seed, out=out)
        print(f"generated {n:,} equipment in {time.perf_counter() - t:.1f} s")
    return sorted(str(p) for p in out.iterdir() if p.name != "MANIFEST.json")


def postgis_url() -> str:
    url = os.environ.get("RISKMAP_TEST_DATABASE_URL")
    if not url:
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "postgis.sh")], check=True,
                              capture_output=True, text=True)
        url = proc.stdout.strip().splitlines()[-1]
    base, _, _ = url.rpartition("/")
    admin = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS riskmap_bench WITH (FORCE)")
        conn.execute("CREATE DATABASE riskmap_bench")
    return f"{base}/riskmap_bench"


def run(kind: str, n: int, scope: str | None = None) -> dict:
    files = demo_files(n)
    if kind == "embedded":
        url = str(BENCH / f"store-{n}")
        shutil.rmtree(url, ignore_errors=True)
    else:
        url = postgis_url()
    results = {}
    with open_store(url, create=True) as store:
        for attempt in ("first", "again"):
            t = time.perf_counter()
            report = ingest(files, store, IngestOptions(
                scope=WriteScope(scope) if scope else None))
            total = time.perf_counter() - t
            results[attempt] = {"total": round(total, 2), **report["timings"],
                                "read_rows": report["read"], "inserted": report["inserted"],
                                "unchanged": report["unchanged"], "rejected": report["rejected"]}
            stages = "  ".join(f"{s} {report['timings'].get(s, 0):.1f}" for s in STAGES)
            print(f"{kind:8} n={n:>9,} {scope or '':6} {attempt:5} total {total:6.1f} s  "
                  + stages)
    return {"store": kind, "equipment": n, "scope": scope, **results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--equipment", type=int, action="append")
    parser.add_argument("--store", choices=["embedded", "postgis"], action="append")
    parser.add_argument("--scope", help="load as the regulator of this adcode uploads")
    parser.add_argument("--out", type=Path, default=BENCH / "ingest-results.json")
    args = parser.parse_args()
    sizes = args.equipment or [100_000]
    stores = args.store or ["embedded"]
    rows = [run(kind, n, args.scope) for n in sizes for kind in stores]
    meta = {"machine": f"{platform.machine()} {os.cpu_count()} cores",
            "python": platform.python_version(), "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(meta, indent=1, ensure_ascii=False))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
