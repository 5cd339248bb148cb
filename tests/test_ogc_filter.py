"""OGC API – Features Part 3 and sorting at /ogc on the seeded demo, both stores: the
queryables, CQL2 text and JSON filters (each operator against pandas on the same rows),
sortby, properties, datetime, the caller's scope never widened by a filter, bad filters as
400 with the property or position named, and OWSLib passing filter and sortby."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import orjson
import owslib.ogcapi
import pandas as pd
import pytest
import shapely
from owslib.ogcapi.features import Features

from layers.registry import LAYERS
from service.app import create_app
from service.settings import Settings
from tests.servers import get, serving

pytestmark = [pytest.mark.slow, pytest.mark.reads_demo]

CGCS2000 = "http://www.opengis.net/def/crs/EPSG/0/4490"
BOX = (113.5, 34.6, 113.9, 34.9)  # lon/lat around Zhengzhou


def items(api, who: str, layer: str, **params) -> dict:
    r = get(api, who, f"/ogc/collections/{layer}/items", **{"limit": 10_000, **params})
    assert r.status_code == 200, (params, r.text)
    body = r.json()
    assert body["numberReturned"] == len(body["features"]) <= body["numberMatched"]
    return body


def ids(body: dict) -> list[str]:
    return [f["id"] for f in body["features"]]


def frame(body: dict) -> pd.DataFrame:
    """The features' properties, indexed by id, with their geometries."""
    rows = [{**f["properties"], "fid": f["id"],
             "geom": shapely.geometry.shape(f["geometry"]) if f["geometry"] else None}
            for f in body["features"]]
    return pd.DataFrame(rows).set_index("fid", drop=False).rename_axis(None)


@pytest.fixture(scope="module")
def equipment(api) -> pd.DataFrame:
    body = items(api, "admin", "equipment")
    assert body["numberMatched"] == len(body["features"])  # the whole layer
    return frame(body)


