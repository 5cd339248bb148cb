"""One ingest batch: read → validate → locate → de-duplicate → check references → check
the uploader's scope and the hazard loop against the store → fingerprint → write (one
transaction, audited) → report.

Every stage works on whole frames of one file (a partition of rows), so a distributed
runner maps the per-file stages (:func:`prepare_file`) over partitions and reduces at the
de-duplication and reference checks, which need the whole batch: see
``service.ingest.distributed`` (``riskmap ingest --engine dask``). The checks against the
store are made again when the store changed under them before the write (a change
through the service meanwhile): the write refuses a batch whose checks no longer hold."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data.reasons import Reason
from data.schema import KEYS, POINT_KINDS, POLYGON_KINDS, Kind
from geo.datum import parse_datum
from geo.geocode import CountyGeocoder, Geocoder
from service.ingest import hazard_loop, polygons
from service.ingest.audit import audit_entries, batch_entry
from service.ingest.locate import LocateOptions, locate_points
from service.ingest.officers import expand_officer_cells
from service.ingest.prepared import Batches, Prepared
from service.ingest.read import FileRejected, RawTable, read_file
from service.ingest.rejects import RejectLog
from service.ingest.report import (
    REJECTED_ROWS_LIMIT,
    build_report,
    rejected_source_rows,
    stored_copy,
)
from service.ingest.stored import StoredRows
from service.ingest.timing import StageTimer
from service.ingest.validate import parse_table
from service.ingest.write_scope import WriteScope, check_write_scope, positions
from service.memory import release_memory
from service.store.base import Batch, Store, UpsertCounts
from service.store.conform import pandas_dtype
from service.store.errors import ConflictError
from service.store.query import arrow_text, text_isin
from service.store.tables import LINKS, META, TABLES

# Order in which kinds are prepared: referenced kinds before the kinds that refer to them.
ORDER = (Kind.PARKS, Kind.VENUES, Kind.UNITS, Kind.EQUIPMENT, Kind.HAZARDS, Kind.CHECKS,
         Kind.OFFICERS)
# (kind, its field, the kind it must name) for reference checks
REFERENCES = ((Kind.HAZARDS, "registration_code", Kind.EQUIPMENT, Reason.UNKNOWN_EQUIPMENT),
              (Kind.CHECKS, "credit_code", Kind.UNITS, Reason.UNKNOWN_UNIT))
NOT_HASHED = {c for c, _ in META} | {c for c, _ in LINKS}
ATTEMPTS = 3  # checks against the store, made again when it changed before the write


@dataclass
class IngestOptions:
    h3_resolution: int = 8
    provinces: list[str] = field(default_factory=lambda: ["410000", "610000"])
    default_crs: str | None = None
    kind: Kind | None = None
    max_bytes: int | None = None
    geocoder: Geocoder | None = None
    progress: Callable[[str], None] | None = None
    # who loads the batch (named in the audit trail) and the region they may write (None:
    # an administrator, anything within ``provinces``)
    actor: str = "cli"
    scope: WriteScope | None = None
    today: date | None = None  # dates later than this are rejected (default: today)
    strict: bool = False  # any reject (a row or a whole file) and nothing is written
    # path -> the file's name as its sender knows it (an upload saved under a name of the
    # server's): what the stored rows, batch, rejects and audit trail call the file
    shown_names: dict[str, str] | None = None

    def shown_name(self, path: str | Path) -> str:
        """The name a person knows the file by: as sent, else the file's own name."""
        return (self.shown_names or {}).get(str(path)) or Path(path).name

    def shown_path(self, path: str | Path) -> str:
        """The file as the batch records it: its name as sent, else the path as given."""
        return (self.shown_names or {}).get(str(path)) or str(path)


# Runs the per-file stages over the files read: in process (:func:`prepare_files`) or
# mapped over partitions on Dask (``service.ingest.distributed``).
PrepareFiles = Callable[[list[RawTable], "IngestOptions", RejectLog, StageTimer,
                         Callable[[str], None]], Batches]


