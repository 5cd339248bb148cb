"""The audit trail a supervisor can read (issue 12 §7): who (name and role), when (Beijing
time, with its offset), what before and after without the store's bookkeeping; filters by
action, time and object, CSV; unknown parameters refused; a regulator reads their region's
entries only; ingests and user changes are recorded too. Both stores."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from service.store import open_store
from tests.servers import get
from tests.test_hazard_loop import OPEN, _fill, close, hazards_csv, reingest

BEIJING = timezone(timedelta(hours=8))
INTERNAL = {"row_hash", "batch_id", "source_file", "source_row", "updated_at"}


@pytest.fixture()
def served(filled_store):
    """The service on this test's copy of test_hazard_loop's store; ``ids`` maps each
    user's key to their id."""
    filled = filled_store(_fill)
    with open_store(filled.url) as store:
        ids = {u.name.removesuffix("用户"): u.user_id for u in store.users()}
    with TestClient(create_app(Settings(store=filled.url))) as client:
        yield {"client": client, "tokens": filled.facts, "url": filled.url,
               "tmp": filled.files, "ids": ids}


def trail(served, who: str = "admin", **params) -> dict:
    r = get(served, who, "/api/audit", **params)
    assert r.status_code == 200, r.text
    return r.json()


def test_an_entry_names_its_actor_and_its_time_zone_and_hides_bookkeeping(served):
    assert close(served, "henan").status_code == 200
    body = trail(served, entity_id="YH-HN")
    assert body["timezone"] == "Asia/Shanghai (+08:00)"
    latest, registered = body["entries"]
    assert latest["actor"] == {"id": served["ids"]["henan"], "name": "henan用户",
                               "role": "regulator", "role_zh": "监管人员"}
    assert latest["action"] == "hazard.transition" and latest["action_zh"] == "隐患状态变更"
    assert latest["entity_zh"] == "隐患"
    at = datetime.fromisoformat(latest["at"])
    assert latest["at"].endswith("+08:00") and abs(
        at - datetime.now(BEIJING)) < timedelta(minutes=5)
    assert latest["before"]["status"] == "整改中" and latest["after"]["status"] == "已销号"
    assert latest["after"]["closed_on"] == "2025-07-01"
    assert latest["before"]["found_on"] == "2025-05-01"  # a date, not a midnight
    for entry in (latest, registered):
        for row in (entry["before"], entry["after"]):
            assert row is None or not INTERNAL & set(row), row
    assert registered["action"] == "hazard.ingest" and registered["actor"]["role"] == "cli"
    assert registered["actor"]["role_zh"] == "服务器命令行（系统管理员）"


def test_filters_by_action_family_and_time(served):
    assert close(served, "henan").status_code == 200
    moved = trail(served, action="hazard.transition")["entries"]
    assert moved and {e["action"] for e in moved} == {"hazard.transition"}
    family = trail(served, action="hazard")["entries"]
    assert {e["action"] for e in family} == {"hazard.transition", "hazard.ingest"}
    today = datetime.now(BEIJING).date()
    everything = trail(served)["count"]
    assert trail(served, since=today.isoformat())["count"] == everything
    assert trail(served, since=f"{today:%Y/%m/%d}")["count"] == everything  # as ingest reads
    assert trail(served, until=today.isoformat())["count"] == everything  # the whole day
    assert trail(served, until=(today - timedelta(days=1)).isoformat())["count"] == 0
    later = (datetime.now(BEIJING) + timedelta(hours=1)).isoformat(timespec="seconds")
    assert trail(served, since=later)["count"] == 0
    earlier = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
    assert trail(served, since=earlier, action="hazard.transition")["count"] == 1
    r = get(served, "admin", "/api/audit", since=today.isoformat(),
            until=(today - timedelta(days=2)).isoformat())
    assert r.status_code == 400 and "since 须早于截止时间 until" in r.json()["detail"]
    r = get(served, "admin", "/api/audit", action="hazard.delete")
    assert r.status_code == 422 and "操作类型（action）须为 hazard.transition" in (
        r.json()["detail"])
    r = get(served, "admin", "/api/audit", since="上周")
    assert r.status_code == 422 and "请使用 YYYY-MM-DD" in r.json()["detail"]



