"""The store contract: the same assertions against the embedded store and PostGIS.

Every test takes ``store`` (or ``store_factory``), parametrised in conftest.py over both
implementations. A few checks at the end are about the embedded store's files only.
"""

from __future__ import annotations

import json
import os

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from service.store.base import Change, Store
from service.store.conform import pandas_dtype
from service.store.errors import ConflictError, MissingRow, ResolutionMismatchError, StoreError
from service.store.tables import ALL_TABLES

# Zhengzhou, with two overlapping parks, one venue and points in and out of them.
PARKS = {"P9": (113.60, 34.70, 113.70, 34.80), "P10": (113.65, 34.75, 113.75, 34.85)}
VENUES = {"V1": (113.62, 34.72, 113.64, 34.74)}
POINTS = [
    ("E1", 113.63, 34.73),   # in P9 and V1
    ("E2", 113.67, 34.77),   # in P9 and P10: "P10" < "P9" in code-point order
    ("E3", 113.72, 34.83),   # in P10 only
    ("E4", 113.90, 34.90),   # in nothing
    ("E5", 113.401, 34.801),  # in nothing
]


def _comparable(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """Sorted by key, geometry as WKB, so two reads can be compared exactly."""
    out = pd.DataFrame(frame).copy()
    if "geometry" in out.columns:
        out["geometry"] = shapely.to_wkb(np.asarray(frame.geometry.values, dtype=object),
                                         hex=True)
    return out.sort_values(key, ignore_index=True)


def _state(store: Store) -> dict[str, pd.DataFrame]:
    return {name: _comparable(store.read(name), spec.key) for name, spec in ALL_TABLES.items()
            if name != "officer_cells"} | {
        "officer_cells": store.read("officer_cells").sort_values(["officer_id", "h3"],
                                                                 ignore_index=True)}


def _assert_same_state(before: dict[str, pd.DataFrame], after: dict[str, pd.DataFrame]
                       ) -> None:
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name], obj=name)


def _first_batch(frames, batch_id: str = "b1"):
    return frames.batch(batch_id, {
        "equipment": frames.equipment(POINTS),
        "units": frames.units([("U1", 113.63, 34.73), ("U2", 113.95, 34.95)]),
        "parks": frames.polygons("parks", PARKS),
        "venues": frames.polygons("venues", VENUES),
    })


def _link(store: Store, table: str, column: str) -> dict[str, object]:
    frame = store.read(table)
    key = ALL_TABLES[table].key
    return {k: (None if pd.isna(v) else v) for k, v in zip(frame[key], frame[column],
                                                           strict=True)}


# upserts ---------------------------------------------------------------------------------------

def test_first_batch_inserts(store, frames):
    counts = store.write_batch(_first_batch(frames))
    assert {t: (c.inserted, c.updated, c.unchanged) for t, c in counts.items()} == {
        "equipment": (5, 0, 0), "units": (2, 0, 0), "parks": (2, 0, 0), "venues": (1, 0, 0)}
    equipment = store.read("equipment")
    assert sorted(equipment["registration_code"]) == ["E1", "E2", "E3", "E4", "E5"]
    assert set(equipment["batch_id"]) == {"b1"}
    batches = store.read("batches")
    assert list(batches["batch_id"]) == ["b1"]
    assert json.loads(batches["report"].iloc[0]) == {"batch_id": "b1", "note": "测试"}
    assert json.loads(batches["files"].iloc[0]) == ["b1.csv"]


def test_same_batch_again_changes_nothing(store, frames):
    store.write_batch(_first_batch(frames, "b1"))
    before = _state(store)
    counts = store.write_batch(_first_batch(frames, "b2"))
    assert all((c.inserted, c.updated) == (0, 0) for c in counts.values())
    assert counts["equipment"].unchanged == 5
    after = _state(store)
    # the rows are left as stored: batch_id, source_row and links included
    for name in ALL_TABLES:
        if name != "batches":
            pd.testing.assert_frame_equal(before[name], after[name], obj=name)
    assert list(after["batches"]["batch_id"]) == ["b1", "b2"]


