"""Every benchmark starts as docs/benchmarks.md writes its command (``--help`` only: no data).

Run from the repository with the venv's python, as a fresh shell would (no PYTHONPATH): a
module in ``benchmarks/`` that shadows a top-level package (``benchmarks/layers.py`` did)
or an import that only works under ``-m`` fails here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
SCRIPTS = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py") if p.stem != "__init__")
DOCUMENTED = sorted(set(re.findall(r"python -m benchmarks\.(\w+)", DOC)))


def _help(*command: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, *command, "--help"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_every_benchmark_is_documented_and_every_documented_one_exists() -> None:
    assert DOCUMENTED == SCRIPTS


@pytest.mark.parametrize("name", DOCUMENTED)
def test_documented_command_starts(name: str) -> None:
    done = _help("-m", f"benchmarks.{name}")
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


@pytest.mark.parametrize("name", SCRIPTS)
def test_runs_as_a_file_too(name: str) -> None:
    done = _help(f"benchmarks/{name}.py")
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
