"""A unit's file (一企一档一码) as JSON, its QR code, and the page the code opens; scoped like
every reader of the layers (service/unit_file.py)."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from service.auth import Caller, current_caller
from service.deps import CachesDep, SettingsDep, StoreDep
from service.errors import BadParameter, Forbidden, NotFound, Unauthorized
from service.page_user import page_user
from service.security_headers import csp_nonce
from service.settings import Settings
from service.unit_file import (
    check_credit_code,
    public_link,
    qr_png,
    qr_svg,
    unit_file,
    visible_unit,
)
from web.unit_file import build_unit_page, build_unit_problem_page

router = APIRouter(tags=["units"])
CreditCode = Annotated[str, Path(min_length=1, max_length=64,
                                 description="统一社会信用代码（18 位，GB 32100）")]
QR_CACHE = "private, max-age=86400"  # the code of a unit never changes


def _base(request: Request, settings: Settings) -> str:
    """Where the public code points: RISKMAP_PUBLIC_URL, else this request's base URL."""
    return settings.public_url or str(request.base_url).rstrip("/")


@router.get("/api/units/{credit_code}/file", summary="使用单位档案（一企一档一码）")
def unit_file_json(request: Request, caller: Caller, store: StoreDep, settings: SettingsDep,
                   credit_code: CreditCode) -> Response:
    """The unit's file: the unit (level and reason, build status), its equipment with
    levels and reasons, its check schedule and checks, its hazards with their history, its
    measures (一企一策, or the small/micro checklist instead) and its public code."""
    body = unit_file(store, caller, credit_code, _base(request, settings))
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/api/units/{credit_code}/qr.svg", summary="使用单位二维码（SVG）",
            response_class=Response,
            responses={200: {"content": {"image/svg+xml": {}}}})
def unit_qr_svg(request: Request, caller: Caller, store: StoreDep, settings: SettingsDep,
                credit_code: CreditCode) -> Response:
    """The QR code of the unit's stable public URL ``{base}/units/{credit_code}``."""
    code = visible_unit(store, caller, credit_code)["credit_code"]
    return Response(qr_svg(public_link(_base(request, settings), code)),
                    media_type="image/svg+xml", headers={"Cache-Control": QR_CACHE})


@router.get("/api/units/{credit_code}/qr.png", summary="使用单位二维码（PNG）",
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def unit_qr_png(request: Request, caller: Caller, store: StoreDep, settings: SettingsDep,
                credit_code: CreditCode) -> Response:
    code = visible_unit(store, caller, credit_code)["credit_code"]
    return Response(qr_png(public_link(_base(request, settings), code)),
                    media_type="image/png", headers={"Cache-Control": QR_CACHE})


@router.get("/units/{credit_code}", summary="使用单位档案页（扫码打开）",
            response_class=HTMLResponse)
def unit_page(request: Request, store: StoreDep, settings: SettingsDep, caches: CachesDep,
              credit_code: CreditCode) -> Response:
    """The page a unit's QR code opens: its file, for a signed-in user in whose scope it
    is; anyone else is sent to sign in first and comes back here."""
    try:
        caller = current_caller(request, store, settings, caches)
    except Unauthorized:
        code = credit_code.strip().upper()
        target = f"/units/{code}" if code.isascii() and code.isalnum() else "/map"
        return RedirectResponse(f"/login?next={target}", status_code=303)
    user = page_user(caller)
    nonce = csp_nonce(request)
    try:
        check_credit_code(credit_code)
        body = unit_file(store, caller, credit_code, _base(request, settings))
    except BadParameter as exc:
        return HTMLResponse(build_unit_problem_page(str(exc), user=user, nonce=nonce),
                            status_code=400)
    except (NotFound, Forbidden) as exc:
        status = 404 if isinstance(exc, NotFound) else 403
        return HTMLResponse(build_unit_problem_page(str(exc), user=user, nonce=nonce),
                            status_code=status)
    return HTMLResponse(build_unit_page(body, user=user, nonce=nonce))
