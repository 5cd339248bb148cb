"""The first risk map: province outline, county boundaries and equipment counts on H3.

No rules here: the cells arrive counted (from ``layers``), this module only draws them.
Layer titles and field labels come from :mod:`layers.registry` (and its shared
vocabulary :data:`layers.labels.FIELD_LABELS`); only what the map itself adds (the
resolution shown, the listed subset of hazards, the base map's outlines) is named here.
Leaflet is served from ``/static`` (vendored), so the page works on an intranet without a
CDN; only the basemap tiles come from outside.

Every value that comes from data is HTML-escaped (:func:`escape_text`) before folium
serialises it: folium's tooltips put property values into ``innerHTML``. The page is then
stamped with the response's CSP nonce (:func:`with_nonce`).
"""

from __future__ import annotations

import html
import itertools
import json
import re
from pathlib import Path
from string import Template

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from branca.element import MacroElement
from folium.plugins import VectorGridProtobuf
from geopandas.array import GeometryDtype
from jinja2 import Template as JinjaTemplate

from layers.frames import LEVEL_COLOURS, LEVEL_ZH, LEVELS
from layers.labels import FIELD_LABELS
from layers.registry import LAYERS

STATIC_DIR = Path(__file__).parent / "static"
LEAFLET = "/static/vendor/leaflet-1.9.4"
VECTORGRID = "/static/vendor/leaflet.vectorgrid-1.3.0/Leaflet.VectorGrid.bundled.min.js"
POINTS_FROM_ZOOM = 12  # the equipment tiles hold single pieces from here (service/tiles.py)
EQUIPMENT_PANE = "equipment"
# AMap's public tiles are GCJ-02; drawing WGS84 data on them would shift everything by
# hundreds of metres, so the default basemap is OpenStreetMap (WGS84, Web Mercator).
BASEMAP = "OpenStreetMap"
PALETTE = ["#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026"]


def class_breaks(counts: np.ndarray) -> list[int]:
    """Quantile class breaks (whole numbers, strictly increasing), so a few dense districts
    don't wash out the rest of the province."""
    if len(counts) == 0:
        return [0, 1]
    qs = np.unique(np.quantile(counts, [0, 0.5, 0.75, 0.9, 0.97, 0.995, 1.0]).round())
    breaks = [int(q) for q in qs]
    if len(breaks) < 2:
        breaks.append(breaks[0] + 1)
    return breaks[: len(PALETTE) + 1]


def colour_of(count: float, breaks: list[int]) -> str:
    i = int(np.searchsorted(breaks[1:-1], count, side="right"))
    return PALETTE[min(i, len(PALETTE) - 1)]


# ---------------------------------------------------------------------- data into HTML

def _escape_value(value: object) -> object:
    """One cell of a text column, HTML-escaped (quotes too); nulls, numbers and booleans
    as they are; anything else (a date, a list) as its escaped text."""
    if isinstance(value, str):
        return html.escape(value)
    if value is None or isinstance(value, bool | int | float | np.number | np.bool_):
        return value
    if value is pd.NA or value is pd.NaT:
        return value
    return html.escape(str(value))


def _is_text(dtype: object) -> bool:
    if isinstance(dtype, GeometryDtype):  # its kind is "O" too
        return False
    if isinstance(dtype, pd.CategoricalDtype | pd.StringDtype):
        return True
    return getattr(dtype, "kind", None) in ("O", "S", "U", "T")


