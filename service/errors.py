"""Domain errors → HTTP problem details (RFC 9457) with a Chinese message, in one table.

Every 4xx ``detail`` reads "中文说明 / English": what is wrong, with the field's Chinese
name, and the form that is accepted. Request validation errors (pydantic's) are translated
here by their ``type`` (:func:`translate`); the messages the service raises itself are
written in both languages where they are raised (:func:`bilingual`), and one that still
has no English gets the status' English added (:data:`ENGLISH`).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from layers.labels import FIELD_LABELS
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
_CJK = re.compile(r"[\u3400-\u9fff]")


def bilingual(zh: str, en: str) -> str:
    """The one form of a message to a caller: Chinese, then " / ", then English."""
    return f"{zh} / {en}"


def _both(message: str, status: int) -> str:
    """``message`` in both languages: a Chinese one without English gets the status'
    English, an English one (a store's) the status' Chinese before it."""
    if " / " in message:
        return message
    if not _CJK.search(message):
        return bilingual(CHINESE.get(status, "请求错误"), message)
    return bilingual(message, ENGLISH.get(status, "request refused"))


def invalid(field: str, message: str, english: str | None = None) -> RequestValidationError:
    """A 422 naming the body field at fault (rendered like any request validation error);
    ``message`` in Chinese, ``english`` after it."""
    text = bilingual(message, english) if english else message
    return RequestValidationError([{"loc": ("body", field), "msg": text,
                                    "type": "value_error"}])


# request validation errors, translated -------------------------------------------------------

# what the request fields are called in Chinese (the layers' fields come from FIELD_LABELS)
FIELD_ZH = {
    "body": "请求体", "from": "当前状态 from", "to": "目标状态 to",
    "evidence": "整改情况或证据说明",
    "closed_on": "销号日期", "verified_by": "验收人", "checked_on": "检查日期",
    "result": "检查结果", "region": "抽取范围", "size": "抽取单位数", "seed": "随机种子",
    "inspectors": "检查人员", "limit": "每页条数", "offset": "起始位置", "today": "日期",
    "format": "格式", "entity_id": "对象编号", "action": "操作类型", "since": "起始时间",
    "until": "截止时间", "cell": "网格", "draw_id": "抽取编号", "token": "令牌",
    "csrf": "CSRF 令牌", "next": "跳转地址", "layer": "图层编号", "files": "上传文件",
    "crs": "坐标系", "bbox": "范围 bbox", "z": "缩放级别", "x": "瓦片列号", "y": "瓦片行号",
    "properties": "属性列表", "f": "响应格式", "datetime": "时间", "level": "级别",
}
# patterns the API uses, as a person would say them
PATTERNS: dict[str, tuple[str, str]] = {
    r"^[0-9A-HJ-NPQRTUWXY]{18}$": (
        "18 位统一社会信用代码（数字和大写字母，不含 I、O、S、V、Z）",
        "an 18-character unified social credit code (digits, capitals but I, O, S, V, Z)"),
    r"^[A-Za-z0-9_\-]{1,64}$": ("1–64 位字母、数字、下划线或连字符",
                                "1–64 letters, digits, _ or -"),
    r"^\d{6}$": ("6 位数字的行政区划代码，如 410105", "a 6-digit administrative code, e.g. 410105"),
    r"^[0-9a-f]{15}$": ("15 位小写十六进制的 H3 网格编号，如 8840954909fffff",
                        "a 15-hex-digit H3 cell id, e.g. 8840954909fffff"),
    r"^SJ\d{8}[0-9A-F]{8}$": ("抽取编号，如 SJ20261101ABCDEF12",
                              "a draw id like SJ20261101ABCDEF12"),
    r"^[a-z][a-z\-]{1,40}$": ("图层编号：小写字母和连字符，如 risk-cells",
                              "a layer id: lower-case letters and -, e.g. risk-cells"),
}
DATE_FORM = ("请使用 YYYY-MM-DD 格式（也接受 2024/3/1、2024年3月1日、20240301）",
             "use YYYY-MM-DD (2024/3/1, 2024年3月1日 and 20240301 are accepted too)")
DATETIME_FORM = ("请使用 YYYY-MM-DD 或 YYYY-MM-DDTHH:MM:SS（可带时区，如 +08:00；"
                 "不带时区按北京时间）",
                 "use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, optionally with a zone such as "
                 "+08:00 (Beijing time without one)")


def label(field: str, hints: dict[str, str] | None = None) -> str:
    """A field's Chinese name, with its API name when they differ: 销号日期（closed_on）.
    The name is the route's own (``hints``: from its parameters' descriptions), else the
    service's (:data:`FIELD_ZH`), else the layers' (``FIELD_LABELS``)."""
    zh = (hints or {}).get(field) or FIELD_ZH.get(field) or FIELD_LABELS.get(field)
    if zh is None or zh == field:
        return field
    return zh if field in zh else f"{zh}（{field}）"


def _choices(expected: str) -> tuple[str, str]:
    """pydantic's "'a', 'b' or 'c'" as 「a、b 或 c」 and "a, b or c"."""
    en = expected.replace("'", "")
    return en.replace(", ", "、").replace(" or ", " 或 "), en


