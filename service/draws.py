"""双随机、一公开 (Henan plan 三（二）): units drawn at random for supervision checks and
inspectors assigned at random, reproducibly, then published.

Method (stated in every published draw):
- candidates: the in-scope units of the region holding in-use equipment, ordered by
  credit code (so the same data gives the same order);
- strata: county × the unit's dominant equipment category; each stratum gets its share of
  the sample (largest-remainder rounding, at least one unit from every stratum when the
  sample is at least as large as the number of strata);
- within a stratum, weighted sampling without replacement by risk level (Efraimidis–Spirakis
  keys u^(1/w) from NumPy's PCG64 seeded with the published seed);
- inspectors: the pool shuffled with the same generator, assigned round-robin, skipping an
  inspector for a unit inside their own grid cells whenever another one is free of that
  conflict.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.plans import cite

LEVEL_WEIGHTS = {"red": 4.0, "orange": 3.0, "yellow": 2.0, "blue": 1.0}
METHOD = ("按区县×主要设备种类分层、按风险等级加权（重大4、较大3、一般2、低1）不放回抽取；"
          "检查人员随机轮派，回避本人负责的网格；随机数为 NumPy PCG64，种子公开，可复现。"
          f"依据：{cite('henan', '三（二）', '双随机、一公开', short=True)}")


def allocate(sizes: np.ndarray, total: int) -> np.ndarray:
    """How many to draw from each stratum: proportional quotas rounded by largest
    remainder, at least one from each stratum when the total allows, never more than a
    stratum holds."""
    sizes = np.asarray(sizes, dtype=np.int64)
    total = int(min(total, sizes.sum()))
    if total <= 0 or not len(sizes):
        return np.zeros(len(sizes), dtype=np.int64)
    quota = sizes / sizes.sum() * total
    least = 1 if total >= len(sizes) else 0
    take = np.minimum(np.maximum(np.floor(quota).astype(np.int64), least), sizes)
    while take.sum() > total:  # the minimum of one pushed it over: trim the most over-served
        over = np.where(take > least, take - quota, -np.inf)
        take[int(np.argmax(over))] -= 1
    while take.sum() < total:  # hand out the rest by largest remainder
        short = np.where(take < sizes, quota - take, -np.inf)
        take[int(np.argmax(short))] += 1
    return take


def draw_units(units: pd.DataFrame, size: int, rng: np.random.Generator) -> pd.DataFrame:
    """``size`` units from ``units`` (credit_code, county_adcode, dominant_category, level)."""
    pool = units.sort_values("credit_code", kind="stable").reset_index(drop=True)
    if pool.empty or size <= 0:
        return pool.iloc[0:0].assign(stratum=pd.Series(dtype="string"))
    stratum = (pool["county_adcode"].astype("string").fillna("未知") + "/"
               + pool["dominant_category"].astype("string").fillna("其他"))
    codes, uniques = pd.factorize(stratum, sort=True)
    sizes = np.bincount(codes, minlength=len(uniques))
    take = allocate(sizes, size)
    weights = pool["level"].map(LEVEL_WEIGHTS).fillna(1.0).to_numpy(dtype=float)
    keys = np.log(rng.random(len(pool))) / weights  # log of u^(1/w): larger wins
    order = np.lexsort((-keys, codes))  # by stratum, best key first
    rank = np.empty(len(pool), dtype=np.int64)
    ranked_codes = codes[order]
    first = np.r_[0, np.flatnonzero(np.diff(ranked_codes)) + 1]
    starts = np.repeat(first, np.diff(np.r_[first, len(order)]))
    rank[order] = np.arange(len(order)) - starts
    chosen = rank < take[codes]
    out = pool.loc[chosen].copy()
    out["stratum"] = stratum[chosen].to_numpy()
    return out.reset_index(drop=True)


def assign_inspectors(drawn: pd.DataFrame, inspectors: list[str],
                      own_cells: dict[str, set[str]], rng: np.random.Generator) -> list[str | None]:
    """An inspector per drawn unit: shuffled pool, round-robin, avoiding their own cells."""
    if not inspectors:
        return [None] * len(drawn)
    pool = list(rng.permutation(np.asarray(sorted(set(inspectors)), dtype=object)))
    out: list[str | None] = []
    turn = 0
    for cell in drawn["h3"].astype("string").fillna("").tolist():
        free = [i for i in range(len(pool)) if cell not in own_cells.get(pool[i], set())]
        candidates = free or list(range(len(pool)))  # nobody free: the conflict is recorded
        pick = min(candidates, key=lambda i: (i - turn) % len(pool))
        out.append(pool[pick])
        turn = (pick + 1) % len(pool)
    return out