def bad(api, params: dict, layer: str = "equipment", who: str = "admin") -> str:
    r = get(api, who, f"/ogc/collections/{layer}/items", **params)
    assert r.status_code == 400, (params, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()["detail"]


# queryables --------------------------------------------------------------------------------

def test_queryables_are_a_json_schema_of_the_filterable_fields(api):
    r = get(api, "county", "/ogc/collections/equipment/queryables")
    assert r.status_code == 200 and r.headers["content-type"] == "application/schema+json"
    schema = r.json()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("/ogc/collections/equipment/queryables")
    assert schema["type"] == "object"
    props = schema["properties"]
    assert props["level"]["title"] == "风险等级" and props["level"]["type"] == "string"
    assert props["level"]["enum"] == ["red", "orange", "yellow", "blue"]
    assert props["D"]["type"] == "number" and props["open_hazards"]["type"] == "integer"
    assert props["in_use"]["type"] == "boolean"
    assert props["next_inspection_due"] == {"title": "下次检验日期", "type": "string",
                                            "format": "date"} or \
        props["next_inspection_due"]["format"] == "date"
    assert props["geometry"]["format"] == "geometry-point"
    fields = dict(LAYERS["equipment"].fields)
    assert set(props) - {"geometry"} == {n for n, k in fields.items() if k != "json"}
    units = get(api, "admin", "/ogc/collections/units/queryables").json()["properties"]
    assert "categories" not in units and "measures" not in units  # JSON documents
    assert units["name"]["title"] == "使用单位"
    parks = get(api, "admin", "/ogc/collections/parks/queryables").json()["properties"]
    assert parks["geometry"]["format"] == "geometry-multipolygon"
    # the collection links to them
    links = get(api, "county", "/ogc/collections/equipment").json()["links"]
    assert any(link["rel"] == "http://www.opengis.net/def/rel/ogc/1.0/queryables"
               and link["href"].endswith("/equipment/queryables") for link in links)


@pytest.mark.parametrize("who, layer", [("county", "demonstration"), ("officer", "regions"),
                                        ("admin", "check-schedule"), ("admin", "nope")])
def test_queryables_out_of_scope_are_not_found(api, who, layer):
    r = get(api, who, f"/ogc/collections/{layer}/queryables")
    assert r.status_code == 404 and "properties" not in r.json()
    assert get(api, None, "/ogc/collections/equipment/queryables").status_code == 401


# each operator, CQL2 text and JSON, against pandas -----------------------------------------

def prop(name: str) -> dict:
    return {"property": name}


Case = tuple[str, dict, Callable[[pd.DataFrame], pd.Series]]


def cases(eq: pd.DataFrame) -> list[Case]:
    """(text, JSON, the expected rows) for each operator, on values the demo holds."""
    name = sorted(eq["unit_name"].dropna())[len(eq) // 2]
    head, mid = name[:2], name[1:3]
    park = eq["park_id"].dropna().value_counts().index[0]
    assert eq["park_id"].isna().any()  # rows without a park: the NOT cases tell
    box_json = {"bbox": list(BOX)}
    box_text = "BBOX({},{},{},{})".format(*BOX)
    poly = shapely.box(*BOX).buffer(-0.05)
    lon = eq["geom"].map(lambda g: g.x if g is not None else float("nan"))
    lat = eq["geom"].map(lambda g: g.y if g is not None else float("nan"))

    def d(f: pd.DataFrame) -> pd.Series:
        return f["D"].astype("Float64")

    return [
        ("level = 'red'", {"op": "=", "args": [prop("level"), "red"]},
         lambda f: f["level"] == "red"),
        ("level <> 'red'", {"op": "<>", "args": [prop("level"), "red"]},
         lambda f: f["level"].notna() & (f["level"] != "red")),
        ('"D" < 70', {"op": "<", "args": [prop("D"), 70]}, lambda f: d(f) < 70),
        ("D <= 70", {"op": "<=", "args": [prop("D"), 70]}, lambda f: d(f) <= 70),
        ("D > 160", {"op": ">", "args": [prop("D"), 160]}, lambda f: d(f) > 160),
        ("D >= 160.0", {"op": ">=", "args": [prop("D"), 160.0]}, lambda f: d(f) >= 160),
        ("level = 'red' AND in_use = true",
         {"op": "and", "args": [{"op": "=", "args": [prop("level"), "red"]},
                                {"op": "=", "args": [prop("in_use"), True]}]},
         lambda f: (f["level"] == "red") & (f["in_use"] == True)),  # noqa: E712
        ("level = 'red' OR top_category = '3000'",
         {"op": "or", "args": [{"op": "=", "args": [prop("level"), "red"]},
                               {"op": "=", "args": [prop("top_category"), "3000"]}]},
         lambda f: (f["level"] == "red") | (f["top_category"] == "3000")),
        ("NOT (level = 'red')", {"op": "not", "args": [{"op": "=", "args": [prop("level"),
                                                                           "red"]}]},
         lambda f: f["level"].notna() & (f["level"] != "red")),
        (f"unit_name LIKE '{head}%'", {"op": "like", "args": [prop("unit_name"), f"{head}%"]},
         lambda f: f["unit_name"].fillna("").str.startswith(head)),
        (f"unit_name LIKE '_{mid}%'", {"op": "like", "args": [prop("unit_name"), f"_{mid}%"]},
         lambda f: f["unit_name"].fillna("").str.match(f"^.{re.escape(mid)}")),
        (f"unit_name NOT LIKE '%{mid}%'",
         {"op": "not", "args": [{"op": "like", "args": [prop("unit_name"), f"%{mid}%"]}]},
         lambda f: f["unit_name"].notna() & ~f["unit_name"].fillna("").str.contains(mid)),
        ("level IN ('red', 'orange')",
         {"op": "in", "args": [prop("level"), ["red", "orange"]]},
         lambda f: f["level"].isin(["red", "orange"])),
        ("level NOT IN ('red', 'orange')",
         {"op": "not", "args": [{"op": "in", "args": [prop("level"), ["red", "orange"]]}]},
         lambda f: f["level"].notna() & ~f["level"].isin(["red", "orange"])),
        ("D BETWEEN 70 AND 160", {"op": "between", "args": [prop("D"), 70, 160]},
         lambda f: (d(f) >= 70) & (d(f) <= 160)),
        ("park_id IS NULL", {"op": "isNull", "args": [prop("park_id")]},
         lambda f: f["park_id"].isna()),
        ("park_id IS NOT NULL", {"op": "not", "args": [{"op": "isNull",
                                                        "args": [prop("park_id")]}]},
         lambda f: f["park_id"].notna()),
        ("next_inspection_due < DATE('2026-11-01')",
         {"op": "<", "args": [prop("next_inspection_due"), {"date": "2026-11-01"}]},
         lambda f: f["next_inspection_due"].notna() & (f["next_inspection_due"] < "2026-11-01")),
        (f"S_INTERSECTS(geometry, {box_text})",
         {"op": "s_intersects", "args": [prop("geometry"), box_json]},
         lambda f: (lon >= BOX[0]) & (lon <= BOX[2]) & (lat >= BOX[1]) & (lat <= BOX[3])),
        (f"S_INTERSECTS(geometry, {poly.wkt})",
         {"op": "s_intersects", "args": [prop("geometry"), shapely.geometry.mapping(poly)]},
         lambda f: f["geom"].map(lambda g: g is not None and poly.intersects(g))),
        # NOT of a comparison with a missing value is not true either (three-valued logic)
        (f"NOT (park_id = '{park}')", {"op": "not", "args": [{"op": "=", "args": [
            prop("park_id"), park]}]},
         lambda f: f["park_id"].notna() & (f["park_id"] != park)),
        (f"NOT (park_id <> '{park}' OR D > 160)", {"op": "not", "args": [{"op": "or", "args": [
            {"op": "<>", "args": [prop("park_id"), park]},
            {"op": ">", "args": [prop("D"), 160]}]}]},
         lambda f: (f["park_id"] == park) & (d(f) <= 160)),
        # AND binds tighter than OR
        ("level = 'red' OR top_category = '3000' AND in_use = false",
         {"op": "or", "args": [{"op": "=", "args": [prop("level"), "red"]},
                               {"op": "and", "args": [
                                   {"op": "=", "args": [prop("top_category"), "3000"]},
                                   {"op": "=", "args": [prop("in_use"), False]}]}]},
         lambda f: (f["level"] == "red") | ((f["top_category"] == "3000")
                                            & (f["in_use"] == False))),  # noqa: E712
        ("level = 'red' AND (top_category = '3000' OR NOT in_use = true)",
         {"op": "and", "args": [
             {"op": "=", "args": [prop("level"), "red"]},
             {"op": "or", "args": [{"op": "=", "args": [prop("top_category"), "3000"]},
                                   {"op": "not", "args": [{"op": "=", "args": [
                                       prop("in_use"), True]}]}]}]},
         lambda f: (f["level"] == "red") & ((f["top_category"] == "3000")
                                            | (f["in_use"] == False))),  # noqa: E712
    ]


def test_each_operator_selects_what_pandas_selects_in_text_and_json(api, equipment):
    for text, document, expected in cases(equipment):
        want = sorted(equipment.index[expected(equipment).fillna(False).astype(bool)])
        assert 0 < len(want) < len(equipment), text  # a case that tells something
        got = ids(items(api, "admin", "equipment", filter=text))
        assert got == want, text  # ordered by fid, as without a filter
        as_json = ids(items(api, "admin", "equipment", filter=orjson.dumps(document).decode(),
                            **{"filter-lang": "cql2-json"}))
        assert as_json == got, text
        explicit = items(api, "admin", "equipment", filter=text, limit=1,
                         **{"filter-lang": "cql2-text"})
        assert explicit["numberMatched"] == len(want)


def test_a_point_selects_the_polygons_holding_it_and_filter_crs_swaps_axes(api, equipment):
    located = equipment[equipment["geom"].notna()].iloc[0]
    x, y = located["geom"].x, located["geom"].y
    regions = frame(items(api, "admin", "regions"))
    point = shapely.Point(x, y)
    want = sorted(regions.index[regions["geom"].map(lambda g: g is not None
                                                    and g.intersects(point))])
    assert want  # the province, city and county at least
    got = ids(items(api, "admin", "regions", filter=f"S_INTERSECTS(geometry, POINT({x} {y}))"))
    assert got == want
    swapped = items(api, "admin", "regions", filter=f"S_INTERSECTS(geometry, POINT({y} {x}))",
                    **{"filter-crs": CGCS2000})
    assert ids(swapped) == want
    box = f"BBOX({BOX[1]},{BOX[0]},{BOX[3]},{BOX[2]})"
    in_4490 = items(api, "admin", "equipment", filter=f"S_INTERSECTS(geometry, {box})",
                    **{"filter-crs": CGCS2000})
    plain = items(api, "admin", "equipment", bbox=",".join(map(str, BOX)))
    assert ids(in_4490) == ids(plain) and plain["numberMatched"] > 0


def test_a_filter_combines_with_the_other_parameters_and_pages(api, equipment):
    red = equipment[equipment["level"] == "red"]
    want = sorted(red.index[red["top_category"] == "3000"])
    assert want
    page = items(api, "admin", "equipment", filter="top_category = '3000'", level="red",
                 limit=7)
    assert page["numberMatched"] == len(want) and ids(page) == want[:7]
    nxt = next(link["href"] for link in page["links"] if link["rel"] == "next")
    assert "filter=" in nxt  # the filter travels with the page links
    second = api["client"].get(nxt, headers={
        "Authorization": f"Bearer {api['tokens']['admin']}"}).json()
    assert ids(second) == want[7:14]


# sortby and properties --------------------------------------------------------------------

def test_sortby_orders_by_several_fields_then_fid(api, equipment):
    body = items(api, "admin", "equipment", sortby="-D,+registration_code")
    got = ids(body)
    expected = equipment.assign(Dn=equipment["D"].astype("Float64")).sort_values(
        ["Dn", "registration_code", "fid"], ascending=[False, True, True],
        na_position="last", kind="stable")
    assert got == list(expected.index)
    by_level = ids(items(api, "admin", "equipment", sortby="level_rank"))
    ranks = equipment.loc[by_level, "level_rank"].astype("Float64")
    assert ranks.dropna().is_monotonic_increasing
    # pages of a sorted selection cover it once, in order
    pages = []
    for offset in range(0, 60, 20):
        pages += ids(items(api, "admin", "equipment", sortby="-D", limit=20, offset=offset))
    assert pages == ids(items(api, "admin", "equipment", sortby="-D", limit=60))
    text_sorted = ids(items(api, "admin", "equipment", sortby="unit_name", limit=200))
    names = equipment.loc[text_sorted, "unit_name"].dropna().tolist()
    assert names == sorted(names)  # code-point order in both stores


def test_sortby_on_re_aggregated_risk_cells(api):
    body = items(api, "county", "risk-cells", sortby="-equipment")
    counts = [f["properties"]["equipment"] for f in body["features"]]
    assert counts and counts == sorted(counts, reverse=True)


def test_properties_returns_a_subset_and_fid_and_geometry_always(api):
    body = items(api, "county", "equipment", properties="level,D", limit=5)
    assert body["features"]
    for feature in body["features"]:
        assert set(feature["properties"]) == {"level", "D"}
        assert feature["id"] and feature["geometry"]["type"] == "Point"
    assert "properties" in bad(api, {"properties": ""})
    cells = items(api, "county", "risk-cells", properties="equipment", limit=3)
    assert all(set(f["properties"]) == {"equipment"} for f in cells["features"])
    # filtering or sorting by a field not returned still works
    sorted_only = items(api, "admin", "equipment", properties="level", sortby="-D",
                        filter="D > 100", limit=3)
    assert all(set(f["properties"]) == {"level"} for f in sorted_only["features"])


# datetime ---------------------------------------------------------------------------------

def test_datetime_filters_the_found_date_of_hazards(api):
    hazards = frame(items(api, "admin", "hazards"))
    found = hazards["found_on"]
    days = sorted(found.dropna().unique())
    assert len(days) > 3
    day, early, late = days[len(days) // 2], days[len(days) // 4], days[3 * len(days) // 4]
    checks = {
        day: found == day,
        f"{day}T10:00:00Z": found == day,
        f"{early}/{late}": (found >= early) & (found <= late),
        f"{early}T00:00:00Z/{late}T23:59:59Z": (found >= early) & (found <= late),
        f"{early}/..": found >= early,
        f"../{late}": found <= late,
        f"/{late}": found <= late,
    }
    for value, mask in checks.items():
        want = sorted(hazards.index[mask.fillna(False)])
        assert want, value
        assert ids(items(api, "admin", "hazards", datetime=value)) == want, value
    # with a filter too: both apply
    both = items(api, "admin", "hazards", datetime=f"{early}/..", filter="listed = true")
    want = hazards.index[(found >= early) & (hazards["listed"] == True)]  # noqa: E712
    assert both["numberMatched"] == len(want)


def test_temporal_extent_is_the_callers_dates(api):
    mine = frame(items(api, "county", "hazards"))
    one = get(api, "county", "/ogc/collections/hazards").json()
    temporal = one["extent"]["temporal"]
    assert temporal["interval"] == [[f"{mine['found_on'].min()}T00:00:00Z",
                                     f"{mine['found_on'].max()}T00:00:00Z"]]
    listed = {c["id"]: c for c in get(api, "county", "/ogc/collections").json()["collections"]}
    assert listed["hazards"]["extent"]["temporal"] == temporal
    assert listed["regions"]["extent"]["temporal"] is None


@pytest.mark.parametrize("layer", ["regions", "units", "risk-cells", "parks"])
def test_datetime_on_a_layer_without_time_is_400(api, layer):
    detail = bad(api, {"datetime": "2026-01-01/.."}, layer)
    assert "datetime" in detail and layer in detail


# the scope stays ---------------------------------------------------------------------------

def test_a_filter_never_widens_the_scope(api):
    mine = items(api, "county", "equipment")
    every = frame(items(api, "admin", "equipment"))
    other = next(c for c in every["county_adcode"].dropna().unique() if c != api["county"])
    assert items(api, "county", "equipment", filter=f"county_adcode = '{other}'"
                 )["numberMatched"] == 0
    for text in (f"county_adcode = '{other}' OR 1 = 1", "1 = 1", "level = 'red' OR true = true",
                 f"NOT (county_adcode = '{other}')", "county_adcode IS NOT NULL OR "
                 "county_adcode IS NULL"):
        got = items(api, "county", "equipment", filter=text)
        assert ids(got) == ids(mine), text
    assert items(api, "county", "equipment", filter="1 = 2")["numberMatched"] == 0
    theirs = items(api, "officer", "hazards", filter="level = '重大' OR level <> '重大'")
    assert all(f["properties"]["h3"] in api["officer_cells"] for f in theirs["features"])


def test_a_filter_on_re_aggregated_risk_cells_counts_the_callers_cells(api):
    cells = frame(items(api, "county", "risk-cells"))
    want = sorted(cells.index[cells["equipment"] >= 3])
    assert 0 < len(want) < len(cells)
    page = items(api, "county", "risk-cells", filter="equipment >= 3", limit=5)
    assert page["numberMatched"] == len(want) and ids(page) == want[:5]
    rest = items(api, "county", "risk-cells", filter="equipment >= 3", limit=5, offset=5)
    assert ids(rest) == want[5:10]


# bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("params, named", [
    ({"filter": "nope = 1"}, "nope"),
    ({"filter": "categories = 'x'"}, "categories"),
    ({"filter": "level = 5"}, "level"),
    ({"filter": "\"D\" = 'high'"}, "D"),
    ({"filter": "in_use = 'yes'"}, "in_use"),
    ({"filter": "next_inspection_due > 'soon'"}, "next_inspection_due"),
    ({"filter": "D LIKE '1%'"}, "D"),
    ({"filter": "level = 'red' AND"}, "end"),
    ({"filter": "level = = 'red'"}, "character"),
    ({"filter": "level === 'red'"}, "character"),
    ({"filter": "level = 'red"}, "character"),
    ({"filter": "(level = 'red'"}, "end"),
    ({"filter": ""}, "filter"),
    ({"filter": "level = level"}, "property"),
    ({"filter": "CASEI(level) = 'red'"}, "lower"),
    ({"filter": "S_WITHIN(geometry, POINT(113 34))"}, "S_INTERSECTS"),
    ({"filter": "S_INTERSECTS(geometry, POINT(34 113))"}, "latitude"),  # lat/lon in CRS84
    ({"filter": "S_INTERSECTS(geometry, POLYGON((0 0, 1 1, 1 0, 0 1, 0 0)))"}, "valid"),
    ({"filter": "T_AFTER(next_inspection_due, DATE('2026-01-01'))"}, "filter"),
    ({"filter": "level = 'red'", "filter-lang": "ecql"}, "filter-lang"),
    ({"filter": "{\"op\": \"=\"", "filter-lang": "cql2-json"}, "JSON"),
    ({"filter": "{\"op\": \"=\", \"args\": [{\"property\": \"nope\"}, 1]}",
      "filter-lang": "cql2-json"}, "nope"),
    ({"filter": "[1, 2]", "filter-lang": "cql2-json"}, "filter"),
    ({"filter": "level = 'red'", "filter-crs": "EPSG:4326"}, "filter-crs"),
    ({"filter": "x = 1 OR " * 1500 + "x = 1"}, "filter"),  # too long
    ({"filter": "D = 1 OR " * 800 + "D = 1", "sortby": "nope"}, "nope"),  # long, flat: fine
    ({"filter": "NOT " * 1500 + "level = 'red'"}, "filter"),  # too deep
    ({"sortby": "nope"}, "nope"), ({"sortby": "-D,-D"}, "D"), ({"sortby": "categories"},
                                                               "categories"),
    ({"sortby": ""}, "sortby"),
    ({"properties": "level,nope"}, "nope"),
    ({"datetime": "yesterday"}, "datetime"), ({"datetime": "2026-02-30"}, "datetime"),
    ({"datetime": "2026-12-01/2026-01-01"}, "datetime"), ({"datetime": "../.."}, "datetime"),
])
def test_bad_filters_are_400_naming_what(api, params, named):
    detail = bad(api, params)
    assert named in detail, detail
    assert " / " in detail  # Chinese, then English


@pytest.mark.parametrize("params, status", [
    ({"filter": "level = 'a\x00b'"}, 400),
    ({"filter": "open_hazards > 100000000000000000000000000000"}, 200),
    ({"filter": "open_hazards > " + "9" * 400}, 400),
    ({"filter": "unit_name LIKE 'abc\\'"}, 400),
    ({"filter": "unit_name LIKE 'a\\%%'"}, 200),
    ({"filter": "next_inspection_due > TIMESTAMP('0001-01-01T00:00:00+01:00')"}, 400),
    ({"filter": "next_inspection_due > DATE('0001-01-01')"}, 200),
    ({"filter": "next_inspection_due < TIMESTAMP('9999-12-31T23:59:59Z')"}, 200),
    ({"datetime": "0001-01-01T00:00:00+01:00/.."}, 400),
    ({"filter": "S_INTERSECTS(geometry, POINT EMPTY)"}, 400),
    ({"filter": "S_INTERSECTS(geometry, SRID=3857;POINT(12580000 4120000))"}, 400),
    ({"filter": "S_INTERSECTS(geometry, SRID=4326;POINT(113.6 34.7))"}, 200),
    ({"filter": "S_INTERSECTS(geometry, POINT(1e999 0))"}, 400),
    ({"filter": '{"op": "=", "args": [{"property": 5}, 1]}', "filter-lang": "cql2-json"}, 400),
    ({"filter": '{"op": "and", "args": []}', "filter-lang": "cql2-json"}, 400),
    ({"filter": '{"op": "=", "args": [{"property": "level"}, null]}',
      "filter-lang": "cql2-json"}, 400),
    ({"filter": '{"op": "s_intersects", "args": [{"property": "geometry"}, '
                '{"type": "Polygon", "coordinates": [[1]]}]}', "filter-lang": "cql2-json"}, 400),
    ({"filter": "[" * 2000 + "]" * 2000, "filter-lang": "cql2-json"}, 400),
    ({"filter": "(" * 2000 + "level = 'red'" + ")" * 2000}, 200),
    ({"filter": "in_use < true", "sortby": "in_use,-next_inspection_due"}, 200),
])
def test_odd_filters_are_answered_never_500(api, params, status):
    r = get(api, "admin", "/ogc/collections/equipment/items", limit=3, **params)
    assert r.status_code == status, (params, r.text)


def test_sql_in_values_stays_literal(api):
    whole = items(api, "admin", "equipment", limit=1)["numberMatched"]
    for text in ("unit_name = 'x'' OR ''1''=''1'",
                 "level = 'red''; DROP TABLE layer_equipment; --'",
                 "unit_name LIKE '%'' OR 1=1 --'", "level IN ('red'') OR (''1''=''1')"):
        assert items(api, "admin", "equipment", filter=text)["numberMatched"] == 0, text
    assert items(api, "admin", "equipment", limit=1)["numberMatched"] == whole
    # a quote doubled in a literal is one quote of the value
    name = next(n for n in frame(items(api, "admin", "units", limit=50))["name"] if n)
    quoted = name.replace("'", "''")
    assert items(api, "admin", "units", filter=f"name = '{quoted}'")["numberMatched"] >= 1


# a real client -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def live(api) -> Iterator[str]:
    with serving(create_app(Settings(store=api["url"]))) as (url, _port):
        yield url


@pytest.fixture
def client_headers() -> Iterator[None]:
    saved = dict(owslib.ogcapi.REQUEST_HEADERS)
    yield
    owslib.ogcapi.REQUEST_HEADERS.clear()
    owslib.ogcapi.REQUEST_HEADERS.update(saved)


def test_owslib_passes_filter_and_sortby(api, live, client_headers):
    county = Features(f"{live}/ogc", headers={
        "Authorization": f"Bearer {api['tokens']['county']}"})
    queryables = county.collection_queryables("equipment")
    assert "level" in queryables["properties"]
    page = county.collection_items("equipment", filter="level IN ('red','orange')",
                                   sortby=("D", "desc"), limit=20)
    assert page["features"]
    levels = {f["properties"]["level"] for f in page["features"]}
    assert levels <= {"red", "orange"}
    ds = [f["properties"]["D"] for f in page["features"]]
    assert ds == sorted(ds, reverse=True)
    same = items(api, "county", "equipment", filter="level IN ('red','orange')", sortby="-D",
                 limit=20)
    assert ids(same) == [f["id"] for f in page["features"]]
    assert page["numberMatched"] == same["numberMatched"]


# exports take sortby and properties too ---------------------------------------------------

def test_exports_take_sortby_and_properties(api, equipment):
    r = get(api, "planner", "/api/export/equipment", sortby="-D,registration_code",
            properties="level,D")
    assert r.status_code == 200, r.text
    body = r.json()
    mine = items(api, "planner", "equipment", sortby="-D,registration_code")
    assert [f["id"] for f in body["features"]] == ids(mine)
    assert all(set(f["properties"]) == {"level", "level_name", "D"} for f in body["features"])
    # in the layer's field order, each coded field with its name beside it
    assert [d["name"] for d in body["metadata"]["fields"]][-3:] == ["D", "level", "level_name"]
    csv = get(api, "planner", "/api/export/equipment", format="csv", sortby="-D",
              properties="D")
    header, first = csv.text.lstrip("\ufeff").splitlines()[:2]
    assert header.split(",") == ["fid", "D", "lon", "lat"]
    assert float(first.split(",")[1]) == mine["features"][0]["properties"]["D"]
    for params, named in (({"sortby": "nope"}, "nope"), ({"properties": "level,nope"}, "nope"),
                          ({"sortby": "categories"}, "categories")):
        r = get(api, "planner", "/api/export/units", **params)
        assert r.status_code == 400 and named in r.json()["detail"], params


@pytest.mark.parametrize("wkt", [
    "POINT(113.65 34.76)", "MULTIPOINT((113.65 34.76), (112.45 34.62))",
    "LINESTRING(112.0 34.0, 114.5 35.2)", "MULTILINESTRING((112.0 34.0, 114.5 35.2))",
    "POLYGON((113.5 34.6, 113.9 34.6, 113.9 34.9, 113.5 34.6))",
    "MULTIPOLYGON(((113.5 34.6, 113.9 34.6, 113.9 34.9, 113.5 34.6)))",
    "GEOMETRYCOLLECTION(POINT(112.45 34.62), LINESTRING(113.0 34.0, 113.2 34.1))",
])
def test_s_intersects_takes_every_geometry_type(api, wkt):
    regions = frame(items(api, "admin", "regions"))
    shape = shapely.from_wkt(wkt)
    want = sorted(regions.index[regions["geom"].map(lambda g: g is not None
                                                    and g.intersects(shape))])
    assert want
    assert ids(items(api, "admin", "regions", filter=f"S_INTERSECTS(geometry, {wkt})")) == want
    document = {"op": "s_intersects", "args": [prop("geometry"),
                                               shapely.geometry.mapping(shape)]}
    assert ids(items(api, "admin", "regions", filter=orjson.dumps(document).decode(),
                     **{"filter-lang": "cql2-json"})) == want
