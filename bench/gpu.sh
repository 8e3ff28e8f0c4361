#!/usr/bin/env bash
# Benchmark hpcmon-gpu-exporter against one `nvidia-smi --query-gpu=<same fields> --format=csv`.
#
#   bench/gpu.sh [N]      (N scrapes / N nvidia-smi calls, interleaved; default 50)
#
# On a machine with an NVIDIA GPU: per-scrape wall time (median, p90) of the exporter on the
# real NVML, per-call wall time of nvidia-smi asking for the same fields, the ratio
# (target: scrape >= 10x faster), and the exporter's RSS (target < 20 MiB).
# Without a GPU (CI): the same numbers for the exporter with no driver (gpu_nvml_up 0), with
# 8 scripted fake H100s (--gpu.fake-devices=8, test-only), and with 8 fakes that take as
# long per NVML call as a real H200 did (--gpu.fake-latency: energy counter 3.3 ms, each
# maximum clock 1.4 ms, ...), and no ratio.
# Prints numbers only; asserts nothing about timing.
set -euo pipefail
N="${1:-50}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
command -v python3 >/dev/null || { echo "bench/gpu.sh needs python3" >&2; exit 1; }
# GPU_EXPORTER_BIN: a prebuilt binary (a GPU machine without a Rust toolchain); else build it.
BIN="${GPU_EXPORTER_BIN:-}"
if [ -z "$BIN" ]; then
    cargo build --release --quiet -p hpcmon-gpu-exporter
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/hpcmon-gpu-exporter"
fi
PORT="${GPU_BENCH_PORT:-23835}"
exec python3 - "$N" "$BIN" "$PORT" <<'PY'
import os, shutil, signal, statistics, subprocess, sys, time, urllib.request

n, binary, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
FIELDS = ("uuid,index,name,pci.bus_id,driver_version,serial,vbios_version,pstate,"
          "utilization.gpu,utilization.memory,utilization.encoder,utilization.decoder,"
          "memory.total,memory.used,memory.free,temperature.gpu,temperature.memory,fan.speed,"
          "power.draw,power.limit,clocks.gr,clocks.sm,clocks.mem,clocks.video,"
          "clocks.max.gr,clocks.max.sm,clocks.max.mem,clocks_event_reasons.active,"
          "clocks_throttle_reasons.active,ecc.mode.current,"
          "ecc.errors.corrected.volatile.total,ecc.errors.uncorrected.volatile.total,"
          "ecc.errors.corrected.aggregate.total,ecc.errors.uncorrected.aggregate.total,"
          "retired_pages.pending,pcie.link.gen.current,pcie.link.width.current,"
          "pcie.link.gen.max,pcie.link.width.max,mig.mode.current").split(",")

def smi_fields(smi):
    """The fields this driver's nvidia-smi knows (names changed across versions)."""
    help_text = subprocess.run([smi, "--help-query-gpu"], capture_output=True, text=True,
                               timeout=30).stdout
    known = [f for f in FIELDS if f'"{f}"' in help_text]
    # keep one of the two names of the clock event reasons
    if "clocks_event_reasons.active" in known and "clocks_throttle_reasons.active" in known:
        known.remove("clocks_throttle_reasons.active")
    return known

def start(args):
    extra = os.environ.get("GPU_EXPORTER_ARGS", "").split()  # dry runs only
    p = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}", *args, *extra],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1).read()
            return p
        except Exception:
            if p.poll() is not None:
                sys.exit(f"exporter exited: {p.returncode}")
            time.sleep(0.05)
    p.kill()
    sys.exit("exporter did not become ready")

def scrape():
    t = time.perf_counter()
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read()
    return time.perf_counter() - t, body

def rss(pid):
    vals = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            vals[k] = int(v.split()[0]) / 1024
    return vals

def stats(xs):
    xs = sorted(xs)
    return statistics.median(xs), xs[int(len(xs) * 0.9) - 1 if len(xs) > 1 else 0]

def bench_exporter(label, args, smi=None, fields=None):
    p = start(args)
    try:
        for _ in range(3):
            scrape()  # warm up
        ours, theirs = [], []
        for _ in range(n):
            dt, body = scrape()
            ours.append(dt)
            if smi:
                t = time.perf_counter()
                subprocess.run([smi, f"--query-gpu={','.join(fields)}", "--format=csv"],
                               capture_output=True, timeout=60, check=True)
                theirs.append(time.perf_counter() - t)
        r = rss(p.pid)
        samples = sum(1 for l in body.decode().splitlines() if l and not l.startswith("#"))
        m, p90 = stats(ours)
        print(f"{label}: {n} scrapes, {samples} samples/scrape")
        print(f"  exporter scrape   median {m*1e3:8.2f} ms   p90 {p90*1e3:8.2f} ms")
        print(f"  exporter RSS      {r['VmRSS']:.1f} MiB (peak {r['VmHWM']:.1f} MiB; target < 20 MiB)")
        if theirs:
            tm, tp90 = stats(theirs)
            print(f"  nvidia-smi call   median {tm*1e3:8.2f} ms   p90 {tp90*1e3:8.2f} ms  ({len(fields)} fields)")
            print(f"  ratio             nvidia-smi / scrape = {tm/m:.1f}x (target >= 10x)")
        return m
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)

smi = shutil.which("nvidia-smi")
gpu = smi and subprocess.run([smi, "-L"], capture_output=True, timeout=30).returncode == 0
print(f"hpcmon-gpu-exporter bench on {os.uname().nodename}, {os.cpu_count()} CPUs")
if gpu:
    fields = smi_fields(smi)
    bench_exporter("real NVML", [], smi, fields)
else:
    print("no usable nvidia-smi / GPU here: exporter-only numbers, no ratio")
    bench_exporter("no GPU (gpu_nvml_up 0)", [])
    plain = bench_exporter("8 fake H100s (--gpu.fake-devices=8)", ["--gpu.fake-devices=8"])
    slow = bench_exporter("8 fake H100s with an H200's NVML latencies (--gpu.fake-latency)",
                          ["--gpu.fake-devices=8", "--gpu.fake-latency"])
    # Same work, same run: what the H200's slow calls (3.3 ms energy, 4 x 1.4 ms max clocks,
    # ...) add to a scrape. ~1.0: nothing (they are read once or in the background).
    print(f"ratio               fake-latency scrape / plain fake scrape = {slow/plain:.2f}")
PY
