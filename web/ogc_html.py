"""The HTML encoding of ``/ogc`` (OGC API – Features Part 1 and Common ``html`` classes).

Pure renderers: each takes the JSON document a ``/ogc`` route already builds (landing page,
conformance, collections, one collection, a FeatureCollection page, one feature, a
queryables schema) and the request's CSP nonce, and returns a whole page in the layout of
:mod:`web.pages`. Every value from data goes through the autoescaping templates; a link is
kept only when it is http(s) or relative (:func:`safe_href`), so a ``javascript:`` href in
a document never becomes clickable. The small maps (web/static/js/ogc.js, vendored Leaflet)
draw the features a page already holds, or a collection's first page fetched as JSON, and
set every value as text.

:func:`wants_html` is the negotiation the routes use: ``f`` first, then ``Accept``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import orjson

from web.pages import PageUser, render

HTML_FORMATS = frozenset({"html"})
JSON_FORMATS = frozenset({"json", "geojson"})
JSON_TYPES = ("application/json", "application/geo+json")
MAP_FEATURES = 10_000  # a page draws at most this many features on its map
_CONTROL = re.compile(r"[\x00-\x20\x7f]")  # browsers drop these inside a URL's scheme

REL_ZH = {
    "self": "本页", "alternate": "其他格式", "service-desc": "接口定义（OpenAPI）",
    "service-doc": "接口文档", "conformance": "符合的标准类", "data": "要素集合",
    "items": "要素", "collection": "所属要素集合", "next": "下一页", "prev": "上一页",
    "queryables": "可查询属性", "tiles": "瓦片", "license": "许可",
    "http://www.opengis.net/def/rel/ogc/1.0/conformance": "符合的标准类",
    "http://www.opengis.net/def/rel/ogc/1.0/data": "要素集合",
    "http://www.opengis.net/def/rel/ogc/1.0/queryables": "可查询属性",
    "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector": "矢量瓦片集",
}
TYPE_ZH = {"string": "文本", "integer": "整数", "number": "数值", "boolean": "是/否",
           "object": "对象", "array": "列表"}
_TILES_RELS = ("tiles", "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector")


# content negotiation ---------------------------------------------------------------------------

def _accepted(accept: str) -> list[tuple[str, float, int]]:
    """(media range, q, position) of each entry of an Accept header."""
    out = []
    for position, part in enumerate(accept.split(",")):
        fields = [f.strip() for f in part.split(";")]
        kind = fields[0].lower()
        if not kind:
            continue
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
                if not math.isfinite(q):
                    q = 0.0
        out.append((kind, max(0.0, min(q, 1.0)), position))
    return out


def _quality(entries: list[tuple[str, float, int]], media: str) -> tuple[float, int, bool]:
    """q of ``media`` by the most specific matching range (RFC 9110 §12.5.1), the range's
    position, and whether the range names ``media`` itself (not a wildcard)."""
    major = media.split("/")[0]
    best: tuple[int, float, int] | None = None
    for kind, q, position in entries:
        specificity = 3 if kind == media else 2 if kind == f"{major}/*" else \
            1 if kind == "*/*" else 0
        if specificity and (best is None or specificity > best[0]):
            best = (specificity, q, position)
    if best is None:
        return 0.0, 1 << 30, False
    return best[1], best[2], best[0] == 3


def wants_html(accept: str | None, f: str | None) -> bool:
    """Whether to answer with HTML: ``f=html`` yes, ``f=json`` (or any other ``f``) no; else
    by ``Accept``: HTML when ``text/html`` has a higher quality than JSON, or the same and is
    named before it. A browser names text/html first; GDAL, OWSLib and curl send JSON types
    or ``*/*`` (or nothing), and get JSON."""
    if f is not None:
        return f.strip().lower() in HTML_FORMATS
    if not accept:
        return False
    entries = _accepted(accept[:2000])
    html_q, html_at, html_named = _quality(entries, "text/html")
    if html_q <= 0 or (not html_named and not any(k == "text/*" for k, _, _ in entries)):
        return False
    json_q, json_at = 0.0, 1 << 30
    for media in JSON_TYPES:
        q, at, _ = _quality(entries, media)
        if (q, -at) > (json_q, -json_at):
            json_q, json_at = q, at
    return html_q > json_q or (html_q == json_q and html_at < json_at)


# values as a page shows them -------------------------------------------------------------------

def safe_href(href: Any) -> str | None:
    """``href`` if it is an http(s) or a relative URL, else None (``javascript:``,
    ``data:`` and the like never become a link)."""
    if not isinstance(href, str) or not href.strip() or len(href) > 8192:
        return None
    cleaned = _CONTROL.sub("", href)
    try:
        scheme = urlsplit(cleaned).scheme.lower()
    except ValueError:
        return None
    if scheme and scheme not in ("http", "https"):
        return None
    if not scheme and ":" in cleaned.split("/", 1)[0]:  # "javascript&colon;…" and kin
        return None
    return href.strip()


def with_format(href: str, f: str) -> str:
    """``href`` with its ``f`` parameter set to ``f``."""
    parts = urlsplit(href)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "f"]
    query.append(("f", f))
    return urlunsplit(parts._replace(query=urlencode(query)))


def display(value: Any) -> str:
    """A property value as text: 是/否, numbers without float noise, lists and objects as
    JSON, "—" for nothing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e15 else str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list | tuple):
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    return str(value)


def _links(doc: Mapping[str, Any], skip: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """The document's links that may be shown: safe href, Chinese relation name."""
    out = []
    for link in doc.get("links") or []:
        if not isinstance(link, Mapping):
            continue
        href = safe_href(link.get("href"))
        rel = str(link.get("rel") or "")
        if href is None or rel in skip:
            continue
        out.append({"href": href, "rel": rel, "rel_zh": REL_ZH.get(rel, rel),
                    "title": str(link.get("title") or REL_ZH.get(rel, rel) or href),
                    "type": str(link.get("type") or "")})
    return out


def _link(doc: Mapping[str, Any], *rels: str) -> str | None:
    for link in doc.get("links") or []:
        if isinstance(link, Mapping) and link.get("rel") in rels:
            href = safe_href(link.get("href"))
            if href:
                return href
    return None


def _json_view(doc: Mapping[str, Any]) -> str | None:
    """This resource as JSON: its self link with ``f=json``."""
    own = _link(doc, "self")
    return with_format(own, "json") if own else None


def column_titles(queryables: Mapping[str, Any] | None = None,
                  titles: Mapping[str, str] | None = None) -> dict[str, str]:
    """Chinese column titles by property name: ``titles`` given, else the queryables
    schema's property titles."""
    out: dict[str, str] = {}
    props = (queryables or {}).get("properties")
    if isinstance(props, Mapping):
        for name, schema in props.items():
            if isinstance(schema, Mapping) and isinstance(schema.get("title"), str):
                out[str(name)] = schema["title"]
    out.update({str(k): str(v) for k, v in (titles or {}).items()})
    return out


def _bbox(doc: Mapping[str, Any]) -> list[float] | None:
    """A collection's first spatial extent box, if it is 4 (or 6) finite numbers."""
    try:
        box = doc["extent"]["spatial"]["bbox"][0]
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(box, list) or len(box) not in (4, 6):
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
               for v in box):
        return None
    return [box[0], box[1], box[3], box[4]] if len(box) == 6 else list(box)


def _interval(doc: Mapping[str, Any]) -> list[str] | None:
    try:
        first = doc["extent"]["temporal"]["interval"][0]
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(first, list) or len(first) != 2:
        return None
    return [display(v) if v is not None else ".." for v in first]


def _columns(features: list[Mapping[str, Any]], titles: Mapping[str, str]) -> list[tuple]:
    """(property name, column title) in the order the titles (the registry's field order)
    give, then in order of appearance."""
    seen: dict[str, None] = {}
    for feature in features:
        props = feature.get("properties")
        if isinstance(props, Mapping):
            seen.update(dict.fromkeys(str(k) for k in props))
    ordered = [k for k in titles if k in seen] + [k for k in seen if k not in titles]
    return [(k, titles.get(k, k)) for k in ordered]


def _map_features(features: list[Mapping[str, Any]], key: str | None) -> list[dict]:
    """What a page's map draws: each feature's id, geometry and the label its tooltip shows."""
    out = []
    for feature in features[:MAP_FEATURES]:
        geometry = feature.get("geometry")
        if not isinstance(geometry, Mapping):
            continue
        props = feature.get("properties") if isinstance(feature.get("properties"),
                                                          Mapping) else {}
        label = props.get(key) if key else None
        out.append({"type": "Feature", "geometry": geometry, "properties": {
            "id": display(feature.get("id")), "label": display(label or feature.get("id"))}})
    return out


_LABEL_KEYS = ("name", "unit_name", "park_name", "region_name", "title", "label")


def _label_key(columns: list[tuple]) -> str | None:
    names = [c[0] for c in columns]
    return next((k for k in _LABEL_KEYS if k in names), None)


def _item_href(base: str | None, feature_id: Any) -> str | None:
    if base is None or feature_id is None:
        return None
    return base.rstrip("/") + "/" + quote(str(feature_id), safe="")


def _page(template: str, *, nonce: str, user: PageUser | None, title: str,
          doc: Mapping[str, Any], **context: Any) -> str:
    return render(f"ogc/{template}", user=user, nonce=nonce, title=title,
                  json_href=_json_view(doc), **context)


# the pages --------------------------------------------------------------------------------------

def landing_page(doc: Mapping[str, Any], *, nonce: str, user: PageUser | None = None) -> str:
    """The landing page: title, description and every link."""
    return _page("landing.html.j2", nonce=nonce, user=user, doc=doc,
                 title=str(doc.get("title") or "OGC API"),
                 description=str(doc.get("description") or ""),
                 links=_links(doc))


def conformance_page(doc: Mapping[str, Any], *, nonce: str,
                     user: PageUser | None = None) -> str:
    """The conformance classes declared, as a list (each URI is a link if http(s))."""
    classes = [str(c) for c in doc.get("conformsTo") or []]
    return _page("conformance.html.j2", nonce=nonce, user=user, doc=doc,
                 title="符合的标准类",
                 classes=[{"uri": c, "href": safe_href(c) if c.startswith("http") else None}
                          for c in classes],
                 links=_links(doc, skip=("self",)))


def _collection_row(c: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": str(c.get("id") or ""), "title": str(c.get("title") or c.get("id") or ""),
            "description": str(c.get("description") or ""),
            "href": _link(c, "self"), "items_href": _link(c, "items"),
            "tiles": _link(c, *_TILES_RELS),
            "queryables": _link(c, "queryables",
                                "http://www.opengis.net/def/rel/ogc/1.0/queryables")}


def collections_page(doc: Mapping[str, Any], *, nonce: str,
                     user: PageUser | None = None) -> str:
    """The collections as a table: title, description, links to the items and tiles."""
    rows = [_collection_row(c) for c in doc.get("collections") or []
            if isinstance(c, Mapping)]
    return _page("collections.html.j2", nonce=nonce, user=user, doc=doc, title="要素集合",
                 rows=rows, links=_links(doc, skip=("self",)))


def collection_page(doc: Mapping[str, Any], *, nonce: str, user: PageUser | None = None,
                    map_limit: int = 100) -> str:
    """One collection: its metadata, extent and a small map of the extent and of its first
    ``map_limit`` features (fetched by the page as JSON from the items link)."""
    row = _collection_row(doc)
    items_json = with_format(row["items_href"], "json") if row["items_href"] else None
    if items_json:
        parts = urlsplit(items_json)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "limit"]
        items_json = urlunsplit(parts._replace(query=urlencode(
            [*query, ("limit", str(map_limit))])))
    crs = [str(c) for c in doc.get("crs") or []]
    return _page("collection.html.j2", nonce=nonce, user=user, doc=doc,
                 title=row["title"], c=row, bbox=_bbox(doc), interval=_interval(doc),
                 map_limit=map_limit,
                 crs=crs, storage_crs=str(doc.get("storageCrs") or ""),
                 item_type=str(doc.get("itemType") or ""),
                 map_facts={"bbox": _bbox(doc), "items": items_json, "latLon": False},
                 links=_links(doc, skip=("self",)))


def items_page(doc: Mapping[str, Any], *, nonce: str, user: PageUser | None = None,
               title: str | None = None, queryables: Mapping[str, Any] | None = None,
               titles: Mapping[str, str] | None = None, lat_lon: bool = False) -> str:
    """A page of features: a table (id and properties, Chinese column titles from
    ``titles`` or the ``queryables``), prev/next links and a map of the page's features.
    ``lat_lon``: the coordinates are latitude first (``crs`` EPSG:4490)."""
    features = [f for f in doc.get("features") or [] if isinstance(f, Mapping)]
    columns = _columns(features, column_titles(queryables, titles))
    self_href = _link(doc, "self")
    base = urlsplit(self_href).path if self_href else None
    rows = [{"id": display(f.get("id")), "href": _item_href(base, f.get("id")),
             "cells": [display((f.get("properties") or {}).get(k)) for k, _ in columns]}
            for f in features]
    collection_title = title or next(
        (str(link.get("title")) for link in doc.get("links") or []
         if isinstance(link, Mapping) and link.get("rel") == "collection"
         and link.get("title")), "要素")
    return _page("items.html.j2", nonce=nonce, user=user, doc=doc,
                 title=f"{collection_title} · 要素",
                 collection_title=collection_title, collection_href=_link(doc, "collection"),
                 columns=columns, rows=rows,
                 matched=doc.get("numberMatched"), returned=doc.get("numberReturned",
                                                                    len(features)),
                 prev=_link(doc, "prev"), next=_link(doc, "next"),
                 map_facts={"features": _map_features(features, _label_key(columns)),
                            "latLon": bool(lat_lon)})


def item_page(doc: Mapping[str, Any], *, nonce: str, user: PageUser | None = None,
              queryables: Mapping[str, Any] | None = None,
              titles: Mapping[str, str] | None = None, lat_lon: bool = False) -> str:
    """One feature: its properties as a table (Chinese names where known) and a map."""
    columns = _columns([doc], column_titles(queryables, titles))
    props = doc.get("properties") if isinstance(doc.get("properties"), Mapping) else {}
    rows = [(name, label, display(props.get(name))) for name, label in columns]
    collection_title = next((str(link.get("title")) for link in doc.get("links") or []
                             if isinstance(link, Mapping) and link.get("rel") == "collection"
                             and link.get("title")), "要素集合")
    feature_id = display(doc.get("id"))
    return _page("item.html.j2", nonce=nonce, user=user, doc=doc,
                 title=f"{collection_title} · {feature_id}", feature_id=feature_id,
                 collection_title=collection_title, collection_href=_link(doc, "collection"),
                 rows=rows, links=_links(doc, skip=("self",)),
                 map_facts={"features": _map_features([doc], _label_key(columns)),
                            "latLon": bool(lat_lon)})


def queryables_page(doc: Mapping[str, Any], *, nonce: str,
                    user: PageUser | None = None) -> str:
    """A queryables schema: each property's name, Chinese title, type and description."""
    props = doc.get("properties") if isinstance(doc.get("properties"), Mapping) else {}
    rows = []
    for name, schema in props.items():
        schema = schema if isinstance(schema, Mapping) else {}
        kind = schema.get("type")
        if not kind and isinstance(schema.get("format"), str):
            kind = schema["format"]
        if not kind and "$ref" in schema:
            kind = "geometry" if "geojson" in str(schema["$ref"]).lower() else "引用"
        kind_text = "、".join(TYPE_ZH.get(str(k), str(k)) for k in kind) \
            if isinstance(kind, list) else TYPE_ZH.get(str(kind), str(kind or ""))
        if "format" in schema and schema.get("type"):
            kind_text += f"（{schema['format']}）"
        rows.append({"name": str(name), "title": str(schema.get("title") or ""),
                     "type": kind_text, "description": str(schema.get("description") or ""),
                     "enum": [display(v) for v in schema.get("enum") or []][:50]})
    return _page("queryables.html.j2", nonce=nonce, user=user, doc=doc,
                 title=f"{doc.get('title') or ''} · 可查询属性".lstrip(" ·"),
                 rows=rows, links=_links(doc, skip=("self",)))
