"""The risk maps: the count map before the first build, and the risk map after it.

No rules here: the cells arrive counted (from ``layers``), this module only draws them.
Layer titles and field labels come from :mod:`layers.registry` (and its shared
vocabulary :data:`layers.labels.FIELD_LABELS`). Leaflet and Leaflet.VectorGrid are served
from ``/static`` (vendored), so the page works on an intranet without a CDN; only the
optional online basemaps (web/basemaps.py) come from outside.

The risk map (:func:`build_risk_map`) is a frame that folium composes (the map, its panes,
the tiled overlays, the layer control): every layer comes from the service's scoped vector
tiles and the boundaries from ``/map/boundaries``; web/static/js/map.js styles them, draws
the names, keeps the legend to the visible layers and answers clicks from the layer API,
setting every value as text. The count map (:func:`build_map`, before any build, admin
only) still inlines its cells: every value from data is HTML-escaped (:func:`escape_text`)
before folium serialises it, since folium's tooltips put property values into
``innerHTML``. Either page is stamped with the response's CSP nonce (:func:`with_nonce`).
"""

from __future__ import annotations

import html
import itertools
import json
import re
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from folium import MacroElement
from folium.plugins import VectorGridProtobuf
from folium.template import Template
from geopandas.array import GeometryDtype

from data.catalogue import TOP_CATEGORIES
from layers.aggregate import INDUSTRIES, UNKNOWN_INDUSTRY
from layers.frames import LEVEL_COLOURS, LEVEL_ZH, LEVELS
from layers.labels import FIELD_LABELS
from layers.registry import LAYERS
from web.basemaps import OFFLINE, page_config

STATIC_DIR = Path(__file__).parent / "static"
LEAFLET = "/static/vendor/leaflet-1.9.4"
VECTORGRID = "/static/vendor/leaflet.vectorgrid-1.3.0/Leaflet.VectorGrid.bundled.min.js"
POINTS_FROM_ZOOM = 12  # the equipment tiles hold single pieces from here (service/tiles.py)
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
    fmap = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
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
#
# Folium composes the map (vendored Leaflet, the layer control, a pane per overlay); every
# layer comes from the service's scoped vector tiles (``/tiles/{layer}/{z}/{x}/{y}.mvt``)
# and the boundaries from ``/map/boundaries`` (the provinces the caller's map shows,
# simplified), so the page holds no data: web/static/js/map.js styles, labels, legends
# and answers clicks from the configuration below (constant labels and numbers only).

NO_LEVEL = "#d9d9d9"
MAP_JS = "/static/js/map.js"
BASEMAPS_JS = "/static/js/basemaps.js"
MAP_CSS = "/static/css/map.css"
BOUNDARIES_URL = "/map/boundaries"
HAZARDS_NAME = "未销号隐患（深红为重大隐患）"
SINGLE_PIECES = "放大后显示单台设备"
# The equipment record a click on the map shows, in this order (labels from the registry).
POPUP_FIELDS = ("registration_code", "category", "unit_name", "address", "use_place",
                "level", "D", "L", "L_reason", "E", "E_reason", "C", "C_reason",
                "level_reason", "next_inspection_due", "overdue", "open_hazards",
                "open_major_hazards")
# A risk cell's popup: its indicators (labels from the registry, units here).
CELL_FIELDS = ("level", "level_share", "max_level", "equipment", "n_red", "n_orange",
               "n_yellow", "n_blue", "dominant_category_name", "open_hazards",
               "open_major_hazards", "overdue", "overdue_rate")
UNITS = {"equipment": "台", "n_red": "台", "n_orange": "台", "n_yellow": "台", "n_blue": "台",
         "open_hazards": "项", "open_major_hazards": "项", "overdue": "台",
         "serious_hazards": "项", "late_general_hazards": "项", "units": "家",
         "unit_count": "家", "days_overdue": "天", "D": "", "L": "", "E": "", "C": ""}
