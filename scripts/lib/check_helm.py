"""Checks the helm chart helm/hpcmon without the helm binary (run by scripts/check-helm.sh,
inside its venv: helm-python-sdk, kubernetes-validate, PyYAML).

    check_helm.py CHART_DIR OUT_DIR KUBE_VERSION

1. the chart holds no symbolic link, and its rules/ copy matches the repository's rules/;
2. `helm lint --strict` for KUBE_VERSION (warnings fail);
3. values.schema.json rejects bad values, accepts `global`, and the chart renders as a
   subchart of a parent chart that sets `global` (the chart copied, links not followed);
4. renders value sets, validates every manifest against the Kubernetes OpenAPI schemas
   (strict), checks what each set must render and the invariants of every pod (read-only host
   mounts, no secret on a command line, a ServiceAccount without token, probes that reach
   /-/ready where the web config lets them, requests and memory limits);
5. the rules as the chart produces them: every `job` matcher of the rendered PrometheusRules
   names a job that the ServiceMonitors produce (emulating prometheus-operator's job label:
   Service name, jobLabel, then the endpoint relabelings), `promtool check rules`, and the
   project's rule unit tests (rules/tests/*.test.yml) run by `promtool test rules` against the
   rendered groups with every `job` label rewritten to the job the chart gives that component;
6. thresholds set through values reach the rules and change when alerts fire (a generated
   promtool test).
Rendered manifests are left in OUT_DIR for reading.
"""
import copy
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

import helm_python as helm
import kubernetes_validate
import yaml

chart_dir, out_dir, kube = sys.argv[1], sys.argv[2], sys.argv[3]
repo = os.path.dirname(os.path.dirname(os.path.abspath(chart_dir)))
problems = []


def fail(msg):
    problems.append(msg)
    print("FAIL", msg)


def ok(msg):
    print("OK  ", msg)


print(f"helm sdk {helm.helm_sdk_version()}, kubernetes {kube}")
if not shutil.which("promtool"):
    print("check-helm: promtool is missing (scripts/install-deps.sh prom)")
    sys.exit(1)

# 1. No links; the rules copy is in sync.
links = [os.path.join(d, f) for d, dirs, files in os.walk(chart_dir) for f in dirs + files
         if os.path.islink(os.path.join(d, f))]
if links:
    fail(f"the chart holds symbolic links (a copied or packaged chart loses their targets): {links}")
else:
    ok("no symbolic link in the chart")
r = subprocess.run([os.path.join(repo, "scripts/sync-helm-rules.sh"), "--check"],
                   capture_output=True, text=True, timeout=60)
if r.returncode != 0:
    fail(f"rules copy out of sync: {r.stdout}{r.stderr}")
else:
    ok(r.stdout.strip())

# 2. Lint (strict: warnings count); severity 1 = info, 2 = warning, 3 = error.
report = helm.lint(chart_dir, strict=True, kube_version="v" + kube)
for m in report.get("messages", []):
    print(f"lint: severity {m.get('severity')}: {m.get('path')}: {m.get('error')}")
    if m.get("severity", 0) >= 2:
        fail(f"lint: {m.get('path')}: {m.get('error')}")
for e in report.get("errors") or []:
    fail(f"lint error: {e}")

chart = helm.Chart.load(chart_dir)
defaults = yaml.safe_load(open(os.path.join(chart_dir, "values.yaml")))


def merged(over):
    """The defaults with `over` merged in (a None stays: helm's coalescing deletes the key)."""
    v = copy.deepcopy(defaults)

    def rec(a, b):
        for k, x in b.items():
            if isinstance(x, dict) and isinstance(a.get(k), dict):
                rec(a[k], x)
            else:
                a[k] = x
    rec(v, over)
    return v


def render(values):
    return chart.render(values, name="hpcmon", namespace="monitoring", is_install=True)