def ingest(paths: Sequence[str | Path], store: Store, options: IngestOptions,
           prepare: PrepareFiles | None = None) -> dict:
    """Ingest files into ``store`` as one batch and return the report (see report.py).
    With ``options.strict`` a batch with any reject is checked and reported but not
    written (``report["written"]`` is False). ``prepare`` runs the per-file stages
    (default: in this process, :func:`prepare_files`)."""
    started = datetime.now(UTC).replace(tzinfo=None)
    batch_id = f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    step = options.progress or (lambda _msg: None)
    timer = StageTimer()
    log = RejectLog()
    files: list[dict] = []
    paths = list(dict.fromkeys(str(p) for p in paths))  # the same file twice is read once
    raws = _read_all(paths, options, log, files, timer, step)
    prepared = (prepare or prepare_files)(raws, options, log, timer, step)
    written = True
    counts: dict[str, UpsertCounts] = {}
    for attempt in range(1, ATTEMPTS + 1):
        mark = log.mark()
        # the hazard checks fill empty lifecycle fields from the store: start again from
        # the rows as read
        originals = {id(i): i.parsed.copy() for i in prepared[Kind.HAZARDS]}
        release_memory()  # what reading and preparing freed, before the batch checks
        step("查重与关联校验")
        batch, per_kind = _checked_batch(prepared, store, options, log, batch_id, started,
                                         paths, files, raws, timer)
        if options.strict and log.has_rejects():
            written = False  # all or nothing: the store is not touched
            break
        release_memory()
        step("写入数据库")
        try:
            with timer("write"):
                counts = store.write_batch(batch)
            break
        except ConflictError:
            if attempt == ATTEMPTS:
                raise
            log.rollback(mark)  # the store changed meanwhile: check again
            for item in prepared[Kind.HAZARDS]:
                item.parsed = originals[id(item)]
    rejects = log.rejects()
    report = build_report(batch_id, files, per_kind, rejects, log.flags(), counts,
                          headers=_headers(raws), written=written, strict=options.strict)
    return finish_report(report, rejects, raws, paths, timer, options.shown_names)


def finish_report(report: dict, rejects: pd.DataFrame, raws: list, paths: list[str],
                  timer: StageTimer, names: dict[str, str] | None) -> dict:
    """The report with the rejected rows' source text (``raws`` hold it), the timings, and
    the names each file's sender knows: the last step of either engine's ingest."""
    with timer("report"):
        report["rejected_rows"], report["rejected_rows_capped"] = rejected_source_rows(
            rejects, raws, REJECTED_ROWS_LIMIT, paths)
    report["rejected_rows_limit"] = REJECTED_ROWS_LIMIT
    report["timings"] = timer.as_dict()
    return shown_report(report, names)


