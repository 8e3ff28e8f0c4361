#!/usr/bin/env bash
# Where the exporter's scrape time and memory go on a real GPU (run on a GPU machine like
# real-gpu-check.sh, with GPU_EXPORTER_BIN and OUT): NVML's per-call latency
# (nvml_probe.py --timing), RSS after each NVML step and which call maps libcuda
# (nvml_probe.py --rss), the exporter's RSS with one collector, with the default ones, with
# gpm and PCIe throughput on, and with one tokio worker per CPU (the kit's default; the
# exporter now asks for two), its largest mappings, its per-collector durations, and one
# nvidia-smi call's wall time and peak RSS for reference. Writes $OUT/profile.txt,
# $OUT/nvml-timing.json and $OUT/nvml-rss.json.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$(mktemp -d)}"
BIN="${GPU_EXPORTER_BIN:?set GPU_EXPORTER_BIN to the exporter binary}"
PORT="${GPU_CHECK_PORT:-23845}"
exec > >(tee "$OUT/profile.txt") 2>&1
timeout 120 python3 exporters/gpu/scripts/nvml_probe.py --timing >"$OUT/nvml-timing.json"
python3 - "$OUT/nvml-timing.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for k, v in sorted(d.items(), key=lambda kv: -(kv[1]["median_us"] if isinstance(kv[1], dict) else 0)):
    print(f"{k:22} {v}")
PY
timeout 60 python3 exporters/gpu/scripts/nvml_probe.py --rss >"$OUT/nvml-rss.json"
python3 - "$OUT/nvml-rss.json" <<'PY'
import json, sys
prev = None
for s in json.load(open(sys.argv[1])):
    d = "" if prev is None else f"(+{(s['rss_kib'] - prev) / 1024:.1f} MiB)"
    print(f"rss {s['rss_kib'] / 1024:6.1f} MiB {d:14} libcuda={'yes' if s['libcuda'] else 'no ':3} {s['step']} {s.get('error', '')}")
    prev = s["rss_kib"]
PY
profile() {
    local label="$1"; shift
    env "${ENVS[@]}" "$BIN" --web.listen-address="127.0.0.1:$PORT" "$@" >/dev/null 2>&1 &
    local pid=$!
    local took
    took=$(python3 - "$PORT" "$OUT/last.prom" <<'PY'
import statistics, sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}"
for _ in range(100):
    try:
        urllib.request.urlopen(url + "/-/ready", timeout=1).read(); break
    except Exception:
        time.sleep(0.05)
for _ in range(10):
    body = urllib.request.urlopen(url + "/metrics", timeout=30).read()
open(sys.argv[2], "wb").write(body)
ts = []
for _ in range(20):
    t = time.perf_counter(); urllib.request.urlopen(url + "/metrics", timeout=30).read(); ts.append(time.perf_counter() - t)
print(f"median scrape {statistics.median(ts)*1e3:.2f} ms")
PY
)
    echo "== $label: $took, $(grep -E '^(VmRSS|VmHWM|Threads)' /proc/$pid/status | tr -s ' \t' ' ' | tr '\n' ' ')"
    grep '^gpu_scrape_collector_duration_seconds' "$OUT/last.prom" | sed 's/gpu_scrape_collector_duration_seconds//' | tr '\n' ' '; echo
    echo "   libcuda mapped: $(grep -c libcuda /proc/$pid/maps) mappings"
    if [ "$label" = all ]; then
        grep -E '^(Rss|Anonymous)' /proc/$pid/smaps_rollup | tr -s ' ' | tr '\n' ' '; echo
        awk '/^[0-9a-f]+-[0-9a-f]+ /{name=$6} /^Rss:/{rss[name]+=$2} END{for(n in rss) if (rss[n]>300) print rss[n]" kB "n}' /proc/$pid/smaps | sort -rn | head -12
    fi
    kill $pid; wait $pid 2>/dev/null
}
ENVS=(X=1)
profile "info only" --collector.disable-defaults --collector.info
profile all
profile "all + gpm + pcie-throughput" --collector.gpm --gpu.pcie-throughput
ENVS=(TOKIO_WORKER_THREADS=16)
profile "all, TOKIO_WORKER_THREADS=16"
ENVS=(MALLOC_ARENA_MAX=1)
profile "all, MALLOC_ARENA_MAX=1"
ENVS=(X=1)
F=uuid,name,pci.bus_id,driver_version,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw,clocks.sm,clocks.mem,pstate,ecc.errors.uncorrected.volatile.total
python3 - "$F" <<'PY'
import resource, statistics, subprocess, sys, time
ts = []
for _ in range(5):
    t = time.perf_counter()
    subprocess.run(["nvidia-smi", f"--query-gpu={sys.argv[1]}", "--format=csv"], capture_output=True, timeout=60)
    ts.append(time.perf_counter() - t)
print(f"nvidia-smi --query-gpu (13 fields): median {statistics.median(ts)*1e3:.1f} ms, peak RSS {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024:.1f} MiB")
PY
