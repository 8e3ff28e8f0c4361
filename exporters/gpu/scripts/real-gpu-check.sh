#!/usr/bin/env bash
# The real-GPU check of hpcmon-gpu-exporter, for a machine with an NVIDIA GPU. It needs no
# Rust toolchain and no network there: build the binary here, take it along, run this there.
#
#   On a GPU machine with cargo:      exporters/gpu/scripts/real-gpu-check.sh
#   On a lent GPU machine (DEVELOPERS.md, "The GPU machine"), after
#   `cargo build --release -p hpcmon-gpu-exporter && strip -o .device/gpu/hpcmon-gpu-exporter
#   target/release/hpcmon-gpu-exporter` here:
#       GPU_EXPORTER_BIN=.device/gpu/hpcmon-gpu-exporter OUT=$OUT exporters/gpu/scripts/real-gpu-check.sh
#
# What it does (about 2 minutes, never changes a GPU setting: no MIG change, no reset, no
# clocks, no persistence mode):
#  1. records what the driver says: `nvidia-smi -q`, NVLink status, and nvml_probe.py (NVML
#     field by field, as root and as user nobody: NotSupported / NoPermission where they are);
#  2. puts load on the GPU: a PyTorch bf16 matrix-product loop holding ~8 GiB, started inside
#     a cgroup named like a Slurm step (`.../slurmstepd.scope/job_4242/step_0/...`), plus a
#     job-map file for job 4243 (the prolog's way);
#  3. starts the exporter (with --collector.gpm and --gpu.pcie-throughput) as root and as
#     user nobody; compares every family of the root one with `nvidia-smi --query-gpu` /
#     `--query-compute-apps` at the same moment within the tolerances printed
#     (real_gpu_check.py: per-process and per-job memory, GPM SM activity under load, no field
#     refused as root, XIDs watched), checks both jobs are attributed, keeps both scrapes
#     (real-<gpu>.prom, real-<gpu>-nonroot.prom), the families only root sees and what NVML
#     refused the unprivileged one (gpu_field_unavailable, gpu_xid_event_watched_reason);
#  4. times scrapes against one `nvidia-smi --query-gpu` call on the same fields, and RSS
#     (bench/gpu.sh with the prebuilt binary).
# Results go to $OUT (default exporters/gpu/testdata): real-<gpu>.prom, real-<gpu>-nonroot.prom,
# real-<gpu>.check.txt, probe-root.json, real-<gpu>-extra.tgz (logs, nvidia-smi -q, the
# non-root probe). <gpu> is h100, h200, ... from the GPU's name. Exit 0 only if every check passed.
#
# Dry run without a GPU (checks this script's plumbing, not NVML):
#   PATH=$PWD/exporters/gpu/scripts/dry-run:$PATH GPU_CHECK_DRY_RUN=1 OUT=$(mktemp -d) \
#     exporters/gpu/scripts/real-gpu-check.sh
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$ROOT/exporters/gpu/testdata}"
PORT="${GPU_CHECK_PORT:-23835}"
DRY="${GPU_CHECK_DRY_RUN:-}"
LOAD_SECS="${GPU_CHECK_LOAD_SECS:-90}"
mkdir -p "$OUT"
step() { echo "== $* ($(date +%T))"; }
command -v nvidia-smi >/dev/null || { echo "real-gpu-check: nvidia-smi missing: not a GPU machine" >&2; exit 2; }
timeout 30 nvidia-smi -L || { echo "real-gpu-check: nvidia-smi sees no GPU" >&2; exit 2; }
BIN="${GPU_EXPORTER_BIN:-}"
if [ -z "$BIN" ]; then
    cargo build --release --quiet -p hpcmon-gpu-exporter || exit 2
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/hpcmon-gpu-exporter"
fi
TAG="$(timeout 30 nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | grep -oiE '[A-Z][0-9]{2,4}' | head -1 | tr 'A-Z' 'a-z')"
TAG="${TAG:-gpu}"
[ -n "$DRY" ] && TAG="dryrun"
WORK="$(mktemp -d)"
chmod 755 "$WORK"
mkdir -p "$WORK/bin" "$WORK/jobmap" "$WORK/home"
cp "$BIN" "$WORK/bin/hpcmon-gpu-exporter"
cp exporters/gpu/scripts/nvml_probe.py exporters/gpu/scripts/real_gpu_check.py "$WORK/bin/"
chmod -R a+rX "$WORK"
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$WORK/home")
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    [ -n "${CG:-}" ] && rmdir "$CG" "$(dirname "$CG")" 2>/dev/null
    tar -czf "$OUT/real-$TAG-extra.tgz" -C "$WORK" --exclude=bin . 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
EXTRA=()
# Dry run: the scripted fakes, answering as slowly per call as a real H200 did.
[ -n "$DRY" ] && EXTRA=(--gpu.fake-devices=2 --gpu.fake-latency)
FLAGS=(--collector.gpm --gpu.pcie-throughput --gpu.job-map-dir="$WORK/jobmap")

step "1. what the driver says"
timeout 60 nvidia-smi -q >"$WORK/nvidia-smi-q.txt" 2>&1
timeout 30 nvidia-smi nvlink -s >"$WORK/nvidia-smi-nvlink.txt" 2>&1
timeout 30 nvidia-smi topo -m >"$WORK/nvidia-smi-topo.txt" 2>&1
if [ -z "$DRY" ]; then
    timeout 90 python3 "$WORK/bin/nvml_probe.py" root >"$OUT/probe-root.json" 2>"$WORK/probe-root.err"
    echo "probe as root: rc $?"
    timeout 90 "${NOBODY[@]}" python3 "$WORK/bin/nvml_probe.py" nobody >"$WORK/probe-nonroot.json" 2>"$WORK/probe-nonroot.err"
    echo "probe as nobody: rc $?"