def test_unknown_parameters_are_a_400_naming_them(served):
    r = get(served, "admin", "/api/audit", actoin="hazard.transition")
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert detail.startswith("不支持的查询参数：actoin；可用参数：action, entity_id")
    assert "unknown query parameter(s): actoin" in detail


def test_the_trail_downloads_as_formula_safe_csv(served):
    assert close(served, "henan", evidence="=HYPERLINK(\"http://x\")").status_code == 200
    r = get(served, "admin", "/api/audit", format="csv", action="hazard.transition")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["x-total-count"] == "1"
    text = r.content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0])[:5] == ["时间（北京时间）", "操作人", "角色", "操作人编号", "操作"]
    assert rows[0]["操作人"] == "henan用户" and rows[0]["角色"] == "监管人员"
    assert rows[0]["时间（北京时间）"].endswith("+08:00")
    assert rows[0]["说明"].startswith("'=HYPERLINK")  # text, never a formula
    assert "row_hash" not in text and "source_file" not in text


def test_regulators_read_their_region_only_and_others_not_at_all(served):
    assert close(served, "henan").status_code == 200
    henan = trail(served, "henan")["entries"]
    assert "YH-HN" in {e["entity_id"] for e in henan}
    assert all((e["county_adcode"] or "").startswith("41") for e in henan)
    shaanxi = trail(served, "shaanxi")["entries"]
    assert "YH-HN" not in {e["entity_id"] for e in shaanxi}
    assert all((e["county_adcode"] or "").startswith("61") for e in shaanxi)
    assert not {"user.add", "user.disable"} & {e["action"] for e in henan + shaanxi}
    assert get(served, "officer", "/api/audit").status_code == 403


def test_each_ingest_batch_is_one_entry_placed_in_its_region(served):
    first = trail(served, action="ingest.batch")["entries"]
    assert len(first) == 1 and first[0]["actor"]["id"] == "cli"
    assert first[0]["county_adcode"] is None  # both provinces: administrators only
    files = {f["file"]: f for f in first[0]["after"]["files"]}
    assert files["hz.csv"] == {"file": "hz.csv", "kind": "hazards", "rows": 3, "rejected": 0}
    assert first[0]["after"]["counts"]["officers"]["read"] == 3
    changed = [*OPEN[:5], "整改中", "2025-09-01", "", "", ""]  # a later deadline
    report = reingest(served, hazards_csv(served["tmp"] / "later.csv", [changed]),
                      actor="cli:clerk")
    assert report["updated"] == 1
    entry = trail(served, action="ingest.batch", entity_id=report["batch_id"])["entries"][0]
    assert entry["actor"] == {"id": "cli:clerk", "name": "clerk", "role": "cli",
                              "role_zh": "服务器命令行（系统管理员）"}
    assert entry["county_adcode"] == "410105" and report["batch_id"] in entry["note"]
    assert entry["after"]["files"] == [{"file": "later.csv", "kind": "hazards", "rows": 1,
                                        "rejected": 0}]
    assert report["batch_id"] in {e["entity_id"] for e in trail(served, "henan")["entries"]}
    assert report["batch_id"] not in {e["entity_id"]
                                      for e in trail(served, "shaanxi")["entries"]}


def test_users_added_and_disabled_are_recorded_without_a_new_data_version(served):
    added = trail(served, action="user.add")["entries"]
    assert {e["entity_id"] for e in added} == set(served["ids"].values())
    henan = next(e for e in added if e["entity_id"] == served["ids"]["henan"])
    assert henan["actor"]["id"] == "cli" and henan["before"] is None
    assert henan["after"] == {"user_id": served["ids"]["henan"], "name": "henan用户",
                              "role": "regulator", "scope": "410000", "disabled": False}
    assert "token_hash" not in str(added)
    with open_store(served["url"]) as store:
        version = store.data_version()
        store.disable_user(served["ids"]["officer"], actor=served["ids"]["admin"])
        assert store.data_version() == version  # the layers stay current
    disabled = trail(served, action="user")["entries"][0]
    assert disabled["action"] == "user.disable" and disabled["action_zh"] == "停用用户"
    assert disabled["actor"]["name"] == "admin用户" and disabled["actor"]["role_zh"] == "系统管理员"
    assert disabled["before"]["disabled"] is False and disabled["after"]["disabled"] is True
    assert disabled["entity_id"] == served["ids"]["officer"]