def shown_report(report: dict, names: dict[str, str] | None) -> dict:
    """``report`` with each path of ``names`` replaced by the name its sender knows (the
    report is keyed by path while it is built: two files sent under one name stay apart)."""
    if not names:
        return report
    text = orjson.dumps(report, default=str, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    for path, name in names.items():
        text = text.replace(orjson.dumps(path).decode()[1:-1], orjson.dumps(name).decode()[1:-1])
    return orjson.loads(text)


def _headers(raws: list[RawTable]) -> dict[str, dict[str, str]]:
    """Per file, its own header of each canonical field (for the report)."""
    return {raw.path: raw.headers for raw in raws}


def _read_all(paths: list[str], options: IngestOptions, log: RejectLog, files: list[dict],
              timer: StageTimer, step: Callable[[str], None]) -> list[RawTable]:
    raws: list[RawTable] = []
    for path in paths:
        step(f"读取 {options.shown_name(path)}")
        try:
            with timer("read"):
                raw = read_file(path, options.kind, max_bytes=options.max_bytes)
        except FileRejected as exc:
            log.add_file(exc.path, exc.code, exc.zh, exc.en)
            files.append({"path": str(path), "kind": None, "rows": 0, "error": exc.en})
            continue
        raws.append(raw)
        log.add_malformed(raw.path, raw.kind, raw.malformed)
        files.append({"path": raw.path, "kind": str(raw.kind), "rows": len(raw.frame),
                      "encoding": raw.encoding, "ignored_columns": raw.ignored_columns})
    return raws


def prepare_files(raws: list[RawTable], options: IngestOptions, log: RejectLog,
                  timer: StageTimer, step: Callable[[str], None]) -> Batches:
    """Each file on its own: validate, place on the map, check its dates."""
    locate_opts = locate_options(options, timer)
    today = options.today or date.today()
    prepared: Batches = {k: [] for k in Kind}
    for raw in in_order(raws):
        step(f"校验 {options.shown_name(raw.path)}")
        prepared[raw.kind].append(prepare_file(raw, options, log, timer, locate_opts, today))
    return prepared


def in_order(raws: list[RawTable]) -> list[RawTable]:
    """Files in the order they are prepared (``ORDER``: referenced kinds first)."""
    return sorted(raws, key=lambda r: ORDER.index(r.kind))


def locate_options(options: IngestOptions, timer: StageTimer,
                   geocoder: Geocoder | None = None) -> LocateOptions:
    """How point rows are placed (``geocoder``: the one to use unless ``options`` names
    one; default a new county geocoder of ``options.provinces``)."""
    default_datum = parse_datum(options.default_crs) if options.default_crs else None
    geocoder = options.geocoder or geocoder or CountyGeocoder(options.provinces)
    return LocateOptions(options.h3_resolution, options.provinces, default_datum, geocoder,
                         timer)


def prepare_file(raw: RawTable, options: IngestOptions, log: RejectLog, timer: StageTimer,
                 locate_opts: LocateOptions, today: date) -> Prepared:
    """The per-file stages of one file, or of a partition of its rows (every stage but the
    officers' cell limit looks at one row at a time): validate, place, check dates."""
    with timer("validate"):
        parsed = parse_table(raw, log)
    item = Prepared(raw, parsed)
    if raw.kind in POINT_KINDS:
        item.parsed = pd.concat([parsed.drop(columns=["lon", "lat"]),
                                 locate_points(raw, parsed, log, locate_opts)], axis=1)
    elif raw.kind in POLYGON_KINDS:
        with timer("polygons"):
            item.parsed = polygons.prepare(raw, parsed, log, locate_opts.default_datum,
                                           options.provinces)
    elif raw.kind == Kind.OFFICERS:
        with timer("officers"):
            item.officer_cells = expand_officer_cells(raw, parsed, log, options.h3_resolution,
                                                      options.provinces)
    item.rejected = np.zeros(len(item.parsed), dtype=bool)
    hazard_loop.check_dates(item, log, today)
    return item


def _checked_batch(prepared: Batches, store: Store, options: IngestOptions, log: RejectLog,
                   batch_id: str, started: datetime, paths: list[str], files: list[dict],
                   raws: list[RawTable], timer: StageTimer
                   ) -> tuple[Batch, dict[str, dict[str, int]]]:
    """The batch as the store will hold it, after every check that reads the store."""
    stored, expect = check_against_store(prepared, store, options, log, timer)
    with timer("fingerprint"):
        frames = {str(k): table_frame(k, items, batch_id, started, options.shown_name)
                  for k, items in prepared.items() if items}
    with timer("audit"):
        audit = batch_audit(prepared, frames, stored, options, batch_id, started)
    return assembled_batch(prepared, frames, audit, expect, log, log.rejects(), raws,
                           options, batch_id, started, paths, files, _headers(raws))


def check_against_store(prepared: Batches, store: Store, options: IngestOptions,
                        log: RejectLog, timer: StageTimer
                        ) -> tuple[StoredRows, dict[str, pd.DataFrame]]:
    """The batch's checks that read the store, in both engines: references, the uploader's
    scope, the hazard loop. Returns the stored rows' reader and the rows the batch expects
    to find as they are (the write refuses the batch if they changed meanwhile)."""
    stored = StoredRows(store)
    expect: dict[str, pd.DataFrame] = {}
    with timer("references"):
        _check_batch(prepared, store, log, options.shown_name)
    with timer("scope"):
        if options.scope is not None:
            check_write_scope(prepared, stored, log, options.scope, expect, options.provinces)
        for item in prepared[Kind.HAZARDS]:
            hazard_loop.check_hazard_rows(item, stored, log, expect)
        for item in prepared[Kind.CHECKS]:
            hazard_loop.check_check_rows(item, stored, log, expect)
    return stored, expect


def assembled_batch(prepared: Batches, frames: dict[str, pd.DataFrame],
                    audit: pd.DataFrame | None, expect: dict[str, pd.DataFrame],
                    log: RejectLog, rejects: pd.DataFrame, raws: list[RawTable],
                    options: IngestOptions, batch_id: str, started: datetime,
                    paths: list[str], files: list[dict], headers: dict
                    ) -> tuple[Batch, dict[str, dict[str, int]]]:
    """The :class:`Batch` of the checked rows (``frames``; a Dask batch leaves its largest
    kinds out, staged by its workers) with its officer cells, rejects (``rejects`` among
    the source rows ``raws``), audit and report, in both engines; and the rows per kind."""
    stored_rejects = _store_rejects(rejects, raws, batch_id)
    stored_rejects["file"] = stored_rejects["file"].map(options.shown_path)
    batch = Batch(batch_id, started, [options.shown_path(p) for p in paths], frames,
                  _officer_cells(prepared[Kind.OFFICERS]), stored_rejects, audit=audit,
                  expect=expect)
    per_kind = prepared_counts(prepared)
    batch.report = stored_copy(shown_report(build_report(
        batch_id, files, per_kind, log.rejects(), log.flags(), None, headers=headers,
        strict=options.strict), options.shown_names))
    return batch, per_kind


def batch_audit(prepared: Batches, frames: dict[str, pd.DataFrame], stored: StoredRows,
                options: IngestOptions, batch_id: str, started: datetime
                ) -> pd.DataFrame | None:
    """Audit entries of what the batch changes in hazards and checks, and of the batch."""
    actor = options.actor
    parts = []
    for kind, target, column in ((Kind.HAZARDS, Kind.EQUIPMENT, "registration_code"),
                                 (Kind.CHECKS, Kind.UNITS, "credit_code")):
        frame = frames.get(str(kind))
        if frame is None or frame.empty:
            continue
        where = positions(prepared, stored, target, frame[column])
        parts.append(audit_entries(str(kind), frame, stored, where, actor, batch_id,
                                   started))
    parts.append(batch_entry(prepared, frames, parts, actor, batch_id, started,
                             options.shown_name))
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else None


def _check_batch(prepared: Batches, store: Store, log: RejectLog,
                 shown: Callable[[str], str]) -> None:
    """Batch-wide checks: duplicate keys across all files (named by ``shown``), then
    references to equipment and units (in this batch or already stored)."""
    for item in (i for items in prepared.values() for i in items):
        item.rejected = log.rejected_mask(item.raw.path, len(item.parsed))
    for kind, items in prepared.items():
        _reject_duplicates(kind, items, log, shown)
    for item in (i for items in prepared.values() for i in items):
        item.rejected = log.rejected_mask(item.raw.path, len(item.parsed))
    for kind, key, target, reason in REFERENCES:
        if not prepared[kind]:
            continue
        known = pa.concat_arrays([arrow_text(_valid_keys(prepared[target], KEYS[target])),
                                  arrow_text(store.keys(str(target)))])
        for item in prepared[kind]:
            values = item.parsed[key]
            found = pc.is_in(arrow_text(values), value_set=known)
            unknown = values.notna().to_numpy() & ~found.to_numpy(zero_copy_only=False)
            item.reject(log, unknown, key, reason, values)


def prepared_counts(prepared: dict[Kind, list[Prepared]]) -> dict[str, dict[str, int]]:
    return {str(k): {"read": sum(len(i.parsed) for i in items),
                     "rejected": int(sum(i.rejected.sum() for i in items))}
            for k, items in prepared.items() if items}


def _reject_duplicates(kind: Kind, items: list[Prepared], log: RejectLog,
                       shown: Callable[[str], str]) -> None:
    """Within the input, the first row with a key wins; later rows with it are rejected
    (the reason names the first row's file by ``shown``)."""
    if not items:
        return
    key = KEYS[kind]
    parts = [pd.DataFrame({"key": i.parsed[key].astype("string"), "file": i.raw.path,
                           "row": i.raw.rows, "item": n}) for n, i in enumerate(items)]
    allrows = pd.concat(parts, ignore_index=True)
    allrows = allrows[allrows["key"].notna()]
    dup = allrows["key"].duplicated(keep="first")
    if not dup.any():
        return
    first = allrows.drop_duplicates("key").set_index("key")
    later = allrows[dup]
    detail = ("与 " + first.loc[later["key"], "file"].map(shown).to_numpy()
              + " 第 " + first.loc[later["key"], "row"].astype(str).to_numpy() + " 行重复")
    for n, item in enumerate(items):
        sel = later[later["item"] == n]
        if sel.empty:
            continue
        mask = np.zeros(len(item.parsed), dtype=bool)
        pos = sel.index.to_numpy() - sum(len(i.parsed) for i in items[:n])
        mask[pos] = True
        det = pd.Series(pd.NA, index=item.parsed.index, dtype="string")
        det.iloc[pos] = detail[later["item"].to_numpy() == n]
        log.add(item.raw.path, kind, item.raw.rows, mask, key, Reason.DUPLICATE,
                item.parsed[key], det)


def _valid_keys(items: list[Prepared], key: str) -> pd.Series:
    keys = [i.parsed.loc[~i.rejected, key] for i in items]
    return pd.concat(keys).dropna() if keys else pd.Series([], dtype="string")


def table_frame(kind: Kind, items: list[Prepared], batch_id: str, started: datetime,
                 shown: Callable[[str], str]) -> pd.DataFrame:
    """Valid rows of one kind in the stored table's columns, typed and fingerprinted; each
    names its file by ``shown``."""
    spec = TABLES[str(kind)]
    parts = []
    for item in items:
        keep = ~item.rejected
        part = item.parsed.loc[keep].copy()
        part["source_file"] = shown(item.raw.path)
        part["source_row"] = item.raw.rows[keep]
        if kind == Kind.OFFICERS and item.officer_cells is not None:
            counts = item.officer_cells.cells.groupby("officer_id").size()
            part["cell_count"] = part["officer_id"].map(counts).fillna(0)
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    frame["batch_id"] = batch_id
    frame["updated_at"] = pd.Timestamp(started)
    columns = {}
    for name, abstract in spec.columns:
        col = frame[name] if name in frame.columns else pd.Series(pd.NA, index=frame.index)
        columns[name] = col.astype(pandas_dtype(abstract))  # row_hash is filled in below
    typed = pd.DataFrame(columns, index=frame.index)
    geometry = None
    if spec.geometry == "point":
        geometry = gpd.points_from_xy(typed["lon"], typed["lat"], crs=4326)
    elif spec.geometry:
        geometry = gpd.GeoSeries(frame["geometry"], crs=4326)
    hashed = [c for c in spec.column_names if c not in NOT_HASHED]
    to_hash = typed[hashed].copy()
    if geometry is not None and spec.geometry != "point":
        to_hash["__wkb"] = gpd.GeoSeries(geometry).to_wkb()
    typed["row_hash"] = pd.array(
        pd.util.hash_pandas_object(to_hash, index=False).to_numpy().view(np.int64), dtype="Int64")
    if geometry is not None:
        return gpd.GeoDataFrame(typed, geometry=gpd.GeoSeries(geometry, index=typed.index),
                                crs=4326)
    return typed


def _officer_cells(items: list[Prepared]) -> pd.DataFrame | None:
    parts = []
    for item in items:
        if item.officer_cells is None:
            continue
        valid = item.parsed.loc[~item.rejected, "officer_id"]
        held = item.officer_cells.cells
        parts.append(held[text_isin(held["officer_id"], valid)])
    if not parts:
        return None
    cells = pd.concat(parts, ignore_index=True).drop_duplicates()
    return cells.sort_values(["officer_id", "h3"], ignore_index=True)


def _store_rejects(rejects: pd.DataFrame, raws: list[RawTable], batch_id: str) -> pd.DataFrame:
    """Rejects as stored: with the whole source row as JSON so nothing is lost."""
    raw_json = pd.Series(pd.NA, index=rejects.index, dtype="string")
    by_path = {r.path: r for r in raws}
    for path, group in rejects.groupby("file", sort=False):
        raw = by_path.get(path)
        idx = group["index"].to_numpy()
        if raw is None or raw.raw is None or (idx < 0).all():
            continue
        ok = idx >= 0
        rows = raw.raw.iloc[idx[ok]].astype("string")
        lines = rows.to_json(orient="records", lines=True, force_ascii=False).splitlines()
        raw_json.loc[group.index[ok]] = lines
    out = rejects.drop(columns=["index"]).copy()
    out["batch_id"] = batch_id
    out["raw"] = raw_json
    out["row"] = out["row"].astype("Int64")
    return out[["batch_id", "file", "row", "kind", "field", "code", "reason_zh", "reason_en",
                "value", "raw"]]