def docs_of(manifests):
    out = []
    for path, text in sorted(manifests.items()):
        if not text.strip() or path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                out.append((path, doc))
    return out


# 3. The schema rejects bad values (each must raise).
bad_values = {
    "port is a string": {"node": {"port": "abc"}},
    "port out of range": {"slurm": {"enabled": True, "port": 70000}},
    "unknown top-level key": {"nodeExporter": {"enabled": True}},
    "unknown storage type": {"alertBridge": {"enabled": True, "storage": {"type": "mysql"}}},
    "bad retention": {"alertBridge": {"enabled": True, "retention": "forever"}},
    "relative hostPath": {"slurm": {"enabled": True, "hostPaths": {"slurmConf": "etc/slurm", "mungeSocket": "/run/munge"}}},
    "threshold as a string": {"prometheusRule": {"thresholds": {"inletHoldCelsius": "hot"}}},
    "unknown threshold": {"prometheusRule": {"thresholds": {"inletWarmCelsius": 25}}},
    "unknown probe scheme": {"probes": {"scheme": "GRPC"}},
    "network policy peer of an unknown kind": {"networkPolicy": {"enabled": True, "from": [{"podSelectr": {}}]}},
    "PDB percentage without %": {"podDisruptionBudget": {"enabled": True, "maxUnavailable": "50"}},
}
for what, over in bad_values.items():
    try:
        render(merged(over))
        fail(f"schema accepted bad values ({what}): {over}")
    except Exception as e:  # HelmValuesError or a render error
        ok(f"schema rejects {what}: {str(e).splitlines()[0][:100]}")
# Template-level guards.
for what, over in {
    "postgres without URL or Secret": {"alertBridge": {"enabled": True, "storage": {"type": "postgres"}}},
    "web config without config or Secret": {"webConfig": {"enabled": True}},
    "inlet tiers not increasing": {"prometheusRule": {"enabled": True, "thresholds": {"inletKillCelsius": 40}}},
    "PDB with neither minAvailable nor maxUnavailable": {"slurm": {"enabled": True},
                                                         "podDisruptionBudget": {"enabled": True, "maxUnavailable": None}},
}.items():
    try:
        render(merged(over))
        fail(f"rendered although {what}")
    except Exception as e:
        ok(f"refuses {what}: {str(e).splitlines()[-1][:100]}")

# `global` is allowed, alone and when hpcmon is a subchart of a parent that sets it. The
# chart is copied as `helm dependency build` would (links kept as links: a link into the
# repository would dangle).
try:
    render(merged({"global": {"imageRegistry": "registry.example", "storageClass": "fast"}}))
    ok("schema accepts `global`")
except Exception as e:
    fail(f"values with `global` refused: {str(e).splitlines()[0][:200]}")
with tempfile.TemporaryDirectory(prefix="hpcmon-parent-chart-") as parent:
    os.makedirs(os.path.join(parent, "charts"))
    shutil.copytree(chart_dir, os.path.join(parent, "charts", "hpcmon"), symlinks=True)
    with open(os.path.join(parent, "Chart.yaml"), "w") as f:
        yaml.safe_dump({"apiVersion": "v2", "name": "site-monitoring", "version": "1.0.0",
                        "dependencies": [{"name": "hpcmon", "version": "0.1.0"}]}, f)
    with open(os.path.join(parent, "values.yaml"), "w") as f:
        yaml.safe_dump({"global": {"imageRegistry": "registry.example"},
                        "hpcmon": {"prometheusRule": {"enabled": True}, "slurm": {"enabled": True}}}, f)
    try:
        pc = helm.Chart.load(parent)
        pvals = yaml.safe_load(open(os.path.join(parent, "values.yaml")))
        kinds = [d["kind"] for _, d in docs_of(pc.render(pvals, name="site", namespace="monitoring", is_install=True))]
        n_rules = len(glob.glob(os.path.join(chart_dir, "rules", "*.rules.yml")))
        if kinds.count("PrometheusRule") != n_rules or "Deployment" not in kinds:
            fail(f"as a subchart: expected {n_rules} PrometheusRules and the Slurm Deployment, got {sorted(kinds)}")
        else:
            ok(f"renders as a subchart with `global` set: {len(kinds)} objects, {n_rules} PrometheusRules")
    except Exception as e:
        fail(f"as a subchart: {str(e).splitlines()[0][:300]}")