def test_changed_row_is_updated(store, frames):
    store.write_batch(_first_batch(frames, "b1"))
    changed = frames.equipment(POINTS[:2])
    changed.loc[changed["registration_code"] == "E2", "status"] = "停用"
    changed["row_hash"] = frames.row_hash("equipment", changed)
    added = frames.equipment([("E6", 113.5, 34.5)])
    counts = store.write_batch(frames.batch("b2", {"equipment": pd.concat([changed, added])}))
    c = counts["equipment"]
    assert (c.inserted, c.updated, c.unchanged) == (1, 1, 1)
    stored = store.read("equipment").set_index("registration_code")
    assert stored.loc["E2", "status"] == "停用"
    assert stored.loc["E2", "batch_id"] == "b2"
    assert stored.loc["E1", "batch_id"] == "b1"
    assert stored.loc["E6", "batch_id"] == "b2"
    assert len(stored) == 6


def test_duplicate_keys_in_a_frame_last_wins(store, frames):
    first = frames.equipment([("E1", 113.6, 34.7)], status="在用")
    second = frames.equipment([("E1", 113.6, 34.7)], status="报废")
    counts = store.write_batch(frames.batch("b1", {"equipment": pd.concat([first, second])}))
    assert counts["equipment"].inserted == 1
    assert store.read("equipment")["status"].tolist() == ["报废"]


def test_keys(store, frames):
    assert list(store.keys("equipment")) == []
    store.write_batch(_first_batch(frames))
    assert sorted(store.keys("equipment")) == ["E1", "E2", "E3", "E4", "E5"]
    assert sorted(store.keys("parks")) == ["P10", "P9"]
    assert store.keys("units").name == "credit_code"


# reading ---------------------------------------------------------------------------------------

def _assert_typed(frame: pd.DataFrame, table: str) -> None:
    spec = ALL_TABLES[table]
    expected = [*spec.column_names, *(["geometry"] if spec.geometry else [])]
    assert list(frame.columns) == expected, table
    for name, abstract in spec.columns:
        assert str(frame[name].dtype) == pandas_dtype(abstract), (table, name, frame[name].dtype)
    if spec.geometry:
        assert isinstance(frame, gpd.GeoDataFrame)
        assert frame.geometry.name == "geometry"
        assert frame.crs.to_epsg() == 4326


def test_read_columns_and_dtypes(store, frames):
    for table in ALL_TABLES:  # first-ever read: empty but typed
        frame = store.read(table)
        assert frame.empty
        _assert_typed(frame, table)
    store.write_batch(frames.batch(
        "b1", {**_first_batch(frames).frames,
               "hazards": frames.table("hazards", [{"hazard_id": "H1",
                                                    "registration_code": "E1"}]),
               "checks": frames.table("checks", [{"check_id": "C1", "credit_code": "U1"}]),
               "officers": frames.table("officers", [{"officer_id": "O1"}])},
        officer_cells=frames.officer_cells({"O1": ["88409540d1fffff"]}),
        rejects=frames.rejects([{"file": "a.csv", "row": 3, "raw": '{"a": 1}'}])))
    # the tables only the service writes: a hazard moved on (audited) and a published draw
    store.apply_change(Change("hazards", "H1", {}, {"status": "整改中"}, actor="u1",
                              action="hazard.transition", county_adcode="410105"))
    store.apply_change(Change("draws", "SJ20261101ABCDEF12", None, {
        "region": "410100", "seed": "7", "params": '{"size": 1}', "result": "[]"},
        actor="u1", action="draw.create"))
    assert store.row("hazards", "H1")["status"] == "整改中"
    for table in ALL_TABLES:
        frame = store.read(table)
        assert len(frame) > 0, table
        _assert_typed(frame, table)
    subset = store.read("equipment", ["registration_code", "h3"])
    assert list(subset.columns) == ["registration_code", "h3"]
    assert str(subset["h3"].dtype) == "string"
    with_geometry = store.read("equipment", ["registration_code", "geometry"])
    assert isinstance(with_geometry, gpd.GeoDataFrame)
    with pytest.raises(ValueError):
        store.read("equipment", ["no_such_column"])
    with pytest.raises(ValueError):
        store.read("no_such_table")


def test_read_is_isolated_from_callers(store, frames):
    store.write_batch(_first_batch(frames))
    frame = store.read("equipment")
    frame.loc[:, "status"] = "报废"
    del frame["h3"]
    again = store.read("equipment")
    assert set(again["status"]) == {"在用"}
    assert "h3" in again.columns


