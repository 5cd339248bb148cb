"""OGC API – Tiles (Part 1) documents for the layers' vector tiles: the tile matrix set,
the tilesets of a collection, a tileset's metadata (OGC 2D Tile Matrix Set and Tileset
Metadata 2.0) and its TileJSON 3.0.0; the tile address an OGC tile URL names.

Pure builders: each takes the ``/ogc`` root URL and what the caller may see, and returns a
JSON-ready dict. The tiles themselves are those of ``/tiles/{layer}/{z}/{x}/{y}.mvt``
(:func:`service.tiles.serve`), in WebMercatorQuad from zoom 0 to :data:`MAX_ZOOM`.
"""

from __future__ import annotations

from functools import lru_cache

import morecantile
import orjson
from fastapi import Request

from layers.registry import LAYERS, LayerSpec
from service.auth import Principal
from service.errors import BadParameter, NotFound, bilingual
from service.mvt import MAX_ZOOM, MEDIA_TYPE, Tile
from service.params import check_known
from service.selection import can_see
from service.tiles import AGGREGATE_BELOW_ZOOM, aggregates, level_counts, tile_fields

TMS_ID = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
CRS_3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
JSON = "application/json"
TMS_JSON = "application/json"  # OGC TMS 2.0 JSON has no registered media type of its own
REL = "http://www.opengis.net/def/rel/ogc/1.0/"
REL_TILESETS_VECTOR = REL + "tilesets-vector"
REL_TILING_SCHEME = REL + "tiling-scheme"
REL_TILING_SCHEMES = REL + "tiling-schemes"
REL_GEODATA = REL + "geodata"
TILES = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/"
# the classes this module and its routes back (the lead's CONFORMANCE list declares them)
CONFORMANCE = [TILES + name for name in ("core", "tileset", "tilesets-list",
                                         "geodata-tilesets", "mvt")]
TILE_INDEX_MAX = (1 << MAX_ZOOM) - 1
# JSON Schema of the stores' field types as the tiles carry them (JSON and dates as text)
SCHEMA_TYPES = {"text": {"type": "string"}, "float": {"type": "number"},
                "int": {"type": "integer"}, "bool": {"type": "boolean"},
                "date": {"type": "string", "format": "date"},
                "timestamp": {"type": "string", "format": "date-time"},
                "json": {"type": "string", "contentMediaType": JSON}}
GEOMETRY_DIMENSION = {"point": 0, "polygon": 2, "multipolygon": 2}


# --------------------------------------------------------------------------- tile matrix set

@lru_cache(maxsize=1)
def tile_matrix_set() -> dict:
    """The OGC TMS 2.0 JSON definition of WebMercatorQuad (zoom 0–24), from morecantile."""
    tms = morecantile.tms.get(TMS_ID)
    return orjson.loads(tms.model_dump_json(exclude_none=True))


def tile_matrix_sets(base: str) -> dict:
    """The list of tile matrix sets (``/ogc/tileMatrixSets``): WebMercatorQuad only."""
    tms = tile_matrix_set()
    return {
        "tileMatrixSets": [{
            "id": TMS_ID, "title": tms.get("title", TMS_ID), "uri": TMS_URI, "crs": CRS_3857,
            "links": [{"rel": "self", "type": TMS_JSON, "title": tms.get("title", TMS_ID),
                       "href": f"{base}/tileMatrixSets/{TMS_ID}"},
                      {"rel": REL_TILING_SCHEME, "type": TMS_JSON, "title": TMS_ID,
                       "href": f"{base}/tileMatrixSets/{TMS_ID}"}]}],
        "links": [{"rel": "self", "type": JSON, "title": "瓦片矩阵集列表",
                   "href": f"{base}/tileMatrixSets"}]}


def check_tms(tms_id: str) -> None:
    """404 for any tile matrix set but WebMercatorQuad."""
    if tms_id != TMS_ID:
        raise NotFound(bilingual(
            f"没有瓦片矩阵集 {tms_id[:64]}：仅提供 {TMS_ID}（见 /ogc/tileMatrixSets）",
            f"no tile matrix set {tms_id[:64]}: only {TMS_ID} is served "
            "(see /ogc/tileMatrixSets)"))


# --------------------------------------------------------------------------- scope, address

def check_query(request: Request, allowed: frozenset[str], f: str | None = None) -> None:
    """400 for a query parameter not in ``allowed`` and for any format but JSON: these
    documents are JSON only (Tiles 1.0 leaves HTML to its own conformance class)."""
    check_known(request, allowed)
    if f is not None and f.lower() != "json":
        raise BadParameter(bilingual(f"响应格式（f）须为 json：仅提供 JSON，不提供 {f[:32]}",
                                     f"f must be json: only JSON is served, not {f[:32]}"))



