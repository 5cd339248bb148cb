"""Evidence of a hazard's rectification: ``POST /api/hazards/{id}/evidence`` keeps one
photo or file (JPEG, PNG, WebP or PDF, checked by its magic bytes, at most
``RISKMAP_MAX_EVIDENCE_MB``), ``GET /api/evidence/{id}`` gives it back as an attachment.
A photo is kept encoded anew (upright, its long side at most 2560 px, no EXIF or other
metadata; service/evidence.py), a PDF as uploaded; the answer describes the kept file
(``size``, ``sha256``) and, for a photo, the upload as it came (``uploaded_size``,
``uploaded_sha256``, ``taken_at`` when the photo says when it was taken), as its audit
entry does.

Both are scoped exactly like a hazard's transition (service/routes/work.py): the roles that
move hazards (administrators, regulators, grid officers; not park administrators or
planners), on the hazards of equipment in the caller's scope; a hazard or an evidence item
outside it is not found, exactly as one that does not exist. As the registry upload does
(service/routes/uploads.py), the route declares no body parameter and reads the form only
after the caller is known to be allowed, its body capped while it streams
(service/body_limit.py). Every upload is audited (``hazard.evidence``) and shows in the
hazard's history (service/unit_file.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from service import evidence as kept
from service.auth import Caller, require
from service.deps import SettingsDep, StoreDep
from service.errors import BadParameter, NotFound, bilingual
from service.evidence import CLOSERS, hazard_in_scope
from service.export import content_disposition

router = APIRouter(prefix="/api", tags=["worklist"])
HAZARD_ID = r"^[A-Za-z0-9_\-]{1,64}$"
UPLOAD_PATH = r"/api/hazards/[A-Za-z0-9_\-]{1,64}/evidence"
FRAMING = 64 << 10  # the multipart form's boundaries and headers around the file
CHUNK = 1 << 20
EVIDENCE_BODY = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary",
                 "description": "整改证据：JPEG、PNG、WebP 照片或 PDF 文件"}}}}}}


def _evidence_missing(evidence_id: str) -> NotFound:
    return NotFound(bilingual(
        f"证据 {evidence_id[:64]} 不存在（或不在您的管辖范围内）：请核对证据编号",
        f"evidence {evidence_id[:64]} not found (or outside your region)"))


def _too_large(limit_mb: int) -> HTTPException:
    return HTTPException(413, bilingual(f"上传文件（file）超过上限 {limit_mb} MB",
                                        f"file larger than {limit_mb} MB"))


@router.post("/hazards/{hazard_id}/evidence", summary="上传隐患整改证据（照片或文件）",
             status_code=201, dependencies=[require(*CLOSERS)],
             openapi_extra={"requestBody": EVIDENCE_BODY})
async def upload_evidence(request: Request, caller: Caller, store: StoreDep,
                          settings: SettingsDep,
                          hazard_id: Annotated[str, Path(pattern=HAZARD_ID)]) -> dict:
    hazard, piece = await run_in_threadpool(hazard_in_scope, store, caller,
                                            hazard_id.upper())
    limit = settings.max_evidence_mb * 2**20
    try:
        async with request.form(max_files=1, max_fields=4, max_part_size=1024) as form:
            files = [f for f in form.getlist(kept.FIELD) if isinstance(f, UploadFile)]
            if len(files) != 1:
                raise BadParameter(bilingual(
                    f"上传文件（{kept.FIELD}）须恰好一个：{kept.ALLOWED_ZH}",
                    f"{kept.FIELD}: upload exactly one file (JPEG, PNG, WebP or PDF)"))
            part = files[0]
            filename = kept.shown_name(part.filename)
            media_type = kept.claimed_type(filename, part.content_type)
            content = bytearray()
            while chunk := await part.read(CHUNK):
                content += chunk
                if len(content) > limit:
                    raise _too_large(settings.max_evidence_mb)
    except HTTPException as exc:  # the form's own limits (starlette's English)
        if exc.status_code != 400:
            raise
        raise BadParameter(bilingual(
            f"上传表单无法读取：须为 multipart/form-data，含一个上传文件（{kept.FIELD}）",
            f"the form could not be read ({exc.detail}): send multipart/form-data with one "
            f"file ({kept.FIELD})")) from None
    # checked, and a photo decoded and encoded anew (upright, smaller, no metadata), in a
    # worker thread: a large photo takes the CPU for up to a second
    prepared = await run_in_threadpool(kept.prepare, filename, media_type, bytes(content))
    del content
    item = kept.new_evidence(hazard["hazard_id"], filename, media_type, prepared.content,
                             caller.user_id)
    audit = kept.audit_entry(item, county_adcode=piece.get("county_adcode"),
                             h3=piece.get("h3"), prepared=prepared)
    await run_in_threadpool(store.add_evidence, item, prepared.content, audit)
    return {**kept.record(item), **prepared.facts()}


@router.get("/evidence/{evidence_id}", summary="下载隐患整改证据（附件）",
            response_class=Response, dependencies=[require(*CLOSERS)],
            responses={200: {"content": {t: {} for t in kept.TYPES}}})
def download_evidence(caller: Caller, store: StoreDep,
                      evidence_id: Annotated[str, Path(pattern=HAZARD_ID)]) -> Response:
    found = store.evidence(evidence_id)
    if found is None:
        raise _evidence_missing(evidence_id)
    item, content = found
    try:
        hazard_in_scope(store, caller, item.hazard_id)
    except NotFound:
        raise _evidence_missing(evidence_id) from None
    # only the kept types are served, as themselves, always as an attachment
    media_type = item.media_type if item.media_type in kept.TYPES else (
        "application/octet-stream")
    return Response(content, media_type=media_type, headers={
        "Content-Disposition": content_disposition(item.filename, item.filename or "evidence"),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
        "Content-Security-Policy": "default-src 'none'; sandbox"})
