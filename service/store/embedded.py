"""The embedded store: GeoParquet snapshots in a directory, nothing but pip.

Layout::

    <root>/meta.json                    {"format": 1, "h3_resolution": 8}
    <root>/CURRENT                      id of the snapshot in force
    <root>/.lock                        fcntl lock held by the one writer
    <root>/snapshots/<n>/<table>.parquet

A batch writes the tables it changes into a new snapshot directory, hard-links the others
from the snapshot before it, then swaps ``CURRENT`` with :func:`os.replace`. Readers see the
old snapshot or the new one, never a mix, and a crash before the swap leaves the old one in
force (its half-written directory is removed by the next writer).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from service.store.arrow import ARROW_TYPES, frame_from_arrow, frame_to_arrow
from service.store.base import (
    Batch,
    Change,
    Evidence,
    Keys,
    LayerBuild,
    Session,
    StagedLayer,
    Store,
    UpsertCounts,
    User,
)
from service.store.changes import (
    audit_row,
    changed_row,
    plain,
    unmet_expectations,
    user_audit_row,
)
from service.store.conform import (
    check_layers_current,
    conform_frame,
    conform_layer,
    empty_layer,
    layer_columns,
    layer_table,
)
from service.store.errors import (
    ConflictError,
    DataChanged,
    ResolutionMismatchError,
    SeedSuperseded,
    StoreError,
)
from service.store.history import (
    as_adcodes,
    empty_history,
    finish,
    history_rows,
    select_rows,
)
from service.store.layer_parts import drop_stage, merge_parts, part_path, stale_tokens
from service.store.location import StoreLocation, store_location
from service.store.query import LayerQuery, query_frame, required_geometry
from service.store.tables import (
    ALL_TABLES,
    AUDIT,
    BATCHES,
    LAYER_TABLES,
    LINKS,
    OFFICER_CELLS,
    REGION_HISTORY,
    REJECTS,
    Table,
)

FORMAT = 1
HISTORY_FILE = "region_history.parquet"  # kept in each build's directory, whole
POINT_TABLES = ("equipment", "units")
USER_AUDIT = "user-audit.json"  # the audit entries of user changes and evidence uploads
SEEDS_FILE = "tile-seeds.sqlite"  # seeded tiles of a build, in its directory
EVIDENCE = "evidence"  # <root>/evidence/<hazard digest>/<evidence id>.{bin,json}


# The store ---------------------------------------------------------------------------------

@dataclass
class _Cached:
    snapshot: int
    frame: pd.DataFrame
    columns: frozenset[str]


@dataclass
class _Pending:
    """One batch being assembled in memory before it is published."""

    base: int
    batch_id: str
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)


class EmbeddedStore(Store):
    """GeoParquet snapshots on disk; one writer at a time, readers never blocked."""

    kind = "embedded"

    def __init__(self, address: str | Path | StoreLocation, h3_resolution: int = 8, *,
                 lock_timeout: float = 600.0) -> None:
        location = (address if isinstance(address, StoreLocation)
                    else store_location(address))
        if location.kind != "embedded":
            raise StoreError(f"not a store directory: {location.safe}")
        self._location = location
        self.root = location.path
        self.h3_resolution = h3_resolution
        self.lock_timeout = lock_timeout
        self._cache: dict[str, _Cached] = {}
        self._layer_cache: dict[str, tuple[int, pd.DataFrame]] = {}
        self._trees: dict[str, tuple[int, int, shapely.STRtree]] = {}
        self._build: tuple[int, LayerBuild] | None = None  # (CURRENT number, its record)
        self._seed_readers = threading.local()  # each thread's connection to a seed file
        try:
            (self.root / "snapshots").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store directory {self.root}: {exc}") from exc
        self._check_meta()

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self.root)!r}, h3_resolution={self.h3_resolution})"

    @property
    def url(self) -> str:
        return str(self.root)

    # reading ---------------------------------------------------------------------------

    def data_version(self) -> str:
        return str(self._current())

    def forget(self, table: str) -> None:
        self._cache.pop(table, None)

    def read(self, table: str, columns: list[str] | None = None) -> pd.DataFrame:
        """The table at the snapshot in force. Geometry tables return a GeoDataFrame when
        ``columns`` is None or names ``geometry``. Frames come from a per-table cache keyed
        by snapshot; pandas copy-on-write keeps callers from changing the cached one."""
        spec = self.spec(table)
        wanted = self.read_columns(table, columns)
        for _attempt in range(3):
            snapshot = self._current()
            try:
                frame = self._frame(spec, snapshot, wanted)
            except FileNotFoundError:
                continue  # a writer pruned the snapshot between reading CURRENT and the file
            return frame[wanted].copy(deep=False) if columns is not None else frame.copy(
                deep=False)
        raise StoreError(f"{table}: the snapshot kept changing while it was read")

    def read_rows(self, table: str, keys: Keys, version: str) -> pd.DataFrame:
        """From snapshot ``version`` itself (snapshots never change), while it is kept."""
        spec = self.spec(table)
        snapshot = int(version)
        path = self._snapshot_dir(snapshot) / f"{spec.name}.parquet"
        wanted = self.read_columns(table, None)
        if snapshot == 0:
            frame = self.empty_frame(spec.name)
        else:
            try:
                frame = _read_parquet(spec, path, wanted, filters=[
                    (spec.key, "in", pa.array(keys, type=pa.string()))])
            except FileNotFoundError as e:
                raise DataChanged(f"{table}: snapshot {snapshot} is no longer kept; a batch "
                                  "landed while the build read it") from e
        at = pd.Index(frame[spec.key]).get_indexer(pd.Index(keys))
        if (at < 0).any():
            raise DataChanged(f"{table}: {int((at < 0).sum())} rows the build planned for "
                              f"are not in snapshot {snapshot}")
        return frame.take(at).reset_index(drop=True)

    def cell_counts(self, resolution: int, table: str = "equipment") -> pd.DataFrame:
        column = self.cell_column(resolution, self.h3_resolution)
        cells = self.read(table, [column])[column]
        counts = cells.value_counts(dropna=True, sort=False).sort_index()
        return pd.DataFrame({"h3": counts.index.astype("string"),
                             "count": counts.to_numpy(dtype="int64")})

    def _frame(self, spec: Table, snapshot: int, wanted: list[str]) -> pd.DataFrame:
        cached = self._cache.get(spec.name)
        if cached and cached.snapshot == snapshot and cached.columns.issuperset(wanted):
            return cached.frame
        path = self._snapshot_dir(snapshot) / f"{spec.name}.parquet"
        if snapshot == 0 or not path.exists():
            if snapshot and not self._snapshot_dir(snapshot).exists():
                raise FileNotFoundError(path)
            frame = self.empty_frame(spec.name)
        else:
            frame = _read_parquet(spec, path, wanted)
        have = frozenset(frame.columns)
        if not cached or cached.snapshot != snapshot or have.issuperset(cached.columns):
            self._cache[spec.name] = _Cached(snapshot, frame, have)
        return frame

    # writing ---------------------------------------------------------------------------

    def write_batch(self, batch: Batch) -> dict[str, UpsertCounts]:
        with self._locked():
            pending = _Pending(self._current(), batch.batch_id)
            for table, expected in batch.expect.items():
                stored = self._stored(pending, table)
                changed = unmet_expectations(stored, self.spec(table).key, expected)
                if changed:
                    raise ConflictError(f"{changed} rows of {table} changed while the batch "
                                        "was being checked")
            counts: dict[str, UpsertCounts] = {}
            for table, frame in batch.frames.items():
                counts[table] = self._upsert(pending, table,
                                             conform_frame(table, frame, batch.batch_id))
            if batch.officer_cells is not None:
                self._replace_officer_cells(pending, batch.officer_cells)
            if batch.rejects is not None and len(batch.rejects):
                self._append_rejects(pending, batch)
            if batch.audit is not None and len(batch.audit):
                self._append(pending, AUDIT.name, conform_frame(AUDIT.name, batch.audit))
            self._relink(pending, counts)
            self._record_batch(pending, batch)
            snapshot = self._publish(pending)
            self._prune(snapshot, pending.base)
            self._remember(pending, snapshot)
        return counts

    def _stored(self, pending: _Pending, table: str) -> pd.DataFrame:
        """The table as the batch sees it: its own changes, else the base snapshot."""
        if table in pending.frames:
            return pending.frames[table]
        return self._frame(self.spec(table), pending.base, self.read_columns(table, None))

    def _upsert(self, pending: _Pending, table: str, new: pd.DataFrame) -> UpsertCounts:
        """Merge by key: a key stored with the same row_hash is left as it is."""
        key = self.spec(table).key
        old = self._stored(pending, table)
        if old.empty:
            if len(new):
                pending.frames[table] = new
            return UpsertCounts(inserted=len(new))
        pos = pd.Index(old[key]).get_indexer(new[key])
        exists = pos >= 0
        old_hash = old["row_hash"].array[pos[exists]]
        new_hash = new["row_hash"].array[exists]
        same = np.asarray((old_hash == new_hash).fillna(False), dtype=bool) | np.asarray(
            old_hash.isna() & new_hash.isna(), dtype=bool)
        updated = np.zeros(len(new), dtype=bool)
        updated[np.flatnonzero(exists)[~same]] = True
        inserted = ~exists
        counts = UpsertCounts(int(inserted.sum()), int(updated.sum()), int(same.sum()))
        if counts.inserted or counts.updated:
            keep = np.ones(len(old), dtype=bool)
            keep[pos[updated]] = False
            pending.frames[table] = pd.concat([old.loc[keep], new.loc[updated | inserted]],
                                              ignore_index=True)
        return counts

    def _replace_officer_cells(self, pending: _Pending, cells: pd.DataFrame) -> None:
        new = conform_frame(OFFICER_CELLS.name, cells).drop_duplicates(ignore_index=True)
        old = self._stored(pending, OFFICER_CELLS.name)
        if old.empty:
            pending.frames[OFFICER_CELLS.name] = new
            return
        kept = old.loc[~old["officer_id"].isin(new["officer_id"].unique()).to_numpy()]
        pending.frames[OFFICER_CELLS.name] = pd.concat([kept, new], ignore_index=True)

    def _append_rejects(self, pending: _Pending, batch: Batch) -> None:
        old = self._stored(pending, REJECTS.name)
        start = int(old["reject_id"].max()) + 1 if len(old) else 1
        rejects = batch.rejects.reset_index(drop=True).assign(
            reject_id=np.arange(start, start + len(batch.rejects), dtype=np.int64))
        new = conform_frame(REJECTS.name, rejects, batch.batch_id)
        pending.frames[REJECTS.name] = new if old.empty else pd.concat([old, new],
                                                                       ignore_index=True)

    def _append(self, pending: _Pending, table: str, rows: pd.DataFrame) -> None:
        """Append conformed rows to an append-only table (the audit trail)."""
        old = self._stored(pending, table)
        pending.frames[table] = rows if old.empty else pd.concat([old, rows],
                                                                 ignore_index=True)

    def _relink(self, pending: _Pending, counts: dict[str, UpsertCounts]) -> None:
        """Set park_id/venue_id by point-in-polygon: every row when the polygons changed,
        else only the rows this batch wrote (their batch_id is this batch's)."""
        for table in POINT_TABLES:
            frame = self._stored(pending, table)
            if frame.empty:
                continue
            fresh = (frame["batch_id"] == pending.batch_id).fillna(False).to_numpy()
            changed = frame
            for column, polygon_table in LINKS:
                polygons_changed = polygon_table in pending.frames and (
                    counts.get(polygon_table, UpsertCounts()).inserted
                    + counts.get(polygon_table, UpsertCounts()).updated) > 0
                scope = np.ones(len(frame), dtype=bool) if polygons_changed else fresh
                if not scope.any():
                    continue
                polygons = self._stored(pending, polygon_table)
                links = smallest_containing(changed.geometry[scope], polygons,
                                            self.spec(polygon_table).key)
                current = changed[column][scope]
                differs = ~(current.eq(links).fillna(False) | (current.isna() & links.isna()))
                if differs.any():
                    changed = changed.copy(deep=False)
                    changed.loc[scope, column] = links
            if changed is not frame:
                pending.frames[table] = changed

    def _record_batch(self, pending: _Pending, batch: Batch) -> None:
        old = self._stored(pending, BATCHES.name)
        if len(old) and (old["batch_id"] == batch.batch_id).any():
            raise StoreError(f"batch {batch.batch_id} was already written")
        row = pd.DataFrame({
            "batch_id": [batch.batch_id], "started_at": [batch.started_at],
            "finished_at": [datetime.now(UTC).replace(tzinfo=None)],
            "files": [json.dumps(batch.files, ensure_ascii=False)],
            "report": [json.dumps(batch.report, ensure_ascii=False, default=str)],
        })
        new = conform_frame(BATCHES.name, row)
        pending.frames[BATCHES.name] = new if old.empty else pd.concat([old, new],
                                                                       ignore_index=True)

    def _publish(self, pending: _Pending) -> int:
        """Write the changed tables into a new snapshot, link the rest, swap CURRENT."""
        snapshot = max([pending.base, *self._snapshot_ids()]) + 1
        staging = self.root / "snapshots" / f".{snapshot}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        previous = self._snapshot_dir(pending.base)
        for name, spec in ALL_TABLES.items():
            target = staging / f"{name}.parquet"
            if name in pending.frames:
                _write_parquet(spec, pending.frames[name], target)
            elif pending.base and (previous / f"{name}.parquet").exists():
                _link_or_copy(previous / f"{name}.parquet", target)
        _fsync_dir(staging)
        staging.rename(self._snapshot_dir(snapshot))
        _fsync_dir(self.root / "snapshots")
        _atomic_write(self.root / "CURRENT", f"{snapshot}\n")
        return snapshot

    def _prune(self, current: int, previous: int) -> None:
        """Keep the snapshot in force and the one it replaced; drop the rest, leftovers of
        crashes too (staging directories, snapshots whose CURRENT swap never happened)."""
        for snapshot in self._snapshot_ids():
            if snapshot not in (current, previous):
                shutil.rmtree(self._snapshot_dir(snapshot), ignore_errors=True)
        for leftover in (self.root / "snapshots").glob(".*.tmp"):
            shutil.rmtree(leftover, ignore_errors=True)

    def _remember(self, pending: _Pending, snapshot: int) -> None:
        """The writer already holds the new frames: cache them under the new snapshot."""
        for name, cached in list(self._cache.items()):
            if name not in pending.frames and cached.snapshot == pending.base:
                cached.snapshot = snapshot  # hard-linked, so the same content
        for name, frame in pending.frames.items():
            self._cache[name] = _Cached(snapshot, frame, frozenset(frame.columns))

    # derived layers ----------------------------------------------------------------------

    def write_layers(self, frames: dict[str, pd.DataFrame], build: LayerBuild,
                     staged: dict[str, StagedLayer] | None = None) -> None:
        """Write every layer into a new build directory and switch ``layers/CURRENT``; a
        layer staged in parts is merged into its file (:func:`merge_parts`)."""
        staged = staged or {}
        missing = [lid for lid in LAYER_TABLES if lid not in frames and lid not in staged]
        if missing:
            raise StoreError(f"a build must write every layer; missing {missing}")
        conformed = {lid: conform_layer(lid, frames[lid]) for lid in LAYER_TABLES
                     if lid not in staged}
        root = self.root / "layers"
        root.mkdir(exist_ok=True)
        with self._locked():
            previous = self._layers_current()
            number = max([previous, *_numbered(root)]) + 1
            staging = root / f".{number}.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            for lid in LAYER_TABLES:
                if lid in staged:
                    self._merge_staged(lid, staged[lid], staging / f"{lid}.parquet")
                else:
                    _write_parquet(LAYER_TABLES[lid], conformed[lid],
                                   staging / f"{lid}.parquet")
            # the kept history goes with the layers: the previous build's, plus this one's
            kept = self._read_history(previous)
            kept = kept[(kept["build_id"] != build.build_id).fillna(True).to_numpy(dtype=bool)]
            added = history_rows(conformed["regions"], build, conformed["insurance"])
            _write_parquet(REGION_HISTORY, added if kept.empty else pd.concat(
                [kept, added], ignore_index=True), staging / HISTORY_FILE)
            _atomic_write(staging / "build.json", json.dumps(
                _build_record(build), ensure_ascii=False, default=str) + "\n")
            _fsync_dir(staging)
            staging.rename(root / str(number))
            _fsync_dir(root)
            _atomic_write(root / "CURRENT", f"{number}\n")
            for old in _numbered(root):
                if old not in (number, previous):
                    shutil.rmtree(root / str(old), ignore_errors=True)
            self._layer_cache = {lid: (number, frame) for lid, frame in conformed.items()}
        for layer in staged.values():  # taken in: the parts go
            drop_stage(root, layer.token)

    def _merge_staged(self, layer: str, staged: StagedLayer, out: Path) -> None:
        root = self.root / "layers"
        paths = [part_path(root, staged.token, layer, k) for k in range(staged.parts)]
        spec = LAYER_TABLES[layer]
        schema = (pq.read_schema(paths[0]) if paths and paths[0].exists() else
                  frame_to_arrow(spec, conform_layer(layer, empty_layer(layer))).schema)
        merge_parts(paths, staged.order, schema, out)
        _fsync_file(out)

    def stage_layer_part(self, layer: str, token: str, part: int, frame: pd.DataFrame
                         ) -> int:
        path = part_path(self.root / "layers", token, layer, part)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        _write_parquet(LAYER_TABLES[layer], conform_layer(layer, frame), tmp)
        os.replace(tmp, path)  # a part is there whole or not at all
        return len(frame)

    def drop_staged_layers(self, token: str) -> int:
        return drop_stage(self.root / "layers", token)

    def drop_stale_stages(self, before: datetime) -> list[str]:
        tokens = stale_tokens(self.root / "layers", before)
        for token in tokens:
            drop_stage(self.root / "layers", token)
        return tokens

    def read_layer(self, layer: str, columns: list[str] | None = None) -> pd.DataFrame:
        wanted = layer_columns(layer, columns)
        for _attempt in range(3):
            number = self._layers_current()
            cached = self._layer_cache.get(layer)
            if cached and cached[0] == number:
                frame = cached[1]
            elif number == 0:
                frame = empty_layer(layer)
            else:
                path = self.root / "layers" / str(number) / f"{layer}.parquet"
                check_layers_current(self.layer_build())
                try:
                    frame = _read_parquet(layer_table(layer), path,
                                          layer_columns(layer, None))
                except FileNotFoundError:
                    continue  # a newer build pruned this one while it was read
                self._layer_cache[layer] = (number, frame)
            return frame[wanted].copy(deep=False) if columns is not None else frame.copy(
                deep=False)
        raise StoreError(f"layer {layer}: the build kept changing while it was read")

    def query_layer(self, query: LayerQuery) -> tuple[pd.DataFrame, int]:
        """With a bounding box (or a filter's ``S_INTERSECTS`` that every row must meet),
        candidates come from an STR-tree of the layer's geometries (built once per build),
        so a tile or a bbox page does not test every row."""
        table = layer_table(query.layer)
        frame = self.read_layer(query.layer, query.read_columns(table.column_names,
                                                                bool(table.geometry)))
        shape = required_geometry(query.filter)
        if (query.bbox is None and shape is None) or not isinstance(frame, gpd.GeoDataFrame) \
                or frame.empty:
            return query_frame(frame, query)
        number = self._layers_current()
        cached = self._trees.get(query.layer)
        if cached is None or cached[0] != number or cached[1] != len(frame):
            cached = (number, len(frame), shapely.STRtree(frame.geometry.to_numpy()))
            self._trees[query.layer] = cached
        hits = None
        for area in (None if query.bbox is None else shapely.box(*query.bbox), shape):
            if area is not None:
                found = cached[2].query(area, predicate="intersects")
                hits = found if hits is None else np.intersect1d(hits, found)
        # the filter is still evaluated on the candidates (it may hold more than this)
        return query_frame(frame.iloc[np.sort(hits)], replace(query, bbox=None))

    def region_history(self, adcodes: str | list[str] | tuple[str, ...],
                       level: str | None = None) -> pd.DataFrame:
        """From the history kept with the build in force, filtered in memory."""
        for _attempt in range(3):
            number = self._layers_current()
            try:
                frame = self._read_history(number)
            except FileNotFoundError:
                continue  # a newer build pruned this one while it was read
            return finish(select_rows(frame, as_adcodes(adcodes), level))
        raise StoreError("region history: the build kept changing while it was read")

    def _read_history(self, number: int) -> pd.DataFrame:
        """The history kept with build ``number`` (empty before the first, and for builds
        written before the history was kept)."""
        if number == 0:
            return empty_history()
        directory = self.root / "layers" / str(number)
        path = directory / HISTORY_FILE
        if not path.exists():
            if not directory.exists():
                raise FileNotFoundError(directory)
            return empty_history()
        return _read_parquet(REGION_HISTORY, path, REGION_HISTORY.column_names)

    def layer_build(self) -> LayerBuild | None:
        """The build ``CURRENT`` names; its record is parsed once per build."""
        number = self._layers_current()
        if number == 0:
            return None
        cached = self._build
        if cached is not None and cached[0] == number:
            return cached[1]
        path = self.root / "layers" / str(number) / "build.json"
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        build = LayerBuild(
            build_id=record["build_id"], built_at=datetime.fromisoformat(record["built_at"]),
            as_of=date.fromisoformat(record["as_of"]), rules_version=record["rules_version"],
            rules_hash=record["rules_hash"], data_version=record["data_version"],
            report=record.get("report", {}))
        self._build = (number, build)
        return build

    def _layers_current(self) -> int:
        try:
            return int((self.root / "layers" / "CURRENT").read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    # seeded tiles ------------------------------------------------------------------------

    def seeded_tile(self, key: str) -> bytes | None:
        """From the SQLite file kept in the build's directory (one per build: it goes when
        the build is pruned), read on a connection of this thread's own."""
        number = self._layers_current()
        path = self.root / "layers" / str(number) / SEEDS_FILE
        try:
            # the file's identity too: seeding again makes a new file, which an open
            # connection to the one it replaced would never see
            opened = (number, os.stat(path).st_ino)
        except FileNotFoundError:
            return None
        connections = self._seed_readers.__dict__.setdefault("by_file", {})
        conn = connections.get(opened)
        if conn is None:
            for old in connections.values():
                old.close()
            connections.clear()
            conn = connections[opened] = sqlite3.connect(path)
        try:
            row = conn.execute("SELECT data FROM tiles WHERE etag = ?", (key,)).fetchone()
        except sqlite3.Error:  # being created right now
            return None
        return None if row is None else bytes(row[0])

    def drop_seeded_tiles(self) -> None:
        """The build's seed file goes (readers holding it open finish on the old file)."""
        with self._locked():
            path = self.root / "layers" / str(self._layers_current()) / SEEDS_FILE
            for suffix in ("", "-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)

    def add_seeded_tiles(self, build_id: str, tiles: list[tuple[str, bytes]]) -> int:
        """Into the build's seed file (WAL: readers go on while seeds are added), under the
        writer's lock, only while ``build_id`` is in force."""
        if not tiles:
            return 0
        with self._locked():
            build = self.layer_build()
            if build is None or build.build_id != build_id:
                raise SeedSuperseded(f"build {build_id} is no longer in force")
            path = self.root / "layers" / str(self._layers_current()) / SEEDS_FILE
            with contextlib.closing(sqlite3.connect(path)) as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("CREATE TABLE IF NOT EXISTS tiles "
                             "(etag TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID")
                before = conn.total_changes
                with conn:
                    conn.executemany("INSERT OR IGNORE INTO tiles (etag, data) VALUES (?, ?)",
                                     tiles)
                return conn.total_changes - before

    # changes through the service ---------------------------------------------------------

    def row(self, table: str, key: str) -> dict | None:
        spec = self.spec(table)
        frame = self.read(table)
        hit = frame.loc[frame[spec.key] == key]
        if hit.empty:
            return None
        record = hit.iloc[0]
        return {c: plain(record[c]) for c in spec.column_names}

    def apply_change(self, change: Change) -> tuple[dict | None, dict]:
        spec = self.spec(change.table)
        with self._locked():
            pending = _Pending(self._current(), f"change:{change.action}")
            stored = self._stored(pending, change.table)
            hit = stored.loc[stored[spec.key] == change.key]
            before = None if hit.empty else {c: plain(hit.iloc[0][c])
                                             for c in spec.column_names}
            after = changed_row(spec, change, before)
            self._upsert(pending, change.table, conform_frame(
                change.table, pd.DataFrame([after]), after["batch_id"]))
            self._append(pending, AUDIT.name, conform_frame(
                AUDIT.name, pd.DataFrame([audit_row(change, before, after)])))
            snapshot = self._publish(pending)
            self._prune(snapshot, pending.base)
            self._remember(pending, snapshot)
        return before, after

    # evidence of hazard rectification ----------------------------------------------------
    # kept beside the snapshots (no data change): per hazard a folder named by a digest of
    # its id, per file its bytes (``<id>.bin``) and its record (``<id>.json``), each written
    # atomically, the record last, so a record always has its bytes; never the uploaded name

    def _evidence_dir(self, hazard_id: str) -> Path:
        digest = hashlib.sha256(hazard_id.encode()).hexdigest()[:24]
        return self.root / EVIDENCE / digest

    def add_evidence(self, evidence: Evidence, content: bytes, audit: dict | None = None
                     ) -> None:
        if not _EVIDENCE_ID.match(evidence.evidence_id):
            raise StoreError(f"invalid evidence id {evidence.evidence_id!r}")
        folder = self._evidence_dir(evidence.hazard_id)
        with self._locked():
            if self._evidence_record(evidence.evidence_id) is not None:
                raise StoreError(f"evidence {evidence.evidence_id} exists already")
            folder.mkdir(parents=True, exist_ok=True)
            _atomic_write_bytes(folder / f"{evidence.evidence_id}.bin", content)
            if audit is not None:
                self._append_user_audit(audit)
            _atomic_write(folder / f"{evidence.evidence_id}.json", json.dumps(
                {**evidence.__dict__, "uploaded_at": evidence.uploaded_at.isoformat()},
                ensure_ascii=False) + "\n")

    def evidence_for(self, hazard_id: str) -> list[Evidence]:
        folder = self._evidence_dir(hazard_id)
        found = [_evidence(path) for path in folder.glob("*.json")] if folder.is_dir() else []
        found = [e for e in found if e.hazard_id == hazard_id]
        return sorted(found, key=lambda e: (e.uploaded_at, e.evidence_id))

    def evidence(self, evidence_id: str) -> tuple[Evidence, bytes] | None:
        path = self._evidence_record(evidence_id)
        if path is None:
            return None
        return _evidence(path), path.with_suffix(".bin").read_bytes()

    def _evidence_record(self, evidence_id: str) -> Path | None:
        if not _EVIDENCE_ID.match(evidence_id):
            return None
        return next((self.root / EVIDENCE).glob(f"*/{evidence_id}.json"), None)

    # users -------------------------------------------------------------------------------

    def add_user(self, user: User, actor: str = "cli") -> None:
        with self._locked():
            users = self.users()
            if any(u.user_id == user.user_id or u.token_hash == user.token_hash for u in users):
                raise StoreError(f"user {user.user_id} or its token exists already")
            self._append_user_audit(user_audit_row("user.add", user, actor))
            _atomic_write(self.root / "users.json", json.dumps(
                [_user_record(u) for u in [*users, user]], ensure_ascii=False, indent=1) + "\n")

    def disable_user(self, user_id: str, actor: str = "cli") -> None:
        with self._locked():
            users = self.users()
            found = [u for u in users if u.user_id == user_id]
            if not found:
                raise StoreError(f"no user {user_id}")
            self._append_user_audit(user_audit_row("user.disable", found[0], actor))
            users = [replace(u, disabled=True) if u.user_id == user_id else u for u in users]
            _atomic_write(self.root / "users.json", json.dumps(
                [_user_record(u) for u in users], ensure_ascii=False, indent=1) + "\n")

    # user changes are no data changes: their audit entries live beside the snapshots, in
    # ``user-audit.json`` (written before the change, under the writer's lock), so the data
    # version, and with it the layers' freshness, stays

    def _user_audit(self) -> list[dict]:
        try:
            return json.loads((self.root / USER_AUDIT).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []

    def _append_user_audit(self, entry: dict) -> None:
        entries = [*self._user_audit(), {**entry, "at": entry["at"].isoformat()}]
        _atomic_write(self.root / USER_AUDIT, json.dumps(entries, ensure_ascii=False,
                                                         indent=0) + "\n")

    def _audit_frame(self) -> pd.DataFrame:
        trail = self.read(AUDIT.name)
        users = self._user_audit()
        if not users:
            return trail
        kept = conform_frame(AUDIT.name, pd.DataFrame(users).assign(
            at=lambda f: pd.to_datetime(f["at"])))
        return pd.concat([trail, kept], ignore_index=True) if len(trail) else kept

    def user_by_token_hash(self, token_hash: str) -> User | None:
        for user in self.users():
            if hmac.compare_digest(user.token_hash, token_hash) and not user.disabled:
                return user
        return None

    def users(self) -> list[User]:
        try:
            records = json.loads((self.root / "users.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        return sorted((User(**{**r, "created_at": datetime.fromisoformat(r["created_at"])})
                       for r in records), key=lambda u: u.user_id)

    # browser sessions --------------------------------------------------------------------

    def add_session(self, session: Session) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        with self._locked():
            kept = [s for s in self._sessions() if not s.ended and s.expires_at > now]
            self._write_sessions([*kept, session])

    def session_user(self, session_hash: str) -> tuple[Session, User] | None:
        found = next((s for s in self._sessions()
                      if hmac.compare_digest(s.session_hash, session_hash)), None)
        if found is None or found.ended:
            return None
        user = next((u for u in self.users() if u.user_id == found.user_id), None)
        return None if user is None or user.disabled else (found, user)

    def touch_session(self, session_hash: str, last_seen: datetime) -> None:
        self._update_sessions(session_hash, lambda s: replace(s, last_seen=last_seen))

    def end_session(self, session_hash: str) -> None:
        self._update_sessions(session_hash, lambda s: replace(s, ended=True))

    def _update_sessions(self, session_hash: str, change: Callable[[Session], Session]
                         ) -> None:
        with self._locked():
            sessions = self._sessions()
            if any(s.session_hash == session_hash for s in sessions):
                self._write_sessions([change(s) if s.session_hash == session_hash else s
                                      for s in sessions])

    def _sessions(self) -> list[Session]:
        try:
            records = json.loads((self.root / "sessions.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        times = ("created_at", "last_seen", "expires_at")
        return [Session(**{**r, **{t: datetime.fromisoformat(r[t]) for t in times}})
                for r in records]

    def _write_sessions(self, sessions: list[Session]) -> None:
        records = [{**s.__dict__, **{t: getattr(s, t).isoformat() for t in
                                     ("created_at", "last_seen", "expires_at")}}
                   for s in sessions]
        _atomic_write(self.root / "sessions.json", json.dumps(records, indent=0) + "\n")

    # existence and size ----------------------------------------------------------------

    @staticmethod
    def why_missing(location: StoreLocation) -> str | None:
        """No directory, or one without the store's ``meta.json``."""
        root = location.path
        if not root.exists():
            return "目录不存在 the directory does not exist"
        if not root.is_dir():
            return "不是目录 not a directory"
        if not (root / "meta.json").is_file():
            return "目录中没有 riskmap 存储 no riskmap store in it (no meta.json)"
        return None

    def size_bytes(self) -> int:
        """Bytes of every file under the directory, a hard-linked file once."""
        seen: set[tuple[int, int]] = set()
        total = 0
        for path in self.root.rglob("*"):
            with contextlib.suppress(FileNotFoundError):  # pruned while walked
                stat = path.lstat()
                if path.is_file() and (stat.st_dev, stat.st_ino) not in seen:
                    seen.add((stat.st_dev, stat.st_ino))
                    total += stat.st_size
        return total

    def row_counts(self) -> dict[str, int]:
        """From the Parquet footers of the snapshot in force (no table is read)."""
        for _attempt in range(3):
            snapshot = self._current()
            directory = self._snapshot_dir(snapshot)
            try:
                counts = {name: pq.read_metadata(directory / f"{name}.parquet").num_rows
                          if snapshot and (directory / f"{name}.parquet").exists() else 0
                          for name in ALL_TABLES}
            except FileNotFoundError:
                continue
            if not snapshot or directory.exists():
                return counts
            # a writer pruned the snapshot while it was counted: count the new one
        return super().row_counts()

    # files -----------------------------------------------------------------------------

    def _current(self) -> int:
        try:
            return int((self.root / "CURRENT").read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    def _snapshot_dir(self, snapshot: int) -> Path:
        return self.root / "snapshots" / str(snapshot)

    def _snapshot_ids(self) -> list[int]:
        return [int(p.name) for p in (self.root / "snapshots").iterdir() if p.name.isdigit()]

    def _check_meta(self) -> None:
        path = self.root / "meta.json"
        if not path.exists():
            with self._locked():
                if not path.exists():
                    _atomic_write(path, json.dumps(
                        {"format": FORMAT, "h3_resolution": self.h3_resolution}) + "\n")
        meta = json.loads(path.read_text())
        if meta.get("h3_resolution") != self.h3_resolution:
            raise ResolutionMismatchError(
                f"the store at {self.root} holds H3 cells at resolution "
                f"{meta.get('h3_resolution')}, but resolution {self.h3_resolution} is "
                f"configured; set RISKMAP_H3_RESOLUTION={meta.get('h3_resolution')} or "
                "ingest into a new store")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive writer lock (fcntl.flock) so two ingests cannot interleave."""
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StoreError(
                            f"another writer holds the lock on {self.root} "
                            f"(waited {self.lock_timeout:.0f} s)") from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock


def smallest_containing(points: gpd.GeoSeries, polygons: gpd.GeoDataFrame, key: str
                        ) -> pd.Series:
    """Per point, the smallest ``key`` of the polygons it intersects (<NA> when none)."""
    out = pd.Series(pd.NA, index=points.index, dtype="string")
    located = points[points.notna().to_numpy() & ~points.is_empty.to_numpy()]
    if located.empty or polygons.empty:
        return out
    joined = gpd.sjoin(gpd.GeoDataFrame(geometry=located), polygons[[key, "geometry"]],
                       how="inner", predicate="intersects")
    if not joined.empty:
        best = joined.groupby(level=0)[key].min()
        out.loc[best.index] = best.astype("string")
    return out


def _numbered(directory: Path) -> list[int]:
    return [int(p.name) for p in directory.iterdir() if p.name.isdigit()]


def _user_record(user: User) -> dict:
    return {**user.__dict__, "created_at": user.created_at.isoformat()}


def _build_record(build: LayerBuild) -> dict:
    return {"build_id": build.build_id, "built_at": build.built_at.isoformat(),
            "as_of": build.as_of.isoformat(), "rules_version": build.rules_version,
            "rules_hash": build.rules_hash, "data_version": build.data_version,
            "report": build.report}


def _read_parquet(spec: Table, path: Path, wanted: list[str],
                  filters: list | None = None) -> pd.DataFrame:
    names = [c for c in wanted if c != "geometry"]
    with_geometry = spec.geometry is not None and "geometry" in wanted
    # a column added to the spec after the file was written reads as nulls
    present = set(pq.read_schema(path).names)
    missing = [c for c in names if c not in present]
    # one chunk per column: taking rows from many-chunk Arrow strings costs ~10 ms a column
    data = pq.read_table(path, columns=[*(c for c in names if c in present),
                                        *(["geometry"] if with_geometry else [])],
                         filters=filters).combine_chunks()
    for column in missing:
        data = data.add_column(names.index(column), column, pa.nulls(
            data.num_rows, ARROW_TYPES[spec.type_of(column)]))
    if not with_geometry:
        return frame_from_arrow(spec, data)
    geometry = data.column("geometry").to_numpy(zero_copy_only=False)
    return frame_from_arrow(spec, data.drop_columns(["geometry"]), geometry)


def _write_parquet(spec: Table, frame: pd.DataFrame, path: Path) -> None:
    pq.write_table(frame_to_arrow(spec, frame), path, compression="snappy")
    _fsync_file(path)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)  # filesystems without hard links


_EVIDENCE_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


def _evidence(path: Path) -> Evidence:
    record = json.loads(path.read_text(encoding="utf-8"))
    return Evidence(**{**record, "uploaded_at": datetime.fromisoformat(record["uploaded_at"])})


def _atomic_write_bytes(path: Path, content: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(content)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