def _n(n: object, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _pattern(pattern: str) -> tuple[str, str]:
    return PATTERNS.get(pattern, (f"符合格式 {pattern} 的值", f"a value matching {pattern}"))


def translate(error: dict[str, Any], hints: dict[str, str] | None = None) -> dict[str, Any]:
    """One pydantic error as ``{loc, field, type, msg}``; ``msg`` is "中文 / English",
    naming the field (see :func:`label`) and the form it takes."""
    loc = [str(p) if not isinstance(p, int) else p for p in error.get("loc", ())]
    names = [p for p in loc[1:] if isinstance(p, str)] or loc[:1] or ["body"]
    field = ".".join(str(p) for p in loc[1:]) or (str(loc[0]) if loc else "body")
    name = label(str(names[-1]), hints if loc and loc[0] in ("query", "path") else None)
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    zh, en = _message(kind, ctx, name, str(names[-1]), error.get("msg", ""))
    return {"loc": loc, "field": field, "type": kind, "msg": bilingual(zh, en)}


def _message(kind: str, ctx: dict, name: str, field: str, raw: str) -> tuple[str, str]:
    """(Chinese, English) for one error of pydantic ``kind``."""
    simple = {
        "missing": (f"缺少必填字段 {name}", f"{field} is required"),
        "extra_forbidden": (f"不支持的字段 {name}，请删除", f"unknown field {field}; remove it"),
        "string_type": (f"{name}须为文本", f"{field} must be a string"),
        "int_parsing": (f"{name}须为整数", f"{field} must be an integer"),
        "int_type": (f"{name}须为整数", f"{field} must be an integer"),
        "int_from_float": (f"{name}须为整数（不带小数）", f"{field} must be a whole number"),
        "float_parsing": (f"{name}须为数字", f"{field} must be a number"),
        "float_type": (f"{name}须为数字", f"{field} must be a number"),
        "bool_parsing": (f"{name}须为 true 或 false", f"{field} must be true or false"),
        "bool_type": (f"{name}须为 true 或 false", f"{field} must be true or false"),
        "list_type": (f"{name}须为数组，如 [\"a\", \"b\"]", f"{field} must be a JSON array"),
        "dict_type": (f"{name}须为 JSON 对象", f"{field} must be a JSON object"),
        "model_attributes_type": (f"{name}须为 JSON 对象", f"{field} must be a JSON object"),
        "model_type": (f"{name}须为 JSON 对象", f"{field} must be a JSON object"),
        "json_type": (f"{name}须为 JSON", f"{field} must be JSON"),
        "string_unicode": (f"{name}含无法识别的字符", f"{field} is not valid text"),
        "uuid_parsing": (f"{name}须为 UUID", f"{field} must be a UUID"),
    }
    if kind == "missing" and field == "body":
        return "缺少请求体：请发送 JSON 对象", "the request body is missing: send a JSON object"
    if kind in simple:
        return simple[kind]
    if kind in ("date_parsing", "date_from_datetime_parsing", "date_from_datetime_inexact",
                "date_type", "date_future", "date_past"):
        return f"{name}无法识别为日期：{DATE_FORM[0]}", f"{field} is not a date: {DATE_FORM[1]}"
    if kind in ("datetime_parsing", "datetime_type", "datetime_from_date_parsing",
                "datetime_object_invalid", "timezone_aware", "timezone_naive"):
        return (f"{name}无法识别为时间：{DATETIME_FORM[0]}",
                f"{field} is not a date or time: {DATETIME_FORM[1]}")
    if kind == "string_too_long":
        n = ctx.get("max_length")
        return (f"{name}过长：最多 {n} 个字符",
                f"{field} is too long: at most {_n(n, 'character')}")
    if kind == "string_too_short":
        n = ctx.get("min_length")
        return (f"{name}过短：至少 {n} 个字符",
                f"{field} is too short: at least {_n(n, 'character')}")
    if kind == "too_long":
        n = ctx.get("max_length")
        return f"{name}过多：最多 {n} 项", f"{field} has too many items: at most {n}"
    if kind == "too_short":
        n = ctx.get("min_length")
        return f"{name}过少：至少 {n} 项", f"{field} has too few items: at least {n}"
    if kind == "string_pattern_mismatch":
        zh, en = _pattern(str(ctx.get("pattern", "")))
        return f"{name}格式不正确：须为 {zh}", f"{field} is malformed: expected {en}"
    bounds = {"greater_than_equal": ("ge", "不能小于", "at least"),
              "greater_than": ("gt", "须大于", "greater than"),
              "less_than_equal": ("le", "不能大于", "at most"),
              "less_than": ("lt", "须小于", "less than")}
    if kind in bounds:
        key, zh, en = bounds[kind]
        return f"{name}{zh} {ctx.get(key)}", f"{field} must be {en} {ctx.get(key)}"
    if kind in ("literal_error", "enum"):
        zh, en = _choices(str(ctx.get("expected", "")))
        return f"{name}须为 {zh} 之一", f"{field} must be one of {en}"
    if kind == "json_invalid":
        return ("请求体不是有效的 JSON，请检查引号、逗号和括号",
                f"the body is not valid JSON ({ctx.get('error', 'syntax error')})")
    if kind in ("value_error", "assertion_error"):  # the service's own checks
        text = str(ctx.get("error", "")) or raw
        text = re.sub(r"^(Value|Assertion) error, ", "", text)
        if " / " in text:
            zh, en = text.split(" / ", 1)
        else:
            zh, en = text, f"invalid {field}"
        if field != "body" and field not in zh and name.split("（")[0] not in zh:
            zh = f"{name}：{zh}"
        return zh, en
    return f"{name}取值无效", f"invalid {field}: {raw}"


_HINTS: dict[int, dict[str, str]] = {}
_CLAUSE = re.compile(r"[，；：、（(,;: ]")


def param_labels(route: Any) -> dict[str, str]:
    """The Chinese names a route's query and path parameters give themselves: the first
    clause of a description in Chinese ("每页条数 1–1000" → 每页条数), by parameter."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return {}
    found = _HINTS.get(id(route))
    if found is None:
        found, stack = {}, [dependant]
        while stack:
            current = stack.pop()
            for p in (*current.query_params, *current.path_params):
                text = getattr(p.field_info, "description", None) or ""
                head = _CLAUSE.split(text.strip(), maxsplit=1)[0]
                if _CJK.search(head) and len(head) <= 12 and not head.startswith("默认"):
                    found.setdefault(getattr(p, "alias", None) or p.name, head)
            stack.extend(current.dependencies)
        _HINTS[id(route)] = found
    return found


# unknown query parameters -------------------------------------------------------------------

_DECLARED: dict[int, frozenset[str]] = {}


def known_query(request: Request) -> None:
    """A dependency that refuses (400) query parameters the route does not declare, naming
    them and the ones it takes: a misspelt filter must not silently return everything."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    declared = _DECLARED.get(id(route))
    if declared is None:
        declared = _DECLARED[id(route)] = _query_names(dependant)
    unknown = sorted(set(request.query_params) - declared)
    if unknown:
        names, taken = "、".join(unknown), ", ".join(sorted(declared)) or "—"
        raise BadParameter(bilingual(f"不支持的查询参数：{names}；可用参数：{taken}",
                                     f"unknown query parameter(s): {', '.join(unknown)}; "
                                     f"accepted: {taken}"))


def _query_names(dependant: Any) -> frozenset[str]:
    """The query parameters a route declares, its dependencies' included."""
    names: set[str] = set()
    stack = [dependant]
    while stack:
        current = stack.pop()
        names.update(getattr(p, "alias", None) or p.name for p in current.query_params)
        stack.extend(current.dependencies)
    return frozenset(names)


# rendering ------------------------------------------------------------------------------------

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
            response = problem(status, title, _both(str(exc), status))
            if status == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="riskmap"'
            return response
        app.add_exception_handler(exc_type, handler)

    @app.exception_handler(RequestValidationError)
    async def _invalid(req: Request, exc: RequestValidationError) -> JSONResponse:
        hints = param_labels(req.scope.get("route"))
        errors = [translate(e, hints) for e in exc.errors()]
        detail = errors[0]["msg"] if errors else bilingual(CHINESE[422], ENGLISH[422])
        if len(errors) > 1:
            zh, en = detail.split(" / ", 1)
            detail = bilingual(f"{zh}（另有 {len(errors) - 1} 处错误，见 errors）",
                               f"{en} (and {len(errors) - 1} more, see errors)")
        return problem(422, "请求参数无效", detail, errors=errors)

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