SHARES = ("level_share", "overdue_rate", "rate")  # shown as percentages
# What the popup of each polygon layer shows (a click asks /api/layers/{id} at the point).
POPUPS = {
    "risk-cells": CELL_FIELDS,
    "hotspots": ("serious_hazards", "late_general_hazards", "equipment", "q_value",
                 "regional", "unit_count"),
    "parks": ("name", "rank", "level", "units", "equipment", "open_major_hazards",
              "overdue"),
    "warnings": ("name", "grade_zh", "message"),
    "hazards": ("unit_name", "description", "level", "status", "deadline", "listed",
                "past_deadline"),
    "units": ("name", "credit_code", "industry", "level", "level_reason", "equipment",
              "open_hazards", "open_major_hazards", "overdue", "blacklisted"),
    "venues": ("name", "kind", "daily_visitors", "max_level", "equipment", "n_red",
               "n_orange", "open_hazards", "open_major_hazards", "overdue", "elevators"),
    "overdue": ("registration_code", "category", "unit_name", "next_inspection_due",
                "days_overdue", "level"),
    "frequency": ("name", "credit_code", "level", "base_interval_months", "interval_months",
                  "checks_per_year", "reasons", "last_check_on", "next_due"),
    "regions": ("name", "adcode", "level", "level_share", "equipment", "n_red", "n_orange",
                "dominant_category_name", "open_hazards", "open_major_hazards", "overdue",
                "overdue_rate"),
}
UNITS.update({"daily_visitors": "人次", "elevators": "台", "base_interval_months": "个月",
              "interval_months": "个月", "checks_per_year": "次"})
# The search box (/api/search, scoped like everything): part of a unit's name, or the start
# of a unified social credit code or of a registration code; a list of up to 10 matches,
# a click (or a single match) flies there and opens the popup. Then the filters: each
# changes the query of the tiled layers that have its field (FILTERABLE).
SEARCH = ('<div id="riskmap-tools" class="riskmap-tools">'
          '<form id="riskmap-search" class="riskmap-search" role="search">'
          '<input name="q" type="search" minlength="2" maxlength="50" required '
          'autocomplete="off" placeholder="单位名称、信用代码或设备注册代码" '
          'aria-label="按单位名称、统一社会信用代码或设备注册代码查找">'
          '<button type="submit">查找</button></form>'
          '<div id="riskmap-search-status" role="status" aria-live="polite"></div>'
          '<ul id="riskmap-results" class="riskmap-results" hidden></ul>'
          '<details id="riskmap-filters" class="riskmap-filters"><summary>筛选</summary>'
          '<form id="riskmap-filter-form">{selects}'
          '<button type="reset">清除筛选</button>'
          '<div class="hint">设备种类、风险等级筛选网格、设备、隐患、逾期、加频与行政区图层；'
          '行业门类筛选使用单位图层</div></form></details></div>')
# The filters each tiled layer takes (the tile parameters of /tiles, as /api/layers): a
# hazard's level is 重大/一般, not a risk colour, so hazards filter by category only.
FILTERABLE = {
    "risk-cells": ("level", "category"), "regions": ("level", "category"),
    "venues": ("level",), "equipment": ("level", "category"), "hazards": ("category",),
    "overdue": ("level", "category"), "frequency": ("level",), "units": ("level", "industry"),
}


def _filter_selects() -> str:
    """The three filter drop-downs (constant Chinese labels; values as /tiles takes them)."""
    choices = {
        "category": ("设备种类", TOP_CATEGORIES),
        "industry": ("行业门类", {**INDUSTRIES, UNKNOWN_INDUSTRY: "行业未知"}),
        "level": ("风险等级", {lv: LEVEL_ZH[lv] for lv in LEVELS}),
    }
    out = []
    for name, (label, options) in choices.items():
        items = "".join(
            f'<option value="{html.escape(code)}">'
            f'{html.escape(title if name == "level" else f"{code} {title}")}</option>'
            for code, title in options.items())
        out.append(f'<label>{label}<select name="{name}"><option value="">全部</option>'
                   f'{items}</select></label>')
    return "".join(out)


def _layer_labels(layer: str, fields: tuple[str, ...]) -> list[list[str]]:
    labels = LAYERS[layer].field_labels
    return [[name, labels.get(name, name), UNITS.get(name, "")] for name in fields
            if name in labels]


def map_config(*, bounds: list[list[float]], build_note: str, cell_areas: dict[int, float]
               ) -> dict:
    """What map.js needs: constants and labels (no data rows), the bounds to open at."""
    return {
        "bounds": bounds,
        "boundaries": BOUNDARIES_URL,
        "levels": {lv: {"name": LEVEL_ZH[lv], "colour": LEVEL_COLOURS[lv]} for lv in LEVELS},
        "noLevel": NO_LEVEL,
        "pointsFromZoom": POINTS_FROM_ZOOM,
        "cellAreas": {str(r): a for r, a in cell_areas.items()},
        "popups": {layer: _layer_labels(layer, fields) for layer, fields in POPUPS.items()},
        "equipment": _layer_labels("equipment", POPUP_FIELDS),
        "shares": list(SHARES),
        "titles": {layer: LAYERS[layer].short_title for layer in POPUPS},
        "industries": {**INDUSTRIES, UNKNOWN_INDUSTRY: "行业未知"},
        "note": build_note,
    }


