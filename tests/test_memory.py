"""Memory a stage freed is given back before the next (service.memory): freed holes in the
C heap stay resident until trimmed, and a build trims between its stages."""

from __future__ import annotations

import psutil
import pytest

import service.build
from service.memory import _malloc_trim, release_memory


def test_freed_holes_in_the_heap_are_given_back():
    """Blocks below glibc's mmap threshold, freed between blocks still in use, are holes the
    heap keeps resident; release_memory returns their pages."""
    if _malloc_trim() is None:
        pytest.skip("no malloc_trim in this C library")
    proc = psutil.Process()
    freed, kept = [], []
    for _ in range(3000):  # 2 × 3,000 × 64 KiB, interleaved
        freed.append(bytearray(64 * 1024))
        kept.append(bytearray(64 * 1024))
    for block in freed:
        block[::4096] = b"\1" * len(block[::4096])  # touched: resident
    before = proc.memory_info().rss
    freed.clear()
    held = proc.memory_info().rss
    release_memory()
    after = proc.memory_info().rss
    assert held > before - 50 * 2**20  # freeing alone gave little back
    assert held - after > 100 * 2**20, (before, held, after)  # of ~190 MB freed
    assert len(kept) == 3000


def test_a_build_gives_memory_back_before_each_stage(monkeypatch):
    """run_build's stages (both engines share the wrapper) each start with a release."""
    calls: list[str] = []
    monkeypatch.setattr(service.build, "release_memory", lambda: calls.append("release"))
    stage = service.build._releasing(lambda name: calls.append(name))
    for name in ("read", "grade", "hotspots", "write"):
        stage(name)
    assert calls == ["release", "read", "release", "grade", "release", "hotspots",
                     "release", "write"]
    service.build._releasing(None)("grade")  # no progress asked: still released
    assert calls[-1] == "release"
