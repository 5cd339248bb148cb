"""The first risk map: province outline, county boundaries and equipment counts on H3.

No rules here: the cells arrive counted (from ``layers``), this module only draws them.
Leaflet is served from ``/static`` (vendored), so the page works on an intranet without a
CDN; only the basemap tiles come from outside.
"""

from __future__ import annotations

import html
import itertools
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np

STATIC_DIR = Path(__file__).parent / "static"
LEAFLET = "/static/vendor/leaflet-1.9.4"
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


def build_map(cells: gpd.GeoDataFrame, counties: gpd.GeoDataFrame,
              provinces: gpd.GeoDataFrame, *, resolution: int,
              resolutions: list[int] | None = None) -> str:
    bounds = provinces.total_bounds if len(provinces) else counties.total_bounds
    fmap = folium.Map(tiles=BASEMAP, control_scale=True, prefer_canvas=True)
    fmap.default_js = [("leaflet", f"{LEAFLET}/leaflet.js")]
    fmap.default_css = [("leaflet_css", f"{LEAFLET}/leaflet.css")]
    fmap.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    fmap.get_root().header.add_child(folium.Element(
        "<title>riskmap 特种设备区域风险地图</title>"))

    breaks = class_breaks(cells["count"].to_numpy())
    if len(cells):
        folium.GeoJson(
            cells.to_json(drop_id=True),
            name=f"设备分布（H3 分辨率 {resolution}）",
            style_function=lambda f: {"fillColor": colour_of(f["properties"]["count"], breaks),
                                      "color": "#555", "weight": 0.3, "fillOpacity": 0.7},
            tooltip=folium.GeoJsonTooltip(fields=["count", "h3"], aliases=["设备数", "H3 网格"]),
        ).add_to(fmap)
    folium.GeoJson(
        counties[["adcode", "name", "geometry"]].to_json(drop_id=True),
        name="区县边界",
        style_function=lambda _f: {"fill": False, "color": "#3b5b92", "weight": 0.8},
        tooltip=folium.GeoJsonTooltip(fields=["name", "adcode"], aliases=["区县", "行政区划代码"]),
    ).add_to(fmap)
    folium.GeoJson(
        provinces[["name", "geometry"]].to_json(drop_id=True), name="省界",
        style_function=lambda _f: {"fill": False, "color": "#1f2d4d", "weight": 2.5},
    ).add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.get_root().html.add_child(folium.Element(
        _legend(breaks, resolution, resolutions or [resolution])))
    return fmap.get_root().render()
