// lagmon dashboard: lists every group with its status and charts a group's
// lag over time (total and per partition) as SVG. No libraries.
"use strict";

const refreshMs = Number(new URLSearchParams(location.search).get("refresh")) || 2000;
const palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const svgNS = "http://www.w3.org/2000/svg";
let selected = null; // {cluster, group}

function el(tag, attrs, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(svgNS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(url + ": HTTP " + r.status);
  return r.json();
}

function fmtSeconds(s) {
  if (s === null || s === undefined) return "";
  if (s < 60) return s.toFixed(1);
  if (s < 3600) return (s / 60).toFixed(1) + "m";
  return (s / 3600).toFixed(1) + "h";
}

async function loadClusters() {
  const data = await getJSON("/v3/kafka");
  const box = document.getElementById("clusters");
  box.replaceChildren(...data.clusters.map(c => el("span", { "data-cluster": c }, c)));
}

async function loadGroups() {
  const groups = await getJSON("api/groups");
  const body = document.querySelector("#groups tbody");
  document.getElementById("empty").hidden = groups.length > 0;
  if (!selected && location.hash.length > 1) {
    const [cluster, ...rest] = decodeURIComponent(location.hash.slice(1)).split("/");
    selected = { cluster, group: rest.join("/") };
  }
  if (!selected && groups.length > 0) selected = { cluster: groups[0].cluster, group: groups[0].group };
  body.replaceChildren(...groups.map(g => {
    const tr = el("tr", { "data-cluster": g.cluster, "data-group": g.group, "data-status": g.status });
    if (selected && selected.cluster === g.cluster && selected.group === g.group) tr.classList.add("selected");
    const badge = el("span", { class: "badge status-" + g.status }, g.status);
    const cells = [el("td", {}, g.cluster), el("td", {}, g.group), el("td"), el("td", { class: "num" }, String(g.totallag)),
      el("td", { class: "num" }, fmtSeconds(g.maxlag_seconds)), el("td", { class: "num" }, String(g.partition_count)),
      el("td", { class: "num" }, Math.round(g.complete * 100) + "%")];
    cells[2].appendChild(badge);
    tr.append(...cells);
    tr.addEventListener("click", () => { selected = { cluster: g.cluster, group: g.group }; location.hash = g.cluster + "/" + g.group; refresh(); });
    return tr;
  }));
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function drawChart(h) {
  const svg = document.getElementById("chart");
  const W = 800, H = 320, L = 60, R = 10, T = 10, B = 30;
  const samples = h.samples || [];
  document.getElementById("chart-title").textContent = "Lag over time: " + h.cluster + " / " + h.group;
  const nodes = [];
  const t0 = samples.length ? samples[0].t : 0, t1 = samples.length ? samples[samples.length - 1].t : 1;
  const span = Math.max(t1 - t0, 1);
  let top = 0;
  for (const s of samples) top = Math.max(top, s.total);
  top = niceMax(top);
  const x = t => L + (W - L - R) * (t - t0) / span;
  const y = v => H - B - (H - T - B) * v / top;
  for (let i = 0; i <= 4; i++) {
    const v = top * i / 4, yy = y(v);
    nodes.push(el("svg:line", { class: "grid", x1: L, x2: W - R, y1: yy, y2: yy }));
    nodes.push(el("svg:text", { class: "axis", x: L - 6, y: yy + 4, "text-anchor": "end" }, String(Math.round(v))));
  }
  if (samples.length) {
    const fmt = t => new Date(t).toLocaleTimeString();
    nodes.push(el("svg:text", { class: "axis", x: L, y: H - 8 }, fmt(t0)));
    nodes.push(el("svg:text", { class: "axis", x: W - R, y: H - 8, "text-anchor": "end" }, fmt(t1)));
  }
  const legend = [];
  const line = (values, cls, color, name) => {
    const pts = samples.map((s, i) => x(s.t).toFixed(1) + "," + y(values(s, i)).toFixed(1)).join(" ");
    const pl = el("svg:polyline", { points: pts, class: cls, "data-series": name });
    if (color) pl.setAttribute("stroke", color);
    nodes.push(pl);
    const li = el("li", { "data-series": name }, name);
    li.style.setProperty("--c", color || "#1d232a");
    legend.push(li);
  };
  h.partitions.forEach((p, i) => line(s => s.lags[i], "partition", palette[i % palette.length], p));
  line(s => s.total, "total", null, "total");
  svg.replaceChildren(...nodes);
  document.getElementById("legend").replaceChildren(...legend);
}

async function loadHistory() {
  if (!selected) return;
  try {
    drawChart(await getJSON("api/history?cluster=" + encodeURIComponent(selected.cluster) + "&group=" + encodeURIComponent(selected.group)));
  } catch (e) {
    document.getElementById("chart-title").textContent = "Lag over time: " + e.message;
  }
}

async function refresh() {
  try {
    await loadGroups();
    await loadHistory();
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    document.getElementById("updated").textContent = "update failed: " + e.message;
  }
}

loadClusters().catch(() => {});
refresh();
setInterval(refresh, refreshMs);
