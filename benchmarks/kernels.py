"""Kernel benchmark: seconds of the vectorised column functions at the sizes they are built for.

    python -m benchmarks.kernels [--check]

No store and no demo files: each kernel gets random input of a fixed seed (0), is run once
to warm what it caches (the boundary index, the catalogue lookup), then timed on one call:

- ``geo.boundaries.locate``: 200,000 random points over Henan and Shaanxi's extent;
- ``data.catalogue.resolve_categories``: 100,000 category values (codes, names, aliases,
  padded and unknown ones);
- ``layers.frequency.inspection_frequency``: 60,000 units and 200,000 pieces of equipment;
- ``service.ingest.values.parse_dates``: 1,000,000 ISO dates, then 1,000,000 mixed ones
  (a seventh each of 2021年3月5日, Excel serials, blanks and garbage).

The unit tests check what these return on small inputs; this times them. ``--check`` exits
with 1 when a kernel misses its target (the budget the unit tests used to assert).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd

from data.catalogue import load_catalogue, resolve_categories
from geo.boundaries import locate
from layers.frequency import inspection_frequency
from service.ingest.values import parse_dates


def _seconds(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def bench_locate(n: int = 200_000) -> float:
    rng = np.random.default_rng(0)
    lon, lat = rng.uniform(105, 117, n), rng.uniform(31, 40, n)
    locate(lon[:10], lat[:10])  # warm the cached index
    return _seconds(lambda: locate(lon, lat))


def bench_categories(n: int = 100_000) -> float:
    rng = np.random.default_rng(0)
    catalogue = load_catalogue()
    pool = np.array([*catalogue["code"], *catalogue["name"], " 3110 ", "3110.0", "扶梯",
                     "未知设备", "", None, *[f"{i:04d}" for i in range(1000)]], dtype=object)
    values = pd.Series(pool[rng.integers(0, len(pool), n)])
    resolve_categories(pd.Series(pool))  # builds the lookup
    return _seconds(lambda: resolve_categories(values))


def frequency_inputs(units: int, pieces: int, seed: int = 0) -> tuple[pd.DataFrame, ...]:
    """Random graded units and equipment (a tenth of it in a venue), with no checks, two
    venues, no hotspots and no widespread categories: the frames ``inspection_frequency``
    takes before ``as_of``."""
    rng = np.random.default_rng(seed)
    codes = np.array([f"U{i:07d}" for i in range(units)], dtype=object)
    u = pd.DataFrame({
        "credit_code": pd.array(codes, dtype="string"), "name": pd.array(codes, dtype="string"),
        "level": pd.array(rng.choice(["red", "blue", None], units), dtype="string"),
        "lon": rng.uniform(110, 116, units), "lat": rng.uniform(31, 36, units),
        "county_adcode": pd.array(["410102"] * units, dtype="string"),
        "blacklisted": pd.array(rng.random(units) < .05, dtype="boolean")})
    eq = pd.DataFrame({
        "unit_credit_code": pd.array(codes[rng.integers(0, units, pieces)], dtype="string"),
        "category_code": pd.array(rng.choice(["3110", "9100", "4100"], pieces), dtype="string"),
        "venue_id": pd.array(np.where(rng.random(pieces) < .1, "V1", None), dtype="string"),
        "in_use": True, "overdue": rng.random(pieces) < .03})

    def empty(**dtypes: str) -> pd.DataFrame:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})

    checks = empty(check_id="string", credit_code="string", checked_on="datetime64[s]",
                   officer_id="string", result="string")
    venues = pd.DataFrame({"venue_id": pd.Series(["V1", "V2"], dtype="string"),
                           "name": ["万达广场", "人民医院"], "kind": ["商场", "医院"],
                           "daily_visitors": pd.array([30000, 8000], dtype="Int64")})
    hot = empty(credit_code="string", regional="boolean")
    wide = empty(county_adcode="string", top_category="string", widespread="boolean")
    return u, eq, checks, venues, hot, wide


def bench_frequency(units: int = 60_000, pieces: int = 200_000) -> float:
    inputs = frequency_inputs(units, pieces)
    return _seconds(lambda: inspection_frequency(*inputs, date(2021, 6, 30)))


def date_columns(n: int, seed: int = 0) -> tuple[np.ndarray, pd.Series, pd.Series]:
    """``n`` random days from 1950 on, as ISO text, and the same column mixed: of every seven
    rows from the first, 2021年3月5日, the Excel serial 44260, a blank and garbage."""
    rng = np.random.default_rng(seed)
    days = np.datetime64("1950-01-01") + rng.integers(0, 55_000, n).astype("timedelta64[D]")
    iso = pd.Series(days.astype(str), dtype=str)
    mixed = iso.copy()
    mixed.iloc[::7] = "2021年3月5日"
    mixed.iloc[1::7] = "44260"
    mixed.iloc[2::7] = ""
    mixed.iloc[3::7] = "garbage"
    return days, iso, mixed


def bench_dates_iso(n: int = 1_000_000) -> float:
    _, iso, _ = date_columns(n)
    return _seconds(lambda: parse_dates(iso))


def bench_dates_mixed(n: int = 1_000_000) -> float:
    _, _, mixed = date_columns(n)
    return _seconds(lambda: parse_dates(mixed))


# name, function, target seconds (None: no target, the figure is recorded only)
KERNELS: tuple[tuple[str, Callable[[], float], float | None], ...] = (
    ("locate, 200k points", bench_locate, 5.0),
    ("resolve_categories, 100k values", bench_categories, 0.5),
    ("inspection_frequency, 60k units / 200k pieces", bench_frequency, 10.0),
    ("parse_dates, 1M ISO dates", bench_dates_iso, None),
    ("parse_dates, 1M mixed dates", bench_dates_mixed, None),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit with 1 when a kernel misses its target")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, python {platform.python_version()}")
    missed = []
    for name, bench, target in KERNELS:
        seconds = bench()
        verdict = "" if target is None else (
            f"  (target < {target:g} s: {'met' if seconds < target else 'MISSED'})")
        print(f"{name:<48} {seconds:6.2f} s{verdict}", flush=True)
        if target is not None and seconds >= target:
            missed.append(name)
    if args.check and missed:
        sys.exit(1)


if __name__ == "__main__":
    main()
