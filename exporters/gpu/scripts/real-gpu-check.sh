#!/usr/bin/env bash
# The real-GPU check of hpcmon-gpu-exporter: run it on a machine with an NVIDIA GPU (an H100)
# whenever one is available. CI has no GPU; everything else is covered by the fake-backed tests.
#
#   exporters/gpu/scripts/real-gpu-check.sh [PORT]      (default port 23835, on 127.0.0.1)
#
# 1. builds the release binary and starts it against the real NVML;
# 2. scrapes it, writes the output to exporters/gpu/testdata/real-h100.prom (the golden
#    record CI and the dashboard check then use; commit it);
# 3. checks every core family is present with sane values, and compares per GPU with
#    `nvidia-smi --query-gpu=... --format=csv,noheader,nounits`: identity exactly (name,
#    PCI bus id, driver, serial, memory total), live values within tolerances;
# 4. measures scrape time (median of 20) and RSS, and runs bench/gpu.sh for the ratio to
#    one nvidia-smi call;
# 5. writes the summary to exporters/gpu/testdata/real-h100.check.txt.
# Exit status 0 only if every check passed.
#
# Dry run of this script without a GPU (checks the script, not NVML):
#   PATH=$PWD/exporters/gpu/scripts/dry-run:$PATH GPU_EXPORTER_ARGS=--gpu.fake-devices=2 \
#     exporters/gpu/scripts/real-gpu-check.sh   (then restore testdata/real-h100.* with git)
set -euo pipefail
PORT="${1:-23835}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT"
command -v nvidia-smi >/dev/null || { echo "real-gpu-check: nvidia-smi missing: not a GPU machine" >&2; exit 2; }
nvidia-smi -L || { echo "real-gpu-check: nvidia-smi sees no GPU" >&2; exit 2; }
command -v python3 >/dev/null || { echo "real-gpu-check: needs python3" >&2; exit 2; }
cargo build --release --quiet -p hpcmon-gpu-exporter
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/hpcmon-gpu-exporter"
OUT=exporters/gpu/testdata
LOG="$(mktemp)"
# shellcheck disable=SC2086 # GPU_EXPORTER_ARGS: extra flags, for a dry run only (see fake-nvidia-smi)
"$BIN" --web.listen-address="127.0.0.1:$PORT" --gpu.pcie-throughput ${GPU_EXPORTER_ARGS:-} >"$LOG" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -f "$LOG"' EXIT
rc=0
python3 - "$PORT" "$PID" "$OUT" <<'PY' || rc=$?
import re, statistics, subprocess, sys, time, urllib.request

port, pid, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
url = f"http://127.0.0.1:{port}/metrics"
for _ in range(200):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1).read()
        break
    except Exception:
        time.sleep(0.05)
time.sleep(1.5)  # let the XID event thread register
body = urllib.request.urlopen(url, timeout=30).read().decode()
open(f"{out}/real-h100.prom", "w").write(body)

samples = {}
for line in body.splitlines():
    if not line or line.startswith("#"):
        continue
    m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
    if not m:
        continue
    labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
    samples.setdefault(m.group(1), []).append((labels, float(m.group(4))))

def val(name, uuid, **kw):
    for l, v in samples.get(name, []):
        if l.get("uuid") == uuid and all(l.get(k) == x for k, x in kw.items()):
            return v
    return None

results = []
def check(ok, what):
    results.append(("PASS" if ok else "FAIL") + "  " + what)

check(any(v == 1 for _, v in samples.get("gpu_nvml_up", [])), "gpu_nvml_up 1")
for c, v in [(l["collector"], v) for l, v in samples.get("gpu_scrape_collector_success", [])]:
    check(v == 1, f"collector {c} succeeded")

fields = ["uuid", "index", "name", "pci.bus_id", "driver_version", "serial", "memory.total",
          "memory.used", "temperature.gpu", "power.draw", "power.limit", "clocks.sm",
          "clocks.mem", "utilization.gpu", "ecc.errors.uncorrected.volatile.total", "mig.mode.current"]
csv = subprocess.run(["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"],
                     capture_output=True, text=True, timeout=60, check=True).stdout
def num(s):
    try:
        return float(s)
    except ValueError:
        return None
