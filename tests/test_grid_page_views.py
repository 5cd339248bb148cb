"""``/grid``'s own endpoints on the built demo, on both stores: the slim cells and worklist
the page draws (a fraction of the layer API's records), and the regulator's view of an
officer's grid (``/grid?officer=<id>``), tried as hostile signed-in users: an officer of
another city, bad officer ids, a grid officer peeking at a colleague, a park administrator,
a planner."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from geo.boundaries import locate
from geo.cells import cell_centres, from_strings
from tests.conftest import DEMO_PROVINCES
from tests.servers import call

pytestmark = pytest.mark.reads_demo

ENDPOINTS = ("/api/grid/cells", "/api/grid/worklist", "/api/grid/outline")


def get(api: dict, who: str | None, path: str, **params):
    return call(api, who, "GET", path, params=params, follow_redirects=False)


@pytest.fixture(scope="module")
def cities(api) -> dict:
    """Each officer's cities (by their cells' centres), read from the demo's store."""
    from service.store import open_store

    with open_store(api["url"]) as store:
        held = store.read("officer_cells")[["officer_id", "h3"]]
    lat, lon = cell_centres(from_strings(held["h3"]))
    where = locate(lon, lat, DEMO_PROVINCES)["city_adcode"].astype("string")
    held = held.assign(city=where.to_numpy())
    return {str(o): set(g["city"].dropna()) for o, g in held.groupby("officer_id")}


def officer_of(cities: dict, inside: str | None, outside: str | None) -> str:
    """An officer all of whose cells are in city ``inside`` (any when None) and none in
    ``outside``."""
    for officer, held in sorted(cities.items()):
        if held and (inside is None or held == {inside}) and outside not in held:
            return officer
    pytest.skip(f"no officer in {inside} outside {outside}")


def rows(body: dict) -> list[dict]:
    """The page's worklist (columns, some dictionary-encoded) as one dict per item."""
    columns = {name: column if isinstance(column, list) else
               [column["values"][c] for c in column["codes"]]
               for name, column in body["columns"].items()}
    return [{name: column[i] for name, column in columns.items()}
            for i in range(body["count"])]


def key(item: dict) -> tuple:
    return (item["kind"], item["hazard_id"], item["unit_credit_code"],
            item["registration_code"])


# the page's data, slim ---------------------------------------------------------------------

def test_the_cells_carry_only_what_the_map_draws(api):
    r = get(api, "officer", "/api/grid/cells")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    features = r.json()["features"]
    assert {f["properties"]["h3"] for f in features} == api["officer_cells"]
    assert all(set(f["properties"]) == {"h3", "equipment", "max_level"} for f in features)
    assert all(f["geometry"]["type"] == "Polygon" for f in features)
    numbers = re.findall(r"-?\d+\.(\d+)", r.text)
    assert numbers and max(len(n) for n in numbers) <= 6  # coordinates to 6 decimals
    # the same figures as the layer the API serves, a fraction of its bytes
    full = get(api, "officer", "/api/layers/grid-cells", limit=10_000)
    stored = {f["properties"]["h3"]: f["properties"] for f in full.json()["features"]}
    for f in features:
        p = f["properties"]
        assert (p["equipment"], p["max_level"]) == (stored[p["h3"]]["equipment"],
                                                    stored[p["h3"]]["max_level"])
    assert len(r.content) * 2 < len(full.content), (len(r.content), len(full.content))


def test_the_worklist_is_the_officers_own_in_fewer_bytes(api):
    r = get(api, "officer", "/api/grid/worklist")
    assert r.status_code == 200, r.text
    body = r.json()
    items = rows(body)
    full = get(api, "officer", "/api/worklist").json()["items"]
    assert body["count"] == len(items) == len(full) > 0
    assert [key(i) for i in items] == [key(i) for i in full]  # same items, same order
    assert "county_adcode" not in body["columns"] and "kind_zh" not in body["columns"]
    assert any(isinstance(c, dict) for c in body["columns"].values())  # kinds repeat
    places = ("lon", "lat")
    assert [{k: v for k, v in i.items() if k not in places} for i in items] == [
        {k: i[k] for k in body["columns"] if k not in places} for i in full]
    for mine, theirs in zip(items, full, strict=True):
        for k in places:
            assert (mine[k] is None) == (theirs[k] is None)
            assert mine[k] is None or abs(mine[k] - theirs[k]) <= 1e-6
    assert set(body["kinds"].values()) >= {i["kind_zh"] for i in full}
    assert all(i["h3"] in api["officer_cells"] for i in items if i["h3"])
    assert len(r.content) < 0.8 * len(get(api, "officer", "/api/worklist").content)


def test_the_officer_may_name_themselves(api):
    own = get(api, "officer", "/api/grid/worklist", officer=api["officer"].lower())
    assert own.status_code == 200
    assert own.json()["count"] == get(api, "officer", "/api/grid/worklist").json()["count"]
    page = get(api, "officer", "/grid", officer=api["officer"])
    assert page.status_code == 200 and "我的网格" in page.text and "监管查看" not in page.text


# the regulator's view ------------------------------------------------------------------------