# 4. Render value sets and validate every manifest.
inline_tls = {"tls_server_config": {"cert_file": "/etc/hpcmon/tls/tls.crt", "key_file": "/etc/hpcmon/tls/tls.key"}}
all_on = {
    "webConfig": {"enabled": True, "tlsSecret": "hpcmon-tls", "config": {
        **inline_tls,
        "basic_auth_users": {"prometheus": "$2y$10$X0h1gDsPszWURQaxFN.ndu5.6R9X3PnQx9Y5kq0a8x9Q0P6a0lAqK"}}},
    "node": {"collectors": {"enable": ["slurm_job"], "disable": ["infiniband"]}, "extraArgs": ["--collector.filesystem.mount-points-exclude=^/(dev|proc|sys)($|/)"]},
    "gpu": {"enabled": True, "runtimeClassName": "nvidia"},
    "ipmi": {"enabled": True},
    "slurm": {"enabled": True, "nodeSelector": {"hpcmon/slurm-client": "true"}},
    "alertBridge": {"enabled": True, "webhookTokenSecret": "am-webhook-token",
                    "storage": {"type": "postgres", "postgres": {"url": "postgres://hpcmon:s3cret@db/hpcmon"}}},
    "serviceMonitor": {"enabled": True, "scheme": "https", "tlsConfig": {"insecureSkipVerify": True},
                       "labels": {"release": "kube-prometheus-stack"}},
    "prometheusRule": {"enabled": True},
    "networkPolicy": {"enabled": True, "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}],
                      "alertmanagerFrom": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "alertmanager"}}}]},
    "podDisruptionBudget": {"enabled": True},
    "commonLabels": {"team": "hpc"},
}
rule_files = sorted(glob.glob(os.path.join(chart_dir, "rules", "*.rules.yml")))
example = os.path.join(chart_dir, "examples", "kube-prometheus-stack.values.yaml")
sets = {
    # name: (values over the defaults, {(kind, name or None): count}, {component: probe scheme})
    "default": ({}, {("DaemonSet", "hpcmon-node-exporter"): 1, ("Service", "hpcmon-node-exporter"): 1,
                     ("ServiceAccount", "hpcmon"): 1, ("NetworkPolicy", None): 0,
                     ("PodDisruptionBudget", None): 0}, {"node-exporter": "HTTP"}),
    "all-postgres": (all_on, {
        ("DaemonSet", None): 3, ("Deployment", None): 2, ("Service", None): 5,
        ("ServiceMonitor", None): 5, ("PrometheusRule", None): len(rule_files),
        ("Secret", "hpcmon-web-config"): 1, ("Secret", "hpcmon-alert-bridge-storage"): 1,
        ("PersistentVolumeClaim", None): 0, ("ServiceAccount", None): 1,
        # the node exporter is on the host network: no policy applies to it
        ("NetworkPolicy", None): 4, ("NetworkPolicy", "hpcmon-node-exporter"): 0,
        ("PodDisruptionBudget", None): 2},
        {"alert-bridge": "TCP", "slurm-exporter": "TCP"}),
    "bridge-sqlite": ({"node": {"enabled": False}, "alertBridge": {"enabled": True},
                       "webConfig": {"enabled": True, "existingSecret": "my-web-config"},
                       "serviceAccount": {"create": False, "name": "monitoring-sa"}},
                      {("Deployment", "hpcmon-alert-bridge"): 1, ("PersistentVolumeClaim", "hpcmon-alert-bridge-data"): 1,
                       ("DaemonSet", None): 0, ("Secret", None): 0, ("ServiceAccount", None): 0},
                      {"alert-bridge": "TCP"}),
    # TLS only: the kubelet's probes reach /-/ready over HTTPS (the bridge's storage check).
    "tls-only-hardened": ({"webConfig": {"enabled": True, "tlsSecret": "hpcmon-tls", "config": inline_tls},
                           "node": {"hostNetwork": False}, "alertBridge": {"enabled": True}, "slurm": {"enabled": True},
                           "networkPolicy": {"enabled": True},
                           "podDisruptionBudget": {"enabled": True, "minAvailable": 1}},
                          {("NetworkPolicy", None): 3, ("PodDisruptionBudget", None): 2},
                          {"alert-bridge": "HTTPS", "node-exporter": "HTTPS", "slurm-exporter": "HTTPS"}),
}
if os.path.exists(example):
    sets["example-kube-prometheus-stack"] = (
        yaml.safe_load(open(example)),
        {("ServiceMonitor", None): 4, ("PrometheusRule", None): len(rule_files), ("ServiceAccount", None): 1},
        {})
