/* The small maps of the /ogc HTML pages (web/ogc_html.py): a collection's extent and its
   first features (fetched as JSON from its items link), a page of features or one feature.
   Facts come from the page's JSON block; every value drawn is set as text (tooltips are
   elements whose textContent is set), never as HTML. No basemap: the pages work offline. */
(function () {
  "use strict";
  var box = document.getElementById("ogc-map");
  var factsNode = document.getElementById("ogc-map-facts");
  var note = document.getElementById("ogc-map-note");
  if (!box || !factsNode || typeof L === "undefined") { return; }
  var facts = JSON.parse(factsNode.textContent);
  var map = L.map(box, { attributionControl: false, zoomSnap: 0.25 });
  var bounds = null;

  function say(text) { if (note) { note.textContent = text; } }

  function tooltip(text) {
    var span = document.createElement("span");
    span.textContent = text;
    return span;
  }

  function draw(features, latLon) {
    var layer = L.geoJSON({ type: "FeatureCollection", features: features }, {
      coordsToLatLng: function (c) { return latLon ? L.latLng(c[0], c[1]) : L.latLng(c[1], c[0]); },
      pointToLayer: function (_f, latlng) {
        return L.circleMarker(latlng, { radius: 5, weight: 1, color: "#1f4e79",
                                        fillColor: "#2c7bb6", fillOpacity: 0.8 });
      },
      style: function () { return { weight: 1, color: "#1f4e79", fillOpacity: 0.25 }; },
      onEachFeature: function (f, l) {
        var p = f.properties || {};
        var label = p.label !== undefined && p.label !== null ? String(p.label) :
          (f.id !== undefined && f.id !== null ? String(f.id) : "");
        if (label) { l.bindTooltip(tooltip(label)); }
      }
    }).addTo(map);
    var b = layer.getBounds();
    if (b.isValid()) { bounds = bounds ? bounds.extend(b) : b; }
    return features.length;
  }

  function fit() {
    if (bounds && bounds.isValid()) {
      map.fitBounds(bounds, { padding: [12, 12], maxZoom: 16 });
    } else {
      map.setView([34.0, 113.6], 6);
    }
  }

  if (facts.bbox) {
    var b = facts.bbox;  // CRS84: lon, lat
    var rect = L.rectangle([[b[1], b[0]], [b[3], b[2]]],
                           { weight: 2, color: "#d7191c", fill: false, interactive: false });
    rect.addTo(map);
    bounds = rect.getBounds();
  }
  if (facts.features) {
    var n = draw(facts.features, facts.latLon);
    say(n ? "地图显示本页 " + n + " 个要素（无底图）。" : "本页没有可绘制的要素。");
  }
  fit();
  if (facts.items && /^(https?:\/\/|\/)/i.test(facts.items)) {
    say("正在加载要素……");
    fetch(facts.items, { credentials: "same-origin",
                         headers: { Accept: "application/geo+json, application/json" } })
      .then(function (r) {
        if (!r.ok) { throw new Error(String(r.status)); }
        return r.json();
      })
      .then(function (body) {
        var features = Array.isArray(body.features) ? body.features : [];
        var n = draw(features, false);
        fit();
        say("红框为空间范围；地图显示前 " + n + " 个要素（共 " +
            (typeof body.numberMatched === "number" ? body.numberMatched : "?") + " 个，无底图）。");
      })
      .catch(function (e) { say("要素加载失败（" + e.message + "），仅显示空间范围。"); });
  }
})();