def visible(caller: Principal, collection_id: str) -> LayerSpec:
    """The map layer, if the caller may see any of it; else 404 as for an unknown id, in the
    words ``/ogc/collections/{id}`` uses (so the two never tell apart "not yours")."""
    spec = LAYERS.get(collection_id)
    if spec is None or spec.geometry is None or not can_see(caller, spec):
        raise NotFound(bilingual(
            f"没有要素集合 {collection_id[:64]}（或不在您的权限范围内）：要素集合编号"
            "（collection_id）见 /ogc/collections",
            f"no collection {collection_id[:64]} (or it is outside your scope): see "
            "/ogc/collections for the collection ids (collection_id)"))
    return spec


def tile_address(tile_matrix: str, tile_row: str, tile_col: str) -> Tile:
    """The tile an OGC tile URL names: 400 unless each is a whole number (at most 8 digits),
    404 for a tile matrix outside 0–22 or a row or column outside it (Tiles 1.0
    /req/core/tc-error: not a tile of the tileset)."""
    values = []
    for name, zh, text in (("tileMatrix", "瓦片矩阵（缩放级别）", tile_matrix),
                           ("tileRow", "瓦片行号", tile_row), ("tileCol", "瓦片列号", tile_col)):
        if not (text.isascii() and text.isdigit() and len(text) <= 8):
            raise BadParameter(bilingual(f"{zh}（{name}）须为非负整数，而非 {text[:32]!r}",
                                         f"{name} must be a non-negative integer, "
                                         f"not {text[:32]!r}"))
        values.append(int(text))
    z, row, col = values
    if z > MAX_ZOOM:
        raise NotFound(bilingual(
            f"瓦片矩阵（tileMatrix）{z} 不在瓦片集内：须为 0–{MAX_ZOOM}",
            f"tileMatrix {z} is not in the tileset: it must be within 0–{MAX_ZOOM}"))
    last = (1 << z) - 1
    if row > last or col > last:
        raise NotFound(bilingual(
            f"瓦片不在瓦片集内：瓦片矩阵 {z} 的行号（tileRow）和列号（tileCol）须在 0–{last} 之间",
            f"no such tile: at tileMatrix {z} tileRow and tileCol must be within 0–{last}"))
    return Tile(z, col, row)


# --------------------------------------------------------------------------- fields

def layer_fields(spec: LayerSpec) -> dict[str, tuple[str, str]]:
    """The properties a layer's tiles carry by default: name → (store type, Chinese title).
    ``fid`` and the row fields; for layers aggregated at low zoom also the H3 cells'
    ``h3``, ``resolution``, ``count`` and counts by level."""
    kinds = dict(spec.fields)
    labels = spec.field_labels
    out = {"fid": ("text", "要素编号")}
    out |= {name: (kinds[name], labels[name]) for name in tile_fields(spec)}
    if aggregates(spec):
        out.setdefault("h3", ("text", "H3 网格"))
        out.setdefault("resolution", ("int", "H3 分辨率"))
        out.setdefault("count", ("int", "数量"))
        for value, column in level_counts(spec):
            out.setdefault(column, ("int", f"{value}数量"))
    return out


def properties_schema(spec: LayerSpec) -> dict:
    """JSON Schema of the layer's tile properties, each with its Chinese title."""
    return {"type": "object", "properties": {
        name: {**SCHEMA_TYPES.get(kind, {"type": "string"}), "title": title}
        for name, (kind, title) in layer_fields(spec).items()}}


def _layer_note(spec: LayerSpec) -> str:
    if aggregates(spec):
        return (f"缩放级别 {AGGREGATE_BELOW_ZOOM} 以下（或单块瓦片要素过多时）为 H3 网格聚合"
                f"（count 及各等级数量），{AGGREGATE_BELOW_ZOOM} 级起为逐个要素；"
                "默认只带着色与标注所需字段，?properties=* 取全部字段")
    if spec.cells:
        return "H3 分辨率随缩放级别而定"
    return "逐个要素，带全部字段"


# --------------------------------------------------------------------------- tilesets

def _tileset_url(base: str, spec: LayerSpec) -> str:
    return f"{base}/collections/{spec.id}/tiles/{TMS_ID}"


def tile_template(base: str, spec: LayerSpec) -> str:
    """The OGC tile URL template of a layer's tileset."""
    return f"{_tileset_url(base, spec)}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"


def _tiling_scheme(base: str) -> dict:
    return {"rel": REL_TILING_SCHEME, "type": TMS_JSON, "title": f"瓦片矩阵集 {TMS_ID}",
            "href": f"{base}/tileMatrixSets/{TMS_ID}"}