for row in csv.strip().splitlines():
    g = dict(zip(fields, [c.strip() for c in row.split(",")]))
    u = g["uuid"]
    info = [l for l, _ in samples.get("gpu_info", []) if l.get("uuid") == u]
    check(len(info) == 1, f"{u}: gpu_info present")
    if info:
        i = info[0]
        check(i.get("index") == g["index"], f"{u}: index {i.get('index')} == {g['index']}")
        check(i.get("name") == g["name"], f"{u}: name {i.get('name')!r} == {g['name']!r}")
        check(i.get("pci_bus_id", "").lower() == g["pci.bus_id"].lower(), f"{u}: pci_bus_id {i.get('pci_bus_id')} == {g['pci.bus_id']}")
        check(i.get("driver_version") == g["driver_version"], f"{u}: driver {i.get('driver_version')} == {g['driver_version']}")
        check(i.get("serial") == g["serial"] or g["serial"] in ("[N/A]", ""), f"{u}: serial {i.get('serial')} == {g['serial']}")
    check(val("gpu_up", u) == 1, f"{u}: gpu_up 1")
    def near(name, ours, theirs, tol_abs, tol_rel=0.0):
        if theirs is None:
            results.append(f"SKIP  {u}: {name}: nvidia-smi gives no value")
            return
        ok = ours is not None and abs(ours - theirs) <= max(tol_abs, tol_rel * abs(theirs))
        check(ok, f"{u}: {name}: exporter {ours} vs nvidia-smi {theirs}")
    mib = 1024 * 1024
    t = val("gpu_memory_total_bytes", u)
    near("memory total (MiB)", t / mib if t is not None else None, num(g["memory.total"]), 1)
    m = val("gpu_memory_used_bytes", u)
    near("memory used (MiB)", m / mib if m is not None else None, num(g["memory.used"]), 256, 0.05)
    near("temperature (C)", val("gpu_temperature_celsius", u), num(g["temperature.gpu"]), 3)
    near("power draw (W)", val("gpu_power_usage_watts", u), num(g["power.draw"]), 20, 0.15)
    near("power limit (W)", val("gpu_power_limit_watts", u), num(g["power.limit"]), 1)
    sm = val("gpu_clock_hertz", u, clock="sm")
    near("SM clock (MHz)", sm / 1e6 if sm is not None else None, num(g["clocks.sm"]), 100, 0.2)
    mem = val("gpu_clock_hertz", u, clock="memory")
    near("memory clock (MHz)", mem / 1e6 if mem is not None else None, num(g["clocks.mem"]), 50, 0.1)
    ut = val("gpu_utilization_ratio", u)
    check(ut is not None and 0 <= ut <= 1, f"{u}: utilization ratio {ut} in [0,1] (nvidia-smi {g['utilization.gpu']}%)")
    e = num(g["ecc.errors.uncorrected.volatile.total"])
    if e is not None:
        near("uncorrected volatile ECC", val("gpu_ecc_errors_total", u, type="uncorrected", counter="volatile"), e, 0)
    check(val("gpu_energy_joules_total", u) is not None and val("gpu_energy_joules_total", u) > 0, f"{u}: energy counter > 0")
    mig = val("gpu_mig_mode_enabled", u)
    if g["mig.mode.current"] in ("Enabled", "Disabled"):
        check(mig == (1 if g["mig.mode.current"] == "Enabled" else 0), f"{u}: MIG mode {mig} vs {g['mig.mode.current']}")
        if g["mig.mode.current"] == "Enabled":
            check(any(l.get("uuid") == u for l, _ in samples.get("gpu_mig_info", [])), f"{u}: gpu_mig_info present")
    for fam in ["gpu_throttle_reason_active", "gpu_pcie_replays_total", "gpu_pcie_link_generation",
                "gpu_processes", "gpu_performance_state", "gpu_ecc_mode_enabled"]:
        check(val(fam, u) is not None or any(l.get("uuid") == u for l, _ in samples.get(fam, [])), f"{u}: {fam} present")
check(any(v == 1 for _, v in samples.get("gpu_xid_event_watch_up", [])), "XID event watch running")

times = []
for _ in range(20):
    t0 = time.perf_counter()
    urllib.request.urlopen(url, timeout=30).read()
    times.append(time.perf_counter() - t0)
rss = [int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:")][0] / 1024
summary = [f"scrape median {statistics.median(times)*1e3:.2f} ms over 20 (with --gpu.pcie-throughput)",
           f"RSS {rss:.1f} MiB",
           "families: " + " ".join(sorted(k for k in samples if k.startswith("gpu_")))]
text = "\n".join(results + summary) + "\n"
open(f"{out}/real-h100.check.txt", "w").write(text)
print(text)
sys.exit(1 if any(r.startswith("FAIL") for r in results) else 0)
PY
kill "$PID" 2>/dev/null || true
wait "$PID" 2>/dev/null || true
echo "--- exporter log"; tail -20 "$LOG"
echo "--- bench/gpu.sh (exporter scrape vs one nvidia-smi call)"
GPU_BENCH_PORT=$((PORT + 1)) bench/gpu.sh 30 | tee -a "$OUT/real-h100.check.txt"
[ "$rc" -eq 0 ] && echo "real-gpu-check: PASS (commit $OUT/real-h100.prom and $OUT/real-h100.check.txt)" || echo "real-gpu-check: FAIL" >&2
exit "$rc"
