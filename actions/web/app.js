// The journal page: reads /api/v1/actions and renders it as text only (label values and
// details come from alerts and are never parsed as HTML).
"use strict";

const COLORS = {
  done: "#2a8a2a", dry_run: "#4a6fd0", failed: "#c02020", rejected: "#e07070",
  pending: "#d0a000", running: "#d0a000", deferred: "#c08000",
  awaiting_quorum: "#a040c0", awaiting_confirmation: "#a040c0",
  superseded: "#999", cancelled: "#777",
};

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function params() {
  const p = new URLSearchParams(location.search);
  for (const [k, id] of [["state", "f-state"], ["rule", "f-rule"], ["limit", "f-limit"]]) {
    if (p.has(k)) document.getElementById(id).value = p.get(k);
  }
  if (p.get("refresh") === "0") document.getElementById("f-refresh").checked = false;
  return p;
}

function apiQuery(p) {
  const q = new URLSearchParams();
  for (const k of ["state", "rule", "action", "limit", "before"]) {
    if (p.get(k)) q.set(k, p.get(k));
  }
  if (!q.has("limit")) q.set("limit", "200");
  return q.toString();
}

function targetsText(a) {
  const aff = Array.isArray(a.affected) ? a.affected : [];
  let t = "";
  const tg = a.targets;
  if (tg && tg.kind) {
    if (tg.kind === "all_nodes") t = "all nodes";
    else if (tg.kind === "all_partitions") t = "all partitions";
    else t = (tg.kind === "nodes" ? "nodes " : "partitions ") + (tg.names || []).join(",");
  }
  if (aff.length) t += (t ? " → " : "") + (a.action === "slurm.cancel_jobs" ? "jobs " : "") + aff.join(",");
  return t;
}

async function post(url) {
  const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
  if (!r.ok) throw new Error(url + ": HTTP " + r.status);
}

function renderTimeline(actions) {
  const svg = document.getElementById("timeline");
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const ns = "http://www.w3.org/2000/svg";
  if (!actions.length) { svg.setAttribute("height", "0"); return; }
  const rules = [...new Set(actions.map(a => a.rule))].sort();
  const times = actions.map(a => Date.parse(a.created_at));
  let t0 = Math.min(...times), t1 = Math.max(...times);
  if (t1 - t0 < 60000) { t0 -= 30000; t1 += 30000; }
  const W = svg.clientWidth || 900, left = 140, lane = 22, H = rules.length * lane + 20;
  svg.setAttribute("height", String(H));
  rules.forEach((r, i) => {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", "0"); t.setAttribute("y", String(i * lane + 15));
    t.setAttribute("font-size", "12"); t.textContent = r;
    svg.appendChild(t);
    const l = document.createElementNS(ns, "line");
    l.setAttribute("x1", String(left)); l.setAttribute("x2", String(W - 10));
    l.setAttribute("y1", String(i * lane + 11)); l.setAttribute("y2", String(i * lane + 11));
    l.setAttribute("stroke", "#ddd");
    svg.appendChild(l);
  });
  for (const a of actions) {
    const x = left + (Date.parse(a.created_at) - t0) / (t1 - t0) * (W - left - 20);
    const c = document.createElementNS(ns, "circle");
    c.setAttribute("cx", x.toFixed(1));
    c.setAttribute("cy", String(rules.indexOf(a.rule) * lane + 11));
    c.setAttribute("r", a.phase === "revert" ? "4" : "6");
    c.setAttribute("fill", COLORS[a.state] || "#000");
    c.setAttribute("class", "mark st-" + a.state);
    const title = document.createElementNS(ns, "title");
    title.textContent = "#" + a.id + " " + a.action + " " + a.state + " " + a.created_at;
    c.appendChild(title);
    svg.appendChild(c);
  }
  const axis = document.createElementNS(ns, "text");
  axis.setAttribute("x", String(left)); axis.setAttribute("y", String(H - 2));
  axis.setAttribute("font-size", "11");
  axis.textContent = new Date(t0).toISOString().replace("T", " ").slice(0, 19) + " … " +
    new Date(t1).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  svg.appendChild(axis);
}