def tileset_summary(base: str, spec: LayerSpec) -> dict:
    """One entry of a tilesets list: the vector tileset of ``spec`` in WebMercatorQuad."""
    url = _tileset_url(base, spec)
    return {
        "title": f"{spec.title}（矢量瓦片）", "dataType": "vector", "crs": CRS_3857,
        "tileMatrixSetURI": TMS_URI,
        "links": [
            {"rel": "self", "type": JSON, "title": f"{spec.title}（瓦片集）", "href": url},
            _tiling_scheme(base),
            {"rel": "describedby", "type": JSON, "title": f"{spec.title}（TileJSON）",
             "href": f"{url}/tilejson.json"},
            {"rel": "item", "type": MEDIA_TYPE, "title": f"{spec.title}（瓦片）",
             "href": tile_template(base, spec), "templated": True}]}


def tilesets(base: str, spec: LayerSpec) -> dict:
    """``/ogc/collections/{id}/tiles``: the layer's one vector tileset."""
    return {"links": [
                {"rel": "self", "type": JSON, "title": f"{spec.title}（瓦片集列表）",
                 "href": f"{base}/collections/{spec.id}/tiles"},
                {"rel": "collection", "type": JSON, "title": spec.title,
                 "href": f"{base}/collections/{spec.id}"}],
            "tilesets": [tileset_summary(base, spec)]}


def map_tilesets(base: str, specs: list[LayerSpec]) -> dict:
    """``/ogc/tiles``: the vector tileset of every layer the caller may see, one per layer
    (each tile holds one layer, so there is no dataset tileset of all of them)."""
    return {"links": [{"rel": "self", "type": JSON, "title": "各图层瓦片集",
                       "href": f"{base}/tiles"}],
            "tilesets": [{**tileset_summary(base, spec), "id": spec.id} for spec in specs]}


def tileset(base: str, spec: LayerSpec, bbox: list[float]) -> dict:
    """``/ogc/collections/{id}/tiles/WebMercatorQuad``: the tileset metadata (2D TMS 2.0
    tileSet): data type, CRS, tile matrix set, its limits (every tile of zoom 0–22), the
    one vector layer with its properties' types and Chinese titles, the caller's extent
    and the tile URL template."""
    summary = tileset_summary(base, spec)
    layer = {"id": spec.id, "title": spec.title,
             "description": f"{spec.description}。{_layer_note(spec)}",
             "dataType": "vector", "minTileMatrix": "0", "maxTileMatrix": str(MAX_ZOOM),
             "propertiesSchema": properties_schema(spec)}
    if not aggregates(spec) and spec.geometry in GEOMETRY_DIMENSION:
        layer["geometryDimension"] = GEOMETRY_DIMENSION[spec.geometry]
    if aggregates(spec):
        layer["pointsFromTileMatrix"] = str(AGGREGATE_BELOW_ZOOM)  # riskmap's own member
    return {
        "title": summary["title"], "description": spec.description,
        "dataType": "vector", "crs": CRS_3857, "tileMatrixSetURI": TMS_URI,
        "links": [
            *summary["links"],
            {"rel": "collection", "type": JSON, "title": spec.title,
             "href": f"{base}/collections/{spec.id}"},
            {"rel": REL_GEODATA, "type": JSON, "title": spec.title,
             "href": f"{base}/collections/{spec.id}"}],
        "tileMatrixSetLimits": [
            {"tileMatrix": str(z), "minTileRow": 0, "maxTileRow": (1 << z) - 1,
             "minTileCol": 0, "maxTileCol": (1 << z) - 1} for z in range(MAX_ZOOM + 1)],
        "boundingBox": {"lowerLeft": bbox[:2], "upperRight": bbox[2:], "crs": CRS84},
        "centerPoint": {"coordinates": [round((bbox[0] + bbox[2]) / 2, 6),
                                        round((bbox[1] + bbox[3]) / 2, 6)],
                        "crs": CRS84, "tileMatrix": "8"},
        "layers": [layer]}


def tilejson(base: str, spec: LayerSpec, bbox: list[float]) -> dict:
    """The layer's TileJSON 3.0.0 (for MapLibre and other TileJSON clients): its one tile
    URL (z/y/x, as the OGC template orders them), zoom range, the caller's extent and the
    vector layer's fields with their Chinese titles."""
    fields = {name: title for name, (_, title) in layer_fields(spec).items()}
    return {
        "tilejson": "3.0.0", "name": spec.title, "description": spec.description,
        "version": "1.0.0", "scheme": "xyz",
        "tiles": [f"{_tileset_url(base, spec)}/{{z}}/{{y}}/{{x}}"],
        "minzoom": 0, "maxzoom": MAX_ZOOM,
        "bounds": list(bbox),
        "center": [round((bbox[0] + bbox[2]) / 2, 6), round((bbox[1] + bbox[3]) / 2, 6), 8],
        "vector_layers": [{"id": spec.id, "description": _layer_note(spec),
                           "minzoom": 0, "maxzoom": MAX_ZOOM, "fields": fields}]}