def _json_for_script(value: object) -> str:
    """JSON inside a ``<script>``: ``<``, ``>`` and ``&`` as escapes, so no text from data
    (the user's name in the note) can close the element or open a tag."""
    return (json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")
            .replace(">", "\\u003e").replace("&", "\\u0026"))


# The overlays in drawing order: title in the layer control, shown at first, pane z-index.
_OVERLAYS = {
    "regions": ("行政区风险（区县）", False, 405),
    "risk-cells": (LAYERS["risk-cells"].short_title, True, 410),
    "warnings": (f"{LAYERS['warnings'].short_title}（区县）", False, 420),
    "hotspots": (f"{LAYERS['hotspots'].short_title}（热点）", True, 430),
    "parks": (f"{LAYERS['parks'].short_title}（一园一策）", False, 440),
    "venues": ("人员密集场所", False, 435),
    "units": ("使用单位（一企一策）", False, 445),
    "equipment": (f"{LAYERS['equipment'].short_title}（{SINGLE_PIECES}）", True, 450),
    "frequency": ("加频单位（加大监督检查频次）", False, 452),
    "overdue": ("逾期未检设备", False, 455),
    "hazards": (HAZARDS_NAME, True, 460),
}
TILED_LAYERS = tuple(_OVERLAYS)
# ?resolution=: the zoom at which the tiles draw cells of that resolution
OPEN_ZOOM = {5: 6, 6: 7, 7: 8}


def _level_legend(build_note: str) -> str:
    rows = "".join(
        f'<div><span class="swatch" style="background:{LEVEL_COLOURS[lv]}"></span>'
        f"{LEVEL_ZH[lv]}</div>" for lv in LEVELS)
    return (
        '<div id="riskmap-legend" class="riskmap-legend">'
        f'<section data-layer="risk-cells"><b>网格风险等级</b>'
        f'<div class="hint">按网格内在用设备的风险占比定级；网格大小 '
        f'<span id="riskmap-cell-size">—</span> km²（随缩放变化）</div>{rows}</section>'
        '<section data-layer="hotspots"><b>严重隐患聚集区</b><div><span class="swatch" '
        'style="background:#7a0177"></span>热点网格</div></section>'
        f'<section data-layer="hazards"><b>未销号隐患</b><div><span class="dot" '
        f'style="background:#67000d"></span>重大隐患</div><div><span class="dot" '
        f'style="background:#ef6548"></span>一般隐患</div></section>'
        '<section data-layer="regions"><b>行政区风险（区县）</b>'
        f'<div class="hint">区县按风险等级着色</div>{rows}</section>'
        '<section data-layer="venues"><b>人员密集场所</b><div class="hint">按场所内设备的最高'
        '风险等级描边</div></section>'
        '<section data-layer="units"><b>使用单位</b><div class="hint">按单位风险等级着色；'
        '缩小时为网格计数</div></section>'
        '<section data-layer="frequency"><b>加频单位</b><div><span class="dot" '
        'style="background:#6a51a3"></span>加大监督检查频次的使用单位</div></section>'
        '<section data-layer="overdue"><b>逾期未检设备</b><div><span class="dot" '
        'style="background:#000000"></span>逾期未检（黑圈）</div></section>'
        '<section data-layer="parks"><b>园区</b><div><span class="line dashed"></span>'
        '园区范围</div></section>'
        '<section data-layer="warnings"><b>风险提示·警示·预警（区县）</b>'
        '<div><span class="line" style="border-color:#fdae61"></span>提示</div>'
        '<div><span class="line" style="border-color:#f46d43"></span>警示</div>'
        '<div><span class="line" style="border-color:#a50026"></span>预警</div></section>'
        f'<section data-layer="equipment"><b>设备</b><div class="hint">{SINGLE_PIECES}，'
        '点击查看设备</div></section>'
        f'<div class="note">{html.escape(build_note)}</div></div>')


