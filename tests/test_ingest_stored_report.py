"""The copy of an ingest report kept with its batch is bounded: its first reject and flag
records and how many there were, every count whole; the caller's report keeps them all.
(Uncapped, a 10M batch's flags made a 227 MB document, past PostgreSQL's jsonb limit: the
batch failed at its last statement.)"""

from __future__ import annotations

from pathlib import Path

import pytest

import service.ingest.report
from data.demo import generate
from service.ingest.pipeline import IngestOptions, ingest
from service.ingest.report import stored_copy
from tests.conftest import DEMO_AS_OF, DEMO_PROVINCES


def test_the_stored_copy_keeps_the_first_records_and_every_count():
    report = {"rejects": [{"row": i} for i in range(5)], "flags": [{"row": i} for i in range(3)],
              "rejected": 5, "flagged": 3, "by_flag": {"geocoded_county": 3}}
    out = stored_copy(report, limit=2)
    assert out["rejects"] == report["rejects"][:2] and out["rejects_total"] == 5
    assert out["flags"] == report["flags"][:2] and out["flags_total"] == 3
    assert (out["rejected"], out["flagged"], out["by_flag"]) == (5, 3, {"geocoded_county": 3})
    assert out["records_stored_limit"] == 2
    assert len(report["rejects"]) == 5 and len(report["flags"]) == 3  # the caller's, whole
    small = stored_copy({"rejects": [], "flags": [{"row": 1}]}, limit=2)
    assert small["flags"] == [{"row": 1}] and small["flags_total"] == 1


@pytest.mark.slow
def test_a_batch_keeps_a_bounded_copy_of_its_report(store, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(service.ingest.report, "STORED_RECORDS", 3)
    files = tmp_path / "demo"
    generate(province="河南省", equipment=2000, seed=5, out=files, as_of=DEMO_AS_OF)
    report = ingest(sorted(str(p) for p in files.iterdir() if p.name != "MANIFEST.json"),
                    store, IngestOptions(provinces=DEMO_PROVINCES))
    assert len(report["rejects"]) > 3 and len(report["flags"]) > 3
    kept = store.last_batch()["report"]
    assert len(kept["rejects"]) == 3 and kept["rejects_total"] == len(report["rejects"])
    assert len(kept["flags"]) == 3 and kept["flags_total"] == len(report["flags"])
    assert kept["flags"] == report["flags"][:3]
    assert kept["rejected"] == report["rejected"] and kept["by_flag"] == report["by_flag"]
