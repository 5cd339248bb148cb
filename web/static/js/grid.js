/* 我的网格 (/grid): the grid officer's cells on a map beside their worklist; with
 * ?officer=<id>, a regulator's view of that officer's grid (the page's data-query).
 *
 * Everything comes from the scoped API with the session cookie; state-changing calls carry
 * X-CSRF-Token from /api/session. The cells and the worklist come from the page's own slim
 * endpoints (/api/grid/cells, /api/grid/worklist); a cell's items are picked from the whole
 * list here (each item names its cell), not asked for again. Every value from data goes
 * into the page as text (textContent or text nodes, never as markup), and errors show the
 * problem's Chinese detail. */
(function () {
  "use strict";

  var B = window.riskmapBasemaps;  // basemaps and the datum our data is drawn in
  var LEVELS = {
    red: ["重大风险", "level-red"], orange: ["较大风险", "level-orange"],
    yellow: ["一般风险", "level-yellow"], blue: ["低风险", "level-blue"],
    "重大": ["重大隐患", "level-red"], "一般": ["一般隐患", "level-orange"]
  };
  var COLORS = { red: "#d7191c", orange: "#fd8d3c", yellow: "#fed976", blue: "#2c7bb6",
                 "重大": "#d7191c", "一般": "#fd8d3c" };
  var NEXT = { "已登记": "整改中", "整改中": "已销号" };
  var RESULTS = ["符合要求", "责令整改", "已督促报检", "其他（在下方说明）"];

  var state = { csrf: null, all: [], items: [], cell: null, selected: null, cells: null,
                outline: null, markers: null, map: null, byCell: {} };
  var listEl = document.getElementById("worklist");
  var query = listEl.getAttribute("data-query") || "";  // "" or "?officer=<id>"
  var statusEl = document.getElementById("status");
  var detailEl = document.getElementById("detail");
  var today = listEl.getAttribute("data-today");

  // helpers --------------------------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") { node.textContent = attrs[key]; }
      else if (key === "className") { node.className = attrs[key]; }
      else if (attrs[key] !== null && attrs[key] !== undefined && attrs[key] !== false) {
        node.setAttribute(key, attrs[key] === true ? "" : attrs[key]);
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
    statusEl.textContent = text;
    statusEl.className = isError ? "status error" : "status ok";
  }

  function chinese(detail) {
    return String(detail || "").split(" / ")[0];
  }

  function problemText(body, status) {
    if (body && body.detail) { return chinese(body.detail); }
    return "请求失败（HTTP " + status + "），请稍后重试";
  }

  function api(path, options) {
    var init = { credentials: "same-origin", headers: { Accept: "application/json" } };
    options = options || {};
    if (options.method) { init.method = options.method; }
    if (options.form !== undefined) {
      init.body = options.form;  // multipart: the browser sets its Content-Type
    } else if (options.body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    if (init.method && init.method !== "GET" && state.csrf) {
      init.headers["X-CSRF-Token"] = state.csrf;
    }
    busy(1);
    return fetch(path, init).then(function (response) {
      return response.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        if (!response.ok) { throw new Error(problemText(body, response.status)); }
        return body;
      });
    }).finally(function () { busy(-1); });
  }

  // requests in flight, as aria-busy on the page (screen readers, and tests, wait for it)
  var inFlight = 0;
  function busy(step) {
    inFlight += step;
    document.body.setAttribute("aria-busy", inFlight > 0 ? "true" : "false");
  }

  function levelBadge(level) {
    var known = LEVELS[level];
    return el("span", { className: "level " + (known ? known[1] : "level-none"),
                        text: known ? known[0] : (level || "未定级") });
  }

  // the map -------------------------------------------------------------------------------

  function makeMap() {
    var map = L.map("grid-map", { zoomControl: true, attributionControl: true });
    map.setView([34.5, 113.6], 7);
    // our data drawn in the basemap's datum (GCJ-02 on AMap: basemaps.js), again on a switch
    state.outline = L.geoJSON(null, B.geoJSONOptions({ interactive: false, style: {
      className: "county-outline", color: "#1f3b5c", weight: 2, dashArray: "6 4",
      fill: false } })).addTo(map);
    state.cells = L.geoJSON(null, B.geoJSONOptions({ style: cellStyle, onEachFeature: onCell }))
      .addTo(map);
    state.markers = L.layerGroup().addTo(map);
    var offline = L.layerGroup().addTo(map);
    var control = L.control.layers({ "无底图（离线）": offline },
                                   { "区县边界": state.outline, "我的网格": state.cells,
                                     "待办事项": state.markers }).addTo(map);
    state.map = map;
    B.onDatum(function () {
      redraw(state.outline, state.outlineData);
      redraw(state.cells, state.cellsData);
      drawMarkers();
    });
    B.attach(map, control, offline);
  }

  function redraw(layer, data) {
    layer.clearLayers();
    if (data) { layer.addData(data); }
  }

  function cellStyle(feature) {
    var p = feature.properties || {};
    var chosen = state.cell === p.h3;
    return { className: "grid-cell", color: chosen ? "#1f3b5c" : "#555", weight: chosen ? 3 : 1,
             fillColor: COLORS[p.max_level] || "#bbb", fillOpacity: chosen ? 0.5 : 0.3 };
  }

  function cellLabel(p) {
    var level = LEVELS[p.max_level] ? LEVELS[p.max_level][0] : "无在用设备";
    return "网格 " + p.h3 + "\n最高风险：" + level + "\n设备 " + (p.equipment || 0) +
      " 台，待办 " + (state.byCell[p.h3] || 0) + " 项";
  }

  function onCell(feature, layer) {
    layer.bindTooltip(function () {
      return el("span", { className: "cell-tip", text: cellLabel(feature.properties || {}) });
    }, { sticky: true });
    layer.on("click", function () { filterCell(feature.properties.h3); });
  }

  function loadOutline() {
    return api("/api/grid/outline" + query).then(function (collection) {
      state.outlineData = collection;
      redraw(state.outline, collection);
    });
  }

  function loadCells() {
    return api("/api/grid/cells" + query).then(function (collection) {
      state.cellsData = collection;
      redraw(state.cells, collection);
      var bounds = state.cells.getBounds();
      if (bounds.isValid()) { state.map.fitBounds(bounds, { padding: [12, 12] }); }
    });
  }

  function drawMarkers() {
    state.markers.clearLayers();
    state.items.forEach(function (item, index) {
      if (item.lat === null || item.lon === null) { return; }
      var marker = L.circleMarker(B.shown(item.lat, item.lon), {
        className: "grid-item", radius: item.hazard_id ? 8 : 6, color: "#222", weight: 1,
        fillColor: COLORS[item.level] || "#999", fillOpacity: 0.9 });
      marker.bindTooltip(function () {
        return el("span", { text: (item.kind_zh || "") + "：" + (item.unit_name || "") });
      });
      marker.on("click", function () { select(index, false); });
      state.markers.addLayer(marker);
    });
  }

  // the list ------------------------------------------------------------------------------

  function records(body) {
    // the columns (each its values, or distinct values and codes), as one object per item;
    // the kind in Chinese from body.kinds
    var kinds = body.kinds || {};
    var columns = {};
    Object.keys(body.columns || {}).forEach(function (name) {
      var column = body.columns[name];
      columns[name] = Array.isArray(column) ? column
        : column.codes.map(function (code) { return column.values[code]; });
    });
    var items = [];
    for (var i = 0; i < (body.count || 0); i += 1) {
      var item = {};
      Object.keys(columns).forEach(function (name) { item[name] = columns[name][i]; });
      item.kind_zh = kinds[item.kind] || item.kind;
      items.push(item);
    }
    return items;
  }

  function loadList() {
    return api("/api/grid/worklist" + query).then(function (body) {
      state.all = records(body);
      state.byCell = {};
      state.all.forEach(function (item) {
        if (item.h3) { state.byCell[item.h3] = (state.byCell[item.h3] || 0) + 1; }
      });
      document.getElementById("item-count").textContent = state.all.length + " 项";
      showItems();
    });
  }

  function showItems() {
    // the whole list, or one cell's items (in the same priority order)
    state.items = state.cell ? state.all.filter(function (item) {
      return item.h3 === state.cell; }) : state.all;
    drawList();
    drawMarkers();
    state.cells.setStyle(cellStyle);
  }

  function drawList() {
    listEl.textContent = "";
    document.getElementById("list-scope").textContent = state.cell
      ? "（网格 " + state.cell + "，" + state.items.length + " 项，按优先级排序）"
      : "（全部 " + state.items.length + " 项，按优先级排序）";
    document.getElementById("show-all").hidden = !state.cell;
    if (!state.items.length) {
      listEl.appendChild(el("li", { className: "empty", text: "暂无待办事项" }));
      return;
    }
    state.items.forEach(function (item, index) {
      var button = el("button", { type: "button", className: "item",
                                  "data-index": String(index),
                                  "data-hazard": item.hazard_id || null,
                                  "aria-current": state.selected === index ? "true" : null }, [
        el("span", { className: "item-top" }, [
          el("span", { className: "priority", text: String(item.priority) }),
          el("span", { className: "kind", text: item.kind_zh || "" }),
          levelBadge(item.level),
          el("span", { className: item.due && item.due < today ? "due late" : "due",
                       text: item.due ? (item.due < today ? "已逾期 · 期限 " : "期限 ") + item.due
                                      : "尽快" })]),
        el("span", { className: "unit", text: item.unit_name || item.unit_credit_code || "" }),
        el("span", { className: "reason", text: item.reason || "" })]);
      button.addEventListener("click", function () { select(index, true); });
      listEl.appendChild(el("li", {}, [button]));
    });
  }

  function filterCell(h3) {
    state.cell = h3;
    state.selected = null;
    detailEl.hidden = true;
    showItems();
  }

  document.getElementById("show-all").addEventListener("click", function () {
    filterCell(null);
  });

  // an item: where it is, a check, the hazard's loop ---------------------------------------

  function select(index, fly) {
    var item = state.items[index];
    if (!item) { return; }
    state.selected = index;
    Array.prototype.forEach.call(listEl.querySelectorAll("button.item"), function (b) {
      if (b.getAttribute("data-index") === String(index)) {
        b.setAttribute("aria-current", "true");
      } else { b.removeAttribute("aria-current"); }
    });
    if (fly && item.lat !== null && item.lon !== null) {
      state.map.flyTo(B.shown(item.lat, item.lon), 15, { duration: 0.5 });
    }
    var chosen = listEl.querySelector('button.item[aria-current="true"]');
    if (!fly && chosen) { chosen.scrollIntoView({ block: "nearest" }); }
    showDetail(item);
  }

  function showDetail(item) {
    detailEl.hidden = false;
    detailEl.textContent = "";
    detailEl.appendChild(el("h2", { text: (item.kind_zh || "") + "：" + (item.unit_name || "") }));
    detailEl.appendChild(el("p", {}, [
      levelBadge(item.level), " ",
      el("span", { text: "统一社会信用代码 " + (item.unit_credit_code || "—") }),
      item.registration_code ? el("span", { text: "；设备注册代码 " + item.registration_code })
                             : null]));
    detailEl.appendChild(el("p", { className: "reason", text: item.reason || "" }));
    if (item.hazard_id) {
      var box = el("div", { className: "hazard", id: "hazard-box" },
                   [el("p", { className: "muted", text: "正在读取隐患记录…" })]);
      detailEl.appendChild(box);
      loadHazard(item, box);
    }
    if (item.unit_credit_code) { detailEl.appendChild(checkForm(item)); }
    detailEl.scrollIntoView({ block: "nearest" });
  }

  function checkForm(item) {
    var select = el("select", { name: "result", id: "check-result" },
                    RESULTS.map(function (r) { return el("option", { value: r, text: r }); }));
    var note = el("input", { name: "note", id: "check-note", maxlength: "400",
                             placeholder: "补充说明（可选）" });
    var day = el("input", { type: "date", name: "checked_on", id: "check-date",
                            value: today, max: today, required: true });
    var out = el("p", { className: "result", id: "check-out", role: "status" });
    var form = el("form", { className: "action-form", id: "check-form" }, [
      el("h3", { text: "记录检查" }),
      el("label", {}, ["检查日期", day]),
      el("label", {}, ["检查结果", select]),
      el("label", {}, ["说明", note]),
      el("button", { type: "submit", text: "登记检查" }), out]);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var result = select.value.indexOf("其他") === 0 ? note.value.trim()
        : select.value + (note.value.trim() ? "：" + note.value.trim() : "");
      if (!result) { out.textContent = "请填写检查结果"; out.className = "result error"; return; }
      api("/api/checks", { method: "POST", body: {
        credit_code: item.unit_credit_code, checked_on: day.value, result: result } })
        .then(function (done) {
          out.className = "result ok";
          out.textContent = (done.duplicate ? "该检查此前已登记（" : "已登记检查（") +
            done.check_id + "），下次检查 " + done.next_due + "（每 " +
            done.interval_months + " 个月）";
          say("已登记对 " + (item.unit_name || item.unit_credit_code) + " 的检查", false);
          return refresh();
        })
        .catch(function (e) { out.className = "result error"; out.textContent = e.message; });
    });
    return form;
  }

  function loadHazard(item, box) {
    api("/api/units/" + encodeURIComponent(item.unit_credit_code) + "/file")
      .then(function (file) {
        var hazard = (file.hazards || []).filter(function (h) {
          return h.hazard_id === item.hazard_id; })[0];
        box.textContent = "";
        if (!hazard) { box.appendChild(el("p", { text: "未找到隐患 " + item.hazard_id })); return; }
        drawHazard(item, hazard, box);
      })
      .catch(function (e) {
        box.textContent = "";
        box.appendChild(el("p", { className: "error", text: e.message }));
      });
  }

  function drawHazard(item, hazard, box) {
    box.appendChild(el("h3", { text: "隐患 " + hazard.hazard_id }));
    box.appendChild(el("p", {}, [
      el("span", { text: "当前状态：" }),
      el("b", { className: "hazard-status", id: "hazard-status", text: hazard.status || "" }),
      el("span", { text: "；发现日期 " + (hazard.found_on || "—") + "；整改期限 " +
                   (hazard.deadline || "—") })]));
    box.appendChild(el("p", { text: hazard.description || "" }));
    var history = el("ol", { className: "history" });
    (hazard.history || []).forEach(function (h) {
      var file = h.evidence;
      if (file) {  // an evidence photo or file: its name links to the download
        history.appendChild(el("li", { className: "evidence-item" }, [
          (h.at || "") + " " + (h.action_zh || "上传整改证据") + "：",
          el("a", { href: file.url, download: file.filename || "", className: "evidence-link",
                    text: file.filename || file.evidence_id }),
          "（" + sizeText(file.size) + (h.by ? "，" + h.by : "") + "）"]));
        return;
      }
      history.appendChild(el("li", { text: (h.at || "") + " " + (h.action_zh || h.action || "") +
        (h.from ? "：" + h.from + " → " + h.to : "") + (h.note ? "；" + h.note : "") +
        (h.by ? "（" + h.by + "）" : "") }));
    });
    box.appendChild(el("h4", { text: "处理记录" }));
    box.appendChild(history);
    var next = NEXT[hazard.status];
    if (next) { box.appendChild(transitionForm(item, hazard, next)); }
    box.appendChild(evidenceForm(item, hazard, box));
  }

  function evidenceForm(item, hazard, box) {
    // a photo or file kept with the hazard whatever its status (open or closed); the
    // record is read again, so the new file shows in the history
    // no capture attribute: on a phone that would allow the camera only, not a PDF
    var photo = el("input", { type: "file", name: "file", id: "more-evidence-file",
                              accept: "image/*,application/pdf", required: true });
    var out = el("p", { className: "result", id: "evidence-out", role: "status" });
    var form = el("form", { className: "action-form", id: "evidence-form" }, [
      el("h4", { text: "补充整改证据" }),
      el("label", {}, ["照片或文件（JPEG、PNG、WebP 或 PDF）", photo]),
      el("button", { type: "submit", id: "evidence-submit", text: "上传证据" }), out]);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!photo.files || !photo.files[0]) {
        out.className = "result error"; out.textContent = "请选择照片或文件"; return;
      }
      attach(hazard, photo)
        .then(function (done) {
          say("已为隐患 " + hazard.hazard_id + " 补充证据：" + ((done && done.filename) ||
              photo.files[0].name), false);
          loadHazard(item, box);
        })
        .catch(function (e) { out.className = "result error"; out.textContent = e.message; });
    });
    return form;
  }

  function sizeText(size) {
    if (typeof size !== "number") { return "—"; }
    if (size < 1024) { return size + " B"; }
    if (size < 1048576) { return (size / 1024).toFixed(1) + " KB"; }
    return (size / 1048576).toFixed(1) + " MB";
  }

  function attach(hazard, input) {
    // the photo or file chosen, kept with the hazard before it moves (none: nothing to do)
    var file = input.files && input.files[0];
    if (!file) { return Promise.resolve(null); }
    var form = new FormData();
    form.append("file", file, file.name);
    return api("/api/hazards/" + encodeURIComponent(hazard.hazard_id) + "/evidence",
               { method: "POST", form: form });
  }

  function transitionForm(item, hazard, next) {
    var closing = next === "已销号";
    var evidence = el("textarea", { name: "evidence", id: "evidence", rows: "3",
                                    minlength: "2", maxlength: "2000", required: true,
                                    placeholder: closing ? "整改情况与验收结论" : "整改措施与责任人" });
    var closedOn = closing ? el("input", { type: "date", name: "closed_on", id: "closed-on",
                                           value: today, max: today, required: true }) : null;
    var verifier = closing ? el("input", { name: "verified_by", id: "verified-by",
                                           maxlength: "100", required: true }) : null;
    var photo = el("input", { type: "file", name: "file", id: "evidence-file",
                              accept: "image/*,application/pdf", capture: "environment" });
    var out = el("p", { className: "result", id: "transition-out", role: "status" });
    var form = el("form", { className: "action-form", id: "transition-form" }, [
      el("h4", { text: closing ? "销号" : "开始整改" }),
      closing ? el("label", {}, ["销号日期", closedOn]) : null,
      closing ? el("label", {}, ["验收人", verifier]) : null,
      el("label", {}, [closing ? "整改情况" : "整改措施", evidence]),
      el("label", {}, ["证据照片或文件（JPEG、PNG、WebP 或 PDF，可不选）", photo]),
      el("button", { type: "submit", id: "transition-submit",
                     text: hazard.status + " → " + next }), out]);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = { from: hazard.status, to: next, evidence: evidence.value.trim() };
      if (closing) { body.closed_on = closedOn.value; body.verified_by = verifier.value.trim(); }
      attach(hazard, photo)
        .then(function () {
          return api("/api/hazards/" + encodeURIComponent(hazard.hazard_id) + "/transitions",
                     { method: "POST", body: body });
        })
        .then(function (done) {
          say("隐患 " + done.hazard_id + " 已由“" + done.before + "”变更为“" + done.status + "”",
              false);
          return refresh().then(function () {
            var again = findItem(item);
            // closed: off the list, its record (status, history with the evidence) stays
            if (again !== null) { select(again, false); } else { showDetail(item); }
          });
        })
        .catch(function (e) { out.className = "result error"; out.textContent = e.message; });
    });
    return form;
  }

  function findItem(item) {
    for (var i = 0; i < state.items.length; i += 1) {
      var other = state.items[i];
      if (other.kind === item.kind && other.hazard_id === item.hazard_id &&
          other.unit_credit_code === item.unit_credit_code &&
          other.registration_code === item.registration_code) { return i; }
    }
    return null;
  }

  function refresh() {
    return loadList();
  }

  // start ---------------------------------------------------------------------------------

  makeMap();
  api("/api/session")
    .then(function (session) { state.csrf = session.csrf_token; })
    .then(function () { return Promise.all([loadOutline(), loadCells(), loadList()]); })
    .then(function () { say("", false); document.body.setAttribute("data-ready", "true"); })
    .catch(function (e) { say(e.message, true); });
}());