else:
    fail(f"missing {example}")


def validate_monitoring(doc, where):
    kind, spec = doc["kind"], doc.get("spec") or {}
    if kind == "ServiceMonitor":
        if not spec.get("selector", {}).get("matchLabels") or not spec.get("endpoints"):
            fail(f"{where}: ServiceMonitor without selector or endpoints")
    elif kind == "PrometheusRule":
        groups = spec.get("groups") or []
        if not groups or any(not g.get("name") or not g.get("rules") for g in groups):
            fail(f"{where}: PrometheusRule with an empty or unnamed group")
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            yaml.safe_dump({"groups": groups}, f)
        r = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True, timeout=60)
        os.unlink(f.name)
        if r.returncode != 0:
            fail(f"{where}: promtool check rules: {r.stdout}{r.stderr}")
    else:
        fail(f"{where}: unexpected kind {kind}")


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def chart_jobs(docs, where):
    """{component: job label} as prometheus-operator would give the targets of each
    ServiceMonitor: the Service's name, then the Service label named by jobLabel, then the
    endpoint relabelings that target `job` (static replacement or a Service label)."""
    services = [d for d in docs if d["kind"] == "Service"]
    jobs = {}
    for sm in (d for d in docs if d["kind"] == "ServiceMonitor"):
        comp = sm["metadata"]["labels"]["app.kubernetes.io/component"]
        svc = [s for s in services if selects(sm["spec"]["selector"].get("matchLabels"), s["metadata"].get("labels", {}))]
        if len(svc) != 1:
            fail(f"{where}: ServiceMonitor {sm['metadata']['name']} selects {len(svc)} Services")
            continue
        svc = svc[0]
        meta = {"__meta_kubernetes_service_name": svc["metadata"]["name"]}
        for k, v in svc["metadata"].get("labels", {}).items():
            meta["__meta_kubernetes_service_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", k)] = v
        job = svc["metadata"]["name"]
        jl = sm["spec"].get("jobLabel")
        if jl and jl in svc["metadata"].get("labels", {}):
            job = svc["metadata"]["labels"][jl]
        for ep in sm["spec"]["endpoints"]:
            j = job
            for rl in ep.get("relabelings") or []:
                if rl.get("targetLabel") != "job" or rl.get("action", "replace") != "replace":
                    continue
                src = rl.get("sourceLabels")
                if not src:
                    j = rl["replacement"]
                elif all(s in meta for s in src) and rl.get("regex", "(.*)") == "(.*)":
                    j = rl.get("replacement", "$1").replace("$1", ";".join(meta[s] for s in src))
                else:
                    fail(f"{where}: cannot emulate the job relabeling {rl} of {sm['metadata']['name']}")
            jobs[comp] = j
    return jobs