def test_values_round_trip(store, frames):
    original = frames.equipment(
        [("E1", 113.123456789012, 34.987654321098)], address='含"引号",逗号\n和换行',
        unit_name="", insured=None, commissioned_on=None, flags="\\N", category="NULL")
    store.write_batch(frames.batch("b1", {"equipment": original}))
    stored = store.read("equipment").iloc[0]
    row = original.iloc[0]
    assert stored["address"] == row["address"]
    assert stored["unit_name"] == ""  # empty text is not null
    assert stored["flags"] == "\\N" and stored["category"] == "NULL"  # nor are these
    assert pd.isna(stored["insured"]) and pd.isna(stored["commissioned_on"])
    assert stored["lon"] == row["lon"] and stored["lat"] == row["lat"]
    assert stored["next_inspection_due"] == pd.Timestamp("2024-05-20")
    assert stored["updated_at"] == pd.Timestamp("2024-06-01 12:00:00")
    assert stored["row_hash"] == row["row_hash"]


def test_geometry_round_trip(store, frames):
    hole = shapely.Polygon([(113.0, 34.0), (113.5, 34.0), (113.5, 34.5), (113.0, 34.5)],
                           [[(113.1, 34.1), (113.2, 34.1), (113.2, 34.2), (113.1, 34.2)]])
    multi = shapely.MultiPolygon([hole, shapely.box(114.0, 35.0, 114.1, 35.1)])
    single = shapely.box(112.0, 33.0, 112.2, 33.2)  # a Polygon is stored as a MultiPolygon
    parks = frames.table("parks", [{"park_id": "P1", "geometry": multi},
                                   {"park_id": "P2", "geometry": single}])
    points = frames.equipment([("E1", 113.123456789012, 34.987654321098)])
    missing = frames.equipment([("E2", np.nan, np.nan)])
    store.write_batch(frames.batch("b1", {"parks": parks,
                                          "equipment": pd.concat([points, missing])}))
    stored = store.read("parks").set_index("park_id")
    assert shapely.equals_exact(stored.geometry["P1"], multi, tolerance=0)
    assert stored.geometry["P2"].geom_type == "MultiPolygon"
    assert shapely.equals_exact(stored.geometry["P2"], shapely.MultiPolygon([single]),
                                tolerance=0)
    equipment = store.read("equipment").set_index("registration_code")
    assert shapely.equals_exact(equipment.geometry["E1"],
                                shapely.Point(113.123456789012, 34.987654321098), tolerance=0)
    assert equipment.geometry["E2"] is None
    assert pd.isna(equipment.loc["E2", "h3"])


# officer cells and rejects ---------------------------------------------------------------------

def test_officer_cells_are_replaced_per_officer(store, frames):
    cells = frames.officer_cells({"O1": ["c1", "c2"], "O2": ["c3"]})
    store.write_batch(frames.batch("b1", officer_cells=cells))
    store.write_batch(frames.batch("b2", officer_cells=frames.officer_cells({"O1": ["c4"]})))
    stored = store.read("officer_cells").sort_values(["officer_id", "h3"])
    assert list(zip(stored["officer_id"], stored["h3"], strict=True)) == [
        ("O1", "c4"), ("O2", "c3")]
    assert sorted(store.keys("officer_cells")) == ["O1", "O2"]


def test_rejects_are_appended(store, frames):
    raw1 = {"设备注册代码": "E9", "经度": "abc"}
    first = frames.rejects([
        {"file": "a.csv", "row": 2, "kind": "equipment", "field": "lon", "code": "bad_float",
         "reason_zh": "经度不是数字", "reason_en": "lon is not a number", "value": "abc",
         "raw": json.dumps(raw1, ensure_ascii=False)},
        {"file": "a.csv", "row": 5, "kind": "equipment", "code": "missing", "raw": None},
    ])
    second = frames.rejects([{"file": "b.csv", "row": 7, "kind": "units", "raw": "[1, 2]"}])
    store.write_batch(frames.batch("b1", rejects=first))
    store.write_batch(frames.batch("b2", rejects=second))
    stored = store.read("rejects").sort_values("reject_id", ignore_index=True)
    assert len(stored) == 3
    assert stored["reject_id"].is_monotonic_increasing and stored["reject_id"].is_unique
    assert list(stored["batch_id"]) == ["b1", "b1", "b2"]
    assert list(stored["row"]) == [2, 5, 7]
    assert json.loads(stored["raw"].iloc[0]) == raw1
    assert pd.isna(stored["raw"].iloc[1])
    assert json.loads(stored["raw"].iloc[2]) == [1, 2]
    assert stored["reason_zh"].iloc[0] == "经度不是数字"


# relinking -------------------------------------------------------------------------------------