async function showDetails(id) {
  const r = await fetch("api/v1/actions/" + encodeURIComponent(id));
  const j = await r.json();
  if (!r.ok) throw new Error(j.error || ("HTTP " + r.status));
  const a = j.action;
  document.getElementById("details").hidden = false;
  document.getElementById("details-title").textContent =
    "#" + a.id + " " + a.action + " (" + a.rule + ", " + a.phase + ") — " + a.state;
  document.getElementById("details-commands").textContent =
    (a.commands || []).map(c => c.join(" ")).join("\n") || "(none)";
  const ol = document.getElementById("details-events");
  while (ol.firstChild) ol.removeChild(ol.firstChild);
  for (const e of a.events || []) {
    ol.appendChild(el("li", e.at + " " + e.state + (e.actor ? " by " + e.actor : "") + ": " + e.detail));
  }
  document.getElementById("details-labels").textContent = JSON.stringify(a.labels, null, 2);
}

async function load(p) {
  const err = document.getElementById("error");
  try {
    const r = await fetch("api/v1/actions?" + apiQuery(p));
    const j = await r.json();
    if (!r.ok) throw new Error(j.error || ("HTTP " + r.status));
    err.hidden = true;
    document.getElementById("mode").textContent = j.mode;
    const paused = document.getElementById("paused");
    paused.textContent = j.paused ? "PAUSED (nothing runs)" : "off";
    paused.className = j.paused ? "on" : "";
    const btn = document.getElementById("toggle-pause");
    btn.hidden = false;
    btn.textContent = j.paused ? "Resume actions" : "Pause all actions";
    btn.onclick = async () => {
      try { await post(j.paused ? "api/v1/resume" : "api/v1/pause"); load(p); }
      catch (e) { err.textContent = String(e); err.hidden = false; }
    };
    const tbody = document.getElementById("rows");
    while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
    for (const a of j.actions) {
      const tr = document.createElement("tr");
      tr.className = "row st-" + a.state;
      const idc = el("td");
      const link = el("a", a.id);
      link.href = "#" + a.id;
      link.onclick = (ev) => { ev.preventDefault(); showDetails(a.id).catch(e => { err.textContent = String(e); err.hidden = false; }); };
      idc.appendChild(link);
      tr.appendChild(idc);
      tr.appendChild(el("td", a.created_at.replace("T", " ").replace("Z", "")));
      tr.appendChild(el("td", a.rule));
      tr.appendChild(el("td", a.action + (a.phase === "revert" ? " (revert #" + a.revert_of + ")" : "")));
      tr.appendChild(el("td", a.mode));
      const st = el("td");
      st.appendChild(el("span", a.state, "state st-" + a.state));
      if (a.state === "awaiting_confirmation") {
        const b = el("button", "Confirm", "small");
        b.onclick = async () => { await post("api/v1/actions/" + a.id + "/confirm"); load(p); };
        st.appendChild(b);
      }
      tr.appendChild(st);
      tr.appendChild(el("td", targetsText(a)));
      const labels = a.labels || {};
      const where = labels.instance || labels.node || "";
      tr.appendChild(el("td", a.alertname + (where ? " @ " + where : "")));
      tr.appendChild(el("td", a.detail, "detail"));
      tbody.appendChild(tr);
    }
    renderTimeline(j.actions);
    const counts = {};
    for (const a of j.actions) counts[a.state] = (counts[a.state] || 0) + 1;
    document.getElementById("summary").textContent = j.actions.length + " actions" +
      (j.actions.length ? " (" + Object.entries(counts).map(([k, v]) => v + " " + k).join(", ") + ")" : "");
  } catch (e) {
    err.textContent = "Query failed: " + e.message;
    err.hidden = false;
    document.getElementById("summary").textContent = "";
  }
}

const p = params();
load(p);
setInterval(() => { if (document.getElementById("f-refresh").checked) load(p); }, 10000);
