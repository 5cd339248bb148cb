"""Evidence of a hazard's rectification: a photo or a file kept with the hazard.

An upload is one JPEG, PNG, WebP or PDF file. Its type is what it claims (the part's
``Content-Type``, else its name's suffix; the two must agree when both name a type), and the
claim is checked against the file's first bytes (its magic): a PNG named ``.jpg`` or a
script named ``.png`` is refused. The file is never opened as anything but bytes: it is not
decoded, converted or served inline. It is kept under an id of the service's own, and
always served back as an attachment of the stored type (``GET /api/evidence/{id}``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import PurePosixPath, PureWindowsPath

from layers.registry import ALL
from service.auth import Principal, Role
from service.errors import BadParameter, NotFound, bilingual
from service.scope import layer_scope
from service.store.base import Evidence, Store
from service.store.query import Condition, LayerQuery

FIELD = "file"
NAME_CHARS = 255
# media type -> (suffixes, Chinese name)
TYPES: dict[str, tuple[tuple[str, ...], str]] = {
    "image/jpeg": ((".jpg", ".jpeg"), "JPEG 照片"),
    "image/png": ((".png",), "PNG 图片"),
    "image/webp": ((".webp",), "WebP 图片"),
    "application/pdf": ((".pdf",), "PDF 文件"),
}
ALLOWED_ZH = "JPEG、PNG、WebP 照片或 PDF 文件"
GENERIC = ("", "application/octet-stream", "binary/octet-stream")
# who may attach evidence and read it back: those who move hazards (service/routes/work.py)
CLOSERS = (Role.ADMIN, Role.REGULATOR, Role.GRID_OFFICER)


def hazard_missing(hazard_id: str) -> NotFound:
    """The same 404 whether a hazard is missing or outside the caller's scope (as for a
    transition)."""
    return NotFound(bilingual(f"隐患 {hazard_id} 不存在（或不在您的管辖范围内）：请核对隐患编号",
                              f"hazard {hazard_id} not found (or outside your region): "
                              "check the hazard id"))


def hazard_in_scope(store: Store, caller: Principal, hazard_id: str) -> tuple[dict, dict]:
    """The stored hazard and the caller's row of its equipment, scoped exactly as a
    transition is (the equipment layer through the caller's scope), or the hazard's 404."""
    hazard = store.row("hazards", hazard_id)
    if hazard is None:
        raise hazard_missing(hazard_id)
    scope = layer_scope(caller, ALL["equipment"])
    found, _ = store.query_layer(LayerQuery("equipment", (*scope, Condition(
        "registration_code", "eq", (hazard["registration_code"],))), None, 1, 0))
    if found.empty:
        raise hazard_missing(hazard_id)
    return hazard, found.iloc[0].to_dict()


def _magic_ok(media_type: str, head: bytes) -> bool:
    """Whether ``head`` (the file's first bytes) starts as ``media_type`` does."""
    if media_type == "image/jpeg":
        return head.startswith(b"\xff\xd8\xff")
    if media_type == "image/png":
        return head.startswith(b"\x89PNG\r\n\x1a\n")
    if media_type == "image/webp":
        return head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    if media_type == "application/pdf":
        return head.startswith(b"%PDF-")
    return False


def shown_name(name: str | None) -> str:
    """The uploaded name as kept and shown: no folders, no control characters, at most
    NAME_CHARS (keeping the suffix); a name is only ever shown, escaped."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name
    base = "".join(c for c in base if c.isprintable()).strip() or "evidence"
    if len(base) > NAME_CHARS:
        suffix = PurePosixPath(base).suffix[:16]
        base = base[:NAME_CHARS - len(suffix)] + suffix
    return base


def _refuse(zh: str, en: str) -> BadParameter:
    return BadParameter(bilingual(f"上传文件（{FIELD}）{zh}", f"{FIELD}: {en}"))


def claimed_type(filename: str, content_type: str | None) -> str:
    """The media type the upload claims, or a 400 naming the field."""
    suffix = PurePosixPath(filename).suffix.lower()
    by_suffix = next((t for t, (s, _) in TYPES.items() if suffix in s), None)
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared == "image/jpg":
        declared = "image/jpeg"
    if declared not in GENERIC and declared not in TYPES:
        raise _refuse(f"的类型 {declared[:60]} 不允许：仅接受{ALLOWED_ZH}",
                      f"type {declared[:60]} not allowed: JPEG, PNG, WebP or PDF only")
    if declared in GENERIC:
        if by_suffix is None:
            raise _refuse(f"“{filename}”的类型无法识别：仅接受{ALLOWED_ZH}"
                          "（文件名须以 .jpg、.jpeg、.png、.webp 或 .pdf 结尾）",
                          "unknown type: JPEG, PNG, WebP or PDF only (.jpg, .jpeg, .png, "
                          ".webp or .pdf)")
        return by_suffix
    if by_suffix is not None and by_suffix != declared:
        raise _refuse(f"“{filename}”的文件名后缀与类型 {declared} 不一致",
                      f"the name's suffix does not match its type {declared}")
    return declared


def check_content(filename: str, media_type: str, content: bytes) -> None:
    """A 400 naming the field unless ``content`` is a non-empty file of ``media_type``."""
    if not content:
        raise _refuse("为空", "the file is empty")
    if not _magic_ok(media_type, content[:16]):
        raise _refuse(f"“{filename}”的内容不是{TYPES[media_type][1]}（与其声明的类型不符）："
                      f"仅接受{ALLOWED_ZH}",
                      f"the content is not {media_type} as claimed: JPEG, PNG, WebP or PDF "
                      "only")


def new_evidence(hazard_id: str, filename: str, media_type: str, content: bytes,
                 uploaded_by: str) -> Evidence:
    """The record of a checked upload (a fresh id, naive UTC time)."""
    return Evidence(
        evidence_id=f"EV{uuid.uuid4().hex.upper()}", hazard_id=hazard_id, filename=filename,
        media_type=media_type, size=len(content),
        sha256=hashlib.sha256(content).hexdigest(), uploaded_by=uploaded_by,
        uploaded_at=datetime.now(UTC).replace(tzinfo=None),
        audit_id=f"a-{uuid.uuid4().hex}")


def record(evidence: Evidence) -> dict:
    """What the API shows of an evidence item (never its bytes)."""
    return {"evidence_id": evidence.evidence_id, "hazard_id": evidence.hazard_id,
            "filename": evidence.filename, "media_type": evidence.media_type,
            "size": evidence.size, "sha256": evidence.sha256,
            "uploaded_by": evidence.uploaded_by,
            "uploaded_at": evidence.uploaded_at.replace(tzinfo=UTC).isoformat(
                timespec="seconds"),
            "url": f"/api/evidence/{evidence.evidence_id}"}


def audit_entry(evidence: Evidence, *, county_adcode: str | None, h3: str | None) -> dict:
    """The upload's audit entry (``hazard.evidence``, on the hazard, placed where its
    equipment is): the hazard's history shows it."""
    after = {k: v for k, v in record(evidence).items() if k != "url"}
    return {"audit_id": evidence.audit_id, "at": evidence.uploaded_at,
            "actor": evidence.uploaded_by, "action": "hazard.evidence", "entity": "hazards",
            "entity_id": evidence.hazard_id, "before": None,
            "after": json.dumps({"evidence": after}, ensure_ascii=False),
            "note": f"上传证据：{evidence.filename}（{size_text(evidence.size)}）",
            "county_adcode": county_adcode, "h3": h3}


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1 << 20:
        return f"{size / 1024:.1f} KB"
    return f"{size / 2**20:.1f} MB"
