#!/usr/bin/env bash
# Checks the helm chart helm/hpcmon without the helm binary:
#
#   scripts/check-helm.sh [KUBE_VERSION]      (default 1.30.0)
#
# 1. creates (once) a Python venv under .cache/helm-venv with pinned helm-python-sdk (the Helm
#    v4 Go SDK through ctypes) and kubernetes-validate (needs python3-venv: scripts/install-deps.sh helm);
# 2. `helm lint --strict` for that Kubernetes version (warnings fail);
# 3. checks that values.schema.json rejects bad values;
# 4. renders the chart with the default values and with non-default sets (every component,
#    web config, ServiceMonitors, PrometheusRules, SQLite and PostgreSQL storage), validates
#    every manifest against the Kubernetes OpenAPI schemas (strict), checks what each set
#    must render, and runs `promtool check rules` on the PrometheusRules' groups.
# Rendered manifests are left in .cache/helm-rendered/ for reading.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KUBE_VERSION=${1:-1.30.0}
VENV="$ROOT/.cache/helm-venv"
OUT="$ROOT/.cache/helm-rendered"
# Every package pinned (the resolved set of the three we ask for).
REQUIREMENTS="helm-python-sdk==0.2.2
kubernetes-validate==1.37.0
PyYAML==6.0.2
jsonschema==4.26.0
jsonschema-specifications==2025.9.1
referencing==0.37.0
rpds-py==2026.9.1
attrs==26.1.0
importlib_resources==7.1.0
packaging==26.3
typing_extensions==4.16.0"

PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
if [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "$REQUIREMENTS" ]; then
  echo "check-helm: creating $VENV"
  rm -rf "$VENV"
  mkdir -p "$ROOT/.cache"
  "$PY" -m venv "$VENV" || {
    echo "check-helm: python3 -m venv failed; install python3-venv (scripts/install-deps.sh helm)" >&2
    exit 1
  }
  printf '%s\n' "$REQUIREMENTS" > "$VENV/requirements.txt"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$VENV/requirements.txt"
  printf '%s' "$REQUIREMENTS" > "$VENV/.requirements"
fi

rm -rf "$OUT"
mkdir -p "$OUT"
exec "$VENV/bin/python" - "$ROOT/helm/hpcmon" "$OUT" "$KUBE_VERSION" <<'PY'
import copy, glob, json, os, shutil, subprocess, sys, tempfile
import helm_python as helm
import kubernetes_validate
import yaml

chart_dir, out_dir, kube = sys.argv[1], sys.argv[2], sys.argv[3]
problems = []
def fail(msg):
    problems.append(msg)
    print("FAIL", msg)

print(f"helm sdk {helm.helm_sdk_version()}, kubernetes {kube}")

# 1. Lint (strict: warnings count); severity 1 = info, 2 = warning, 3 = error.
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

# 2. The schema rejects bad values (each must raise).
bad_values = {
    "port is a string": {"node": {"port": "abc"}},
    "port out of range": {"slurm": {"enabled": True, "port": 70000}},
    "unknown top-level key": {"nodeExporter": {"enabled": True}},
    "unknown storage type": {"alertBridge": {"enabled": True, "storage": {"type": "mysql"}}},
    "bad retention": {"alertBridge": {"enabled": True, "retention": "forever"}},
    "relative hostPath": {"slurm": {"enabled": True, "hostPaths": {"slurmConf": "etc/slurm", "mungeSocket": "/run/munge"}}},
}
for what, over in bad_values.items():
    try:
        render(merged(over))
        fail(f"schema accepted bad values ({what}): {over}")
    except Exception as e:  # HelmValuesError or a render error
        print(f"OK   schema rejects {what}: {str(e).splitlines()[0][:100]}")
# Template-level guards.
for what, over in {
    "postgres without URL or Secret": {"alertBridge": {"enabled": True, "storage": {"type": "postgres"}}},
    "web config without config or Secret": {"webConfig": {"enabled": True}},
}.items():
    try:
        render(merged(over))
        fail(f"rendered although {what}")
    except Exception as e:
        print(f"OK   refuses {what}: {str(e).splitlines()[-1][:100]}")

