"""The hazard loop keeps its history (issue 10 §8) and who did it is who is signed in (§6):
no ingest moves a hazard backwards or overwrites what was set through the service; an
ingest's transitions follow the API's; dates agree with each other and with today; a
regulator may reopen a closed hazard; a check posted twice is one record; every change is
audited with its batch or its caller."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import Role, create_user
from service.build import run_build
from service.ingest.pipeline import IngestOptions, ingest
from service.settings import Settings
from service.store import open_store
from tests import ingest_files as f
from tests.servers import call
from tests.test_write_scope import (
    HENAN_PIECE,
    PROVINCES,
    SHAANXI_PIECE,
    XIAN_CELL,
    ZHENGZHOU_CELL,
    hazards_csv,
    officers_csv,
)

PEPPER = Settings().token_pepper.get_secret_value()
OPEN = ["YH-HN", HENAN_PIECE, "2025-05-01", "重大", "制动器磨损", "整改中", "2025-08-01", "", "",
        ""]
REGISTERED = ["YH-NEW", HENAN_PIECE, "2025-06-01", "一般", "门锁回路", "已登记", "2025-07-01",
              "", "", ""]
CHECK_HEADERS = ["检查编号", "统一社会信用代码", "检查日期", "检查人员编号", "检查结果"]


def _fill(store, tmp) -> dict:
    """Equipment and units of both provinces, three hazards, three officers; built; a user
    of each role (the tokens, by key)."""
    ingest([str(f.write_equipment_csv(tmp / "eq.csv")),
            str(f.write_units_csv(tmp / "units.csv")),
            hazards_csv(tmp / "hz.csv", [OPEN, REGISTERED, [
                "YH-SX", SHAANXI_PIECE, "2025-05-01", "重大", "钢丝绳断股", "已销号",
                "2025-08-01", "2025-06-01", "王验收", "已更换"]]),
            officers_csv(tmp / "officers.csv", [
                ["WG-HN", "河南网格员", ZHENGZHOU_CELL, "", ""],
                ["WG-HN2", "河南网格员二", ZHENGZHOU_CELL, "", ""],
                ["WG-SX", "陕西网格员", XIAN_CELL, "", ""]])],
           store, IngestOptions(provinces=PROVINCES))
    run_build(store, PROVINCES, as_of=date(2026, 11, 1))
    tokens = {}
    for key, role, scope in (("admin", Role.ADMIN, None), ("henan", Role.REGULATOR, "410000"),
                             ("shaanxi", Role.REGULATOR, "610000"),
                             ("officer", Role.GRID_OFFICER, "WG-HN")):
        _user, tokens[key] = create_user(store, name=f"{key}用户", role=role, scope=scope,
                                         pepper=PEPPER, provinces=PROVINCES)
    return tokens


@pytest.fixture()
def served(filled_store):
    """The service on this test's copy of the store ``_fill`` filled (its files in ``tmp``)."""
    filled = filled_store(_fill)
    with TestClient(create_app(Settings(store=filled.url))) as client:
        yield {"client": client, "tokens": filled.facts, "url": filled.url, "tmp": filled.files}


def close(served, who: str, hazard: str = "YH-HN", **body):
    return call(served, who, "POST", f"/api/hazards/{hazard}/transitions", json={
        "from": "整改中", "to": "已销号", "evidence": "已更换制动器，复检合格",
        "closed_on": "2025-07-01", "verified_by": "李验收", **body})


def reingest(served, *paths, **options) -> dict:
    with open_store(served["url"]) as store:
        return ingest([str(p) for p in paths], store, IngestOptions(provinces=PROVINCES,
                                                                    **options))


def table(served, name: str) -> pd.DataFrame:
    with open_store(served["url"]) as store:
        return store.read(name)


def codes(report: dict) -> dict[tuple[int, str], str]:
    return {(r["row"], r["field"]): r["code"] for r in report["rejects"]}


def test_reingesting_an_export_does_not_reopen_a_hazard_closed_through_the_api(served):
    assert close(served, "henan").status_code == 200
    report = reingest(served, served["tmp"] / "hz.csv")
    assert codes(report) == {(2, "status"): "conflict"}
    reason = report["rejects"][0]["reason"]
    assert "已销号" in reason and "henan用户" in reason and "经接口" in reason
    hazard = table(served, "hazards").set_index("hazard_id").loc["YH-HN"]
    assert hazard["status"] == "已销号" and str(hazard["closed_on"])[:10] == "2025-07-01"
    assert hazard["verified_by"] == "李验收" and hazard["evidence"] == "已更换制动器，复检合格"
    audit = table(served, "audit")
    last = audit[audit["entity_id"] == "YH-HN"].sort_values("at").iloc[-1]
    assert last["action"] == "hazard.transition" and last["after"].count("已销号") == 1


