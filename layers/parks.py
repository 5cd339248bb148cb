"""Park profiles (一园一策) and unit files (一企一策).

Henan plan 二（四）: "推进园区双重预防体系建设，按照“一园一策”“一企一策”要求，督促、指导特种设备
使用单位将特种设备双重预防体系建设标准纳入企业双重预防体系". A park profile sums what a park
holds (its equipment, the units that sit or run equipment in it, their hazards, inspections,
insurance and "五有" standing); a unit file does the same for one using unit. Both end in a
list of measures chosen by the rules of :mod:`layers.park_measures` (a small condition
language with a Chinese template filled from the row's numbers), applied here by
:func:`apply_measures`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from data.catalogue import TOP_CATEGORIES, check_top_codes
from layers.aggregate import SCORE_STEPS, score_steps
from layers.columns import arrow_text, column, flags, number_array, numbers, text, top_categories
from layers.frames import ELEVATORS, LEVEL_BY_RANK, LEVEL_COUNT_COLUMNS, LEVEL_RANK, LEVELS
from layers.park_measures import (
    DEFAULT_MEASURES,
    METRICS,
    OPERATORS,
    MeasureRule,
    Scope,
    template_fields,
)


class ParkRules(BaseModel):
    """Knobs of the park profiles and unit files (rules TOML section ``parks``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    top_units: int = Field(5, ge=1, le=50, description="园区档案列出的最高风险使用单位数")
    months: int = Field(12, ge=1, le=120,
                        description="隐患月度发现/销号统计的月数（截至统计日所在月）")
    small_sizes: tuple[str, ...] = Field(("小型", "微型"), min_length=1,
                                         description="视为小微企业的企业规模取值")
    dominant_exclude: tuple[str, ...] = Field(
        ("7000", "F000"),
        description="确定主要设备种类时不计的种类代码（压力管道元件为产品、安全附件随所属设备）")
    measures: tuple[MeasureRule, ...] = Field(DEFAULT_MEASURES,
                                              description="措施规则（按顺序输出）")

    @field_validator("small_sizes", "dominant_exclude")
    @classmethod
    def _no_blank(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if any(not s.strip() for s in v):
            raise ValueError("取值不能为空字符串")
        return v

    @field_validator("dominant_exclude")
    @classmethod
    def _top_codes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return check_top_codes(v)

    @model_validator(mode="after")
    def _unique_ids(self) -> ParkRules:
        ids = [m.id for m in self.measures]
        if len(ids) != len(set(ids)):
            raise ValueError("measures 的 id 不能重复")
        return self


# --------------------------------------------------------------------------- strings
# JSON columns are built as Arrow string arrays (element-wise concatenation and list joins
# run in Arrow's C++ kernels); Python only encodes distinct values.

_LS = pa.large_string()


def _cat(*parts: str | pa.Array) -> pa.Array:
    """Element-wise concatenation of Arrow string arrays and literal strings."""
    args = [pa.scalar(p, _LS) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*args, pa.scalar("", _LS))


def _strs(values: np.ndarray) -> pa.Array:
    """Integers as decimal strings."""
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), _LS)


def _json_values(values: object) -> pa.Array:
    """Each value as a JSON literal (``null`` for missing); encoded once per distinct value."""
    codes, uniques = pd.factorize(pd.Series(values), use_na_sentinel=True)
    encoded = [orjson.dumps(u).decode() for u in pd.Series(uniques).tolist()]
    table = pa.array([*encoded, "null"], type=_LS)
    return table.take(pa.array(np.where(codes < 0, len(encoded), codes)))


def _json_records(frame: pd.DataFrame, columns: list[str]) -> pa.Array:
    """One JSON object string per row over ``columns`` (keys are the column names)."""
    parts: list[str | pa.Array] = []
    for i, col in enumerate(columns):
        parts += [f'{"," if i else "{"}"{col}":', _json_values(frame[col])]
    return _cat(*parts, "}")


