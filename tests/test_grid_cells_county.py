"""grid-cells ``county_adcode``: the county of the cell (by its centre), for every cell.

Hand-made cases (a cell with no equipment, a cell across a county line, a province-line
cell, a cell in no county) on two square counties, and the seeded demo: every row whose cell
centre lies in a loaded county carries that county, and a county regulator sees exactly
those rows.
"""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.boundaries import locate
from geo.cells import cell_centres, from_strings
from layers.aggregate import cell_counties, grid_cells

pytestmark = pytest.mark.reads_demo  # the demo tests only read the built demo

# Two square counties side by side along the meridian X; the province ends at lat TOP.
LAT, LON = 34.75, 113.65
CELL = h3.latlng_to_cell(LAT, LON, 8)
C_LAT, C_LON = h3.cell_to_latlng(CELL)
X = C_LON + 0.002  # the county line: ~180 m east of CELL's centre, through CELL (~1 km wide)
TOP = C_LAT + 0.05
A, B = "410102", "410103"  # west of X, east of X


def boundaries(top: float = TOP, x: float = X) -> gpd.GeoDataFrame:
    """County A west of ``x``, county B east of it, both south of ``top``; a city row too
    (only county rows place cells)."""
    west, east = shapely.box(x - 0.3, top - 0.3, x, top), shapely.box(x, top - 0.3, x + 0.3, top)
    return gpd.GeoDataFrame({
        "adcode": [B, A, "410100"], "level": ["county", "county", "city"],
        "province_adcode": "410000", "city_adcode": "410100"},
        geometry=[east, west, shapely.union(west, east)], crs=4326)


def officers() -> pd.DataFrame:
    # G1 lists cells (no county registered); G2 is registered to B
    return pd.DataFrame({"officer_id": ["G1", "G2"], "name": ["张三", "李四"],
                         "county_adcode": [pd.NA, B]})


def equipment(points: list[tuple[float, float]]) -> pd.DataFrame:
    """Graded pieces at (lon, lat), only the columns grid_cells reads."""
    n = len(points)
    return pd.DataFrame({
        "registration_code": [f"E{i}" for i in range(n)], "unit_credit_code": "U1",
        "lon": [p[0] for p in points], "lat": [p[1] for p in points],
        "county_adcode": B, "top_category": "3000", "level": "blue", "D": 20.0,
        "in_use": True, "open_hazards": 0, "open_major_hazards": 0, "overdue": False})


def cells_of(*pairs: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"officer_id": [o for o, _ in pairs], "h3": [c for _, c in pairs]})


def by_cell(out: pd.DataFrame, officer: str, cell: str) -> pd.Series:
    hit = (out["officer_id"] == officer) & (out["h3"] == cell)
    assert hit.sum() == 1
    return out[hit.to_numpy()].iloc[0]


def test_a_cell_with_no_equipment_takes_the_county_of_its_centre():
    west = h3.latlng_to_cell(C_LAT, C_LON - 0.1, 8)  # well inside A
    east = h3.latlng_to_cell(C_LAT, C_LON + 0.1, 8)  # well inside B
    out = grid_cells(equipment([]), officers(), cells_of(("G1", west), ("G1", east)),
                     boundaries())
    assert out["equipment"].sum() == 0
    assert by_cell(out, "G1", west)["county_adcode"] == A
    assert by_cell(out, "G1", east)["county_adcode"] == B
    assert out.attrs["rows_outside_counties"] == 0


def test_a_cell_across_a_county_line_belongs_to_the_county_of_its_centre():
    hexagon = shapely.Polygon([(lon, lat) for lat, lon in h3.cell_to_boundary(CELL)])
    line = shapely.LineString([(X, TOP - 0.3), (X, TOP)])
    assert hexagon.crosses(line) and hexagon.centroid.x < X  # across the line, centre in A
    # all its equipment stands on B's side: the cell still counts it, and stays in A
    on_b = [(X + 0.0005, C_LAT), (X + 0.001, C_LAT + 0.001)]
    assert all(hexagon.contains(shapely.Point(p)) for p in on_b)
    out = grid_cells(equipment(on_b), officers(), cells_of(("G1", CELL), ("G2", CELL)),
                     boundaries())
    for officer in ("G1", "G2"):  # the cell's county, whoever holds it (G2 is B's officer)
        got = by_cell(out, officer, CELL)
        assert got["county_adcode"] == A and got["equipment"] == 2
    # the same rule as equipment placement: the centre located like a point
    assert cell_counties(from_strings(pd.Series([CELL])), boundaries()).tolist() == [A]


def test_a_centre_on_the_county_line_goes_to_the_smaller_adcode():
    out = cell_counties(from_strings(pd.Series([CELL])), boundaries(x=C_LON))
    assert out.tolist() == [A]  # A < B, in whichever order the counties come


