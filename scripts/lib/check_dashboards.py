#!/usr/bin/env python3
"""Checks Grafana dashboards (stdlib only).

    check_dashboards.py [--self-test] [--root DIR] [DASHBOARD.json ...]

For every dashboard (default: dashboards/*.json under the repo root):
  * the file is valid JSON with a title, a uid and panels, a `datasource` variable of type
    `datasource` (prometheus), and no panel or target pinned to another datasource uid;
  * every PromQL expression (panel targets, and query variables' `label_values(...)` /
    `query_result(...)`) parses: Grafana variables are substituted first, then all expressions
    are checked in ONE `promtool check rules` run on a generated rules file;
  * every metric name those expressions use exists: known names are the families and sample
    names of every exporters/*/testdata/**/*.prom file plus the recording rules of
    rules/*.rules.yml (plus Prometheus' own synthetic `up`, `scrape_*`, `ALERTS`).

--self-test checks the metric-name extractor on tricky expressions and runs the check on
deliberately broken dashboards, which must fail with the expected messages.
"""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

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
    for f in glob.glob(os.path.join(root, "exporters", "*", "testdata", "**", "*.prom"), recursive=True):
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
                    problems.append(f"{w}: unknown metric {name} (not in any exporters/*/testdata/**/*.prom nor a recording rule)\n    expr: {e}")
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
    print(f"check-dashboards self-test: {'OK' if failures == 0 else f'{failures} failure(s)'}")
    return failures


def main(argv):
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    args = list(argv)
    if "--root" in args:
        i = args.index("--root")
        root = os.path.abspath(args[i + 1])
        del args[i:i + 2]
    if "--self-test" in args:
        return 1 if self_test(root) else 0
    paths = args or sorted(glob.glob(os.path.join(root, "dashboards", "*.json")))
    if not paths:
        print("check-dashboards: no dashboards/*.json")
        return 1
    return 1 if check(paths, root) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
