"""The shipped administrative boundaries and point-in-county lookup."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from geo.boundaries import (
    boundaries_path,
    load_boundaries,
    locate,
    province_codes,
    representative_points,
)

# Metres per degree near 34°N, for distance checks in plain lon/lat.
M_PER_DEG_LON = 92_000
M_PER_DEG_LAT = 111_000


def _metres(x0: float, y0: float, x1: float, y1: float) -> float:
    return float(np.hypot((x1 - x0) * M_PER_DEG_LON, (y1 - y0) * M_PER_DEG_LAT))


@pytest.fixture(scope="module")
def counties():
    return load_boundaries(level="county").set_index("adcode")


def test_file_is_small_single_layer_wgs84():
    path = boundaries_path()
    assert path.stat().st_size < 10 * 1024 * 1024
    layers = pyogrio.list_layers(path)
    assert [tuple(row) for row in layers] == [("boundaries", "MultiPolygon")]
    info = pyogrio.read_info(path, layer="boundaries")
    assert info["crs"] == "EPSG:4326"
    gdf = load_boundaries()
    assert list(gdf.columns) == ["adcode", "name", "level", "parent_adcode", "province_adcode",
                                 "city_adcode", "geometry"]
    assert (gdf.geom_type == "MultiPolygon").all()
    assert gdf.is_valid.all()
    assert gdf["adcode"].str.fullmatch(r"\d{6}").all()


def test_unit_counts_per_province():
    counts = load_boundaries().groupby(["province_adcode", "level"]).size().to_dict()
    # Henan: 17 prefecture-level cities + 济源; Shaanxi: 10 prefecture-level cities.
    assert counts == {
        ("410000", "province"): 1, ("410000", "city"): 18, ("410000", "county"): 157,
        ("610000", "province"): 1, ("610000", "city"): 10, ("610000", "county"): 107,
    }


def test_hierarchy_columns():
    gdf = load_boundaries()
    prov = gdf[gdf["level"] == "province"]
    assert prov["parent_adcode"].isna().all() and prov["city_adcode"].isna().all()
    assert (prov["province_adcode"] == prov["adcode"]).all()
    city = gdf[gdf["level"] == "city"]
    assert (city["city_adcode"] == city["adcode"]).all()
    assert (city["parent_adcode"] == city["province_adcode"]).all()
    county = gdf[gdf["level"] == "county"]
    assert (county["parent_adcode"] == county["city_adcode"]).all()
    assert county["city_adcode"].isin(city["adcode"]).all()
    assert (county["province_adcode"].str[:2] == county["adcode"].str[:2]).all()
    assert not gdf.duplicated(["level", "adcode"]).any()


def test_jiyuan_is_its_own_city_and_county():
    gdf = load_boundaries(["河南"])
    jiyuan = gdf[gdf["adcode"] == "419001"].set_index("level")
    assert set(jiyuan.index) == {"city", "county"}
    assert jiyuan.loc["county", "city_adcode"] == "419001"
    assert jiyuan.loc["city", "parent_adcode"] == "410000"
    assert jiyuan.loc["city", "geometry"].equals(jiyuan.loc["county", "geometry"])


def test_counties_tile_and_nest():
    gdf = load_boundaries()
    county = gdf[gdf["level"] == "county"]
    assert shapely.coverage_is_valid(county.geometry.to_numpy())
    for level, key in (("province", "province_adcode"), ("city", "city_adcode")):
        parents = gdf[gdf["level"] == level].set_index("adcode").geometry
        outer = parents.loc[county[key]].to_numpy()
        assert shapely.covers(outer, county.geometry.to_numpy()).all(), level
        # planar areas in degrees² are enough to compare a unit with the sum of its parts
        area = pd.Series(shapely.area(county.geometry.to_numpy())).groupby(
            county[key].to_numpy()).sum()
        np.testing.assert_allclose(area.to_numpy(),
                                   shapely.area(parents.loc[area.index].to_numpy()), rtol=1e-9)


def test_boundaries_are_wgs84_not_gcj02(counties):
    """The 新城/碑林/莲湖 tri-junction is the Xi'an Bell Tower roundabout.

    天地图 (CGCS2000) puts it at 108.94238, 34.26150; the raw AMap (GCJ-02) data at
    108.94758, 34.25935, ~530 m away. A build that forgot the datum shift fails here.
    """
    shared = set.intersection(*(set(map(tuple, shapely.get_coordinates(counties.geometry[c])))
                                for c in ("610102", "610103", "610104")))
    assert len(shared) >= 1
    x, y = np.asarray(sorted(shared)).mean(axis=0)
    assert _metres(x, y, 108.94238, 34.26150) < 150
    assert _metres(x, y, 108.94758, 34.25935) > 400


@pytest.mark.parametrize(("lon", "lat", "county", "city"), [
    (113.679, 34.789, "410105", "410100"),    # 郑州 花园路/农业路, 金水区
    (108.9594, 34.2197, "610113", "610100"),  # 西安 大雁塔, 雁塔区
    (112.39, 34.66, "410305", "410300"),      # 洛阳 涧西区
    (112.60, 35.07, "419001", "419001"),      # 济源 (its own city)
])
def test_known_points(lon, lat, county, city):
    row = locate(np.array([lon]), np.array([lat])).iloc[0]
    assert row["county_adcode"] == county
    assert row["city_adcode"] == city
    assert row["province_adcode"] == county[:2] + "0000"


def test_outside_and_missing_points_are_na():
    out = locate(np.array([116.4, np.nan, 113.68, 0.0]), np.array([39.9, 34.8, np.nan, 0.0]))
    assert list(out.columns) == ["province_adcode", "city_adcode", "county_adcode"]
    assert all(dtype == "string" for dtype in out.dtypes)
    assert out.isna().all().all()


def test_empty_input():
    out = locate(np.array([]), np.array([]))
    assert len(out) == 0
    assert list(out.columns) == ["province_adcode", "city_adcode", "county_adcode"]


def test_province_filter():
    lon, lat = np.array([113.679, 108.9594]), np.array([34.789, 34.2197])
    out = locate(lon, lat, provinces=["陕西省"])
    assert out["county_adcode"].isna().iloc[0]
    assert out["county_adcode"].iloc[1] == "610113"
    assert province_codes(["41", "河南", "410000"]) == ("410000",)
    with pytest.raises(ValueError):
        province_codes(["北京"])
    with pytest.raises(ValueError):
        load_boundaries(level="town")


def test_border_points_get_the_smallest_adcode(counties):
    """Vertices shared by two counties touch both; the smaller adcode wins, in any order."""
    a, b = "410102", "410105"  # 中原区 / 金水区
    va = shapely.get_coordinates(counties.geometry[a])
    vb = shapely.get_coordinates(counties.geometry[b])
    shared = np.asarray(sorted(set(map(tuple, va)) & set(map(tuple, vb))))
    assert len(shared) > 3
    out = locate(shared[:, 0], shared[:, 1])
    assert (out["county_adcode"] == a).all()
    # midpoints of shared edges may fall either side by rounding, but always in one county
    mid = (shared[:-1] + shared[1:]) / 2
    assert locate(mid[:, 0], mid[:, 1])["county_adcode"].notna().all()
    order = np.random.default_rng(0).permutation(len(shared))
    again = locate(shared[order, 0], shared[order, 1])
    assert (again["county_adcode"].to_numpy() == out["county_adcode"].to_numpy()[order]).all()


def test_representative_points_lie_in_their_county():
    pts = representative_points("county")
    assert len(pts) == 264
    assert {"adcode", "name", "geometry"} <= set(pts.columns)
    out = locate(pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy())
    assert (out["county_adcode"].to_numpy() == pts["adcode"].to_numpy()).all()
    cities = representative_points("city", ["河南"])
    assert len(cities) == 18


def test_locate_many_points_at_once():
    """One call for a whole column (its speed at 200k points: ``python -m benchmarks.kernels``)."""
    rng = np.random.default_rng(0)
    n = 5_000
    lon, lat = rng.uniform(105, 117, n), rng.uniform(31, 40, n)
    out = locate(lon, lat)
    assert len(out) == n
    assert 0.2 < out["county_adcode"].notna().mean() < 0.5
    assert isinstance(out.index, pd.RangeIndex)
