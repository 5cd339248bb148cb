"""The basemaps a map page offers, and the datum each one draws in.

Every page opens on the offline basemap: our own county and province boundaries and the
names of cities and counties, so a map works on a government intranet with no internet.
The online basemaps are optional and configured (``RISKMAP_BASEMAPS``,
``RISKMAP_BASEMAP`` and ``RISKMAP_TIANDITU_KEY``):

- **天地图** (the national platform's Web Mercator tiles, ``TILEMATRIXSET=w``) is CGCS2000,
  which is WGS84 at map scale: our data goes on it unchanged. It needs a key; with one the
  vector map and the imagery are both offered, each with its annotation layer.
- **高德地图 (AMap)** draws in GCJ-02, hundreds of metres off WGS84. While it is on, the page
  shifts our data to GCJ-02 (web/static/js/basemaps.js: every vertex of the boundaries and
  points, and each vector tile by the shift at its centre, which at every zoom differs
  from the shift at its corners by less than a pixel) and shifts clicks back before asking
  the API.
- **OpenStreetMap** is WGS84.

This module only describes them (names in Chinese, tile URLs, datum, the hosts the
Content-Security-Policy must admit for their images); the settings say which are offered.
"""

from __future__ import annotations

from dataclasses import dataclass

OFFLINE = "offline"
WGS84 = "wgs84"
GCJ02 = "gcj02"
TIANDITU_WMTS = ("https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile"
                 "&VERSION=1.0.0&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
                 "&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={key}")


@dataclass(frozen=True)
class Tiles:
    """One raster tile layer of a basemap (a basemap may stack an annotation layer)."""

    url: str
    subdomains: str = ""
    max_zoom: int = 18
    attribution: str = ""


@dataclass(frozen=True)
class Basemap:
    id: str
    name: str               # in the layer control
    datum: str              # what its tiles are drawn in: wgs84 (CGCS2000 too) or gcj02
    tiles: tuple[Tiles, ...]
    hosts: tuple[str, ...]  # img-src of the pages' CSP while it is offered


def _tianditu(layer: str, key: str) -> str:
    # the key is URL-safe by validation (settings); {s}, {z}, {x}, {y} stay for Leaflet
    return (TIANDITU_WMTS.replace("{layer}", layer).replace("{key}", key))


def _tianditu_maps(key: str) -> tuple[Basemap, ...]:
    attribution = "© 国家地理信息公共服务平台 天地图"
    hosts = ("https://*.tianditu.gov.cn",)
    return (
        Basemap("tianditu", "天地图 矢量（需联网）", WGS84, (
            Tiles(_tianditu("vec", key), "01234567", 18, attribution),
            Tiles(_tianditu("cva", key), "01234567", 18)), hosts),
        Basemap("tianditu-img", "天地图 影像（需联网）", WGS84, (
            Tiles(_tianditu("img", key), "01234567", 18, attribution),
            Tiles(_tianditu("cia", key), "01234567", 18)), hosts),
    )


AMAP = Basemap(
    "amap", "高德地图（需联网，GCJ-02，叠加数据已纠偏）", GCJ02, (Tiles(
        "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
        "&x={x}&y={y}&z={z}", "1234", 18, "© 高德地图"),),
    ("https://*.is.autonavi.com",))
OSM = Basemap(
    "osm", "OpenStreetMap（需联网）", WGS84,
    (Tiles("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "", 19,
           "© OpenStreetMap 贡献者"),),
    ("https://tile.openstreetmap.org",))
# what RISKMAP_BASEMAPS may name (天地图 needs RISKMAP_TIANDITU_KEY as well)
CHOICES = ("tianditu", "amap", "osm")
OFFLINE_NAME = "离线底图（行政区划）"


def offered(choices: list[str] | tuple[str, ...], tianditu_key: str | None
            ) -> tuple[Basemap, ...]:
    """The online basemaps offered, in the order of ``choices`` (天地图 only with a key)."""
    out: list[Basemap] = []
    for choice in choices:
        if choice == "tianditu" and tianditu_key:
            out.extend(_tianditu_maps(tianditu_key))
        elif choice == "amap":
            out.append(AMAP)
        elif choice == "osm":
            out.append(OSM)
    return tuple(out)


def page_config(choices: list[str] | tuple[str, ...], default: str,
                tianditu_key: str | None) -> dict:
    """What web/static/js/basemaps.js needs: the offline entry's name, the online ones
    (name, datum, tile layers) and which opens first (the offline one unless ``default``
    names one offered)."""
    maps = offered(choices, tianditu_key)
    ids = {m.id for m in maps}
    return {
        "offline": OFFLINE_NAME,
        "default": default if default in ids else OFFLINE,
        "maps": [{"id": m.id, "name": m.name, "datum": m.datum, "tiles": [
            {"url": t.url, "subdomains": t.subdomains, "maxZoom": t.max_zoom,
             "attribution": t.attribution} for t in m.tiles]} for m in maps],
    }


def image_hosts(choices: list[str] | tuple[str, ...], tianditu_key: str | None
                ) -> tuple[str, ...]:
    """The hosts the pages' ``img-src`` admits: those of the offered basemaps only."""
    hosts: list[str] = []
    for basemap in offered(choices, tianditu_key):
        hosts.extend(h for h in basemap.hosts if h not in hosts)
    return tuple(hosts)
