"""Request bodies are bounded while they stream, before anything spools them.

A declared ``Content-Length`` over the path's limit is answered 413 at once, without
reading a byte; a body without one (chunked) is counted as it arrives and cut off with a
413 as soon as it passes the limit. Every path but the upload has a small limit (the
service's JSON and form bodies are a few kilobytes), and the upload route reads its body
only after the caller is authenticated and authorised (service/routes/uploads.py).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from starlette.exceptions import HTTPException

from service.errors import bilingual

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# JSON bodies (a hazard transition, a check, a random draw with its inspectors) and the
# login form are a few kilobytes; 1 MiB is generous and still cheap to hold in memory
DEFAULT_LIMIT = 1 << 20


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streaming body passes its limit (a 413 problem)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_text(limit))


def too_large_text(limit: int) -> str:
    return bilingual(f"请求体超过上限 {limit / 2**20:g} MB", f"request body larger than "
                     f"{limit / 2**20:g} MB")


BAD_LENGTH = bilingual("请求头 Content-Length 无效：须为不小于 0 的整数（字节数）",
                       "invalid Content-Length header: it must be a whole number of bytes, "
                       "0 or more")


class BodyLimit:
    """ASGI middleware: ``limits`` by exact path, then ``patterns`` (a regular expression
    the whole path matches, e.g. an upload under a hazard's id), ``default`` for every other
    path."""

    def __init__(self, app: ASGIApp, limits: dict[str, int] | None = None,
                 default: int = DEFAULT_LIMIT,
                 patterns: dict[str, int] | None = None) -> None:
        self.app, self.limits, self.default = app, dict(limits or {}), default
        self.patterns = [(re.compile(p), n) for p, n in (patterns or {}).items()]

    def _limit(self, path: str) -> int:
        if path in self.limits:
            return self.limits[path]
        return next((n for p, n in self.patterns if p.fullmatch(path)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        declared = _content_length(scope)
        if declared is not None and (declared < 0 or declared > limit):
            await _problem(send, 413 if declared > limit else 400,
                           too_large_text(limit) if declared > limit else BAD_LENGTH)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else -1
    return None


async def _problem(send: Send, status: int, detail: str) -> None:
    title = "上传文件过大" if status == 413 else "请求错误"
    body = orjson.dumps({"type": "about:blank", "title": title, "status": status,
                         "detail": detail})
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
