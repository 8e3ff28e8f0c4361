#!/usr/bin/env python3
"""Checks Grafana dashboards (stdlib only).

    check_dashboards.py [--self-test] [--root DIR] [DASHBOARD.json ...]
    check_dashboards.py --live URL [--allow-list FILE] [--var NAME=VALUE ...]
                        [--range SECONDS] [DASHBOARD.json ...]

For every dashboard (default: dashboards/*.json under the repo root):
  * the file is valid JSON with a title, a uid and panels, a `datasource` variable of type
    `datasource` (prometheus), and no panel or target pinned to another datasource uid;
  * every PromQL expression (panel targets, and query variables' `label_values(...)` /
    `query_result(...)`) parses: Grafana variables are substituted first, then all expressions
    are checked in ONE `promtool check rules` run on a generated rules file;
  * every metric name those expressions use exists: known names are the families and sample
    names of every exporters/*/testdata/**/*.prom and actions/testdata/**/*.prom file (golden
    scrapes, kept current by each crate's tests) plus the recording rules of
    rules/*.rules.yml (plus Prometheus' own synthetic `up`, `scrape_*`, `ALERTS`).

Live mode (--live URL, a Prometheus base URL such as http://127.0.0.1:9090) checks the
dashboards against real data instead:
  * every variable is resolved in order, as Grafana would, by evaluating its query on that
    Prometheus: label_values(label) (/api/v1/label/L/values), label_values(expr, label)
    (/api/v1/series), query_result(expr) (/api/v1/query), metrics(re), label_names(); the
    variable's `regex` is applied. It is bound to: the value given with --var NAME=VALUE; else
    its saved default (`current`; "All" as Grafana renders it: allValue or (a|b|...)) when that
    is among the results; else the first result. Textbox variables without a default take the
    first value of a hint query (jobid: label_values(slurm_job_info, jobid)). A variable with no
    value fails (its dependants are still tried with an empty value);
  * every panel target (hidden ones excepted) is evaluated with the variables substituted
    (multi-value / include-All variables regex-escaped, as Grafana does): as an instant query,
    and for time series / state timeline / bar panels also as a range query over the last
    --range seconds (default 3600, step range/60). A target FAILs when a query errors or
    when none of its queries returns a series;
  * the allow-list (--allow-list FILE, default dashboards/live-allowlist.txt when present)
    excuses panels or variables. One entry a line:
        <dashboard uid> <panel title, or $variable>  # <reason, required>
    e.g. `hpcmon-gpu XID errors (1h) by XID  # no GPU on the test machine`. Blank lines and
    lines starting with # are ignored; an entry without a reason is an error. An allowed
    panel's failures are reported as ALLOWED; entries that match nothing are reported UNUSED.
It prints one line per variable and target (PASS / FAIL / ALLOWED) and a summary; the exit
status is non-zero when anything FAILed or the allow-list is malformed.

--self-test checks the metric-name extractor on tricky expressions and runs the check on
deliberately broken dashboards, which must fail with the expected messages; it also runs
the live mode against a stub Prometheus (a local HTTP server on 127.0.0.1, in-process).
"""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

KEYWORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "inf", "nan",
}
MODIFIERS_WITH_LIST = {"by", "without", "on", "ignoring", "group_left", "group_right"}
SYNTHETIC = {
    "up", "scrape_duration_seconds", "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling", "scrape_series_added", "ALERTS",
    "ALERTS_FOR_STATE",
}
INTERVAL_VARS = {
    "__rate_interval": "5m", "__interval": "1m", "__range": "1h", "__auto_interval": "1m",
    "__range_s": "3600", "__range_ms": "3600000", "__interval_ms": "60000",
}

TOKEN = re.compile(
    r"""(?P<ws>\s+)
      | (?P<comment>\#[^\n]*)
      | (?P<str>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
      | (?P<num>[0-9.][0-9a-zA-Z_.]*)
      | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
      | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^(){}\[\],=<>@])
      | (?P<bad>.)""",
    re.X | re.S,
)


def tokens(expr):
    for m in TOKEN.finditer(expr):
        kind = m.lastgroup
        if kind in ("ws", "comment"):
            continue
        yield kind, m.group(kind)


