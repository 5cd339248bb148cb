"""Point features as one Mapbox Vector Tile layer, encoded with NumPy.

mapbox-vector-tile builds a protobuf object per feature and per property in Python: ~40 µs
a point, 26 ms of the 35 ms an embedded-store z14 equipment tile took at 1M (720 points;
docs/benchmarks.md "Cold tiles"). A point layer's features all have the same shape, so here
every number of the layer — each feature's length, id, tags and its one ``MoveTo`` — is one
element of an array, and the protobuf varints of all of them are written at once: a few
array operations per tile, whatever the number of points. Only the layer's distinct keys
and values (a few dozen) are written one by one.

The output follows the MVT 2.1 protobuf schema (vector_tile.proto) as mapbox-vector-tile
writes it: the same feature order, ids, tag order (the fields in the order given, nulls
left out), value types (string, int64, double, bool) and points; it decodes to the same
features (``tests/test_mvt_points.py`` compares both encoders).
"""

from __future__ import annotations

import struct

import numpy as np

MOVE_TO_ONE = 9            # command MoveTo (1), count 1: (1 & 0x7) | (1 << 3)
LINE_TO = 2                # command LineTo, its count in the bits above 3
CLOSE_PATH_ONE = 15        # command ClosePath (7), count 1
POINT, POLYGON = 1, 3      # GeomType
_U7 = np.uint64(0x7F)
_CONT = np.uint8(0x80)

Column = tuple[str, np.ndarray, np.ndarray]  # key, value codes (-1 = null), distinct values


def encode_points(layer: str, x: np.ndarray, y: np.ndarray, columns: list[Column],
                  ids: np.ndarray | None, extent: int) -> bytes:
    """One MVT layer ``layer`` of points at integer tile coordinates ``x``, ``y``: feature
    ``i`` has id ``ids[i]`` (none when ``ids`` is None) and, for each column
    ``(key, codes, values)`` with ``codes[i] >= 0``, the property ``key = values[codes[i]]``
    (Python str, bool, int or float)."""
    n = len(x)
    if n == 0:
        return b""
    commands = np.empty((n, 3), dtype=np.uint64)
    commands[:, 0] = MOVE_TO_ONE
    commands[:, 1] = _zigzag(np.asarray(x, dtype=np.int64))
    commands[:, 2] = _zigzag(np.asarray(y, dtype=np.int64))
    return encode_layer(layer, POINT, commands.reshape(-1), np.full(n, 3), columns, ids,
                        extent)


def encode_polygons(layer: str, x: np.ndarray, y: np.ndarray, ring_sizes: np.ndarray,
                    columns: list[Column], ids: np.ndarray | None, extent: int
                    ) -> bytes | None:
    """:func:`encode_points` for polygons of one ring each: feature ``i``'s ring is the
    next ``ring_sizes[i]`` vertices of ``x``, ``y`` (integer tile units, closed: its last
    vertex repeats its first, which is left out). As mapbox-vector-tile: a vertex where
    the cursor already is is skipped. None if a ring has no line left (the caller then
    encodes feature by feature)."""
    n = len(ring_sizes)
    if n == 0:
        return b""
    x, y = np.asarray(x, dtype=np.int64), np.asarray(y, dtype=np.int64)
    ends = np.cumsum(ring_sizes)
    starts = ends - ring_sizes
    keep = np.ones(len(x), dtype=bool)
    keep[ends - 1] = False                                   # the closing vertex
    ring = np.repeat(np.arange(n), ring_sizes)
    first = np.zeros(len(x), dtype=bool)
    first[starts] = True
    # a vertex equal to the one before it is no move: left out (so a run of repeats
    # collapses onto the vertex the cursor is at)
    same = np.zeros(len(x), dtype=bool)
    same[1:] = (x[1:] == x[:-1]) & (y[1:] == y[:-1])
    keep &= first | ~same
    kx, ky, kring, kfirst = x[keep], y[keep], ring[keep], first[keep]
    dx = np.diff(kx, prepend=0)
    dy = np.diff(ky, prepend=0)
    dx[kfirst], dy[kfirst] = kx[kfirst], ky[kfirst]          # from the cursor at 0, 0
    pairs = np.bincount(kring, minlength=n) - 1              # LineTo pairs per ring
    if np.any(pairs < 1):
        return None
    sizes = 3 + 1 + 2 * pairs + 1                            # MoveTo x y, LineTo, pairs, Close
    total = int(sizes.sum())
    commands = np.empty(total, dtype=np.uint64)
    at = np.cumsum(sizes) - sizes
    commands[at] = MOVE_TO_ONE
    commands[at + 3] = (LINE_TO | (pairs << 3)).astype(np.uint64)
    commands[at + sizes - 1] = CLOSE_PATH_ONE
    # vertex k of ring r: the MoveTo pair at at+1, the rest at at+4 + 2(k-1)
    k = np.arange(len(kx)) - np.repeat(np.cumsum(pairs + 1) - (pairs + 1), pairs + 1)
    slot = np.where(k == 0, at[kring] + 1, at[kring] + 4 + 2 * (k - 1))
    commands[slot] = _zigzag(dx)
    commands[slot + 1] = _zigzag(dy)
    return encode_layer(layer, POLYGON, commands, sizes, columns, ids, extent)


