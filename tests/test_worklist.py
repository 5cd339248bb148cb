"""Worklists and the closed hazard loop on the built demo, both stores: scoped items in
priority order, CSV/XLSX, legal transitions only, optimistic locking, the audit trail."""

from __future__ import annotations

import io
import threading
from datetime import date

import pandas as pd
import pytest

from tests.servers import call

pytestmark = pytest.mark.slow
TODAY = "2026-11-01"


def officer_hazard(api, status: str) -> dict:
    hazards = call(api, "officer", "GET", "/api/layers/hazards",
                   params={"limit": 10_000}).json()["features"]
    mine = [h["properties"] for h in hazards if h["properties"]["status"] == status]
    assert mine, f"the demo officer has no hazard {status}"
    return mine[0]


def test_the_officers_worklist_is_theirs_and_in_priority_order(api):
    r = call(api, "officer", "GET", "/api/worklist", params={"today": TODAY})
    assert r.status_code == 200
    items = r.json()["items"]
    assert items, "the demo officer has work"
    assert all(i["h3"] in api["officer_cells"] for i in items)
    priorities = [i["priority"] for i in items]
    assert priorities == sorted(priorities)
    assert {i["kind"] for i in items} <= {"listed_hazard", "late_hazard", "overdue_inspection",
                                          "check_due", "campaign", "random_check"}
    assert all(i["reason"] and i["kind_zh"] for i in items)
    county = call(api, "county", "GET", "/api/worklist", params={"today": TODAY}).json()
    assert all(i["county_adcode"] == api["county"] for i in county["items"])


def test_worklist_downloads_as_csv_and_xlsx(api):
    csv = call(api, "officer", "GET", "/api/worklist",
               params={"format": "csv", "today": TODAY})
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.content.startswith("\ufeff".encode()) and "优先级" in csv.content.decode(
        "utf-8-sig").splitlines()[0]
    xlsx = call(api, "officer", "GET", "/api/worklist",
                params={"format": "xlsx", "today": TODAY})
    table = pd.read_excel(io.BytesIO(xlsx.content), sheet_name="工作清单", engine="calamine")
    body = call(api, "officer", "GET", "/api/worklist", params={"today": TODAY}).json()
    assert len(table) == body["count"] and "事由" in table.columns


def test_who_may_ask_for_a_worklist(api):
    assert call(api, None, "GET", "/api/worklist").status_code == 401
    assert call(api, "planner", "GET", "/api/worklist").status_code == 403
    cell = sorted(api["officer_cells"])[0]
    assert call(api, "officer", "GET", f"/api/cells/{cell}/worklist").status_code == 200
    other = "8840954909fffff" if cell != "8840954909fffff" else "884090950dfffff"
    assert call(api, "officer", "GET", f"/api/cells/{other}/worklist").status_code == 403
    assert call(api, "officer", "GET", "/api/cells/zz/worklist").status_code == 422
    assert call(api, "officer", "GET", "/api/cells/8740954909fffff/worklist"
                ).status_code in (400, 422)


def test_the_hazard_loop_moves_one_step_at_a_time_and_is_audited(api):
    hazard = officer_hazard(api, "已登记")
    path = f"/api/hazards/{hazard['hazard_id']}/transitions"
    step = {"from": "已登记", "to": "整改中", "evidence": "已制定整改方案，更换钢丝绳"}
    r = call(api, "officer", "POST", path, json=step)
    assert r.status_code == 200 and r.json()["status"] == "整改中", r.text
    again = call(api, "officer", "POST", path, json=step)  # stale: it moved on
    assert again.status_code == 409 and "整改中" in again.json()["detail"]
    assert "您提交的 from 为“已登记”" in again.json()["detail"]  # stale, not "someone else"
    back = call(api, "officer", "POST", path, json={"from": "整改中", "to": "已登记",
                                                    "evidence": "撤回"})
    assert back.status_code == 422
    unverified = call(api, "officer", "POST", path, json={
        "from": "整改中", "to": "已销号", "evidence": "已整改"})
    assert unverified.status_code == 422 and "验收人" in unverified.text
    closed = call(api, "officer", "POST", path, json={
        "from": "整改中", "to": "已销号", "evidence": "复查合格", "closed_on": TODAY,
        "verified_by": "王检验"})
    assert closed.status_code == 200 and closed.json()["closed_on"] == TODAY
    audit = call(api, "admin", "GET", "/api/audit",
                 params={"entity_id": hazard["hazard_id"]}).json()
    assert audit["count"] == 3  # the two transitions, and the ingest that registered it
    latest, first, registered = audit["entries"]
    assert registered["action"] == "hazard.ingest" and registered["before"] is None
    assert first["before"]["status"] == "已登记" and first["after"]["status"] == "整改中"
    assert latest["after"]["status"] == "已销号" and "王检验" in latest["note"]
    assert latest["actor"]["name"] == "officer" and latest["actor"]["role_zh"] == "网格员"
    assert latest["at"].endswith("+08:00")
    items = call(api, "officer", "GET", "/api/worklist", params={"today": TODAY}).json()
    assert hazard["hazard_id"] not in {i["hazard_id"] for i in items["items"]}