def escape_text(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text column (object, string, categorical) HTML-escaped,
    ready to serialise for folium. Its tooltips build their table as a string and set it
    as ``innerHTML``, so a value like ``<img src=x onerror=...>`` would run as script.
    Numbers, booleans and the geometry need nothing. The escaped values are for HTML
    sinks only: text set with ``textContent`` would show the entities."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if not _is_text(column.dtype):
            continue
        if isinstance(column.dtype, pd.CategoricalDtype):
            column = column.astype(object)
        out[name] = pd.Series(
            [_escape_value(v) for v in column.to_numpy(dtype=object)],
            index=out.index, dtype=object)
    return out


_NONCE = re.compile(r"[A-Za-z0-9_-]{16,}")
_SCRIPT_OPEN = re.compile(r"<script(?=[\s/>])", re.IGNORECASE)
_ANY_SCRIPT = re.compile(r"<script", re.IGNORECASE)
_HAS_NONCE = re.compile(r"<script\b[^>]*\bnonce\s*=", re.IGNORECASE)


def with_nonce(page: str, nonce: str) -> str:
    """``page`` with ``nonce="…"`` on every ``<script`` tag, for the response's CSP.

    folium renders its script tags from templates we do not own, so the nonce is stamped
    onto the rendered page. That is safe ONLY because every value from data was escaped
    first (:func:`escape_text` for the layers, ``html.escape`` for the legend and titles):
    no ``<`` from data reaches the page, so each ``<script`` in it is one that folium or
    this module emitted. Fails closed: a nonce that is not URL-safe base64, a script tag
    that already has a nonce, or a ``<script`` left unstamped raises ValueError.
    """
    if not _NONCE.fullmatch(nonce):
        raise ValueError("a CSP nonce is URL-safe base64 (secrets.token_urlsafe)")
    if _HAS_NONCE.search(page):
        raise ValueError("the page already carries a script nonce")
    stamp = f'<script nonce="{nonce}"'
    stamped = _SCRIPT_OPEN.sub(stamp, page)
    if len(_ANY_SCRIPT.findall(stamped)) != stamped.count(stamp):
        raise ValueError("a <script in the page could not be stamped with the nonce")
    return stamped


def _geojson(frame: gpd.GeoDataFrame) -> str:
    """The one way a layer reaches the page: text escaped, then GeoJSON for folium."""
    return escape_text(frame).to_json(drop_id=True)


def _legend(breaks: list[int], resolution: int, resolutions: list[int]) -> str:
    switch = " ".join(f"<b>{r}</b>" if r == resolution else f'<a href="?resolution={r}">{r}</a>'
                      for r in resolutions)
    rows = []
    for i, (lo, hi) in enumerate(itertools.pairwise(breaks)):
        label = f"{lo}–{hi}" if i < len(breaks) - 2 else f"{lo}–{hi}（最多）"
        rows.append(f'<div><span style="display:inline-block;width:14px;height:14px;'
                    f'background:{PALETTE[i]};margin-right:6px;vertical-align:middle"></span>'
                    f'{html.escape(label)}</div>')
    return ('<div id="riskmap-legend" style="position:fixed;bottom:64px;left:12px;z-index:1000;'
            'background:rgba(255,255,255,.92);padding:8px 10px;border-radius:4px;'
            'font:12px/1.5 sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3)">'
            f'<b>设备数量</b>（每个 H3 网格，分辨率 {resolution}）{"".join(rows)}'
            f'<div style="margin-top:4px">网格分辨率：{switch}</div></div>')


def _base_map(counties: gpd.GeoDataFrame, provinces: gpd.GeoDataFrame) -> folium.Map:
    """A map over the provinces with vendored Leaflet (no CDN needed on an intranet)."""
    bounds = provinces.total_bounds if len(provinces) else counties.total_bounds
    fmap = folium.Map(tiles=BASEMAP, control_scale=True, prefer_canvas=True)
    fmap.default_js = [("leaflet", f"{LEAFLET}/leaflet.js")]
    fmap.default_css = [("leaflet_css", f"{LEAFLET}/leaflet.css")]
    fmap.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    fmap.get_root().header.add_child(folium.Element(
        "<title>riskmap 特种设备区域风险地图</title>"))
    return fmap


def _boundaries(fmap: folium.Map, counties: gpd.GeoDataFrame,
                provinces: gpd.GeoDataFrame) -> None:
    """County and province outlines, then the layer control (it lists what came before)."""
    folium.GeoJson(
        _geojson(counties[["adcode", "name", "geometry"]]),
        name="区县边界",
        style_function=lambda _f: {"fill": False, "color": "#3b5b92", "weight": 0.8},
        tooltip=folium.GeoJsonTooltip(fields=["name", "adcode"],
                                      aliases=["区县", FIELD_LABELS["adcode"]]),
    ).add_to(fmap)
    folium.GeoJson(
        _geojson(provinces[["name", "geometry"]]), name="省界",
        style_function=lambda _f: {"fill": False, "color": "#1f2d4d", "weight": 2.5},
    ).add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)


