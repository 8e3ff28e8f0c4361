// The alert log page: reads the filters from the URL, queries api/v1/alerts and renders the
// table. Every value is inserted with textContent (never innerHTML), so label values with
// quotes or HTML stay text.
"use strict";
(function () {
  var params = new URLSearchParams(window.location.search);
  var fields = ["range", "status", "severity", "alertname", "matcher", "q", "limit"];
  fields.forEach(function (f) {
    var el = document.getElementById("f-" + f);
    if (el && params.has(f)) { el.value = params.get(f); }
  });
  var refresh = document.getElementById("f-refresh");
  if (params.get("refresh") === "0") { refresh.checked = false; }

  var UNITS = { h: 3600, d: 86400 };
  function apiQuery(extra) {
    var q = new URLSearchParams();
    var range = document.getElementById("f-range").value;
    var m = /^(\d+)([hd])$/.exec(range);
    if (m) {
      q.set("from", new Date(Date.now() - Number(m[1]) * UNITS[m[2]] * 1000).toISOString());
    }
    ["status", "severity", "alertname", "matcher", "q", "limit"].forEach(function (f) {
      var v = document.getElementById("f-" + f).value.trim();
      if (v) { q.set(f, v); }
    });
    Object.keys(extra || {}).forEach(function (k) { q.set(k, extra[k]); });
    return q;
  }

  function fmtTime(s) {
    if (!s) { return ""; }
    return s.replace("T", " ").replace(/\.\d+Z$/, "").replace(/Z$/, "");
  }
  function fmtDuration(sec) {
    sec = Math.max(0, Math.round(sec));
    var d = Math.floor(sec / 86400), h = Math.floor(sec % 86400 / 3600),
      m = Math.floor(sec % 3600 / 60), s = sec % 60;
    if (d) { return d + "d " + h + "h"; }
    if (h) { return h + "h " + m + "m"; }
    if (m) { return m + "m " + s + "s"; }
    return s + "s";
  }
  function cell(tr, text, cls) {
    var td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (cls) { td.className = cls; }
    tr.appendChild(td);
    return td;
  }
  function safeHref(u) {
    return typeof u === "string" && /^https?:\/\//i.test(u) ? u : null;
  }

  var cursor = null;
  function render(body, append) {
    var tbody = document.getElementById("rows");
    if (!append) { tbody.textContent = ""; }
    body.data.forEach(function (a) {
      var tr = document.createElement("tr");
      tr.className = "sev-" + String(a.severity).replace(/[^a-z0-9_-]/gi, "");
      tr.dataset.id = a.id;
      cell(tr, a.status, "status status-" + (a.status === "firing" ? "firing" : "resolved"));
      cell(tr, a.severity, "severity");
      cell(tr, a.alertname, "alertname");
      cell(tr, a.instance, "instance");
      var ann = a.annotations || {};
      var td = cell(tr, ann.summary || "", "desc");
      if (ann.description) {
        var small = document.createElement("small");
        small.textContent = ann.description;
        td.appendChild(small);
      }
      cell(tr, fmtTime(a.startsAt), "num started");
      cell(tr, a.endsAt ? fmtTime(a.endsAt) : "firing", "num resolved");
      cell(tr, fmtDuration(a.durationSeconds), "num duration");
      var links = cell(tr, "", "links");
      var src = safeHref(a.generatorURL);
      if (src) {
        var l = document.createElement("a");
        l.href = src; l.textContent = "source"; l.rel = "noopener noreferrer";
        links.appendChild(l);
        links.appendChild(document.createTextNode(" · "));
      }
      var det = document.createElement("a");
      det.href = "api/v1/alerts/" + encodeURIComponent(a.id);
      det.textContent = "history";
      links.appendChild(det);
      tbody.appendChild(tr);
    });
    cursor = body.nextCursor;
    var more = document.getElementById("more");
    more.hidden = !body.more;
    var n = tbody.children.length;
    document.getElementById("summary").textContent =
      n + " episode" + (n === 1 ? "" : "s") + (body.more ? " (more available)" : "") +
      " · updated " + new Date().toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function load(append) {
    var extra = append && cursor ? { cursor: cursor } : {};
    var q = apiQuery(extra);
    var csv = apiQuery({ format: "csv" });
    document.getElementById("csv").href = "api/v1/alerts?" + csv.toString();
    return fetch("api/v1/alerts?" + q.toString(), { headers: { Accept: "application/json" } })
      .then(function (r) {
        return r.json().then(function (b) {
          if (!r.ok) { throw new Error(b.error || ("HTTP " + r.status)); }
          return b;
        });
      })
      .then(function (b) {
        document.getElementById("error").hidden = true;
        render(b, append);
      })
      .catch(function (e) {
        var el = document.getElementById("error");
        el.textContent = "Query failed: " + e.message;
        el.hidden = false;
        document.getElementById("summary").textContent = "";
      });
  }

  document.getElementById("more").addEventListener("click", function (ev) {
    ev.preventDefault();
    load(true);
  });
  setInterval(function () { if (refresh.checked) { load(false); } }, 30000);
  load(false);
})();
