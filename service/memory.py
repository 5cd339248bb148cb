"""Give memory freed by one stage of a long job back to the operating system before the next.

A build or an ingest frees large temporaries at the end of every stage (joined partitions,
merged frames, sorted copies), but neither glibc's malloc nor Arrow's memory pool returns
freed pages at once: glibc keeps them in its heap (its mmap threshold grows with the
large blocks pandas frees), mimalloc keeps its segments a while. The next stage's
temporaries then come on top, and the process's resident size grows stage by stage with
memory it does not use. Measured in the Dask build's driver at 1M pieces, trimming between
stages took the peak from 2.3 to 1.8 GB (docs/benchmarks.md, "Memory given back between
stages").
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

import pyarrow as pa


@cache
def _malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def release_memory() -> None:
    """Returns the free pages of Arrow's pool and of the C heap to the operating system
    (what reference counting freed; cycles are left to the collector). Safe at any time;
    1–25 ms on a driver's heap of 1.5 GB, so call it between stages, not per row or tile."""
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