# 3. Render value sets and validate every manifest.
all_on = {
    "webConfig": {"enabled": True, "tlsSecret": "hpcmon-tls", "config": {
        "tls_server_config": {"cert_file": "/etc/hpcmon/tls/tls.crt", "key_file": "/etc/hpcmon/tls/tls.key"},
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
    "commonLabels": {"team": "hpc"},
}
rule_files = sorted(glob.glob(os.path.join(chart_dir, "rules", "*.rules.yml")))
sets = {
    "default": ({}, {("DaemonSet", "hpcmon-node-exporter"): 1, ("Service", "hpcmon-node-exporter"): 1}),
    "all-postgres": (all_on, {
        ("DaemonSet", None): 3, ("Deployment", None): 2, ("Service", None): 5,
        ("ServiceMonitor", None): 5, ("PrometheusRule", None): len(rule_files),
        ("Secret", "hpcmon-web-config"): 1, ("Secret", "hpcmon-alert-bridge-storage"): 1,
        ("PersistentVolumeClaim", None): 0}),
    "bridge-sqlite": ({"node": {"enabled": False}, "alertBridge": {"enabled": True},
                       "webConfig": {"enabled": True, "existingSecret": "my-web-config"}},
                      {("Deployment", "hpcmon-alert-bridge"): 1, ("PersistentVolumeClaim", "hpcmon-alert-bridge-data"): 1,
                       ("DaemonSet", None): 0, ("Secret", None): 0}),
}
def validate_monitoring(doc, where):
    kind, spec = doc["kind"], doc.get("spec") or {}
    if kind == "ServiceMonitor":
        if not spec.get("selector", {}).get("matchLabels") or not spec.get("endpoints"):
            fail(f"{where}: ServiceMonitor without selector or endpoints")
    elif kind == "PrometheusRule":
        groups = spec.get("groups") or []
        if not groups or any(not g.get("name") or not g.get("rules") for g in groups):
            fail(f"{where}: PrometheusRule with an empty or unnamed group")
        if shutil.which("promtool"):
            with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
                yaml.safe_dump({"groups": groups}, f)
            r = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True, timeout=60)
            os.unlink(f.name)
            if r.returncode != 0:
                fail(f"{where}: promtool check rules: {r.stdout}{r.stderr}")
        else:
            fail("promtool is missing (scripts/install-deps.sh prom)")
    else:
        fail(f"{where}: unexpected kind {kind}")

total = 0
for set_name, (over, expect) in sets.items():
    values = merged(over)
    manifests = render(values)
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
    print(f"OK   {set_name}: " + ", ".join(f"{k} {sorted(v)}" for k, v in sorted(kinds.items())))
    for (kind, name), n in expect.items():
        got = [x for x in kinds.get(kind, []) if name is None or x == name]
        if len(got) != n:
            fail(f"{set_name}: expected {n} {kind} {name or ''}, got {got}")
    # Invariants of every set: host mounts read-only, no secret on a command line.
    for d in docs:
        pod = d.get("spec", {}).get("template", {}).get("spec")
        if not pod:
            continue
        host_vols = {v["name"] for v in pod.get("volumes", []) if "hostPath" in v}
        for c in pod["containers"]:
            for m in c.get("volumeMounts", []):
                if m["name"] in host_vols and m["name"] != "ipmi-device" and not m.get("readOnly"):
                    fail(f"{set_name}: {d['metadata']['name']}: hostPath {m['name']} mounted writable")
            argv = " ".join(c.get("command", []) + c.get("args", []))
            if "s3cret" in argv or "postgres://" in argv:
                fail(f"{set_name}: {d['metadata']['name']}: a storage URL on the command line")
            if values["webConfig"]["enabled"] and "--web.config.file=/etc/hpcmon/web-config.yml" not in argv:
                fail(f"{set_name}: {d['metadata']['name']}: no --web.config.file")
        if d["metadata"]["name"].endswith("node-exporter"):
            args = pod["containers"][0]["args"]
            for flag in ("--path.procfs=/host/proc", "--path.sysfs=/host/sys", "--path.rootfs=/host/root"):
                if flag not in args:
                    fail(f"{set_name}: node exporter without {flag}")

print(f"{total} manifests valid for Kubernetes {kube}; rendered into {out_dir}")
if problems:
    print(f"{len(problems)} problems")
    sys.exit(1)
print("helm chart OK")
PY
