"""POST /api/ingest: the CLI's ingest over HTTP, for admins and province regulators only,
with a clear 413 over the size limit and nothing written when a request is refused."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import Role, create_user
from service.settings import Settings
from service.store import open_store
from tests import ingest_files as f

PEPPER = Settings().token_pepper.get_secret_value()


@pytest.fixture()
def served(store_factory, tmp_path):
    store = store_factory()
    url = getattr(store, "url", None) or str(getattr(store, "root", tmp_path))
    tokens = {}
    for key, role, scope in (("admin", Role.ADMIN, None), ("province", Role.REGULATOR, "410000"),
                             ("county", Role.REGULATOR, "410105"),
                             ("officer", Role.GRID_OFFICER, "WG1")):
        _user, tokens[key] = create_user(store, name=key, role=role, scope=scope,
                                         pepper=PEPPER, provinces=["410000", "610000"])
    store.close()
    with TestClient(create_app(Settings(store=url, max_upload_mb=1))) as client:
        yield client, tokens, url


def post(served, who, files, **data):
    client, tokens, _ = served
    return client.post("/api/ingest", files=files, data=data,
                       headers={"Authorization": f"Bearer {tokens[who]}"} if who else {})


def version(url: str) -> str:
    with open_store(url) as store:
        return store.data_version()


def test_an_admin_upload_returns_the_same_report_as_the_cli(served, tmp_path):
    path = f.write_equipment_csv(tmp_path / "设备台账.csv")
    r = post(served, "admin", [("files", (path.name, path.read_bytes(), "text/csv"))])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["inserted"] > 0 and body["rejected"] > 0
    assert {"file", "row", "field", "reason"} <= set(body["rejects"][0])


def test_a_province_regulator_may_upload_rows_outside_their_province_are_rejected(served,
                                                                                  tmp_path):
    path = f.write_equipment_csv(tmp_path / "eq.csv")
    r = post(served, "province", [("files", (path.name, path.read_bytes(), "text/csv"))])
    assert r.status_code == 200
    reasons = {x["code"] for x in r.json()["rejects"]}
    assert "outside_region" in reasons  # the Shaanxi row of the fixture


def test_other_roles_and_strangers_may_not_upload(served, tmp_path):
    path = f.write_equipment_csv(tmp_path / "eq.csv")
    upload = [("files", (path.name, path.read_bytes(), "text/csv"))]
    before = version(served[2])
    assert post(served, None, upload).status_code == 401
    assert post(served, "county", upload).status_code == 403
    assert post(served, "officer", upload).status_code == 403
    assert version(served[2]) == before


def test_an_oversized_upload_is_413_and_writes_nothing(served):
    before = version(served[2])
    big = b"x" * (2 * 2**20)
    r = post(served, "admin", [("files", ("big.csv", big, "text/csv"))])
    assert r.status_code == 413 and "MB" in r.json()["detail"]
    assert version(served[2]) == before


def test_bad_uploads_are_reported_not_crashed(served):
    r = post(served, "admin", [("files", ("x.csv", "编号\n1\n".encode("gbk"), "text/csv"))],
             crs="Beijing54")
    assert r.status_code == 400 and "Beijing54" in r.json()["detail"]
    junk = post(served, "admin", [("files", ("junk.xlsx", b"\x00\x01not a workbook", "x"))])
    assert junk.status_code == 200
    assert junk.json()["inserted"] == 0 and junk.json()["files"][0]["error"]
    assert junk.json()["files"][0]["path"] == "junk.xlsx"  # no server paths leak
    assert post(served, "admin", []).status_code == 422


def test_a_strict_upload_with_a_reject_writes_nothing(served, tmp_path):
    client, tokens, url = served
    auth = {"Authorization": f"Bearer {tokens['admin']}"}
    path = f.write_equipment_csv(tmp_path / "设备台账.csv")
    upload = [("files", (path.name, path.read_bytes(), "text/csv"))]
    before = version(url)
    r = client.post("/api/ingest", params={"strict": "true"}, files=upload, headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["strict"] and not body["written"] and body["loaded"] == 0
    assert body["rejected"] > 0 and body["inserted"] == 0
    assert version(url) == before
    # the report names the clerk's headers and says what to do, under the uploaded name
    reject = next(x for x in body["rejects"] if x["field"] == "commissioned_on")
    assert reject["header"] == "投用日期" and "YYYY-MM-DD" in reject["advice"]
    assert reject["file"] == "设备台账.csv"
    assert "rejected_rows" not in body  # the rows as they came are the CLI workbook's
    r = client.post("/api/ingest", params={"strict": "maybe"}, files=upload, headers=auth)
    assert r.status_code == 422 and version(url) == before
    good = f.write_equipment_csv(tmp_path / "good.csv", rows=f.equipment_rows()[:2])
    r = client.post("/api/ingest", params={"strict": "true"}, headers=auth,
                    files=[("files", (good.name, good.read_bytes(), "text/csv"))])
    assert r.status_code == 200 and r.json()["written"] and r.json()["loaded"] == 2
    assert version(url) != before


def test_the_stored_batch_names_each_file_as_uploaded(served, tmp_path):
    """The server saves a part as 000.csv; the rows, the batch, the rejects table and the
    audit trail name "设备台账.csv", the file a supervisor knows."""
    _client, _tokens, url = served
    path = f.write_equipment_csv(tmp_path / "设备台账.csv")
    r = post(served, "admin", [("files", (path.name, path.read_bytes(), "text/csv"))])
    assert r.status_code == 200, r.text
    batch_id = r.json()["batch_id"]
    with open_store(url) as store:
        rows = store.read("equipment", ["source_file", "batch_id"])
        batches = store.read("batches")
        rejects = store.read("rejects")
        audit = store.read("audit")
    assert set(rows.loc[rows["batch_id"] == batch_id, "source_file"]) == {"设备台账.csv"}
    batch = batches[batches["batch_id"] == batch_id].iloc[0]
    files = batch["files"]
    assert (json.loads(files) if isinstance(files, str) else list(files)) == ["设备台账.csv"]
    assert "设备台账.csv" in str(batch["report"]) and "000.csv" not in str(batch["report"])
    ours = rejects[rejects["batch_id"] == batch_id]
    assert len(ours) and set(ours["file"]) == {"设备台账.csv"}
    entry = audit[(audit["action"] == "ingest.batch") & (audit["entity_id"] == batch_id)]
    after = entry["after"].iloc[0]
    after = json.loads(after) if isinstance(after, str) else after
    assert [x["file"] for x in after["files"]] == ["设备台账.csv"]
    assert "000.csv" not in r.text  # nor in the report