def encode_layer(layer: str, geom_type: int, commands: np.ndarray, sizes: np.ndarray,
                 columns: list[Column], ids: np.ndarray | None, extent: int) -> bytes:
    """One MVT layer: feature ``i`` of ``geom_type`` with the next ``sizes[i]`` geometry
    integers of ``commands`` (already zigzagged), its id and properties as in
    :func:`encode_points`."""
    n = len(sizes)
    keys: list[str] = []
    # tags: (key, value) pairs of each feature, row-major, nulls out; the layer's value
    # table holds each distinct (type, value) once, in the order of first use in that
    # sequence (as mapbox-vector-tile fills it, feature by feature)
    m = len(columns)
    if m:
        codes = np.column_stack([c for _, c, _ in columns]).astype(np.int64)
        present = codes >= 0
        first_use: dict[tuple[type, object], int] = {}
        for j, (_, column_codes, values) in enumerate(columns):
            used, row = np.unique(column_codes, return_index=True)
            for code, r in zip(used.tolist(), row.tolist(), strict=True):
                if code >= 0:
                    key = (type(values[code]), values[code])
                    at = r * m + j
                    if at < first_use.get(key, at + 1):
                        first_use[key] = at
        order = sorted(first_use, key=first_use.__getitem__)
        table = {key: i for i, key in enumerate(order)}
        vals = np.zeros_like(codes)
        for j, (_, _, values) in enumerate(columns):
            index = np.array([table.get((type(v), v), -1) for v in values], dtype=np.int64)
            vals[present[:, j], j] = index[codes[present[:, j], j]]
        # keys too are listed in order of first use, and an unused one not at all
        any_row = present.any(axis=0)
        first_row = np.where(any_row, present.argmax(axis=0), len(codes))
        key_order = sorted(np.flatnonzero(any_row).tolist(),
                           key=lambda j: first_row[j] * m + j)
        key_index = np.zeros(m, dtype=np.int64)
        key_index[key_order] = np.arange(len(key_order))
        keys = [columns[j][0] for j in key_order]
        pairs = np.stack([np.broadcast_to(key_index, codes.shape), vals], axis=2)
        tags = pairs[present].reshape(-1).astype(np.uint64)   # k0 v0 k1 v1 … per feature
        n_tags = 2 * present.sum(axis=1)
    else:
        table = {}
        tags = np.zeros(0, dtype=np.uint64)
        n_tags = np.zeros(n, dtype=np.int64)
    sizes = np.asarray(sizes, dtype=np.int64)
    tag_bytes = _group_sums(_varint_lengths(tags), n_tags)
    geom_bytes = _group_sums(_varint_lengths(commands), sizes)
    has_tags = n_tags > 0
    # each feature as varints: [0x08 id] [0x12 len tags…] 0x18 type 0x22 len commands…
    head = 2 if ids is not None else 0
    body = head + np.where(has_tags, 2, 0) + n_tags + 4 + sizes
    ids_u = None if ids is None else np.asarray(ids).astype(np.uint64)
    feature_bytes = (np.where(has_tags, 1 + _varint_lengths(tag_bytes.astype(np.uint64))
                              + tag_bytes, 0)
                     + 3 + _varint_lengths(geom_bytes.astype(np.uint64)) + geom_bytes)
    if ids_u is not None:
        feature_bytes = feature_bytes + 1 + _varint_lengths(ids_u)
    # the layer's features field around each: 0x12 len <feature>
    count = body + 2
    start = np.cumsum(count) - count
    tokens = np.zeros(int(count.sum()), dtype=np.uint64)
    tokens[start] = 0x12
    tokens[start + 1] = feature_bytes.astype(np.uint64)
    at = start + 2
    if ids_u is not None:
        tokens[at] = 0x08
        tokens[at + 1] = ids_u
        at = at + 2
    tagged = np.flatnonzero(has_tags)
    tokens[at[tagged]] = 0x12
    tokens[at[tagged] + 1] = tag_bytes[tagged].astype(np.uint64)
    at = at + np.where(has_tags, 2, 0)
    if len(tags):
        tokens[_spread(at, n_tags)] = tags
    at = at + n_tags
    tokens[at] = 0x18
    tokens[at + 1] = geom_type
    tokens[at + 2] = 0x22
    tokens[at + 3] = geom_bytes.astype(np.uint64)
    tokens[_spread(at + 4, sizes)] = commands
    features = _varints(tokens).tobytes()
    # the layer's fields in field-number order, as protobuf serialises them
    out = bytearray(_field(1, layer.encode()))              # name
    out += features                                         # features (2)
    out += b"".join([_field(3, key.encode()) for key in keys])
    out += b"".join([_value_field(kind, value) for kind, value in table])  # in index order
    out += b"\x28" + _varint(extent)                        # extent (5)
    out += b"\x78\x02"                                      # version (15): 2
    return bytes(_field(3, bytes(out)))                     # the tile's one layer