def build_risk_map(*, bounds: list[list[float]], build_note: str, nonce: str,
                   layers: list[str] | tuple[str, ...] = TILED_LAYERS,
                   open_resolution: int | None = None, basemaps: dict | None = None) -> str:
    """The risk map: a frame of tiled ``layers`` (those the caller may see), opened at
    ``bounds`` ([[south, west], [north, east]]: the caller's region), or zoomed in there
    to where cells of ``open_resolution`` are drawn. ``build_note`` (the caller and the
    build) is escaped; ``nonce`` is the response's CSP nonce, stamped onto the scripts;
    ``basemaps`` the online basemaps offered (:func:`web.basemaps.page_config`; none if
    not given)."""
    fmap = folium.Map(tiles=None, control_scale=True, prefer_canvas=True,
                      zoom_control=True)
    fmap.default_js = [("leaflet", f"{LEAFLET}/leaflet.js")]
    fmap.default_css = [("leaflet_css", f"{LEAFLET}/leaflet.css")]
    fmap.fit_bounds(bounds)
    root = fmap.get_root()
    root.header.add_child(folium.Element(
        "<title>风险地图 · 特种设备区域风险地图</title>"
        f'<link rel="stylesheet" href="{MAP_CSS}">'))

    # basemaps: offline (our boundaries and names only); basemaps.js adds the online ones
    # offered (web/basemaps.py) to the layer control and shifts our data for GCJ-02 ones
    basemaps = basemaps or page_config((), OFFLINE, None)
    offline = folium.FeatureGroup(name=basemaps["offline"], overlay=False, control=True)
    offline.add_to(fmap)

    names = {}
    for layer in TILED_LAYERS:
        if layer not in layers:
            continue
        title, show, z = _OVERLAYS[layer]
        names[layer] = _tiles(fmap, layer, title, show, z,
                              min_zoom=POINTS_FROM_ZOOM if layer == "equipment" else 0)
    groups = {}
    for key, title in (("counties", "区县边界"), ("provinces", "省界"),
                       ("labels", "市县名称")):
        group = folium.FeatureGroup(name=title)
        group.add_to(fmap)
        groups[key] = group.get_name()
    control = folium.LayerControl(collapsed=False)
    control.add_to(fmap)
    _Expose(control, "riskmapControl").add_to(fmap)  # after the control: map.js needs it
    root.html.add_child(folium.Element(_level_legend(build_note)))
    root.html.add_child(folium.Element(SEARCH.format(selects=_filter_selects())))

    config = map_config(bounds=bounds, build_note=build_note, cell_areas=CELL_AREAS)
    config.update(map=fmap.get_name(), layers=names, groups=groups,
                  filterable={layer: list(FILTERABLE.get(layer, ())) for layer in names},
                  openZoom=OPEN_ZOOM.get(open_resolution), offline=offline.get_name())
    # in the head before Leaflet: map.js defines the tile styles the layers name, then
    # wires the map up once the page is parsed
    root.header.add_child(folium.Element(
        f'<script type="application/json" id="riskmap-config">{_json_for_script(config)}'
        '</script><script type="application/json" id="riskmap-basemaps">'
        f'{_json_for_script(basemaps)}</script>'
        f'<script src="{BASEMAPS_JS}"></script><script src="{MAP_JS}"></script>'))
    return with_nonce(root.render(), nonce)


class _Expose(MacroElement):
    """``window.<alias> = <element>``: folium declares some objects with ``let`` (the layer
    control), which a later script cannot find by name; rendered after ``element``."""

    _template = Template("{% macro script(this, kwargs) %}"
                         "window.{{ this.alias }} = {{ this.target }};{% endmacro %}")

    def __init__(self, element: MacroElement, alias: str) -> None:
        super().__init__()
        self.target = element.get_name()
        self.alias = alias


# the average area of an H3 cell at each resolution the tiles draw (km², h3 v4)
CELL_AREAS = {5: 252.9, 6: 36.13, 7: 5.161, 8: 0.737, 9: 0.105}


def _tiles(fmap: folium.Map, layer: str, title: str, show: bool, z_index: int,
           min_zoom: int = 0) -> str:
    """A VectorGrid layer of ``/tiles/{layer}/…`` in its own pane, styled by map.js
    (loaded in the head, before the map: ``riskmapStyles``); returns its JavaScript name."""
    pane = f"riskmap-{layer}"
    folium.map.CustomPane(pane, z_index=z_index).add_to(fmap)
    options = ("{" + f'"minZoom": {min_zoom}, "maxNativeZoom": 18, "pane": "{pane}", '
               '"interactive": false, "rendererFactory": L.canvas.tile, '
               '"vectorTileLayerStyles": riskmapStyles' + "}")
    grid = VectorGridProtobuf(f"/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt", title, options,
                              show=show)
    grid.default_js = [("vectorGrid", VECTORGRID)]  # vendored: no CDN on an intranet
    grid.add_to(fmap)
    return grid.get_name()