# What the rule tests call each component's job (rules/tests/*.test.yml).
RULE_JOB = {"node-exporter": "node", "gpu-exporter": "gpu", "ipmi-exporter": "ipmi",
            "slurm-exporter": "slurm", "alert-bridge": "alert-bridge"}
# Jobs of components the chart does not deploy, whose rules it still ships (helm/hpcmon/README.md
# says how to scrape them): hpcmon-actions runs beside slurmctld, with its Slurm rights.
EXTERNAL_JOBS = {"hpcmon-actions"}


def check_rules_with_chart_jobs(docs, where, tmp):
    """Every job matcher names a produced job; the rule unit tests pass on the rendered groups
    with the chart's job labels."""
    jobs = chart_jobs(docs, where)
    missing = set(RULE_JOB) - set(jobs)
    if missing:
        fail(f"{where}: no ServiceMonitor for {sorted(missing)}")
        return
    produced = set(jobs.values())
    rendered = {}
    for d in docs:
        if d["kind"] != "PrometheusRule":
            continue
        name = d["metadata"]["name"].split("hpcmon-rules-", 1)[1]
        rendered[name] = d["spec"]["groups"]
        for g in d["spec"]["groups"]:
            for rule in g["rules"]:
                for m in re.finditer(r'\bjob\s*(=~|!=|!~|=)\s*"([^"]*)"', rule["expr"]):
                    op, val = m.groups()
                    hit = [j for j in produced if (re.fullmatch(val, j) if op in ("=~", "!~") else j == val)]
                    if op == "=" and not hit and val not in EXTERNAL_JOBS:
                        fail(f"{where}: {rule.get('alert') or rule.get('record')} matches job=\"{val}\", "
                             f"which no ServiceMonitor produces (jobs: {sorted(produced)}): it can never fire")
    rdir = os.path.join(tmp, "rules")
    os.makedirs(os.path.join(rdir, "tests"))
    for src in rule_files:
        stem = os.path.basename(src)[: -len(".rules.yml")]
        if stem not in rendered:
            fail(f"{where}: no PrometheusRule for {stem}")
            continue
        with open(os.path.join(rdir, f"{stem}.rules.yml"), "w") as f:
            yaml.safe_dump({"groups": rendered[stem]}, f, sort_keys=False, allow_unicode=True)
    tests = sorted(glob.glob(os.path.join(repo, "rules", "tests", "*.test.yml")))
    names = "|".join(re.escape(j) for j in RULE_JOB.values())
    pat = re.compile(r'(\bjob\s*[:=]\s*["\']?)(' + names + r')(?=["\'\s,}]|$)', re.M)
    for t in tests:
        text = open(t).read()
        text = pat.sub(lambda m: m.group(1) + jobs[next(c for c, j in RULE_JOB.items() if j == m.group(2))], text)
        open(os.path.join(rdir, "tests", os.path.basename(t)), "w").write(text)
    r = subprocess.run(["promtool", "test", "rules", *sorted(glob.glob(os.path.join(rdir, "tests", "*.test.yml")))],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        fail(f"{where}: the rule unit tests fail on the rendered rules with the chart's jobs {jobs}:\n"
             + (r.stdout + r.stderr)[-3000:])
    else:
        ok(f"{where}: {len(tests)} rule test files pass on the rendered rules with the chart's jobs "
           + ", ".join(f"{c}={j}" for c, j in sorted(jobs.items())))


def probe_scheme(container):
    p = container.get("readinessProbe") or {}
    if "tcpSocket" in p:
        return "TCP"
    if "httpGet" in p:
        if p["httpGet"].get("path") != "/-/ready":
            fail(f"readiness probe of {container['name']} is not /-/ready")
        return p["httpGet"].get("scheme", "HTTP")
    return None


total = 0
for set_name, (over, expect, probes) in sets.items():
    values = merged(over)
    try:
        manifests = render(values)
    except Exception as e:
        fail(f"{set_name}: render failed: {e}")
        continue
    docs = []
    for path, text in sorted(manifests.items()):
        if not text.strip() or path.endswith("NOTES.txt"):
            continue
        fn = os.path.join(out_dir, set_name + "_" + os.path.basename(path))
        open(fn, "w").write(text)
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            docs.append(doc)
            where = f"{set_name}: {path}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            if doc.get("apiVersion", "").startswith("monitoring.coreos.com/"):
                validate_monitoring(doc, where)
            else:
                try:
                    kubernetes_validate.validate(doc, kube, strict=True)
                except kubernetes_validate.ValidationError as e:
                    fail(f"{where}: {e.message} at {'.'.join(map(str, e.path))}")
                    continue
            total += 1
    kinds = {}
    for d in docs:
        kinds.setdefault(d["kind"], []).append(d["metadata"]["name"])
    ok(f"{set_name}: " + ", ".join(f"{k} {sorted(v)}" for k, v in sorted(kinds.items())))
    for (kind, name), n in expect.items():
        got = [x for x in kinds.get(kind, []) if name is None or x == name]
        if len(got) != n:
            fail(f"{set_name}: expected {n} {kind} {name or ''}, got {got}")
    sa = values["serviceAccount"]["name"] or ("hpcmon" if values["serviceAccount"]["create"] else "default")
    # Invariants of every set: host mounts read-only, no secret on a command line, the
    # ServiceAccount without token, probes, resources.
    for d in docs:
        pod = d.get("spec", {}).get("template", {}).get("spec")
        if not pod:
            continue
        name = d["metadata"]["name"]
        comp = d["metadata"]["labels"]["app.kubernetes.io/component"]
        if pod.get("serviceAccountName") != sa or pod.get("automountServiceAccountToken") is not False:
            fail(f"{set_name}: {name}: serviceAccountName {pod.get('serviceAccountName')!r} (want {sa!r}) "
                 f"or a mounted API token")
        host_vols = {v["name"] for v in pod.get("volumes", []) if "hostPath" in v}
        for c in pod["containers"]:
            for m in c.get("volumeMounts", []):
                if m["name"] in host_vols and m["name"] != "ipmi-device" and not m.get("readOnly"):
                    fail(f"{set_name}: {name}: hostPath {m['name']} mounted writable")
            argv = " ".join(c.get("command", []) + c.get("args", []))
            if "s3cret" in argv or "postgres://" in argv:
                fail(f"{set_name}: {name}: a storage URL on the command line")
            if values["webConfig"]["enabled"] and "--web.config.file=/etc/hpcmon/web-config.yml" not in argv:
                fail(f"{set_name}: {name}: no --web.config.file")
            res = c.get("resources") or {}
            if not res.get("requests", {}).get("memory") or not res.get("limits", {}).get("memory"):
                fail(f"{set_name}: {name}: no memory request or limit")
            got = probe_scheme(c)
            if comp in probes and got != probes[comp]:
                fail(f"{set_name}: {name}: readiness probe {got}, expected {probes[comp]}")
        if name.endswith("node-exporter"):
            args = pod["containers"][0]["args"]
            for flag in ("--path.procfs=/host/proc", "--path.sysfs=/host/sys", "--path.rootfs=/host/root"):
                if flag not in args:
                    fail(f"{set_name}: node exporter without {flag}")
    for d in docs:
        if d["kind"] == "NetworkPolicy":
            peers = d["spec"]["ingress"][0]["from"]
            if not peers:
                fail(f"{set_name}: {d['metadata']['name']}: a NetworkPolicy open to every source")
    pdbs = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "PodDisruptionBudget"}
    want_pdb = {"all-postgres": {"maxUnavailable": 1}, "tls-only-hardened": {"minAvailable": 1}}.get(set_name)
    if want_pdb and any({k: v for k, v in p.items() if k != "selector"} != want_pdb for p in pdbs.values()):
        fail(f"{set_name}: PodDisruptionBudgets {pdbs}, want {want_pdb}")
    if set_name == "all-postgres":
        bridge_np = [d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "hpcmon-alert-bridge"]
        if not bridge_np or len(bridge_np[0]["spec"]["ingress"][0]["from"]) != 2:
            fail(f"{set_name}: the alert bridge's NetworkPolicy does not admit Alertmanager")
        with tempfile.TemporaryDirectory(prefix="hpcmon-chart-rules-") as tmp:
            check_rules_with_chart_jobs(docs, set_name, tmp)

