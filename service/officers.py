"""Where grid officers work: what a regulator may name as a checking officer or inspector.

An officer works in a region when the county they are registered to lies in it or one of
their cells has its centre there (officers who own listed cells carry no county).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from geo import boundaries, cells
from service.ingest.write_scope import WriteScope
from service.store.base import Store


def known_officers(store: Store, ids: list[str]) -> pd.DataFrame:
    """The stored officers among ``ids`` (officer_id, county_adcode)."""
    return store.lookup("officers", "officer_id", ids, ["officer_id", "county_adcode"])


def officers_in_region(store: Store, ids: list[str], region: WriteScope,
                       provinces: list[str]) -> set[str]:
    """The officers among ``ids`` who work in ``region``."""
    officers = known_officers(store, ids)
    inside = set(officers.loc[region.contains(officers["county_adcode"]), "officer_id"])
    rest = [i for i in officers["officer_id"] if i not in inside]
    if rest:
        held = store.lookup("officer_cells", "officer_id", rest, ["officer_id", "h3"])
        if len(held):
            lat, lon = cells.cell_centres(cells.from_strings(held["h3"]))
            where = boundaries.locate(lon, lat, provinces)["county_adcode"]
            mine = region.contains(where.to_numpy())
            inside |= set(held["officer_id"].to_numpy()[np.asarray(mine, dtype=bool)])
    return {str(i) for i in inside}


def officer_name(store: Store, officer_id: str) -> str | None:
    """The stored officer's name ('' when they have none), None when there is no such
    officer. Only the name: their phone is not for pages."""
    found = store.lookup("officers", "officer_id", [officer_id], ["officer_id", "name"])
    if found.empty:
        return None
    name = found["name"].iloc[0]
    return "" if pd.isna(name) else str(name)


def cells_in_region(held: tuple[str, ...], region: WriteScope,
                    provinces: list[str]) -> tuple[str, ...]:
    """The cells among ``held`` whose centre lies in ``region`` (as :func:`officers_in_region`
    places an officer by their cells), in their order."""
    if not held:
        return ()
    ids = cells.from_strings(list(held))
    valid = ids != 0  # an unreadable cell is in no region
    lat, lon = cells.cell_centres(ids[valid])
    where = boundaries.locate(lon, lat, provinces)["county_adcode"]
    inside = np.zeros(len(held), dtype=bool)
    inside[valid] = np.asarray(region.contains(where.to_numpy()), dtype=bool)
    return tuple(c for c, keep in zip(held, inside, strict=True) if keep)
