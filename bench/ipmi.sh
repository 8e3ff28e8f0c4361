#!/usr/bin/env bash
# Benchmark hpcmon-ipmi-exporter against Debian's prometheus-ipmi-exporter (1.6) on simulated
# BMCs (OpenIPMI ipmi_sim on 127.0.0.1, started with scripts/ipmi-sim.sh), in one run:
#
#   bench/ipmi.sh [N] [TARGETS] [CAP]   N scrapes of one target per exporter, interleaved
#                                       (default 40); TARGETS simulated BMCs scraped at once
#                                       (default 50); CAP = --ipmi.max-concurrency (default 16)
#
# 1. One target: both exporters scrape the same BMC through /ipmi?target=... with the same
#    collectors (ipmi, bmc, chassis, sel, dcmi); prints median/mean wall time per scrape and
#    the ratio ours/theirs (target <= 0.5).
# 2. TARGETS BMCs scraped concurrently (one request per target, all at once): total wall
#    time, per-target up count, and the peak number of FreeIPMI child processes of each
#    exporter (polled from /proc every 2 ms) — ours is capped by CAP.
# Prints numbers only; asserts nothing about timing. Ports: 22800-22899 (sims),
# 22990/22991 (exporters).
set -euo pipefail
N=${1:-40}
TARGETS=${2:-50}
CAP=${3:-16}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
for t in prometheus-ipmi-exporter ipmi_sim sdrcomp curl python3; do
  command -v "$t" >/dev/null || { echo "$t is missing: scripts/install-deps.sh ipmi" >&2; exit 1; }
done
[ -x /usr/sbin/ipmi-sensors ] || { echo "FreeIPMI is missing: scripts/install-deps.sh ipmi" >&2; exit 1; }
cargo build --release --quiet -p hpcmon-ipmi-exporter
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OURS="$TARGET_DIR/release/hpcmon-ipmi-exporter"

W=$(mktemp -d /tmp/hpcmon-ipmi-bench.XXXXXX)
chmod 700 "$W"
export IPMI_SIM_DIR=$W/sim IPMI_SIM_BASE_PORT=22800
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  scripts/ipmi-sim.sh stop >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT

scripts/ipmi-sim.sh start "$TARGETS" >/dev/null
printf 'password\n' > "$W/pw"
COLLECTORS="[ipmi, bmc, chassis, sel, dcmi]"
# The reference only takes the password inline (in its own 0600 file here).
cat > "$W/ref.yml" <<EOF
modules:
  default:
    user: admin
    pass: password
    privilege: admin
    driver: LAN_2_0
    workaround_flags: [opensesspriv]
    collectors: $COLLECTORS
EOF
cat > "$W/ours.yml" <<EOF
modules:
  default:
    user: admin
    password_file: $W/pw
    privilege: admin
    driver: LAN_2_0
    workaround_flags: [opensesspriv]
    collectors: $COLLECTORS
EOF
chmod 600 "$W"/*.yml
prometheus-ipmi-exporter --config.file="$W/ref.yml" --web.listen-address=127.0.0.1:22990 \
  > "$W/ref.log" 2>&1 &
PIDS+=($!); REF_PID=$!
"$OURS" --config.file="$W/ours.yml" --web.listen-address=127.0.0.1:22991 \
  --ipmi.max-concurrency="$CAP" --ipmi.sdr-cache-dir="$W/sdr" > "$W/ours.log" 2>&1 &
PIDS+=($!); OURS_PID=$!
for port in 22990 22991; do
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
done

echo "hpcmon-ipmi-exporter vs prometheus-ipmi-exporter $(dpkg-query -W -f='${Version}' prometheus-ipmi-exporter 2>/dev/null)"
echo "machine: $(nproc) CPUs; collectors $COLLECTORS; ipmi_sim x$TARGETS on 127.0.0.1:22800+2i"
python3 - "$N" "$TARGETS" "$REF_PID" "$OURS_PID" "$CAP" <<'PY'
import os, statistics, sys, threading, time, urllib.request

n, targets, ref_pid, ours_pid, cap = (int(a) for a in sys.argv[1:])
EXP = {"theirs": (22990, ref_pid), "ours": (22991, ours_pid)}

def scrape(port, target, timeout=10.0):
    url = f"http://127.0.0.1:{port}/ipmi?target={target}&module=default"
    req = urllib.request.Request(url, headers={"X-Prometheus-Scrape-Timeout-Seconds": str(timeout)})
    t0 = time.perf_counter()
    body = urllib.request.urlopen(req, timeout=timeout + 5).read().decode()
    return time.perf_counter() - t0, body

def ups(body):
    return {l.split("collector=\"")[1].split("\"")[0]: l.rsplit(" ", 1)[1]
            for l in body.splitlines() if l.startswith("ipmi_up{")}

def children(pid):
    n = 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(") ", 1)[1].split()[1]) == pid:
                        n += 1
            except (OSError, IndexError, ValueError):
                pass
    return n

t1 = "127.0.0.1:22800"
for name, (port, _) in EXP.items():  # warm-up: SDR caches, connections
    for _ in range(3):
        _, body = scrape(port, t1)
    print(f"  {name:6} ipmi_up: {ups(body)}")
times = {k: [] for k in EXP}
for _ in range(n):
    for name, (port, _) in EXP.items():
        times[name].append(scrape(port, t1)[0])
print(f"\n1) one target, {n} scrapes each (interleaved), wall time per scrape:")
for name in EXP:
    t = times[name]
    print(f"  {name:6} median {statistics.median(t)*1000:7.1f} ms   mean {statistics.mean(t)*1000:7.1f} ms   min {min(t)*1000:6.1f} ms")
r = statistics.median(times["ours"]) / statistics.median(times["theirs"])
print(f"  ratio ours/theirs (median): {r:.2f}  (target <= 0.50)")

print(f"\n2) {targets} targets scraped at once (one request each):")
for name, (port, pid) in EXP.items():
    peak, stop = [0], threading.Event()
    def poll():
        while not stop.is_set():
            peak[0] = max(peak[0], children(pid))
            time.sleep(0.002)
    poller = threading.Thread(target=poll); poller.start()
    results = [None] * targets
    def one(i):
        try:
            results[i] = scrape(port, f"127.0.0.1:{22800 + 2 * i}", timeout=30.0)
        except Exception as e:  # noqa: BLE001
            results[i] = (None, str(e))
    t0 = time.perf_counter()
    th = [threading.Thread(target=one, args=(i,)) for i in range(targets)]
    for t in th: t.start()
    for t in th: t.join()
    total = time.perf_counter() - t0
    stop.set(); poller.join()
    ok = sum(1 for r in results if r[0] is not None and ups(r[1]).get("ipmi") == "1")
    slowest = max(r[0] for r in results if r[0] is not None)
    note = f" (--ipmi.max-concurrency={cap})" if name == "ours" else " (no cap)"
    print(f"  {name:6} total {total:6.2f} s   slowest target {slowest:5.2f} s   sensors up {ok}/{targets}   peak FreeIPMI processes {peak[0]}{note}")
PY
