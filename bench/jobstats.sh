#!/usr/bin/env bash
# Benchmark hpcmon-jobstats: the cost of one report for jobs on 1, 64 and 1024 nodes, and of
# the epilog's summary.
#
#   bench/jobstats.sh [RUNS]     (RUNS reports per job size, default 5)
#
# Synthetic series of three jobs (1, 64 and 1024 nodes; the node exporter's node_slurm_job_*
# families, one sample every 15 s for an hour) are written as OpenMetrics and turned into a
# TSDB block with `promtool tsdb create-blocks-from openmetrics`; a real Prometheus serves
# it on 127.0.0.1. A fake `sacct` (in a temporary --slurm.bin-dir) prints the jobs' headers.
# For each size it prints the median wall time of `hpcmon-jobstats --json JOBID`, the PromQL
# queries one report sends (read from `serve`'s /metrics), and, as the reference measured in
# the same run on the same data, a per-node approach: one query per node and family (what a
# report costs when it fetches each node's series separately), timed with the same client
# (curl, sequential). Then the cost of `summarize` (what the epilog runs) with a SQLite store.
# Prints numbers only; asserts nothing about timing.
set -euo pipefail
RUNS=${1:-5}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
for p in prometheus promtool curl python3; do
  command -v $p >/dev/null || { echo "$p is missing: scripts/install-deps.sh prom" >&2; exit 1; }; done
cargo build --release --quiet -p hpcmon-jobstats
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/hpcmon-jobstats
W=$(mktemp -d /tmp/hpcmon-bench-jobstats.XXXXXX)
PROM_PID=""; SERVE_PID=""
cleanup() { [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null; [ -n "$PROM_PID" ] && kill "$PROM_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
END=$(( $(date +%s) - 300 ))
START=$(( END - 3600 ))
echo "generating series (jobs on 1, 64, 1024 nodes, 1 h at 15 s)..."
python3 - "$W/series.om" "$START" "$END" <<'PY'
import sys
out, start, end = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
jobs = {"101": 1, "164": 64, "1124": 1024}
fams = [("node_slurm_job_cpu_seconds_total", "counter"), ("node_slurm_job_cpus", "gauge"),
        ("node_slurm_job_memory_max_usage_bytes", "gauge"), ("node_slurm_job_memory_limit_bytes", "gauge"),
        ("node_slurm_job_memory_rss_bytes", "gauge"), ("node_slurm_job_oom_kills_total", "counter")]
with open(out, "w") as f:
    for name, typ in fams:
        base = name[:-6] if typ == "counter" else name
        f.write(f"# TYPE {base} {typ}\n")
        for jobid, n in jobs.items():
            for node in range(n):
                lab = f'{{instance="c{node:04d}:9100",job="node",jobid="{jobid}",uid="1000"}}'
                for t in range(start, end + 1, 15):
                    el = t - start
                    v = {"node_slurm_job_cpu_seconds_total": el * 48.0 * (0.5 + (node % 7) / 14),
                         "node_slurm_job_cpus": 64, "node_slurm_job_memory_max_usage_bytes": 8e9 + node * 1e6,
                         "node_slurm_job_memory_limit_bytes": 256e9, "node_slurm_job_memory_rss_bytes": 6e9,
                         "node_slurm_job_oom_kills_total": 0}[name]
                    f.write(f"{name}{lab} {v} {t}\n")
    f.write("# EOF\n")
PY
mkdir -p "$W/data"
promtool tsdb create-blocks-from openmetrics "$W/series.om" "$W/data" > /dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'global:\n  scrape_interval: 1m\n' > "$W/prometheus.yml"
prometheus --config.file="$W/prometheus.yml" --storage.tsdb.path="$W/data" --storage.tsdb.retention.time=30d \
  --web.listen-address=127.0.0.1:$PORT > "$W/prometheus.log" 2>&1 & PROM_PID=$!
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/-/ready" >/dev/null && break; sleep 0.1; done
URL=http://127.0.0.1:$PORT
# The fake sacct: the three jobs' headers in the format hpcmon-jobstats asks for.
mkdir -p "$W/bin"
cat > "$W/bin/sacct" <<EOF
#!/bin/sh
for a in "\$@"; do case "\$a" in
  101) echo "101|101|alice|phys|cpu|COMPLETED|1|c0000|64|cpu=64,mem=256G,node=1|cpu=64,mem=256G,node=1|256G|$START|$START|$END|3600|120|0:0|one";;
  164) echo "164|164|alice|phys|cpu|COMPLETED|64|c[0000-0063]|4096|cpu=4096,mem=16384G,node=64|cpu=4096,node=64|16384G|$START|$START|$END|3600|120|0:0|wide";;
  1124) echo "1124|1124|alice|phys|cpu|COMPLETED|1024|c[0000-1023]|65536|cpu=65536,mem=262144G,node=1024|cpu=65536,node=1024|262144G|$START|$START|$END|3600|120|0:0|huge";;
