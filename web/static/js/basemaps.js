/* Basemaps of the map pages, and the datum our data is drawn in (web/basemaps.py).
 *
 * Our data is WGS84 (CGCS2000). The offline basemap, 天地图 and OpenStreetMap draw in it
 * too; 高德 (AMap) draws in GCJ-02, hundreds of metres off. While a GCJ-02 basemap is on,
 * everything of ours is drawn shifted to GCJ-02:
 *   - coordinates a page draws itself (boundaries, markers) go through shown(lat, lng);
 *   - a vector tile is moved as a whole by the shift at its centre (tiles(layer)): across a
 *     tile the shift varies by less than a pixel at every zoom;
 *   - a clicked point goes back through wgs84(latlng) before the API is asked about it.
 * A page registers what to redraw when the datum changes (onDatum).
 *
 * The GCJ-02 formula is the published one that geo/datum.py uses (the coordTransform
 * package), the inverse refined by fixed-point iteration as there; tests compare the two.
 * Loaded before Leaflet on the risk map: L is only used inside functions. */
(function () {
  "use strict";
  var A = 6378245.0, EE = 0.00669342162296594323, PI = 3.1415926535897932384626;

  function outOfChina(lng, lat) {
    return !(lng > 73.66 && lng < 135.05 && lat > 3.86 && lat < 53.55);
  }
  function tLat(x, y) {
    var r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    r += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    r += (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2.0 / 3.0;
    r += (160.0 * Math.sin(y / 12.0 * PI) + 320 * Math.sin(y * PI / 30.0)) * 2.0 / 3.0;
    return r;
  }
  function tLng(x, y) {
    var r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    r += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    r += (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2.0 / 3.0;
    r += (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2.0 / 3.0;
    return r;
  }
  /* [lng, lat] in GCJ-02 of a WGS84 point (unchanged outside China) */
  function toGcj02(lng, lat) {
    if (outOfChina(lng, lat)) { return [lng, lat]; }
    var dLat = tLat(lng - 105.0, lat - 35.0), dLng = tLng(lng - 105.0, lat - 35.0);
    var rad = lat / 180.0 * PI, magic = Math.sin(rad);
    magic = 1 - EE * magic * magic;
    var sq = Math.sqrt(magic);
    dLat = (dLat * 180.0) / ((A * (1 - EE)) / (magic * sq) * PI);
    dLng = (dLng * 180.0) / (A / sq * Math.cos(rad) * PI);
    return [lng + dLng, lat + dLat];
  }
  /* [lng, lat] in WGS84 of a GCJ-02 point: iterate on the forward formula (< 1e-9°) */
  function fromGcj02(lng, lat) {
    var x = lng, y = lat;
    for (var i = 0; i < 10; i++) {
      var f = toGcj02(x, y), dx = lng - f[0], dy = lat - f[1];
      x += dx; y += dy;
      if (Math.abs(dx) < 1e-9 && Math.abs(dy) < 1e-9) { break; }
    }
    return [x, y];
  }

  var state = {datum: "wgs84", listeners: [], grids: []};

  function gcj() { return state.datum === "gcj02"; }

  /* where a WGS84 point is drawn on the current basemap, as an L.LatLng */
  function shown(lat, lng) {
    if (!gcj()) { return L.latLng(lat, lng); }
    var g = toGcj02(lng, lat);
    return L.latLng(g[1], g[0]);
  }
  /* the WGS84 point under a drawn position (a click, a corner of the view) */
  function wgs84(latlng) {
    if (!gcj()) { return L.latLng(latlng.lat, latlng.lng); }
    var w = fromGcj02(latlng.lng, latlng.lat);
    return L.latLng(w[1], w[0]);
  }
  /* GeoJSON options that draw WGS84 coordinates where the basemap has them */
  function geoJSONOptions(options) {
    var out = {};
    Object.keys(options || {}).forEach(function (k) { out[k] = options[k]; });
    out.coordsToLatLng = function (c) { return shown(c[1], c[0]); };
    return out;
  }

  /* a vector tile's shift, in pixels at its zoom: the GCJ-02 offset at its centre */
  function tileShift(map, coords, size) {
    var centre = L.point((coords.x + 0.5) * size.x, (coords.y + 0.5) * size.y);
    var at = map.unproject(centre, coords.z), g = toGcj02(at.lng, at.lat);
    var moved = map.project(L.latLng(g[1], g[0]), coords.z);
    return moved.subtract(centre);
  }
  /* a VectorGrid layer whose tiles follow the basemap's datum */
  function tiles(layer) {
    var create = layer.createTile;
    layer.createTile = function (coords, done) {
      var tile = create.call(this, coords, done);
      if (gcj() && this._map) {
        var d = tileShift(this._map, coords, this.getTileSize());
        tile.style.marginLeft = d.x.toFixed(2) + "px";
        tile.style.marginTop = d.y.toFixed(2) + "px";
      }
      return tile;
    };
    state.grids.push(layer);
    return layer;
  }

  function onDatum(callback) { state.listeners.push(callback); }

  function setDatum(datum) {
    if (datum === state.datum) { return; }
    state.datum = datum;
    state.grids.forEach(function (layer) { if (layer._map) { layer.redraw(); } });
    state.listeners.forEach(function (callback) { callback(datum); });
    document.documentElement.setAttribute("data-datum", datum);
  }

  function config() {
    var node = document.getElementById("riskmap-basemaps");
    return node ? JSON.parse(node.textContent) : {offline: "离线底图", default: "offline", maps: []};
  }

  /* The online basemaps into the map's layer control (after its offline entry, the base
   * layer ``offline``); opens the configured one; follows the datum of the one shown. */
  function attach(map, control, offline, cfg) {
    cfg = cfg || config();
    var byLayer = [], opening = null;
    cfg.maps.forEach(function (m) {
      var group = L.layerGroup(m.tiles.map(function (t) {
        return L.tileLayer(t.url, {subdomains: t.subdomains || "abc", maxZoom: 19,
                                   maxNativeZoom: t.maxZoom, attribution: t.attribution});
      }));
      control.addBaseLayer(group, m.name);
      byLayer.push([group, m.datum]);
      if (m.id === cfg.default) { opening = [group, m.datum]; }
    });
    map.on("baselayerchange", function (e) {
      var datum = "wgs84";
      byLayer.forEach(function (b) { if (b[0] === e.layer) { datum = b[1]; } });
      setDatum(datum);
    });
    if (opening) {
      if (offline && map.hasLayer(offline)) { map.removeLayer(offline); }
      map.addLayer(opening[0]);
      setDatum(opening[1]);
    }
  }

  window.riskmapBasemaps = {
    attach: attach, shown: shown, wgs84: wgs84, geoJSONOptions: geoJSONOptions,
    tiles: tiles, onDatum: onDatum, datum: function () { return state.datum; },
    toGcj02: toGcj02, fromGcj02: fromGcj02
  };
})();