def _value_field(kind: type, value: object) -> bytes:
    """A layer's values field (4) holding one Value message."""
    if kind is str:
        text = value.encode()  # type: ignore[attr-defined]
        if len(text) < 126:  # the usual short text: both lengths one byte
            return b"\x22" + bytes((len(text) + 2, 0x0A, len(text))) + text
    return _field(4, _value(kind, value))


def _value(kind: type, value: object) -> bytes:
    if kind is bool:
        return b"\x38" + (b"\x01" if value else b"\x00")
    if kind is int:
        return b"\x20" + _varint(int(value) & 0xFFFF_FFFF_FFFF_FFFF)  # int64: two's complement
    if kind is float:
        return b"\x19" + struct.pack("<d", value)
    return _field(1, str(value).encode())


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _zigzag(v: np.ndarray) -> np.ndarray:
    return ((v << 1) ^ (v >> 63)).astype(np.uint64)


def _varint_lengths(v: np.ndarray) -> np.ndarray:
    """Bytes of each unsigned value as a protobuf varint (1–10)."""
    v = np.asarray(v, dtype=np.uint64)
    n = np.ones(len(v), dtype=np.int64)
    for k in range(1, 10):
        n += v >= np.uint64(1 << (7 * k))
    return n


def _varints(v: np.ndarray) -> np.ndarray:
    """All values as consecutive protobuf varints (uint8 array)."""
    n = _varint_lengths(v)
    start = np.cumsum(n) - n
    out = np.empty(int(n.sum()), dtype=np.uint8)
    for b in range(int(n.max()) if len(n) else 0):
        at = n > b
        part = ((v[at] >> np.uint64(7 * b)) & _U7).astype(np.uint8)
        part[n[at] > b + 1] |= _CONT
        out[start[at] + b] = part
    return out


def _spread(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The positions starts[i], starts[i] + 1, … (sizes[i] of them) for every i, in order."""
    offsets = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return np.repeat(starts, sizes) + offsets


def _group_sums(lengths: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Sum of ``lengths`` over consecutive groups of ``sizes`` (zero for an empty group)."""
    ends = np.cumsum(sizes)
    total = np.concatenate([[0], np.cumsum(lengths)])
    return total[ends] - total[ends - sizes]