def test_an_ingest_follows_the_transitions_of_the_api(served):
    tmp = served["tmp"]
    jump = [*REGISTERED[:5], "已销号", REGISTERED[6], "2025-06-20", "李验收", "已修复"]
    no_verifier = [*OPEN[:5], "已销号", OPEN[6], "2025-07-01", "", "已修复"]
    report = reingest(served, hazards_csv(tmp / "a.csv", [jump, no_verifier]))
    assert codes(report) == {(2, "status"): "bad_transition",
                             (3, "verified_by"): "bad_transition"}
    closed = [*OPEN[:5], "已销号", OPEN[6], "2025-07-01", "李验收", "已更换制动器"]
    report = reingest(served, hazards_csv(tmp / "b.csv", [closed]), actor="cli:clerk")
    assert not report["rejects"] and report["updated"] == 1
    audit = table(served, "audit")
    entry = audit[(audit["entity_id"] == "YH-HN")
                  & (audit["action"] == "hazard.transition")].iloc[-1]
    assert entry["actor"] == "cli:clerk" and report["batch_id"] in entry["note"]
    assert "李验收" in entry["note"] and '"整改中"' in entry["before"]


def test_an_ingest_never_moves_a_hazard_backwards(served):
    report = reingest(served, hazards_csv(served["tmp"] / "back.csv", [
        ["YH-SX", SHAANXI_PIECE, "2025-05-01", "重大", "钢丝绳断股", "整改中", "2025-08-01", "",
         "", ""]]))
    assert codes(report) == {(2, "status"): "conflict"}
    assert table(served, "hazards").set_index("hazard_id").loc["YH-SX", "status"] == "已销号"


def test_lifecycle_fields_a_file_leaves_empty_keep_their_stored_values(served):
    """The registry export knows a hazard is closed but not who verified it."""
    report = reingest(served, hazards_csv(served["tmp"] / "same.csv", [
        ["YH-SX", SHAANXI_PIECE, "2025-05-01", "重大", "钢丝绳断股（补充）", "已销号",
         "2025-08-01", "", "", ""]]))
    assert not report["rejects"] and report["updated"] == 1
    hazard = table(served, "hazards").set_index("hazard_id").loc["YH-SX"]
    assert hazard["verified_by"] == "王验收" and str(hazard["closed_on"])[:10] == "2025-06-01"


def test_dates_agree_with_each_other_and_with_today(served):
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    tmp = served["tmp"]
    checks = tmp / "checks.csv"
    pd.DataFrame([["JC-F", f.UNIT_A, tomorrow, "WG-HN", "符合"]],
                 columns=CHECK_HEADERS).to_csv(checks, index=False)
    report = reingest(served, checks, hazards_csv(tmp / "dates.csv", [
        ["YH-D1", HENAN_PIECE, "2025-05-01", "一般", "a", "已销号", "2025-06-01", "2025-04-01",
         "李", "b"],
        ["YH-D2", HENAN_PIECE, "2025-05-01", "一般", "a", "已登记", "2025-04-01", "", "", ""],
        ["YH-D3", HENAN_PIECE, tomorrow, "一般", "a", "已登记", "", "", "", ""]]))
    assert {(r["file"].rsplit("/", 1)[-1], r["row"], r["field"]): r["code"]
            for r in report["rejects"]} == {
        ("dates.csv", 2, "closed_on"): "bad_date_order",
        ("dates.csv", 3, "deadline"): "bad_date_order",
        ("dates.csv", 4, "found_on"): "future_date",
        ("checks.csv", 2, "checked_on"): "future_date"}


def test_a_closing_date_before_the_hazard_was_found_is_422_naming_the_field(served):
    r = close(served, "henan", closed_on="2025-04-01")
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "closed_on"]
    assert "发现日期" in r.json()["errors"][0]["msg"]


def test_a_regulator_reopens_a_closed_hazard_with_a_reason_and_nobody_else_can(served):
    assert close(served, "henan").status_code == 200
    reopen = {"from": "已销号", "to": "整改中", "evidence": "复查发现制动器仍有异响"}
    path = "/api/hazards/YH-HN/transitions"
    assert call(served, "officer", "POST", path, json=reopen).status_code == 403
    assert call(served, "admin", "POST", path, json=reopen).status_code == 403
    assert call(served, "shaanxi", "POST", path, json=reopen).status_code == 404
    r = call(served, "henan", "POST", path, json=reopen)
    assert r.status_code == 200 and r.json()["status"] == "整改中"
    hazard = table(served, "hazards").set_index("hazard_id").loc["YH-HN"]
    assert hazard["status"] == "整改中" and pd.isna(hazard["closed_on"])
    audit = table(served, "audit")
    entry = audit[audit["action"] == "hazard.reopen"].iloc[-1]
    assert entry["entity_id"] == "YH-HN" and "异响" in entry["note"]


