"""Evidence photos and files on hazard transitions (issue 14 §2): kept on both stores with
their bytes, uploaded scoped like the transition, checked by magic bytes and size, audited,
given back as an attachment only, and listed in the hazard's history."""

from __future__ import annotations

import hashlib
import io
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from service.auth import Role, create_user
from service.settings import Settings
from service.store import open_store
from service.store.base import Evidence
from service.store.errors import StoreError
from tests.servers import call
from tests.test_hazard_loop import PEPPER, PROVINCES, _fill
from tests.test_write_scope import HENAN_PIECE


def _photo(fmt: str) -> bytes:
    """A small real photo (an upload must decode as its type: service/evidence.py)."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, fmt)
    return out.getvalue()


PNG = _photo("PNG")
JPEG = _photo("JPEG")
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(64)


def _fill_more(store, tmp) -> dict:
    tokens = _fill(store, tmp)
    for key, role, scope in (("park", Role.PARK_ADMIN, "P-NONE"),
                             ("planner", Role.PLANNER, "410000")):
        _user, tokens[key] = create_user(store, name=f"{key}用户", role=role, scope=scope,
                                         pepper=PEPPER, provinces=PROVINCES)
    return tokens


@pytest.fixture()
def served(filled_store):
    filled = filled_store(_fill_more)
    settings = Settings(store=filled.url, max_evidence_mb=1)
    with TestClient(create_app(settings)) as client:
        yield {"client": client, "tokens": filled.facts, "url": filled.url}


def upload(served, who: str, name: str, content: bytes, media_type: str,
           hazard: str = "YH-HN"):
    return call(served, who, "POST", f"/api/hazards/{hazard}/evidence",
                files={"file": (name, content, media_type)})


def test_store_keeps_evidence_with_its_bytes(store):
    item = Evidence("EV1", "YH-1", "现场.jpg", "image/jpeg", len(JPEG),
                    hashlib.sha256(JPEG).hexdigest(), "u1", datetime(2026, 1, 2, 3, 4, 5))
    later = Evidence("EV2", "YH-1", "b.pdf", "application/pdf", len(PDF),
                     hashlib.sha256(PDF).hexdigest(), "u1", datetime(2026, 1, 3))
    version = store.data_version()
    store.add_evidence(later, PDF)
    store.add_evidence(item, JPEG)
    assert [e.evidence_id for e in store.evidence_for("YH-1")] == ["EV1", "EV2"]
    assert store.evidence_for("YH-2") == []
    found, content = store.evidence("EV1")
    assert found == item and content == JPEG
    assert store.evidence("EV9") is None
    with pytest.raises(StoreError):
        store.add_evidence(item, JPEG)
    assert store.data_version() == version  # an upload is no data change


def test_good_upload_is_kept_audited_and_in_the_history(served):
    response = upload(served, "officer", "整改后.png", PNG, "image/png")
    assert response.status_code == 201, response.text
    body = response.json()
    # a photo is kept encoded anew (tests/test_evidence_photos.py): the record is the kept file
    assert body["filename"] == "整改后.png" and body["uploaded_size"] == len(PNG)
    assert body["uploaded_sha256"] == hashlib.sha256(PNG).hexdigest()
    assert body["media_type"] == "image/png" and body["url"].startswith("/api/evidence/EV")
    got = call(served, "officer", "GET", body["url"])
    assert got.status_code == 200 and len(got.content) == body["size"]
    assert body["sha256"] == hashlib.sha256(got.content).hexdigest()
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-disposition"].startswith("attachment;")
    assert got.headers["x-content-type-options"] == "nosniff"
    # the regulator of the region reads it too, and the trail records the upload
    assert call(served, "henan", "GET", body["url"]).status_code == 200
    trail = call(served, "admin", "GET", "/api/audit", params={"action": "hazard.evidence"})
    assert trail.status_code == 200, trail.text
    assert "整改后.png" in trail.text
    with open_store(served["url"]) as store:
        code = store.row("equipment", HENAN_PIECE)["unit_credit_code"]
        assert [e.evidence_id for e in store.evidence_for("YH-HN")] == [body["evidence_id"]]
    unit = call(served, "officer", "GET", f"/api/units/{code}/file").json()
    hazard = next(h for h in unit["hazards"] if h["hazard_id"] == "YH-HN")
    shown = [e for e in hazard["history"] if e.get("evidence")]
    assert len(shown) == 1
    assert shown[0]["evidence"] == {"evidence_id": body["evidence_id"], "filename": "整改后.png",
                                    "media_type": "image/png", "size": body["size"],
                                    "url": body["url"]}
    assert shown[0]["action_zh"] == "上传整改证据" and shown[0]["by"] and shown[0]["at"]


@pytest.mark.parametrize(("name", "content", "media_type"), [
    ("photo.jpg", PNG, "image/jpeg"),             # a PNG claiming to be a JPEG
    ("photo.jpg", PNG, "application/octet-stream"),
    ("evil.png", b"#!/bin/sh\nrm -rf /\n", "image/png"),  # a script named .png
    ("page.html", b"<html><script>x</script>", "text/html"),
    ("image.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"),
    ("a.png", PNG, "image/jpeg"),                 # suffix and type disagree
    ("empty.pdf", b"", "application/pdf"),
])
def test_wrong_type_or_magic_is_refused(served, name, content, media_type):
    response = upload(served, "officer", name, content, media_type)
    assert response.status_code == 400, response.text
    assert "file" in response.json()["detail"]
    with open_store(served["url"]) as store:
        assert store.evidence_for("YH-HN") == []


def test_oversized_upload_is_413(served):
    big = JPEG + bytes(2 << 20)  # over the 1 MB set for this service
    response = upload(served, "officer", "big.jpg", big, "image/jpeg")
    assert response.status_code == 413
    # a small body still passes the same path's limit, and other paths keep theirs
    assert upload(served, "officer", "ok.pdf", PDF, "application/pdf").status_code == 201


def test_scope(served):
    # a hazard outside the caller's region is not found, as one that does not exist
    assert upload(served, "henan", "a.jpg", JPEG, "image/jpeg", "YH-SX").status_code == 404
    assert upload(served, "officer", "a.jpg", JPEG, "image/jpeg", "YH-SX").status_code == 404
    assert upload(served, "henan", "a.jpg", JPEG, "image/jpeg", "YH-NONE").status_code == 404
    # park administrators and planners do not move hazards
    assert upload(served, "park", "a.jpg", JPEG, "image/jpeg").status_code == 403
    assert upload(served, "planner", "a.jpg", JPEG, "image/jpeg").status_code == 403
    assert upload(served, None, "a.jpg", JPEG, "image/jpeg").status_code == 401
    theirs = upload(served, "shaanxi", "x.jpg", JPEG, "image/jpeg", "YH-SX")
    assert theirs.status_code == 201, theirs.text
    url = theirs.json()["url"]
    unknown = call(served, "henan", "GET", "/api/evidence/EV0000")
    outside = call(served, "henan", "GET", url)
    assert unknown.status_code == outside.status_code == 404
    assert outside.json()["detail"].replace(url.rsplit("/", 1)[1], "EV0000") == (
        unknown.json()["detail"])
    assert call(served, "officer", "GET", url).status_code == 404
    assert call(served, "park", "GET", url).status_code == 403
    assert call(served, "shaanxi", "GET", url).status_code == 200


def test_download_never_inline_and_name_escaped(served):
    name = "<img src=x onerror=alert(1)><script>.pdf"  # a '/' would be a folder
    response = upload(served, "officer", name, PDF, "application/pdf")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["filename"] == name  # kept as sent; only ever shown escaped (JSON, textContent)
    got = call(served, "officer", "GET", body["url"])
    assert got.headers["content-type"] == "application/pdf"
    disposition = got.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "<" not in disposition
    assert "sandbox" in got.headers["content-security-policy"]
    # the upload path's name is the service's own: nothing of the uploaded name on disk
    with open_store(served["url"]) as store:
        found, content = store.evidence(body["evidence_id"])
        assert content == PDF and found.filename == name