def metric_names(expr):
    """Metric names a PromQL expression selects (not functions, keywords or label names)."""
    toks = list(tokens(expr))
    names = set()
    i, brace, bracket = 0, 0, 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else None
        if kind == "op":
            if text == "{":
                brace += 1
            elif text == "}":
                brace -= 1
            elif text == "[":
                bracket += 1
            elif text == "]":
                bracket -= 1
            i += 1
            continue
        if brace > 0:
            # Label matchers: only {__name__="x"} names a metric.
            if kind == "ident" and text == "__name__" and nxt == "=" and i + 2 < len(toks) \
                    and toks[i + 2][0] == "str":
                names.add(toks[i + 2][1][1:-1])
            i += 1
            continue
        if bracket > 0 or kind != "ident":
            i += 1
            continue
        low = text.lower()
        if low in MODIFIERS_WITH_LIST and nxt == "(":
            # by (a, b) / on (x) / group_left (y): skip the label list.
            depth, i = 0, i + 1
            while i < len(toks):
                if toks[i][1] == "(":
                    depth += 1
                elif toks[i][1] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                i += 1
            i += 1
            continue
        if low in KEYWORDS or nxt == "(" or (nxt or "").lower() in ("by", "without"):
            i += 1  # keyword, function, or aggregation (also `sum by (x) (...)`)
            continue
        names.add(text)
        i += 1
    return names


VAR = re.compile(r"\$\{([A-Za-z0-9_]+)(?::[^}]*)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_]+)(?::[^\]]*)?\]\]")


def substitute(expr):
    """Replaces Grafana variables by values that keep the expression parseable."""
    out, pos, quote = [], 0, None
    i = 0
    # Walk the text to know whether a variable sits inside a string literal or a range.
    while i < len(expr):
        c = expr[i]
        if quote:
            if c == "\\":
                out.append(expr[i:i + 2]); i += 2; continue
            if c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
        m = VAR.match(expr, i) if c in "$[" else None
        if m and not (c == "[" and not m.group(3)):
            name = m.group(1) or m.group(2) or m.group(3)
            if name in INTERVAL_VARS:
                val = INTERVAL_VARS[name]
            elif quote:
                val = "x"
            elif "".join(out).rstrip().endswith("[") or "".join(out).rstrip().endswith(":"):
                val = "5m"
            else:
                val = "1"
            out.append(val)
            i = m.end()
            continue
        out.append(c)
        i += 1
    return "".join(out)


def variable_exprs(var):
    """PromQL inside a Grafana query variable: label_values(expr, label) or query_result(expr)."""
    q = var.get("query")
    if isinstance(q, dict):
        q = q.get("query", "")
    if not isinstance(q, str) or not q.strip():
        return []
    q = q.strip()
    m = re.fullmatch(r"label_values\((.*)\)", q, re.S)
    if m:
        inner = m.group(1)
        # label_values(label) has no selector; label_values(expr, label) ends in ", label".
        m2 = re.fullmatch(r"(.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*", inner, re.S)
        return [m2.group(1)] if m2 else []
    m = re.fullmatch(r"query_result\((.*)\)", q, re.S)
    if m:
        return [m.group(1)]
    if re.fullmatch(r"(label_names|metrics)\(.*\)", q, re.S):
        return []
    return [q]


def walk_panels(panels):
    for p in panels or []:
        if not isinstance(p, dict):
            continue
        yield p
        yield from walk_panels(p.get("panels"))


def ds_uid(ds):
    if isinstance(ds, dict):
        return ds.get("uid")
    return ds


