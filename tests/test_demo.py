"""The demo province generator: determinism, realism and the planted bad rows."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from data.catalogue import resolve_categories
from data.credit_code import is_valid
from data.demo import AS_OF, COUNTY_HEADERS, EQ_COLUMNS, EQUIPMENT_FILES, FILES, generate
from data.schema import PARK_KINDS, VENUE_KINDS, Kind, detect_kind
from geo.boundaries import load_boundaries
from geo.datum import normalise_datum_labels, to_wgs84, transform_geometries

N = 3000
FULLWIDTH = str.maketrans("０１２３４５６７８９", "0123456789")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        out[name] = tmp_path_factory.mktemp(f"demo_{name}")
        generate(province="河南省", equipment=N, seed=seed, out=out[name])
    return out


@pytest.fixture(scope="module")
def demo(runs: dict[str, Path]) -> Path:
    return runs["a"]


@pytest.fixture(scope="module")
def manifest(demo: Path) -> dict:
    return json.loads((demo / "MANIFEST.json").read_text(encoding="utf-8"))


def _read_equipment(demo: Path, name: str) -> pd.DataFrame:
    """One equipment file with the main file's Chinese headers and a 'row' column."""
    path = demo / name
    if name.endswith(".xlsx"):
        frame = pd.read_excel(path, engine="calamine", dtype=object)
    else:
        encoding = "gbk" if name == FILES["county"] else "utf-8-sig"
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
    if name == FILES["county"]:
        main = pd.read_csv(demo / FILES["equipment"], nrows=0, encoding="utf-8-sig").columns
        frame.columns = [dict(zip([COUNTY_HEADERS[c] for c in EQ_COLUMNS], main, strict=True))[c]
                         for c in frame.columns]
    frame["row"] = np.arange(len(frame)) + 2
    frame["file"] = name
    return frame


@pytest.fixture(scope="module")
def equipment(demo: Path) -> pd.DataFrame:
    return pd.concat([_read_equipment(demo, f) for f in EQUIPMENT_FILES], ignore_index=True)


def _rows(manifest: dict, section: str = "bad_rows") -> set[tuple[str, int]]:
    return {(f, r) for info in manifest[section].values() for f, rows in info["rows"].items()
            for r in rows}


def _dates(values: pd.Series) -> pd.Series:
    """The generator's date formats (ISO, 2021/3/5, 2021年3月5日, 20210305, full width)."""
    serial = values.map(lambda v: isinstance(v, (int, float)) and not pd.isna(v))
    excel = pd.to_datetime("1899-12-30") + pd.to_timedelta(
        pd.to_numeric(values.where(serial), errors="coerce"), unit="D")
    s = values.map(lambda v: v.strftime("%Y-%m-%d") if hasattr(v, "strftime") else v)
    s = s.where(~serial, excel.dt.strftime("%Y-%m-%d"))
    s = s.astype("string").str.translate(FULLWIDTH)
    s = s.str.replace(r"^(\d{4})(\d{2})(\d{2})$", r"\1-\2-\3", regex=True)
    s = s.str.replace(r"[年/]", "-", regex=True).str.replace("月", "-").str.replace("日", "")
    return pd.to_datetime(s, format="%Y-%m-%d", errors="coerce")


