"""Layer-build benchmark: every layer of the registry from N demo equipment, seconds per stage.

    python -m benchmarks.build_layers --equipment 1000000 --store embedded --store postgis

Reuses (or makes) the seeded demo province and its ingested store under var/bench/
(``python -m benchmarks.ingest`` makes the same ones), then times the three parts of
``riskmap build`` separately: reading the stored tables, computing every layer
(``layers.build.build_layers``, pure and vectorised: the ≤ 30 s target at 1M applies
here) and writing them back as one build. Each computing stage is printed too.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

if not __package__:  # run as a file: the repository, not benchmarks/, first on sys.path
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks.ingest import BENCH, demo_files, postgis_url
from layers.build import build_layers
from layers.rules import load_rules
from service.build import read_inputs
from service.ingest.pipeline import IngestOptions, ingest
from service.store import open_store
from service.store.base import LayerBuild

PROVINCES = ["410000", "610000"]
AS_OF = date(2026, 11, 1)


def store_for(kind: str, n: int) -> str:
    """A store holding the demo of ``n`` (ingested once; PostGIS is ingested every run)."""
    files = demo_files(n)
    if kind == "postgis":
        url = postgis_url()
        with open_store(url, create=True) as store:
            ingest(files, store, IngestOptions(provinces=PROVINCES))
        return url
    path = BENCH / f"store-{n}"
    with open_store(str(path), create=True) as store:
        if store.data_version() == "0":
            ingest(files, store, IngestOptions(provinces=PROVINCES))
    return str(path)


def run(kind: str, n: int) -> dict:
    url = store_for(kind, n)
    rules = load_rules()
    with open_store(url) as store:
        t = time.perf_counter()
        inputs = read_inputs(store, PROVINCES, AS_OF)
        read_s = time.perf_counter() - t
        t = time.perf_counter()
        result = build_layers(inputs, rules)
        compute_s = time.perf_counter() - t
        t = time.perf_counter()
        store.write_layers(result.frames, LayerBuild(
            build_id=f"bench-{int(time.time())}", built_at=datetime.now(UTC), as_of=AS_OF,
            rules_version=rules.version,
            rules_hash=rules.fingerprint(), data_version=store.data_version(),
            report=result.report))
        write_s = time.perf_counter() - t
    return {"store": kind, "equipment": n, "rows_in": len(inputs.equipment),
            "read_s": round(read_s, 1), "compute_s": round(compute_s, 1),
            "write_s": round(write_s, 1), "stages": result.report["seconds"],
            "layer_rows": result.report["rows"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--equipment", type=int, action="append")
    parser.add_argument("--store", choices=["embedded", "postgis"], action="append")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, python {platform.python_version()}")
    for n in args.equipment or [100_000]:
        for kind in args.store or ["embedded"]:
            figures = run(kind, n)
            print(json.dumps(figures, ensure_ascii=False))
            out = BENCH / f"layers-{kind}-{n}.json"
            Path(out).write_text(json.dumps(figures, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