esac; done
EOF
chmod +x "$W/bin/sacct"
SPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" --prometheus.url=$URL --slurm.bin-dir="$W/bin" serve --web.listen-address=127.0.0.1:$SPORT --serve.allow-all-users > "$W/serve.log" 2>&1 & SERVE_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$SPORT/-/healthy" >/dev/null && break; sleep 0.1; done
queries() { curl -s "http://127.0.0.1:$SPORT/metrics" | awk '$1=="hpcmon_jobstats_prometheus_queries_total"{print $2}'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now_ms() { date +%s%3N; }
printf '\n%-10s %12s %9s %16s %9s %8s\n' "job" "report(ms)" "queries" "per-node(ms)" "queries" "ratio"
for J in 101:1 164:64 1124:1024; do
  id=${J%%:*}; n=${J##*:}
  # warm-up (caches on both sides), then RUNS timed reports through the command line
  "$BIN" --prometheus.url=$URL --slurm.bin-dir="$W/bin" --json "$id" > "$W/report-$id.json"
  ts=()
  for _ in $(seq "$RUNS"); do t0=$(now_ms); "$BIN" --prometheus.url=$URL --slurm.bin-dir="$W/bin" --json "$id" > /dev/null; ts+=($(( $(now_ms) - t0 ))); done
  ours=$(printf '%s\n' "${ts[@]}" | median)
  q0=$(queries); curl -sf "http://127.0.0.1:$SPORT/api/v1/jobs/$id" > /dev/null; q1=$(queries)
  # reference: one query per node and family, sequential, same window
  t0=$(now_ms); nq=0
  for node in $(seq 0 $((n - 1))); do
    inst=$(printf 'c%04d:9100' "$node")
    for fam in node_slurm_job_cpu_seconds_total node_slurm_job_cpus node_slurm_job_memory_max_usage_bytes node_slurm_job_memory_limit_bytes node_slurm_job_memory_rss_bytes node_slurm_job_oom_kills_total; do
      curl -s --data-urlencode "query=max_over_time(${fam}{jobid=\"$id\",instance=\"$inst\"}[3660s])" --data-urlencode "time=$((END + 60))" "$URL/api/v1/query" > /dev/null
      nq=$((nq + 1))
    done
  done
  ref=$(( $(now_ms) - t0 ))
  eff=$(python3 -c "import json;r=json.load(open('$W/report-$id.json'));u=r['usage']['nodes'];print(round(sum(x['cores_used'] for x in u)/sum(x['cpus'] for x in u),3))")
  printf '%-10s %12s %9s %16s %9s %8s   (nodes %s, cpu efficiency %s)\n' "$n-node" "$ours" "$((q1 - q0))" "$ref" "$nq" "$(python3 -c "print(f'{$ours/$ref:.3f}x')")" "$n" "$eff"
done
echo
echo "epilog: summarize (report + encode + SQLite upsert), median of $RUNS, --no-admin-comment:"
for id in 101 164 1124; do
  ts=()
  for _ in $(seq "$RUNS"); do t0=$(now_ms); "$BIN" --prometheus.url=$URL --slurm.bin-dir="$W/bin" --store.url="sqlite://$W/summaries.db" summarize --no-admin-comment "$id" > "$W/sum.out"; ts+=($(( $(now_ms) - t0 ))); done
  printf '  job %-5s %6s ms   %s\n' "$id" "$(printf '%s\n' "${ts[@]}" | median)" "$(cat "$W/sum.out")"
done
