"""The store interface: what ingest writes and the service reads, whichever backend.

Two implementations follow it: :mod:`service.store.embedded` (GeoParquet snapshots on
disk, nothing but pip) and :mod:`service.store.postgis` (PostGIS via GeoAlchemy2, the
production store). ``tests/`` runs the same suite against both. Where a method has a body
here, it is the embedded store's way (frames in memory); PostGIS overrides it with SQL.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date, datetime
from types import TracebackType
from typing import ClassVar

import numpy as np
import pandas as pd
import shapely

from geo.cells import from_strings, parents, points_to_cells
from layers import aggregate
from service.mvt import BUFFER, EXTENT, BBox, Tile, encode
from service.store.conform import check_layers_current, checked_columns, empty_table
from service.store.location import StoreKind, StoreLocation
from service.store.query import Condition, LayerQuery, condition_mask, isin, query_frame
from service.store.tables import ALL_TABLES, BATCHES, LAYER_SPECS, OFFICER_CELLS, TABLES, Table

#: Keys of a table's rows: a NumPy array of str, or a pandas (Arrow) string array.
Keys = np.ndarray | pd.api.extensions.ExtensionArray


@dataclass(frozen=True)
class StagedLayer:
    """A layer whose rows the workers of a build wrote in parts
    (:meth:`Store.stage_layer_part`), for :meth:`Store.write_layers` to put together.

    ``order`` holds, for each row of the whole layer in its order, the part the row was
    staged in; each part holds its rows in that same order. So the embedded store
    rebuilds the layer's row order exactly, streaming, never holding the layer whole
    (PostGIS keeps a layer as a set of rows: every read of it orders by ``fid``)."""

    token: str         # the build's staging token (names its parts)
    order: np.ndarray  # per row of the layer: its part, 0 … parts - 1

    @property
    def parts(self) -> int:
        return int(self.order.max()) + 1 if len(self.order) else 0

    @property
    def rows(self) -> int:
        return len(self.order)


@dataclass
class Batch:
    """One ingest call, written all-or-nothing.

    ``frames`` maps a table name of :data:`service.store.tables.TABLES` to its valid rows,
    with exactly that table's columns (geometry tables as GeoDataFrames in EPSG:4326 with
    a ``geometry`` column). ``officer_cells`` (officer_id, h3) replaces the cells of every
    officer it names. ``rejects`` has the columns of ``REJECTS`` except ``reject_id``.
    ``audit`` has the columns of ``AUDIT``: entries appended with the batch (what the batch
    changed in hazards and checks). ``expect`` maps a table to the (key, ``row_hash``) of
    stored rows the batch was checked against: if any of them changed meanwhile (a change
    through the service, another batch), the write raises :class:`ConflictError` and
    nothing lands, so checks made before the write (scopes, hazard transitions) still hold
    when it commits.
    """

    batch_id: str
    started_at: datetime
    files: list[str]
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    officer_cells: pd.DataFrame | None = None
    rejects: pd.DataFrame | None = None
    report: dict = field(default_factory=dict)
    audit: pd.DataFrame | None = None
    expect: dict[str, pd.DataFrame] = field(default_factory=dict)


@dataclass
class LayerBuild:
    """One ``riskmap build``: every layer computed from one data version under one rule set."""

    build_id: str
    built_at: datetime
    as_of: date
    rules_version: str
    rules_hash: str
    data_version: str
    report: dict = field(default_factory=dict)


@dataclass(frozen=True)
class User:
    """A user of the service. ``scope`` is an adcode (regulator, planner), an officer id
    (grid_officer), a park id (park_admin) or None (admin); the token is kept only as
    ``token_hash`` (see service/auth.py)."""

    user_id: str
    name: str
    role: str
    scope: str | None
    token_hash: str
    created_at: datetime
    disabled: bool = False


@dataclass(frozen=True)
class Session:
    """A browser session: the cookie holds a random id, the store only its keyed hash."""

    session_hash: str
    user_id: str
    created_at: datetime
    last_seen: datetime
    expires_at: datetime
    ended: bool = False


@dataclass(frozen=True)
class Change:
    """One change made through the service, applied as compare-and-set with its audit entry.

    ``expect`` None inserts a new row (``values`` is the whole row; ConflictError if the key
    exists); otherwise the row must hold ``expect`` now (ConflictError if not, MissingRow if
    absent) and ``values`` are written over it. Writers are serialised, so of two concurrent
    changes to one row only the first can win."""

    table: str
    key: str
    expect: dict | None
    values: dict
    actor: str
    action: str
    note: str | None = None
    county_adcode: str | None = None
    h3: str | None = None


@dataclass(frozen=True)
class Evidence:
    """A photo or file attached to a hazard as evidence of its rectification (its bytes are
    kept beside it, never under the uploaded name): who uploaded it, when (naive UTC) and the
    audit entry that records the upload."""

    evidence_id: str
    hazard_id: str
    filename: str
    media_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime
    audit_id: str | None = None


@dataclass
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __iadd__(self, other: UpsertCounts) -> UpsertCounts:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        return self


def _json_value(value: object, empty: object) -> object:
    """A stored JSON column's value (text in frames, already parsed from SQL)."""
    import json

    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return empty
    return json.loads(value) if isinstance(value, str) else value