def test_hazards_outside_the_scope_look_absent_and_some_roles_may_not_close(api):
    hazard = officer_hazard(api, "整改中")
    path = f"/api/hazards/{hazard['hazard_id']}/transitions"
    body = {"from": "整改中", "to": "已销号", "evidence": "x" * 5, "closed_on": TODAY,
            "verified_by": "李"}
    other = "county" if hazard["county_adcode"] != api["county"] else None
    if other:
        assert call(api, other, "POST", path, json=body).status_code == 404
    assert call(api, "park", "POST", path, json=body).status_code == 403
    assert call(api, "planner", "POST", path, json=body).status_code == 403
    assert call(api, "officer", "POST", "/api/hazards/NOPE/transitions",
                json=body).status_code == 404
    assert call(api, "officer", "POST", "/api/hazards/a%20b/transitions",
                json=body).status_code == 422


def test_two_concurrent_closings_cannot_both_win(api):
    hazard = officer_hazard(api, "整改中")
    path = f"/api/hazards/{hazard['hazard_id']}/transitions"
    body = {"from": "整改中", "to": "已销号", "evidence": "复查合格", "closed_on": TODAY,
            "verified_by": "赵"}
    codes: list[int] = []
    barrier = threading.Barrier(2)

    def close() -> None:
        barrier.wait()
        codes.append(call(api, "officer", "POST", path, json=body).status_code)

    threads = [threading.Thread(target=close) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200, 409]


