#!/usr/bin/env bash
# Benchmark hpcmon-ipmi-exporter's machine-room endpoints, in one run:
#
#   bench/room.sh [N]     N scrapes per measurement (default 300; CPU times are in clock
#                         ticks of 10 ms, so N must be large enough to sum many)
#
# 1. SNMP: ours (/snmp, module ups_mib) against Debian's prometheus-snmp-exporter 0.21
#    (/snmp, the same UPS-MIB OIDs: a module generated from modules/snmp/ups_mib.yml, one
#    GETBULK walk of upsObjects, max-repetitions 25, SNMPv2c) on the same net-snmp snmpd
#    (scripts/snmp-sim.sh), scrapes interleaved one by one: wall time per scrape (median,
#    mean) and CPU time of each exporter process per scrape (utime+stime from /proc, over all
#    N scrapes), and the ratios ours/theirs (target <= 0.5). The agent's own time (snmpd and
#    its pass_persist script) is the same for both and is part of the wall time.
# 2. Modbus: ours (/modbus) reading 100 registers from the pymodbus server
#    (scripts/modbus-sim.sh): 100 uint16 holding registers (one read), and 100 float32 values
#    (200 registers, two reads): wall time per scrape and CPU per scrape.
# Prints numbers only; asserts nothing. Ports: 23800-23899 (devices and exporters).
set -euo pipefail
N=${1:-300}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
for t in prometheus-snmp-exporter curl; do
  command -v "$t" >/dev/null || { echo "$t is missing: scripts/install-deps.sh room" >&2; exit 1; }
done
[ -x /usr/sbin/snmpd ] || { echo "snmpd is missing: scripts/install-deps.sh room" >&2; exit 1; }
if [ -z "${OURS:-}" ]; then
  cargo build --release --quiet -p hpcmon-ipmi-exporter
  OURS="${CARGO_TARGET_DIR:-$ROOT/target}/release/hpcmon-ipmi-exporter"
fi

W=$(mktemp -d /tmp/hpcmon-room-bench.XXXXXX)
chmod 700 "$W"
export SNMP_SIM_DIR=$W/snmp SNMP_SIM_PORT=23801 MODBUS_SIM_DIR=$W/modbus MODBUS_SIM_PORT=23802
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  scripts/snmp-sim.sh stop >/dev/null 2>&1 || true
  scripts/modbus-sim.sh stop >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT

# Modbus unit 1: 100 uint16 holding registers at 0..99 and 200 registers (100 float32) at 1000.
/usr/bin/python3 - "$W/modbus-state.json" <<'PY'
import json, struct, sys
hr = {str(i): i for i in range(100)}
for i in range(100):
    hi, lo = struct.unpack(">HH", struct.pack(">f", i + 0.5))
    hr[str(1000 + 2 * i)] = hi
    hr[str(1001 + 2 * i)] = lo
json.dump({"units": {"1": {"holding": hr}}}, open(sys.argv[1], "w"))
PY
mkdir -p "$W/modbus" && cp "$W/modbus-state.json" "$W/modbus/state.json"
scripts/snmp-sim.sh start >/dev/null
scripts/modbus-sim.sh start >/dev/null

# Our modules; the reference's module generated from the same built-in ups_mib (0.21 has no
# `scale`, and keeps the auth inside the module).
{
  echo "modbus:"
  echo "  modules:"
  echo "    regs100:"
  echo "      metrics:"
  for i in $(seq 0 99); do echo "        - {name: bench_register, register: holding, address: $i, labels: {reg: '$i'}}"; done
  echo "    floats100:"
  echo "      metrics:"
  for i in $(seq 0 99); do echo "        - {name: bench_float, register: holding, address: $((1000 + 2 * i)), data_type: float32, labels: {reg: '$i'}}"; done
} > "$W/ours.yml"
/usr/bin/python3 - "$ROOT/exporters/ipmi/modules/snmp/ups_mib.yml" "$W/ref.yml" <<'PY'
import sys, yaml
src = yaml.safe_load(open(sys.argv[1]))
metrics = []
for m in src["metrics"]:
    r = {"name": m["name"], "oid": m["oid"], "type": m["type"], "help": m["help"]}
    if "indexes" in m:
        r["indexes"] = m["indexes"]
    metrics.append(r)