class Store(ABC):
    """A place where ingested tables live. Every write is one transaction."""

    kind: ClassVar[StoreKind]
    h3_resolution: int

    @property
    @abstractmethod
    def url(self) -> str:
        """Where the store lives, fit to show: its directory, or its URL without the
        password."""

    @property
    def address(self) -> str:
        """Where to open this store again (its directory, or its URL with the password):
        what the workers of a Dask batch or build are given."""
        return self._location.target  # type: ignore[attr-defined]  # both stores set it

    @abstractmethod
    def write_batch(self, batch: Batch) -> dict[str, UpsertCounts]:
        """Upsert every frame keyed by its table key (a row whose ``row_hash`` is unchanged
        is left alone), replace the cells of the officers named, append the rejects and a
        batch record, then relink ``park_id``/``venue_id`` of equipment and units by
        spatial join (point intersects polygon; the smallest id wins when several do).
        All of it lands or none of it does. Returns counts per table."""

    def keys(self, table: str) -> pd.Index:
        """Keys of the rows already stored in ``table`` (for reference checks)."""
        key = self.spec(table).key
        values = self.read(table, [key])[key]
        if table == OFFICER_CELLS.name:
            values = values.drop_duplicates()
        return pd.Index(values, name=key)

    @abstractmethod
    def read(self, table: str, columns: list[str] | None = None) -> pd.DataFrame:
        """A whole table (GeoDataFrame for geometry tables; ``officer_cells``, ``rejects``
        and ``batches`` too)."""

    @abstractmethod
    def forget(self, table: str) -> None:
        """Drop what this store object keeps in memory of ``table`` (:meth:`read` caches
        a table per data version; the next read reads it again): for a caller done with
        a large table, such as the Dask build's driver once its partitions are planned."""

    def query_table(self, table: str, where: tuple[Condition, ...], order_by: str, *,
                    descending: bool = False, limit: int | None = None, offset: int = 0
                    ) -> tuple[pd.DataFrame, int]:
        """A page of a stored (not layer) table: the rows matching ``where``, ordered by
        ``order_by``, and how many match in all. This default filters the cached table;
        PostGIS puts the conditions, order and page in the SQL."""
        spec = self.spec(table)
        if order_by not in spec.column_names:
            raise ValueError(f"{table} has no column {order_by!r}")
        frame = self.read(table)
        mask = np.ones(len(frame), dtype=bool)
        for condition in where:
            mask &= condition_mask(frame, condition)
        hits = frame.loc[mask].sort_values(order_by, ascending=not descending, kind="stable")
        end = None if limit is None else offset + limit
        return hits.iloc[offset:end].reset_index(drop=True), len(hits)

    def lookup(self, table: str, column: str, values: tuple | list,
               columns: list[str] | None = None) -> pd.DataFrame:
        """The rows of ``table`` whose ``column`` is one of ``values``, in no particular
        order, with the columns ``read`` would return. For a request that needs a few rows
        of a large live table (hazards by id, checks of some units, one officer's cells).
        This default filters the cached whole table; PostGIS runs one indexed SELECT."""
        wanted = self.read_columns(table, columns)
        if column not in self.spec(table).column_names:
            raise ValueError(f"{table} has no column {column!r}")
        frame = self.read(table, list(dict.fromkeys([*wanted, column])))
        hits = frame.loc[isin(frame[column], values)] if len(values) else frame.iloc[:0]
        return hits[wanted].reset_index(drop=True)

    @abstractmethod
    def read_rows(self, table: str, keys: Keys, version: str) -> pd.DataFrame:
        """The rows of ``table`` keyed ``keys``, in the order of ``keys``, with every column
        :meth:`read` gives, as they were at data version ``version``: what a build's
        worker reads of its own partition. :class:`DataChanged` when the store cannot give
        that version any more (a batch landed since) or a key is gone."""

    @abstractmethod
    def cell_counts(self, resolution: int, table: str = "equipment") -> pd.DataFrame:
        """Rows per H3 cell at ``resolution`` (5, 6, 7 or the store's own): columns
        ``h3`` and ``count``, sorted by ``h3``."""

    @abstractmethod
    def data_version(self) -> str:
        """An opaque token that changes whenever a batch lands (for caches and ETags)."""

    # derived layers (``riskmap build``) --------------------------------------------------

    @abstractmethod
    def write_layers(self, frames: dict[str, pd.DataFrame], build: LayerBuild,
                     staged: dict[str, StagedLayer] | None = None) -> None:
        """Replace every layer and finding table of :mod:`layers.registry` at once with
        ``frames`` (conformed by :func:`conform_layer`) and the layers ``staged`` in parts
        by the build's workers (which it then drops), and record ``build``. Readers see
        the old build or the new one, never a mixture."""

    @abstractmethod
    def stage_layer_part(self, layer: str, token: str, part: int, frame: pd.DataFrame
                         ) -> int:
        """On a build's worker: keep part ``part`` of ``layer`` (a built frame, conformed
        here; its rows in the order the :class:`StagedLayer` will give) under the build's
        ``token`` until :meth:`write_layers` takes it; the rows staged. Nothing a reader
        sees changes."""

    @abstractmethod
    def drop_staged_layers(self, token: str) -> int:
        """Forget every part staged under ``token`` (a build that failed or was stopped);
        how many parts there were."""

    @abstractmethod
    def drop_stale_stages(self, before: datetime) -> list[str]:
        """Drop what builds and batches started before ``before`` staged and left (their
        driver was killed before it could); the tokens or batches dropped."""

    @abstractmethod
    def read_layer(self, layer: str, columns: list[str] | None = None) -> pd.DataFrame:
        """A layer of the build in force (empty, with its columns, before any build)."""

    @abstractmethod
    def layer_build(self) -> LayerBuild | None:
        """The build in force, or None before the first one."""

    def query_layer(self, query: LayerQuery) -> tuple[pd.DataFrame, int]:
        """The rows of a layer that ``query`` selects (a page, ordered by ``fid``) and the
        number matched. This default filters the whole layer in memory; PostGIS runs it as
        one SQL statement."""
        return query_frame(self.read_layer(query.layer), query)

    @abstractmethod
    def region_history(self, adcodes: str | list[str] | tuple[str, ...],
                       level: str | None = None) -> pd.DataFrame:
        """The kept indicators of regions ``adcodes`` (of admin ``level`` if given) at every
        build that wrote them, oldest build first: the columns of
        :data:`service.store.tables.REGION_HISTORY`, ``indicators`` a dict of the regions
        layer's numeric fields. Every build appends its rows with its layers (see
        :mod:`service.store.history`). The embedded store filters the history kept with
        its layers in memory; PostGIS runs one indexed SELECT."""

    # map tiles ---------------------------------------------------------------------------

    def layer_tile(self, layer: str, where: tuple[Condition, ...], tile: Tile, *,
                   cap: int | None, fields: tuple[tuple[str, str], ...]) -> bytes | None:
        """The MVT of the ``layer`` rows matching ``where`` in ``tile`` (one MVT layer named
        ``layer``; properties ``fid`` and ``fields``, (name, kind) pairs of the layer's
        fields; a cell layer's features carry their H3 cell as id), ``b""`` when none
        falls in it, None when more than ``cap`` do: the caller then aggregates instead, so
        a tile is never cut short. This default encodes with mapbox-vector-tile; PostGIS
        runs ``ST_AsMVT``."""
        pad = tile.size * BUFFER / EXTENT
        frame, matched = self.query_layer(LayerQuery(
            layer, where, tile.lonlat_bounds(pad), None,
            columns=(*(name for name, _ in fields), "h3")))
        if cap is not None and matched > cap:
            return None
        return encode(layer, frame, tile, cell_ids=LAYER_SPECS[layer].cells, fields=fields)

    def layer_cell_counts(self, layer: str, where: tuple[Condition, ...], resolution: int,
                          bbox: BBox | None, levels: tuple[str, ...]
                          ) -> tuple[np.ndarray, np.ndarray]:
        """Rows of ``layer`` matching ``where`` per H3 cell at ``resolution``, within
        ``bbox`` (lon/lat; None = everywhere): the cells (uint64, sorted) and a count matrix
        whose columns are all rows, then the rows of each of ``levels`` (values of the
        ``level`` field). Cells come from the ``h3`` field's parents, or from the points of
        a layer without one; rows with no cell are left out."""
        fields = LAYER_SPECS[layer].field_names
        wanted = tuple(c for c in ("h3", "level") if c in fields)
        if bbox is None:  # the whole scope: masked, not paged (a page is sorted by fid)
            frame = self.read_layer(layer, list(dict.fromkeys(
                [*wanted, *(c.column for c in where), "geometry"])))
            keep = np.array(frame.geometry.notna(), dtype=bool)
            for condition in where:
                keep &= condition_mask(frame, condition)
            frame = frame[keep]
        else:
            frame, _ = self.query_layer(LayerQuery(layer, where, bbox, None, columns=wanted))
            frame = frame[frame.geometry.notna()]
        if "h3" in fields:
            cells = parents(from_strings(frame["h3"]), resolution)
        else:
            geoms = frame.geometry.to_numpy()
            cells = points_to_cells(shapely.get_x(geoms), shapely.get_y(geoms), resolution)
        located = cells != 0
        up, inverse = np.unique(cells[located], return_inverse=True)
        counts = np.zeros((len(up), 1 + len(levels)), dtype=np.int64)
        np.add.at(counts[:, 0], inverse, 1)
        if levels:
            level = frame["level"].astype("string").to_numpy(dtype=object, na_value=None)
            for j, value in enumerate(levels, start=1):
                np.add.at(counts[:, j], inverse[level[located] == value], 1)
        return up, counts

    def risk_cell_sums(self, where: tuple[Condition, ...], bbox: BBox | None
                       ) -> tuple[np.ndarray, np.ndarray]:
        """The located equipment matching ``where`` within ``bbox`` (None = everywhere),
        summed per H3 cell at :data:`layers.aggregate.FINEST_RISK_RESOLUTION`: the cells
        (uint64, sorted, unique) and their sums (k × :data:`layers.aggregate.TOTAL_COLUMNS`),
        what a caller's risk cells are nested from."""
        rows = self.layer_points("equipment", where, bbox, aggregate.TOTAL_INPUTS)
        cells, totals, _ = aggregate.finest_totals(rows, aggregate.FINEST_RISK_RESOLUTION)
        return cells, totals

    def layer_points(self, layer: str, where: tuple[Condition, ...], bbox: BBox | None,
                     columns: tuple[str, ...]) -> pd.DataFrame:
        """``columns`` of the located ``layer`` rows (points) matching ``where`` within
        ``bbox`` (None = everywhere), with their ``lon`` and ``lat``: what indicators are
        computed from when a map needs them for a caller's rows only."""
        frame, _ = self.query_layer(LayerQuery(layer, where, bbox, None, columns=columns))
        located = frame[frame.geometry.notna()]
        out = pd.DataFrame(located.drop(columns=located.geometry.name)).reset_index(drop=True)
        out["lon"] = shapely.get_x(located.geometry.to_numpy())
        out["lat"] = shapely.get_y(located.geometry.to_numpy())
        return out

    # seeded tiles ------------------------------------------------------------------------

    def seeded_tile(self, key: str) -> bytes | None:
        """The bytes seeded for the tile whose ETag is ``key`` (:mod:`service.tile_seed`),
        or None when it was not seeded. Seeds belong to one build: a new build's tiles
        have other ETags, and writing a build drops the seeds of the one before."""
        return None

    def drop_seeded_tiles(self) -> None:  # noqa: B027 - a store without seeds has none
        """Forget every seeded tile: each is drawn again on its first request."""

    def add_seeded_tiles(self, build_id: str, tiles: list[tuple[str, bytes]]) -> int:
        """Keep ``tiles`` ((ETag, MVT bytes) pairs rendered from build ``build_id``) for
        :meth:`seeded_tile`; how many were added. ``SeedSuperseded`` when another build is
        in force by now: its tiles are not these."""
        raise NotImplementedError(f"{type(self).__name__} keeps no seeded tiles")

    # changes through the service ---------------------------------------------------------

    @abstractmethod
    def row(self, table: str, key: str) -> dict | None:
        """One stored row by key, as plain Python values, or None."""

    @abstractmethod
    def apply_change(self, change: Change) -> tuple[dict | None, dict]:
        """Apply ``change`` and append its audit entry in one transaction; returns the row
        before (None for an insert) and after."""

    # evidence of hazard rectification --------------------------------------------------

    @abstractmethod
    def add_evidence(self, evidence: Evidence, content: bytes, audit: dict | None = None
                     ) -> None:
        """Keep ``content`` as ``evidence`` and append ``audit`` (an entry with the columns
        of ``AUDIT``) to the trail, all or nothing. An upload is no data change: the data
        version stays. StoreError if the id is taken."""

    @abstractmethod
    def evidence_for(self, hazard_id: str) -> list[Evidence]:
        """The evidence kept for a hazard, oldest first."""

    @abstractmethod
    def evidence(self, evidence_id: str) -> tuple[Evidence, bytes] | None:
        """One evidence item and its bytes, or None."""

    # users -------------------------------------------------------------------------------

    @abstractmethod
    def add_user(self, user: User, actor: str = "cli") -> None:
        """Store a new user (StoreError if the id or the token hash is taken) and its
        ``user.add`` audit entry by ``actor``. A user change is no data change: the data
        version stays."""

    @abstractmethod
    def user_by_token_hash(self, token_hash: str) -> User | None:
        """The enabled user holding this token hash, or None."""

    @abstractmethod
    def users(self) -> list[User]:
        """Every user, by id."""

    @abstractmethod
    def disable_user(self, user_id: str, actor: str = "cli") -> None:
        """Refuse the user's token from now on (kept for the audit trail, never deleted),
        with a ``user.disable`` audit entry by ``actor``; StoreError if there is no such
        user. The data version stays."""

    # the audit trail ---------------------------------------------------------------------

    def query_audit(self, where: tuple[Condition, ...], *, since: datetime | None = None,
                    until: datetime | None = None, limit: int | None = None, offset: int = 0
                    ) -> tuple[pd.DataFrame, int]:
        """A page of the audit trail, newest first: the entries matching ``where`` with
        ``since <= at < until`` (naive UTC, as stored; None leaves that end open), user
        changes included, and how many match in all. This default filters in memory;
        PostGIS runs it as SQL."""
        frame = self._audit_frame()
        mask = np.ones(len(frame), dtype=bool)
        for condition in where:
            mask &= condition_mask(frame, condition)
        at = pd.to_datetime(frame["at"])
        if since is not None:
            mask &= (at >= pd.Timestamp(since)).fillna(False).to_numpy(dtype=bool)
        if until is not None:
            mask &= (at < pd.Timestamp(until)).fillna(False).to_numpy(dtype=bool)
        hits = frame.loc[mask].sort_values(["at", "audit_id"], ascending=False, kind="stable")
        end = None if limit is None else offset + limit
        return hits.iloc[offset:end].reset_index(drop=True), len(hits)

    def _audit_frame(self) -> pd.DataFrame:
        """The whole trail (the embedded store adds the user changes kept beside it)."""
        return self.read("audit")

    # browser sessions --------------------------------------------------------------------

    @abstractmethod
    def add_session(self, session: Session) -> None:
        """Store a new session (sessions that ended or expired may be dropped meanwhile)."""

    @abstractmethod
    def session_user(self, session_hash: str) -> tuple[Session, User] | None:
        """The session with this hash and its user, unless the session ended or the user
        is disabled (the caller checks the times)."""

    @abstractmethod
    def touch_session(self, session_hash: str, last_seen: datetime) -> None:
        """Record that the session was used (its idle time starts again)."""

    @abstractmethod
    def end_session(self, session_hash: str) -> None:
        """End the session (logout); a no-op for an unknown hash."""

    # existence and what the store holds (``riskmap info``) -----------------------------

    @staticmethod
    def why_missing(location: StoreLocation) -> str | None:
        """Why no store of this kind is at ``location`` (Chinese, then English), or None
        when there is one; asked without creating anything (see ``open_store``)."""
        return None

    @abstractmethod
    def size_bytes(self) -> int:
        """Space the store takes: bytes on disk, or the database's size."""

    def row_counts(self) -> dict[str, int]:
        """Rows of every stored table (not the layers), by table name."""
        return {name: len(self.read(name, [spec.key])) for name, spec in ALL_TABLES.items()}

    def has_data(self) -> bool:
        """Whether any ingested table holds a row (False for an empty store)."""
        counts = self.row_counts()
        return any(counts[name] for name in TABLES)

    def last_batch(self) -> dict | None:
        """The batch written last (``batch_id``, ``started_at``, ``finished_at``, ``files``,
        ``report``), or None before the first."""
        frame = self.read(BATCHES.name)
        if frame.empty:
            return None
        row = frame.sort_values(["finished_at", "batch_id"], kind="stable").iloc[-1]
        return {"batch_id": str(row["batch_id"]),
                "started_at": pd.Timestamp(row["started_at"]).to_pydatetime(),
                "finished_at": pd.Timestamp(row["finished_at"]).to_pydatetime(),
                "files": _json_value(row["files"], []),
                "report": _json_value(row["report"], {})}

    def info(self) -> dict:
        """What ``riskmap info`` shows: the store, its size, rows per table, users, the last
        batch, the build in force and whether its layers are stale (the data changed
        since, or another version of the layer registry made them)."""
        from service.store.errors import StaleLayers

        version = self.data_version()
        build = self.layer_build()
        stale, why = None, None
        if build is not None:
            try:
                check_layers_current(build)
            except StaleLayers as exc:
                stale, why = True, str(exc)
            else:
                stale = build.data_version != version
                why = "数据在生成后有变化 the data changed since the build" if stale else None
        users = self.users()
        return {
            "kind": self.kind, "url": self.url, "size_bytes": self.size_bytes(),
            "h3_resolution": self.h3_resolution, "data_version": version,
            "tables": self.row_counts(),
            "users": {"total": len(users), "enabled": sum(not u.disabled for u in users)},
            "last_batch": self.last_batch(),
            "build": None if build is None else {
                "build_id": build.build_id, "built_at": build.built_at, "as_of": build.as_of,
                "rules_version": build.rules_version, "rules_hash": build.rules_hash,
                "data_version": build.data_version},
            "stale": stale, "stale_reason": why,
        }

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections or locks."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # helpers shared by both implementations -------------------------------------------

    @staticmethod
    def cell_column(resolution: int, store_resolution: int) -> str:
        if resolution == store_resolution:
            return "h3"
        if resolution in (5, 6, 7):
            return f"h3_{resolution}"
        raise ValueError(
            f"H3 resolution {resolution} not stored (5, 6, 7 and {store_resolution} are)")

    @staticmethod
    def spec(table: str) -> Table:
        """The spec of any stored table (ValueError, not KeyError, for unknown names)."""
        try:
            return ALL_TABLES[table]
        except KeyError:
            raise ValueError(f"unknown table {table!r}") from None

    @staticmethod
    def empty_frame(table: str) -> pd.DataFrame:
        """``table`` with no rows, its columns in their canonical dtypes."""
        return empty_table(table)

    @staticmethod
    def read_columns(table: str, columns: list[str] | None) -> list[str]:
        """Columns ``read`` returns: all (geometry last) or the ones named, checked."""
        return checked_columns(Store.spec(table), columns, table)




