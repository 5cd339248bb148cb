"""Offline county-level geocoding of Chinese addresses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geo.boundaries import locate
from geo.geocode import (
    COLUMNS,
    REASON_CITY_ONLY,
    REASON_EMPTY,
    REASON_NOT_FOUND,
    REASON_OUTSIDE,
    CountyGeocoder,
    Geocoder,
)


@pytest.fixture(scope="module")
def geocoder() -> CountyGeocoder:
    return CountyGeocoder(["河南省", "陕西省"])


def test_is_a_geocoder(geocoder):
    assert isinstance(geocoder, Geocoder)


@pytest.mark.parametrize(("address", "adcode"), [
    ("河南省郑州市金水区花园路100号", "410105"),
    ("洛阳市涧西区建设路", "410305"),
    ("西安市雁塔区小寨", "610113"),
    ("新郑市龙湖镇", "410184"),        # county-level city, no province or city given
    ("济源市天坛路", "419001"),        # province-administered county-level city
    ("洛阳市偃师市首阳山镇", "410307"),  # cpca's old 偃师市 -> 偃师区 by name
    ("洛阳市吉利区", "410308"),         # merged into 孟津区, via the successor table
    ("宝鸡市凤翔区", "610322"),         # cpca does not know 凤翔区; found in the rest
])
def test_places_real_addresses_at_their_county(geocoder, address, adcode):
    out = geocoder.geocode(pd.Series([address]))
    row = out.iloc[0]
    assert row["adcode"] == adcode
    assert row["precision"] == "county"
    assert pd.isna(row["reason"])
    where = locate(np.array([row["lon"]]), np.array([row["lat"]]))
    assert where["county_adcode"].iloc[0] == adcode


def test_unplaced_addresses_say_why(geocoder):
    addresses = pd.Series(["郑州市", "asdfgh", "", "   ", None, np.nan, "北京市朝阳区建国路"],
                          dtype=object)
    out = geocoder.geocode(addresses)
    assert out["reason"].tolist() == [REASON_CITY_ONLY, REASON_NOT_FOUND, REASON_EMPTY,
                                      REASON_EMPTY, REASON_EMPTY, REASON_EMPTY, REASON_OUTSIDE]
    assert out[["lon", "lat"]].isna().all().all()
    assert out["adcode"].isna().all() and out["precision"].isna().all()


def test_outside_loaded_provinces():
    henan_only = CountyGeocoder(["河南"])
    out = henan_only.geocode(pd.Series(["西安市雁塔区小寨", "郑州市金水区"]))
    assert out["reason"].tolist()[0] == REASON_OUTSIDE
    assert out["adcode"].tolist()[1] == "410105"


def test_result_is_index_aligned_and_typed(geocoder):
    addresses = pd.Series(["西安市雁塔区小寨", None, "西安市雁塔区小寨", "郑州市"],
                          index=["b", "a", "c", "d"])
    out = geocoder.geocode(addresses)
    assert list(out.columns) == list(COLUMNS)
    assert out.index.equals(addresses.index)
    assert out.loc["b", "adcode"] == out.loc["c", "adcode"] == "610113"
    assert out.loc["b", "lon"] == out.loc["c", "lon"]
    assert out["lon"].dtype == np.float64 and out["lat"].dtype == np.float64
    assert all(out[c].dtype == "string" for c in ("adcode", "precision", "reason"))


def test_empty_series(geocoder):
    out = geocoder.geocode(pd.Series([], dtype=object))
    assert len(out) == 0 and list(out.columns) == list(COLUMNS)