# 6. Thresholds from values: rendered into the recording rules, and an inlet of 26 °C holds
# the queue only with the hold tier lowered to 25 (a generated promtool test).
def inlet_alerts(thresholds):
    vals = merged({"prometheusRule": {"enabled": True, "thresholds": thresholds}})
    docs = [d for _, d in docs_of(render(vals))]
    ipmi = next(d for d in docs if d["kind"] == "PrometheusRule" and d["metadata"]["name"].endswith("-ipmi"))
    exprs = {r["record"]: r["expr"] for g in ipmi["spec"]["groups"] for r in g["rules"] if "record" in r}
    with tempfile.TemporaryDirectory(prefix="hpcmon-thresholds-") as tmp:
        with open(os.path.join(tmp, "ipmi.rules.yml"), "w") as f:
            yaml.safe_dump({"groups": ipmi["spec"]["groups"]}, f, sort_keys=False, allow_unicode=True)
        test = {"rule_files": ["ipmi.rules.yml"], "evaluation_interval": "1m", "tests": [{
            "interval": "1m",
            "input_series": [{"series": 'ipmi_temperature_celsius{job="ipmi",instance="n1",id="4",name="Inlet Temp"}',
                              "values": "26x15"}],
            "promql_expr_test": [{
                "expr": 'count by (alertname) (ALERTS{alertstate="firing",alertname=~"InletTemperature.*"})',
                "eval_time": "10m",
                "exp_samples": [{"labels": '{alertname="InletTemperatureHoldQueue"}', "value": 1}]
                if thresholds.get("inletHoldCelsius", 28) <= 26 else []}]}]}
        with open(os.path.join(tmp, "inlet.test.yml"), "w") as f:
            yaml.safe_dump(test, f, sort_keys=False)
        r = subprocess.run(["promtool", "test", "rules", os.path.join(tmp, "inlet.test.yml")],
                           capture_output=True, text=True, timeout=60)
    return exprs, r