def build_map(cells: gpd.GeoDataFrame, counties: gpd.GeoDataFrame,
              provinces: gpd.GeoDataFrame, *, resolution: int,
              resolutions: list[int] | None = None, nonce: str) -> str:
    """The plain count map (before the first build); ``nonce`` is the response's CSP
    nonce, stamped onto the page's script tags."""
    fmap = _base_map(counties, provinces)

    breaks = class_breaks(cells["count"].to_numpy())
    if len(cells):
        folium.GeoJson(
            _geojson(cells),
            name=f"设备分布（H3 分辨率 {resolution}）",
            style_function=lambda f: {"fillColor": colour_of(f["properties"]["count"], breaks),
                                      "color": "#555", "weight": 0.3, "fillOpacity": 0.7},
            tooltip=folium.GeoJsonTooltip(fields=["count", "h3"],
                                          aliases=["设备数", FIELD_LABELS["h3"]]),
        ).add_to(fmap)
    _boundaries(fmap, counties, provinces)
    fmap.get_root().html.add_child(folium.Element(
        _legend(breaks, resolution, resolutions or [resolution])))
    return with_nonce(fmap.get_root().render(), nonce)


# ------------------------------------------------------------------------- the risk map

NO_LEVEL = "#d9d9d9"
LISTED_HAZARDS = "挂牌督办重大隐患"  # the map shows the listed (重大) ones of the hazards layer
# The equipment record a click on the map shows, in this order (labels from the registry).
POPUP_FIELDS = ("registration_code", "category", "unit_name", "address", "level", "D",
                "level_reason", "next_inspection_due")


def _tooltip(layer_id: str, fields: list[str], **shown_as: str) -> folium.GeoJsonTooltip:
    """A tooltip of ``fields`` labelled as the registry labels the layer's fields; a column
    the map derives (``level_zh``) takes the label of the field it shows (``level``)."""
    labels = LAYERS[layer_id].field_labels
    return folium.GeoJsonTooltip(
        fields=fields, aliases=[labels[shown_as.get(name, name)] for name in fields])


def _level_legend(resolution: int, resolutions: list[int], build_note: str) -> str:
    switch = " ".join(f"<b>{r}</b>" if r == resolution else f'<a href="?resolution={r}">{r}</a>'
                      for r in resolutions)
    rows = "".join(
        f'<div><span style="display:inline-block;width:14px;height:14px;'
        f'background:{LEVEL_COLOURS[lv]};margin-right:6px;vertical-align:middle"></span>'
        f"{LEVEL_ZH[lv]}</div>" for lv in LEVELS)
    return ('<div id="riskmap-legend" style="position:fixed;bottom:64px;left:12px;z-index:1000;'
            'max-width:380px;background:rgba(255,255,255,.92);padding:8px 10px;border-radius:4px;'
            'font:12px/1.5 sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3)">'
            f"<b>网格风险等级</b>（按网格内设备风险占比定级，H3 分辨率 {resolution}）{rows}"
            f'<div style="margin-top:4px">网格分辨率：{switch}</div>'
            f'<div style="margin-top:4px;color:#555">{html.escape(build_note)}'
            ' · <a href="/logout">退出</a></div></div>')


def _level_style(feature: dict) -> dict:
    level = feature["properties"].get("level")
    return {"fillColor": LEVEL_COLOURS.get(level, NO_LEVEL), "color": "#666", "weight": 0.3,
            "fillOpacity": 0.65}