def test_a_regulator_sees_the_officers_grid(api):
    officer = api["officer"]
    r = get(api, "province", "/grid", officer=officer)
    assert r.status_code == 200, r.text
    html = r.text
    title = re.search(r"<h1>(.*?)</h1>", html).group(1)
    assert re.fullmatch(r"网格员 \S+ 的网格", title) and "我的网格" not in title
    assert "监管查看" in html and 'id="view-note"' in html
    assert f'data-query="?officer={officer}"' in html
    assert f"{len(api['officer_cells'])} 个" in html
    assert "download-xlsx" not in html  # the Excel link is the caller's own worklist
    assert len(r.content) < 8_000 and '"columns"' not in html  # a shell
    # the same cells and items as the officer's own (the province holds all of them)
    cells = get(api, "province", "/api/grid/cells", officer=officer).json()["features"]
    own = get(api, "officer", "/api/grid/cells").json()["features"]
    assert sorted((f["properties"]["h3"], f["properties"]["equipment"],
                   f["properties"]["max_level"]) for f in cells) == sorted(
        (f["properties"]["h3"], f["properties"]["equipment"], f["properties"]["max_level"])
        for f in own)
    seen = rows(get(api, "province", "/api/grid/worklist", officer=officer).json())
    mine = rows(get(api, "officer", "/api/grid/worklist").json())
    assert seen and [key(i) for i in seen] == [key(i) for i in mine]
    outline = get(api, "province", "/api/grid/outline", officer=officer)
    assert outline.status_code == 200 and 1 <= len(outline.json()["features"]) <= 3


def test_an_administrator_sees_any_officer(api, cities):
    officer = officer_of(cities, None, None)
    assert get(api, "admin", "/grid", officer=officer).status_code == 200
    assert get(api, "admin", "/api/grid/worklist", officer=officer).status_code == 200


def test_a_city_regulator_sees_their_citys_officers_only(api, cities):
    inside = officer_of(cities, api["city"], None)
    r = get(api, "city", "/grid", officer=inside)
    assert r.status_code == 200, r.text
    assert len(get(api, "city", "/api/grid/cells", officer=inside).json()["features"]) == len(
        get(api, "admin", "/api/grid/cells", officer=inside).json()["features"])
    # another city's officer is not found, exactly as an officer who does not exist
    outside = officer_of(cities, None, api["city"])
    for path in ("/grid", *ENDPOINTS):
        other = get(api, "city", path, officer=outside)
        missing = get(api, "city", path, officer="WG999999999")
        assert other.status_code == missing.status_code == 404, path
        assert other.text.replace(outside, "X") == missing.text.replace("WG999999999", "X")
    # lower case names the same officer, still outside
    assert get(api, "city", "/api/grid/worklist", officer=outside.lower()).status_code == 404


@pytest.mark.parametrize("bad", ["../WG1", "WG1;DROP", "<script>", "a" * 65, "WG 1", ""])
def test_a_bad_officer_id_is_refused(api, bad):
    for path in ENDPOINTS:
        r = get(api, "province", path, officer=bad)
        assert r.status_code in (400, 422), (path, r.status_code)
        assert "<script>" not in r.text
    page = get(api, "province", "/grid", officer=bad)
    if bad:
        assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
        assert "网格员编号有误" in page.text and "<script>" not in page.text
    else:  # ?officer= with nothing: no officer named, as for /grid
        assert page.status_code == 403


def test_a_grid_officer_cannot_peek_at_a_colleague(api, cities):
    other = next(o for o in sorted(cities) if o != api["officer"])
    page = get(api, "officer", "/grid", officer=other)
    assert page.status_code == 403 and other not in page.text
    for path in ENDPOINTS:
        r = get(api, "officer", path, officer=other)
        assert r.status_code == 403, path
        assert "features" not in r.text and "columns" not in r.text


@pytest.mark.parametrize("who", ["park", "planner"])
def test_roles_that_view_no_grid_are_refused(api, cities, who):
    officer = api["officer"]
    page = get(api, who, "/grid", officer=officer)
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "此页面仅供网格员使用" in page.text
    for path in ENDPOINTS:
        r = get(api, who, path, officer=officer)
        assert r.status_code == 403, path
        assert "features" not in r.text and "columns" not in r.text


def test_a_regulator_must_name_an_officer(api):
    page = get(api, "county", "/grid")
    assert page.status_code == 403 and "/grid?officer=" in page.text
    for path in ENDPOINTS:
        assert get(api, "county", path).status_code == 400, path


def test_not_signed_in_comes_back_to_the_officers_grid(api):
    r = get(api, None, "/grid", officer="WG410102001")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/grid%3Fofficer%3DWG410102001"
    for path in ENDPOINTS:
        assert get(api, None, path, officer="WG410102001").status_code == 401


def test_an_officer_without_cells_in_the_region_shows_nothing(api, cities):
    """The county regulator opening an officer of their city but another county: not
    found (no cell of theirs has its centre in the county)."""
    county = api["county"]
    held = {o: c for o, c in cities.items() if c == {api["city"]}}
    if not held:
        pytest.skip("no officer of the city")
    from service.store import open_store

    with open_store(api["url"]) as store:
        cells = store.read("officer_cells")[["officer_id", "h3"]]
    lat, lon = cell_centres(from_strings(cells["h3"]))
    counties = locate(lon, lat, DEMO_PROVINCES)["county_adcode"].astype("string").fillna("")
    in_county = pd.Series((counties == county).to_numpy(dtype=bool)).groupby(
        cells["officer_id"].to_numpy()).any()
    elsewhere = [o for o in sorted(held) if not in_county.get(o, False)]
    if not elsewhere:
        pytest.skip("every officer of the city works in the county")
    assert get(api, "county", "/api/grid/cells", officer=elsewhere[0]).status_code == 404
