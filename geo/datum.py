"""Chinese coordinate datums: convert GCJ-02 and BD-09 to WGS84 (and back for output).

WGS84 (EPSG:4326) and CGCS2000 (EPSG:4490) differ by centimetres and are treated as
one datum for storage. GCJ-02 (AMap, Tencent) and BD-09 (Baidu) are obfuscations with
offsets of hundreds of metres. The forward transforms come from the ``coordTransform``
package (its batch C implementation); the library's own inverse is a one-step
approximation that can be off by metres, so the inverse here refines it by fixed-point
iteration on the forward transform until the residual is below a millimetre.
"""

from __future__ import annotations

from enum import StrEnum

import coordTransform as _ct
import numpy as np


class Datum(StrEnum):
    WGS84 = "WGS84"
    CGCS2000 = "CGCS2000"
    GCJ02 = "GCJ02"
    BD09 = "BD09"


_ALIASES = {
    "WGS84": Datum.WGS84, "WGS-84": Datum.WGS84, "WGS 84": Datum.WGS84, "EPSG:4326": Datum.WGS84,
    "4326": Datum.WGS84, "GPS": Datum.WGS84,
    "CGCS2000": Datum.CGCS2000, "CGCS-2000": Datum.CGCS2000, "EPSG:4490": Datum.CGCS2000,
    "4490": Datum.CGCS2000, "2000国家大地坐标系": Datum.CGCS2000, "国家2000": Datum.CGCS2000,
    "GCJ02": Datum.GCJ02, "GCJ-02": Datum.GCJ02, "火星坐标": Datum.GCJ02, "国测局坐标": Datum.GCJ02,
    "高德": Datum.GCJ02, "AMAP": Datum.GCJ02,
    "BD09": Datum.BD09, "BD-09": Datum.BD09, "BD09LL": Datum.BD09, "百度": Datum.BD09,
    "BAIDU": Datum.BD09,
}

# a millionth of a degree is ~0.1 m; iterate until well below that
_TOLERANCE_DEG = 1e-9
_MAX_ITER = 10


class UnknownDatumError(ValueError):
    """A datum name that is not one of WGS84, CGCS2000, GCJ02, BD09."""


def parse_datum(name: str) -> Datum:
    """Normalise a datum label as found in registry exports (case and dashes vary)."""
    key = str(name).strip().upper().replace("_", "")
    if key in _ALIASES:
        return _ALIASES[key]
    if name.strip() in _ALIASES:
        return _ALIASES[name.strip()]
    raise UnknownDatumError(name)


def normalise_datum_labels(labels: np.ndarray | list[str]) -> np.ndarray:
    """Vectorised :func:`parse_datum` over distinct labels; unknown labels become ``""``."""
    arr = np.asarray(labels, dtype=object)
    uniques, inverse = np.unique(arr.astype(str), return_inverse=True)
    mapped = []
    for u in uniques:  # a handful of distinct labels, not one per row
        try:
            mapped.append(str(parse_datum(u)))
        except UnknownDatumError:
            mapped.append("")
    return np.asarray(mapped, dtype=object)[inverse]


def _arrays(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (np.ascontiguousarray(lon, dtype=np.float64),
            np.ascontiguousarray(lat, dtype=np.float64))


def wgs84_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = _arrays(lon, lat)
    if lon.size == 0:
        return lon.copy(), lat.copy()
    x, y = _ct.wgs84_to_gcj02(lon, lat)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def gcj02_to_bd09(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = _arrays(lon, lat)
    if lon.size == 0:
        return lon.copy(), lat.copy()
    x, y = _ct.gcj02_to_bd09(lon, lat)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def wgs84_to_bd09(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def _invert(forward, lon: np.ndarray, lat: np.ndarray, first_guess
            ) -> tuple[np.ndarray, np.ndarray]:
    """Solve forward(x) = target by fixed-point iteration x += target - forward(x)."""
    lon, lat = _arrays(lon, lat)
    if lon.size == 0:
        return lon.copy(), lat.copy()
    x, y = (np.asarray(a, dtype=np.float64) for a in first_guess(lon, lat))
    for _ in range(_MAX_ITER):
        fx, fy = forward(x, y)
        dx, dy = lon - fx, lat - fy
        x += dx
        y += dy
        if np.nanmax(np.abs(dx)) < _TOLERANCE_DEG and np.nanmax(np.abs(dy)) < _TOLERANCE_DEG:
            break
    return x, y


def gcj02_to_wgs84(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _invert(wgs84_to_gcj02, lon, lat, _ct.gcj02_to_wgs84)


def bd09_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _invert(gcj02_to_bd09, lon, lat, _ct.bd09_to_gcj02)


def bd09_to_wgs84(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def to_wgs84(lon: np.ndarray, lat: np.ndarray, datums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert each point from its own datum (an array of :class:`Datum` values) to WGS84."""
    lon, lat = _arrays(lon, lat)
    datums = np.asarray(datums, dtype=object)
    out_lon, out_lat = lon.copy(), lat.copy()
    for datum, convert in ((Datum.GCJ02, gcj02_to_wgs84), (Datum.BD09, bd09_to_wgs84)):
        mask = (datums == datum) & np.isfinite(lon) & np.isfinite(lat)
        if mask.any():
            out_lon[mask], out_lat[mask] = convert(lon[mask], lat[mask])
    return out_lon, out_lat


def from_wgs84(lon: np.ndarray, lat: np.ndarray, datum: Datum) -> tuple[np.ndarray, np.ndarray]:
    """Convert WGS84 points to an output datum (for overlay on AMap/Baidu basemaps)."""
    if datum == Datum.GCJ02:
        return wgs84_to_gcj02(lon, lat)
    if datum == Datum.BD09:
        return wgs84_to_bd09(lon, lat)
    return _arrays(lon, lat)


def transform_geometries(geoms, datum: Datum, *, to_wgs: bool = True):
    """Shift every vertex of a shapely geometry array between ``datum`` and WGS84."""
    import shapely

    if datum in (Datum.WGS84, Datum.CGCS2000):
        return geoms

    def _shift(coords: np.ndarray) -> np.ndarray:
        if to_wgs:
            x, y = to_wgs84(coords[:, 0], coords[:, 1], np.full(len(coords), datum, dtype=object))
        else:
            x, y = from_wgs84(coords[:, 0], coords[:, 1], datum)
        return np.column_stack([x, y])

    return shapely.transform(geoms, _shift)
