"""The store interface: what ingest writes and the service reads, whichever backend.

Two implementations follow it: :mod:`service.store.embedded` (GeoParquet snapshots on
disk, nothing but pip) and :mod:`service.store.postgis` (PostGIS via GeoAlchemy2, the
production store). ``tests/`` runs the same suite against both.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from types import TracebackType

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers.registry import fingerprint as registry_fingerprint
from service.store.query import Condition, LayerQuery, condition_mask, isin, query_frame
from service.store.tables import (
    ALL_TABLES,
    LAYER_SPECS,
    LAYER_TABLES,
    OFFICER_CELLS,
    TABLES,
    Table,
)


class StoreError(RuntimeError):
    """A store could not be opened or written (bad URL, schema mismatch, lock)."""


class StaleLayers(StoreError):
    """The layers in force were built by another version of the registry."""


class ConflictError(StoreError):
    """A change whose row no longer holds what the caller last saw (someone else won)."""


class MissingRow(LookupError):
    """A change to a row that does not exist."""


class ResolutionMismatchError(StoreError):
    """The store was built at another H3 resolution than the one configured."""


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


class Store(ABC):
    """A place where ingested tables live. Every write is one transaction."""

    h3_resolution: int

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
    def cell_counts(self, resolution: int, table: str = "equipment") -> pd.DataFrame:
        """Rows per H3 cell at ``resolution`` (5, 6, 7 or the store's own): columns
        ``h3`` and ``count``, sorted by ``h3``."""

    @abstractmethod
    def data_version(self) -> str:
        """An opaque token that changes whenever a batch lands (for caches and ETags)."""

    # derived layers (``riskmap build``) --------------------------------------------------

    @abstractmethod
    def write_layers(self, frames: dict[str, pd.DataFrame], build: LayerBuild) -> None:
        """Replace every layer and finding table of :mod:`layers.registry` at once with
        ``frames`` (conformed by :func:`conform_layer`) and record ``build``. Readers see
        the old build or the new one, never a mixture."""

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

    # changes through the service ---------------------------------------------------------

    @abstractmethod
    def row(self, table: str, key: str) -> dict | None:
        """One stored row by key, as plain Python values, or None."""

    @abstractmethod
    def apply_change(self, change: Change) -> tuple[dict | None, dict]:
        """Apply ``change`` and append its audit entry in one transaction; returns the row
        before (None for an insert) and after."""

    # users -------------------------------------------------------------------------------

    @abstractmethod
    def add_user(self, user: User) -> None:
        """Store a new user (StoreError if the id or the token hash is taken)."""

    @abstractmethod
    def user_by_token_hash(self, token_hash: str) -> User | None:
        """The enabled user holding this token hash, or None."""

    @abstractmethod
    def users(self) -> list[User]:
        """Every user, by id."""

    @abstractmethod
    def disable_user(self, user_id: str) -> None:
        """Refuse the user's token from now on (kept for the audit trail, never deleted);
        StoreError if there is no such user."""

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
    def read_columns(table: str, columns: list[str] | None) -> list[str]:
        """Columns ``read`` returns: all (geometry last) or the ones named, checked."""
        spec = Store.spec(table)
        allowed = [*spec.column_names, *(["geometry"] if spec.geometry else [])]
        if columns is None:
            return allowed
        unknown = [c for c in columns if c not in allowed]
        if unknown:
            raise ValueError(f"{table} has no columns {unknown}")
        return list(columns)

    @staticmethod
    def empty_frame(table: str) -> pd.DataFrame:
        spec = ALL_TABLES[table]
        frame = pd.DataFrame({c: pd.Series(dtype=_PANDAS_DTYPES[t]) for c, t in spec.columns})
        if spec.geometry:
            return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs=4326))
        return frame


_PANDAS_DTYPES = {
    "text": "string", "float": "float64", "int": "Int64", "bool": "boolean",
    "date": "datetime64[s]", "timestamp": "datetime64[us]", "json": "string",
}


def pandas_dtype(abstract: str) -> str:
    return _PANDAS_DTYPES[abstract]


def conform_frame(table: str, frame: pd.DataFrame, batch_id: str | None = None) -> pd.DataFrame:
    """``frame`` with exactly the table's columns, in order, in the canonical dtypes, one row
    per key (the last wins) and geometry in EPSG:4326 (polygons promoted to multipolygons).

    Both stores write through this so that they store, hash-compare and return the same
    values whatever dtypes a caller built. ``batch_id`` stamps the rows: a stored row's
    ``batch_id`` always names the batch that last wrote it (relinking relies on it).
    """
    spec = ALL_TABLES[table]
    missing = [c for c in spec.column_names if c not in frame.columns]
    if missing:
        raise StoreError(f"{table}: missing columns {missing}")
    ingested = table in TABLES  # bookkeeping tables have no key duties here
    if ingested and frame[spec.key].isna().any():
        raise StoreError(f"{table}: {int(frame[spec.key].isna().sum())} rows without "
                         f"{spec.key}")
    columns = {c: _as_dtype(frame[c], t) for c, t in spec.columns}
    out = pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))
    if batch_id is not None and "batch_id" in out.columns:
        out["batch_id"] = pd.Series(batch_id, index=out.index, dtype="string")
    if spec.geometry:
        out = gpd.GeoDataFrame(out, geometry=_geometry_of(frame, spec.geometry), crs=4326)
    if ingested:
        dup = out[spec.key].duplicated(keep="last").to_numpy()
        if dup.any():
            out = out.loc[~dup].reset_index(drop=True)
    return out


def _as_dtype(col: pd.Series, abstract: str) -> pd.Series:
    target = _PANDAS_DTYPES[abstract]
    col = col.reset_index(drop=True)
    if str(col.dtype) == target:
        return col
    if abstract == "float":
        return pd.Series(pd.to_numeric(col).to_numpy(dtype="float64", na_value=np.nan))
    if abstract in ("date", "timestamp"):
        values = pd.to_datetime(col)
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        if abstract == "date":
            values = values.dt.normalize()
        return values.astype(target)
    return col.astype(target)


def _geometry_of(frame: pd.DataFrame, kind: str) -> gpd.GeoSeries:
    """The frame's geometry in EPSG:4326; points fall back to lon/lat."""
    if isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame.columns:
        geo = frame.geometry
    elif "geometry" in frame.columns:
        geo = gpd.GeoSeries(frame["geometry"], crs=4326)
    elif kind == "point":
        geo = gpd.GeoSeries(gpd.points_from_xy(frame["lon"], frame["lat"]), crs=4326)
    else:
        raise StoreError("polygon table without a geometry column")
    if geo.crs is None:
        geo = geo.set_crs(4326)
    elif geo.crs.to_epsg() != 4326:
        geo = geo.to_crs(4326)
    values = np.asarray(geo.values, dtype=object)
    if kind == "multipolygon":
        single = shapely.get_type_id(values) == shapely.GeometryType.POLYGON
        if single.any():
            values = values.copy()
            values[single] = shapely.multipolygons(values[single],
                                                   indices=np.arange(int(single.sum())))
    elif kind == "point":
        values = values.copy()
        # points_from_xy turns missing lon/lat into POINT (NaN NaN); empty and NaN points
        # have NaN bounds: store them all as null
        if len(values):
            values[np.isnan(shapely.bounds(values)[:, 0])] = None
    return gpd.GeoSeries(values, index=pd.RangeIndex(len(values)), crs=4326)


def unmet_expectations(stored: pd.DataFrame, key: str, expect: pd.DataFrame) -> int:
    """How many of ``expect`` (``key``, ``row_hash``; a null hash: the key is absent) no
    longer hold in ``stored`` (the table now, with ``key`` and ``row_hash`` columns)."""
    if expect.empty:
        return 0
    now = stored.set_index(key)["row_hash"]
    now = now[~now.index.duplicated()]
    found = now.reindex(pd.Index(expect[key].astype("string"))).astype("Int64").array
    wanted = pd.array(expect["row_hash"], dtype="Int64")
    same = np.asarray((found == wanted).fillna(False), dtype=bool) | np.asarray(
        found.isna() & wanted.isna(), dtype=bool)
    return int((~same).sum())


def check_layers_current(build: LayerBuild | None) -> None:
    """StoreError when the build in force was made by another version of the layer
    registry (its tables lack or misname fields): rebuilding is the way out."""
    if build is not None and build.report.get("registry") != registry_fingerprint():
        raise StaleLayers("图层由其他版本生成，字段不一致：请重新运行 riskmap build")


def layer_table(layer: str) -> Table:
    """The store table of a layer id (ValueError for unknown ids)."""
    try:
        return LAYER_TABLES[layer]
    except KeyError:
        raise ValueError(f"unknown layer {layer!r}") from None


def layer_columns(layer: str, columns: list[str] | None) -> list[str]:
    """Columns ``read_layer`` returns: all (``fid`` first, geometry last) or those named."""
    table = layer_table(layer)
    allowed = [*table.column_names, *(["geometry"] if table.geometry else [])]
    if columns is None:
        return allowed
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        raise ValueError(f"layer {layer} has no columns {unknown}")
    return list(columns)


def empty_layer(layer: str) -> pd.DataFrame:
    table = layer_table(layer)
    frame = pd.DataFrame({c: pd.Series(dtype=_PANDAS_DTYPES[t]) for c, t in table.columns})
    if table.geometry:
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs=4326))
    return frame