def known_names(root):
    names = set(SYNTHETIC)
    goldens = glob.glob(os.path.join(root, "exporters", "*", "testdata", "**", "*.prom"), recursive=True)
    goldens += glob.glob(os.path.join(root, "actions", "testdata", "**", "*.prom"), recursive=True)
    for f in goldens:
        if not os.path.isfile(f):
            continue
        with open(f, errors="replace") as fh:
            for line in fh:
                m = re.match(r"#\s*(?:TYPE|HELP|UNIT)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)", line)
                if m:
                    names.add(m.group(1))
                    continue
                m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)[{\s]", line)
                if m and not line.startswith("#"):
                    names.add(m.group(1))
    for f in glob.glob(os.path.join(root, "rules", "*.rules.yml")):
        with open(f) as fh:
            names |= set(re.findall(r"^\s*-?\s*record:\s*['\"]?([a-zA-Z_:][a-zA-Z0-9_:]*)", fh.read(), re.M))
    return names


def check(paths, root, out=print):
    """Returns the number of problems found in the dashboards `paths`."""
    problems = []
    exprs = []  # (where, original, substituted)
    for path in paths:
        rel = os.path.relpath(path, root)
        try:
            with open(path) as fh:
                d = json.load(fh)
        except (OSError, ValueError) as e:
            problems.append(f"{rel}: not valid JSON: {e}")
            continue
        if not isinstance(d, dict):
            problems.append(f"{rel}: not a dashboard object")
            continue
        for key in ("title", "uid", "panels"):
            if not d.get(key):
                problems.append(f"{rel}: missing {key}")
        tvars = (d.get("templating") or {}).get("list") or []
        if not any(v.get("name") == "datasource" and v.get("type") == "datasource"
                   and v.get("query") == "prometheus" for v in tvars):
            problems.append(f"{rel}: no template variable `datasource` of type datasource (query prometheus)")
        allowed = {None, "", "${datasource}", "$datasource", "-- Grafana --", "grafana"}
        for v in tvars:
            if v.get("type") == "query":
                if ds_uid(v.get("datasource")) not in allowed:
                    problems.append(f"{rel}: variable {v.get('name')}: datasource is not ${{datasource}}")
                for e in variable_exprs(v):
                    exprs.append((f"{rel}: variable {v.get('name')}", e))
        seen_ids = set()
        for p in walk_panels(d.get("panels")):
            where = f"{rel}: panel {p.get('id')} {p.get('title')!r}"
            if p.get("id") is not None:
                if p["id"] in seen_ids:
                    problems.append(f"{where}: duplicate panel id")
                seen_ids.add(p["id"])
            if ds_uid(p.get("datasource")) not in allowed:
                problems.append(f"{where}: datasource is not ${{datasource}}")
            for t in p.get("targets") or []:
                if ds_uid(t.get("datasource")) not in allowed:
                    problems.append(f"{where}: target {t.get('refId')}: datasource is not ${{datasource}}")
                e = t.get("expr")
                if e is None:
                    continue
                if not isinstance(e, str) or not e.strip():
                    problems.append(f"{where}: target {t.get('refId')}: empty expr")
                    continue
                exprs.append((f"{where} target {t.get('refId')}", e))

    known = known_names(root)
    subst = [(w, e, substitute(e)) for w, e in exprs]
    # All expressions in one promtool run; on failure, pinpoint each one.
    if subst:
        bad = promtool_failures([s for _, _, s in subst])
        for idx, msg in bad.items():
            w, e, s = subst[idx]
            problems.append(f"{w}: expression does not parse: {msg}\n    expr: {e}")
        for idx, (w, e, s) in enumerate(subst):
            if idx in bad:
                continue
            for name in sorted(metric_names(s)):
                if name not in known:
                    problems.append(f"{w}: unknown metric {name} (not in any exporters/*/testdata/**/*.prom, actions/testdata/**/*.prom nor a recording rule)\n    expr: {e}")
    for p in problems:
        out(p)
    out(f"check-dashboards: {len(paths)} dashboard(s), {len(exprs)} expression(s), "
        f"{len(known)} known metric names, {len(problems)} problem(s)")
    return len(problems)


def promtool_rules(exprs):
    return json.dumps({"groups": [{"name": "dashboard_exprs", "rules": [
        {"record": f"dashboard_expr_{i}", "expr": e} for i, e in enumerate(exprs)]}]})


def promtool_failures(exprs):
    """{index: message} of expressions promtool cannot parse (one run when all parse)."""
    def run(es):
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            f.write(promtool_rules(es))
            name = f.name
        try:
            r = subprocess.run(["promtool", "check", "rules", name], capture_output=True,
                               text=True, timeout=60)
        finally:
            os.unlink(name)
        return r.returncode, (r.stdout + r.stderr)
    rc, text = run(exprs)
    if rc == 0:
        return {}
    fails = {}
    for i, e in enumerate(exprs):
        rc1, text1 = run([e])
        if rc1 != 0:
            msg = [l.strip() for l in text1.splitlines() if "parse" in l or "error" in l.lower()]
            fails[i] = (msg[-1] if msg else text1.strip())
    if not fails:
        fails[0] = "promtool check rules failed: " + text.strip()
    return fails


# ---------------------------------------------------------------- live mode
RANGE_PANELS = {"timeseries", "state-timeline", "status-history", "barchart", "graph", "trend", "heatmap"}
TEXTBOX_HINTS = {"jobid": "label_values(slurm_job_info, jobid)"}
REGEX_SPECIAL = re.compile(r"[$^*{}\[\]'+?.()|\\]")


class PromError(Exception):
    pass


class Prom:
    """Minimal client of the Prometheus HTTP API (GET, JSON)."""

    def __init__(self, url, range_s=3600, timeout=30):
        self.url = url.rstrip("/")
        self.range_s = range_s
        self.timeout = timeout
        self.now = time.time()

    def get(self, path, params):
        q = urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(f"{self.url}{path}?{q}", timeout=self.timeout) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            try:
                body = json.load(e)
            except ValueError:
                raise PromError(f"HTTP {e.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise PromError(f"request failed: {e}") from None
        if body.get("status") != "success":
            raise PromError(f"{body.get('errorType', 'error')}: {body.get('error', body)}")
        return body.get("data")

    def query(self, expr):
        return self.get("/api/v1/query", {"query": expr, "time": f"{self.now:.3f}"})["result"]

    def query_range(self, expr):
        step = max(1, self.range_s // 60)
        return self.get("/api/v1/query_range", {"query": expr, "start": f"{self.now - self.range_s:.3f}",
                                                "end": f"{self.now:.3f}", "step": str(step)})["result"]

    def series(self, match):
        return self.get("/api/v1/series", {"match[]": match, "start": f"{self.now - self.range_s:.3f}",
                                           "end": f"{self.now:.3f}"})

    def label_values(self, label):
        return self.get(f"/api/v1/label/{urllib.parse.quote(label)}/values", {})


def var_query(var):
    q = var.get("query")
    if isinstance(q, dict):
        q = q.get("query", "")
    return q.strip() if isinstance(q, str) else ""


def series_text(s):
    """query_result() text of one instant-query sample, as Grafana builds it."""
    m = s.get("metric", {})
    labels = ", ".join(f'{k}="{v}"' for k, v in m.items() if k != "__name__")
    ts, val = s.get("value", [0, ""])
    return f"{m.get('__name__', '')}{{{labels}}} {val} {int(float(ts) * 1000)}"


def resolve_values(prom, q):
    """Values of a Grafana Prometheus variable query (after substitution)."""
    m = re.fullmatch(r"label_values\((.*)\)", q, re.S)
    if m:
        inner = m.group(1).strip()
        m2 = re.fullmatch(r"(.*),\s*([A-Za-z_][A-Za-z0-9_]*)", inner, re.S)
        if m2:
            label = m2.group(2)
            vals = {s[label] for s in prom.series(m2.group(1).strip()) if label in s}
            return sorted(vals)
        return sorted(prom.label_values(inner))
    m = re.fullmatch(r"query_result\((.*)\)", q, re.S)
    if m:
        return [series_text(s) for s in prom.query(m.group(1))]
    m = re.fullmatch(r"metrics\((.*)\)", q, re.S)
    if m:
        rx = re.compile(m.group(1).strip())
        return [n for n in prom.label_values("__name__") if rx.search(n)]
    if re.fullmatch(r"label_names\(\s*\)", q):
        return sorted(prom.get("/api/v1/labels", {}))
    return [series_text(s) for s in prom.query(q)]


def apply_regex(values, regex):
    if not regex:
        return values
    rx = re.compile(regex[1:regex.rindex("/")] if regex.startswith("/") and regex.count("/") >= 2 else regex)
    out = []
    for v in values:
        m = rx.search(v)
        if m:
            groups = m.groupdict()
            val = groups.get("value") or (m.group(1) if m.groups() else v)
            if val is not None and val not in out:
                out.append(val)
    return out


def interpolate(expr, bound, escaped):
    """Substitutes Grafana variables with their bound values (builtins: fixed intervals)."""
    def val(name, fmt):
        if name in bound:
            v = bound[name]
            if fmt == "raw" or name not in escaped:
                return v
            return v if v in (".*", ".+") else REGEX_SPECIAL.sub(lambda m: "\\\\" + m.group(0), v)
        return INTERVAL_VARS.get(name)

    def rep(m):
        name = m.group(1) or m.group(2) or m.group(3)
        fm = re.match(r"\$\{[A-Za-z0-9_]+:([^}]*)\}", m.group(0))
        v = val(name, fm.group(1) if fm else None)
        return m.group(0) if v is None else v
    return VAR.sub(rep, expr)


def read_allow_list(path):
    """{(uid, title): reason}, [problems]."""
    entries, problems = {}, []
    if not path:
        return entries, problems
    with open(path) as fh:
        for n, line in enumerate(fh, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            body, _, reason = text.partition("#")
            parts = body.strip().split(None, 1)
            if len(parts) != 2 or not reason.strip():
                problems.append(f"{path}:{n}: want `<dashboard uid> <panel title or $variable>  # <reason>`: {text}")
                continue
            entries[(parts[0], parts[1].strip())] = reason.strip()
    return entries, problems


def bind_variables(prom, d, overrides, results):
    """Resolves the dashboard's variables in order; returns (bound, escaped names)."""
    uid = d.get("uid", "?")
    bound, escaped = {}, set()
    for v in (d.get("templating") or {}).get("list") or []:
        name, typ = v.get("name"), v.get("type")
        if not name or typ in ("datasource", "adhoc", "groupby"):
            continue
        q = interpolate(var_query(v), bound, escaped)
        values, err, via = [], None, ""
        try:
            if typ == "query":
                values = apply_regex(resolve_values(prom, q), v.get("regex"))
                via = q
            elif typ in ("custom", "interval"):
                values = [x.split(" : ")[-1].strip() for x in q.split(",") if x.strip()]
            elif typ in ("textbox", "constant"):
                values = [q] if q else []
                if not values and name in TEXTBOX_HINTS and name not in overrides:
                    via = TEXTBOX_HINTS[name]
                    values = resolve_values(prom, interpolate(via, bound, escaped))
        except (PromError, re.error) as e:
            err = str(e)
        cur = (v.get("current") or {}).get("value")
        cur = cur[0] if isinstance(cur, list) and len(cur) == 1 else cur
        if name in overrides:
            value, how = overrides[name], "--var"
        elif v.get("includeAll") and cur in ("$__all", None) and values:
            value = v.get("allValue") or "(" + "|".join(REGEX_SPECIAL.sub(lambda m: "\\\\" + m.group(0), x) for x in values) + ")"
            how, cur = "All", None
        elif isinstance(cur, str) and cur in values:
            value, how = cur, "default"
        elif values:
            value, how = values[0], "first value"
        else:
            value, how = "", ""
        if v.get("multi") or v.get("includeAll"):
            escaped.add(name)
        if how == "All":
            escaped.discard(name)  # already a regex
        bound[name] = value
        if err:
            results.append(("FAIL", uid, f"${name}", via or q, err))
        elif not value and name not in overrides:
            results.append(("FAIL", uid, f"${name}", via or q or "(empty)", "no value"))
        else:
            results.append(("PASS", uid, f"${name}", via or q or "(fixed)", f"= {value!r} ({how}; {len(values)} value(s))"))
    return bound, escaped


def live_check(paths, url, allow_path=None, overrides=None, range_s=3600, out=print):
    """Returns the number of failures of the live check of `paths` against Prometheus `url`."""
    prom = Prom(url, range_s=range_s)
    allow, problems = read_allow_list(allow_path)
    used = set()
    results = []
    for path in paths:
        try:
            with open(path) as fh:
                d = json.load(fh)
        except (OSError, ValueError) as e:
            results.append(("FAIL", os.path.basename(path), "-", "-", f"not valid JSON: {e}"))
            continue
        uid = d.get("uid", os.path.basename(path))
        start = len(results)
        bound, escaped = bind_variables(prom, d, overrides or {}, results)
        for p in walk_panels(d.get("panels")):
            title = p.get("title") or f"panel {p.get('id')}"
            for t in p.get("targets") or []:
                e = t.get("expr")
                if not isinstance(e, str) or not e.strip() or t.get("hide"):
                    continue
                expr = interpolate(e, bound, escaped)
                counts, errs = [], []
                kinds = ["instant"]
                if p.get("type") in RANGE_PANELS and not t.get("instant"):
                    kinds.append("range")
                for kind in kinds:
                    try:
                        res = prom.query(expr) if kind == "instant" else prom.query_range(expr)
                        counts.append(f"{kind} {len(res)}")
                        if not res:
                            counts[-1] += " series"
                    except PromError as ex:
                        errs.append(f"{kind}: {ex}")
                nonempty = any(not c.endswith(" series") for c in counts)
                detail = "; ".join(errs + counts)
                results.append(("PASS" if nonempty and not errs else "FAIL", uid,
                                f"{title} [{t.get('refId', '?')}]", expr, detail + ("" if nonempty or errs else " (no series)")))
        # Allow-listed panels and variables.
        for i in range(start, len(results)):
            st, u, what, expr, detail = results[i]
            key = (u, re.sub(r" \[[^\]]*\]$", "", what))
            if key in allow:
                used.add(key)
                if st == "FAIL":
                    results[i] = ("ALLOWED", u, what, expr, f"{detail}; allowed: {allow[key]}")
    width = max([len(f"{r[1]} {r[2]}") for r in results] + [20])
    for st, u, what, expr, detail in results:
        out(f"{st:<8} {(u + ' ' + what):<{width}}  {detail}")
        if st != "PASS":
            out(f"{'':<8}   expr: {expr}")
    for key in sorted(set(allow) - used):
        out(f"UNUSED   allow-list entry {key[0]} {key[1]!r}: matches no panel or variable of that dashboard (stale? remove it)")
    for p in problems:
        out(f"ERROR    {p}")
    n = {s: sum(1 for r in results if r[0] == s) for s in ("PASS", "FAIL", "ALLOWED")}
    out(f"check-dashboards --live {url}: {len(paths)} dashboard(s), {n['PASS']} passed, "
        f"{n['FAIL']} failed, {n['ALLOWED']} allowed, {len(set(allow) - used)} unused allow-list entr(y/ies)")
    return n["FAIL"] + len(problems)


# ---------------------------------------------------------------- self-test
EXTRACT_CASES = [
    ('sum by (instance, mode) (rate(node_cpu_seconds_total{mode!="idle",instance=~"x"}[5m]))',
     {"node_cpu_seconds_total"}),
    ("node_load1 / on (instance) group_left (nodename) node_uname_info", {"node_load1", "node_uname_info"}),
    ('label_replace(up{job="node"}, "host", "$1", "instance", "(.*):.*")', {"up"}),
    ("1 - avg without (cpu) (instance:node_cpu_utilisation:rate5m offset 1h)",
     {"instance:node_cpu_utilisation:rate5m"}),
    ("max_over_time(rate(node_network_receive_bytes_total[5m])[1h:5m]) > bool 1e3",
     {"node_network_receive_bytes_total"}),
    ('{__name__="node_memory_MemTotal_bytes", job="node"}', {"node_memory_MemTotal_bytes"}),
    ("count(count by (cpu) (node_cpu_info)) or vector(0)", {"node_cpu_info"}),
    ('topk(5, sum(x_total) by (le)) unless on() absent(y) and inf > nan', {"x_total", "y"}),
    ("histogram_quantile(0.99, sum by (le) (rate(lat_bucket[5m])))", {"lat_bucket"}),
    ("time() - node_boot_time_seconds @ end()", {"node_boot_time_seconds"}),
    ('sum(min by (device)(a)) / ignoring(state) b{state="on", by="x"} + 0x1F', {"a", "b"}),
    ("avg(up) by (job) * 100", {"up"}),
]


class StubProm(BaseHTTPRequestHandler):
    """A fake Prometheus for the live self-test: canned answers, records every query."""
    seen = []
    SERIES = {"up": [{"__name__": "up", "job": "node", "instance": "n2:9100"},
                     {"__name__": "up", "job": "node", "instance": "n1:9100"}],
              "dev": [{"__name__": "node_x", "instance": "n1:9100", "device": "sda"}],
              "slurm_job_info": [{"__name__": "slurm_job_info", "jobid": "42"}]}

    def log_message(self, *a):
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        qs = urllib.parse.parse_qs(u.query)
        ok = lambda data: self.reply(200, {"status": "success", "data": data})
        if u.path == "/api/v1/series":
            m = qs["match[]"][0]
            StubProm.seen.append(("series", m))
            if m.startswith("up"):
                return ok(self.SERIES["up"])
            if 'node_x{instance=~"n1:9100"}' in m:
                return ok(self.SERIES["dev"])
            if m.startswith("slurm_job_info"):
                return ok(self.SERIES["slurm_job_info"])
            return ok([])
        if u.path.startswith("/api/v1/label/"):
            return ok(["a", "b"])
        if u.path in ("/api/v1/query", "/api/v1/query_range"):
            q = qs["query"][0]
            StubProm.seen.append((u.path.rsplit("/", 1)[-1], q))
            if "bad_fn" in q:
                return self.reply(400, {"status": "error", "errorType": "bad_data", "error": "unknown function bad_fn"})
            if "empty" in q:
                return ok({"resultType": "vector", "result": []})
            if u.path.endswith("query_range"):
                if "rangeonly" in q or "instantonly" not in q:
                    return ok({"resultType": "matrix", "result": [{"metric": {"a": "1"}, "values": [[1, "1"]]}]})
                return ok({"resultType": "matrix", "result": []})
            if "rangeonly" in q:
                return ok({"resultType": "vector", "result": []})
            return ok({"resultType": "vector", "result": [{"metric": {"__name__": "m", "a": "1"}, "value": [1, "1"]}]})
        self.reply(404, {"status": "error", "error": "not found"})


def live_self_test(tmp):
    """The live mode against StubProm; returns the number of failures."""
    failures = 0
    srv = HTTPServer(("127.0.0.1", 0), StubProm)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    ds = {"type": "prometheus", "uid": "${datasource}"}
    dash = {"title": "live", "uid": "live-test", "schemaVersion": 39, "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus"},
        {"name": "instance", "type": "query", "datasource": ds, "multi": True,
         "query": {"query": 'label_values(up{job="node"}, instance)', "refId": "x"}},
        {"name": "device", "type": "query", "datasource": ds,
         "query": 'label_values(node_x{instance=~"$instance"}, device)'},
        {"name": "jobid", "type": "textbox", "query": ""},
        {"name": "nothing", "type": "query", "datasource": ds, "query": "label_values(empty_metric, x)"},
    ]}, "panels": [
        {"id": 1, "type": "timeseries", "title": "ok", "datasource": ds,
         "targets": [{"refId": "A", "expr": 'rate(m{instance=~"$instance",device="$device",jobid="$jobid"}[$__rate_interval])'}]},
        {"id": 2, "type": "stat", "title": "empty", "datasource": ds, "targets": [{"refId": "A", "expr": "empty_metric"}]},
        {"id": 3, "type": "table", "title": "empty but allowed", "datasource": ds, "targets": [{"refId": "A", "expr": "empty_too"}]},
        {"id": 4, "type": "timeseries", "title": "error", "datasource": ds, "targets": [{"refId": "A", "expr": "bad_fn(up)"}]},
        {"id": 5, "type": "row", "title": "row", "collapsed": True, "panels": [
            {"id": 6, "type": "timeseries", "title": "range only", "datasource": ds,
             "targets": [{"refId": "A", "expr": "rangeonly"}, {"refId": "B", "expr": "hidden_empty", "hide": True}]}]},
    ]}
    p = os.path.join(tmp, "live.json")
    with open(p, "w") as fh:
        json.dump(dash, fh)
    allow = os.path.join(tmp, "allow.txt")
    with open(allow, "w") as fh:
        fh.write("# comment\nlive-test empty but allowed  # the stub has no such series\n"
                 "live-test $nothing  # deliberately empty\nlive-test no such panel  # stale entry\n")
    lines = []
    try:
        n = live_check([p], url, allow, {}, out=lines.append)
        report = "\n".join(lines)
        want = [
            ("PASS", "live-test $instance", "= 'n1:9100' (first value"),
            ("PASS", "live-test $device", "= 'sda'"),
            ("PASS", "live-test $jobid", "= '42'"),
            ("ALLOWED", "live-test $nothing", "no value"),
            ("PASS", "live-test ok [A]", "instant 1"),
            ("FAIL", "live-test empty [A]", "(no series)"),
            ("ALLOWED", "live-test empty but allowed [A]", "the stub has no such series"),
            ("FAIL", "live-test error [A]", "unknown function bad_fn"),
            ("PASS", "live-test range only [A]", "range 1"),
            ("UNUSED", "no such panel", ""),
        ]
        for st, what, detail in want:
            if not any(l.startswith(st) and what in l and detail in l for l in lines):
                print(f"self-test (live): expected a {st} line for {what!r} with {detail!r}; got:\n{report}")
                failures += 1
        if n != 2:
            print(f"self-test (live): want 2 failures, got {n}:\n{report}")
            failures += 1
        sent = [q for k, q in StubProm.seen if k == "query" and q.startswith("rate(")]
        if sent != ['rate(m{instance=~"n1:9100",device="sda",jobid="42"}[5m])']:
            print(f"self-test (live): substituted query {sent}")
            failures += 1
        if any("hidden_empty" in q for _, q in StubProm.seen):
            print("self-test (live): a hidden target was queried")
            failures += 1
        # --var overrides; an escaped multi-value variable; a malformed allow-list.
        StubProm.seen.clear()
        with open(allow, "w") as fh:
            fh.write("live-test empty\n")
        lines = []
        n = live_check([p], url, allow, {"instance": "10.0.0.1:9100", "jobid": "7_1"}, out=lines.append)
        sent = [q for k, q in StubProm.seen if k == "query" and q.startswith("rate(")]
        if sent != ['rate(m{instance=~"10\\\\.0\\\\.0\\\\.1:9100",device="",jobid="7_1"}[5m])']:
            print(f"self-test (live): with --var, substituted query {sent}")
            failures += 1
        if not any(l.startswith("ERROR") and "reason" in l for l in lines):
            print("self-test (live): an allow-list entry without a reason was accepted:\n" + "\n".join(lines))
            failures += 1
    finally:
        srv.shutdown()
        srv.server_close()
    return failures


def self_test(root):
    failures = 0
    for expr, want in EXTRACT_CASES:
        got = metric_names(expr)
        if got != want:
            print(f"self-test: metric_names({expr!r}) = {sorted(got)}, want {sorted(want)}")
            failures += 1
    for raw, want in [
        ('rate(x{instance=~"$instance"}[$__rate_interval])', 'rate(x{instance=~"x"}[5m])'),
        ("sum(rate(x[${__range}]))", "sum(rate(x[1h]))"),
        ('x{a="${node:regex}"} offset $off', 'x{a="x"} offset 1'),
        ("rate(x[$interval])", "rate(x[5m])"),
        ('y{a=~"[[instance]]"}', 'y{a=~"x"}'),
    ]:
        got = substitute(raw)
        if got != want:
            print(f"self-test: substitute({raw!r}) = {got!r}, want {want!r}")
            failures += 1

    # A broken dashboard must fail, with each problem named.
    base = {
        "title": "broken", "uid": "broken", "schemaVersion": 39,
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]},
        "panels": [
            {"id": 1, "title": "bad expr", "type": "timeseries",
             "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "targets": [{"refId": "A", "expr": "sum(rate(up[5m])"}]},
            {"id": 2, "title": "unknown metric", "type": "timeseries",
             "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "targets": [{"refId": "A", "expr": 'rate(hpcmon_no_such_metric_total{instance=~"$instance"}[$__rate_interval])'}]},
            {"id": 3, "title": "fine", "type": "stat",
             "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "targets": [{"refId": "A", "expr": 'sum by (job) (up{job=~"$job"})'}]},
            {"id": 4, "title": "pinned", "type": "row", "collapsed": True, "panels": [
                {"id": 5, "title": "pinned ds", "type": "stat", "datasource": {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"},
                 "targets": [{"refId": "A", "expr": "up"}]}]},
        ],
    }
    with tempfile.TemporaryDirectory() as tmp:
        cases = {
            "broken.json": (json.dumps(base), [
                "panel 1 'bad expr' target A: expression does not parse",
                "panel 2 'unknown metric' target A: unknown metric hpcmon_no_such_metric_total",
                "panel 5 'pinned ds': datasource is not ${datasource}",
            ]),
            "notjson.json": ('{"title": "x", ', ["not valid JSON"]),
            "nods.json": (json.dumps({**base, "templating": {"list": []}, "panels": base["panels"][2:3]}),
                          ["no template variable `datasource`"]),
        }
        for name, (text, expected) in cases.items():
            p = os.path.join(tmp, name)
            with open(p, "w") as fh:
                fh.write(text)
            lines = []
            n = check([p], root, out=lines.append)
            report = "\n".join(lines)
            if n == 0:
                print(f"self-test: the broken dashboard {name} passed the check:\n{report}")
                failures += 1
            for e in expected:
                if e not in report:
                    print(f"self-test: {name}: expected a problem containing {e!r}; got:\n{report}")
                    failures += 1
            if name == "broken.json" and "panel 3" in report:
                print(f"self-test: the valid panel 3 was reported:\n{report}")
                failures += 1
        failures += live_self_test(tmp)
    print(f"check-dashboards self-test: {'OK' if failures == 0 else f'{failures} failure(s)'}")
    return failures


def main(argv):
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    args = list(argv)
    opts = {"--root": None, "--live": None, "--allow-list": None, "--range": None}
    overrides = {}
    rest = []
    i = 0
    while i < len(args):
        a = args[i]
        key, eq, val = a.partition("=")
        if key in opts or key == "--var":
            if not eq:
                if i + 1 >= len(args):
                    print(f"check-dashboards: {a} needs a value", file=sys.stderr)
                    return 2
                val = args[i + 1]
                i += 1
            if key == "--var":
                name, eq2, value = val.partition("=")
                if not eq2 or not name:
                    print(f"check-dashboards: --var wants NAME=VALUE, got {val!r}", file=sys.stderr)
                    return 2
                overrides[name] = value
            else:
                opts[key] = val
        else:
            rest.append(a)
        i += 1
    if opts["--root"]:
        root = os.path.abspath(opts["--root"])
    if "--self-test" in rest:
        return 1 if self_test(root) else 0
    paths = rest or sorted(glob.glob(os.path.join(root, "dashboards", "*.json")))
    if not paths:
        print("check-dashboards: no dashboards/*.json")
        return 1
    if opts["--live"]:
        allow = opts["--allow-list"]
        if allow is None and os.path.isfile(os.path.join(root, "dashboards", "live-allowlist.txt")):
            allow = os.path.join(root, "dashboards", "live-allowlist.txt")
        range_s = int(opts["--range"] or 3600)
        return 1 if live_check(paths, opts["--live"], allow, overrides, range_s) else 0
    return 1 if check(paths, root) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
