"""The first risk map: province outline, county boundaries and equipment counts on H3.

No rules here: the cells arrive counted (from ``layers``), this module only draws them."""

from __future__ import annotations

import branca.colormap as cm
import folium
import geopandas as gpd
import numpy as np

# Amap's public raster tiles are GCJ-02; drawing WGS84 data on them would shift everything by
# hundreds of metres, so the default basemap is OpenStreetMap-style WGS84/Web Mercator.
BASEMAP = "OpenStreetMap"
PALETTE = ["#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026"]


def _bins(counts: np.ndarray) -> list[float]:
    """Quantile class breaks (at least 1 apart), so a few dense districts don't wash out."""
    if len(counts) == 0:
        return [0, 1]
    qs = np.unique(np.quantile(counts, [0, 0.5, 0.75, 0.9, 0.97, 0.995, 1.0]).round())
    if len(qs) < 2:
        qs = np.array([qs[0], qs[0] + 1])
    return [float(q) for q in qs]


def build_map(cells: gpd.GeoDataFrame, counties: gpd.GeoDataFrame,
              provinces: gpd.GeoDataFrame, *, resolution: int) -> str:
    bounds = provinces.total_bounds if len(provinces) else counties.total_bounds
    fmap = folium.Map(tiles=BASEMAP, control_scale=True, prefer_canvas=True)
    fmap.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    fmap.get_root().header.add_child(folium.Element(
        '<meta charset="utf-8"><title>riskmap 特种设备区域风险地图</title>'))

    breaks = _bins(cells["count"].to_numpy()) if len(cells) else [0, 1]
    colours = cm.StepColormap(PALETTE[: max(1, len(breaks) - 1)], index=breaks,
                              vmin=breaks[0], vmax=breaks[-1],
                              caption=f"每个 H3 网格（分辨率 {resolution}）的设备数量")

    if len(cells):
        folium.GeoJson(
            cells.to_json(drop_id=True),
            name=f"设备分布（H3 分辨率 {resolution}）",
            style_function=lambda f: {"fillColor": colours(f["properties"]["count"]),
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
    colours.add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    return fmap.get_root().render()
