"""Aggregations for “分区域、分级别、分行业、网格化” supervision: H3 risk cells, regions,
industries within regions, and grid officers' cells.

Henan plan 二（二）: "按照“分区域、分级别、分行业、网格化”原则，推进特种设备按设备类别、使用场所、
应用行业等开展分类监管". Every layer carries the same indicators (:data:`INDICATOR_COLUMNS`),
computed once by :func:`_indicators` from group sums, so a county, a hexagon and an industry
read alike. Sums are additive: a parent hexagon, a city or a province holds exactly the sum
of what lies in it, and nothing is dropped silently (:func:`unlocated`, ``attrs``).

Grouping works on integer codes with ``np.bincount`` (no Python objects per row), so 1M
pieces over five resolutions take a few seconds, most of it drawing the hexagons.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from h3ronpy import cells_resolution
from h3ronpy.vector import cells_to_wkb_polygons
from pydantic import BaseModel, ConfigDict, Field, field_validator
from scipy import sparse

from data.catalogue import TOP_CATEGORIES
from geo.cells import cell_centres, from_strings, parents, points_to_cells, to_strings
from layers.columns import arrow_trimmed, flags, in_use, number_array, text, top_categories
from layers.frames import ELEVATORS, LEVEL_COUNT_COLUMNS, LEVELS

# --------------------------------------------------------------------------- constants

DEFAULT_RESOLUTIONS: tuple[int, ...] = (5, 6, 7, 8, 9)
ADMIN_LEVELS: tuple[str, ...] = ("province", "city", "county")
CATEGORY_CODES: tuple[str, ...] = tuple(TOP_CATEGORIES)
CATEGORY_COLUMNS: tuple[str, ...] = tuple(f"cat_{code}" for code in CATEGORY_CODES)

# GB/T 4754-2017《国民经济行业分类》的 20 个门类（domain.md：分行业 = 使用单位所属门类 A–T）.
INDUSTRIES: dict[str, str] = {
    "A": "农、林、牧、渔业",
    "B": "采矿业",
    "C": "制造业",
    "D": "电力、热力、燃气及水生产和供应业",
    "E": "建筑业",
    "F": "批发和零售业",
    "G": "交通运输、仓储和邮政业",
    "H": "住宿和餐饮业",
    "I": "信息传输、软件和信息技术服务业",
    "J": "金融业",
    "K": "房地产业",
    "L": "租赁和商务服务业",
    "M": "科学研究和技术服务业",
    "N": "水利、环境和公共设施管理业",
    "O": "居民服务、修理和其他服务业",
    "P": "教育",
    "Q": "卫生和社会工作",
    "R": "文化、体育和娱乐业",
    "S": "公共管理、社会保障和社会组织",
    "T": "国际组织",
}
UNKNOWN_INDUSTRY = "未知"
INDUSTRY_KEYS: tuple[str, ...] = (*INDUSTRIES, UNKNOWN_INDUSTRY)
INDUSTRY_NAMES: dict[str, str] = {**INDUSTRIES, UNKNOWN_INDUSTRY: "行业未知"}

INDICATOR_COLUMNS: tuple[str, ...] = (
    "equipment", *LEVEL_COUNT_COLUMNS, *CATEGORY_COLUMNS, "risk_score", "risk_index",
    "max_level", "dominant_category", "dominant_category_name", "open_hazards",
    "open_major_hazards", "overdue", "overdue_rate")
REGION_COLUMNS: tuple[str, ...] = ("adcode", "name", "admin_level", "parent_adcode")
UNIT_COUNT_COLUMNS: tuple[str, ...] = ("units", *(f"units_{lv}" for lv in LEVELS))

# level / level_share: the area's grade from the share of its pieces at each level
# (:func:`area_levels`); max_level stays the single worst piece.
AREA_LEVEL_COLUMNS: tuple[str, ...] = ("level", "level_share")
CELL_COLUMNS: tuple[str, ...] = (
    "h3", "resolution", *AREA_LEVEL_COLUMNS, *INDICATOR_COLUMNS, "geometry")
REGIONS_COLUMNS: tuple[str, ...] = (
    *REGION_COLUMNS, "province_adcode", "city_adcode", *AREA_LEVEL_COLUMNS, *INDICATOR_COLUMNS,
    *UNIT_COUNT_COLUMNS, "geometry")
INDUSTRIES_COLUMNS: tuple[str, ...] = (
    *REGION_COLUMNS, "province_adcode", "city_adcode", "industry", "industry_name",
    *INDICATOR_COLUMNS, "geometry")
GRID_COLUMNS: tuple[str, ...] = (
    "officer_id", "officer_name", "county_adcode", "h3", *INDICATOR_COLUMNS, "geometry")


class AggregateRules(BaseModel):
    """分区域、分级别、分行业、网格化汇总的可调参数（豫市监办〔2021〕55号 二（二））."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cell_resolutions: tuple[int, ...] = Field(
        default=DEFAULT_RESOLUTIONS,
        description="风险网格图层输出的 H3 分辨率（0–15）；最细一级由设备坐标计算，"
                    "较粗各级取其父网格，保证父网格合计等于子网格之和")

    @field_validator("cell_resolutions")
    @classmethod
    def _resolutions(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v:
            raise ValueError("至少需要一个 H3 分辨率")
        if any(r < 0 or r > 15 for r in v):
            raise ValueError("H3 分辨率须在 0 至 15 之间")
        if len(set(v)) != len(v):
            raise ValueError("H3 分辨率不得重复")
        return tuple(sorted(v))

    # 风险四色图 practice: an area is rated by the share of its higher-risk units, not by its
    # single worst one (one red piece among fifty blue ones is not a red cell).
    red_share: float = Field(
        default=0.25, gt=0, le=1,
        description="网格、行政区定为红色（重大）所需的重大风险在用设备占比下限；区域等级按"
                    "“达到该等级及以上的设备占比”逐级判定，而非取区域内最高一台设备的等级")
    orange_share: float = Field(
        default=0.25, gt=0, le=1,
        description="定为橙色（较大）所需的较大及以上风险在用设备占比下限")
    yellow_share: float = Field(
        default=0.25, gt=0, le=1,
        description="定为黄色（一般）所需的一般及以上风险在用设备占比下限；其余有在用设备的"
                    "区域为蓝色（低）")


# --------------------------------------------------------------------------- per-row parts

# Layout of the group-sum matrix: every column is additive.
_N_LEV, _N_CAT = len(LEVELS), len(CATEGORY_CODES)
_EQ = 0
_LEV = slice(1, 1 + _N_LEV)
_CAT = slice(_LEV.stop, _LEV.stop + _N_CAT)
_SCORE, _OPEN, _MAJOR, _OVERDUE, _ROWS = range(_CAT.stop, _CAT.stop + 5)
_DCAT = slice(_ROWS + 1, _ROWS + 1 + _N_CAT)
_WIDTH = _DCAT.stop


def _total_columns() -> tuple[tuple[str, str, str | None], ...]:
    """(name, what, value) of each column of the group-sum matrix, in order."""
    named: dict[int, tuple[str, str, str | None]] = {
        _EQ: ("equipment", "in_use", None), _SCORE: ("risk_score", "score", None),
        _OPEN: ("open_hazards", "open_hazards", None),
        _MAJOR: ("open_major_hazards", "open_major_hazards", None),
        _OVERDUE: ("overdue", "overdue", None), _ROWS: ("rows", "rows", None)}
    for j, level in enumerate(LEVELS):
        named[_LEV.start + j] = (LEVEL_COUNT_COLUMNS[j], "level", level)
    for j, code in enumerate(CATEGORY_CODES):
        named[_CAT.start + j] = (CATEGORY_COLUMNS[j], "category", code)
        named[_DCAT.start + j] = (f"score_{code}", "category_score", code)
    return tuple(named[i] for i in range(_WIDTH))


#: The group-sum matrix's columns as (name, what, value), for a store that sums them where
#: the rows are (:mod:`service.store.postgis.risk_sums`). ``what`` is what a piece adds:
#: ``rows`` 1; ``in_use`` 1 when in use; ``level`` / ``category`` 1 when in use at that
#: level / of that top category; ``score`` its D when in use; ``category_score`` its D when
#: in use and of that category; ``overdue`` 1 when in use and overdue; ``open_hazards`` /
#: ``open_major_hazards`` its count (0 when missing), in use or not.
TOTAL_COLUMNS: tuple[tuple[str, str, str | None], ...] = _total_columns()
#: The resolution a scoped caller's risk cells are nested from (every tile's resolution
#: is one of DEFAULT_RESOLUTIONS), stored per piece as the equipment layer's ``risk_cell``.
FINEST_RISK_RESOLUTION = max(DEFAULT_RESOLUTIONS)
#: D is summed in twentieths of a point. L, E and C are on the LEC scales (layers.risk), so
#: every D is a whole number of twentieths (0.1 × 0.5 = 0.05 is the finest step) and every
#: column of the group-sum matrix holds whole numbers far below 2**53, which float64 adds
#: exactly in any order and any grouping. Sums of parts of the rows therefore add up to the
#: sums of all rows to the last bit: the Dask build sums its partitions on the workers and
#: adds those sums (:class:`Sums`), and gets every aggregate layer the in-process build gets.
SCORE_STEPS = 20
#: The equipment columns the group sums are made from (with lon/lat).
TOTAL_INPUTS: tuple[str, ...] = ("in_use", "level", "top_category", "D", "open_hazards",
                                 "open_major_hazards", "overdue")


@dataclass(frozen=True)
class _Parts:
    """What each equipment row adds to its group (arrays aligned with the rows)."""

    in_use: np.ndarray      # float 0/1: counted in ``equipment`` (graded, i.e. in use)
    level: np.ndarray       # int index into LEVELS, -1 when not graded
    category: np.ndarray    # int index into CATEGORY_CODES, -1 when unknown
    d: np.ndarray           # LEC D (0 when not graded)
    open_hazards: np.ndarray
    open_major: np.ndarray
    overdue: np.ndarray


def _index_of(values: pd.Series | np.ndarray, choices: tuple[str, ...]) -> np.ndarray:
    """Position of each value (trimmed) in ``choices``; -1 when absent or NA (Arrow hash
    lookup: no Python object per row)."""
    arr = arrow_trimmed(values)
    found = pc.index_in(arr, value_set=pa.array(list(choices), type=arr.type))
    return np.array(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.int64)


def _labels(index: np.ndarray, choices: tuple[str, ...]) -> pd.arrays.ArrowStringArray:
    """``choices[index]`` as a string array, <NA> where index < 0 (no per-row objects)."""
    index = np.asarray(index, dtype=np.int64)
    arr = pa.DictionaryArray.from_arrays(
        pa.array(np.maximum(index, 0).astype(np.int32), mask=index < 0),
        pa.array(list(choices), type=pa.string()))
    return pd.array(arr.cast(pa.string()), dtype="string")


def _parts(equipment: pd.DataFrame) -> _Parts:
    eq = equipment
    use = in_use(eq)
    top = top_categories(eq)
    level = _index_of(eq["level"], LEVELS) if "level" in eq else np.full(len(eq), -1)
    return _Parts(
        in_use=use.astype("float64"),
        level=np.where(use, level, -1),
        category=_index_of(top, CATEGORY_CODES),
        d=score_steps(np.where(use, number_array(eq, "D"), 0.0)),
        open_hazards=number_array(eq, "open_hazards"),
        open_major=number_array(eq, "open_major_hazards"),
        overdue=(flags(eq, "overdue") & use).astype("float64"))


def score_steps(d: np.ndarray) -> np.ndarray:
    """D in whole twentieths (:data:`SCORE_STEPS`); a D off that step is refused, as it
    could not be summed exactly."""
    steps = np.rint(d * SCORE_STEPS)
    off = np.flatnonzero(np.abs(d * SCORE_STEPS - steps) > 1e-6)
    if len(off):
        raise ValueError(f"D {d[off[0]]!r} (row {int(off[0])}) is not a product of LEC scale "
                         "values (a whole number of twentieths)")
    return steps


def _totals(p: _Parts, codes: np.ndarray, k: int) -> np.ndarray:
    """Group sums (k × _WIDTH) of the rows' parts; rows with code -1 are in no group."""
    out = np.zeros((k, _WIDTH))
    if not k:
        return out
    ok = codes >= 0
    g = codes[ok]

    def add(col: int, weights: np.ndarray) -> None:
        out[:, col] = np.bincount(g, weights=weights[ok], minlength=k)

    add(_EQ, p.in_use)
    add(_SCORE, p.d)
    add(_OPEN, p.open_hazards)
    add(_MAJOR, p.open_major)
    add(_OVERDUE, p.overdue)
    out[:, _ROWS] = np.bincount(g, minlength=k)
    lev = p.level[ok]
    has = lev >= 0
    out[:, _LEV] = np.bincount(g[has] * _N_LEV + lev[has], minlength=k * _N_LEV).reshape(
        k, _N_LEV)
    cat = p.category[ok]
    has = (cat >= 0) & (p.in_use[ok] > 0)
    key = g[has] * _N_CAT + cat[has]
    out[:, _CAT] = np.bincount(key, minlength=k * _N_CAT).reshape(k, _N_CAT)
    out[:, _DCAT] = np.bincount(key, weights=p.d[ok][has], minlength=k * _N_CAT).reshape(
        k, _N_CAT)
    return out


def _regroup(totals: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """Sums of group rows into coarser groups (exact nesting: sums of sums)."""
    n = len(totals)
    member = sparse.csr_array((np.ones(n), (codes, np.arange(n))), shape=(k, n))
    return np.asarray(member @ totals)


def _sum_rows(totals: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """Sums of group-sum rows into ``k`` groups by ``codes`` (rows with code -1 in none)."""
    ok = np.flatnonzero(np.asarray(codes) >= 0)
    if len(ok) == len(codes):
        return _regroup(totals, np.asarray(codes), k)
    return _regroup(totals[ok], np.asarray(codes)[ok], k)


def _ints(values: np.ndarray) -> pd.arrays.IntegerArray:
    return pd.array(np.rint(values).astype(np.int64), dtype="Int64")


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (a region without equipment has nothing at risk)."""
    return np.divide(num, den, out=np.zeros(len(num)), where=den > 0)


def _indicators(totals: np.ndarray) -> pd.DataFrame:
    """The indicator columns of each group from its sums (the one definition)."""
    t = totals
    k = len(t)
    # equipment: graded pieces, i.e. in use (安全风险分级管控 grades only 在用 equipment).
    out: dict[str, object] = {"equipment": _ints(t[:, _EQ])}
    # n_<level>: “分级别” (Henan plan 二（二）), the four colours of 风险分级管控.
    levels = t[:, _LEV]
    for j, col in enumerate(LEVEL_COUNT_COLUMNS):
        out[col] = _ints(levels[:, j])
    # cat_<code>: “按设备类别…开展分类监管” (Henan plan 二（二）), one column per 种类.
    cats = t[:, _CAT]
    for j, col in enumerate(CATEGORY_COLUMNS):
        out[col] = _ints(cats[:, j])
    # risk_score: sum of LEC D (domain.md, LEC) — additive; risk_index: mean D per piece.
    # (one rounding each: the sum of twentieths is exact)
    out["risk_score"] = t[:, _SCORE] / SCORE_STEPS
    out["risk_index"] = _ratio(t[:, _SCORE], t[:, _EQ] * SCORE_STEPS)
    # max_level: the most serious level present (LEVELS runs red → blue).
    present = levels > 0
    first = present.argmax(axis=1) if k else np.zeros(0, dtype=np.int64)
    out["max_level"] = _labels(np.where(present.any(axis=1), first, -1), LEVELS)
    # dominant_category: the 种类 carrying most risk (largest sum of D among categories
    # present); argmax takes the first maximum, i.e. the lowest code on ties.
    held = cats > 0
    score = np.where(held, t[:, _DCAT], -np.inf)
    best = score.argmax(axis=1) if k else np.zeros(0, dtype=np.int64)
    best = np.where(held.any(axis=1), best, -1)
    out["dominant_category"] = _labels(best, CATEGORY_CODES)
    out["dominant_category_name"] = _labels(best, tuple(TOP_CATEGORIES.values()))
    # open hazards: 隐患“排查、登记、治理、销号” not yet closed (Henan plan 二（一）), on any
    # piece, in use or not; 重大 ones go under 挂牌督办 (domain.md).
    out["open_hazards"] = _ints(t[:, _OPEN])
    out["open_major_hazards"] = _ints(t[:, _MAJOR])
    # overdue: “发现设备逾期未检…及时报告所在地市场监管部门” (Henan plan 二（三）).
    out["overdue"] = _ints(t[:, _OVERDUE])
    out["overdue_rate"] = _ratio(t[:, _OVERDUE], t[:, _EQ])
    return pd.DataFrame(out, index=pd.RangeIndex(k))


def area_levels(counts: np.ndarray, rules: AggregateRules | None = None) -> pd.DataFrame:
    """The level of each area from its in-use pieces by level (k × 4, LEVELS order).

    风险四色图 practice: an area is red when at least ``red_share`` of its pieces are red,
    else orange when at least ``orange_share`` are orange or worse, else yellow when at least
    ``yellow_share`` are yellow or worse, else blue. ``level_share`` is the share that set
    the level (blue: 1). An area without in-use equipment has no level and share 0.
    """
    rules = rules or AggregateRules()
    counts = np.asarray(counts, dtype="float64").reshape(-1, _N_LEV)
    total = counts.sum(axis=1)
    share = np.divide(np.cumsum(counts, axis=1), total[:, None],
                      out=np.zeros_like(counts), where=total[:, None] > 0)
    floor = np.array([rules.red_share, rules.orange_share, rules.yellow_share, 0.0])
    meets = (share >= floor - 1e-9) & (total > 0)[:, None]
    level = np.where(meets.any(axis=1), meets.argmax(axis=1), -1)
    rows = np.arange(len(counts))
    return pd.DataFrame({"level": _labels(level, LEVELS),
                         "level_share": np.where(level >= 0, share[rows, level], 0.0)})


def indicators(equipment: pd.DataFrame, by: pd.Series) -> pd.DataFrame:
    """The indicators of ``equipment`` grouped by ``by`` (aligned; NA keys left out),
    one row per key in sorted order, the key in column ``key``."""
    keys = pd.Series(by).reset_index(drop=True)
    codes, uniques = pd.factorize(keys, sort=True, use_na_sentinel=True)
    out = _indicators(_totals(_parts(equipment), np.asarray(codes, np.int64), len(uniques)))
    out.insert(0, "key", pd.Series(uniques).reset_index(drop=True))
    return out


# --------------------------------------------------------------------------- geometry helpers

def _lonlat(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """lon, lat as float64 (NaN where missing or out of range); geometry if no lon/lat."""
    if "lon" in frame and "lat" in frame:
        lon = pd.to_numeric(frame["lon"], errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan)
        lat = pd.to_numeric(frame["lat"], errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan)
    elif isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame:
        geo = frame.geometry
        if geo.crs is not None and geo.crs.to_epsg() != 4326:
            geo = geo.to_crs(4326)
        values = np.asarray(geo.values, dtype=object)
        lon = np.asarray(shapely.get_x(values), dtype="float64")
        lat = np.asarray(shapely.get_y(values), dtype="float64")
    else:
        return np.full(len(frame), np.nan), np.full(len(frame), np.nan)
    bad = ~(np.isfinite(lon) & np.isfinite(lat)) | (np.abs(lon) > 180) | (np.abs(lat) > 90)
    return np.where(bad, np.nan, lon), np.where(bad, np.nan, lat)


def unlocated(equipment: pd.DataFrame) -> int:
    """Rows with no usable coordinates: they are in no H3 cell (but still in regions by
    their adcodes); the build report shows the count."""
    lon, _ = _lonlat(equipment)
    return int(np.isnan(lon).sum())


def _hexagons(cells: np.ndarray) -> np.ndarray:
    """Hexagon polygons (EPSG:4326) of uint64 cells."""
    if not len(cells):
        return np.zeros(0, dtype=object)
    wkb = pa.array(cells_to_wkb_polygons(pa.array(np.asarray(cells, dtype=np.uint64))))
    return shapely.from_wkb(wkb.to_numpy(zero_copy_only=False))


def _gdf(columns: dict[str, object] | pd.DataFrame, geometry: np.ndarray,
         order: tuple[str, ...]) -> gpd.GeoDataFrame:
    frame = pd.DataFrame(columns).reset_index(drop=True)
    out = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(np.asarray(geometry, dtype=object),
                                                         crs=4326), crs=4326)
    return out[list(order)]


# --------------------------------------------------------------------------- risk cells

def risk_cells(equipment: pd.DataFrame,
               resolutions: tuple[int, ...] = DEFAULT_RESOLUTIONS,
               rules: AggregateRules | None = None) -> gpd.GeoDataFrame:
    """One row per (resolution, H3 cell) holding equipment, with the indicators.

    “网格化” (Henan plan 二（二）). The finest resolution comes from lon/lat; every coarser one
    is the parent of that cell, so a parent's sums are exactly its children's. Rows without
    coordinates are in no cell; their count is ``attrs["unlocated"]``. ``level`` is the
    cell's grade by :func:`area_levels` under ``rules``, ``max_level`` its worst piece.
    Ordered by resolution, then cell.
    """
    res = AggregateRules(cell_resolutions=tuple(resolutions)).cell_resolutions
    return risk_cells_from(*finest_totals(equipment, res[-1]), res, rules)


def risk_cells_from(cells: np.ndarray, totals: np.ndarray, unlocated_: int,
                    resolutions: tuple[int, ...] = DEFAULT_RESOLUTIONS,
                    rules: AggregateRules | None = None) -> gpd.GeoDataFrame:
    """:func:`risk_cells` from the :func:`finest_totals` of the equipment at the finest of
    ``resolutions``."""
    res = AggregateRules(cell_resolutions=tuple(resolutions)).cell_resolutions
    out = nested_risk_cells(cells, totals, res, rules)
    out.attrs["unlocated"] = unlocated_
    return out


def finest_totals(equipment: pd.DataFrame, finest: int
                  ) -> tuple[np.ndarray, np.ndarray, int]:
    """The located pieces' group sums per H3 cell at ``finest`` (from lon/lat): the cells
    (uint64, sorted), their sums (k × :data:`TOTAL_COLUMNS`) and the unlocated count."""
    lon, lat = _lonlat(equipment)
    base = points_to_cells(lon, lat, finest)
    located = base != 0
    cells, inverse = np.unique(base[located], return_inverse=True)
    codes = np.full(len(base), -1, dtype=np.int64)
    codes[located] = inverse
    return cells, _totals(_parts(equipment), codes, len(cells)), int((~located).sum())


def risk_cell_of(equipment: pd.DataFrame) -> pd.Series:
    """Each piece's cell at :data:`FINEST_RISK_RESOLUTION` as hex text (<NA> when it has
    no usable coordinates): the cell :func:`finest_totals` counts it in."""
    lon, lat = _lonlat(equipment)
    out = to_strings(points_to_cells(lon, lat, FINEST_RISK_RESOLUTION))
    out.index = equipment.index
    return out


def summed_by_cell(cells: np.ndarray, totals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group sums of several rows per cell (a store's per-cell, per-scope sums) as one row
    per cell, the cells sorted: what :func:`finest_totals` gives for the same pieces."""
    up, inverse = np.unique(np.asarray(cells, dtype=np.uint64), return_inverse=True)
    if len(up) == len(cells):
        return up, np.asarray(totals, dtype="float64")[np.argsort(cells, kind="stable")]
    return up, _regroup(np.asarray(totals, dtype="float64"), inverse.ravel(), len(up))


def nested_risk_cells(cells: np.ndarray, totals: np.ndarray, resolutions: tuple[int, ...],
                      rules: AggregateRules | None = None, *,
                      keep: tuple[int, ...] | None = None, hexagons: bool = True
                      ) -> gpd.GeoDataFrame | pd.DataFrame:
    """The risk cells at ``resolutions`` (sorted, the last one that of ``cells``) from the
    group sums of the finest ``cells`` (sorted, unique): each coarser cell sums its
    children, so a piece is in the same cell at every resolution. ``keep``: only the cells
    of these resolutions (default all), the others neither drawn nor graded; without
    ``hexagons``, a plain frame (no geometry column)."""
    finest = resolutions[-1]
    ids, sums, levels = [], [], []
    for r in resolutions:
        if keep is not None and r not in keep:
            continue
        if r == finest:
            up, per = cells, totals
        else:
            up, inv = np.unique(parents(cells, r), return_inverse=True)
            per = _regroup(totals, inv, len(up))
        ids.append(up)
        sums.append(per)
        levels.append(np.full(len(up), r, dtype=np.int64))
    every = np.concatenate(ids)
    sums_ = np.concatenate(sums)
    body = pd.concat([pd.DataFrame({"h3": to_strings(every),
                                    "resolution": pd.array(np.concatenate(levels),
                                                           dtype="Int64")}),
                      area_levels(sums_[:, _LEV], rules), _indicators(sums_)], axis=1)
    if not hexagons:
        return body[[c for c in CELL_COLUMNS if c != "geometry"]]
    return _gdf(body, _hexagons(every), CELL_COLUMNS)


# --------------------------------------------------------------------------- sums of parts

PLACE_KEYS: tuple[str, ...] = ("province_adcode", "city_adcode", "county_adcode")


#: Counts per place besides the indicators: in-use elevators (top category 3000), of which
#: insured and of unknown insurance (the insurance layer), and late hazards (warnings).
PLACE_COUNTS: tuple[str, ...] = ("elevators", "insured", "insured_unknown", "late_hazards")


@dataclass(frozen=True)
class PlaceSums:
    """Group sums of pieces per distinct place: :data:`PLACE_KEYS` as the rows spell them
    (<NA> kept) and ``industry``, the position in :data:`INDUSTRY_KEYS` of the piece's
    unit's 门类. Regions and industries are made of them: a place falls in the regions its
    adcodes name, exactly as each of its pieces would. ``counts``: :data:`PLACE_COUNTS`."""

    keys: pd.DataFrame
    totals: np.ndarray
    counts: np.ndarray

    def frame(self) -> pd.DataFrame:
        """The places' adcodes with their :data:`PLACE_COUNTS`, one row per place: rows the
        insurance layer and the warnings count as they would count the pieces."""
        return self.keys[list(PLACE_KEYS)].assign(
            **{c: self.counts[:, j].astype(np.int64) for j, c in enumerate(PLACE_COUNTS)})


def place_counts(equipment: pd.DataFrame) -> np.ndarray:
    """Each piece's :data:`PLACE_COUNTS` (n × 4): an in-use elevator, insured, of unknown
    insurance; its late hazards."""
    elevator = ((top_categories(equipment) == ELEVATORS).fillna(False).to_numpy(dtype=bool)
                & in_use(equipment))
    insured = (pd.Series(equipment["insured"], dtype="boolean").reset_index(drop=True)
               if "insured" in equipment else pd.Series(pd.NA, index=range(len(equipment)),
                                                        dtype="boolean"))
    return np.column_stack([
        elevator, elevator & insured.fillna(False).to_numpy(dtype=bool),
        elevator & insured.isna().to_numpy(dtype=bool),
        number_array(equipment, "late_hazards")]).astype("float64")


def _groups(columns: list[pd.api.extensions.ExtensionArray | np.ndarray]
            ) -> tuple[np.ndarray, np.ndarray]:
    """Each row's group among the distinct combinations of ``columns`` (<NA> a value of
    its own), and the first row of each group. The codes are folded one column at a time,
    so they stay below the row count however many values each column has."""
    n = len(columns[0])
    key = np.zeros(n, dtype=np.int64)
    for values in columns:
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        _, key = np.unique(key * (len(uniques) + 1) + codes, return_inverse=True)
        key = key.ravel()
    return key, np.unique(key, return_index=True)[1]  # the keys are 0 … k - 1


def _place_table(keys: pd.DataFrame, totals: np.ndarray, counts: np.ndarray) -> PlaceSums:
    """:class:`PlaceSums` of rows (``keys``: the place columns, ``totals`` and ``counts``
    their sums)."""
    code, first = _groups([keys[c].array for c in (*PLACE_KEYS, "industry")])
    return PlaceSums(keys.iloc[first].reset_index(drop=True),
                     _regroup(totals, code, len(first)), _regroup(counts, code, len(first)))


def place_sums(equipment: pd.DataFrame, units: pd.DataFrame) -> PlaceSums:
    """The pieces' group sums per place (:class:`PlaceSums`); ``units``: the graded units
    (their ``industry``)."""
    keys = pd.DataFrame({c: (equipment[c].astype("string").reset_index(drop=True)
                             if c in equipment else pd.array([pd.NA] * len(equipment),
                                                             dtype="string"))
                         for c in PLACE_KEYS})
    keys["industry"] = _equipment_industry(equipment, units)
    code, first = _groups([keys[c].array for c in keys.columns])
    return PlaceSums(keys.iloc[first].reset_index(drop=True),
                     _totals(_parts(equipment), code, len(first)),
                     np.column_stack([np.bincount(code, weights=w, minlength=len(first))
                                      for w in place_counts(equipment).T]))


@dataclass(frozen=True)
class Sums:
    """Everything the aggregate layers read of the graded equipment, as group sums: per
    finest risk cell (and how many pieces have no location), per place, per officer cell.

    The sums of any split of the rows add up (:meth:`combined`) to the sums of all rows, to
    the last bit (:data:`SCORE_STEPS`): a Dask worker sums its partition and the driver adds
    the partitions' sums, never holding the pieces."""

    cells: np.ndarray            # finest risk cells, uint64, sorted, unique
    cell_totals: np.ndarray
    unlocated: int
    places: PlaceSums
    grid_targets: dict[int, np.ndarray]
    grid_totals: dict[int, np.ndarray]

    @classmethod
    def of(cls, equipment: pd.DataFrame, units: pd.DataFrame, finest: int,
           grid_targets: dict[int, np.ndarray]) -> Sums:
        """The sums of ``equipment`` (graded; ``units`` its graded units): risk cells at
        ``finest``, officers' cells ``grid_targets`` (:func:`grid_targets`)."""
        cells, totals, unlocated_ = finest_totals(equipment, finest)
        return cls(cells, totals, unlocated_, place_sums(equipment, units), grid_targets,
                   grid_sums(equipment, grid_targets))

    def levels(self) -> dict[str, int]:
        """In-use pieces per level (most first; ties in :data:`LEVELS` order), levels
        without any left out: the build report's ``levels``."""
        counts = np.rint(self.places.totals[:, _LEV].sum(axis=0)).astype(np.int64)
        order = sorted(range(_N_LEV), key=lambda j: (-counts[j], j))
        return {LEVELS[j]: int(counts[j]) for j in order if counts[j]}

    def not_graded(self) -> int:
        """Pieces not graded (not in use): the build report's ``equipment_not_graded``."""
        totals = self.places.totals
        return int(np.rint(totals[:, _ROWS].sum() - totals[:, _EQ].sum()))

    @classmethod
    def combined(cls, parts: list[Sums]) -> Sums:
        """The sums of all the rows of ``parts`` (each the :meth:`of` of some rows, with the
        same ``finest`` and ``grid_targets``)."""
        if len(parts) == 1:
            return parts[0]
        cells, totals = summed_by_cell(np.concatenate([p.cells for p in parts]),
                                       np.concatenate([p.cell_totals for p in parts]))
        places = _place_table(pd.concat([p.places.keys for p in parts], ignore_index=True),
                              np.concatenate([p.places.totals for p in parts]),
                              np.concatenate([p.places.counts for p in parts]))
        targets = parts[0].grid_targets
        grid = {r: np.sum([p.grid_totals[r] for p in parts], axis=0) for r in targets}
        return cls(cells, totals, sum(p.unlocated for p in parts), places, targets, grid)


# --------------------------------------------------------------------------- regions

def _region_table(boundaries: pd.DataFrame) -> gpd.GeoDataFrame:
    """Boundaries as region rows: province, city, county order, then adcode; one row per
    (level, adcode) — 济源市 419001 is both a city and a county and keeps both rows."""
    b = gpd.GeoDataFrame(boundaries).copy()
    if b.crs is not None and b.crs.to_epsg() != 4326:
        b = b.to_crs(4326)
    out = pd.DataFrame({
        "adcode": b["adcode"].astype("string").str.strip(),
        "name": b["name"].astype("string") if "name" in b else pd.NA,
        "admin_level": b["level"].astype("string"),
        **{c: (b[c].astype("string") if c in b else pd.Series(pd.NA, index=b.index,
                                                              dtype="string"))
           for c in ("parent_adcode", "province_adcode", "city_adcode")},
        "geometry": b.geometry.to_numpy(),
    })
    out["_rank"] = _index_of(out["admin_level"], ADMIN_LEVELS)
    out = out[(out["_rank"] >= 0).to_numpy() & out["adcode"].notna().to_numpy()]
    out = out.drop_duplicates(["_rank", "adcode"]).sort_values(["_rank", "adcode"], kind="stable")
    return out.drop(columns="_rank").reset_index(drop=True).astype({
        c: "string" for c in ("adcode", "name", "admin_level", "parent_adcode",
                              "province_adcode", "city_adcode")})


def _parent_index(regions: pd.DataFrame, child: str, parent: str) -> np.ndarray:
    """For each ``child``-level region, its parent's index among ``parent``-level regions."""
    rows = regions[regions["admin_level"] == child]
    up = rows[f"{parent}_adcode"].fillna(rows["parent_adcode"])
    parents_ = tuple(regions.loc[regions["admin_level"] == parent, "adcode"])
    return _index_of(up, parents_)


def _level_codes(regions: pd.DataFrame, frame: pd.DataFrame
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per level: (positions of that level's regions, each frame row's index among them or
    -1). A row with no city (province) adcode takes its county's city (city's province),
    so the levels nest."""
    found: dict[str, np.ndarray] = {}
    blank: dict[str, np.ndarray] = {}
    for level in ADMIN_LEVELS:
        col = f"{level}_adcode"
        codes = tuple(regions.loc[regions["admin_level"] == level, "adcode"])
        if col in frame:
            found[level] = _index_of(frame[col], codes)
            blank[level] = frame[col].isna().to_numpy(dtype=bool)
        else:
            found[level] = np.full(len(frame), -1, dtype=np.int64)
            blank[level] = np.ones(len(frame), dtype=bool)
    for child, parent in (("county", "city"), ("city", "province")):
        fill = blank[parent] & (found[child] >= 0)
        if fill.any():
            up = _parent_index(regions, child, parent)
            found[parent][fill] = up[found[child][fill]]
    return [(np.flatnonzero((regions["admin_level"] == level).to_numpy(dtype=bool)),
             found[level]) for level in ADMIN_LEVELS]


def region_positions(regions: pd.DataFrame, frame: pd.DataFrame
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per admin level: (positions of that level's rows of ``regions``, each ``frame`` row's
    index among them or -1), placed as :func:`regions` places equipment and units (by the
    row's own adcodes, a missing coarser code taken from the finer one)."""
    return _level_codes(regions, frame)


def _unit_counts(units: pd.DataFrame, regions: pd.DataFrame) -> np.ndarray:
    """Units located in each region (by the unit's own adcodes) and by unit level."""
    counts = np.zeros((len(regions), len(UNIT_COUNT_COLUMNS)), dtype=np.int64)
    if not len(units) or not len(regions):
        return counts
    level = (_index_of(units["level"], LEVELS) if "level" in units
             else np.full(len(units), -1))
    for pos, codes in _level_codes(regions, units):
        k = len(pos)
        ok = codes >= 0
        counts[pos, 0] = np.bincount(codes[ok], minlength=k)
        has = ok & (level >= 0)
        counts[pos, 1:] = np.bincount(codes[has] * _N_LEV + level[has],
                                      minlength=k * _N_LEV).reshape(k, _N_LEV)
    return counts


def regions(equipment: pd.DataFrame, units: pd.DataFrame, boundaries: pd.DataFrame,
            rules: AggregateRules | None = None) -> gpd.GeoDataFrame:
    """One row per province, city and county of ``boundaries`` with the indicators.

    “分区域、分级别” (Henan plan 二（二）), by 行政区划代码. Regions without data get zeros (an
    empty county is shown, not hidden). Equipment counts where its adcodes say; units where
    theirs say, by unit level. ``attrs["unplaced"]`` counts equipment rows whose county
    adcode is in no county of ``boundaries``. ``level`` is the region's grade by
    :func:`area_levels` under ``rules``, ``max_level`` its worst piece.
    """
    return regions_from(place_sums(equipment, units), units, boundaries, rules)


def regions_from(places: PlaceSums, units: pd.DataFrame, boundaries: pd.DataFrame,
                 rules: AggregateRules | None = None) -> gpd.GeoDataFrame:
    """:func:`regions` from the equipment's :class:`PlaceSums`."""
    reg = _region_table(boundaries)
    totals = np.zeros((len(reg), _WIDTH))
    levels = _level_codes(reg, places.keys)
    for pos, codes in levels:
        totals[pos] = _sum_rows(places.totals, codes, len(pos))
    unit_counts = _unit_counts(units, reg)
    body = pd.concat([reg.drop(columns="geometry"), area_levels(totals[:, _LEV], rules),
                      _indicators(totals),
                      pd.DataFrame({c: _ints(unit_counts[:, j])
                                    for j, c in enumerate(UNIT_COUNT_COLUMNS)})], axis=1)
    out = _gdf(body, reg.geometry.to_numpy(), REGIONS_COLUMNS)
    out.attrs["unplaced"] = int(np.rint(places.totals[levels[-1][1] < 0, _ROWS].sum()))
    return out


# --------------------------------------------------------------------------- industries

def industry_codes(values: pd.Series) -> pd.Series:
    """GB/T 4754 门类 letter of each value ("C", "c", "C36", "C 制造业" or the 门类 name);
    anything else, or missing, is "未知"."""
    codes, uniques = pd.factorize(pd.Series(values).reset_index(drop=True).astype("string"))
    s = pd.Series(uniques, dtype="string").str.strip()
    first = s.str.slice(0, 1).str.upper()
    letter = first.isin(list(INDUSTRIES)) & ~s.str.slice(1, 2).str.match(r"[A-Za-z]").fillna(
        False)
    by_name = s.map({name: code for code, name in INDUSTRIES.items()})
    norm = first.where(letter.fillna(False).to_numpy(dtype=bool), by_name)
    index = _index_of(norm.fillna(UNKNOWN_INDUSTRY), INDUSTRY_KEYS)
    return pd.Series(_labels(np.append(index, len(INDUSTRY_KEYS) - 1)[codes], INDUSTRY_KEYS))


def _equipment_industry(equipment: pd.DataFrame, units: pd.DataFrame) -> np.ndarray:
    """Index into INDUSTRY_KEYS of each piece's unit's industry (unknown unit → 未知)."""
    unknown = len(INDUSTRY_KEYS) - 1
    if "industry" not in units or "unit_credit_code" not in equipment:
        return np.full(len(equipment), unknown, dtype=np.int64)
    key = text(units, "credit_code", strip=True)
    keep = (key.notna() & ~key.duplicated()).to_numpy(dtype=bool)
    per_unit = _index_of(industry_codes(units["industry"]).to_numpy()[keep], INDUSTRY_KEYS)
    pos = _index_of(equipment["unit_credit_code"], tuple(key.to_numpy()[keep]))
    return np.append(per_unit, unknown)[pos]  # pos -1 (no such unit) picks 未知


def industries(equipment: pd.DataFrame, units: pd.DataFrame,
               boundaries: pd.DataFrame) -> gpd.GeoDataFrame:
    """One row per region × GB/T 4754 门类 of the equipment there (by the unit's industry).

    “分行业”、“按…应用行业等开展分类监管” (Henan plan 二（二）). Equipment is placed by its own
    adcodes, as in :func:`regions`, so a region's industry rows add up to its totals.
    Units without an industry (or equipment without a known unit) go under "未知".
    Ordered by level, adcode, then industry letter ("未知" last).
    """
    return industries_from(place_sums(equipment, units), boundaries)


def industries_from(places: PlaceSums, boundaries: pd.DataFrame) -> gpd.GeoDataFrame:
    """:func:`industries` from the equipment's :class:`PlaceSums`."""
    reg = _region_table(boundaries)
    ind = places.keys["industry"].to_numpy(dtype=np.int64)
    n_ind = len(INDUSTRY_KEYS)
    rows, sums = [], []
    for pos, codes in _level_codes(reg, places.keys):
        key = np.where(codes >= 0, codes * n_ind + ind, -1)
        totals = _sum_rows(places.totals, key, len(pos) * n_ind)
        keep = np.flatnonzero(totals[:, _ROWS] > 0)
        rows.append(pd.DataFrame({"region": pos[keep // n_ind], "industry": keep % n_ind}))
        sums.append(totals[keep])
    pick = pd.concat(rows, ignore_index=True)
    region = reg.iloc[pick["region"].to_numpy()].reset_index(drop=True)
    industry = pd.Series(np.asarray(INDUSTRY_KEYS, dtype=object)[pick["industry"].to_numpy()],
                         dtype="string")
    body = pd.concat([region[[*REGION_COLUMNS, "province_adcode", "city_adcode"]],
                      pd.DataFrame({"industry": industry,
                                    "industry_name": industry.map(INDUSTRY_NAMES).astype(
                                        "string")}),
                      _indicators(np.concatenate(sums) if sums else np.zeros((0, _WIDTH)))],
                     axis=1)
    return _gdf(body, region.geometry.to_numpy(), INDUSTRIES_COLUMNS)


# --------------------------------------------------------------------------- grid officers

def _officer_column(officers: pd.DataFrame, name: str, ids: pd.Series) -> pd.Series:
    """``officers[name]`` of each id (first row per officer; <NA> for unknown officers)."""
    if name not in officers or "officer_id" not in officers or not len(officers):
        return pd.Series(pd.NA, index=range(len(ids)), dtype="string")
    key = text(officers, "officer_id", strip=True)
    first = ~key.duplicated().to_numpy() & key.notna().to_numpy()
    table = pd.Series(officers[name].astype("string").to_numpy()[first],
                      index=key.to_numpy()[first])
    return pd.Series(table.reindex(ids.to_numpy()).to_numpy(), dtype="string")


def cell_counties(cells: np.ndarray, boundaries: pd.DataFrame) -> pd.Series:
    """The county adcode of each uint64 H3 cell among the ``level == "county"`` rows of
    ``boundaries``: the county containing the cell's centre; where the centre lies in no
    loaded county (a cell across the province line, centre outside), the loaded county
    covering most of the cell; <NA> where the cell touches no loaded county (sea, another
    province) or is 0.

    One rule for every cell, with or without equipment in it, so a cell's county never
    changes with the data: a cell across a county line belongs to the county holding its
    centre, as the cells of an officer given a county are exactly the cells whose centre
    lies in it (service/ingest/officers.py, H3 polyfill) and as an officer without a county
    is placed by their cells' centres (:func:`layers.workload.officer_counties`). A centre
    exactly on a shared border gets the smallest adcode, as in ``geo.boundaries.locate``, so
    the answer never depends on row order. Each distinct cell is located once (an STRtree
    of the centres, queried by every county polygon)."""
    cells = np.asarray(cells, dtype=np.uint64)
    out = pd.Series(pd.NA, index=range(len(cells)), dtype="string")
    if boundaries is None or not len(boundaries) or "level" not in boundaries:
        return out
    counties = boundaries[(boundaries["level"].astype("string") == "county").fillna(False)
                          .to_numpy(dtype=bool)]
    counties = counties[counties.geometry.notna().to_numpy()]
    counties = counties.iloc[np.argsort(counties["adcode"].astype(str).to_numpy(),
                                        kind="stable")]
    unique, inverse = np.unique(cells, return_inverse=True)
    valid = unique != 0
    if not len(counties) or not valid.any():
        return out
    lat, lon = cell_centres(unique[valid])
    tree = shapely.STRtree(shapely.points(lon, lat))
    county_idx, point_idx = tree.query(np.asarray(counties.geometry, dtype=object),
                                       predicate="intersects")
    best = np.full(len(lat), len(counties), dtype=np.int64)
    np.minimum.at(best, point_idx, county_idx)  # counties sorted by adcode: smallest wins
    astray = np.flatnonzero(best == len(counties))
    if len(astray):  # centre outside: the loaded county covering most of the cell
        best[astray] = _most_covering(unique[valid][astray], counties.geometry)
    codes = np.append(counties["adcode"].astype(str).to_numpy(dtype=object), None)
    per_unique = np.full(len(unique), None, dtype=object)
    per_unique[np.flatnonzero(valid)] = codes[best]
    return pd.Series(pd.array(per_unique[inverse.ravel()], dtype="string"))


def _most_covering(cells: np.ndarray, counties: gpd.GeoSeries) -> np.ndarray:
    """Per uint64 cell, the position in ``counties`` (sorted by adcode) of the county that
    covers the largest part of it (ties: the smallest adcode); ``len(counties)`` where the
    cell touches none. Areas in square degrees compare fine within one small cell."""
    hexagons = _hexagons(cells)
    polys = np.asarray(counties, dtype=object)
    county_idx, cell_idx = shapely.STRtree(hexagons).query(polys, predicate="intersects")
    area = shapely.area(shapely.intersection(hexagons[cell_idx], polys[county_idx]))
    keep = area > 0  # touching along an edge only is not covering
    cell_idx, county_idx, area = cell_idx[keep], county_idx[keep], area[keep]
    order = np.lexsort((county_idx, -area, cell_idx))
    first = order[np.diff(cell_idx[order], prepend=-1) != 0]
    out = np.full(len(cells), len(polys), dtype=np.int64)
    out[cell_idx[first]] = county_idx[first]
    return out


def grid_cells(equipment: pd.DataFrame, officers: pd.DataFrame,
               officer_cells: pd.DataFrame,
               boundaries: pd.DataFrame | None = None) -> gpd.GeoDataFrame:
    """One row per (officer, cell) of ``officer_cells`` with the indicators of the
    equipment in that cell (“网格化”, Henan plan 二（二）: each 网格员 owns some cells).

    A cell shared by several officers appears once per officer. Cells are matched at their
    own resolution (normally 8) from the equipment's lon/lat. Unparseable cells are left
    out and counted in ``attrs["invalid_cells"]``. Ordered by officer_id, then cell.

    ``county_adcode`` is the cell's county, whoever holds it and whether or not equipment
    stands in it (county regulators see the cells in their county): the county of
    ``boundaries`` containing the cell's centre (:func:`cell_counties`: a cell across a
    county line belongs to the county of its centre; one whose centre is outside the loaded
    provinces to the loaded county covering most of it). Rows of a cell touching no loaded
    county keep it empty and are counted in ``attrs["rows_outside_counties"]``. Without
    ``boundaries`` (None) the officer's registered county stands in, the only one known.
    """
    targets = grid_targets(officer_cells)
    return grid_cells_from(targets, grid_sums(equipment, targets), officers, officer_cells,
                           boundaries)


def _officer_cell_rows(officer_cells: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The (officer, cell) rows of ``officer_cells`` with a parseable cell, each once,
    ordered by officer_id then cell (``_cell`` the uint64 cell, ``h3`` its canonical
    spelling), and how many rows had an unparseable cell."""
    oc = pd.DataFrame({"officer_id": text(officer_cells, "officer_id", strip=True),
                       "h3": text(officer_cells, "h3", strip=True)}).dropna()
    cells = from_strings(oc["h3"]) if len(oc) else np.zeros(0, dtype=np.uint64)
    valid = cells != 0
    oc = oc[valid].assign(_cell=cells[valid])
    oc["h3"] = to_strings(oc["_cell"].to_numpy()).to_numpy()  # canonical spelling
    oc = oc.drop_duplicates(["officer_id", "_cell"]).sort_values(
        ["officer_id", "h3"], kind="stable").reset_index(drop=True)
    return oc, int((~valid).sum())


def _resolutions_of(cells: np.ndarray) -> np.ndarray:
    return (pa.array(cells_resolution(pa.array(cells))).to_numpy(zero_copy_only=False)
            .astype(np.int64) if len(cells) else np.zeros(0, dtype=np.int64))


def grid_targets(officer_cells: pd.DataFrame) -> dict[int, np.ndarray]:
    """The officers' cells by resolution (uint64, sorted, unique): the cells
    :func:`grid_sums` sums the equipment of."""
    oc, _ = _officer_cell_rows(officer_cells)
    cell = oc["_cell"].to_numpy(dtype=np.uint64)
    res = _resolutions_of(cell)
    return {int(r): np.unique(cell[res == r]) for r in np.unique(res)}


def grid_sums(equipment: pd.DataFrame, targets: dict[int, np.ndarray]
              ) -> dict[int, np.ndarray]:
    """Per resolution of ``targets``, the group sums of the pieces in each target cell
    (aligned with ``targets[r]``), each piece placed at that resolution from its lon/lat."""
    parts = _parts(equipment)
    lon, lat = _lonlat(equipment)
    out = {}
    for r, cells in targets.items():
        at = points_to_cells(lon, lat, r)
        pos = np.searchsorted(cells, at)
        hit = (pos < len(cells)) & (cells[np.minimum(pos, len(cells) - 1)] == at)
        out[r] = _totals(parts, np.where(hit, pos, -1), len(cells))
    return out


def grid_cells_from(targets: dict[int, np.ndarray], sums: dict[int, np.ndarray],
                    officers: pd.DataFrame, officer_cells: pd.DataFrame,
                    boundaries: pd.DataFrame | None = None) -> gpd.GeoDataFrame:
    """:func:`grid_cells` from the :func:`grid_sums` of the equipment over
    :func:`grid_targets` of ``officer_cells``."""
    oc, invalid = _officer_cell_rows(officer_cells)
    cell = oc["_cell"].to_numpy(dtype=np.uint64)
    res = _resolutions_of(cell)
    totals = np.zeros((len(oc), _WIDTH))
    for r in np.unique(res):
        mine = np.flatnonzero(res == r)
        totals[mine] = sums[int(r)][np.searchsorted(targets[int(r)], cell[mine])]

    if boundaries is None:
        county = _officer_column(officers, "county_adcode", oc["officer_id"])
    else:
        county = cell_counties(cell, boundaries)
    body = pd.concat([pd.DataFrame({
        "officer_id": oc["officer_id"].astype("string"),
        "officer_name": _officer_column(officers, "name", oc["officer_id"]),
        "county_adcode": county,
        "h3": oc["h3"].astype("string")}), _indicators(totals)], axis=1)
    out = _gdf(body, _hexagons(cell), GRID_COLUMNS)
    out.attrs["invalid_cells"] = invalid
    if boundaries is not None:
        out.attrs["rows_outside_counties"] = int(county.isna().sum())
    return out
