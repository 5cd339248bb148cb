"""Registry files uploaded over HTTP go through the same ingest as the CLI, one batch."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import orjson
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from geo.datum import UnknownDatumError, parse_datum
from service.auth import Caller, Forbidden, Role, require
from service.deps import SettingsDep, StoreDep
from service.errors import BadParameter
from service.ingest.pipeline import IngestOptions, ingest
from service.ingest.schema import Kind

router = APIRouter(prefix="/api", tags=["ingest"])
CHUNK = 1 << 20
NAME_BYTES = 200


def _disk_name(i: int, name: str) -> str:
    """The uploaded file's name on this server: no control characters (a NUL cannot be in a
    path) and at most NAME_BYTES (file systems allow 255), keeping the suffix the reader
    goes by."""
    name = "".join(c for c in name if c.isprintable()) or f"upload-{i}"
    suffix = Path(name).suffix
    suffix = suffix if len(suffix.encode()) <= 16 else ""
    stem = name.removesuffix(suffix) if suffix else name
    budget = NAME_BYTES - len(f"{i:03d}-{suffix}".encode())
    stem = stem.encode()[:budget].decode("utf-8", "ignore")
    return f"{i:03d}-{stem}{suffix}"


def _too_large(limit_mb: int) -> HTTPException:
    return HTTPException(413, f"上传文件合计超过 {limit_mb} MB 上限（RISKMAP_MAX_UPLOAD_MB）")


@router.post("/ingest", summary="上传台账文件并导入（与命令行相同的报告）",
             dependencies=[require(Role.ADMIN, Role.REGULATOR)])
async def upload(request: Request, caller: Caller, store: StoreDep, settings: SettingsDep,
                 files: Annotated[list[UploadFile], File(description="台账文件，可多个")],
                 kind: Annotated[Kind | None, Form(description="强制文件类型")] = None,
                 crs: Annotated[str | None, Form(description="文件默认坐标系")] = None,
                 ) -> dict:
    """Admins load anything within the configured provinces; a province regulator loads
    their province (rows elsewhere are rejected as outside the region, and reported)."""
    if caller.role == Role.REGULATOR and caller.admin_level != "province":
        raise Forbidden("仅省级监管人员和系统管理员可导入台账")
    limit = settings.max_upload_mb * 2**20
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + CHUNK:
        raise _too_large(settings.max_upload_mb)
    if crs:
        try:
            parse_datum(crs)
        except UnknownDatumError:
            raise BadParameter(f"未知坐标系：{crs}") from None
    folder = Path(tempfile.mkdtemp(prefix="riskmap-upload-"))
    try:
        paths, names, total = [], [], 0
        for i, item in enumerate(files):
            name = Path(item.filename or f"upload-{i}").name or f"upload-{i}"
            target = folder / _disk_name(i, name)
            with open(target, "wb") as out:
                while chunk := await item.read(CHUNK):
                    total += len(chunk)
                    if total > limit:
                        raise _too_large(settings.max_upload_mb)
                    out.write(chunk)
            paths.append(str(target))
            names.append(name)
        provinces = [caller.scope] if caller.role == Role.REGULATOR and caller.scope else (
            settings.provinces)
        options = IngestOptions(h3_resolution=settings.h3_resolution, provinces=provinces,
                                default_crs=crs, kind=kind, max_bytes=limit)
        report = await run_in_threadpool(ingest, paths, store, options)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return _as_uploaded(report, dict(zip(paths, names, strict=True)))


def _as_uploaded(report: dict, names: dict[str, str]) -> dict:
    """The report with the uploaded file names in place of the server's temporary paths."""
    text = orjson.dumps(report, default=str).decode()
    for path, name in names.items():
        text = text.replace(orjson.dumps(path).decode()[1:-1], orjson.dumps(name).decode()[1:-1])
    return orjson.loads(text)
