"""Region codes as people write them (6 digits or the prefix form, the same region), and a
code that names no loaded region refused with its name, never an empty result: the
resolver, user scopes, and the API's ``adcode`` filters on both stores."""

from __future__ import annotations

import pytest

from geo.regions import UnknownRegion, resolve_region
from service.auth import Role, check_scope
from tests.servers import get

PROVINCES = ["410000", "610000"]


@pytest.mark.parametrize(("code", "adcode", "level"), [
    ("41", "410000", "province"), ("410000", "410000", "province"),
    ("4101", "410100", "city"), ("410100", "410100", "city"),
    ("410105", "410105", "county"), (" 410105 ", "410105", "county"),
    ("419001", "419001", "city"), ("4190", "419001", "city"),  # 济源: a city with no counties
    ("6101", "610100", "city"),
])
def test_the_six_digit_code_and_its_prefix_name_the_same_region(code, adcode, level):
    region = resolve_region(code, PROVINCES)
    assert (region.adcode, region.level) == (adcode, level)


@pytest.mark.parametrize("code", ["4199", "110000", "410199", "41010", "4", "41x1", ""])
def test_a_code_of_no_loaded_region_is_an_error_naming_it(code):
    with pytest.raises(UnknownRegion) as caught:
        resolve_region(code, PROVINCES)
    assert repr(code.strip()) in str(caught.value) or code in str(caught.value)
    assert "行政区划代码" in str(caught.value)


def test_a_province_not_loaded_is_unknown():
    with pytest.raises(UnknownRegion, match="610000"):
        resolve_region("610000", ["410000"])
    with pytest.raises(UnknownRegion) as caught:
        resolve_region("61", ["410000"])
    assert "陕西" not in str(caught.value) and "河南省 410000" in str(caught.value)


def test_a_user_scope_takes_either_form_and_is_stored_as_six_digits():
    assert check_scope(Role.REGULATOR, "4101", PROVINCES) == "410100"
    assert check_scope(Role.PLANNER, "410100", PROVINCES) == "410100"
    assert check_scope(Role.REGULATOR, "41", PROVINCES) == "410000"
    with pytest.raises(ValueError, match="4199"):
        check_scope(Role.REGULATOR, "4199", PROVINCES)


# the API, on the seeded demo, both stores ---------------------------------------------------

def _features(api, who: str, layer: str, **params) -> list[dict]:
    r = get(api, who, f"/api/layers/{layer}", limit=10_000, **params)
    assert r.status_code == 200, r.text
    return r.json()["features"]


@pytest.mark.slow
@pytest.mark.reads_demo
def test_a_city_filter_gives_the_same_rows_in_either_form(api):
    city = api["city"]
    six = _features(api, "admin", "equipment", adcode=city)
    four = _features(api, "admin", "equipment", adcode=city[:4])
    assert six and [f["id"] for f in six] == [f["id"] for f in four]
    assert all(f["properties"]["city_adcode"] == city for f in six)
    province = _features(api, "admin", "equipment", adcode=city[:2] + "0000")
    assert len(province) == len(_features(api, "admin", "equipment", adcode=city[:2])) > len(six)


@pytest.mark.slow
@pytest.mark.reads_demo
def test_region_layers_filter_by_the_region_and_what_lies_inside_it(api):
    city = api["city"]
    rows = [f["properties"] for f in _features(api, "admin", "regions", adcode=city)]
    assert {r["adcode"] for r in rows if r["admin_level"] == "city"} == {city}
    assert rows and all(r["city_adcode"] == city for r in rows)
    county = [f["properties"] for f in _features(api, "admin", "regions", adcode=api["county"])]
    assert [(r["adcode"], r["admin_level"]) for r in county] == [(api["county"], "county")]


@pytest.mark.slow
@pytest.mark.reads_demo
@pytest.mark.parametrize("code", ["4199", "110000", "410199"])
def test_an_unknown_region_is_a_400_naming_it(api, code):
    r = get(api, "admin", "/api/layers/equipment", adcode=code)
    assert r.status_code == 400, r.text
    assert code in r.json()["detail"] and "行政区划代码" in r.json()["detail"]
    r = get(api, "admin", f"/api/regions/{code}/summary")
    assert r.status_code == 400 and code in r.json()["detail"]


@pytest.mark.slow
@pytest.mark.reads_demo
def test_a_layer_coarser_than_the_region_is_a_400_not_an_empty_page(api):
    r = get(api, "admin", "/api/layers/demonstration", adcode=api["county"])
    assert r.status_code == 400, r.text
    assert "demonstration" in r.json()["detail"]


@pytest.mark.slow
@pytest.mark.reads_demo
def test_region_summary_and_demonstration_take_the_prefix_form(api):
    city = api["city"]
    six = get(api, "admin", f"/api/regions/{city}/summary")
    four = get(api, "admin", f"/api/regions/{city[:4]}/summary")
    assert six.status_code == four.status_code == 200
    assert six.json() == four.json()
    demo = get(api, "admin", "/api/demonstration", city=city[:4])
    assert demo.status_code == 200
    assert demo.json() == get(api, "admin", "/api/demonstration", city=city).json()
    r = get(api, "admin", "/api/demonstration", city=api["county"])
    assert r.status_code == 400 and "不是地市" in r.json()["detail"]