def build_risk_map(cells: gpd.GeoDataFrame, hotspots: gpd.GeoDataFrame,
                   hazards: gpd.GeoDataFrame, parks: gpd.GeoDataFrame,
                   warnings: gpd.GeoDataFrame, counties: gpd.GeoDataFrame,
                   provinces: gpd.GeoDataFrame, *, resolution: int, resolutions: list[int],
                   build_note: str, nonce: str) -> str:
    """The risk map from built layers: cells by level, hotspots, listed hazards, parks,
    county warnings. Each arrives computed; this only draws it. ``nonce`` is the
    response's CSP nonce, stamped onto the page's script tags."""
    fmap = _base_map(counties, provinces)

    if len(cells):
        shown = cells.assign(
            level_zh=cells["level"].map(LEVEL_ZH).fillna("—"),
            share_pct=(cells["level_share"].astype("float64") * 100).round().astype(
                "int64").astype("string") + "%",
            max_level_zh=cells["max_level"].map(LEVEL_ZH).fillna("—"))
        folium.GeoJson(
            _geojson(shown[["h3", "level", "level_zh", "share_pct", "max_level_zh",
                            "equipment", "n_red", "n_orange",
                            "n_yellow", "n_blue", "dominant_category_name", "open_hazards",
                            "open_major_hazards", "overdue", "geometry"]]),
            name=f"{LAYERS['risk-cells'].short_title}（H3 分辨率 {resolution}）",
            style_function=_level_style,
            tooltip=_tooltip("risk-cells", [
                "level_zh", "share_pct", "max_level_zh", "equipment", "n_red", "n_orange",
                "n_yellow", "n_blue", "dominant_category_name", "open_hazards",
                "open_major_hazards", "overdue", "h3"],
                level_zh="level", share_pct="level_share", max_level_zh="max_level"),
        ).add_to(fmap)
    if len(warnings):
        folium.GeoJson(
            _geojson(warnings[["name", "grade_zh", "grade_rank", "message", "geometry"]]),
            name=f"{LAYERS['warnings'].short_title}（区县）", show=False,
            style_function=lambda f: {"fill": False, "weight": 1 + f["properties"]["grade_rank"],
                                      "color": ["#999", "#fdae61", "#f46d43", "#a50026"][
                                          f["properties"]["grade_rank"]]},
            tooltip=_tooltip("warnings", ["name", "grade_zh", "message"]),
        ).add_to(fmap)
    if len(hotspots):
        folium.GeoJson(
            _geojson(hotspots[["h3", "serious_hazards", "equipment", "q_value", "regional",
                               "unit_count", "geometry"]]),
            name=f"{LAYERS['hotspots'].short_title}（热点）",
            style_function=lambda _f: {"fillColor": "#7a0177", "color": "#7a0177",
                                       "weight": 1.5, "fillOpacity": 0.35},
            tooltip=_tooltip("hotspots", ["serious_hazards", "equipment", "q_value", "regional",
                                          "unit_count"]),
        ).add_to(fmap)
    if len(parks):
        folium.GeoJson(
            _geojson(parks[["name", "rank", "units", "equipment", "open_major_hazards",
                            "overdue", "geometry"]]),
            name=f"{LAYERS['parks'].short_title}（一园一策）", show=False,
            style_function=lambda _f: {"fill": False, "color": "#08519c", "weight": 1.5,
                                       "dashArray": "4 3"},
            tooltip=_tooltip("parks", ["name", "rank", "units", "equipment",
                                       "open_major_hazards", "overdue"]),
        ).add_to(fmap)
    listed = hazards[hazards["listed"].fillna(False).astype(bool) & hazards.geometry.notna()]
    if len(listed):
        group = folium.FeatureGroup(name=LISTED_HAZARDS)
        folium.GeoJson(
            _geojson(listed[["hazard_id", "unit_name", "description", "deadline",
                             "past_deadline", "geometry"]].assign(
                deadline=listed["deadline"].astype(str))),
            marker=folium.CircleMarker(radius=4, color="#67000d", fill=True, fill_opacity=0.9,
                                       weight=1),
            tooltip=_tooltip("hazards", ["hazard_id", "unit_name", "description", "deadline",
                                         "past_deadline"]),
        ).add_to(group)
        group.add_to(fmap)
    _equipment_tiles(fmap)
    _boundaries(fmap, counties, provinces)
    fmap.get_root().html.add_child(folium.Element(
        _level_legend(resolution, resolutions, build_note)))
    return with_nonce(fmap.get_root().render(), nonce)


# Leaflet.VectorGrid style of the equipment tiles: pieces by level; H3 cells (a tile too
# full for single pieces) by the riskiest level they hold. Plain JavaScript, no user data.
_EQUIPMENT_STYLE = Template("""{
  "equipment": function (p, zoom) {
    var colours = $colours;
    if (p.count !== undefined) {
      var top = ["red", "orange", "yellow", "blue"].find(function (l) { return p["n_" + l] > 0; });
      return {fill: true, fillColor: colours[top] || "$none", fillOpacity: 0.55,
              color: "#555", weight: 0.4};
    }
    return {radius: zoom >= 15 ? 5 : 3, fill: true, fillColor: colours[p.level] || "$none",
            fillOpacity: 0.9, color: "#333", weight: 0.5};
  }
}""")

