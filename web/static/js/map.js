/* The risk map (/map): styles of the tiled layers, boundaries and names from
 * /map/boundaries, legends of the visible layers, and popups asked of the layer API.
 * The basemaps and the datum our data is drawn in are basemaps.js's (riskmapBasemaps).
 * Loaded in the page's head before Leaflet: the top level defines only the tile styles
 * (riskmapStyles); the rest runs once the page, and the map folium composed, exist.
 * Every value from data is set as text (textContent), never as HTML. */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("riskmap-config").textContent);
  var ORDER = ["red", "orange", "yellow", "blue"];
  var WARN = ["#999999", "#fdae61", "#f46d43", "#a50026"];
  var MAJOR = "#67000d", GENERAL = "#ef6548", BOOSTED = "#6a51a3";

  function colour(level) {
    return (cfg.levels[level] && cfg.levels[level].colour) || cfg.noLevel;
  }
  function topLevel(p) {
    for (var i = 0; i < ORDER.length; i++) { if (p["n_" + ORDER[i]] > 0) { return ORDER[i]; } }
    return null;
  }
  function cellRes(z) { return z <= 6 ? 5 : z === 7 ? 6 : z <= 9 ? 7 : z <= 11 ? 8 : 9; }

  window.riskmapStyles = {
    "risk-cells": function (p) {
      return {fill: true, fillColor: colour(p.level), fillOpacity: 0.6, color: "#666666",
              weight: 0.3};
    },
    "hotspots": function () {
      return {fill: true, fillColor: "#7a0177", fillOpacity: 0.35, color: "#7a0177", weight: 1.5};
    },
    "parks": function () {
      return {fill: false, color: "#08519c", weight: 1.5, dashArray: "4 3"};
    },
    "warnings": function (p) {
      if (p.admin_level !== "county" || !p.grade_rank) { return []; }
      return {fill: false, weight: 1 + p.grade_rank, color: WARN[p.grade_rank] || WARN[0]};
    },
    "hazards": function (p, zoom) {
      if (p.count !== undefined) {
        return {fill: true, fillColor: p.n_major > 0 ? MAJOR : GENERAL, fillOpacity: 0.45,
                color: MAJOR, weight: 0.5};
      }
      return {radius: zoom >= 14 ? 5 : 3.5, fill: true,
              fillColor: p.level === "重大" ? MAJOR : GENERAL, fillOpacity: 0.9,
              color: "#ffffff", weight: 0.8};
    },
    "equipment": function (p, zoom) {
      if (p.count !== undefined) {
        return {fill: true, fillColor: colour(topLevel(p)), fillOpacity: 0.55, color: "#555555",
                weight: 0.4};
      }
      return {radius: zoom >= 15 ? 5 : 3, fill: true, fillColor: colour(p.level),
              fillOpacity: 0.9, color: "#333333", weight: 0.5};
    },
    "regions": function (p) {  // county level only, coloured by its level
      if (p.admin_level !== "county") { return []; }
      return {fill: true, fillColor: colour(p.level), fillOpacity: 0.35, color: "#555555",
              weight: 0.8};
    },
    "venues": function (p) {
      return {fill: true, fillColor: colour(p.max_level), fillOpacity: 0.25,
              color: colour(p.max_level), weight: 2};
    },
    "units": function (p, zoom) {
      if (p.count !== undefined) {
        return {fill: true, fillColor: colour(topLevel(p)), fillOpacity: 0.45, color: "#555555",
                weight: 0.4};
      }
      return {radius: zoom >= 15 ? 6 : 4, fill: true, fillColor: colour(p.level),
              fillOpacity: 0.9, color: "#08306b", weight: 1.2};
    },
    "frequency": function (p, zoom) {
      if (p.count !== undefined) {
        return {fill: true, fillColor: BOOSTED, fillOpacity: 0.4, color: BOOSTED, weight: 0.5};
      }
      return {radius: zoom >= 15 ? 6 : 4, fill: true, fillColor: BOOSTED, fillOpacity: 0.85,
              color: "#ffffff", weight: 1};
    },
    "overdue": function (p, zoom) {
      if (p.count !== undefined) {
        return {fill: true, fillColor: "#252525", fillOpacity: 0.35, color: "#000000",
                weight: 0.5};
      }
      return {radius: zoom >= 15 ? 6 : 4, fill: true, fillColor: colour(p.level),
              fillOpacity: 0.9, color: "#000000", weight: 2};
    }
  };

  // ---------------------------------------------------------------- values as shown
  function shown(name, value, unit) {
    if (value === null || value === undefined || value === "") { return "—"; }
    if (value === true) { return "是"; }
    if (value === false) { return "否"; }
    if ((name === "level" || name === "max_level") && cfg.levels[value]) {
      return cfg.levels[value].name;
    }
    if (name === "industry" && cfg.industries[value]) {
      return value + " " + cfg.industries[value];
    }
    if (cfg.shares.indexOf(name) >= 0 && typeof value === "number") {
      return (value * 100).toFixed(value < 0.1 ? 1 : 0) + "%";
    }
    if (typeof value === "number" && !Number.isInteger(value)) {
      value = Math.round(value * 100) / 100;
    }
    return String(value) + (unit ? " " + unit : "");
  }
  function table(title, rows) {
    var box = document.createElement("div"), head = document.createElement("b");
    head.textContent = title;
    box.appendChild(head);
    var t = document.createElement("table");
    t.className = "riskmap-popup";
    rows.forEach(function (r) {
      var tr = t.insertRow(), k = tr.insertCell(), v = tr.insertCell();
      k.textContent = r[0]; v.textContent = r[1];
    });
    box.appendChild(t);
    return box;
  }
  function rowsOf(fields, p) {
    return fields.map(function (f) { return [f[1], shown(f[0], p[f[0]], f[2])]; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var map = window[cfg.map];
    if (!map) { return; }
    var layer = function (id) { return window[cfg.layers[id]]; };
    var B = window.riskmapBasemaps;
    if (cfg.openZoom) { map.setZoom(cfg.openZoom, {animate: false}); }

    // ------------------------------------------- basemaps, and our data in their datum
    // every tiled layer follows the datum of the basemap shown (GCJ-02 on AMap)
    Object.keys(cfg.layers).forEach(function (id) { if (layer(id)) { B.tiles(layer(id)); } });

    // --------------------------------------------------------- boundaries and names
    var outlines = null;
    function drawBoundaries() {
      if (!outlines) { return; }
      ["counties", "provinces", "labels"].forEach(function (g) {
        window[cfg.groups[g]].clearLayers();
      });
      L.geoJSON(outlines.counties, B.geoJSONOptions({interactive: false, style: function () {
        return {fill: false, color: "#3b5b92", weight: 0.8};
      }})).addTo(window[cfg.groups.counties]);
      L.geoJSON(outlines.provinces, B.geoJSONOptions({interactive: false, style: function () {
        return {fill: false, color: "#1f2d4d", weight: 2.5};
      }})).addTo(window[cfg.groups.provinces]);
      outlines.labels.features.forEach(function (f) {
        var span = document.createElement("span");
        span.textContent = f.properties.name;
        var c = f.geometry.coordinates;
        L.marker(B.shown(c[1], c[0]), {interactive: false, keyboard: false, icon: L.divIcon({
          className: "riskmap-label riskmap-label-" + f.properties.level, html: span,
          iconSize: null})}).addTo(window[cfg.groups.labels]);
      });
    }
    B.onDatum(drawBoundaries);
    B.attach(map, window.riskmapControl, window[cfg.offline]);
    fetch(cfg.boundaries, {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (b) { outlines = b; drawBoundaries(); })
      .catch(function (status) { console.warn("行政区划边界读取失败", status); });

    // ------------------------------------------------------- legend and cell size
    var legend = document.getElementById("riskmap-legend");
    function refresh() {
      legend.querySelectorAll("section[data-layer]").forEach(function (s) {
        var l = layer(s.getAttribute("data-layer"));
        s.hidden = !(l && map.hasLayer(l));
      });
      var z = map.getZoom(), size = document.getElementById("riskmap-cell-size");
      if (size) { size.textContent = String(cfg.cellAreas[String(cellRes(z))]); }
      var box = map.getContainer();
      box.classList.toggle("riskmap-zoom-low", z < 9);
    }
    map.on("overlayadd overlayremove zoomend", refresh);
    refresh();

    // ------------------------------------------------------------------- filters
    // each tiled layer asks /tiles with the filters it takes (cfg.filterable); the popups
    // ask /api/layers with the same ones, so a click shows what the map shows
    var filterForm = document.getElementById("riskmap-filter-form");
    var filters = {};
    function filterQuery(id) {
      var taken = cfg.filterable[id] || [], parts = [];
      taken.forEach(function (name) {
        if (filters[name]) { parts.push(name + "=" + encodeURIComponent(filters[name])); }
      });
      return parts.join("&");
    }
    function applyFilters() {
      filters = {};
      ["category", "industry", "level"].forEach(function (name) {
        var v = filterForm.elements[name].value;
        if (v) { filters[name] = v; }
      });
      Object.keys(cfg.layers).forEach(function (id) {
        var l = layer(id), q = filterQuery(id);
        if (!l || !l.setUrl) { return; }
        var url = "/tiles/" + id + "/{z}/{x}/{y}.mvt" + (q ? "?" + q : "");
        if (l._url !== url) { l.setUrl(url); }
      });
      var on = Object.keys(filters).length;
      document.getElementById("riskmap-filters").classList.toggle("active", on > 0);
    }
    filterForm.addEventListener("change", applyFilters);
    filterForm.addEventListener("reset", function () { setTimeout(applyFilters, 0); });

    // ------------------------------------------------------------------- popups
    function ask(id, bbox, extra) {
      var q = filterQuery(id);
      var url = "/api/layers/" + id + "?limit=5&bbox=" + bbox.join(",") + (extra || "")
        + (q ? "&" + q : "");
      return fetch(url, {credentials: "same-origin"}).then(function (r) {
        return r.ok ? r.json() : Promise.reject(r.status);
      });
    }
    // the WGS84 box of ``d`` pixels around a clicked point (drawn in the basemap's datum)
    function around(latlng, d) {
      var c = map.latLngToContainerPoint(latlng);
      var sw = B.wgs84(map.containerPointToLatLng([c.x - d, c.y + d]));
      var ne = B.wgs84(map.containerPointToLatLng([c.x + d, c.y - d]));
      return [sw.lng, sw.lat, ne.lng, ne.lat].map(function (v) { return v.toFixed(6); });
    }
    function open(latlng, content) {
      L.popup({maxWidth: 380}).setLatLng(latlng).setContent(content).openOn(map);
    }
    // ------------------------------------------------ search: fly there, open its popup
    var form = document.getElementById("riskmap-search");
    var status = document.getElementById("riskmap-search-status");
    var list = document.getElementById("riskmap-results");
    // Only the latest search may write the status or open a popup: a slow answer to an
    // earlier search must not overwrite a later one's.
    var asked = 0;
    function item(id, fid) {
      return fetch("/ogc/collections/" + id + "/items/" + encodeURIComponent(fid),
                   {credentials: "same-origin"}).then(function (r) {
        return r.ok ? r.json() : Promise.reject(r.status);
      });
    }
    function go(hit, ticket) {
      if (ticket !== asked) { return; }
      list.hidden = true;
      if (hit.lon === null || hit.lat === null) {
        status.textContent = "已找到，但没有位置";
        return;
      }
      status.textContent = "";
      var at = B.shown(hit.lat, hit.lon), equipment = hit.layer === "equipment";
      if (layer(hit.layer)) { map.addLayer(layer(hit.layer)); }
      map.setView(at, 16, {animate: false});
      item(hit.layer, hit.fid).then(function (f) {
        if (ticket !== asked) { return; }
        open(at, table(equipment ? "设备" : cfg.titles.units,
                       rowsOf(equipment ? cfg.equipment : cfg.popups.units, f.properties)));
      }).catch(function (code) {
        if (ticket === asked) { status.textContent = "读取失败（" + code + "）"; }
      });
    }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var q = form.elements.q.value.trim(), ticket = ++asked;
      list.hidden = true;
      while (list.firstChild) { list.removeChild(list.firstChild); }
      if (q.length < 2) { status.textContent = "请至少输入两个字"; return; }
      status.textContent = "查找中…";
      fetch("/api/search?q=" + encodeURIComponent(q), {credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (body) {
          if (ticket !== asked) { return; }
          var hits = body.results;
          if (!hits.length) { status.textContent = "未找到（或不在您的权限范围内）"; return; }
          if (hits.length === 1) { go(hits[0], ticket); return; }
          status.textContent = "找到 " + hits.length + " 项" + (hits.length >= 10 ? "（前 10 项）" : "")
            + "，请选择：";
          hits.forEach(function (hit) {
            var li = document.createElement("li"), b = document.createElement("button");
            b.type = "button";
            b.textContent = hit.kind_zh + "｜" + (hit.name || "—") + "｜" + (hit.code || "")
              + (hit.level_zh ? "｜" + hit.level_zh : "");
            b.addEventListener("click", function () { go(hit, ticket); });
            li.appendChild(b);
            list.appendChild(li);
          });
          list.hidden = false;
        })
        .catch(function (code) {
          if (ticket === asked) { status.textContent = "查找失败（" + code + "）"; }
        });
    });

    map.on("click", function (e) {
      var z = map.getZoom(), steps = [];
      var point = around(e.latlng, 6), here = around(e.latlng, 0.5);
      if (z >= cfg.pointsFromZoom && map.hasLayer(layer("equipment"))) {
        steps.push(function () {
          return ask("equipment", point).then(function (fc) {
            if (!fc.features.length) { return null; }
            var box = table("设备", rowsOf(cfg.equipment, fc.features[0].properties));
            if (fc.numberMatched > 1) {
              var more = document.createElement("div");
              more.textContent = "此处共 " + fc.numberMatched + " 台设备";
              box.appendChild(more);
            }
            return box;
          });
        });
      }
      var points = z >= cfg.pointsFromZoom
        ? [["overdue", point, ""], ["frequency", point, ""], ["units", point, ""]] : [];
      points.concat([["hazards", point, ""], ["hotspots", here, ""], ["parks", here, ""],
       ["venues", here, ""], ["warnings", here, ""], ["regions", here, ""],
       ["risk-cells", here, "&resolution=" + cellRes(z)]]).forEach(function (s) {
        if (!layer(s[0]) || !map.hasLayer(layer(s[0]))) { return; }
        steps.push(function () {
          return ask(s[0], s[1], s[2]).then(function (fc) {
            var f = fc.features.find(function (x) {
              if (s[0] === "regions") { return x.properties.admin_level === "county"; }
              return s[0] !== "warnings"
                || (x.properties.admin_level === "county" && x.properties.grade_rank > 0);
            });
            if (!f) { return null; }
            var rows = rowsOf(cfg.popups[s[0]], f.properties);
            if (s[0] === "risk-cells") {
              rows.push(["网格大小", cfg.cellAreas[String(f.properties.resolution)] + " km²"]);
            }
            return table(cfg.titles[s[0]], rows);
          });
        });
      });
      var next = function (i) {
        if (i >= steps.length) { return; }
        steps[i]().then(function (content) {
          if (content) { open(e.latlng, content); } else { next(i + 1); }
        }).catch(function (status) {  // as text: an Error's message may quote the response
          var note = document.createElement("span");
          note.textContent = "无法读取（" + status + "）";
          open(e.latlng, note);
        });
      };
      next(0);
    });
  });
})();
