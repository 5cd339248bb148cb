"""The ``/ogc`` part of the app's OpenAPI document as OpenAPI 3.0.3.

FastAPI writes OpenAPI 3.1 (JSON Schema 2020-12); OGC API – Features Part 1's ``oas30``
class and several GIS clients look for 3.0. This is a pure rewrite of the document FastAPI
already builds: the paths under the prefix, the components they reference (transitively),
and each schema in the 3.0 dialect (``nullable`` instead of a ``"null"`` type, boolean
``exclusiveMinimum``, one ``example``, ``enum`` for ``const``, ``format: binary`` for
content keywords). Keywords 3.0 has no counterpart for are dropped rather than guessed.
"""

from __future__ import annotations

from typing import Any

VERSION = "3.0.3"

# the Schema Object's fields in OpenAPI 3.0 (besides ``x-`` extensions)
_SCHEMA_FIELDS = frozenset({
    "title", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems",
    "maxProperties", "minProperties", "required", "enum", "type", "allOf", "oneOf", "anyOf",
    "not", "items", "properties", "additionalProperties", "description", "format", "default",
    "nullable", "discriminator", "readOnly", "writeOnly", "xml", "externalDocs", "example",
    "deprecated", "$ref",
})
_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_REF = "#/components/"


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null" and len(schema) == 1


def _nullable(schema: dict) -> dict:
    """``schema`` that also admits null (a ``$ref`` takes no siblings in 3.0: wrap it)."""
    if "$ref" in schema:
        return {"allOf": [schema], "nullable": True}
    return {**schema, "nullable": True}


def schema30(schema: Any) -> Any:
    """One JSON Schema 2020-12 schema (as FastAPI writes it) in OpenAPI 3.0's dialect."""
    if not isinstance(schema, dict):
        return schema  # ``true``/``false`` schemas and bad input pass through unchanged
    s = dict(schema)
    nullable = False

    kind = s.get("type")
    if isinstance(kind, list):
        types = [t for t in kind if t != "null"]
        nullable = len(types) < len(kind)
        if len(types) == 1:
            s["type"] = types[0]
        elif not types:
            s.pop("type")
        else:  # several types: one branch each
            s.pop("type")
            s["anyOf"] = [{"type": t} for t in types] + list(s.get("anyOf", []))
    elif kind == "null":
        s.pop("type")
        nullable = True

    for key in ("anyOf", "oneOf"):
        if key in s:
            branches = [b for b in s[key] if not _is_null(b)]
            if len(branches) < len(s[key]):
                nullable = True
            if len(branches) == 1 and key == "anyOf":  # X or null → X, nullable
                s.pop(key)
                only = schema30(branches[0])
                if "$ref" in only:
                    s["allOf"] = [only, *s.get("allOf", [])]
                else:
                    for k, v in only.items():
                        s.setdefault(k, v)
            elif branches:
                s[key] = [schema30(b) for b in branches]
            else:
                s.pop(key)

    if "const" in s:
        s["enum"] = [s.pop("const")]
    examples = s.pop("examples", None)
    if isinstance(examples, list) and examples and "example" not in s:
        s["example"] = examples[0]
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = s.get(bound)
        if isinstance(value, int | float) and not isinstance(value, bool):
            tighter = (plain not in s or (value >= s[plain] if plain == "minimum"
                                           else value <= s[plain]))
            if tighter:
                s[plain] = value
                s[bound] = True
            else:
                s.pop(bound)
    if "contentMediaType" in s or "contentEncoding" in s:
        encoding = s.pop("contentEncoding", None)
        s.pop("contentMediaType", None)
        s["type"] = "string"
        s["format"] = "byte" if encoding == "base64" else "binary"

    if "items" in s:
        items = s["items"]
        s["items"] = schema30(items) if isinstance(items, dict) else {}
    elif "prefixItems" in s:  # a tuple: 3.0 knows only one schema for every item
        s["items"] = {"anyOf": [schema30(p) for p in s["prefixItems"]]}
    if s.get("type") == "array" and "items" not in s:
        s["items"] = {}
    if isinstance(s.get("properties"), dict):
        s["properties"] = {k: schema30(v) for k, v in s["properties"].items()}
    if isinstance(s.get("additionalProperties"), dict):
        s["additionalProperties"] = schema30(s["additionalProperties"])
    if "allOf" in s:  # anyOf and oneOf were converted with their null branches above
        s["allOf"] = [schema30(b) for b in s["allOf"]]
    if "not" in s:
        s["not"] = schema30(s["not"])

    out = {k: v for k, v in s.items() if k in _SCHEMA_FIELDS or k.startswith("x-")}
    if "$ref" in out and len(out) > 1:  # 3.0 ignores a $ref's siblings: keep them apart
        ref = out.pop("$ref")
        out["allOf"] = [{"$ref": ref}, *out.get("allOf", [])]
    if nullable:
        out = _nullable(out)
    return out


def _media(content: dict) -> dict:
    return {mt: _with_schema(obj) for mt, obj in content.items()}


def _with_schema(obj: Any) -> Any:
    """A parameter, header or media type with its schema (and content) converted."""
    if not isinstance(obj, dict):
        return obj
    out = dict(obj)
    if "schema" in out:
        out["schema"] = schema30(out["schema"])
    if isinstance(out.get("content"), dict):
        out["content"] = _media(out["content"])
    if isinstance(out.get("headers"), dict):
        out["headers"] = {k: _with_schema(v) for k, v in out["headers"].items()}
    return out