def test_relink_assigns_smallest_park_and_venue(store, frames):
    store.write_batch(_first_batch(frames))
    assert _link(store, "equipment", "park_id") == {
        "E1": "P9", "E2": "P10", "E3": "P10", "E4": None, "E5": None}
    assert _link(store, "equipment", "venue_id") == {
        "E1": "V1", "E2": None, "E3": None, "E4": None, "E5": None}
    assert _link(store, "units", "park_id") == {"U1": "P9", "U2": None}
    assert _link(store, "units", "venue_id") == {"U1": "V1", "U2": None}


def test_relink_when_parks_arrive_later_or_move(store, frames):
    store.write_batch(frames.batch("b1", {"equipment": frames.equipment(POINTS)}))
    assert set(_link(store, "equipment", "park_id").values()) == {None}
    store.write_batch(frames.batch("b2", {"parks": frames.polygons("parks", PARKS)}))
    assert _link(store, "equipment", "park_id")["E2"] == "P10"
    assert store.read("equipment").set_index("registration_code").loc["E2", "batch_id"] == "b1"
    # P10 moves away: E2 falls back to P9, E3 to nothing
    moved = frames.polygons("parks", {"P10": (114.0, 35.0, 114.1, 35.1)})
    store.write_batch(frames.batch("b3", {"parks": moved}))
    assert _link(store, "equipment", "park_id") == {
        "E1": "P9", "E2": "P9", "E3": None, "E4": None, "E5": None}
    # a new point in a later batch is linked against the stored parks
    store.write_batch(frames.batch("b4", {"equipment": frames.equipment(
        [("E7", 113.61, 34.71)])}))
    assert _link(store, "equipment", "park_id")["E7"] == "P9"


def test_relink_overrides_links_sent_by_the_caller(store, frames):
    store.write_batch(frames.batch("b1", {"parks": frames.polygons("parks", PARKS)}))
    sent = frames.equipment([("E1", 113.63, 34.73), ("E4", 113.90, 34.90)], park_id="BOGUS")
    store.write_batch(frames.batch("b2", {"equipment": sent}))
    assert _link(store, "equipment", "park_id") == {"E1": "P9", "E4": None}


# cells and versions ----------------------------------------------------------------------------

def test_cell_counts(store, frames):
    rng = np.random.default_rng(7)
    n = 300
    lon, lat = rng.uniform(113.0, 114.5, n), rng.uniform(34.0, 35.0, n)
    points = [(f"E{i}", float(x), float(y)) for i, (x, y) in enumerate(zip(lon, lat,
                                                                          strict=True))]
    points.append(("EX", np.nan, np.nan))  # unlocated: in no cell
    store.write_batch(frames.batch("b1", {"equipment": frames.equipment(points)}))
    equipment = store.read("equipment")
    for resolution in (5, 6, 7, 8):
        counts = store.cell_counts(resolution)
        assert list(counts.columns) == ["h3", "count"]
        assert counts["count"].sum() == n
        assert counts["h3"].tolist() == sorted(counts["h3"].tolist())
        assert str(counts["count"].dtype) == "int64"
        column = "h3" if resolution == 8 else f"h3_{resolution}"
        expected = equipment[column].value_counts()
        assert dict(zip(counts["h3"], counts["count"], strict=True)) == expected.to_dict()
    assert len(store.cell_counts(5)) < len(store.cell_counts(8))
    assert store.cell_counts(7, "units").empty
    with pytest.raises(ValueError):
        store.cell_counts(9)


def test_data_version_changes_only_when_a_batch_lands(store, frames):
    v0 = store.data_version()
    store.read("equipment")
    assert store.data_version() == v0
    store.write_batch(_first_batch(frames, "b1"))
    v1 = store.data_version()
    assert v1 != v0
    store.read("equipment")
    store.cell_counts(7)
    assert store.data_version() == v1
    with pytest.raises(StoreError):
        store.write_batch(_first_batch(frames, "b1"))  # the same batch id twice
    assert store.data_version() == v1
    store.write_batch(_first_batch(frames, "b2"))
    assert store.data_version() not in (v0, v1)