def _wgs84(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    lon = pd.to_numeric(frame["经度"], errors="coerce").to_numpy(dtype=float)
    lat = pd.to_numeric(frame["纬度"], errors="coerce").to_numpy(dtype=float)
    labels = normalise_datum_labels(frame["坐标系"].fillna("WGS84").replace("", "WGS84")
                                    .to_numpy(dtype=object))
    return to_wgs84(lon, lat, labels)


def test_same_seed_gives_identical_bytes(runs: dict[str, Path]) -> None:
    names = sorted(p.name for p in runs["a"].iterdir())
    assert names == sorted(p.name for p in runs["b"].iterdir())
    assert set(FILES.values()) | {"MANIFEST.json"} == set(names)
    for name in names:
        assert (runs["a"] / name).read_bytes() == (runs["b"] / name).read_bytes(), name


def test_other_seed_differs(runs: dict[str, Path]) -> None:
    for name in (FILES["equipment"], FILES["units"], FILES["parks"]):
        assert (runs["a"] / name).read_bytes() != (runs["c"] / name).read_bytes(), name


def test_county_export_is_gbk(demo: Path) -> None:
    data = (demo / FILES["county"]).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    text = data.decode("gbk")
    assert text.startswith("设备代码,")
    assert set(text.splitlines()[1].split(",")) >= {"BD09"}


def test_headers_are_recognised(demo: Path) -> None:
    expect = {FILES["equipment"]: Kind.EQUIPMENT, FILES["county"]: Kind.EQUIPMENT,
              FILES["units"]: Kind.UNITS, FILES["hazards"]: Kind.HAZARDS,
              FILES["checks"]: Kind.CHECKS, FILES["officers"]: Kind.OFFICERS}
    for name, kind in expect.items():
        encoding = "gbk" if name == FILES["county"] else "utf-8-sig"
        headers = list(pd.read_csv(demo / name, nrows=0, encoding=encoding).columns)
        assert detect_kind(headers) == kind, name
    xlsx = pd.read_excel(demo / FILES["xlsx"], engine="calamine", nrows=0)
    assert detect_kind([str(c) for c in xlsx.columns]) == Kind.EQUIPMENT


def test_manifest_counts_match_files(demo: Path, manifest: dict, equipment: pd.DataFrame
                                     ) -> None:
    assert manifest["seed"] == 7 and manifest["equipment"] == N
    assert manifest["as_of"] == AS_OF.isoformat()
    assert len(equipment) == N
    for name in EQUIPMENT_FILES:
        assert manifest["files"][name]["rows"] == int((equipment["file"] == name).sum())
    for key in ("units", "hazards", "checks", "officers"):
        rows = len(pd.read_csv(demo / FILES[key], dtype=str, keep_default_na=False))
        assert manifest["files"][FILES[key]]["rows"] == rows
    assert 0.03 <= manifest["files"][FILES["xlsx"]]["rows"] / N <= 0.07


def test_every_planted_kind_is_present(manifest: dict, equipment: pd.DataFrame) -> None:
    expected = {"missing_registration_code", "missing_credit_code", "bad_credit_code",
                "unknown_category", "bad_date", "coord_range", "outside_region",
                "ungeocodable_address", "duplicate_within_file", "duplicate_across_files",
                "unit_bad_credit_code", "unit_missing_name", "hazard_unknown_equipment",
                "check_unknown_unit"}
    assert expected <= set(manifest["bad_rows"])
    for name, info in manifest["bad_rows"].items():
        assert info["count"] >= 1, name
        assert sum(len(r) for r in info["rows"].values()) == info["count"], name
    for name in ("lonlat_swapped", "address_only"):
        assert manifest["flags"][name]["count"] >= 1
    bad = equipment.set_index(["file", "row"])

    def rows(name: str, section: str = "bad_rows") -> pd.DataFrame:
        keys = [(f, r) for f, rs in manifest[section][name]["rows"].items() for r in rs]
        return bad.loc[keys]

    assert (rows("missing_registration_code")["设备注册代码"].fillna("") == "").all()
    assert (rows("missing_credit_code")["统一社会信用代码"].fillna("") == "").all()
    assert not is_valid(rows("bad_credit_code")["统一社会信用代码"].astype(str)).any()
    assert set(rows("unknown_category")["设备类别代码"]) <= {"9999", "电梯X"}
    assert set(rows("bad_date")["投用日期"]) <= {"2021-13-45", "去年", "2019-02-30"}
    assert (pd.to_numeric(rows("coord_range")["经度"]) > 180).all()
    assert (pd.to_numeric(rows("lonlat_swapped", "flags")["纬度"]) > 90).all()
    assert (rows("ungeocodable_address")["使用地址"].str.startswith("某某")).all()
    assert (rows("address_only", "flags")["经度"].fillna("") == "").all()
    assert (rows("address_only", "flags")["使用地址"].str.startswith("河南省")).all()
    for pair in manifest["duplicates"]["duplicate_within_file"]:
        assert pair["kept"][0] == pair["duplicate"][0] and pair["kept"][1] < pair["duplicate"][1]
    for kind in ("duplicate_within_file", "duplicate_across_files"):
        for pair in manifest["duplicates"][kind]:
            kept, dup = bad.loc[tuple(pair["kept"])], bad.loc[tuple(pair["duplicate"])]
            assert str(kept["设备注册代码"]) == str(dup["设备注册代码"])
    for pair in manifest["duplicates"]["duplicate_across_files"]:
        assert pair["kept"][0] == FILES["equipment"] != pair["duplicate"][0]


def test_good_codes_unique_and_valid(manifest: dict, equipment: pd.DataFrame) -> None:
    good = equipment[~equipment.set_index(["file", "row"]).index.isin(list(_rows(manifest)))]
    codes = good["设备注册代码"].astype(str)
    assert codes.is_unique
    assert codes.str.len().isin([12, 20]).all()
    assert (codes.str.len() == 20).mean() > 0.8
    province = codes.str[2:4].where(codes.str.len() == 12, codes.str[4:6])
    assert (province == "41").all()  # the province in every code, legacy ones too
    assert is_valid(good["统一社会信用代码"].astype(str)).all()
    resolved = resolve_categories(good["设备类别代码"].astype(str))
    assert resolved["category"].notna().all()
    assert (good["设备类别代码"].astype(str) == "电梯").any()  # names as some exports write


def test_category_mix(manifest: dict, equipment: pd.DataFrame) -> None:
    top = resolve_categories(equipment["设备类别代码"].astype(str))["category"].value_counts()
    assert top.index[0] == "3000"
    assert 0.5 <= top["3000"] / N <= 0.65
    for code in ("1000", "2000", "4000", "5000", "8000"):
        assert top[code] < top["3000"]
    assert top["9000"] < top["6000"] < top["1000"]
    assert manifest["categories_good"]["3000"] == max(manifest["categories_good"].values())


def test_rides_and_ropeways_are_at_scenic_spots(demo: Path, equipment: pd.DataFrame) -> None:
    top = resolve_categories(equipment["设备类别代码"].astype(str))["category"]
    crowd = equipment[top.isin(["6000", "9000"]).to_numpy()]
    assert len(crowd) >= 6 and (top == "9000").sum() >= 2
    lon, lat = _wgs84(crowd)
    venues = pyogrio.read_dataframe(demo / FILES["venues"], layer="venues")
    spots = venues[venues["场所类型"].isin(["景区", "游乐场"])].geometry.to_numpy()
    tree = shapely.STRtree(spots)
    pts = shapely.points(lon, lat)
    _, dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
    assert (dist < 0.01).all()  # within ~1 km of a scenic spot or amusement park


def test_overdue_fraction(manifest: dict, equipment: pd.DataFrame) -> None:
    good = equipment[~equipment.set_index(["file", "row"]).index.isin(list(_rows(manifest)))]
    due = _dates(good["下次检验日期"])
    last = _dates(good["上次检验日期"])
    commissioned = _dates(good["投用日期"])
    assert due.notna().all() and last.notna().all() and commissioned.notna().all()
    assert (last >= commissioned).all() and (due > last).all()
    in_use = (good["设备状态"] == "在用").to_numpy()
    overdue = in_use & (due < pd.Timestamp(AS_OF)).to_numpy()
    assert 0.02 <= overdue.sum() / in_use.sum() <= 0.07
    assert overdue.sum() == manifest["counts"]["overdue_in_use"]
    assert 0.85 <= in_use.mean() <= 0.97
    assert (good["检验结论"] == "合格").mean() > 0.85
    elevators = resolve_categories(good["设备类别代码"].astype(str))["category"] == "3000"
    insured = good.loc[elevators.to_numpy(), "是否投保"]
    assert 0.5 <= (insured == "是").mean() <= 0.7


def test_date_formats_are_mixed(demo: Path) -> None:
    text = (demo / FILES["equipment"]).read_text(encoding="utf-8-sig")
    for needle in ("年", "/", "２０", ",20"):
        assert needle in text
    xlsx = pd.read_excel(demo / FILES["xlsx"], engine="calamine", dtype=object)
    kinds = {type(v).__name__ for v in xlsx["投用日期"]}
    assert {"datetime", "str"} <= kinds
    assert any(isinstance(v, (int, float)) and 20000 < v < 60000 for v in xlsx["投用日期"])


def test_good_points_inside_province(manifest: dict, equipment: pd.DataFrame) -> None:
    skip = _rows(manifest) | _rows(manifest, "flags")
    good = equipment[~equipment.set_index(["file", "row"]).index.isin(list(skip))]
    lon, lat = _wgs84(good)
    assert np.isfinite(lon).all() and np.isfinite(lat).all()
    province = shapely.union_all(load_boundaries(["410000"], level=None).query(
        "level == 'province'").geometry.to_numpy())
    assert shapely.contains_xy(province, lon, lat).all()
    datums = set(good["坐标系"])
    assert {"WGS84", "GCJ02", "BD09"} <= datums


def test_crowded_places_hold_elevators(demo: Path, equipment: pd.DataFrame) -> None:
    venues = pyogrio.read_dataframe(demo / FILES["venues"], layer="venues")
    busy = venues[venues["场所类型"].isin(["商场", "医院", "车站"])].geometry.to_numpy()
    top = resolve_categories(equipment["设备类别代码"].astype(str))["category"]
    elev = equipment[top.eq("3000").fillna(False).to_numpy()]
    lon, lat = _wgs84(elev)
    ok = np.isfinite(lon)
    inside = shapely.STRtree(busy).query(shapely.points(lon[ok], lat[ok]),
                                         predicate="within")[0]
    assert len(np.unique(inside)) / ok.sum() > 0.03


def test_parks(demo: Path) -> None:
    data = json.loads((demo / FILES["parks"]).read_text(encoding="utf-8"))
    assert data["坐标系"] == "GCJ02"
    parks = gpd.read_file(demo / FILES["parks"])
    assert 80 <= len(parks) <= 130
    assert parks["园区编号"].is_unique
    assert set(parks["园区类型"]) <= set(PARK_KINDS)
    assert (parks["坐标系"] == "GCJ02").all()
    geoms = parks.geometry.to_numpy()
    assert shapely.is_valid(geoms).all()
    wgs = transform_geometries(geoms, "GCJ02", to_wgs=True)
    area = gpd.GeoSeries(wgs, crs=4326).to_crs(
        "+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +datum=WGS84").area / 1e6
    assert area.between(0.5, 20).all()
    province = load_boundaries(["410000"]).query("level == 'province'").geometry.iloc[0]
    assert shapely.within(wgs, province).all()


def test_venues(demo: Path) -> None:
    assert pyogrio.list_layers(demo / FILES["venues"])[0][0] == "venues"
    venues = pyogrio.read_dataframe(demo / FILES["venues"], layer="venues")
    assert venues.crs.to_epsg() == 4490
    assert 800 <= len(venues) <= 1200
    assert venues["场所编号"].is_unique
    assert set(venues["场所类型"]) <= set(VENUE_KINDS)
    assert {"商场", "医院", "车站", "学校", "景区", "游乐场"} <= set(venues["场所类型"])
    geoms = venues.geometry.to_numpy()
    assert shapely.is_valid(geoms).all()
    size = gpd.GeoSeries(geoms, crs=4490).to_crs(3857).bounds
    across = np.maximum(size["maxx"] - size["minx"], size["maxy"] - size["miny"]) * np.cos(
        np.radians(34))
    assert across.between(30, 800).all()
    visitors = venues.groupby("场所类型")["日均客流"].median()
    assert visitors["幼儿园"] < visitors["商场"]


def test_units_hazards_checks_officers(demo: Path, manifest: dict,
                                       equipment: pd.DataFrame) -> None:
    units = pd.read_csv(demo / FILES["units"], dtype=str, keep_default_na=False)
    bad_units = {r for f, r in _rows(manifest) if f == FILES["units"]}
    good_units = units[~np.isin(np.arange(len(units)) + 2, list(bad_units))]
    assert good_units["统一社会信用代码"].is_unique
    assert is_valid(good_units["统一社会信用代码"]).all()
    assert good_units["五有得分"].astype(int).between(0, 5).all()
    assert good_units["五有得分"].astype(int).mean() > 3.3
    assert 0.002 <= (good_units["黑名单"] == "是").mean() <= 0.03
    assert (good_units["近三年事故数"] == "0").mean() > 0.9
    assert set(good_units["行业门类"]) >= {"C", "K", "G", "Q", "P"}
    known_units = set(good_units["统一社会信用代码"])
    good = ~equipment.set_index(["file", "row"]).index.isin(list(_rows(manifest)))
    assert equipment.loc[good, "统一社会信用代码"].isin(known_units).all()

    hazards = pd.read_csv(demo / FILES["hazards"], dtype=str, keep_default_na=False)
    bad_h = np.isin(np.arange(len(hazards)) + 2,
                    manifest["bad_rows"]["hazard_unknown_equipment"]["rows"][FILES["hazards"]])
    codes = set(equipment["设备注册代码"].astype(str))
    assert hazards.loc[~bad_h, "设备注册代码"].isin(codes).all()
    assert not hazards.loc[bad_h, "设备注册代码"].isin(codes).any()
    assert 0.02 <= (~bad_h).sum() / N <= 0.06
    assert 0.04 <= (hazards["隐患等级"] == "重大").mean() <= 0.2
    found, closed, deadline = (_dates(hazards[c]) for c in ("发现日期", "销号日期", "整改期限"))
    done = hazards["状态"] == "已销号"
    assert closed[done].notna().all() and closed[~done].isna().all()
    assert (closed[done] >= found[done]).all()
    assert (deadline[~done] < pd.Timestamp(AS_OF)).any()
    assert set(hazards["状态"]) == {"已登记", "整改中", "已销号"}

    checks = pd.read_csv(demo / FILES["checks"], dtype=str, keep_default_na=False)
    bad_c = np.isin(np.arange(len(checks)) + 2,
                    manifest["bad_rows"]["check_unknown_unit"]["rows"][FILES["checks"]])
    assert checks.loc[~bad_c, "统一社会信用代码"].isin(known_units).all()
    assert not checks.loc[bad_c, "统一社会信用代码"].isin(known_units).any()
    assert set(checks["检查结果"]) <= {"符合", "责令整改", "立案调查"}
    checked = _dates(checks["检查日期"])
    assert (checked < pd.Timestamp(AS_OF)).all()
    assert (checked >= pd.Timestamp(AS_OF) - pd.Timedelta(days=731)).all()

    officers = pd.read_csv(demo / FILES["officers"], dtype=str, keep_default_na=False)
    assert officers["网格员编号"].is_unique
    assert checks["检查人员编号"].isin(officers["网格员编号"]).all()
    by_cells = officers["网格单元"] != ""
    by_county = officers["负责区县代码"] != ""
    assert (by_cells ^ by_county).all() and by_cells.any() and by_county.any()
    counties = set(load_boundaries(["410000"]).query("level == 'county'")["adcode"])
    assert set(officers.loc[by_county, "负责区县代码"]) <= counties
    cells = officers.loc[by_cells, "网格单元"].str.split(";").explode()
    assert cells.str.fullmatch(r"88[0-9a-f]{13}").all() and cells.is_unique
