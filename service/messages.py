"""Request validation errors (pydantic's) in the one message form, "中文 / English".

Each error is translated by its ``type`` (:func:`translate`): it names the field by its
Chinese name and its API name (:func:`label`: 销号日期（closed_on）) and says the form that
is accepted (:data:`PATTERNS`, :data:`DATE_FORM`, the bounds and choices pydantic reports).
:func:`register` renders them as a 422 problem; the other errors are
:mod:`service.errors`'.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from layers.labels import FIELD_LABELS
from service.errors import CHINESE, CJK, ENGLISH, bilingual, problem

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
    "crs": "坐标系", "bbox": "范围 bbox", "bbox-crs": "bbox 的坐标系", "z": "缩放级别",
    "x": "瓦片列号", "y": "瓦片行号", "properties": "属性列表", "f": "响应格式",
    "datetime": "时间", "level": "级别", "park": "园区编号", "city": "地市代码",
    "category": "设备种类代码", "collection_id": "要素集合编号", "feature_id": "要素编号",
}
# patterns the API uses, as a person would say them
PATTERNS: dict[str, tuple[str, str]] = {
    r"^[0-9A-HJ-NPQRTUWXY]{18}$": (
        "18 位统一社会信用代码（数字和大写字母，不含 I、O、S、V、Z）",
        "an 18-character unified social credit code (digits, capitals but I, O, S, V, Z)"),
    r"^[A-Za-z0-9_\-]{1,64}$": ("1–64 位字母、数字、下划线或连字符",
                                "1–64 letters, digits, _ or -"),
    r"^\d{6}$": ("6 位数字的行政区划代码，如 410105", "a 6-digit administrative code, e.g. 410105"),
    r"^\d{2}(\d{2}){0,2}$": ("2、4 或 6 位数字的行政区划代码，如 41、4101、410100、410105",
                             "a region code of 2, 4 or 6 digits, e.g. 41, 4101, 410100, "
                             "410105"),
    r"^\d{4}(\d{2})?$": ("4 或 6 位数字的地市代码，如 4101 或 410100",
                         "a city code of 4 or 6 digits, e.g. 4101 or 410100"),
    r"^(province|city|county)$": ("province、city 或 county", "province, city or county"),
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
        # an unknown field is named as sent: a label of a like-named layer field would mislead
        "extra_forbidden": (f"不支持的字段 {field}，请删除", f"unknown field {field}; remove it"),
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
                if CJK.search(head) and len(head) <= 12 and not head.startswith("默认"):
                    found.setdefault(getattr(p, "alias", None) or p.name, head)
            stack.extend(current.dependencies)
        _HINTS[id(route)] = found
    return found


def register(app: FastAPI) -> None:
    """Render request validation errors as a 422 problem: the first error's message as
    ``detail`` (with how many more there are), every error under ``errors``."""

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
