// anycastlab live view: draws what /api/events sends (topology once, then state, drill and probes as they
// change). Everything comes from the lab's own server; the world outlines are the vendored world-atlas files.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const W = 960, H = 480;
const view = {
  topo: null, state: null, drill: null, records: [], nodes: {}, xy: {}, colours: {}, unknown: "#dddddd",
  projection: null, path: null, shown: {}, clientEls: {}, popEls: {}, rowEls: {}, linkEls: {}, lastMessage: 0,
  connected: false, timelineDirty: false, world: null,
};

function el(tag, attrs, parent) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}
function html(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function colour(pop) { return (pop && view.colours[pop]) || view.unknown; }
function fmt(v, digits) { return v === null || v === undefined ? "–" : Number(v).toFixed(digits); }

// Shapes, centred on 0,0: PoPs squares, transits triangles, eyeballs diamonds, the origin a hexagon.
const SHAPES = {
  pop: (s) => `M${-s},${-s}H${s}V${s}H${-s}Z`,
  transit: (s) => `M0,${-s * 1.2}L${s * 1.1},${s * 0.8}H${-s * 1.1}Z`,
  eyeball: (s) => `M0,${-s * 1.2}L${s * 1.2},0L0,${s * 1.2}L${-s * 1.2},0Z`,
  origin: (s) => {
    const p = [];
    for (let i = 0; i < 6; i++) { const a = Math.PI / 3 * i; p.push(`${(s * 1.15 * Math.cos(a)).toFixed(2)},${(s * 1.15 * Math.sin(a)).toFixed(2)}`); }
    return "M" + p.join("L") + "Z";
  },
};
const SIZE = { pop: 7, transit: 6, eyeball: 5.5, origin: 6.5 };

async function loadWorld() {
  try {
    const [land, countries] = await Promise.all([
      fetch("/static/vendor/land-110m.json").then((r) => r.json()),
      fetch("/static/vendor/countries-110m.json").then((r) => r.json()),
    ]);
    view.world = {
      land: topojson.feature(land, land.objects.land),
      borders: topojson.mesh(countries, countries.objects.countries, (a, b) => a !== b),
    };
  } catch (err) {
    console.warn("world outlines not loaded", err);
  }
}

function drawWorld() {
  const g = document.getElementById("world");
  g.replaceChildren();
  el("path", { class: "sphere", d: view.path({ type: "Sphere" }) }, g);
  if (view.world) {
    el("path", { class: "land", d: view.path(view.world.land) }, g);
    el("path", { class: "borders", d: view.path(view.world.borders) }, g);
  }
}

// Projected positions; routers drawn at one spot (a PoP and a transit in one city) are spread on a small circle
// (a PoP stays in the middle), and each ISP's clients fan out around it, away from the crowd.
function layout(topo) {
  const xy = {};
  for (const n of topo.nodes) {
    const p = view.projection([n.lon, n.lat]);
    xy[n.name] = p ? [p[0], p[1]] : [W / 2, H / 2];
  }
  const routers = topo.nodes.filter((n) => n.role !== "client");
  const groups = [];
  for (const n of routers) {
    const g = groups.find((gr) => Math.hypot(gr.x - xy[n.name][0], gr.y - xy[n.name][1]) < 14);
    if (g) g.members.push(n); else groups.push({ x: xy[n.name][0], y: xy[n.name][1], members: [n] });
  }
  for (const g of groups) {
    if (g.members.length < 2) continue;
    const centre = g.members.find((m) => m.role === "pop");
    const around = g.members.filter((m) => m !== centre);
    around.forEach((m, i) => {
      const a = -Math.PI / 2 + (2 * Math.PI * i) / around.length;
      xy[m.name] = [g.x + 17 * Math.cos(a), g.y + 17 * Math.sin(a)];
    });
    if (centre) xy[centre.name] = [g.x, g.y];
  }
  const byIsp = {};
  for (const n of topo.nodes) if (n.role === "client") (byIsp[n.isp] = byIsp[n.isp] || []).push(n);
  for (const [isp, clients] of Object.entries(byIsp)) {
    const [ix, iy] = xy[isp] || [W / 2, H / 2];
    const g = groups.find((gr) => gr.members.some((m) => m.name === isp));
    let away = Math.PI / 2;
    if (g && g.members.length > 1) away = Math.atan2(iy - g.y, ix - g.x);
    const spread = Math.min(Math.PI * 1.2, 0.55 * clients.length);
    clients.forEach((c, i) => {
      const a = away + (clients.length === 1 ? 0 : -spread / 2 + (spread * i) / (clients.length - 1));
      const r = 15 + (clients.length > 8 ? 6 * (i % 2) : 0);
      xy[c.name] = [ix + r * Math.cos(a), iy + r * Math.sin(a)];
    });
  }
  for (const name of Object.keys(xy)) {
    xy[name] = [Math.max(8, Math.min(W - 8, xy[name][0])), Math.max(8, Math.min(H - 8, xy[name][1]))];
  }
  return xy;
}

function geoLine(a, b) {
  const pa = view.projection.invert(view.xy[a]), pb = view.projection.invert(view.xy[b]);
  if (!pa || !pb) return `M${view.xy[a]}L${view.xy[b]}`;
  return view.path({ type: "LineString", coordinates: [pa, pb] }) || `M${view.xy[a]}L${view.xy[b]}`;
}

function drawTopology() {
  const topo = view.topo;
  view.colours = topo.colours;
  view.unknown = topo.unknown_colour;
  view.nodes = Object.fromEntries(topo.nodes.map((n) => [n.name, n]));
  view.projection = d3.geoNaturalEarth1().fitExtent([[6, 6], [W - 6, H - 6]], { type: "Sphere" });
  view.path = d3.geoPath(view.projection);
  view.xy = layout(topo);
  drawWorld();
  document.getElementById("title").textContent =
    `lab ${topo.lab} · topology ${topo.topology} · ${topo.runtime} · anycast ${topo.anycast} (AS${topo.asn})`;
  const links = document.getElementById("links");
  links.replaceChildren();
  view.linkEls = {};
  for (const l of topo.links) {
    const d = l.kind === "access" ? `M${view.xy[l.a]}L${view.xy[l.b]}` : geoLine(l.a, l.b);
    const p = el("path", { class: `link ${l.kind}`, d, "data-link": `${l.a}|${l.b}` }, links);
    view.linkEls[`${l.a}|${l.b}`] = p;
    view.linkEls[`${l.b}|${l.a}`] = p;
    el("title", {}, p).textContent = `${l.kind === "backbone" ? "backbone" : l.kind === "access" ? "access" : "AS"} link ${l.a} – ${l.b}`;
  }
  const nodes = document.getElementById("nodes");
  nodes.replaceChildren();
  view.popEls = {};
  for (const n of topo.nodes) {
    if (n.role === "client") continue;
    const [x, y] = view.xy[n.name];
    const g = el("g", { class: `node ${n.role}`, transform: `translate(${x.toFixed(1)},${y.toFixed(1)})`, "data-node": n.name }, nodes);
    const shape = el("path", { class: "shape", d: SHAPES[n.role](SIZE[n.role]) }, g);
    if (n.role === "pop") shape.setAttribute("fill", colour(n.name));
    const label = el("text", { x: SIZE[n.role] + 3, y: 4 }, g);
    label.textContent = n.role === "pop" ? n.name.toUpperCase() : n.name;
    const title = el("title", {}, g);
    title.textContent = `${n.name}: ${n.role}${n.asn ? " AS" + n.asn : ""}${n.placed !== "given" ? " (placed by " + n.placed + ")" : ""}`;
    if (n.role === "pop") view.popEls[n.name] = { g, title, label };
  }
  const clients = document.getElementById("clients");
  clients.replaceChildren();
  view.clientEls = {};
  for (const n of topo.nodes) {
    if (n.role !== "client") continue;
    const [x, y] = view.xy[n.name];
    const g = el("g", { class: "client", transform: `translate(${x.toFixed(1)},${y.toFixed(1)})`, tabindex: "0",
      role: "img", "data-client": n.name, "data-pop": "" }, clients);
    const c = el("circle", { r: 5, fill: view.unknown }, g);
    const x1 = el("path", { class: "x", d: "M-3,-3L3,3M3,-3L-3,3", visibility: "hidden" }, g);
    const title = el("title", {}, g);
    g.addEventListener("mouseenter", () => showTip(n.name));
    g.addEventListener("focus", () => showTip(n.name));
    g.addEventListener("mouseleave", hideTip);
    g.addEventListener("blur", hideTip);
    view.clientEls[n.name] = { g, c, x: x1, title };
  }
  const tbody = document.querySelector("#catchments tbody");
  tbody.replaceChildren();
  view.rowEls = {};
  for (const n of topo.nodes) {
    if (n.role !== "client") continue;
    const tr = html("tr", { "data-client": n.name, "data-pop": "" });
    const cells = ["name", "isp", "pop", "predicted", "rtt", "source"].map((k) => {
      const td = html("td", k === "rtt" ? { class: "num" } : {});
      tr.appendChild(td);
      return [k, td];
    });
    const c = Object.fromEntries(cells);
    c.name.textContent = n.name;
    const isp = view.nodes[n.isp];
    c.isp.textContent = isp ? `${n.isp} (AS${isp.asn})` : n.isp || "–";
    const predicted = topo.predicted[n.name] || [];
    c.predicted.textContent = predicted.length ? predicted.join(" | ") : "–";
    tbody.appendChild(tr);
    view.rowEls[n.name] = { tr, ...c, predicted };
  }
  drawLegend();
}

function clientText(name) {
  const s = view.state && view.state.clients[name];
  if (!s || (s.pop === null && !s.lost)) return `${name}: not measured yet`;
  if (s.lost) return `${name}: LOST (no answer)${s.error ? " – " + s.error : ""}`;
  return `${name} → ${s.pop.toUpperCase()}${s.rtt_ms !== null ? ` · ${fmt(s.rtt_ms, 1)} ms` : ""}`;
}

function showTip(name) {
  const tip = document.getElementById("tip");
  const svg = document.getElementById("map");
  const box = svg.getBoundingClientRect();
  const [x, y] = view.xy[name];
  tip.textContent = clientText(name);
  tip.style.left = `${(x / W) * box.width}px`;
  tip.style.top = `${(y / H) * box.height}px`;
  tip.hidden = false;
  tip.dataset.client = name;
  const e = view.clientEls[name];
  if (e) {
    let code = e.g.querySelector("text.code");
    if (!code) { code = el("text", { class: "code", x: 7, y: -6 }, e.g); }
    const s = view.state && view.state.clients[name];
    code.textContent = s && s.lost ? "LOST" : s && s.pop ? s.pop.toUpperCase() : "?";
  }
}
function hideTip() {
  document.getElementById("tip").hidden = true;
  for (const t of document.querySelectorAll("#clients text.code")) t.remove();
}

function drawLegend() {
  const legend = document.getElementById("legend");
  legend.replaceChildren();
  const item = (draw, text) => {
    const d = html("div");
    const s = document.createElementNS(SVGNS, "svg");
    s.setAttribute("viewBox", "-12 -8 24 16");
    draw(s);
    d.appendChild(s);
    d.appendChild(document.createTextNode(text));
    legend.appendChild(d);
  };
  for (const pop of view.topo.pops) {
    item((s) => el("circle", { r: 5, fill: colour(pop), stroke: "#1b1f24" }, s), `client on ${pop.toUpperCase()}`);
  }
  item((s) => { el("circle", { r: 5, fill: "#fff", stroke: "#c4161c", "stroke-width": 2 }, s); el("path", { d: "M-3,-3L3,3M3,-3L-3,3", stroke: "#c4161c", "stroke-width": 2 }, s); }, "client lost (no answer)");
  item((s) => el("circle", { r: 5, fill: view.unknown, stroke: "#1b1f24" }, s), "client not measured yet");
  for (const role of ["pop", "transit", "eyeball", "origin"]) {
    item((s) => {
      const g = el("g", { class: `node ${role}` }, s);
      const p = el("path", { class: "shape", d: SHAPES[role](5) }, g);
      if (role === "pop") p.setAttribute("fill", "#ffffff");
    }, { pop: "PoP (its colour)", transit: "transit AS", eyeball: "eyeball ISP", origin: "origin" }[role]);
  }
  item((s) => { const g = el("g", { class: "node pop withdrawn" }, s); el("path", { class: "shape", d: SHAPES.pop(5), fill: "#ffffff" }, g); }, "PoP not announcing");
  item((s) => { const t = el("text", { x: -5, y: 5, fill: "#c4161c", "font-size": 13 }, s); t.textContent = "⚡"; }, "a drill's fault in place");
  item((s) => el("path", { class: "link faulted", d: "M-11,0H11" }, s), "link cut by a drill");
  item((s) => el("path", { class: "link", d: "M-11,0H11" }, s), "AS link (BGP)");
  item((s) => el("path", { class: "link backbone", d: "M-11,0H11" }, s), "backbone link (OSPF)");
  item((s) => el("path", { class: "catchline", d: "M-11,0H11", stroke: "#E69F00" }, s), "client → its PoP");
}

function drawClient(n, s, e, pop, catchG) {
  e.g.setAttribute("data-pop", pop);
  e.g.classList.toggle("lost", !!s.lost);
  e.c.setAttribute("fill", s.lost ? "#ffffff" : colour(s.pop));
  e.x.setAttribute("visibility", s.lost ? "visible" : "hidden");
  if (s.pop && !s.lost && view.xy[s.pop]) {
    el("path", { class: "catchline", d: geoLine(n.name, s.pop), stroke: colour(s.pop) }, catchG);
  }
}

function applyState() {
  const st = view.state, topo = view.topo;
  if (!st || !topo) return;
  // The map (an SVG over the world's outlines, costly to repaint) is touched only when what it shows changed.
  const faults = (st.drill && st.drill.active_faults) || [];
  const mapSig = JSON.stringify([Object.entries(st.clients).map(([c, v]) => [c, v.pop, v.lost]),
    Object.entries(st.pops).map(([p, v]) => [p, v.announcing, v.proxy]), faults]);
  const mapChanged = mapSig !== view.mapSig;
  view.mapSig = mapSig;
  const catchG = document.getElementById("catch");
  if (mapChanged) catchG.replaceChildren();
  for (const n of topo.nodes) {
    if (n.role !== "client") continue;
    const s = st.clients[n.name] || {};
    const e = view.clientEls[n.name], r = view.rowEls[n.name];
    const pop = s.lost ? "lost" : s.pop || "";
    const text = clientText(n.name);
    if (e.title.textContent !== text) { e.title.textContent = text; e.g.setAttribute("aria-label", text); }
    if (mapChanged) drawClient(n, s, e, pop, catchG);
    r.tr.setAttribute("data-pop", pop);
    r.pop.replaceChildren();
    if (s.lost) {
      r.pop.appendChild(html("span", { class: "bad" }, "lost"));
    } else if (s.pop) {
      r.pop.appendChild(html("span", { class: "swatch", style: `background:${colour(s.pop)}` }));
      r.pop.appendChild(document.createTextNode(s.pop));
      if (r.predicted.length && !r.predicted.includes(s.pop)) r.pop.appendChild(html("span", { class: "warn", title: "not the predicted PoP" }, " ≠ predicted"));
    } else {
      r.pop.textContent = "not measured yet";
    }
    r.tr.classList.toggle("moved", !!(s.pop && r.predicted.length && !r.predicted.includes(s.pop)) || !!s.lost);
    r.rtt.textContent = s.lost ? "–" : s.rtt_ms === null || s.rtt_ms === undefined ? "–" : `${fmt(s.rtt_ms, 1)} ms`;
    r.source.textContent = s.source || "–";
  }
  const tip = document.getElementById("tip");
  if (!tip.hidden && tip.dataset.client) showTip(tip.dataset.client);
  if (mapChanged) for (const p of Object.values(view.linkEls)) p.classList.remove("faulted");
  if (mapChanged) for (const f of faults) {
    if (f.link && view.linkEls[`${f.link[0]}|${f.link[1]}`]) view.linkEls[`${f.link[0]}|${f.link[1]}`].classList.add("faulted");
  }
  const tbody = document.querySelector("#pops tbody");
  tbody.replaceChildren();
  for (const pop of topo.pops) {
    const fault = faults.find((f) => f.pop === pop);
    const p = st.pops[pop] || {};
    const tr = html("tr", { "data-pop": pop });
    const name = html("td");
    name.appendChild(html("span", { class: "swatch", style: `background:${colour(pop)}` }));
    name.appendChild(document.createTextNode(pop));
    if (fault) name.appendChild(html("span", { class: "bad fault", title: "a drill's fault is in place" }, `⚡ ${fault.mode}`));
    tr.appendChild(name);
    const ann = p.announcing === null || p.announcing === undefined ? ["–", ""] : p.announcing ? ["announcing", "good"] : ["NOT announcing", "bad"];
    tr.appendChild(html("td", { class: ann[1] }, ann[0]));
    const proxy = p.proxy || "–";
    tr.appendChild(html("td", { class: proxy === "ok" ? "good" : proxy === "–" ? "" : "bad" }, proxy));
    tr.appendChild(html("td", { class: "num" }, fmt(p.rps, 1)));
    tr.appendChild(html("td", { class: "num" }, p.hit_ratio === null || p.hit_ratio === undefined ? "–" : `${(p.hit_ratio * 100).toFixed(0)}%`));
    tr.appendChild(html("td", { class: "num" }, String(p.clients || 0)));
    tbody.appendChild(tr);
    const e = view.popEls[pop];
    if (e && mapChanged) {
      const off = p.announcing === false || (p.proxy && p.proxy !== "ok") || !!fault;
      e.g.classList.toggle("withdrawn", p.announcing === false);
      e.label.textContent = pop.toUpperCase() + (fault ? ` ⚡${fault.mode}` : p.announcing === false ? " ✕" : "") + (p.proxy && p.proxy !== "ok" ? ` proxy ${p.proxy}` : "");
      e.title.textContent = `${pop}: PoP, ${ann[0]}, proxy ${proxy}, ${p.clients || 0} clients`;
      e.label.setAttribute("class", off ? "bad" : "");
    }
  }
  const down = document.getElementById("down");
  down.replaceChildren();
  if (st.sessions_down.length === 0) {
    down.appendChild(html("li", { class: "good" }, st.sessions_total ? `none: all ${st.sessions_total} sessions Established` : "–"));
  } else {
    for (const s of st.sessions_down) {
      down.appendChild(html("li", { class: "bad" }, s.peer ? `${s.router} ↔ ${s.peer}: ${s.state}` : `${s.router}: ${s.state}`));
    }
  }
  drawBanner();
}

function drawBanner() {
  const banner = document.getElementById("banner");
  const st = view.state;
  const d = (st && st.drill) || (view.drill);
  if (st && st.lab_error) {
    banner.hidden = false;
    banner.className = "banner";
    banner.textContent = st.lab_error;
    return;
  }
  if (!d) { banner.hidden = true; return; }
  banner.hidden = false;
  const steps = (d.steps || []).map((s) => `${s.label} (${rel(s.t, d)})`).join(" → ");
  if (d.running) {
    banner.className = "banner";
    banner.textContent = `Drill ${d.name} running` + (steps ? `: ${steps}` : ": measuring the baseline");
  } else if (d.end) {
    banner.className = "banner done";
    const conv = d.end.convergence_s || {};
    banner.textContent = `Drill ${d.name} ${d.end.passed ? "passed" : d.end.complete ? "FAILED" : "stopped" + (d.end.error ? ` (${d.end.error})` : "")}` +
      ` · convergence p95 ${fmt(conv.p95, 2)} s · ${steps}`;
  } else {
    banner.className = "banner stale";
    banner.textContent = `Drill ${d.name} ended without a report (its process is gone) · ${steps}`;
  }
}
function rel(t, d) {
  const base = d.fault_t || d.started;
  const v = t - base;
  return `${v >= 0 ? "+" : ""}${v.toFixed(1)} s`;
}

// The outage timeline: one row per drill client, one tick per probe, coloured by the PoP that answered (a black
// cross: lost); the fault a red line, the restore a green one. Redrawn at most every 200 ms as records arrive.
function drawTimeline() {
  view.timelineDirty = false;
  const canvas = document.getElementById("timeline");
  const ratio = window.devicePixelRatio || 1;
  const cw = canvas.clientWidth, ch = canvas.clientHeight;
  if (!cw || !ch) return;
  if (canvas.width !== Math.round(cw * ratio) || canvas.height !== Math.round(ch * ratio)) {
    canvas.width = Math.round(cw * ratio); canvas.height = Math.round(ch * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, cw, ch);
  const d = view.drill;
  const note = document.getElementById("tl-note");
  if (!d) { note.textContent = "no drill yet: `anycastlab drill run FILE` shows up here"; return; }
  const clients = d.clients || [];
  const base = d.fault_t || d.started;
  const last = view.records.length ? view.records[view.records.length - 1][0] : base;
  const t0 = Math.min(d.started - base, 0);
  const t1 = Math.max(last - base + 1, (d.end ? d.end.t : Date.now() / 1000) - base, 5);
  note.textContent = `${d.name}: ${view.records.length} probes · seconds from ${d.fault_t ? "the fault" : "the start"}`;
  const left = 72, right = 8, top = 6, bottom = 18;
  const rowH = Math.max(4, (ch - top - bottom) / Math.max(1, clients.length));
  const x = (t) => left + ((t - base - t0) / (t1 - t0)) * (cw - left - right);
  const fontPx = Math.min(11, rowH);
  ctx.font = `${fontPx}px sans-serif`;
  ctx.fillStyle = "#1b1f24";
  ctx.textBaseline = "middle";
  const row = {};
  clients.forEach((c, i) => {
    row[c] = top + rowH * (i + 0.5);
    if (rowH >= 7) ctx.fillText(c, 2, row[c]);
  });
  for (const [t, client, , pop] of view.records) {
    const y = row[client];
    if (y === undefined) continue;
    const px = x(t);
    if (pop === null) {
      ctx.strokeStyle = "#000"; ctx.lineWidth = 1.2;
      const s = Math.min(3, rowH / 2.5);
      ctx.beginPath(); ctx.moveTo(px - s, y - s); ctx.lineTo(px + s, y + s); ctx.moveTo(px + s, y - s); ctx.lineTo(px - s, y + s); ctx.stroke();
    } else {
      ctx.fillStyle = colour(pop);
      ctx.fillRect(px - 1, y - rowH * 0.38, 2, rowH * 0.76);
    }
  }
  const vline = (t, c, label) => {
    const px = x(t);
    ctx.strokeStyle = c; ctx.lineWidth = 1.5; ctx.setLineDash([4, 3]);
    ctx.beginPath(); ctx.moveTo(px, top); ctx.lineTo(px, ch - bottom); ctx.stroke(); ctx.setLineDash([]);
    ctx.textBaseline = "top";
    ctx.fillStyle = "rgba(255,255,255,0.85)";
    ctx.fillRect(px + 2, top, ctx.measureText(label).width + 2, fontPx + 2);
    ctx.fillStyle = c; ctx.fillText(label, px + 3, top + 1); ctx.textBaseline = "middle";
  };
  for (const s of d.steps || []) {
    if (s.step === "fail") vline(s.t, "#c4161c", s.label);
    if (s.step === "restore") vline(s.t, "#1a7f37", "restore");
  }
  ctx.fillStyle = "#5a6470";
  ctx.textBaseline = "alphabetic";
  const span = t1 - t0, stepS = span > 120 ? 30 : span > 40 ? 10 : span > 15 ? 5 : 1;
  for (let t = Math.ceil(t0 / stepS) * stepS; t <= t1; t += stepS) {
    const px = x(base + t);
    ctx.fillRect(px, ch - bottom, 1, 4);
    ctx.fillText(`${t}s`, px - 6, ch - 3);
  }
}
function timelineSoon() {
  if (view.timelineDirty) return;
  view.timelineDirty = true;
  setTimeout(() => requestAnimationFrame(drawTimeline), 400);  // a redraw takes every record: 2.5 a second at most
}

function setLive(ok, text) {
  const live = document.getElementById("live");
  live.classList.toggle("off", !ok);
  live.textContent = text;
}

function connect() {
  const source = new EventSource("/api/events");
  source.addEventListener("open", () => { view.connected = true; });
  source.addEventListener("error", () => { view.connected = false; setLive(false, "reconnecting…"); });
  source.addEventListener("topology", (ev) => {
    view.topo = JSON.parse(ev.data);
    drawTopology();
    applyState();
  });
  source.addEventListener("drill", (ev) => {
    const d = JSON.parse(ev.data);
    view.drill = d;
    view.records = d && d.records ? d.records : [];
    if (d) delete d.records;
    drawBanner();
    timelineSoon();
  });
  source.addEventListener("probes", (ev) => {
    for (const r of JSON.parse(ev.data)) view.records.push(r);
    timelineSoon();
  });
  source.addEventListener("state", (ev) => {
    view.state = JSON.parse(ev.data);
    view.lastMessage = Date.now();
    if (view.state.drill && view.drill) Object.assign(view.drill, view.state.drill);
    else if (view.state.drill && !view.drill) view.drill = view.state.drill;
    applyState();
    if (view.drill && view.drill.running) timelineSoon();
  });
}

setInterval(() => {
  if (!view.connected) return;
  const age = view.state ? Math.max(0, Date.now() / 1000 - view.state.t) : null;
  setLive(true, age === null ? "live" : `live · state ${age.toFixed(1)} s old`);
  if (view.drill && view.drill.running) timelineSoon();
}, 1000);
window.addEventListener("resize", timelineSoon);

loadWorld().then(() => {
  if (view.topo) drawWorld();
  connect();
});