for thresholds in ({}, {"inletHoldCelsius": 25, "inletKillCelsius": 30, "inletPowerOffCelsius": 35, "powerBudgetWatts": 900}):
    exprs, r = inlet_alerts(thresholds)
    want = {"ipmi:inlet_policy_hold_celsius": thresholds.get("inletHoldCelsius", 28),
            "ipmi:inlet_policy_kill_celsius": thresholds.get("inletKillCelsius", 32),
            "ipmi:inlet_policy_poweroff_celsius": thresholds.get("inletPowerOffCelsius", 36),
            "ipmi:power_budget_watts": thresholds.get("powerBudgetWatts", 1200)}
    for rec, n in want.items():
        if exprs.get(rec) != f"vector({n})":
            fail(f"thresholds {thresholds}: {rec} rendered as {exprs.get(rec)!r}, want vector({n})")
    if r.returncode != 0:
        fail(f"thresholds {thresholds}: promtool test (inlet 26 °C): {r.stdout}{r.stderr}")
    else:
        ok(f"thresholds {thresholds or 'default'}: rendered; inlet 26 °C "
           + ("holds the queue" if thresholds else "fires nothing") + " (promtool test)")

print(f"{total} manifests valid for Kubernetes {kube}; rendered into {out_dir}")
if problems:
    print(f"{len(problems)} problems")
    sys.exit(1)
print("helm chart OK")
