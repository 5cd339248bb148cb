/* The region page (/regions/{adcode}): charts from the region's summary
   (/api/regions/{adcode}/summary, the caller's session cookie), the category × level counts
   the page carries, the sortable ranking of child regions and the report year switch.
   Every text drawn comes from data and is set as text (ECharts draws on a canvas). */
(function () {
  "use strict";
  var COLOURS = { red: "#d7191c", orange: "#fd8d3c", yellow: "#fed976", blue: "#2c7bb6" };
  var facts = JSON.parse(document.getElementById("region-facts").textContent);
  var levels = facts.levels;
  var names = facts.level_names;
  var charts = [];

  function box(id) { return document.getElementById(id); }

  function say(id, text) {
    var box = document.getElementById(id);
    if (!box) { return; }
    box.textContent = "";
    var p = document.createElement("p");
    p.className = "muted chart-note";
    p.textContent = text;
    box.appendChild(p);
  }

  function chart(id, option) {
    var box = document.getElementById(id);
    if (!box || typeof echarts === "undefined") { return; }
    var c = echarts.init(box, null, { renderer: "canvas" });
    c.setOption(option);
    charts.push(c);
  }

  function stacked(id, rows, label, horizontal) {
    if (!rows.length) { say(id, "无在用设备。"); return; }
    var cats = { type: "category", data: rows.map(label),
                 axisLabel: { interval: 0, rotate: horizontal ? 0 : 30, fontSize: 11 } };
    var vals = { type: "value", name: "台", minInterval: 1 };
    chart(id, {
      animation: false,
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      legend: { top: 0, data: levels.map(function (lv) { return names[lv]; }) },
      grid: { left: 8, right: 16, top: 32, bottom: 8, containLabel: true },
      xAxis: horizontal ? vals : cats,
      yAxis: horizontal ? { type: "category", data: cats.data, inverse: true,
                            axisLabel: { fontSize: 11, overflow: "truncate",
                                         width: Math.min(180, box(id).clientWidth * 0.4) } }
        : vals,
      series: levels.map(function (lv) {
        return { name: names[lv], type: "bar", stack: "level", barMaxWidth: 36,
                 itemStyle: { color: COLOURS[lv] },
                 data: rows.map(function (r) { return r[lv] === undefined ?
                   (r["n_" + lv] || 0) : r[lv]; }) };
      })
    });
  }

  function pie(id, region) {
    var data = levels.map(function (lv) {
      return { name: names[lv], value: region["n_" + lv] || 0, itemStyle: { color: COLOURS[lv] } };
    }).filter(function (d) { return d.value > 0; });
    if (!data.length) { say(id, "无在用设备。"); return; }
    chart(id, {
      animation: false,
      tooltip: { trigger: "item", formatter: "{b}：{c} 台（{d}%）" },
      legend: { bottom: 0 },
      series: [{ type: "pie", radius: ["35%", "65%"], data: data,
                 label: { formatter: "{b}\n{c} 台" } }]
    });
  }

  stacked("chart-category", facts.categories, function (r) { return r.name; }, false);

  fetch("/api/regions/" + encodeURIComponent(facts.adcode) + "/summary",
        { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) { throw new Error(body.detail || ("HTTP " + r.status)); }
        return body;
      });
    })
    .then(function (body) {
      pie("chart-level", body.region);
      var industries = (body.industries || []).filter(function (r) { return r.equipment > 0; })
        .sort(function (a, b) { return (b.equipment || 0) - (a.equipment || 0); });
      var tall = document.getElementById("chart-industry");
      if (tall) { tall.style.height = Math.max(240, 60 + industries.length * 26) + "px"; }
      stacked("chart-industry", industries, function (r) {
        return (r.industry_name || "未知行业") + "（" + r.industry + "）";
      }, true);
    })
    .catch(function (err) {
      var text = "汇总数据加载失败：" + err.message;
      say("chart-level", text);
      say("chart-industry", text);
    });

  window.addEventListener("resize", function () {
    charts.forEach(function (c) { c.resize(); });
  });

  // the child regions and the officers, sortable by any column (numbers by data-value)
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.tabIndex = 0;
      th.title = "按此列排序";
      function sort() {
        var desc = th.getAttribute("aria-sort") !== "descending";
        var numeric = th.getAttribute("data-type") === "num";
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[col].getAttribute("data-value");
          var y = b.cells[col].getAttribute("data-value");
          var d = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
          return desc ? -d : d;
        });
        rows.forEach(function (r) { body.appendChild(r); });
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", desc ? "descending" : "ascending");
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
      });
    });
  });

  // the report links follow the chosen year
  var year = document.getElementById("report-year");
  if (year) {
    year.addEventListener("change", function () {
      var base = "/api/regions/" + encodeURIComponent(facts.adcode) + "/report?year=" +
        encodeURIComponent(year.value);
      var html = document.getElementById("report-html");
      var pdf = document.getElementById("report-pdf");
      html.href = base + "&format=html";
      html.textContent = "打开 " + year.value + " 年度报告（网页）";
      pdf.href = base + "&format=pdf";
    });
  }
})();