def test_recording_a_check_moves_the_units_next_due_date(api):
    units = call(api, "officer", "GET", "/api/layers/units",
                 params={"limit": 10}).json()["features"]
    unit = units[0]["properties"]["credit_code"]
    r = call(api, "officer", "POST", "/api/checks", json={
        "credit_code": unit, "checked_on": TODAY, "result": "符合"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["next_due"] > TODAY and body["check_id"].startswith("JC2026")
    audit = call(api, "admin", "GET", "/api/audit", params={"entity_id": body["check_id"]})
    assert audit.json()["count"] == 1
    late = date.fromisoformat(TODAY).replace(year=2099).isoformat()
    assert call(api, "officer", "POST", "/api/checks", json={
        "credit_code": unit, "checked_on": late, "result": "符合"}).status_code == 422
    assert call(api, "officer", "POST", "/api/checks", json={
        "credit_code": "123", "checked_on": TODAY, "result": "符合"}).status_code == 422
    outside = call(api, "park", "POST", "/api/checks", json={
        "credit_code": unit, "checked_on": TODAY, "result": "符合"})
    assert outside.status_code in (403, 404)


def test_regulators_read_the_audit_trail_of_their_region_only(api):
    everything = call(api, "admin", "GET", "/api/audit").json()["count"]
    assert everything >= 1
    mine = call(api, "county", "GET", "/api/audit").json()
    assert all(e["county_adcode"] == api["county"] for e in mine["entries"])
    assert call(api, "officer", "GET", "/api/audit").status_code == 403


# speed without a change of behaviour: keyed lookups, long ``in`` lists, remembered lists --------

@pytest.fixture(scope="module")
def store(api):
    from service.store import open_store

    opened = open_store(api["url"])
    yield opened
    opened.close()


def _by_key(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    return frame.sort_values(key, kind="stable").reset_index(drop=True)


@pytest.mark.parametrize(("table", "column", "columns"), [
    ("hazards", "hazard_id", ["hazard_id", "status", "deadline"]),
    ("checks", "credit_code", None),
    ("officer_cells", "officer_id", ["h3"]),
    ("units", "credit_code", ["credit_code", "name", "geometry"]),
])
def test_lookup_gives_the_rows_read_would_give(store, table, column, columns):
    whole = store.read(table)
    key = store.spec(table).key
    present = whole[column].dropna().astype(str).unique().tolist()
    for values in (present[:3], [*present[:100], "NOPE"], []):  # short, long (> 64), none
        got = store.lookup(table, column, tuple(values), columns)
        mask = whole[column].isin(values).fillna(False).to_numpy(dtype=bool)
        want = store.read(table, columns).loc[mask].reset_index(drop=True)
        assert list(got.columns) == list(want.columns)
        assert got.dtypes.astype(str).to_dict() == want.dtypes.astype(str).to_dict()
        sort = key if key in got.columns else got.columns[0]
        pd.testing.assert_frame_equal(_by_key(got, sort), _by_key(want, sort),
                                      check_like=False)
    with pytest.raises(ValueError):
        store.lookup(table, "no_such_column", ("x",))


def test_long_in_lists_select_what_short_ones_do(store, api):
    from service.store.query import Condition, LayerQuery, query_frame

    units = store.read_layer("units")
    cells = (*sorted(units["h3"].dropna().unique())[:150], "8840954909fffff")
    counts = tuple(int(n) for n in range(0, 200))  # an int column through the same path
    for where in ((Condition("h3", "in", cells),), (Condition("equipment", "in", counts),),
                  (Condition("h3", "in", cells), Condition("level", "in", ("red", "orange")))):
        got, matched = store.query_layer(LayerQuery("units", where, None, None, 0))
        want, wanted = query_frame(units, LayerQuery("units", where, None, None, 0))
        assert matched == wanted == len(got) and len(got)
        assert got["fid"].tolist() == want["fid"].tolist()
        page, total = store.query_layer(LayerQuery("units", where, None, 5, 2))
        assert total == wanted and page["fid"].tolist() == want["fid"].tolist()[2:7]


def test_officer_cells_are_the_officers_own(store, api):
    from service.caches import OfficerCells

    officer_cells = OfficerCells()
    mine = officer_cells.of(store, api["officer"])
    assert set(mine) == api["officer_cells"] and list(mine) == sorted(mine)
    assert officer_cells.of(store, api["officer"]) is mine  # kept for this data version
    assert officer_cells.of(store, "WG000000000") == ()


def test_a_cells_worklist_holds_that_cell_only(api):
    body = call(api, "officer", "GET", "/api/worklist", params={"today": TODAY}).json()
    cell = body["items"][0]["h3"]
    one = call(api, "officer", "GET", f"/api/cells/{cell}/worklist",
               params={"today": TODAY}).json()
    assert one["count"] and {i["h3"] for i in one["items"]} == {cell}
    assert one["items"] == [i for i in body["items"] if i["h3"] == cell]


def test_a_remembered_worklist_follows_a_new_check(api):
    def due_units() -> dict[str, dict]:
        body = call(api, "officer", "GET", "/api/worklist", params={"today": TODAY}).json()
        return {i["unit_credit_code"]: i for i in body["items"] if i["kind"] == "check_due"}

    before = due_units()
    assert due_units() == before  # asked again: the same list
    unit = next((c for c, i in before.items() if not i["reason"].startswith("每 1 ")), None)
    assert unit, "the demo officer has a unit due for a check at most every 2+ months"
    r = call(api, "officer", "POST", "/api/checks", json={
        "credit_code": unit, "checked_on": TODAY, "result": "符合"})
    assert r.status_code == 201, r.text
    after = due_units()
    assert unit not in after and set(after) == set(before) - {unit}


def test_units_drawn_at_random_stay_on_the_worklist_until_checked(api):
    # drawn by the administrator: the demo's officer works in another city, and a
    # regulator may only name inspectors who work in their own region
    r = call(api, "admin", "POST", "/api/random-draws", json={
        "region": api["county"], "size": 8, "seed": 11, "inspectors": [api["officer"]]})
    assert r.status_code == 201, r.text
    draw = r.json()
    drawn = {u["credit_code"] for u in draw["units"]}
    assert drawn

    def random_checks(who: str) -> dict:
        items = call(api, who, "GET", "/api/worklist", params={"today": TODAY}).json()["items"]
        return {i["unit_credit_code"]: i for i in items if i["kind"] == "random_check"}

    county = random_checks("county")  # the county's units, none checked since the draw
    assert set(county) == drawn
    assert all(draw["draw_id"] in i["reason"] and i["kind_zh"] == "双随机抽查"
               and i["priority"] == 4 and i["county_adcode"] == api["county"]
               for i in county.values())
    assert set(random_checks("officer")) >= drawn  # the inspector the draw assigned
    assert not set(random_checks("park")) - drawn  # others' draws stay out of a park's list
    done = sorted(drawn)[0]
    r = call(api, "county", "POST", "/api/checks", json={
        "credit_code": done, "checked_on": date.today().isoformat(), "result": "符合"})
    assert r.status_code == 201, r.text
    assert set(random_checks("county")) == drawn - {done}


@pytest.mark.parametrize("params", [{"today": "9999-12-31"}, {"today": "0001-01-01"},
                                    {"today": "2026-13-01"}])
def test_a_worklist_day_outside_the_registers_era_is_a_4xx(api, params):
    r = call(api, "officer", "GET", "/api/worklist", params=params)
    assert r.status_code in (400, 422), r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    cell = sorted(api["officer_cells"])[0]
    assert call(api, "officer", "GET", f"/api/cells/{cell}/worklist",
                params=params).status_code in (400, 422)


def test_a_check_dated_before_2000_is_refused(api):
    units = call(api, "officer", "GET", "/api/layers/units", params={"limit": 1}).json()
    unit = units["features"][0]["properties"]["credit_code"]
    r = call(api, "officer", "POST", "/api/checks", json={
        "credit_code": unit, "checked_on": "0001-01-01", "result": "符合"})
    assert r.status_code == 422 and "2000-01-01" in r.text