class _EquipmentPopup(MacroElement):
    """A click on the map from zoom 12 asks the layer API for the equipment within a few
    pixels (scoped like the tiles, by the session cookie) and shows the first piece.
    Asked of the API, not of the tile's features: VectorGrid 1.3's feature events do not
    work with Leaflet 1.9. Rendered right after its layer, so layer and map both exist."""

    _template = JinjaTemplate("""{% macro script(this, kwargs) %}
(function (layer, map) {
  var fields = {{ this.fields }};
  map.on("click", function (e) {
    if (map.getZoom() < {{ this.min_zoom }} || !map.hasLayer(layer)) { return; }
    var c = map.latLngToContainerPoint(e.latlng), d = 6;
    var sw = map.containerPointToLatLng([c.x - d, c.y + d]);
    var ne = map.containerPointToLatLng([c.x + d, c.y - d]);
    var bbox = [sw.lng, sw.lat, ne.lng, ne.lat].map(function (v) { return v.toFixed(6); });
    fetch("/api/layers/equipment?limit=5&bbox=" + bbox.join(","), {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (fc) {
        if (!fc.features.length) { return; }
        var q = fc.features[0].properties, table = document.createElement("table");
        fields.forEach(function (f) {
          var tr = table.insertRow(), k = tr.insertCell(), v = tr.insertCell();
          k.textContent = f[1]; v.textContent = q[f[0]] == null ? "—" : String(q[f[0]]);
        });
        if (fc.numberMatched > 1) {
          var more = table.insertRow().insertCell();
          more.colSpan = 2; more.textContent = "此处共 " + fc.numberMatched + " 台设备";
        }
        L.popup({maxWidth: 360}).setLatLng(e.latlng).setContent(table).openOn(map);
      })
      .catch(function (status) {  // as text: an Error's message may quote the response
        var note = document.createElement("span");
        note.textContent = "无法读取设备（" + status + "）";
        L.popup().setLatLng(e.latlng).setContent(note).openOn(map);
      });
  });
})({{ this._parent.get_name() }}, {{ this._parent._parent.get_name() }});
{% endmacro %}""")

    def __init__(self, min_zoom: int) -> None:
        super().__init__()
        self.min_zoom = int(min_zoom)
        labels = LAYERS["equipment"].field_labels
        pairs = [[name, labels[name]] for name in POPUP_FIELDS]
        # JSON of constant labels; "<" escaped all the same (it goes inside a <script>)
        self.fields = json.dumps(pairs, ensure_ascii=False).replace("<", "\\u003c")


def _equipment_tiles(fmap: folium.Map) -> None:
    """Single pieces of equipment from zoom 12, as the service's scoped vector tiles (the
    page's session cookie goes with each tile request), coloured by level; a click shows
    the piece's record."""
    colours = "{" + ", ".join(f'"{k}": "{v}"' for k, v in LEVEL_COLOURS.items()) + "}"
    style = _EQUIPMENT_STYLE.substitute(colours=colours, none=NO_LEVEL)
    # its own pane, above the cells and below the markers
    folium.map.CustomPane(EQUIPMENT_PANE, z_index=450).add_to(fmap)
    options = ("{" + f'"minZoom": {POINTS_FROM_ZOOM}, "maxNativeZoom": 18, '
               f'"pane": "{EQUIPMENT_PANE}", "rendererFactory": L.canvas.tile, '
               f'"vectorTileLayerStyles": {style}' + "}")
    name = f"{LAYERS['equipment'].short_title}（{POINTS_FROM_ZOOM} 级起逐台显示，点击查看）"
    layer = VectorGridProtobuf("/tiles/equipment/{z}/{x}/{y}.mvt", name, options)
    layer.default_js = [("vectorGrid", VECTORGRID)]  # vendored: no CDN on an intranet
    layer.add_to(fmap)
    layer.add_child(_EquipmentPopup(POINTS_FROM_ZOOM))
