"""Domain errors → HTTP problem details (RFC 9457) with a Chinese message, in one table.

Every 4xx ``detail`` reads "中文说明 / English" (:func:`bilingual`): what is wrong, with the
field's Chinese name and its API name, and the form that is accepted. The messages the
service raises are written in both languages where they are raised; one that still has no
English gets the status' English added (:data:`ENGLISH`). Request validation errors
(pydantic's) are translated by :mod:`service.messages`.
"""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.store.errors import ConflictError, MissingRow, StaleLayers, StoreError

log = logging.getLogger("riskmap")


class NotFound(LookupError):
    """A resource that does not exist (or is outside the caller's scope)."""


class BadParameter(ValueError):
    """A query parameter that is well-formed but not acceptable."""


class Unauthorized(PermissionError):
    """No token, or one that no enabled user holds (401)."""


class Forbidden(PermissionError):
    """A valid caller asking for something their role or scope does not cover (403)."""


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
# the English added to a Chinese message that has none, and the Chinese put before an
# English one (a store's message), by status
ENGLISH = {400: "bad parameter", 401: "sign in first: send a bearer token or log in",
           403: "not allowed for your role or region", 404: "not found (or outside your region)",
           405: "method not allowed", 409: "changed by someone else meanwhile; reload and retry",
           413: "upload too large", 422: "invalid request",
           503: "the layers are out of date: run riskmap build"}
CHINESE = {400: "参数错误", 401: "需要登录：请提供 Bearer 令牌或先登录",
           403: "您的角色或范围无权进行此操作", 404: "未找到（或不在您的管辖范围内）",
           405: "不支持的请求方法", 409: "数据已被他人修改，请刷新后重试",
           413: "上传文件过大", 422: "请求参数无效"}
CJK = re.compile(r"[\u3400-\u9fff]")


def bilingual(zh: str, en: str) -> str:
    """The one form of a message to a caller: Chinese, then " / ", then English."""
    return f"{zh} / {en}"


def _both(message: str, status: int) -> str:
    """``message`` in both languages: a Chinese one without English gets the status'
    English, an English one (a store's) the status' Chinese before it."""
    if " / " in message:
        return message
    if not CJK.search(message):
        return bilingual(CHINESE.get(status, "请求错误"), message)
    return bilingual(message, ENGLISH.get(status, "request refused"))


def invalid(field: str, zh: str, en: str) -> RequestValidationError:
    """A 422 naming the body field at fault (rendered like any request validation error,
    :mod:`service.messages`): ``zh`` in Chinese, ``en`` after it."""
    return RequestValidationError([{"loc": ("body", field), "msg": bilingual(zh, en),
                                    "type": "value_error"}])


# rendering ------------------------------------------------------------------------------------

def problem(status: int, title: str, detail: str | None = None, **extra: object) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def register(app: FastAPI) -> None:
    """The handlers of the error types above, of HTTP errors and of anything unhandled
    (request validation errors: :func:`service.messages.register`)."""
    for exc_type, (status, title) in STATUS.items():
        def handler(_req: Request, exc: BaseException, status: int = status,
                    title: str = title) -> JSONResponse:
            if status >= 500 and not isinstance(exc, StaleLayers):  # no internals out
                log.exception("store error", exc_info=exc)
                return problem(status, title)
            response = problem(status, title, _both(str(exc), status))
            if status == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="riskmap"'
            return response
        app.add_exception_handler(exc_type, handler)

    @app.exception_handler(StarletteHTTPException)
    async def _http(req: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "未找到", 405: "不支持的请求方法", 413: "上传文件过大"}
        status = exc.status_code
        if status == 404 and exc.detail in (None, "Not Found"):  # no such route
            detail = bilingual(f"没有该地址 {req.url.path}，接口列表见 /docs",
                               f"no such path {req.url.path}; see /docs for the API")
        elif status == 405 and exc.detail in (None, "Method Not Allowed"):
            allowed = exc.headers.get("Allow", "") if exc.headers else ""
            detail = bilingual(f"{req.url.path} 不支持 {req.method} 请求；可用：{allowed}",
                               f"{req.method} is not allowed on {req.url.path}; "
                               f"allowed: {allowed}")
        else:
            detail = _both(str(exc.detail), status)
        response = problem(status, titles.get(status, "请求错误"), detail)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(Exception)
    async def _crash(_req: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem(500, "服务器内部错误")
