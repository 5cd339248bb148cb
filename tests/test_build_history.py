"""The kept history of builds (``region_history``), on both stores: every build appends its
region indicators with its layers, a failed build appends none, a build written again
replaces its own rows, and ``Store.region_history`` reads them oldest first."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime

import pandas as pd
import pytest
import shapely

from layers.registry import ALL, fingerprint
from service.store.base import LayerBuild, Store
from service.store.conform import empty_layer
from service.store.errors import StoreError
from service.store.tables import LAYER_TABLES, REGION_HISTORY

REGIONS = (("province", "410000", "河南省", None), ("city", "410100", "郑州市", "410000"),
           ("county", "410105", "金水区", "410100"), ("city", "419001", "济源市", "410000"),
           ("county", "419001", "济源市", "419001"))


def _regions(equipment: int, overdue_rate: float) -> pd.DataFrame:
    spec = ALL["regions"]
    rows = []
    for i, (level, adcode, name, parent) in enumerate(REGIONS):
        row: dict = {n: (0 if t == "int" else 0.0 if t == "float" else None)
                     for n, t in spec.fields}
        row.update(admin_level=level, adcode=adcode, name=name, parent_adcode=parent,
                   province_adcode="410000", equipment=equipment + i, n_red=i,
                   overdue_rate=overdue_rate, level="blue")
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.assign(geometry=[shapely.box(113, 34, 114, 35)] * len(frame))


def _insurance(coverage: float) -> pd.DataFrame:
    spec = ALL["insurance"]
    rows = []
    for level, adcode, name, parent in REGIONS:
        row: dict = {n: (0 if t == "int" else 0.0 if t == "float" else None)
                     for n, t in spec.fields}
        row.update(admin_level=level, adcode=adcode, name=name, parent_adcode=parent,
                   elevators=100, insured=int(100 * coverage), coverage=coverage)
        rows.append(row)
    return pd.DataFrame(rows).assign(geometry=[shapely.box(113, 34, 114, 35)] * len(rows))


def _frames(equipment: int, overdue_rate: float, coverage: float = 0.5
            ) -> dict[str, pd.DataFrame]:
    frames = {lid: empty_layer(lid) for lid in LAYER_TABLES}
    frames["regions"] = _regions(equipment, overdue_rate)
    frames["insurance"] = _insurance(coverage)
    return frames


def _build(build_id: str, as_of: date, hour: int) -> LayerBuild:
    return LayerBuild(build_id=build_id, built_at=datetime(2026, 12, 1, hour, tzinfo=UTC),
                      as_of=as_of, rules_version="default", rules_hash="abc123",
                      data_version="1", report={"registry": fingerprint()})


def test_empty_before_any_build(store: Store) -> None:
    history = store.region_history("410000")
    assert history.empty
    assert list(history.columns) == REGION_HISTORY.column_names


def test_each_build_keeps_its_region_indicators(store: Store) -> None:
    store.write_layers(_frames(100, 0.05, 0.4), _build("b2025", date(2025, 11, 1), 1))
    store.write_layers(_frames(120, 0.02, 0.6), _build("b2026", date(2026, 11, 1), 2))
    history = store.region_history("410100")
    assert list(history["build_id"]) == ["b2025", "b2026"]  # oldest first
    assert list(history.columns) == REGION_HISTORY.column_names
    first, second = history.iloc[0], history.iloc[1]
    assert first["level"] == "city" and first["name"] == "郑州市"
    assert first["parent_adcode"] == "410000" and first["rules_hash"] == "abc123"
    assert pd.Timestamp(first["as_of"]).date() == date(2025, 11, 1)
    assert pd.Timestamp(second["built_at"]) == pd.Timestamp(2026, 12, 1, 2)
    assert first["indicators"]["equipment"] == 101 and second["indicators"]["equipment"] == 121
    assert first["indicators"]["overdue_rate"] == pytest.approx(0.05)
    assert second["indicators"]["insurance_coverage"] == pytest.approx(0.6)
    assert "adcode" not in first["indicators"] and "level" not in first["indicators"]
    # several regions, and one level of a code that is both a city and a county (济源)
    both = store.region_history(["410000", "410105"])
    assert sorted(set(both["adcode"])) == ["410000", "410105"] and len(both) == 4
    jiyuan = store.region_history("419001")
    assert sorted(jiyuan["level"]) == ["city", "city", "county", "county"]
    county = store.region_history("419001", "county")
    assert list(county["level"]) == ["county", "county"]
    assert list(county["indicators"].map(lambda d: d["equipment"])) == [104, 124]


def test_a_build_written_again_replaces_its_rows(store: Store) -> None:
    """The embedded store may write a build again (its layers replaced in place): its
    history rows are replaced, not doubled. PostGIS refuses a build id twice (the key of
    layer_builds), and then keeps the history as it was."""
    build = _build("b1", date(2026, 11, 1), 1)
    store.write_layers(_frames(100, 0.05), build)
    if store.kind == "postgis":
        with pytest.raises(Exception, match="layer_builds_pkey"):
            store.write_layers(_frames(200, 0.05), build)
        expected = 100
    else:
        store.write_layers(_frames(200, 0.05), build)
        expected = 200
    history = store.region_history("410000")
    assert len(history) == 1 and history["indicators"].iloc[0]["equipment"] == expected


def test_a_failed_build_keeps_no_history(store: Store, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    store.write_layers(_frames(100, 0.05), _build("b1", date(2025, 11, 1), 1))
    frames = _frames(150, 0.01)
    del frames["warnings"]
    with pytest.raises(StoreError):
        store.write_layers(frames, _build("b2", date(2026, 11, 1), 2))
    # a failure in the middle of the write: the layers and the history stay as they were
    module = sys.modules[type(store).__module__]

    def broken(*args: object, **kwargs: object) -> pd.DataFrame:
        raise RuntimeError("disk full")

    monkeypatch.setattr(module, "history_rows", broken)
    with pytest.raises(RuntimeError):
        store.write_layers(_frames(150, 0.01), _build("b3", date(2026, 11, 1), 3))
    monkeypatch.undo()
    assert list(store.region_history("410000")["build_id"]) == ["b1"]
    assert store.layer_build().build_id == "b1"
    assert store.read_layer("regions")["equipment"].max() == 104


def test_history_survives_reopening(store_factory) -> None:
    store = store_factory()
    store.write_layers(_frames(100, 0.05), _build("b1", date(2025, 11, 1), 1))
    store.write_layers(_frames(110, 0.04), _build("b2", date(2026, 11, 1), 2))
    again = store_factory()
    assert list(again.region_history("410105")["build_id"]) == ["b1", "b2"]
