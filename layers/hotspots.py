"""Hotspots of serious hazards: 区域性或者普遍严重事故隐患 (Henan plan 二（二）).

Henan plan 二（二）: "对存在区域性或者普遍严重事故隐患的特种设备使用单位，加大监督检查频次".
Two readings, one function each:

* 区域性 (regional) — where on the map serious hazards cluster. The rate of serious hazards
  per in-use piece is computed per H3 cell and tested with Getis-Ord Gi* (binary k-ring
  weights, the cell itself included; Getis & Ord 1992 / Ord & Getis 1995, as in PySAL
  ``esda.G_Local(star=True, transform="B")``), one-sided for hot spots, with the
  Benjamini–Hochberg false-discovery-rate correction over the tested cells (esda practice,
  ``esda.fdr``). Significance comes from an exact Poisson test of the same neighbourhood
  sum (:func:`poisson_excess`): Gi*'s normal approximation flags single hazards in sparse
  cells (measured: 42 "hot" cells on the demo's spatially random hazards, against 1 with
  the exact test). Significant cells touching each other form a cluster; a cluster of two or
  more cells is regional.
* 普遍 (widespread) — in a county, a large share of the units holding one category of
  equipment have a serious hazard on it.

What counts as a serious hazard (严重事故隐患) is :func:`serious_hazards`, each with its why:
the major grade (重大隐患), as the law means it. A general hazard past its rectification
deadline is an overdue rectification (逾期未整改), not a serious hazard; it is counted apart
(:func:`late_general_hazards`, the cells' ``late_general_hazards``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
from h3ronpy import cells_resolution, grid_disk
from pydantic import BaseModel, ConfigDict, Field
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.special import ndtr
from scipy.stats import poisson

from geo.cells import cell_polygons, from_strings, parents, points_to_cells, to_strings
from layers.columns import as_flags
from layers.frames import MAJOR_HAZARD, OPEN_HAZARD_STATUS

STORED_RESOLUTION = 8  # the stored ``h3`` column (tables.py)

# Which hazards count as serious, in priority order (the first that applies gives ``why``).
SERIOUS_RULES: tuple[str, ...] = ("major_recent", "major_open")
LATE_GENERAL_RULE = "general_past_deadline"
GENERAL_HAZARD = "一般"  # data.schema.HAZARD_LEVELS: 一般, 重大

SERIOUS_EXTRA = ("rule", "why")
CELL_COLUMNS: tuple[str, ...] = (
    "h3", "resolution", "equipment", "serious_hazards", "late_general_hazards", "rate",
    "neighbours", "gi_star", "p_value", "q_value", "hot", "unit_count", "county_adcode",
    "main_category")
LAYER_COLUMNS: tuple[str, ...] = (
    "h3", "resolution", "equipment", "serious_hazards", "late_general_hazards", "rate",
    "gi_star", "p_value", "q_value", "cluster_id", "cluster_size", "regional", "unit_count",
    "county_adcode", "main_category")
UNIT_COLUMNS: tuple[str, ...] = ("credit_code", "h3", "gi_star", "regional", "cluster_id")
WIDESPREAD_COLUMNS: tuple[str, ...] = (
    "county_adcode", "top_category", "units", "units_with_serious", "share", "widespread")

_DTYPES: dict[str, str] = {
    "h3": "string", "resolution": "Int64", "equipment": "Int64", "serious_hazards": "Int64",
    "late_general_hazards": "Int64",
    "rate": "float64", "neighbours": "Int64", "gi_star": "float64", "p_value": "float64",
    "q_value": "float64", "hot": "boolean", "unit_count": "Int64", "county_adcode": "string",
    "main_category": "string", "cluster_id": "string", "cluster_size": "Int64",
    "regional": "boolean", "credit_code": "string", "top_category": "string",
    "units": "Int64", "units_with_serious": "Int64", "share": "float64",
    "widespread": "boolean", "rule": "string", "why": "string",
}


class HotspotRules(BaseModel):
    """Knobs of the serious-hazard hotspot analysis (rules TOML section ``[hotspots]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resolution: int = Field(7, ge=5, le=9, description="热点分析所用 H3 网格级别（5–9）")
    k: int = Field(1, ge=1, le=3, description="Gi* 邻域半径：k 圈六边形（含本网格），1–3")
    alpha: float = Field(0.05, gt=0, lt=1, description="显著性水平（单侧，仅热点）")
    fdr: bool = Field(
        True, description="是否按 Benjamini–Hochberg 法控制错误发现率（多重检验校正）")
    lookback_days: int = Field(
        365, ge=1, le=3650, description="回溯天数：此期间内发现的重大隐患计为严重事故隐患（未销号的"
        "重大隐患不论早晚均计入；逾期未整改的一般隐患不是严重事故隐患，另计为逾期整改）")
    min_equipment: int = Field(
        5, ge=1, description="参与检验的网格至少应有的在用设备台数（分母过小的发生率不可靠）")
    test: Literal["poisson", "normal"] = Field(
        "poisson", description="显著性检验：poisson＝邻域严重隐患数对全域发生率的精确泊松上尾检验"
        "（计数稀疏时可靠）；normal＝Gi* 的正态近似（数据稀疏、零值多时偏宽松）")
    own_excess: bool = Field(
        True, description="热点网格自身的严重隐患发生率须高于全域平均：排除仅因邻近一个高值网格"
        "而显著的“光晕”网格（Gi* 是邻域和，高值网格会抬高其所有邻居）")
    widespread_share: float = Field(
        0.10, gt=0, le=1, description="普遍性隐患：某县区某类设备中存在严重隐患的使用单位占比下限")
    widespread_min_units: int = Field(
        3, ge=1, description="普遍性隐患：存在严重隐患的使用单位数下限")


# --------------------------------------------------------------------------- helpers

def _typed(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """``frame[columns]`` with the house dtypes (an empty frame gets the columns)."""
    out = pd.DataFrame({c: frame[c] if c in frame else pd.Series(dtype=object)
                        for c in columns}, index=frame.index if len(frame) else None)
    return out.astype({c: _DTYPES[c] for c in columns}).reset_index(drop=True)


def _strings(s: pd.Series) -> pd.Series:
    return s.astype("string")


def _in_use_rows(equipment: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """The in-use rows, of ``columns`` only (the graded equipment is wide: a copy of more
    columns than a step reads is the build's largest allocation there)."""
    return _rows(equipment, np.flatnonzero(as_flags(equipment["in_use"])), columns)


def _rows(equipment: pd.DataFrame, rows: np.ndarray, columns: tuple[str, ...]
          ) -> pd.DataFrame:
    """Rows at positions ``rows``, of those of ``columns`` the frame has."""
    return equipment[[c for c in columns if c in equipment]].iloc[rows]


def analysis_cells(equipment: pd.DataFrame, resolution: int) -> np.ndarray:
    """The analysis cell (uint64, 0 = unlocated) of each row.

    The stored res-8 ``h3``'s parent where it is valid and fine enough, else from lon/lat
    (so resolution 9, or a row whose ``h3`` is missing, still gets a cell)."""
    n = len(equipment)
    out = np.zeros(n, dtype=np.uint64)
    if not n:
        return out
    if "h3" in equipment:
        stored = from_strings(_strings(equipment["h3"]))
        ok = stored != 0
        if ok.any():
            res = np.zeros(n, dtype=np.int64)
            res[ok] = pa.array(cells_resolution(pa.array(stored[ok]))).to_numpy(
                zero_copy_only=False)
            ok &= res >= resolution
            out[ok] = parents(stored[ok], resolution)
    todo = out == 0
    if todo.any() and {"lon", "lat"} <= set(equipment.columns):
        lon = pd.to_numeric(equipment["lon"], errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan)
        lat = pd.to_numeric(equipment["lat"], errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan)
        out[todo] = points_to_cells(lon[todo], lat[todo], resolution)
    return out


def k_ring_pairs(cells: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) index pairs into sorted unique ``cells`` with j in the k-ring of i (i itself
    included); neighbours that are not in ``cells`` are absent."""
    cells = np.asarray(cells, dtype=np.uint64)
    if not len(cells):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    disks = pa.array(grid_disk(pa.array(cells), k))
    lengths = disks.value_lengths().to_numpy(zero_copy_only=False)
    neighbours = disks.flatten().to_numpy(zero_copy_only=False).astype(np.uint64)
    i = np.repeat(np.arange(len(cells), dtype=np.int64), lengths)
    j = np.searchsorted(cells, neighbours)
    found = j < len(cells)
    found[found] = cells[j[found]] == neighbours[found]
    return i[found], j[found]


def gi_star(x: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Getis-Ord Gi* z-scores of ``x`` with binary weights w_ij = 1 for each (i, j) pair.

    z_i = (Σ_j w_ij x_j − x̄ W_i) / (s √((n W_i − W_i²)/(n − 1))), x̄ and s (population)
    over all n values (Ord & Getis 1995; esda ``G_Local(star=True, transform="B")``).
    NaN where undefined: fewer than two values, all values equal, or W_i = n."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    z = np.full(n, np.nan)
    if n < 2:
        return z
    mean = x.mean()
    s = x.std()
    if not s > 1e-12 * max(1.0, abs(mean)):
        return z
    wx = np.bincount(i, weights=x[j], minlength=n)
    w = np.bincount(i, minlength=n).astype(np.float64)
    den = s * np.sqrt(np.clip(w * (n - w), 0, None) / (n - 1))
    ok = den > 0
    z[ok] = (wx[ok] - w[ok] * mean) / den[ok]
    return z


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values (q); NaN stays NaN and is not counted among the tests."""
    p = np.asarray(p, dtype=np.float64)
    q = np.full(len(p), np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if not m:
        return q
    order = np.argsort(p[ok], kind="stable")
    ranked = p[ok][order] * m / np.arange(1, m + 1)
    adjusted = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    q_ok = np.empty(m)
    q_ok[order] = adjusted
    q[ok] = q_ok
    return q


def _top_per_group(group: np.ndarray, key: pd.Series, weight: np.ndarray, n: int
                   ) -> pd.Series:
    """Per group 0..n-1, the key with the largest total weight (ties: smallest key);
    <NA> where the group has no key with positive weight."""
    codes, uniques = pd.factorize(_strings(key), sort=True)
    ok = (codes >= 0) & (weight > 0)
    out = pd.Series(pd.NA, index=range(n), dtype="string")
    if not ok.any():
        return out
    g, c = group[ok].astype(np.int64), codes[ok].astype(np.int64)
    pair, inv = np.unique(g * len(uniques) + c, return_inverse=True)
    total = np.bincount(inv, weights=weight[ok])
    pg, pc = pair // len(uniques), pair % len(uniques)
    order = np.lexsort((pc, -total, pg))
    first = order[np.r_[True, pg[order][1:] != pg[order][:-1]]]
    out.iloc[pg[first]] = np.asarray(uniques, dtype=object)[pc[first]]
    return out


# --------------------------------------------------------------------------- serious hazards

def _hazard_flags(h: pd.DataFrame, as_of: date) -> dict[str, np.ndarray]:
    """Per hazard: found by ``as_of`` (undated counts), 重大 or 一般, not yet 销号
    (已登记/整改中, as in the risk grading), its age in days and whether its deadline has
    passed."""
    today = pd.Timestamp(as_of)
    age = (today - pd.to_datetime(h["found_on"])).dt.days.to_numpy(dtype="float64",
                                                                    na_value=np.nan)
    return {
        "not_future": ~(age < 0),  # undated (NaN): not in the future
        "major": (_strings(h["level"]) == MAJOR_HAZARD).fillna(False).to_numpy(dtype=bool),
        "general": (_strings(h["level"]) == GENERAL_HAZARD).fillna(False).to_numpy(dtype=bool),
        "open": _strings(h["status"]).isin(OPEN_HAZARD_STATUS).fillna(False).to_numpy(
            dtype=bool),
        "age": age,
        "late": (pd.to_datetime(h["deadline"]) < today).fillna(False).to_numpy(dtype=bool),
    }


def _with_rule(h: pd.DataFrame, hits: list[np.ndarray], rules: tuple[str, ...],
               whys: list[str]) -> pd.DataFrame:
    """The rows of ``h`` some hit names, with the first hit's ``rule`` and ``why``."""
    rule = np.select(hits, list(rules), default="")
    why = np.select(hits, whys, default="")
    keep = rule != ""
    out = h.loc[keep].copy()
    out["rule"] = pd.array(rule[keep], dtype="string")
    out["why"] = pd.array(why[keep], dtype="string")
    return out.sort_values("hazard_id", kind="stable").reset_index(drop=True)


def _no_hazards(h: pd.DataFrame) -> pd.DataFrame:
    out = h.iloc[0:0].copy()
    for col in SERIOUS_EXTRA:
        out[col] = pd.Series(dtype="string")
    return out.reset_index(drop=True)


def serious_hazards(hazards: pd.DataFrame, as_of: date, rules: HotspotRules) -> pd.DataFrame:
    """The hazards that count as serious (严重事故隐患) on ``as_of``, with ``rule`` and ``why``.

    Serious means what the law means: the major grade (重大隐患, ``level`` 重大). In priority
    order (the first that applies is the one named):

    * ``major_recent``: a 重大 hazard found within ``lookback_days`` before ``as_of``, whatever
      its status now — it was a serious hazard there and then;
    * ``major_open``: a 重大 hazard not yet 销号, however old (still under 挂牌督办, Henan plan
      二（二） “重大隐患挂牌督办制度”).

    A 一般 hazard past its deadline is not serious: it is an overdue rectification
    (:func:`late_general_hazards`). Hazards found after ``as_of`` are ignored (a build for
    an earlier day must not see them)."""
    h = pd.DataFrame(hazards)
    if not len(h):
        return _no_hazards(h)
    f = _hazard_flags(h, as_of)
    recent = f["age"] <= rules.lookback_days  # undated (NaN): not recent
    major = f["not_future"] & f["major"]
    whys = [f"近{rules.lookback_days}天内发现的重大隐患", "重大隐患尚未销号（挂牌督办中）"]
    return _with_rule(h, [major & recent, major & f["open"]], SERIOUS_RULES, whys)


def late_general_hazards(hazards: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """The 一般 hazards not yet 销号 whose rectification deadline has passed on ``as_of``: the
    overdue rectifications (逾期未整改；Henan plan 二（一） “隐患排查、登记、治理、销号的全过程
    记录和闭环管理”), with ``rule`` and ``why``. Counted and shown as such, never as serious
    hazards. Hazards found after ``as_of`` are ignored."""
    h = pd.DataFrame(hazards)
    if not len(h):
        return _no_hazards(h)
    f = _hazard_flags(h, as_of)
    hit = f["not_future"] & f["general"] & f["open"] & f["late"]
    return _with_rule(h, [hit], (LATE_GENERAL_RULE,), ["一般隐患超过整改期限仍未销号（逾期整改）"])


def _per_piece(eq: pd.DataFrame, listed: pd.DataFrame) -> np.ndarray:
    """Number of ``listed`` hazards (serious, late …) on each row of ``eq`` (by
    registration code)."""
    if not len(listed) or not len(eq):
        return np.zeros(len(eq), dtype=np.int64)
    counts = _strings(listed["registration_code"]).value_counts()
    return counts.reindex(_strings(eq["registration_code"])).fillna(0).to_numpy(
        dtype=np.int64)


# --------------------------------------------------------------------------- Gi* cells

@dataclass(frozen=True)
class HotspotSums:
    """What the hotspot layers read of the graded equipment, as counts: per analysis cell
    (its located in-use pieces, the serious and late hazards on them), per cell × county
    and cell × category, the distinct cell × unit pairs, and per county × category the
    units holding such pieces and how many have a serious hazard on them.

    Counts add up in any order, so the sums of any split of the pieces add up
    (:meth:`combined`) to the whole's: the Dask build sums its partitions on the workers.
    Units are counted per part, so a split must keep each unit's pieces together, as the
    Dask build's partitions do (:mod:`layers.partitions`)."""

    cells: np.ndarray       # uint64, sorted, unique
    equipment: np.ndarray   # in-use pieces per cell
    serious: np.ndarray     # serious hazards on them
    late: np.ndarray        # late general hazards on them
    counties: pd.DataFrame  # cell, key (county_adcode), weight (pieces)
    categories: pd.DataFrame  # cell, key (top_category), weight (serious hazards)
    unit_cells: pd.DataFrame  # cell, credit_code: each pair once
    widespread: pd.DataFrame  # county_adcode, top_category, units, units_with_serious

    @classmethod
    def of(cls, equipment: pd.DataFrame, hazards: pd.DataFrame, as_of: date,
           rules: HotspotRules, *, serious: pd.DataFrame | None = None,
           late: pd.DataFrame | None = None) -> HotspotSums:
        """The counts of ``equipment`` (graded) with ``hazards`` on ``as_of``."""
        if serious is None:
            serious = serious_hazards(hazards, as_of, rules)
        if late is None:
            late = late_general_hazards(hazards, as_of)
        at = np.flatnonzero(as_flags(equipment["in_use"]))  # positions of the rows counted
        cell = analysis_cells(_rows(equipment, at, ("h3", "lon", "lat")), rules.resolution)
        located = cell != 0
        at, cell = at[located], cell[located]
        codes = _rows(equipment, at, ("registration_code",))
        per_piece = _per_piece(codes, serious)
        late_per_piece = _per_piece(codes, late)
        del codes
        cells, inv = np.unique(cell, return_inverse=True)
        inv = inv.ravel()
        m = len(cells)
        eq = _rows(equipment, at, ("unit_credit_code", "county_adcode", "top_category"))
        unit = _strings(eq["unit_credit_code"]).reset_index(drop=True)
        named = unit.notna().to_numpy(dtype=bool)
        unit_cells = pd.DataFrame({"cell": cell[named], "credit_code": unit[named]
                                   .reset_index(drop=True)}).drop_duplicates()
        return cls(cells, np.bincount(inv, minlength=m),
                   np.bincount(inv, weights=per_piece, minlength=m).astype(np.int64),
                   np.bincount(inv, weights=late_per_piece, minlength=m).astype(np.int64),
                   _weights(cell, eq["county_adcode"], np.ones(len(cell), dtype=np.int64)),
                   _weights(cell, eq["top_category"], per_piece),
                   unit_cells.reset_index(drop=True), _unit_counts(equipment, serious))

    @classmethod
    def combined(cls, parts: list[HotspotSums]) -> HotspotSums:
        """The counts of all the pieces of ``parts`` (each the :meth:`of` of some pieces,
        each unit's pieces in one part)."""
        if len(parts) == 1:
            return parts[0]
        cells, inv = np.unique(np.concatenate([p.cells for p in parts]), return_inverse=True)
        inv = inv.ravel()

        def added(name: str) -> np.ndarray:
            return np.bincount(inv, weights=np.concatenate([getattr(p, name) for p in parts]),
                               minlength=len(cells)).astype(np.int64)

        def keyed(name: str) -> pd.DataFrame:
            rows = pd.concat([getattr(p, name) for p in parts], ignore_index=True)
            return _weights(rows["cell"].to_numpy(dtype=np.uint64), rows["key"],
                            rows["weight"].to_numpy(dtype=np.int64))

        wide = pd.concat([p.widespread for p in parts], ignore_index=True)
        wide = wide.groupby(["county_adcode", "top_category"], sort=True, as_index=False)[
            ["units", "units_with_serious"]].sum()
        unit_cells = pd.concat([p.unit_cells for p in parts],
                               ignore_index=True).drop_duplicates().reset_index(drop=True)
        return cls(cells, added("equipment"), added("serious"), added("late"),
                   keyed("counties"), keyed("categories"), unit_cells, wide)


def _weights(cell: np.ndarray, key: pd.Series, weight: np.ndarray) -> pd.DataFrame:
    """Total ``weight`` per (cell, key) with a key and a positive total, as rows (cell,
    key, weight)."""
    codes, uniques = pd.factorize(_strings(key).reset_index(drop=True))
    ok = (codes >= 0) & (np.asarray(weight) > 0)
    n = max(len(uniques), 1)
    cells, cell_code = np.unique(np.asarray(cell, dtype=np.uint64)[ok], return_inverse=True)
    pair, inv = np.unique(cell_code.ravel().astype(np.int64) * n + codes[ok],
                          return_inverse=True)
    total = np.bincount(inv.ravel(), weights=np.asarray(weight)[ok]).astype(np.int64)
    return pd.DataFrame({"cell": cells[pair // n],
                         "key": pd.array(np.asarray(uniques, dtype=object)[pair % n],
                                         dtype="string"),
                         "weight": total})


def gi_star_cells(equipment: pd.DataFrame, hazards: pd.DataFrame, as_of: date,
                  rules: HotspotRules, *, serious: pd.DataFrame | None = None,
                  late: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every tested cell (≥ ``min_equipment`` in-use pieces) with its Gi* statistic.

    x_i = serious hazards on in-use equipment / in-use equipment in cell i; Gi* z over the
    tested cells only, k-ring binary weights. One-sided (hot) p: the exact Poisson tail of
    the neighbourhood count (:func:`poisson_excess`, default) or 1 − Φ(z) with
    ``test="normal"``; q the BH-adjusted p (= p without FDR). ``hot``: z > 0 (the
    neighbourhood is above the mean; Gi* undefined → not hot) and q ≤ alpha, and with
    ``own_excess`` the cell's own rate above the overall rate (all serious hazards / all
    in-use equipment of the tested cells). ``late_general_hazards``: the overdue
    rectifications on the cell's in-use equipment (:func:`late_general_hazards`), shown
    beside the serious ones and not part of the test. Columns: :data:`CELL_COLUMNS`."""
    return gi_star_cells_from(HotspotSums.of(equipment, hazards, as_of, rules,
                                             serious=serious, late=late), rules)


def gi_star_cells_from(sums: HotspotSums, rules: HotspotRules) -> pd.DataFrame:
    """:func:`gi_star_cells` from the pieces' :class:`HotspotSums`."""
    tested = sums.equipment >= rules.min_equipment
    if not tested.any():
        return _typed(pd.DataFrame(), CELL_COLUMNS)
    cells = sums.cells[tested]
    m = len(cells)
    equipment_n = sums.equipment[tested]
    hazards_n = sums.serious[tested]
    rate = hazards_n / equipment_n

    i, j = k_ring_pairs(cells, rules.k)
    z = gi_star(rate, i, j)
    # exact Poisson by default; "normal" is Gi*'s own approximation (upper tail: hot only)
    p = poisson_excess(hazards_n, equipment_n, i, j) if rules.test == "poisson" else ndtr(-z)
    q = benjamini_hochberg(p) if rules.fdr else p
    hot = (z > 0) & (q <= rules.alpha)
    if rules.own_excess:  # the cell itself, not only its neighbourhood, is above the mean
        hot &= rate > hazards_n.sum() / equipment_n.sum()

    def top(rows: pd.DataFrame) -> pd.Series:
        pos, inside = _positions(cells, rows["cell"].to_numpy(dtype=np.uint64))
        return _top_per_group(pos[inside], rows["key"][inside].reset_index(drop=True),
                              rows["weight"].to_numpy(dtype=np.float64)[inside], m)

    unit_pos, unit_in = _positions(cells, sums.unit_cells["cell"].to_numpy(dtype=np.uint64))
    out = pd.DataFrame({
        "h3": to_strings(cells), "resolution": rules.resolution, "equipment": equipment_n,
        "serious_hazards": hazards_n, "late_general_hazards": sums.late[tested],
        "rate": rate, "neighbours": np.bincount(i, minlength=m), "gi_star": z,
        "p_value": p, "q_value": q, "hot": hot,
        "unit_count": np.bincount(unit_pos[unit_in], minlength=m),
        "county_adcode": top(sums.counties), "main_category": top(sums.categories),
    })
    return _typed(out, CELL_COLUMNS)  # cells are sorted: uint64 order = hex-string order


def _positions(cells: np.ndarray, of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each of ``of``'s position in sorted ``cells``, and whether it is there."""
    pos = np.searchsorted(cells, of)
    inside = (pos < len(cells)) & (cells[np.minimum(pos, max(len(cells) - 1, 0))] == of)
    return pos, inside


def poisson_excess(hazards: np.ndarray, equipment: np.ndarray, i: np.ndarray, j: np.ndarray
                   ) -> np.ndarray:
    """Upper-tail p of each neighbourhood's serious-hazard count under the global rate.

    Gi* is a standardised neighbourhood sum; its normal approximation breaks down on sparse,
    zero-heavy counts (one hazard among six pieces reads as z ≈ 3). The same neighbourhood
    sum tested exactly, O ~ Poisson(E) with E = global rate × equipment in the
    neighbourhood (the Poisson model of disease mapping and of Kulldorff's scan), keeps
    the test honest there: p = P(X ≥ O)."""
    observed = np.bincount(i, weights=hazards[j], minlength=len(hazards))
    exposure = np.bincount(i, weights=equipment[j], minlength=len(hazards))
    total = equipment.sum()
    expected = exposure * (hazards.sum() / total if total else 0.0)
    p = poisson.sf(observed - 1, expected)
    return np.where(observed > 0, p, 1.0)


def _clusters(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of sorted ``cells`` under k=1 adjacency: each cell's cluster id
    (the smallest cell of its component) and the component size."""
    n = len(cells)
    i, j = k_ring_pairs(cells, 1)
    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    first = np.full(label.max() + 1, n, dtype=np.int64)
    np.minimum.at(first, label, np.arange(n))  # cells sorted: lowest index = smallest cell
    return cells[first[label]], np.bincount(label)[label]


def hotspot_cells(equipment: pd.DataFrame, hazards: pd.DataFrame, as_of: date,
                  rules: HotspotRules, *, tested: pd.DataFrame | None = None
                  ) -> gpd.GeoDataFrame:
    """The significant hot cells as hexagons, with their cluster (columns
    :data:`LAYER_COLUMNS` + ``geometry``). ``regional``: the cell's cluster of significant
    cells touching each other (k=1) holds two or more cells (区域性); a lone hot cell is its
    own cluster of size 1. ``tested`` may pass a ready :func:`gi_star_cells` frame."""
    if tested is None:
        tested = gi_star_cells(equipment, hazards, as_of, rules)
    return hotspot_cells_from(tested)


def hotspot_cells_from(tested: pd.DataFrame) -> gpd.GeoDataFrame:
    """:func:`hotspot_cells` from the :func:`gi_star_cells` frame."""
    hot = tested[tested["hot"].fillna(False).to_numpy(dtype=bool)].reset_index(drop=True)
    if not len(hot):
        return gpd.GeoDataFrame(_typed(pd.DataFrame(), LAYER_COLUMNS), geometry=[],
                                crs=4326)
    cells = from_strings(hot["h3"])
    cluster, size = _clusters(cells)
    hot["cluster_id"] = to_strings(cluster).to_numpy()
    hot["cluster_size"] = size
    hot["regional"] = size >= 2
    out = _typed(hot, LAYER_COLUMNS)
    return gpd.GeoDataFrame(out, geometry=cell_polygons(out["h3"]), crs=4326)


# --------------------------------------------------------------------------- units

def hotspot_units(equipment: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Units with in-use equipment inside a hot cell, one row each (the cell of highest
    Gi*, ties: smallest h3). Columns :data:`UNIT_COLUMNS`, sorted by credit code."""
    if not len(cells) or not len(equipment):
        return _typed(pd.DataFrame(), UNIT_COLUMNS)
    resolution = int(cells["resolution"].iloc[0])
    eq = _in_use_rows(equipment, ("unit_credit_code", "h3", "lon", "lat"))
    eq = eq[_strings(eq["unit_credit_code"]).notna().to_numpy(dtype=bool)]
    pairs = pd.DataFrame({"cell": analysis_cells(eq, resolution),
                          "credit_code": _strings(eq["unit_credit_code"]).to_numpy()})
    return hotspot_units_from(pairs.drop_duplicates(), cells)


def hotspot_units_from(unit_cells: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """:func:`hotspot_units` from the (cell, credit_code) pairs of the units' in-use pieces
    at the hot cells' resolution (:attr:`HotspotSums.unit_cells`)."""
    if not len(cells) or not len(unit_cells):
        return _typed(pd.DataFrame(), UNIT_COLUMNS)
    hot = pd.DataFrame({"cell": from_strings(cells["h3"]), "h3": _strings(cells["h3"]),
                        "gi_star": cells["gi_star"].astype("float64").to_numpy(),
                        "regional": cells["regional"].to_numpy(),
                        "cluster_id": _strings(cells["cluster_id"]).to_numpy()})
    inside = np.isin(unit_cells["cell"].to_numpy(dtype=np.uint64), hot["cell"].to_numpy())
    pieces = pd.DataFrame({"credit_code": _strings(unit_cells["credit_code"]).to_numpy()[inside],
                           "cell": unit_cells["cell"].to_numpy(dtype=np.uint64)[inside]})
    out = (pieces.merge(hot, on="cell")
           .sort_values(["credit_code", "gi_star", "h3"], ascending=[True, False, True])
           .drop_duplicates("credit_code"))
    return _typed(out, UNIT_COLUMNS)


# --------------------------------------------------------------------------- widespread

def widespread(equipment: pd.DataFrame, hazards: pd.DataFrame, as_of: date,
               rules: HotspotRules, *, serious: pd.DataFrame | None = None) -> pd.DataFrame:
    """普遍 serious hazards: per county × top category, the units holding in-use equipment of
    that category there, how many have a serious hazard on such equipment, the share, and
    ``widespread`` = share ≥ ``widespread_share`` and at least ``widespread_min_units`` such
    units. Rows without a county, category or unit are left out. Columns
    :data:`WIDESPREAD_COLUMNS`, sorted by county and category."""
    if serious is None:
        serious = serious_hazards(hazards, as_of, rules)
    return widespread_from(_unit_counts(equipment, serious), rules)


def _unit_counts(equipment: pd.DataFrame, serious: pd.DataFrame) -> pd.DataFrame:
    """Per county × top category (sorted), the units holding in-use equipment of that
    category there and how many of them have a ``serious`` hazard on such equipment."""
    eq = _in_use_rows(equipment, ("county_adcode", "top_category", "unit_credit_code",
                                  "registration_code"))
    county, counties = pd.factorize(_strings(eq["county_adcode"]), sort=True)
    cat, cats = pd.factorize(_strings(eq["top_category"]), sort=True)
    unit, _ = pd.factorize(_strings(eq["unit_credit_code"]))
    ok = (county >= 0) & (cat >= 0) & (unit >= 0)
    if not ok.any():
        return pd.DataFrame({"county_adcode": pd.Series(dtype="string"),
                             "top_category": pd.Series(dtype="string"),
                             "units": pd.Series(dtype=np.int64),
                             "units_with_serious": pd.Series(dtype=np.int64)})
    n_cat, n_unit = len(cats), int(unit.max()) + 1
    group = county[ok].astype(np.int64) * n_cat + cat[ok]          # county × category
    pair, inv = np.unique(group * n_unit + unit[ok], return_inverse=True)  # × unit
    has = np.bincount(inv, weights=_per_piece(eq.loc[ok], serious)) > 0
    groups, ginv = np.unique(pair // n_unit, return_inverse=True)
    return pd.DataFrame({
        "county_adcode": pd.array(np.asarray(counties, dtype=object)[groups // n_cat],
                                  dtype="string"),
        "top_category": pd.array(np.asarray(cats, dtype=object)[groups % n_cat],
                                 dtype="string"),
        "units": np.bincount(ginv).astype(np.int64),
        "units_with_serious": np.bincount(ginv, weights=has).astype(np.int64)})


def widespread_from(counts: pd.DataFrame, rules: HotspotRules) -> pd.DataFrame:
    """:func:`widespread` from the units counted per county × category
    (:attr:`HotspotSums.widespread`)."""
    if not len(counts):
        return _typed(pd.DataFrame(), WIDESPREAD_COLUMNS)
    out = counts.reset_index(drop=True)
    out["share"] = out["units_with_serious"] / out["units"]
    out["widespread"] = ((out["share"] >= rules.widespread_share)
                         & (out["units_with_serious"] >= rules.widespread_min_units))
    return _typed(out, WIDESPREAD_COLUMNS)  # sorted by county and category