def conform_layer(layer: str, frame: pd.DataFrame) -> pd.DataFrame:
    """A built layer with exactly its registry fields in canonical dtypes, a ``fid`` made of
    its key columns (joined by ":"), and geometry in EPSG:4326. Missing fields or duplicate
    keys are a bug in the builder and raise :class:`StoreError`."""
    spec = LAYER_SPECS[layer]
    table = layer_table(layer)
    missing = [c for c in spec.field_names if c not in frame.columns]
    if missing:
        raise StoreError(f"layer {layer}: missing columns {missing}")
    parts = [frame[k].astype("string").fillna("").reset_index(drop=True) for k in spec.key]
    fid = parts[0]
    for part in parts[1:]:
        fid = fid + ":" + part
    out = pd.DataFrame({"fid": fid.astype("string"),
                        **{c: _as_dtype(frame[c], t) for c, t in spec.fields}},
                       index=pd.RangeIndex(len(frame)))
    dup = out["fid"].duplicated()
    if dup.any():
        raise StoreError(f"layer {layer}: duplicate keys {out['fid'][dup].head(3).tolist()}")
    if table.geometry:
        out = gpd.GeoDataFrame(out, geometry=_geometry_of(frame, table.geometry), crs=4326)
    return out


def open_store(url: str, *, h3_resolution: int = 8) -> Store:
    """Open the store a URL names: ``postgresql+psycopg://…`` is PostGIS, anything else
    (a path or ``file:`` URL) the embedded store."""
    if url.startswith(("postgresql", "postgres://")):
        from service.store.postgis import PostGISStore

        return PostGISStore(url, h3_resolution=h3_resolution)
    from service.store.embedded import EmbeddedStore

    return EmbeddedStore(url, h3_resolution=h3_resolution)