def test_a_province_line_cell_goes_to_the_county_covering_most_of_it():
    # the province ends just north of CELL's centre: the centre is in no county, but most
    # of the cell's in-province part lies in A (the county line is east of the centre)
    out = grid_cells(equipment([]), officers(), cells_of(("G1", CELL)),
                     boundaries(top=C_LAT - 0.001))
    assert out["county_adcode"].tolist() == [A]
    assert out.attrs["rows_outside_counties"] == 0


def test_a_cell_in_no_county_is_left_empty_and_counted():
    sea = h3.latlng_to_cell(LAT - 5, LON + 10, 8)
    out = grid_cells(equipment([(LON + 10, LAT - 5)]), officers(),
                     cells_of(("G1", sea), ("G2", sea), ("G1", CELL)), boundaries())
    assert pd.isna(by_cell(out, "G1", sea)["county_adcode"])
    assert pd.isna(by_cell(out, "G2", sea)["county_adcode"])
    assert by_cell(out, "G1", sea)["equipment"] == 1
    assert by_cell(out, "G1", CELL)["county_adcode"] == A
    assert out.attrs["rows_outside_counties"] == 2  # rows, one per officer holding it


def test_no_counties_means_no_county_and_no_boundaries_the_officers():
    cells = cells_of(("G1", CELL), ("G2", CELL))
    none = grid_cells(equipment([]), officers(), cells, boundaries().iloc[:0])
    assert none["county_adcode"].isna().all() and none.attrs["rows_outside_counties"] == 2
    cities = grid_cells(equipment([]), officers(), cells, boundaries().iloc[2:])
    assert cities["county_adcode"].isna().all()
    old = grid_cells(equipment([]), officers(), cells)  # without boundaries
    assert old["county_adcode"].isna().tolist() == [True, False]
    assert old["county_adcode"].iloc[1] == B and "rows_outside_counties" not in old.attrs


def test_cell_counties_keeps_order_repeats_and_bad_cells():
    west = h3.latlng_to_cell(C_LAT, C_LON - 0.1, 8)
    east = h3.latlng_to_cell(C_LAT, C_LON + 0.1, 8)
    cells = from_strings(pd.Series([east, west, "nonsense", east]))
    got = cell_counties(cells, boundaries())
    assert [None if pd.isna(v) else v for v in got] == [B, A, None, B]
    assert cell_counties(np.zeros(0, dtype=np.uint64), boundaries()).tolist() == []


# --------------------------------------------------------------------------- the demo

def test_every_demo_row_in_a_county_has_that_county(api):
    from service.store import open_store
    from tests.conftest import DEMO_PROVINCES

    with open_store(api["url"]) as store:
        frame = store.read_layer("grid-cells")
        listed = store.read("officers")
    assert len(frame) > 1000
    lat, lon = cell_centres(from_strings(frame["h3"].astype("string")))
    where = locate(lon, lat, DEMO_PROVINCES)["county_adcode"]
    inside = where.notna().to_numpy()
    got = frame["county_adcode"].astype("string").to_numpy()
    assert inside.sum() > 0.99 * len(frame)
    assert (got[inside] == where.to_numpy()[inside]).all()
    # the few province-line cells (centre outside) go to a loaded county: none is empty
    assert pd.notna(got).all() and set(got[~inside]) <= set(where.dropna())
    # officers registered by a list of cells carry no county; their rows have one now
    no_county = listed.loc[listed["county_adcode"].isna(), "officer_id"]
    theirs = frame["officer_id"].isin(no_county).to_numpy()
    assert theirs.any() and pd.notna(got[theirs]).all()
    # an officer registered to a county holds that county's cells
    registered = listed.dropna(subset=["county_adcode"]).set_index("officer_id")["county_adcode"]
    own = frame["officer_id"].map(registered)
    assert (own.notna().sum() > 0
            and (own[own.notna()] == frame.loc[own.notna(), "county_adcode"]).all())


def test_a_county_regulator_sees_every_cell_of_their_county(api):
    from service.store import open_store

    with open_store(api["url"]) as store:
        frame = store.read_layer("grid-cells")
    county = api["county"]
    want = frame.loc[frame["county_adcode"] == county, ["officer_id", "h3"]]
    assert len(want)
    seen: list[tuple[str, str]] = []
    headers = {"Authorization": f"Bearer {api['tokens']['county']}"}
    page = api["client"].get("/api/layers/grid-cells", params={"limit": 10_000},
                             headers=headers).json()
    while True:
        seen += [(f["properties"]["officer_id"], f["properties"]["h3"])
                 for f in page["features"]]
        assert {f["properties"]["county_adcode"] for f in page["features"]} <= {county}
        nxt = [link["href"] for link in page["links"] if link["rel"] == "next"]
        if not nxt:
            break
        page = api["client"].get(nxt[0], headers=headers).json()
    assert sorted(seen) == sorted(zip(want["officer_id"], want["h3"], strict=True))
