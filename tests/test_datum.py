"""Datum conversion against published pairs (< 1 m) and round trips."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo import datum
from geo.datum import Datum, UnknownDatumError, parse_datum

# (wgs lat, wgs lng, gcj lat, gcj lng): the test vectors of the eviltransform project
# (googollee/eviltransform, tests for its Python, PHP and other ports)
WGS_GCJ = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),    # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),    # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),    # Beijing
]
# (gcj lng, gcj lat, bd lng, bd lat): published GCJ-02 -> BD-09 pairs of the gcoord
# (hujiulong/gcoord, test/unit/crs/GCJ02.spec.js) and coordtransform-rs test suites. The
# eviltransform BD-09 vectors are not used: they disagree with the BD-09 formula by 10-40 m
# (they appear to come from Baidu's online service, not the published transform).
GCJ_BD = [
    (123.0, 45.0, 123.00636499, 45.00636899),
    (116.404, 39.915, 116.41036949371029, 39.92133699351021),
]


def metres(lon1, lat1, lon2, lat2):
    lat = np.radians((np.asarray(lat1) + np.asarray(lat2)) / 2)
    dx = np.radians(np.asarray(lon1) - np.asarray(lon2)) * np.cos(lat) * 6_371_000
    dy = np.radians(np.asarray(lat1) - np.asarray(lat2)) * 6_371_000
    return np.hypot(dx, dy)


def test_wgs84_to_gcj02_matches_published_pairs():
    wlat, wlng, glat, glng = map(np.array, zip(*WGS_GCJ, strict=True))
    x, y = datum.wgs84_to_gcj02(wlng, wlat)
    assert metres(x, y, glng, glat).max() < 0.01


def test_gcj02_to_wgs84_within_a_metre_of_published_pairs():
    wlat, wlng, glat, glng = map(np.array, zip(*WGS_GCJ, strict=True))
    x, y = datum.gcj02_to_wgs84(glng, glat)
    assert metres(x, y, wlng, wlat).max() < 1.0


def test_bd09_within_a_metre_of_published_pairs():
    glng, glat, blng, blat = map(np.array, zip(*GCJ_BD, strict=True))
    x, y = datum.gcj02_to_bd09(glng, glat)
    assert metres(x, y, blng, blat).max() < 1.0
    x, y = datum.bd09_to_gcj02(blng, blat)
    assert metres(x, y, glng, glat).max() < 1.0


def test_offsets_are_hundreds_of_metres_in_henan():
    x, y = datum.wgs84_to_gcj02(np.array([113.65]), np.array([34.76]))
    assert 300 < metres(x, y, [113.65], [34.76])[0] < 1000


@settings(max_examples=50, deadline=None)
@given(st.floats(73.7, 134.7), st.floats(18.2, 53.4))
def test_round_trip_is_exact_to_a_centimetre(lon, lat):
    for fwd, back in ((datum.wgs84_to_gcj02, datum.gcj02_to_wgs84),
                      (datum.wgs84_to_bd09, datum.bd09_to_wgs84)):
        x, y = fwd(np.array([lon]), np.array([lat]))
        bx, by = back(x, y)
        assert metres(bx, by, [lon], [lat])[0] < 0.01


def test_to_wgs84_converts_per_row_and_leaves_nan():
    lon = np.array([113.65, 113.65, 113.65, np.nan])
    lat = np.array([34.76, 34.76, 34.76, np.nan])
    gx, gy = datum.wgs84_to_gcj02(lon[:1], lat[:1])
    bx, by = datum.wgs84_to_bd09(lon[:1], lat[:1])
    src_lon = np.array([113.65, gx[0], bx[0], np.nan])
    src_lat = np.array([34.76, gy[0], by[0], np.nan])
    x, y = datum.to_wgs84(src_lon, src_lat,
                          np.array([Datum.CGCS2000, Datum.GCJ02, Datum.BD09, Datum.GCJ02]))
    assert metres(x[:3], y[:3], lon[:3], lat[:3]).max() < 0.01
    assert np.isnan(x[3])


@pytest.mark.parametrize("label,expected", [
    ("wgs84", Datum.WGS84), ("WGS-84", Datum.WGS84), ("EPSG:4490", Datum.CGCS2000),
    ("gcj-02", Datum.GCJ02), ("火星坐标", Datum.GCJ02), ("bd09ll", Datum.BD09),
    ("百度", Datum.BD09),
])
def test_parse_datum_aliases(label, expected):
    assert parse_datum(label) == expected


def test_unknown_datum():
    with pytest.raises(UnknownDatumError):
        parse_datum("Beijing54")
    assert datum.normalise_datum_labels(["GCJ02", "xian80", ""]).tolist() == ["GCJ02", "", ""]
