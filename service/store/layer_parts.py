"""Layers a build's workers write in parts (:class:`service.store.base.StagedLayer`), on
the embedded store: each part one Parquet file under ``layers/.stage-<token>/``, merged by
:func:`merge_parts` into the layer's one file in the layer's row order.

The merge streams: it takes the next rows of each part as the order asks for them, a
chunk of the layer at a time, so neither the parts nor the layer are ever held whole (the
point of staging: a build of ten million rows whose driver holds none of them).
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from service.store.errors import StoreError

CHUNK_ROWS = 100_000  # rows of the layer merged at a time
STAGE_PREFIX = ".stage-"
_TOKEN = re.compile(r"^[0-9a-z_]{1,40}$")
_STARTED = re.compile(r"^(\d{8}t\d{6})_")


def new_token(now: datetime | None = None) -> str:
    """A build's staging token: when it started, and a random part (``20261205t193205_
    1a2b3c4d``), as a batch id names its staging tables once made fit for a table name."""
    return f"{(now or datetime.now(UTC)):%Y%m%dt%H%M%S}_{uuid.uuid4().hex[:8]}"


def token_started(token: str) -> datetime | None:
    """When the build or batch that staged under ``token`` started (None: not a token)."""
    found = _STARTED.match(token)
    if not found:
        return None
    return datetime.strptime(found.group(1), "%Y%m%dt%H%M%S").replace(tzinfo=UTC)


def check_token(token: str) -> str:
    """A staging token is made by the build (hex), never from data: anything else, which
    could name another directory, is refused."""
    if not _TOKEN.fullmatch(token):
        raise ValueError(f"not a staging token: {token!r}")
    return token


def stage_dir(layers_root: Path, token: str) -> Path:
    return layers_root / f"{STAGE_PREFIX}{check_token(token)}"


def part_path(layers_root: Path, token: str, layer: str, part: int) -> Path:
    if part < 0:
        raise ValueError("a part number is not negative")
    return stage_dir(layers_root, token) / f"{layer}-{int(part)}.parquet"


def stale_tokens(layers_root: Path, before: datetime) -> list[str]:
    """The tokens with parts staged under ``layers_root`` by builds started before
    ``before`` (left by a driver that was killed)."""
    found = []
    for path in layers_root.glob(f"{STAGE_PREFIX}*") if layers_root.is_dir() else ():
        token = path.name[len(STAGE_PREFIX):]
        started = token_started(token)
        if started is not None and started < before and _TOKEN.fullmatch(token):
            found.append(token)
    return sorted(found)


def drop_stage(layers_root: Path, token: str) -> int:
    """Remove the parts staged under ``token``; how many files there were."""
    where = stage_dir(layers_root, token)
    count = len(list(where.glob("*.parquet"))) if where.is_dir() else 0
    shutil.rmtree(where, ignore_errors=True)
    return count


class _Rows:
    """The rows of one part in order, handed out ``n`` at a time."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.schema = schema
        self.batches: Iterator[pa.RecordBatch] = pq.ParquetFile(path).iter_batches(
            batch_size=CHUNK_ROWS)
        self.held: list[pa.RecordBatch] = []
        self.count = 0

    def take(self, n: int, path: Path) -> pa.Table:
        while self.count < n:
            batch = next(self.batches, None)
            if batch is None:
                raise StoreError(f"staged part {path.name} holds fewer rows than its order")
            self.held.append(batch)
            self.count += batch.num_rows
        table = pa.Table.from_batches(self.held, schema=self.schema) if self.held else \
            self.schema.empty_table()
        out, rest = table.slice(0, n), table.slice(n)
        self.held = rest.to_batches()
        self.count -= n
        return out


def merge_parts(paths: list[Path], order: np.ndarray, schema: pa.Schema, out: Path) -> int:
    """Write ``out``: the rows of the parts ``paths`` (part ``k`` at ``paths[k]``) in the
    layer's order (``order[i]``: the part of the layer's row ``i``; each part holds its rows
    in that order), as ``schema``. Returns the rows written. A part with rows left over, or
    too few, is an error: the parts are not this layer's."""
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise StoreError(f"staged parts missing: {missing}")
    rows = [_Rows(p, schema) for p in paths]
    with pq.ParquetWriter(out, schema, compression="snappy") as writer:
        if not len(order):
            writer.write_table(schema.empty_table())
        for start in range(0, len(order), CHUNK_ROWS):
            which = order[start:start + CHUNK_ROWS]
            counts = np.bincount(which, minlength=len(paths))
            pieces = [r.take(int(n), p).cast(schema)
                      for r, n, p in zip(rows, counts, paths, strict=True)]
            grouped = pa.concat_tables(pieces)  # by part, each part's rows in order
            # row j of the chunk is the rank of j in a stable sort of the chunk by part
            by_part = np.argsort(which, kind="stable")
            rank = np.empty(len(which), dtype=np.int64)
            rank[by_part] = np.arange(len(which))
            writer.write_table(grouped.take(pa.array(rank)))
    left = [p.name for r, p in zip(rows, paths, strict=True)
            if r.count or next(r.batches, None) is not None]
    if left:
        out.unlink(missing_ok=True)
        raise StoreError(f"staged parts hold more rows than the layer's order: {left}")
    return len(order)