def test_failed_batch_leaves_store_exactly_as_before(store_factory, frames, monkeypatch):
    store = store_factory()
    store.write_batch(_first_batch(frames, "b1"))
    before, version = _state(store), store.data_version()

    upsert = store._upsert
    calls = []

    def fail_after_first_table(*args, **kwargs):
        calls.append(args)
        if len(calls) > 1:
            raise RuntimeError("disk on fire")
        return upsert(*args, **kwargs)

    monkeypatch.setattr(store, "_upsert", fail_after_first_table)
    changed = frames.equipment([("E1", 113.63, 34.73), ("E8", 113.5, 34.5)], status="停用")
    batch = frames.batch("b2", {
        "equipment": changed, "units": frames.units([("U3", 113.0, 34.0)]),
        "parks": frames.polygons("parks", {"P1": (113.0, 34.0, 114.0, 35.0)})},
        officer_cells=frames.officer_cells({"O1": ["c1"]}),
        rejects=frames.rejects([{"file": "x.csv", "row": 1}]))
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.write_batch(batch)
    assert len(calls) == 2
    assert store.data_version() == version
    _assert_same_state(before, _state(store))
    monkeypatch.undo()

    reopened = store_factory()
    assert reopened.data_version() == version
    _assert_same_state(before, _state(reopened))
    # and the store still takes the batch afterwards
    counts = reopened.write_batch(batch)
    assert counts["equipment"].updated == 1 and counts["equipment"].inserted == 1
    assert _link(reopened, "equipment", "park_id")["E1"] == "P1"


def test_resolution_mismatch(store_factory, frames):
    store = store_factory(8)
    store.write_batch(_first_batch(frames))
    with pytest.raises(ResolutionMismatchError, match=r"resolution 8.*resolution 9"):
        store_factory(9)
    assert store_factory(8).data_version() == store.data_version()


def test_open_store_by_url(store_factory, tmp_path):
    from service.store import open_store

    if store_factory.kind == "embedded":
        store = open_store(f"file:{tmp_path / 'by-url'}", create=True)
        assert type(store).__name__ == "EmbeddedStore"
    else:
        url = store_factory().url
        store = open_store(url.replace("postgresql+psycopg://", "postgresql://"))
        assert type(store).__name__ == "PostGISStore"
    try:
        assert store.data_version()
    finally:
        store.close()


# the embedded store's files --------------------------------------------------------------------

@pytest.fixture
def embedded(tmp_path):
    from service.store.embedded import EmbeddedStore

    return EmbeddedStore(tmp_path / "store")


def test_embedded_snapshots_are_pruned_and_linked(embedded, frames):
    for n in range(1, 5):
        embedded.write_batch(_first_batch(frames, f"b{n}"))
    snapshots = sorted(int(p.name) for p in (embedded.root / "snapshots").iterdir())
    assert snapshots == [3, 4]
    assert (embedded.root / "CURRENT").read_text().strip() == "4"
    # unchanged tables are hard links to the previous snapshot, not copies
    a = embedded.root / "snapshots" / "3" / "equipment.parquet"
    b = embedded.root / "snapshots" / "4" / "equipment.parquet"
    assert os.stat(a).st_ino == os.stat(b).st_ino
    meta = json.loads((embedded.root / "meta.json").read_text())
    assert meta["h3_resolution"] == 8
    # the files are GeoParquet that geopandas reads on its own
    parks = gpd.read_parquet(embedded.root / "snapshots" / "4" / "parks.parquet")
    assert parks.crs.to_epsg() == 4326 and len(parks) == 2


def test_embedded_crash_before_swap_keeps_previous_snapshot(embedded, frames, monkeypatch):
    from service.store import embedded as module
    from service.store.embedded import EmbeddedStore

    embedded.write_batch(_first_batch(frames, "b1"))
    before = _state(embedded)

    def crash(path, text):
        raise OSError("power cut")

    monkeypatch.setattr(module, "_atomic_write", crash)
    with pytest.raises(OSError, match="power cut"):
        embedded.write_batch(_first_batch(frames, "b2"))
    monkeypatch.undo()
    fresh = EmbeddedStore(embedded.root)
    assert fresh.data_version() == "1"
    _assert_same_state(before, _state(fresh))
    fresh.write_batch(_first_batch(frames, "b3"))  # cleans the orphan snapshot up
    assert sorted(p.name for p in (embedded.root / "snapshots").iterdir()) == ["1", "3"]


def test_embedded_writers_exclude_each_other(embedded, frames):
    from service.store.embedded import EmbeddedStore

    other = EmbeddedStore(embedded.root, lock_timeout=0.2)
    with embedded._locked(), pytest.raises(StoreError, match="lock"):
        other.write_batch(_first_batch(frames))
    other.write_batch(_first_batch(frames))
    assert embedded.data_version() == "1"