mod = {"walk": src["walk"], "version": 2, "max_repetitions": 25, "retries": 2,
       "timeout": "2s", "auth": {"community": "public"}, "metrics": metrics}
yaml.safe_dump({"ups_mib": mod}, open(sys.argv[2], "w"), sort_keys=False)
PY

"$OURS" --web.listen-address=127.0.0.1:23890 --config.file="$W/ours.yml" --ipmi.local=off \
  --ipmi.sdr-cache-dir="$W/sdr" --no-collector.env > "$W/ours.log" 2>&1 &
PIDS+=($!); OURS_PID=$!
prometheus-snmp-exporter --web.listen-address=127.0.0.1:23891 --config.file="$W/ref.yml" > "$W/ref.log" 2>&1 &
PIDS+=($!); REF_PID=$!
for port in 23890 23891; do
  for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
done

/usr/bin/python3 - "$N" "$OURS_PID" "$REF_PID" "$SNMP_SIM_PORT" "$MODBUS_SIM_PORT" <<'PY'
import os, statistics, sys, time, urllib.request

n, ours_pid, ref_pid, snmp_port, mb_port = (int(x) for x in sys.argv[1:])
tick = os.sysconf("SC_CLK_TCK")

def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick

def get(url):
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=20) as r:
        body = r.read().decode()
    return time.perf_counter() - t, body

def line(name, xs):
    return f"{name:<7} median {1000*statistics.median(xs):7.2f} ms   mean {1000*statistics.mean(xs):7.2f} ms   min {1000*min(xs):7.2f} ms"

ours_url = f"http://127.0.0.1:23890/snmp?target=127.0.0.1:{snmp_port}&module=ups_mib"
ref_url = f"http://127.0.0.1:23891/snmp?target=127.0.0.1:{snmp_port}&module=ups_mib"
for _ in range(3):
    get(ours_url); get(ref_url)
_, b_ours = get(ours_url)
_, b_ref = get(ref_url)
names = lambda b: {l.split("{")[0].split(" ")[0] for l in b.splitlines() if l and not l.startswith("#")}
common = sorted(n for n in names(b_ref) & names(b_ours) if n.startswith("ups"))
only_ref = sorted(n for n in names(b_ref) - names(b_ours) if n.startswith("ups"))
assert "upsBatteryStatus 2" in b_ours and "upsBatteryStatus 2" in b_ref, "both must read the UPS"
t_ours, t_ref = [], []
c0 = (cpu(ours_pid), cpu(ref_pid))
for _ in range(n):
    t_ours.append(get(ours_url)[0])
    t_ref.append(get(ref_url)[0])
c1 = (cpu(ours_pid), cpu(ref_pid))
cpu_ours, cpu_ref = (c1[0] - c0[0]) / n, (c1[1] - c0[1]) / n
print(f"1) SNMP, UPS-MIB over v2c from snmpd, {n} scrapes each (interleaved):")
print(f"   UPS metric names served by both: {len(common)}; only by the reference: {only_ref or 'none'}")
print("   " + line("theirs", t_ref))
print("   " + line("ours", t_ours))
print(f"   CPU per scrape: theirs {1000*cpu_ref:6.2f} ms   ours {1000*cpu_ours:6.2f} ms")
wr = statistics.median(t_ours) / statistics.median(t_ref)
cr = cpu_ours / cpu_ref if cpu_ref > 0 else float("nan")
print(f"   ratio ours/theirs: wall (median) {wr:.2f}   CPU {cr:.2f}   (target <= 0.50)")

print(f"2) Modbus TCP from pymodbus, {n} scrapes each:")
for module, what in (("regs100", "100 uint16 registers"), ("floats100", "100 float32 (200 registers)")):
    url = f"http://127.0.0.1:23890/modbus?target=127.0.0.1:{mb_port}&module={module}&sub_target=1"
    _, b = get(url)
    assert "modbus_up 1" in b, b[-400:]
    reads = [l for l in b.splitlines() if l.startswith("modbus_scrape_read_requests")][0].split()[1]
    ts = []
    c0 = cpu(ours_pid)
    for _ in range(n):
        ts.append(get(url)[0])
    c = (cpu(ours_pid) - c0) / n
    print("   " + line("ours", ts) + f"   CPU {1000*c:.2f} ms   ({what}, {reads} read requests)")
PY
