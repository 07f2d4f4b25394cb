// edgegw's operator page: no build step, no framework. Every text from the gateway goes into
// the DOM as text (textContent / createTextNode), never as HTML.
"use strict";
(function () {
  const S = { me: null, tiles: new Map(), tileEls: new Map(), alarms: new Map(), profiles: {}, events: [], view: "", es: null, charts: [] };
  const main = document.getElementById("main");
  const UPLOT = document.currentScript.src.replace(/app\.js$/, "uPlot.iife.min.js");  // loaded with the first chart
  let uplotLoading = null;
  function loadUplot() {
    if (window.uPlot) return Promise.resolve();
    if (!uplotLoading) uplotLoading = new Promise((ok, fail) => { const el = h("script", { src: UPLOT }); el.onload = ok; el.onerror = fail; document.head.append(el); });
    return uplotLoading;
  }
  const RANGES = { "1h": 3600, "24h": 86400, "7d": 604800, "30d": 2592000 };
  const STATE_TEXT = { normal: "normal", warning: "warning", critical: "critical", stale: "stale", nodata: "no data" };
  const KIND_TEXT = { threshold: "limit", stale: "silent", quality: "bad readings", anomaly: "unlike normal", failure_risk: "failure risk" };

  // -- DOM helpers
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "on") for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
      else if (k === "class") e.className = v;
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const k of kids.flat()) if (k !== null && k !== undefined && k !== false) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    return e;
  }
  const fmt = (v, d) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Math.abs(v) >= 1000 ? v.toFixed(0) : v.toFixed(d === undefined ? (Math.abs(v) >= 100 ? 1 : 2) : d));
  const ago = (iso) => { if (!iso) return ""; const s = (Date.now() - Date.parse(iso)) / 1000; return s < 90 ? `${Math.max(0, s).toFixed(0)} s ago` : s < 5400 ? `${(s / 60).toFixed(0)} min ago` : s < 129600 ? `${(s / 3600).toFixed(1)} h ago` : `${(s / 86400).toFixed(1)} d ago`; };
  const clock = (iso) => (iso ? new Date(iso).toLocaleString() : "");
  const keyOf = (a) => `${a.asset}/${a.kind}/${a.source}`;
  const mayAct = () => S.me && (S.me.role === "operator" || S.me.role === "admin");
  const unitOf = (asset, sig) => { const t = S.tiles.get(asset); const p = t && S.profiles[t.profile]; return (p && p.signals[sig] && p.signals[sig].unit) || ""; };

  async function api(path, body) {
    const opt = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": S.me.csrf }, body: JSON.stringify(body) };
    const r = await fetch(path, { credentials: "same-origin", ...opt });
    if (r.status === 401) { location.reload(); throw new Error("logged out"); }
    const d = await r.json().catch(() => ({ ok: false, reason: `HTTP ${r.status}` }));
    if (!r.ok) throw new Error(d.reason || `HTTP ${r.status}`);
    return d;
  }

  // -- live updates
  function connect() {
    const es = new EventSource("/api/events");
    S.es = es;
    const conn = document.getElementById("conn");
    es.onopen = () => { conn.className = "conn up"; conn.title = "live"; };
    es.onerror = () => {
      conn.className = "conn down"; conn.title = "reconnecting…";
      if (es.readyState === EventSource.CLOSED) setTimeout(retry, 2000);
    };
    es.addEventListener("snapshot", (m) => { const d = JSON.parse(m.data); S.profiles = d.profiles; S.tiles = new Map(d.tiles.map((t) => [t.asset, t])); S.alarms = new Map(d.alarms.map((a) => [keyOf(a), a])); render(true); });
    es.addEventListener("tiles", (m) => { for (const t of JSON.parse(m.data)) { S.tiles.set(t.asset, t); updateTile(t); } });
    es.addEventListener("alarm", (m) => { const d = JSON.parse(m.data); if (d.alarm) S.alarms.set(d.key, d.alarm); else S.alarms.delete(d.key); alarmsChanged(); });
    es.addEventListener("event", (m) => { S.events.unshift(JSON.parse(m.data)); S.events.length = Math.min(S.events.length, 200); });
  }
  async function retry() {
    try { await api("/api/me"); connect(); } catch (e) { setTimeout(retry, 2000); }
  }

  // -- overview
  // A tile is built once and then only its texts change: a hop touches a few text nodes per
  // asset, not a subtree, so fifty tiles in five browsers stay cheap.
  function tileEl(t, cls, href) {
    const p = S.profiles[t.profile] || { signals: {} };
    const r = { vals: {}, state: document.createTextNode(""), scoreText: document.createTextNode(""), fill: h("i") };
    const vals = h("dl", { class: "vals" });
    for (const sig of Object.keys(p.signals)) {
      r.vals[sig] = document.createTextNode("");
      vals.append(h("dt", {}, sig.replace(/_/g, " ")), h("dd", {}, r.vals[sig], h("small", {}, " " + (p.signals[sig].unit || ""))));
    }
    r.score = h("div", { class: "score", title: "anomaly score against its threshold (the mark at half way)" }, h("span", {}, r.scoreText), h("b", { class: "gauge" }, r.fill));
    r.cause = h("div", { class: "cause" });
    r.nal = h("div", { class: "nal" });
    const el = h(href ? "a" : "div", { class: cls, href, "data-asset": t.asset },
      h("div", { class: "tile-head" }, h("span", { class: "name" }, t.asset), h("span", { class: "state" }, r.state)), vals, r.score, r.cause, r.nal);
    el._r = r;
    fillTile(el, t);
    return el;
  }
  function setText(node, text) { if (node.data !== text) node.data = text; }
  function setLine(el, text) { if (text) { if (el.textContent !== text) el.textContent = text; if (el.hidden) el.hidden = false; } else if (!el.hidden) el.hidden = true; }
  function fillTile(el, t) {
    const r = el._r;
    if (el.getAttribute("data-state") !== t.state) el.setAttribute("data-state", t.state);
    setText(r.state, STATE_TEXT[t.state] || t.state);
    for (const [sig, node] of Object.entries(r.vals)) setText(node, fmt(t.values[sig]));
    const scored = t.anomaly !== undefined && t.anomaly !== null && !!t.threshold;
    if (scored) {
      setText(r.scoreText, `anomaly ${fmt(t.anomaly, 3)} / ${fmt(t.threshold, 3)}`);
      const w = `${(Math.min(1, t.anomaly / (t.threshold * 2)) * 100).toFixed(1)}%`;
      if (r.fill.style.width !== w) r.fill.style.width = w;
      r.score.classList.toggle("over", t.anomaly > t.threshold);
    }
    if (r.score.hidden === scored) r.score.hidden = !scored;
    setLine(r.cause, t.risk !== undefined && t.risk !== null && t.risk >= 0.2 ? `failure risk ${(t.risk * 100).toFixed(0)} %${t.cause ? ": " + t.cause.replace(/_/g, " ") : ""}` : "");
    setLine(r.nal, t.alarms ? `${t.alarms} alarm${t.alarms > 1 ? "s" : ""}` : "");
  }
  function updateTile(t) {
    const el = S.tileEls.get(t.asset);
    if (el && el.isConnected) fillTile(el, t);
    if (S.view.startsWith("#/asset/") && decodeURIComponent(S.view.slice(8)) === t.asset) assetHead(t);
  }
  function overview() {
    const grid = h("section", { class: "tiles" });
    S.tileEls = new Map();
    for (const t of S.tiles.values()) { const el = tileEl(t, "tile", `#/asset/${encodeURIComponent(t.asset)}`); S.tileEls.set(t.asset, el); grid.append(el); }
    main.replaceChildren(h("h2", {}, "Assets"), grid, h("h2", {}, "Active alarms"), alarmTable(activeAlarms("all"), false));
  }

  // -- alarms
  function stateOf(a) { return a.shelved_until ? "shelved" : a.acked_by ? "acked" : "unacked"; }
  function activeAlarms(filter) {
    const sev = { critical: 0, warning: 1, info: 2 };
    return [...S.alarms.values()].filter((a) => filter === "all" || stateOf(a) === filter)
      .sort((x, y) => (stateOf(x) === "unacked" ? 0 : 1) - (stateOf(y) === "unacked" ? 0 : 1) || (sev[x.severity] ?? 3) - (sev[y.severity] ?? 3) || String(y.ts).localeCompare(String(x.ts)));
  }
  function explain(a) {
    if (a.kind === "anomaly" && Array.isArray(a.top) && a.top.length) {
      const parts = a.top.slice(0, 3).map((c) => {
        const f = String(c.feature || ""); const sig = String(c.signal || f.split(".")[0]).replace(/_/g, " ");
        const what = f.endsWith(".relation") ? `${sig} out of line with the other signals` : f.includes(".") ? `${sig} ${f.split(".").slice(1).join(".").replace(/_/g, " ")}` : sig;
        return `${what}${c.z !== undefined ? ` (${fmt(Math.abs(c.z), 1)}× its normal spread)` : ""}`;
      });
      return `Unlike normal operation, mostly: ${parts.join("; ")}.`;
    }
    if (a.kind === "failure_risk") return `The failure model gives ${fmt((a.score || 0) * 100, 0)} % risk${a["class"] ? `, most likely ${String(a["class"]).replace(/_/g, " ")}${a.class_probability !== undefined ? ` (${fmt(a.class_probability * 100, 0)} %)` : ""}` : ""}.`;
    if (a.kind === "threshold" && a.limit !== undefined) return `${a.signal || a.source} is ${fmt(a.value)} ${a.unit || ""}, past its ${a.level || ""} limit of ${fmt(a.limit)} ${a.unit || ""}.`;
    return a.message || "";
  }
  function act(command, keys, extra) {
    return api(`/api/alarms/${command}`, { keys, ...(extra || {}) }).then((d) => {
      const bad = d.results.filter((r) => !r.ok);
      if (bad.length) toast(bad.map((r) => `${r.key}: ${r.reason}`).join("\n"));
    }, (e) => toast(e.message));
  }
  function shelveForm(keys) {
    const reason = h("input", { name: "reason", placeholder: "reason", required: true, maxlength: 1000 });
    const dur = h("select", { name: "duration" }, ...[["1 h", 3600], ["8 h", 28800], ["24 h", 86400], ["7 d", 604800]].map(([t, v]) => h("option", { value: v }, t)));
    const f = h("form", { class: "shelve" }, reason, dur, h("button", { type: "submit" }, "Shelve"), h("button", { type: "button", on: { click: () => f.remove() } }, "Cancel"));
    f.addEventListener("submit", (ev) => { ev.preventDefault(); act("shelve", keys, { note: reason.value, duration_s: Number(dur.value) }).then(() => f.remove()); });
    return f;
  }
  function alarmRow(a, selectable) {
    const key = keyOf(a), st = stateOf(a);
    const buttons = h("td", { class: "act" });
    if (mayAct()) {
      if (st === "unacked") buttons.append(h("button", { type: "button", on: { click: () => act("ack", [key]) } }, "Acknowledge"));
      if (st === "shelved") buttons.append(h("button", { type: "button", on: { click: () => act("unshelve", [key]) } }, "Unshelve"));
      else buttons.append(h("button", { type: "button", class: "quiet", on: { click: (ev) => ev.target.closest("tr").after(h("tr", {}, h("td", { colspan: 7 }, shelveForm([key])))) } }, "Shelve…"));
    }
    return h("tr", { "data-alarm-key": key, "data-severity": a.severity, "data-ack": st, class: `sev-${a.severity} ${st}` },
      selectable ? h("td", {}, h("input", { type: "checkbox", value: key, "aria-label": "select" })) : null,
      h("td", { class: "sev" }, a.severity), h("td", {}, S.tiles.has(a.asset) ? h("a", { href: `#/asset/${encodeURIComponent(a.asset)}` }, a.asset) : a.asset),
      h("td", {}, KIND_TEXT[a.kind] || a.kind, h("br"), h("small", {}, a.source)),
      h("td", { class: "msg" }, a.message, h("br"), h("small", {}, explain(a) === a.message ? "" : explain(a))),
      h("td", {}, h("span", { title: clock(a.raised_at || a.ts) }, ago(a.raised_at || a.ts)), st === "acked" ? h("small", {}, h("br"), `ack ${a.acked_by}`) : null, st === "shelved" ? h("small", {}, h("br"), `shelved until ${clock(a.shelved_until)}`) : null),
      buttons);
  }
  function alarmTable(list, selectable) {
    if (!list.length) return h("p", { class: "muted", id: "alarm-list" }, "No active alarms.");
    return h("table", { class: "alarms", id: "alarm-list" }, h("tbody", {}, ...list.map((a) => alarmRow(a, selectable))));
  }
  function alarmsChanged() {
    const n = [...S.alarms.values()].filter((a) => stateOf(a) === "unacked").length;
    document.getElementById("nalarms").textContent = n ? String(n) : "";
    const list = document.getElementById("alarm-list");
    if (!list) return;
    if (S.view === "#/alarms") list.replaceWith(alarmTable(activeAlarms(S.filter || "all"), mayAct()));
    else list.replaceWith(alarmTable(S.view.startsWith("#/asset/") ? activeAlarms("all").filter((a) => a.asset === decodeURIComponent(S.view.slice(8))) : activeAlarms("all"), false));
  }
  function alarmsView() {
    S.filter = S.filter || "all";
    const tabs = h("div", { class: "tabs" }, ...["all", "unacked", "acked", "shelved"].map((f) =>
      h("button", { type: "button", class: f === S.filter ? "on" : "", on: { click: () => { S.filter = f; alarmsView(); } } }, f === "all" ? "active" : f)));
    const bulk = mayAct() ? h("div", { class: "bulk" },
      h("button", { type: "button", on: { click: () => { const keys = [...main.querySelectorAll("#alarm-list input:checked")].map((c) => c.value); if (keys.length) act("ack", keys); } } }, "Acknowledge selected"),
      h("button", { type: "button", on: { click: () => { const keys = activeAlarms("unacked").map(keyOf); if (keys.length) act("ack", keys); } } }, "Acknowledge all")) : null;
    const hist = h("section", { id: "history" });
    const asset = h("select", { name: "asset" }, h("option", { value: "" }, "all assets"), ...[...S.tiles.keys()].map((a) => h("option", { value: a }, a)));
    const kind = h("select", { name: "kind" }, h("option", { value: "" }, "all kinds"), ...Object.keys(KIND_TEXT).map((k) => h("option", { value: k }, KIND_TEXT[k])));
    const range = h("select", { name: "range" }, ...Object.keys(RANGES).map((r) => h("option", { value: r, selected: r === "24h" }, r)));
    const load = () => api(`/api/alarms/history?range=${range.value}&asset=${encodeURIComponent(asset.value)}&kind=${encodeURIComponent(kind.value)}`).then((d) => {
      hist.replaceChildren(d.rows.length ? h("table", { class: "journal" }, h("tbody", {}, ...d.rows.slice(0, 500).map((r) => h("tr", {}, h("td", {}, clock(r.ts)), h("td", {}, r.event || r.state || ""), h("td", {}, `${r.asset}/${r.kind}/${r.source}`), h("td", {}, r.by || ""), h("td", {}, r.note || r.message || ""))))) : h("p", { class: "muted" }, "Nothing in this range."));
    }, (e) => hist.replaceChildren(h("p", { class: "muted" }, e.message)));
    for (const s of [asset, kind, range]) s.addEventListener("change", load);
    main.replaceChildren(h("h2", {}, "Active alarms"), tabs, bulk, alarmTable(activeAlarms(S.filter), mayAct()),
      h("h2", {}, "History"), h("div", { class: "filters" }, range, asset, kind), hist);
    load();
  }

  // -- asset view
  function assetHead(t) {
    const head = document.getElementById("asset-head");
    if (!head) return;
    const el = head.firstChild;
    if (el && el._r && el.getAttribute("data-asset") === t.asset) fillTile(el, t);
    else head.replaceChildren(tileEl(t, "tile wide"));
    const ex = document.getElementById("explain");
    const model = [...S.alarms.values()].filter((a) => a.asset === t.asset && (a.kind === "anomaly" || a.kind === "failure_risk"));
    if (ex) ex.replaceChildren(...(model.length ? model.map((a) => h("p", {}, explain(a))) : [h("p", { class: "muted" }, "The models see nothing unusual.")]));
  }
  function assetView(asset) {
    const t = S.tiles.get(asset);
    if (!t) { main.replaceChildren(h("p", {}, "No such asset.")); return; }
    S.range = S.range || "1h";
    S.end = S.end || null;
    const nav = h("div", { class: "tabs" },
      h("button", { type: "button", on: { click: () => { S.end = (S.end || Date.now() / 1000) - RANGES[S.range]; charts(asset); } } }, "◀ back"),
      ...Object.keys(RANGES).map((r) => h("button", { type: "button", class: r === S.range ? "on" : "", on: { click: () => { S.range = r; assetView(asset); } } }, r)),
      h("button", { type: "button", on: { click: () => { S.end = S.end ? S.end + RANGES[S.range] : null; if (S.end && S.end > Date.now() / 1000) S.end = null; charts(asset); } } }, "forward ▶"),
      h("button", { type: "button", on: { click: () => { S.end = null; charts(asset); } } }, "now"));
    main.replaceChildren(h("div", { id: "asset-head" }), h("section", { id: "explain", class: "explain" }), h("h2", {}, "Trends"), nav,
      h("p", { id: "span", class: "muted" }), h("section", { id: "charts", class: "charts" }), h("h2", {}, "Active alarms"),
      alarmTable(activeAlarms("all").filter((a) => a.asset === asset), false));
    assetHead(t);
    charts(asset);
    clearInterval(S.refresh);
    S.refresh = setInterval(() => { if (S.view === `#/asset/${encodeURIComponent(asset)}` && !S.end && !document.hidden) charts(asset); }, 60000);
  }
  function limitsPlugin(limits) {
    return { hooks: { draw: (u) => {
      const c = u.ctx; c.save(); c.setLineDash([6, 4]); c.lineWidth = 1.5 * devicePixelRatio;
      for (const [name, v] of Object.entries(limits)) {
        if (v === null || v === undefined) continue;
        const y = u.valToPos(v, "y", true); if (y < u.bbox.top || y > u.bbox.top + u.bbox.height) continue;
        c.strokeStyle = name.length === 4 ? "#b00020" : "#c77c00";
        c.beginPath(); c.moveTo(u.bbox.left, y); c.lineTo(u.bbox.left + u.bbox.width, y); c.stroke();
      }
      c.restore();
    } } };
  }
  function spansPlugin(spans) {
    return { hooks: { drawClear: (u) => {
      const c = u.ctx; c.save(); c.fillStyle = "rgba(214, 120, 0, 0.15)";
      for (const [a, b] of spans) {
        const x0 = Math.max(u.bbox.left, u.valToPos(a, "x", true)), x1 = Math.min(u.bbox.left + u.bbox.width, u.valToPos(b, "x", true));
        if (x1 > x0) c.fillRect(x0, u.bbox.top, x1 - x0, u.bbox.height);
      }
      c.restore();
    } } };
  }
  function chart(box, title, d, series, limits, spans, unit) {
    const el = h("div", { class: "chart" }); box.append(el);
    const opts = { title, width: Math.max(260, el.clientWidth - 8), height: 170, cursor: { drag: { x: false, y: false } }, legend: { show: false },
      scales: { x: { time: true, range: [d.start, d.end] }, y: { range: (u, lo, hi) => yRange(lo, hi, limits) } }, axes: [{}, { label: unit, size: 56 }],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.stroke, width: s.width || 1.5, points: { show: false } }))],
      plugins: [limitsPlugin(limits || {}), spansPlugin(spans || [])] };
    S.charts.push(new uPlot(opts, [d.t, ...series.map((s) => s.data)], el));
  }
  function yRange(lo, hi, limits) {
    for (const v of Object.values(limits || {})) if (typeof v === "number") { lo = lo === null ? v : Math.min(lo, v); hi = hi === null ? v : Math.max(hi, v); }
    if (lo === null || hi === null) return [0, 1];
    const pad = (hi - lo) * 0.06 || Math.abs(hi) * 0.1 || 1;
    return [lo - pad, hi + pad];
  }
  async function charts(asset) {
    for (const c of S.charts) c.destroy();
    S.charts = [];
    const box = document.getElementById("charts");
    if (!box) return;
    box.replaceChildren(h("p", { class: "muted" }, "Loading trends…"));
    try { await loadUplot(); } catch (e) { box.replaceChildren(h("p", { class: "muted" }, "The chart library did not load.")); return; }
    const end = S.end ? `&end=${S.end}` : "";
    let d;
    try { d = await api(`/api/trend?asset=${encodeURIComponent(asset)}&range=${S.range}${end}&points=1500`); }
    catch (e) { box.replaceChildren(h("p", { class: "muted" }, e.message)); return; }
    document.getElementById("span").textContent = `${new Date(d.start * 1000).toLocaleString()} – ${new Date(d.end * 1000).toLocaleString()}${d.tier ? ` · ${d.tier} tier, ${d.bucket_s} s buckets` : ""}`;
    box.replaceChildren();
    const spans = {};
    for (const a of d.spans || []) for (const k of spanKeys(a)) (spans[k] = spans[k] || []).push([a.start, a.end === null ? d.end : a.end]);
    const prof = S.profiles[S.tiles.get(asset).profile] || { signals: {} };
    if (!d.t || !d.t.length) { box.append(h("p", { class: "muted" }, "No history in this range.")); return; }
    for (const [sig, s] of Object.entries(d.signals || {})) {
      const spec = prof.signals[sig] || {};
      const series = [{ label: "mean", data: s.mean, stroke: "#333" }];
      if (s.min && s.max) series.push({ label: "min", data: s.min, stroke: "#9a9a9a", width: 1 }, { label: "max", data: s.max, stroke: "#9a9a9a", width: 1 });
      chart(box, `${sig.replace(/_/g, " ")}${spec.unit ? ` (${spec.unit})` : ""}`, d, series, { hi: spec.hi, hihi: spec.hihi, lo: spec.lo, lolo: spec.lolo }, [...(spans[sig] || []), ...(spans["*"] || [])], spec.unit || "");
    }
    if (d.anomaly && d.anomaly.some((v) => v !== null)) {
      const series = [{ label: "anomaly score", data: d.anomaly, stroke: "#333" }];
      const thr = (d.threshold || []).find((v) => v !== null) ?? S.tiles.get(asset).threshold;
      chart(box, "anomaly score (dashed: threshold)", d, series, { hihi: thr }, spans["*model"], "");
    }
    if (d.risk && d.risk.some((v) => v !== null)) chart(box, "failure risk", d, [{ label: "risk", data: d.risk, stroke: "#333" }], {}, spans["*model"], "");
  }
  function spanKeys(r) { return r.kind === "anomaly" || r.kind === "failure_risk" ? ["*", "*model"] : [r.source]; }

  // -- gateway view
  async function gatewayView() {
    main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    let g;
    try { g = await api("/api/gateway"); } catch (e) { main.replaceChildren(h("p", {}, e.message)); return; }
    const link = (name, s) => h("tr", { "data-link": name, class: s.connected ? "" : "down" }, h("td", {}, name), h("td", {}, s.connected ? "connected" : "down"),
      h("td", {}, s.connects ?? ""), h("td", {}, s.failures ?? ""), h("td", { class: "msg" }, s.last_error || ""));
    const links = h("table", { class: "links" }, h("thead", {}, h("tr", {}, ...["link", "state", "connects", "failures", "last error"].map((x) => h("th", {}, x)))),
      h("tbody", {}, ...Object.entries(g.sources || {}).map(([n, s]) => link(`source ${n}`, s)), ...Object.entries(g.sinks || {}).map(([n, s]) => link(`sink ${n}`, s))));
    const up = g.uptime_s || 0;
    const facts = [["gateway", `${g.gateway} · site ${g.site}`], ["version", g.version], ["uptime", up > 86400 ? `${(up / 86400).toFixed(1)} d` : up > 3600 ? `${(up / 3600).toFixed(1)} h` : `${(up / 60).toFixed(0)} min`],
      ["outbox depth", g.outbox_depth ?? "no upstream"], ["history size", g.history_mb !== undefined ? `${fmt(g.history_mb, 1)} MB` : "no history"],
      ["models", Object.entries(g.model_versions || {}).map(([p, v]) => `${p}: ${v}`).join(", ") || "none"],
      ...(g.learning ? [["learning", g.learning]] : []),
      ["readings in", g.readings_in], ["rejected", g.rejected_total], ["alarms raised", g.alerts_raised], ["hop p99", g.hop_ms_p99 !== null && g.hop_ms_p99 !== undefined ? `${g.hop_ms_p99} ms` : "–"],
      ["loop lag max", `${g.loop_lag_ms ? g.loop_lag_ms.max : "–"} ms`], ["memory", `${g.rss_mb} MB`], ["browsers on this page", g.page_clients]];
    main.replaceChildren(h("h2", {}, "Gateway"), h("dl", { class: "facts" }, ...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v ?? "–"))])), h("h2", {}, "Links"), links);
  }

  // -- shell
  let toastTimer = 0;
  function toast(text) {
    let t = document.getElementById("toast");
    if (!t) { t = h("div", { id: "toast", role: "status" }); document.body.append(t); }
    t.textContent = text; t.hidden = false; clearTimeout(toastTimer); toastTimer = setTimeout(() => (t.hidden = true), 6000);
  }
  function render(fromSnapshot) {
    const v = location.hash || "#/";
    if (fromSnapshot && v === S.view && v.startsWith("#/asset/")) { assetHead(S.tiles.get(decodeURIComponent(v.slice(8))) || {}); alarmsChanged(); return; }
    if (fromSnapshot && v === S.view && v === "#/gateway") return;
    if (v !== S.view) { for (const c of S.charts) c.destroy(); S.charts = []; }
    S.view = v;
    for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("on", a.getAttribute("href") === v || (v.startsWith("#/asset/") && a.getAttribute("href") === "#/"));
    if (v.startsWith("#/asset/")) assetView(decodeURIComponent(v.slice(8)));
    else if (v === "#/alarms") alarmsView();
    else if (v === "#/gateway") gatewayView();
    else overview();
    alarmsChanged();
  }
  async function start() {
    try { S.me = await api("/api/me"); } catch (e) { return; }
    document.getElementById("gw").textContent = `edgegw · ${S.me.gateway}`;
    const who = document.getElementById("who");
    who.append(`${S.me.user} (${S.me.role}) `);
    if (S.me.csrf) who.append(h("button", { type: "button", class: "quiet", on: { click: () => api("/logout", {}).finally(() => location.reload()) } }, "Log out"));
    window.addEventListener("hashchange", () => render(false));
    connect();
  }
  start();
})();