def _operation(op: dict) -> dict:
    out = dict(op)
    if "parameters" in out:
        out["parameters"] = [_with_schema(p) for p in out["parameters"]]
    if "requestBody" in out:
        out["requestBody"] = _with_schema(out["requestBody"])
    out["responses"] = {code: _with_schema(r) for code, r in
                        out.get("responses", {}).items()} or {
        "default": {"description": "响应"}}  # 3.0 requires at least one response
    out.pop("callbacks", None)  # they hold path items of their own; FastAPI writes none here
    return out


def _path_item(item: dict) -> dict:
    out = {}
    for key, value in item.items():
        if key in _HTTP_METHODS:
            out[key] = _operation(value)
        elif key == "parameters":
            out[key] = [_with_schema(p) for p in value]
        elif key in ("summary", "description", "servers", "$ref") or key.startswith("x-"):
            out[key] = value
    return out


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            found.add(ref[len(_REF):])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _component(components: dict, name: str) -> Any:
    """The component at ``section/name`` (JSON-pointer escapes undone), or None."""
    section, _, key = name.partition("/")
    key = key.replace("~1", "/").replace("~0", "~")
    return components.get(section, {}).get(key)


_CONVERT = {"schemas": schema30, "parameters": _with_schema, "headers": _with_schema,
            "responses": _with_schema, "requestBodies": _with_schema}
_KEEP_SECTIONS = ("schemas", "responses", "parameters", "examples", "requestBodies",
                  "headers", "securitySchemes", "links")


# OGC API's names of path parameters (GDAL's OAPIF driver looks for them)
OGC_PATH_PARAMETERS = {"collection_id": "collectionId", "feature_id": "featureId"}


def openapi30(app_openapi: dict, prefix: str = "/ogc", server: str | None = None) -> dict:
    """The paths of ``app_openapi`` (FastAPI's 3.1 document) at ``prefix`` and below, as a
    self-contained OpenAPI 3.0.3 document. ``app_openapi`` is not changed.

    With ``server`` (the URL ``prefix`` is served at), the document has that one server and
    its paths are relative to it (``/collections/{collectionId}/items``), path parameters
    named as OGC API names them: how OGC API clients (GDAL's OAPIF driver) look them up."""
    prefix = prefix.rstrip("/")
    paths = {path: _path_item(item) for path, item in app_openapi.get("paths", {}).items()
             if path == prefix or path.startswith(prefix + "/")}
    if server is not None:
        paths = {_relative(path, prefix): _renamed(item) for path, item in paths.items()}

    source = app_openapi.get("components", {})
    wanted: set[str] = set()
    _refs(paths, wanted)
    queue = list(wanted)
    while queue:  # components referencing components
        inner: set[str] = set()
        _refs(_component(source, queue.pop()), inner)
        queue.extend(inner - wanted)
        wanted |= inner
    security = [*app_openapi.get("security", []),
                *(req for item in paths.values() for op in item.values()
                  if isinstance(op, dict) for req in op.get("security", []))]
    schemes = {name for req in security for name in req}

    components: dict[str, dict] = {}
    for section in _KEEP_SECTIONS:
        for key, value in source.get(section, {}).items():
            escaped = key.replace("~", "~0").replace("/", "~1")
            scheme = section == "securitySchemes" and key in schemes
            if f"{section}/{escaped}" in wanted or scheme:
                convert = _CONVERT.get(section, lambda v: v)
                components.setdefault(section, {})[key] = convert(value)

    info = {k: v for k, v in app_openapi.get("info", {}).items() if k != "summary"}
    if isinstance(info.get("license"), dict):
        info["license"] = {k: v for k, v in info["license"].items() if k != "identifier"}
    used_tags = {t for item in paths.values() for op in item.values() if isinstance(op, dict)
                 for t in op.get("tags", [])}
    doc: dict[str, Any] = {"openapi": VERSION, "info": info}
    for key in ("servers", "security", "externalDocs"):
        if key in app_openapi:
            doc[key] = app_openapi[key]
    if server is not None:
        doc["servers"] = [{"url": server}]
    tags = [t for t in app_openapi.get("tags", []) if t.get("name") in used_tags]
    if tags:
        doc["tags"] = tags
    doc["paths"] = paths
    if components:
        doc["components"] = components
    return doc


def _relative(path: str, prefix: str) -> str:
    """``path`` below ``prefix``, with OGC's path parameter names (``/`` for ``prefix``)."""
    out = path[len(prefix):] or "/"
    for ours, theirs in OGC_PATH_PARAMETERS.items():
        out = out.replace("{" + ours + "}", "{" + theirs + "}")
    return out


def _renamed(item: dict) -> dict:
    """A path item whose path parameters carry OGC's names."""
    out = {}
    for method, op in item.items():
        if isinstance(op, dict) and isinstance(op.get("parameters"), list):
            op = {**op, "parameters": [
                {**p, "name": OGC_PATH_PARAMETERS.get(p.get("name"), p.get("name"))}
                if isinstance(p, dict) and p.get("in") == "path" else p
                for p in op["parameters"]]}
        out[method] = op
    return out
