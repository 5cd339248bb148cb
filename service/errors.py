"""Domain errors → HTTP problem details (RFC 9457) with a Chinese message, in one table."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.auth import Forbidden, Unauthorized
from service.store.errors import ConflictError, MissingRow, StaleLayers, StoreError

log = logging.getLogger("riskmap")


class NotFound(LookupError):
    """A resource that does not exist (or is outside the caller's scope)."""


class BadParameter(ValueError):
    """A query parameter that is well-formed but not acceptable."""


# exception type -> (status, Chinese title)
STATUS: dict[type[BaseException], tuple[int, str]] = {
    NotFound: (404, "未找到"),
    BadParameter: (400, "参数错误"),
    Unauthorized: (401, "未认证"),
    Forbidden: (403, "无权访问"),
    ConflictError: (409, "数据已被他人修改"),
    MissingRow: (404, "未找到"),
    StoreError: (503, "数据存储不可用"),
    StaleLayers: (503, "图层需要重新生成"),
}


def invalid(field: str, message: str) -> RequestValidationError:
    """A 422 naming the body field at fault (rendered like any request validation error)."""
    return RequestValidationError([{"loc": ("body", field), "msg": message,
                                    "type": "value_error"}])


def problem(status: int, title: str, detail: str | None = None, **extra: object) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def register(app: FastAPI) -> None:
    for exc_type, (status, title) in STATUS.items():
        def handler(_req: Request, exc: BaseException, status: int = status,
                    title: str = title) -> JSONResponse:
            if status >= 500 and not isinstance(exc, StaleLayers):  # no internals out
                log.exception("store error", exc_info=exc)
                return problem(status, title)
            response = problem(status, title, str(exc))
            if status == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="riskmap"'
            return response
        app.add_exception_handler(exc_type, handler)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return problem(422, "请求参数无效", "invalid request parameters", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "未找到", 405: "不支持的请求方法", 413: "上传文件过大"}
        return problem(exc.status_code, titles.get(exc.status_code, "请求错误"), str(exc.detail))

    @app.exception_handler(Exception)
    async def _crash(_req: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem(500, "服务器内部错误")
