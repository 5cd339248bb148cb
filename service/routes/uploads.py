"""Registry files uploaded over HTTP go through the same ingest as the CLI, one batch.

The body is read only after the caller is known to be allowed to upload: the route declares
no body parameters (FastAPI would read and spool a form before running any dependency) and
parses the multipart stream itself, capped while it streams (service/body_limit.py). Every
row is then checked against the uploader's region (service/ingest/write_scope.py), and the
batch names the uploader in the audit trail.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from data.schema import Kind
from geo.datum import UnknownDatumError, parse_datum
from service.auth import Caller, Role, require
from service.deps import SettingsDep, StoreDep
from service.errors import BadParameter, Forbidden, bilingual, invalid
from service.ingest.pipeline import IngestOptions, ingest
from service.ingest.write_scope import WriteScope
from service.messages import label

router = APIRouter(prefix="/api", tags=["ingest"])
CHUNK = 1 << 20
MAX_FILES = 50  # a bureau's export is a handful of files; each is a batch of its own rows
FORM_FIELD_BYTES = 1 << 10  # ``kind`` and ``crs`` are a few characters
NAME_CHARS = 255  # what a file system takes for a name; the report shows no longer one
SUFFIX = re.compile(r"^\.[a-z0-9]{1,10}$")
FORMATS = ("CSV、XLSX、GeoJSON 或 GeoPackage 台账文件", "CSV, XLSX, GeoJSON or GeoPackage")
DATUMS = ("WGS84 (EPSG:4326)", "CGCS2000 (EPSG:4490)", "GCJ02", "BD09")

UPLOAD_BODY = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["files"], "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                  "description": "台账文件，可多个（CSV/XLSX/GeoJSON/GeoPackage）"},
        "kind": {"type": "string", "enum": [k.value for k in Kind],
                 "description": "强制文件类型"},
        "crs": {"type": "string", "maxLength": 32, "description": "文件默认坐标系"},
    }}}}}


def _shown_name(i: int, name: str) -> str:
    """The uploaded file's name as the report shows it: no folders, no control characters,
    at most NAME_CHARS (keeping the suffix)."""
    name = "".join(c for c in Path(name).name if c.isprintable()) or f"upload-{i}"
    if len(name) <= NAME_CHARS:
        return name
    suffix = Path(name).suffix[:16]
    return name[:NAME_CHARS - len(suffix)] + suffix


def _disk_name(i: int, name: str) -> str:
    """The file's name on this server: a number and the suffix the reader goes by, nothing
    else of what the client sent."""
    suffix = Path(name).suffix.lower()
    return f"{i:03d}{suffix if SUFFIX.match(suffix) else ''}"


def _text_field(value: object, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(field, f"{label(field)}须为文本字段，不能是文件",
                      f"{field} must be a text field, not a file")
    return value.strip() or None


@router.post("/ingest", summary="上传台账文件并导入（与命令行相同的报告）",
             dependencies=[require(Role.ADMIN, Role.REGULATOR)],
             openapi_extra={"requestBody": UPLOAD_BODY})
async def upload(request: Request, caller: Caller, store: StoreDep, settings: SettingsDep,
                 strict: Annotated[bool, Query(description="严格模式：有任何拒收（行或整个文件）"
                                                           "则整批不写入")] = False) -> dict:
    """Admins load anything within the configured provinces; a province regulator loads
    rows of their province only (others are rejected as ``out_of_scope`` and reported).
    With ``strict=true`` any reject leaves the store as it was (``written`` false)."""
    if caller.role == Role.REGULATOR and caller.admin_level != "province":
        raise Forbidden(bilingual("仅省级监管人员和系统管理员可导入台账",
                                  "only province regulators and administrators may upload "
                                  "registers"))
    limit = settings.max_upload_mb * 2**20
    folder = Path(tempfile.mkdtemp(prefix="riskmap-upload-"))
    try:
        try:
            async with request.form(max_files=MAX_FILES, max_fields=10,
                                    max_part_size=FORM_FIELD_BYTES) as form:
                files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
                if not files:
                    raise invalid("files", f"{label('files')}须至少有一个：{FORMATS[0]}",
                                  f"files: upload at least one file ({FORMATS[1]})")
                kind_text = _text_field(form.get("kind"), "kind")
                crs = _text_field(form.get("crs"), "crs")
                paths, names = await _save(files, folder, limit)
        except HTTPException as exc:  # the form's own limits (starlette's English)
            if exc.status_code != 400:
                raise
            raise BadParameter(bilingual(
                f"上传表单无法读取：须为 multipart/form-data，上传文件（files）最多 "
                f"{MAX_FILES} 个，kind 和 crs 各不超过 {FORM_FIELD_BYTES} 字节",
                f"the upload form could not be read ({exc.detail}): send multipart/form-data "
                f"with at most {MAX_FILES} files, kind and crs of at most {FORM_FIELD_BYTES} "
                "bytes each")) from None
        try:
            kind = Kind(kind_text) if kind_text else None
        except ValueError:
            kinds = [k.value for k in Kind]
            raise invalid("kind", f"{label('kind')}须为 {'、'.join(kinds)} 之一",
                          f"kind must be one of {', '.join(kinds)}") from None
        if crs:
            try:
                parse_datum(crs)
            except UnknownDatumError:
                raise BadParameter(bilingual(
                    f"未知坐标系（crs）：{crs[:32]}；可用：{'、'.join(DATUMS)}",
                    f"unknown datum (crs) {crs[:32]}; use one of {', '.join(DATUMS)}")) from None
        scope = None if caller.role == Role.ADMIN else WriteScope(caller.scope or "")
        options = IngestOptions(h3_resolution=settings.h3_resolution,
                                provinces=settings.provinces, default_crs=crs, kind=kind,
                                max_bytes=limit, actor=caller.user_id, scope=scope,
                                strict=strict,
                                shown_names=dict(zip(paths, names, strict=True)))
        report = await run_in_threadpool(ingest, paths, store, options)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    # the report names the files as uploaded (``shown_names``); the rejected rows as they
    # came (up to 100,000 of them) are for the CLI's workbook: ``rejects`` lists each
    return {k: v for k, v in report.items() if not k.startswith("rejected_rows")}


async def _save(files: list[UploadFile], folder: Path, limit: int
                ) -> tuple[list[str], list[str]]:
    """Copy the parsed parts into files of our own naming; (paths, names as sent)."""
    paths, names, total = [], [], 0
    for i, item in enumerate(files):
        name = _shown_name(i, item.filename or "")
        target = folder / _disk_name(i, name)
        with open(target, "wb") as out:
            while chunk := await item.read(CHUNK):
                total += len(chunk)
                if total > limit:  # the stream was capped already; this is belt and braces
                    raise HTTPException(413, bilingual(
                        f"上传文件（files）合计超过 {limit // 2**20} MB 上限：请分批上传",
                        f"the files together exceed the {limit // 2**20} MB limit: upload "
                        "them in several batches"))
                out.write(chunk)
        paths.append(str(target))
        names.append(name)
    return paths, names
