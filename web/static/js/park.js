/* 园区画像 (/parks/{id}, 一园一策): the park on a map with its units, its equipment by
 * category and level, hazards found and closed per month, its riskiest units and its
 * measures with their reasons and basis.
 *
 * The server rendered the header, the figures and the in-use equipment counted by category
 * and level (a JSON block, #park-categories); the rest comes from the scoped API with the
 * session cookie: the profile without its units' records (/api/parks/{id}/profile?units=false),
 * the park's outline (/api/layers/parks?park=) and its units with only what the map shows
 * (/parks/{id}/units.geojson). Every
 * value from data goes into the page as text (textContent, never innerHTML); errors show the
 * problem's Chinese detail. Charts use ECharts' SVG renderer, so they print as vectors. */
(function () {
  "use strict";

  var LEVELS = ["red", "orange", "yellow", "blue"];
  var LEVEL_ZH = { red: "重大风险", orange: "较大风险", yellow: "一般风险", blue: "低风险" };
  var COLORS = { red: "#d7191c", orange: "#fd8d3c", yellow: "#fed976", blue: "#2c7bb6",
                 none: "#9e9e9e" };
  var CATEGORY_ZH = { "1000": "锅炉", "2000": "压力容器", "3000": "电梯", "4000": "起重机械",
                      "5000": "场（厂）内专用机动车辆", "6000": "大型游乐设施",
                      "7000": "压力管道元件", "8000": "压力管道", "9000": "客运索道",
                      "F000": "安全附件" };

  var root = document.getElementById("park");
  var parkId = root.getAttribute("data-park");
  var statusEl = document.getElementById("status");
  var charts = [];
  var map = null;

  // helpers --------------------------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") { node.textContent = attrs[key]; }
      else if (key === "className") { node.className = attrs[key]; }
      else if (attrs[key] !== null && attrs[key] !== undefined) {
        node.setAttribute(key, attrs[key]);
      }
    });
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) {
        node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
      }
    });
    return node;
  }

  function say(text, isError) {
    statusEl.textContent = text || "";
    statusEl.className = "status" + (isError ? " error" : "");
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.ok) { return response.json(); }
        return response.json().catch(function () { return {}; }).then(function (problem) {
          var detail = (problem && (problem.detail || problem.title)) ||
            ("请求失败（HTTP " + response.status + "）");
          throw new Error(detail);
        });
      });
  }

  function layerURL(layer, extra) {
    return "/api/layers/" + layer + "?park=" + encodeURIComponent(parkId) + (extra || "");
  }

  function levelBadge(level) {
    return el("span", { className: "level" + (LEVEL_ZH[level] ? " level-" + level : ""),
                        text: LEVEL_ZH[level] || "未分级" });
  }

  function number(v, digits) {
    if (v === null || v === undefined || isNaN(v)) { return "—"; }
    return Number(v).toLocaleString("zh-CN", { maximumFractionDigits: digits || 0 });
  }

  function unitLink(code, name) {
    return el("a", { href: "/units/" + encodeURIComponent(code), text: name || code });
  }

  function chart(id) {
    var node = document.getElementById(id);
    var c = echarts.init(node, null, { renderer: "svg" });
    charts.push(c);
    return c;
  }

  function phone() { return window.innerWidth < 560; }

  // the map --------------------------------------------------------------------------------

  function drawMap(parks, units) {
    var B = window.riskmapBasemaps;
    map = L.map("park-map", { preferCanvas: true, attributionControl: true });
    var outline = L.geoJSON(null, {
      style: { color: "#08519c", weight: 2, dashArray: "4 3", fillColor: "#6baed6",
               fillOpacity: 0.08 }, coordsToLatLng: function (c) { return B.shown(c[1], c[0]); }
    }).addTo(map);
    var points = L.featureGroup();
    // drawn in the basemap's datum (GCJ-02 on AMap), again when the basemap changes
    function draw() {
      outline.clearLayers();
      outline.addData(parks);
      points.clearLayers();
      units.forEach(function (f) {
        if (!f.geometry || f.geometry.type !== "Point") { return; }
        var p = f.properties || {};
        var c = f.geometry.coordinates;
        var marker = L.circleMarker(B.shown(c[1], c[0]), {
          radius: 6, weight: 1, color: "#333", fillOpacity: 0.9,
          fillColor: COLORS[p.level] || COLORS.none });
        marker.bindTooltip(el("span", { text: (p.name || p.credit_code) + " · " +
                                              (LEVEL_ZH[p.level] || "未分级") }));
        marker.bindPopup(function () {
          return el("div", { className: "unit-popup" }, [
            el("b", {}, [unitLink(p.credit_code, p.name)]), el("br"),
            "风险等级：", levelBadge(p.level), el("br"),
            "设备 " + number(p.equipment) + " 台，未销号隐患 " + number(p.open_hazards) + " 项"]);
        });
        points.addLayer(marker);
      });
    }
    B.onDatum(draw);
    draw();
    points.addTo(map);
    var offline = L.layerGroup().addTo(map);
    var control = L.control.layers({}, { "园区范围": outline, "使用单位": points }).addTo(map);
    control.addBaseLayer(offline, "无底图（离线）");
    B.attach(map, control, offline);
    L.control.scale({ imperial: false }).addTo(map);
    var bounds = outline.getBounds();
    if (points.getLayers().length) { bounds = bounds.isValid() ? bounds.extend(points.getBounds())
                                                               : points.getBounds(); }
    if (bounds.isValid()) { map.fitBounds(bounds, { padding: [12, 12] }); }
    else { map.setView([34.0, 113.5], 7); }
    document.getElementById("park-map").setAttribute("data-units", String(points.getLayers().length));
  }

  // the charts -----------------------------------------------------------------------------

  /* The server's counts ([{code, red, orange, yellow, blue, none}]) as rows by code; with no
   * equipment rows, the profile's totals per category as 未分级. */
  function byCategory(counted, categories) {
    var rows = {};
    counted.forEach(function (r) {
      rows[r.code] = { red: r.red, orange: r.orange, yellow: r.yellow, blue: r.blue,
                       none: r.none };
    });
    if (!Object.keys(rows).length && categories) {  // no equipment rows: totals only
      Object.keys(categories).forEach(function (code) {
        rows[code] = { red: 0, orange: 0, yellow: 0, blue: 0, none: categories[code] };
      });
    }
    return rows;
  }

  function drawCategories(rows) {
    var codes = Object.keys(rows).sort();
    var names = codes.map(function (c) { return (CATEGORY_ZH[c] || "未知种类") + "（" + c + "）"; });
    var series = LEVELS.concat(["none"]).map(function (lv) {
      return { name: LEVEL_ZH[lv] || "未分级", type: "bar", stack: "level",
               itemStyle: { color: COLORS[lv] }, barMaxWidth: 22,
               data: codes.map(function (c) { return rows[c][lv]; }) };
    }).filter(function (s) { return s.data.some(function (v) { return v > 0; }); });
    var node = document.getElementById("chart-categories");
    node.style.height = Math.max(300, 70 + 34 * codes.length) + "px";
    chart("chart-categories").setOption({
      animation: false,
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      legend: { top: 0 },
      grid: { left: 8, right: 32, top: 40, bottom: 8, containLabel: true },
      yAxis: { type: "category", data: names, inverse: true,
               axisLabel: { formatter: function (name) {  // long names: the code below
                 var at = name.lastIndexOf("（");
                 return name.length > 12 ? name.slice(0, at) + "\n" + name.slice(at) : name;
               } } },
      xAxis: { type: "value", name: "台", minInterval: 1 },
      series: series
    });
  }

  function drawMonthly(monthly) {
    chart("chart-monthly").setOption({
      animation: false,
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 8, right: 16, top: 36, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: monthly.map(function (m) { return m.month; }),
               axisLabel: { rotate: phone() ? 45 : 0 } },
      yAxis: { type: "value", name: "项", minInterval: 1 },
      series: [
        { name: "发现隐患", type: "line", symbol: "circle", itemStyle: { color: "#fd8d3c" },
          data: monthly.map(function (m) { return m.found; }) },
        { name: "隐患销号", type: "line", symbol: "rect", itemStyle: { color: "#2b6cb0" },
          data: monthly.map(function (m) { return m.closed; }) }
      ]
    });
  }

  // tables and measures --------------------------------------------------------------------

  function drawTopUnits(units) {
    var body = document.querySelector("#top-units tbody");
    body.textContent = "";
    if (!units.length) {
      body.appendChild(el("tr", {}, [el("td", { colspan: "5", text: "园区内暂无使用单位" })]));
      return;
    }
    units.forEach(function (u) {
      body.appendChild(el("tr", {}, [
        el("td", {}, [unitLink(u.credit_code, u.name)]),
        el("td", { text: u.credit_code }),
        el("td", {}, [levelBadge(u.level)]),
        el("td", { className: "num", text: number(u.D_max, 1) }),
        el("td", { className: "num", text: number(u.open_hazards) })
      ]));
    });
  }

  function measureRules() {
    var out = {};
    document.querySelectorAll("#measure-rules > div").forEach(function (d) {
      out[d.getAttribute("data-id")] = {
        reason: d.querySelector("dt").textContent, basis: d.querySelector("dd").textContent };
    });
    return out;
  }

  function drawMeasures(texts, ids) {
    var list = document.getElementById("measures");
    var rules = measureRules();
    list.textContent = "";
    if (!texts.length) {
      list.appendChild(el("li", { text: "园区画像未触发任何措施规则" }));
      return;
    }
    texts.forEach(function (text, i) {
      var rule = rules[ids[i]] || {};
      list.appendChild(el("li", {}, [
        el("span", { className: "measure-text", text: text }),
        rule.reason ? el("span", { className: "why", text: "原因：" + rule.reason }) : null,
        rule.basis ? el("span", { className: "basis", text: "依据：" + rule.basis }) : null
      ]));
    });
  }

  // start ----------------------------------------------------------------------------------

  document.getElementById("print-page").addEventListener("click", function () {
    window.print();
  });
  window.addEventListener("resize", function () {
    charts.forEach(function (c) { c.resize(); });
  });
  window.addEventListener("beforeprint", function () {
    charts.forEach(function (c) { c.resize(); });
    if (map) { map.invalidateSize(); }
  });

  say("正在加载园区画像…");
  var id = encodeURIComponent(parkId);
  var counted = JSON.parse(document.getElementById("park-categories").textContent || "[]");
  Promise.all([
    getJSON("/api/parks/" + id + "/profile?units=false"),
    getJSON(layerURL("parks")),
    getJSON("/parks/" + id + "/units.geojson")
  ]).then(function (got) {
    var park = got[0].park;
    drawMap(got[1], got[2].features || []);
    drawCategories(byCategory(counted, park.categories));
    drawMonthly(park.monthly || []);
    drawTopUnits(park.top_units || []);
    drawMeasures(park.measures || [], park.measure_ids || []);
    say("");
    root.setAttribute("data-loaded", "true");
  }).catch(function (err) {
    say("园区画像加载失败：" + err.message, true);
  });
})();