def changed_row(spec: Table, change: Change, before: dict | None) -> dict:
    """The row after ``change`` (compare-and-set checked by the caller), re-fingerprinted so
    upserts see it as changed."""
    if change.expect is None:
        if before is not None:
            raise ConflictError(f"{change.table} {change.key} exists already")
        after = {c: None for c in spec.column_names} | change.values
    else:
        if before is None:
            raise MissingRow(f"{change.table} {change.key} not found")
        stale = {k: before.get(k) for k, v in change.expect.items() if before.get(k) != v}
        if stale:
            raise ConflictError(f"{change.table} {change.key} changed meanwhile: {stale}")
        after = before | change.values
    after[spec.key] = change.key
    after["updated_at"] = datetime.now(UTC).replace(tzinfo=None)
    after["batch_id"] = f"change:{change.action}"
    after["source_file"] = after.get("source_file") or "service"
    hashed = {k: v for k, v in after.items() if k not in ("row_hash", "batch_id", "source_file",
                                                           "source_row", "updated_at")}
    digest = hashlib.blake2b(json.dumps(hashed, sort_keys=True, default=str).encode(),
                             digest_size=8).digest()
    after["row_hash"] = int.from_bytes(digest, "little", signed=True)
    return after


def audit_row(change: Change, before: dict | None, after: dict) -> dict:
    return {"audit_id": f"a-{uuid.uuid4().hex}", "at": datetime.now(UTC).replace(tzinfo=None),
            "actor": change.actor, "action": change.action, "entity": change.table,
            "entity_id": change.key,
            "before": None if before is None else json.dumps(before, ensure_ascii=False,
                                                               default=str),
            "after": json.dumps(after, ensure_ascii=False, default=str), "note": change.note,
            "county_adcode": change.county_adcode, "h3": change.h3}


def plain(value: object) -> object:
    """A stored value as plain Python (NA → None, timestamps → datetime/date)."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value