def test_missing_and_out_of_scope_hazards_answer_the_same_404(served):
    outside = close(served, "shaanxi", hazard="YH-HN")
    missing = close(served, "shaanxi", hazard="YH-NOPE")
    assert outside.status_code == missing.status_code == 404
    assert outside.json()["detail"].replace("YH-HN", "YH-NOPE") == missing.json()["detail"]
    assert missing.json()["detail"].startswith("隐患 YH-NOPE 不存在（或不在您的管辖范围内）")
    assert "hazard YH-NOPE not found" in missing.json()["detail"]


def test_the_same_check_posted_twice_is_one_record(served):
    body = {"credit_code": f.UNIT_A, "checked_on": "2026-10-09", "result": "符合"}
    first = call(served, "officer", "POST", "/api/checks", json=body)
    again = call(served, "officer", "POST", "/api/checks", json=body)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["check_id"] == again.json()["check_id"]
    assert again.json()["duplicate"] is True
    checks = table(served, "checks")
    assert (checks["credit_code"] == f.UNIT_A).sum() == 1


def test_the_checking_officer_is_the_caller(served):
    body = {"credit_code": f.UNIT_A, "checked_on": "2026-10-09", "result": "符合"}
    assert call(served, "officer", "POST", "/api/checks",
                json={**body, "officer_id": "WG-HN2"}).status_code == 403
    r = call(served, "officer", "POST", "/api/checks", json=body)
    assert r.json()["officer_id"] == "WG-HN"
    for officer, status in (("WG-NOBODY", 422), ("WG-SX", 422), ("WG-HN2", 201)):
        r = call(served, "henan", "POST", "/api/checks", json={
            **body, "result": f"由{officer}检查", "officer_id": officer})
        assert r.status_code == status, (officer, r.text)
    assert r.json()["officer_id"] == "WG-HN2"


def test_ingest_changes_to_hazards_and_checks_are_audited_once(served):
    checks = served["tmp"] / "checks.csv"
    pd.DataFrame([["JC-1", f.UNIT_A, "2025-09-01", "WG-HN", "符合"]],
                 columns=CHECK_HEADERS).to_csv(checks, index=False)
    first = reingest(served, checks)
    audit = table(served, "audit")
    entry = audit[audit["entity_id"] == "JC-1"]
    assert list(entry["action"]) == ["check.ingest"] and first["batch_id"] in entry[
        "note"].iloc[0]
    assert entry["county_adcode"].iloc[0] == "410105"
    again = reingest(served, checks)
    after = table(served, "audit")
    assert again["unchanged"] == 1 and len(after) == len(audit) + 1  # the batch, no row
    assert list(after.loc[after["entity_id"] == again["batch_id"], "action"]) == [
        "ingest.batch"]


def test_a_check_recorded_through_the_api_is_not_overwritten_by_an_ingest(served):
    body = {"credit_code": f.UNIT_A, "checked_on": "2026-10-09", "result": "符合"}
    check_id = call(served, "officer", "POST", "/api/checks", json=body).json()["check_id"]
    checks = served["tmp"] / "checks.csv"
    pd.DataFrame([[check_id, f.UNIT_A, "2026-10-09", "WG-HN", "责令整改"]],
                 columns=CHECK_HEADERS).to_csv(checks, index=False)
    report = reingest(served, checks)
    assert codes(report) == {(2, "check_id"): "conflict"}
    assert table(served, "checks").set_index("check_id").loc[check_id, "result"] == "符合"


def test_draw_inspectors_are_known_and_work_in_the_drawers_region(served):
    def draw(who: str, inspectors: list[str]):
        return call(served, who, "POST", "/api/random-draws", json={
            "region": "410000", "size": 2, "seed": 3, "inspectors": inspectors})

    for inspectors in (["WG-SX"], ["WG-NOBODY"], ["WG-HN", "u-nobody"]):
        r = draw("henan", inspectors)
        assert r.status_code == 422, (inspectors, r.text)
        assert r.json()["errors"][0]["loc"] == ["body", "inspectors"]
    assert draw("henan", ["<script>alert(1)</script>"]).status_code == 422  # codes only
    r = draw("henan", ["WG-HN", "WG-HN2"])
    assert r.status_code == 201 and r.json()["params"]["inspectors"] == ["WG-HN", "WG-HN2"]
    assert draw("admin", ["WG-SX"]).status_code == 201  # the administrator names anyone known


def test_dates_later_than_today_are_422_naming_the_field(served):
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    r = close(served, "henan", closed_on=tomorrow)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "closed_on"]
    r = call(served, "officer", "POST", "/api/checks", json={
        "credit_code": f.UNIT_A, "checked_on": tomorrow, "result": "符合"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "checked_on"]