fi

step "2. load inside a Slurm-named cgroup"
CG=""
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    CG=/sys/fs/cgroup/system.slice/slurmstepd.scope/job_4242/step_0/user/task_0
else
    CG=/sys/fs/cgroup/memory/slurm/uid_0/job_4242/step_0/task_0
fi
mkdir -p "$CG" 2>"$WORK/cgroup.err" || { echo "no cgroup: $(cat "$WORK/cgroup.err")"; CG=""; }
echo "4243 65534 physics" >"$WORK/jobmap/0"
cat >"$WORK/bin/load.py" <<'PY'
import sys, time, torch
secs = float(sys.argv[1]); ready = sys.argv[2]
hold = torch.empty(8 << 30, dtype=torch.uint8, device="cuda")  # ~8 GiB held
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
end = time.time() + secs
c = a @ b; torch.cuda.synchronize(); open(ready, "w").write("ok")
while time.time() < end:
    for _ in range(20):
        c = a @ b
    torch.cuda.synchronize()
PY
LOAD_PID=""
if [ -z "$DRY" ]; then
    bash -c 'if [ -n "$1" ]; then echo $$ >"$1/cgroup.procs" || echo "could not join $1"; fi; exec python3 "$2" "$3" "$4"' \
        load "$CG" "$WORK/bin/load.py" "$LOAD_SECS" "$WORK/load.ready" >"$WORK/load.log" 2>&1 &
    LOAD_PID=$!
    PIDS+=("$LOAD_PID")
    for _ in $(seq 120); do [ -f "$WORK/load.ready" ] && break; sleep 0.5; done
    [ -f "$WORK/load.ready" ] && echo "load running (pid $LOAD_PID): $(cat /proc/$LOAD_PID/cgroup 2>/dev/null | tr '\n' ' ')" || { echo "load did not start:"; cat "$WORK/load.log"; }
fi

step "3. exporter as root and as nobody"
"$WORK/bin/hpcmon-gpu-exporter" --web.listen-address="127.0.0.1:$PORT" "${FLAGS[@]}" \
    "${EXTRA[@]}" >"$WORK/exporter-root.log" 2>&1 &
ROOT_PID=$!; PIDS+=("$ROOT_PID")
"${NOBODY[@]}" "$WORK/bin/hpcmon-gpu-exporter" --web.listen-address="127.0.0.1:$((PORT + 1))" \
    "${FLAGS[@]}" "${EXTRA[@]}" >"$WORK/exporter-nonroot.log" 2>&1 &
PIDS+=("$!")
JOBS="4243"; LOAD_JOB=""
[ -n "$CG" ] && [ -z "$DRY" ] && { JOBS="4242,4243"; LOAD_JOB=4242; }
[ -n "$DRY" ] && JOBS=""
rc=0
timeout 120 python3 "$WORK/bin/real_gpu_check.py" "$PORT" "$ROOT_PID" "$OUT/real-$TAG.prom" \
    --expect-jobs "$JOBS" ${LOAD_PID:+--load-pid "$LOAD_PID"} ${LOAD_JOB:+--load-job "$LOAD_JOB"} \
    | tee "$OUT/real-$TAG.check.txt" || rc=1
sleep 1
timeout 30 python3 - "$((PORT + 1))" "$OUT/real-$TAG-nonroot.prom" "$OUT/real-$TAG.prom" <<'PY' | tee -a "$OUT/real-$TAG.check.txt"
import re, sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=30).read().decode()
open(sys.argv[2], "w").write(body)
fam = lambda t: {re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", l).group(0) for l in t.splitlines() if l and not l.startswith("#")}
root, nonroot = fam(open(sys.argv[3]).read()), fam(body)
print("INFO  as nobody, missing families:", " ".join(sorted(root - nonroot)) or "none")
print("INFO  as nobody, collector success:", " ".join(l for l in body.splitlines() if l.startswith("gpu_scrape_collector_success") and not l.endswith(" 1")) or "all 1")
for fam in ("gpu_field_unavailable", "gpu_xid_event_watched_reason"):
    print(f"INFO  as nobody, {fam}:", " ".join(l.split("{", 1)[1].rsplit("}", 1)[0] for l in body.splitlines() if l.startswith(fam + "{")) or "none")
PY
for p in "${PIDS[@]:1}"; do kill "$p" 2>/dev/null; done

step "4. scrape vs one nvidia-smi call (under the load)"
GPU_EXPORTER_BIN="$WORK/bin/hpcmon-gpu-exporter" GPU_BENCH_PORT=$((PORT + 2)) GPU_EXPORTER_ARGS="${EXTRA[*]}" \
    timeout 120 bench/gpu.sh 30 | tee -a "$OUT/real-$TAG.check.txt"
echo "--- exporter log (root)"; tail -20 "$WORK/exporter-root.log"
echo "--- exporter log (nobody)"; tail -20 "$WORK/exporter-nonroot.log"
[ "$rc" -eq 0 ] && echo "real-gpu-check: PASS" || echo "real-gpu-check: FAIL" >&2
exit "$rc"