def test_big_first_load_then_incremental(store_factory, frames, monkeypatch):
    """PostGIS loads a big first batch without its indexes and builds them afterwards (the
    threshold is lowered here); the result must be the same as the ordinary path, indexes
    included, and a failure in that path must roll the dropped indexes back too."""
    if store_factory.kind == "postgis":
        from service.store import postgis

        monkeypatch.setattr(postgis, "BULK_ROWS", 2)
    store = store_factory()
    upsert = store._upsert

    def fail_on_units(tx, table, frame):
        if table == "units":
            raise RuntimeError("stop")
        return upsert(tx, table, frame)

    monkeypatch.setattr(store, "_upsert", fail_on_units)
    with pytest.raises(RuntimeError):
        store.write_batch(_first_batch(frames, "b0"))
    monkeypatch.setattr(store, "_upsert", upsert)
    counts = store.write_batch(_first_batch(frames, "b1"))
    assert counts["equipment"].inserted == 5
    assert _link(store, "equipment", "park_id")["E2"] == "P10"
    counts = store.write_batch(frames.batch("b2", {"equipment": frames.equipment(
        [("E1", 113.63, 34.73), ("E9", 113.61, 34.71)], status="停用")}))
    c = counts["equipment"]
    assert (c.inserted, c.updated, c.unchanged) == (1, 1, 0)
    assert _link(store, "equipment", "park_id")["E9"] == "P9"
    # a batch as big as the table: PostGIS merges it with the indexes dropped and rebuilt
    everything = frames.equipment([*POINTS, ("E9", 113.61, 34.71), ("E10", 113.62, 34.72)],
                                  status="报废")
    c = store.write_batch(frames.batch("b3", {"equipment": everything}))["equipment"]
    assert (c.inserted, c.updated, c.unchanged) == (1, 6, 0)
    assert set(store.read("equipment")["status"]) == {"报废"}
    assert _link(store, "equipment", "park_id")["E10"] == "P9"
    if store_factory.kind == "postgis":
        from sqlalchemy import text

        from service.store.postgis.models import MODELS

        with store.engine.connect() as conn:
            names = set(conn.execute(text(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'equipment'")).scalars())
        assert {i.name for i in MODELS["equipment"].__table__.indexes} <= names


def test_changes_compare_and_set_and_are_audited(store, frames):
    store.write_batch(frames.batch("b1", {**_first_batch(frames).frames, "hazards": frames.table(
        "hazards", [{"hazard_id": "H1", "registration_code": "E1", "status": "已登记"}])}))
    move = Change("hazards", "H1", {"status": "已登记"}, {"status": "整改中"}, actor="u1",
                  action="hazard.transition", note="更换钢丝绳", county_adcode="410105")
    before, after = store.apply_change(move)
    assert before["status"] == "已登记" and after["status"] == "整改中"
    with pytest.raises(ConflictError):  # the same move again: someone else already won
        store.apply_change(move)
    with pytest.raises(MissingRow):
        store.apply_change(Change("hazards", "NOPE", {"status": "已登记"}, {}, "u1", "x"))
    with pytest.raises(ConflictError):  # an insert of an existing key
        store.apply_change(Change("hazards", "H1", None, {"status": "已登记"}, "u1", "x"))
    audit = store.read("audit")
    assert len(audit) == 1 and audit["note"].iloc[0] == "更换钢丝绳"
    assert '"整改中"' in audit["after"].iloc[0] and audit["actor"].iloc[0] == "u1"
    if hasattr(store, "engine"):  # PostGIS: the trail refuses edits
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.execute(text("UPDATE audit SET note = 'x'"))


def test_a_disabled_user_is_refused_and_kept(store):
    from service.auth import Role, create_user, hash_token

    pepper = "test-pepper"
    user, token = create_user(store, name="网格员", role=Role.GRID_OFFICER, scope="WG1",
                              pepper=pepper, provinces=["410000"])
    assert store.user_by_token_hash(hash_token(token, pepper)).user_id == user.user_id
    store.disable_user(user.user_id)
    assert store.user_by_token_hash(hash_token(token, pepper)) is None
    kept = {u.user_id: u for u in store.users()}[user.user_id]  # kept for the audit trail
    assert kept.disabled and kept.token_hash == user.token_hash
    with pytest.raises(StoreError):
        store.disable_user("u-nobody")