def _join(pos: np.ndarray, parts: pa.Array, n: int, empty: str, left: str, right: str
          ) -> pa.Array:
    """``left + ",".join(parts at row r) + right`` for each row r < n (``empty`` if none).

    Parts keep their order within a row; the join runs over Arrow list offsets from a
    stable sort, not a Python call per group."""
    pos = np.asarray(pos, dtype=np.int64)
    take = np.flatnonzero(pos >= 0)
    take = take[np.argsort(pos[take], kind="stable")]
    counts = np.bincount(pos[take], minlength=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    lists = pa.LargeListArray.from_arrays(pa.array(offsets), parts.take(pa.array(take)))
    joined = _cat(left, pc.binary_join(lists, pa.scalar(",", _LS)), right)
    return pc.if_else(pa.array(counts > 0), joined, pa.scalar(empty, _LS))


def _strings(values: pa.Array) -> pd.api.extensions.ExtensionArray:
    """An Arrow string array as a pandas "string" column (no copy)."""
    return pd.array(values, dtype="string")


# --------------------------------------------------------------------------- grouping
# Sums per park or unit are bincounts over integer positions: the row of the park (unit)
# each piece of equipment belongs to, -1 for none. No Python call per group.

def _positions(index: object, keys: object) -> np.ndarray:
    """Row of the first ``index`` value equal to each key; -1 where missing or unknown."""
    keys = arrow_text(keys)
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    found = pc.index_in(keys, value_set=arrow_text(index), skip_nulls=True)
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _sum(pos: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    ok = pos >= 0
    w = None if weights is None else np.asarray(weights, dtype=np.float64)[ok]
    return np.bincount(pos[ok], weights=w, minlength=n)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0 (a rate of nothing is unknown, not 0)."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = np.full(len(den), np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _take(values: np.ndarray, rows: np.ndarray, fill: object) -> np.ndarray:
    """``values[rows]`` with ``fill`` where the row is -1."""
    values = np.append(np.asarray(values), np.asarray([fill], dtype=np.asarray(values).dtype))
    return values[np.where(rows >= 0, rows, len(values) - 1)]


# --------------------------------------------------------------------------- inputs

def _equipment_rows(equipment: pd.DataFrame) -> pd.DataFrame:
    """The few columns of the graded equipment these layers read, plain and light (a 0/1
    flag in a byte, a count in four: summed as float64 like any other weight)."""
    cat = top_categories(equipment)
    in_use = flags(equipment, "in_use")
    elevator = (cat == ELEVATORS).fillna(False).to_numpy(dtype=bool) & in_use
    rank = number_array(equipment, "level_rank").astype(np.int64)

    def count(name: str) -> np.ndarray:
        return number_array(equipment, name).astype(np.int32)

    return pd.DataFrame({
        "registration_code": column(equipment, "registration_code"),
        "unit": column(equipment, "unit_credit_code"),
        "park_id": column(equipment, "park_id"),
        "top_category": cat,
        "equipment": np.ones(len(equipment), dtype=np.int8),
        "in_use": in_use.astype(np.int8),
        **{f"n_{lv}": (rank == LEVEL_RANK[lv]).astype(np.int8) for lv in LEVELS},
        "overdue": (flags(equipment, "overdue") & in_use).astype(np.int8),
        "open_hazards": count("open_hazards"),
        "open_major_hazards": count("open_major_hazards"),
        "late_hazards": count("late_hazards"),
        "elevators": elevator.astype(np.int8),
        "elevators_insured": (elevator & flags(equipment, "insured")).astype(np.int8),
        "risk_score": number_array(equipment, "D"),
    })


_SUMS = ("equipment", "in_use", *LEVEL_COUNT_COLUMNS, "overdue", "open_hazards",
         "open_major_hazards", "late_hazards", "elevators", "elevators_insured", "risk_score")


def _equipment_stats(eq: pd.DataFrame, pos: np.ndarray, n: int) -> pd.DataFrame:
    """Counts, rates and D statistics of the rows of ``eq`` at each of the ``n`` positions:
    a row is a piece (:func:`_equipment_rows`) or pieces already summed (:class:`ParkSums`,
    with their ``D_max``).

    Elevator insurance coverage is over elevators in use (保有量, Shaanxi plan 二（五））; the
    overdue rate is over pieces in use (only those can be 逾期未检)."""
    out = {}
    for col in _SUMS:
        total = _sum(pos, n, eq[col].to_numpy())
        out[col] = total if col == "risk_score" else np.rint(total).astype(np.int64)
    d_max = np.zeros(n)
    ok = pos >= 0
    np.maximum.at(d_max, pos[ok], eq["D_max" if "D_max" in eq else "risk_score"]
                  .to_numpy()[ok])
    out["D_max"] = d_max
    out["overdue_rate"] = _ratio(out["overdue"], out["in_use"])
    out["insurance_coverage"] = _ratio(out["elevators_insured"], out["elevators"])
    return pd.DataFrame(out)


def _categories(eq: pd.DataFrame, pos: np.ndarray, n: int, exclude: tuple[str, ...]
                ) -> tuple[pa.Array, np.ndarray]:
    """Pieces per top category as a JSON object per position, and the dominant category
    (a row of ``eq`` counts its ``equipment`` pieces).

    Dominant = most pieces in use (ties: higher summed D, then the lower code), leaving out
    ``exclude``; Henan plan 二（二） "按设备类别……开展分类监管"."""
    cats = np.sort(eq["top_category"].dropna().unique().astype(object))
    m = len(cats)
    if m == 0 or n == 0:
        return pa.array(["{}"] * n, type=_LS), np.full(n, None, dtype=object)
    ci = _positions(cats, eq["top_category"])
    ok = (pos >= 0) & (ci >= 0)
    key = pos[ok] * m + ci[ok]

    def grid(weights: np.ndarray | None) -> np.ndarray:
        w = None if weights is None else weights[ok]
        return np.bincount(key, weights=w, minlength=n * m).reshape(n, m)

    count = np.rint(grid(eq["equipment"].to_numpy(dtype=np.float64))).astype(np.int64)
    rows, cols = np.nonzero(count)
    parts = _cat(_json_values(cats).take(pa.array(cols)), ":", _strs(count[rows, cols]))
    json = _join(rows, parts, n, "{}", "{", "}")

    used = np.where(np.isin(cats, list(exclude)), -1.0,
                    grid(eq["in_use"].to_numpy(dtype=np.float64)))
    best_used = used.max(axis=1)
    d = np.where(used == best_used[:, None], grid(eq["risk_score"].to_numpy()), -np.inf)
    best = d.argmax(axis=1)  # first maximum = lowest code among ties
    return json, np.where(best_used > 0, cats[best], None)


def _category_names(codes: np.ndarray) -> np.ndarray:
    """Chinese name of each top category code (None where the code is missing/unknown)."""
    at, uniques = pd.factorize(pd.Series(codes, dtype=object))
    names = np.asarray([*(TOP_CATEGORIES.get(c) for c in uniques), None], dtype=object)
    return names[at]


def _month_index(dates: pd.Series) -> np.ndarray:
    """Months since year 0 (year × 12 + month − 1); −1 where the date is missing."""
    d = pd.to_datetime(dates, errors="coerce")
    return (d.dt.year * 12 + d.dt.month - 1).fillna(-1).to_numpy(dtype=np.int64)


def _hazard_months(hazards: pd.DataFrame, eq: pd.DataFrame, pos: np.ndarray, n: int,
                   as_of: date, months: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Hazards found and closed per position and month, ``months`` months up to as_of's.

    A hazard reaches a park or unit through its equipment (registration code); found is
    counted by ``found_on``, closed (销号) by ``closed_on``."""
    owner = _take(pos, _positions(eq["registration_code"], column(hazards, "registration_code")),
                  -1)
    start, labels = _window(as_of, months)
    found, closed = (_month_grid(owner, _month_index(column(hazards, col)), None, n, start,
                                 months) for col in ("found_on", "closed_on"))
    return found, closed, labels


def _window(as_of: date, months: int) -> tuple[int, list[str]]:
    """The first of the ``months`` months up to as_of's (a :func:`_month_index`), and
    their labels."""
    today = pd.Timestamp(as_of)
    start = today.year * 12 + today.month - 1 - (months - 1)
    return start, [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in range(start, start + months)]


def _month_grid(pos: np.ndarray, month: np.ndarray, weights: np.ndarray | None, n: int,
                start: int, months: int) -> np.ndarray:
    """n × ``months`` counts (or sums of ``weights``) of rows by position and month."""
    at = month - start
    ok = (pos >= 0) & (at >= 0) & (at < months)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)[ok]
    grid = np.bincount(pos[ok] * months + at[ok], weights=w, minlength=n * months)
    return np.rint(grid).astype(np.int64).reshape(n, months)


# --------------------------------------------------------------------------- measures

def apply_measures(metrics: pd.DataFrame, labels: pd.DataFrame, rules: ParkRules,
                   scope: Scope) -> tuple[pa.Array, pa.Array]:
    """JSON lists of measure texts and of measure ids per row of ``metrics``.

    A rule fires where every clause holds (a missing number never satisfies a clause) and
    every field its template prints is known; each row lists its measures in rule order.
    Texts are rendered once per distinct combination of the printed values."""
    n = len(metrics)
    rows: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
    texts: list[pa.Array] = [pa.array([], type=_LS)]
    ids: list[pa.Array] = [pa.array([], type=_LS)]
    for rule in rules.measures:
        if not rule.applies_to(scope):
            continue
        clauses = rule.clauses()
        fire = np.ones(n, dtype=bool)
        for metric, op, value in clauses:
            have = metrics[metric].to_numpy(dtype=np.float64, na_value=np.nan)
            fire &= OPERATORS[op](have, value)
        segments = template_fields(rule.text)
        fields = {f: _field(metrics, labels, f, clauses[0][2]) for _, f, _ in segments if f}
        for values in fields.values():
            fire &= ~pd.isna(values)
        at = np.flatnonzero(fire)
        rows.append(at)
        texts.append(_render(segments, {f: v[at] for f, v in fields.items()}, len(at)))
        ids.append(pa.array([orjson.dumps(rule.id).decode()] * len(at), type=_LS))
    at = np.concatenate(rows)
    return (_join(at, pa.concat_arrays(texts), n, "[]", "[", "]"),
            _join(at, pa.concat_arrays(ids), n, "[]", "[", "]"))


def _field(metrics: pd.DataFrame, labels: pd.DataFrame, name: str, threshold: float
           ) -> np.ndarray:
    if name == "threshold":
        return np.full(len(metrics), threshold)
    if name in METRICS:
        return metrics[name].to_numpy(dtype=np.float64, na_value=np.nan)
    return labels[name].to_numpy(dtype=object, na_value=None)


def _render(segments: list[tuple[str, str, str]], fields: dict[str, np.ndarray], n: int
            ) -> pa.Array:
    """The template filled per row, as JSON strings; formatted once per distinct combination.

    Whole numbers print without ".0" when no format is given (counts)."""
    combo = np.zeros(n, dtype=np.int64)  # 0..k-1, one code per distinct combination
    for values in fields.values():
        codes, uniques = pd.factorize(pd.Series(values, dtype=values.dtype))
        combo, _ = pd.factorize(combo * max(len(uniques), 1) + codes)
    _, first = np.unique(combo, return_index=True)
    encoded = []
    for row in first:
        filled = []
        for literal, f, spec in segments:
            filled.append(literal)
            if f:
                v = fields[f][row]
                if isinstance(v, float | np.floating):
                    v = float(v)
                    if not spec and v.is_integer():
                        v = int(v)
                filled.append(format(v, spec))
        encoded.append(orjson.dumps("".join(filled)).decode())
    return pa.array(encoded, type=_LS).take(pa.array(combo))


# --------------------------------------------------------------------------- parks

PARK_COLUMNS = [
    "park_id", "name", "kind", "province_adcode", "city_adcode", "county_adcode", "area_km2",
    "units", "equipment", "in_use", *LEVEL_COUNT_COLUMNS, "categories", "units_by_level",
    "red_units", "open_hazards", "open_major_hazards", "late_hazards", "overdue", "overdue_rate",
    "elevators", "elevators_insured", "insurance_coverage", "five_have_score",
    "five_have_compliant", "five_have_rate", "small_micro_units", "small_micro_share",
    "blacklisted_units", "accidents_3y", "risk_score", "D_max", "risk_index", "rank",
    "dominant_category", "dominant_category_name", "top_units", "monthly", "measures",
    "measure_ids",
]


def park_profiles(equipment: pd.DataFrame, units: pd.DataFrame, parks: gpd.GeoDataFrame,
                  hazards: pd.DataFrame, as_of: date, rules: ParkRules) -> gpd.GeoDataFrame:
    """One profile per park (一园一策), riskiest first; parks holding nothing get zeros.

    A unit belongs to a park when its own location or any of its equipment lies in it.
    ``rank`` 1 = highest ``risk_score`` (sum of D), then more open major hazards, then
    park_id; ``risk_index`` = risk_score as a share (0–100) of the highest park's."""
    return park_profiles_from(ParkSums.of(equipment, hazards), units, parks, as_of, rules)


_PIECE_KEYS = ["park_id", "top_category"]


@dataclass(frozen=True)
class ParkSums:
    """What the park profiles read of the graded equipment and its hazards, summed per park:
    the pieces per park and top category (:data:`_SUMS`, D in whole twentieths, and the
    highest D), the distinct (park, unit) pairs of a piece and its unit, and the hazards
    found and closed per park and month.

    The sums of any split of the pieces (each hazard with its piece) combine
    (:meth:`combined`) to the sums of all of them, to the last bit: a Dask worker sums its
    partition and the driver adds the partitions' sums, never holding the pieces."""

    pieces: pd.DataFrame   # park_id, top_category, *_SUMS, D_max
    members: pd.DataFrame  # park_id, unit
    months: pd.DataFrame   # park_id, month (a _month_index), found, closed

    @classmethod
    def of(cls, equipment: pd.DataFrame, hazards: pd.DataFrame) -> ParkSums:
        """The sums of ``equipment`` (graded) and of the ``hazards`` on its pieces; pieces
        without a park count for none."""
        eq = _equipment_rows(equipment)
        eq = eq[eq["park_id"].notna().to_numpy(dtype=bool)].reset_index(drop=True)
        eq["D_max"] = eq["risk_score"]
        eq["risk_score"] = score_steps(eq["risk_score"].to_numpy())
        owner = _positions(eq["registration_code"], column(hazards, "registration_code"))
        park = eq["park_id"].to_numpy(dtype=object)
        months = []
        for col, found in (("found_on", 1), ("closed_on", 0)):
            month = _month_index(column(hazards, col))
            ok = (owner >= 0) & (month >= 0)
            months.append(pd.DataFrame({"park_id": park[owner[ok]], "month": month[ok],
                                        "found": found, "closed": 1 - found}))
        members = eq.loc[eq["unit"].notna().to_numpy(dtype=bool), ["park_id", "unit"]]
        return cls._grouped([eq[[*_PIECE_KEYS, *_SUMS, "D_max"]]], [members], months)

    @classmethod
    def combined(cls, parts: list[ParkSums]) -> ParkSums:
        """The sums of all the pieces of ``parts`` (each the :meth:`of` of some pieces)."""
        return cls._grouped([p.pieces for p in parts], [p.members for p in parts],
                            [p.months for p in parts])

    @classmethod
    def _grouped(cls, pieces: list[pd.DataFrame], members: list[pd.DataFrame],
                 months: list[pd.DataFrame]) -> ParkSums:
        how = {**dict.fromkeys(_SUMS, "sum"), "D_max": "max"}
        piece = pd.concat(pieces, ignore_index=True).astype(
            {"park_id": "string", "top_category": "string"})
        piece = piece.groupby(_PIECE_KEYS, dropna=False, sort=True).agg(how).reset_index()
        member = pd.concat(members, ignore_index=True).astype("string").drop_duplicates()
        month = pd.concat(months, ignore_index=True).astype({"park_id": "string"})
        month = month.groupby(["park_id", "month"], sort=True)[["found", "closed"]].sum()
        return cls(piece, member.sort_values(["park_id", "unit"]).reset_index(drop=True),
                   month.reset_index())


def park_profiles_from(sums: ParkSums, units: pd.DataFrame, parks: gpd.GeoDataFrame,
                       as_of: date, rules: ParkRules) -> gpd.GeoDataFrame:
    """:func:`park_profiles` from the :class:`ParkSums` of the equipment and hazards."""
    pk = _parks(parks)
    index = pd.Index(pk["park_id"])
    n = len(pk)
    eq = sums.pieces
    pos = _positions(index, eq["park_id"])
    u = _unit_rows(units, rules)
    park, unit = _members(u, sums.members, index)

    out = pd.DataFrame({"park_id": pk["park_id"]})
    for col in ("name", "kind", "province_adcode", "city_adcode", "county_adcode"):
        out[col] = text(pk, col)
    out["area_km2"] = numbers(pk, "area_km2")
    out = pd.concat([out, _member_stats(u, park, unit, n), _equipment_stats(eq, pos, n)],
                    axis=1)
    out["risk_score"] /= SCORE_STEPS
    categories, dominant = _categories(eq, pos, n, rules.dominant_exclude)
    out["categories"] = _strings(categories)
    out["dominant_category"] = dominant
    out["dominant_category_name"] = _category_names(dominant)
    top = out["risk_score"].max() if n else 0.0
    out["risk_index"] = 100 * out["risk_score"] / top if top > 0 else 0.0
    out["top_units"] = _strings(_top_units(u, park, unit, n, rules.top_units))
    start, labels = _window(as_of, rules.months)
    m = sums.months
    at = _positions(index, m["park_id"])
    found, closed = (_month_grid(at, m["month"].to_numpy(dtype=np.int64), m[col].to_numpy(),
                                 n, start, rules.months) for col in ("found", "closed"))
    out["monthly"] = _strings(_monthly(found, closed, labels))
    order = np.lexsort((out["park_id"].to_numpy(dtype=object),
                        -out["open_major_hazards"].to_numpy(), -out["risk_score"].to_numpy()))
    out = out.iloc[order].reset_index(drop=True)
    out["rank"] = np.arange(1, n + 1)
    measures, ids = apply_measures(out, out[["name", "dominant_category_name"]], rules, "park")
    out["measures"], out["measure_ids"] = _strings(measures), _strings(ids)
    geometry = np.asarray(pk.geometry.to_numpy(), dtype=object)[order]
    return _typed(gpd.GeoDataFrame(out[PARK_COLUMNS], geometry=geometry, crs=4326))


def _parks(parks: pd.DataFrame) -> gpd.GeoDataFrame:
    """Parks in EPSG:4326, one row per park_id (the first), no missing ids, index 0..n-1."""
    pk = parks if isinstance(parks, gpd.GeoDataFrame) else gpd.GeoDataFrame(
        parks, geometry=column(parks, "geometry", default=None).to_numpy(), crs=4326)
    if pk.crs is None:
        pk = pk.set_crs(4326)
    elif pk.crs.to_epsg() != 4326:
        pk = pk.to_crs(4326)
    ids = text(pk, "park_id")
    keep = (ids.notna() & ~ids.duplicated()).to_numpy(dtype=bool)
    return pk[keep].assign(park_id=ids[keep].to_numpy()).reset_index(drop=True)


def _unit_rows(units: pd.DataFrame, rules: ParkRules) -> pd.DataFrame:
    """The graded units' columns a park profile reads, one row per credit code."""
    five = numbers(units, "five_have_score")
    codes = text(units, "credit_code")
    u = pd.DataFrame({
        "credit_code": codes,
        "park_id": column(units, "park_id"),
        "name": text(units, "name"),
        "level": text(units, "level"),
        "level_rank": _unit_rank(units),
        "D_max": number_array(units, "D_max"),
        "open_hazards": number_array(units, "open_hazards").astype(np.int64),
        "five_have_score": five.to_numpy(dtype=np.float64, na_value=np.nan),
        "small": text(units, "size").isin(list(rules.small_sizes))
        .to_numpy(dtype=bool),
        "blacklisted": flags(units, "blacklisted"),
        "accidents_3y": number_array(units, "accidents_3y").astype(np.int64),
    })
    keep = (codes.notna() & ~codes.duplicated()).to_numpy(dtype=bool)
    return u[keep].reset_index(drop=True)


def _unit_rank(units: pd.DataFrame) -> np.ndarray:
    """Level rank 4..1 of each unit (0 ungraded); from ``level`` when no ``level_rank``."""
    if "level_rank" in units.columns:
        return number_array(units, "level_rank").astype(np.int64)
    level = text(units, "level").map(LEVEL_RANK)
    return pd.to_numeric(level).fillna(0).to_numpy(dtype=np.int64)


def _members(u: pd.DataFrame, pieces: pd.DataFrame, index: pd.Index
             ) -> tuple[np.ndarray, np.ndarray]:
    """(park row, unit row) pairs, sorted: the unit's point or any of its equipment is in the
    park (一园一策 covers every enterprise operating in the park; ``pieces``: the (park_id,
    unit) pairs of the equipment)."""
    codes = pd.Index(u["credit_code"])
    park = np.concatenate([_positions(index, u["park_id"]), _positions(index, pieces["park_id"])])
    unit = np.concatenate([np.arange(len(u)), _positions(codes, pieces["unit"])])
    ok = (park >= 0) & (unit >= 0)
    pairs = np.unique(park[ok] * max(len(u), 1) + unit[ok])
    return pairs // max(len(u), 1), pairs % max(len(u), 1)


def _member_stats(u: pd.DataFrame, park: np.ndarray, unit: np.ndarray, n: int
                  ) -> pd.DataFrame:
    """Per park: units, their levels, "五有", small/micro, blacklist and accident counts."""
    rank = u["level_rank"].to_numpy()[unit]
    by_level = {lv: np.rint(_sum(park, n, rank == r)).astype(np.int64)
                for lv, r in LEVEL_RANK.items()}
    five = u["five_have_score"].to_numpy()[unit]
    known = ~np.isnan(five)
    units = np.bincount(park, minlength=n)
    compliant = np.rint(_sum(park, n, five == 5)).astype(np.int64)
    small = np.rint(_sum(park, n, u["small"].to_numpy()[unit])).astype(np.int64)
    parts: list[str | pa.Array] = []
    for i, lv in enumerate(LEVELS):
        parts += [f'{"," if i else "{"}"{lv}":', _strs(by_level[lv])]
    units_by_level = _strings(_cat(*parts, "}"))
    return pd.DataFrame({
        "units": units, "red_units": by_level["red"], "units_by_level": units_by_level,
        "five_have_score": _ratio(_sum(park[known], n, five[known]),
                                  np.bincount(park[known], minlength=n)),
        "five_have_compliant": compliant, "five_have_rate": _ratio(compliant, units),
        "small_micro_units": small, "small_micro_share": _ratio(small, units),
        "blacklisted_units": np.rint(_sum(park, n, u["blacklisted"].to_numpy()[unit]))
        .astype(np.int64),
        "accidents_3y": np.rint(_sum(park, n, u["accidents_3y"].to_numpy()[unit]))
        .astype(np.int64),
    })


def _top_units(u: pd.DataFrame, park: np.ndarray, unit: np.ndarray, n: int, k: int
               ) -> pa.Array:
    """The ``k`` riskiest units of each park: level rank, then D_max, then credit code."""
    m = u.iloc[unit].assign(park=park).sort_values(
        ["park", "level_rank", "D_max", "credit_code"], ascending=[True, False, False, True],
        kind="stable")
    m = m[m.groupby("park", sort=False).cumcount().to_numpy() < k]
    rows = _json_records(m, ["credit_code", "name", "level", "D_max", "open_hazards"])
    return _join(m["park"].to_numpy(), rows, n, "[]", "[", "]")


def _monthly(found: np.ndarray, closed: np.ndarray, labels: list[str]) -> pa.Array:
    """JSON list of {"month", "found", "closed"} per row, oldest month first."""
    n, k = found.shape
    head = pa.array([f'{{"month":"{m}","found":' for m in labels], type=_LS)
    rows = _cat(head.take(pa.array(np.tile(np.arange(k), n))), _strs(found.ravel()),
                ',"closed":', _strs(closed.ravel()), "}")
    return _join(np.repeat(np.arange(n), k), rows, n, "[]", "[", "]")


# --------------------------------------------------------------------------- units

UNIT_COLUMNS = [
    "credit_code", "name", "industry", "size", "park_id", "level", "level_rank", "level_reason",
    "equipment", "in_use", *LEVEL_COUNT_COLUMNS, "categories", "dominant_category",
    "dominant_category_name", "open_hazards", "open_major_hazards", "late_hazards",
    "hazards_found", "hazards_closed", "overdue", "overdue_rate", "elevators",
    "elevators_insured", "insurance_coverage", "five_have_score", "blacklisted", "accidents_3y",
    "risk_score", "D_max", "measures", "measure_ids",
]


def unit_files(equipment: pd.DataFrame, units: pd.DataFrame, hazards: pd.DataFrame,
               as_of: date, rules: ParkRules) -> gpd.GeoDataFrame:
    """One file per graded unit (一企一策), in input order, with its measures and its point.

    Counts come from the unit's equipment; ``hazards_found``/``hazards_closed`` count its
    hazards found / closed in the ``rules.months`` months up to as_of's month."""
    codes = text(units, "credit_code")
    keys = pd.Index(codes.dropna().unique())
    row = _positions(keys, codes)
    k = len(keys)
    eq = _equipment_rows(equipment)
    pos = _positions(keys, eq["unit"])
    stats = _equipment_stats(eq, pos, k).reindex(row).reset_index(drop=True)
    for col in (*_SUMS, "D_max"):
        stats[col] = stats[col].fillna(0)
    categories, dominant = _categories(eq, pos, k, rules.dominant_exclude)
    found, closed, _ = _hazard_months(hazards, eq, pos, k, as_of, rules.months)

    level_rank = _unit_rank(units)
    five = numbers(units, "five_have_score")
    small = text(units, "size").isin(list(rules.small_sizes)).to_numpy(
        dtype=bool)
    blacklisted = column(units, "blacklisted", "boolean")
    accidents = pd.to_numeric(column(units, "accidents_3y"), errors="coerce").astype("Int64")
    out = pd.DataFrame({
        "credit_code": codes, "name": text(units, "name"),
        "industry": text(units, "industry"),
        "size": text(units, "size"),
        "park_id": text(units, "park_id"),
        "level": _level(level_rank, text(units, "level")),
        "level_rank": level_rank, "level_reason": text(units, "level_reason"),
    })
    out = pd.concat([out, stats], axis=1)
    out["categories"] = _strings(pc.fill_null(categories.take(pa.array(row, mask=row < 0)), "{}"))
    out["dominant_category"] = _take(dominant, row, None)
    out["dominant_category_name"] = _category_names(out["dominant_category"].to_numpy())
    out["hazards_found"] = _take(found.sum(axis=1), row, 0)
    out["hazards_closed"] = _take(closed.sum(axis=1), row, 0)
    out["five_have_score"] = five
    out["blacklisted"] = blacklisted
    out["accidents_3y"] = accidents

    # the unit as "a park of one", so the same measure rules read the same metric names
    full = (five == 5).to_numpy(dtype=bool, na_value=False)
    metrics = out.assign(
        units=1, red_units=(level_rank == LEVEL_RANK["red"]).astype(np.int64),
        five_have_compliant=full.astype(np.int64),
        five_have_rate=np.where(five.notna().to_numpy(dtype=bool), full.astype(float), np.nan),
        small_micro_units=small.astype(np.int64), small_micro_share=small.astype(np.float64),
        blacklisted_units=blacklisted.fillna(False).to_numpy(dtype=np.int64),
        accidents_3y=accidents.fillna(0).to_numpy(dtype=np.int64),
        risk_index=np.nan, rank=np.nan)
    measures, ids = apply_measures(metrics, out[["name", "dominant_category_name"]], rules,
                                   "unit")
    out["measures"], out["measure_ids"] = _strings(measures), _strings(ids)
    # a unit's "五有" score is a whole number 0–5 (a park's is a mean)
    return _typed(gpd.GeoDataFrame(out[UNIT_COLUMNS], geometry=_points(units), crs=4326),
                  ints=frozenset({"five_have_score"}))


def _level(rank: np.ndarray, level: pd.Series) -> pd.Series:
    """The unit's level column where given, else the level of its rank (0 → <NA>)."""
    return level.fillna(pd.Series(rank).map(LEVEL_BY_RANK).astype("string"))


def _points(units: pd.DataFrame) -> np.ndarray:
    """Each unit's point in EPSG:4326; POINT EMPTY when it has no location (kept, not dropped)."""
    if "geometry" in units.columns:
        crs = units.crs if isinstance(units, gpd.GeoDataFrame) else None
        geo = gpd.GeoSeries(units["geometry"].to_numpy(), crs=crs or 4326)
        if geo.crs.to_epsg() != 4326:
            geo = geo.to_crs(4326)
        values = np.asarray(geo.to_numpy(), dtype=object)
    else:
        lon, lat = number_array(units, "lon", np.nan), number_array(units, "lat", np.nan)
        values = np.asarray(shapely.points(lon, lat), dtype=object)
    values = values.copy()
    missing = shapely.is_missing(values)
    missing[~missing] = np.isnan(shapely.bounds(values[~missing])[:, 0])
    values[missing] = shapely.Point()
    return values


# --------------------------------------------------------------------------- output

_COUNT = {"units", "equipment", "in_use", *LEVEL_COUNT_COLUMNS, "red_units", "open_hazards",
          "open_major_hazards", "late_hazards", "overdue", "elevators", "elevators_insured",
          "five_have_compliant", "small_micro_units", "blacklisted_units", "accidents_3y",
          "rank", "level_rank", "hazards_found", "hazards_closed"}
_FLOAT = {"area_km2", "overdue_rate", "insurance_coverage", "five_have_score", "five_have_rate",
          "small_micro_share", "risk_score", "D_max", "risk_index"}


def _typed(gdf: gpd.GeoDataFrame, ints: frozenset[str] = frozenset()) -> gpd.GeoDataFrame:
    """Plain column dtypes: Int64 counts (and ``ints``), float64 numbers, boolean flags,
    string text/JSON."""
    for col in gdf.columns:
        if col == "geometry":
            continue
        if col in _COUNT or col in ints:
            gdf[col] = pd.to_numeric(gdf[col]).astype("Int64")
        elif col in _FLOAT:
            gdf[col] = pd.to_numeric(gdf[col]).astype("float64")
        elif col == "blacklisted":
            gdf[col] = gdf[col].astype("boolean")
        else:
            gdf[col] = gdf[col].astype("string")
    return gdf
