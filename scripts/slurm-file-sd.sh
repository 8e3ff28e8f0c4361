#!/usr/bin/env bash
# Writes Prometheus file_sd target files from the Slurm exporter's service discovery
# (/sd/nodes, built from its sinfo snapshot), for a Prometheus that prefers file_sd_configs
# (or predates http_sd_configs, 2.28) or that cannot reach the exporter:
#
#   slurm-file-sd.sh URL DIR [CURL-OPTION...]
#     URL  the exporter, e.g. http://slurmctl:9341 (https://... with its web config)
#     DIR  gets nodes.json, gpu.json and ipmi.json (written atomically: Prometheus re-reads
#          a file when it changes and never sees half of one)
#     CURL-OPTION  e.g. --cacert /etc/hpcmon/ca.pem --netrc-file /etc/hpcmon/sd.netrc
#                  (credentials from files, never on the command line)
#
# Run it from a timer or cron every minute. A failed fetch (exporter down, no snapshot yet:
# 503) keeps the previous file and exits 1, so Prometheus keeps its targets.
# prometheus.yml:
#   - job_name: node
#     file_sd_configs: [{files: [/var/lib/prometheus/slurm-sd/nodes.json]}]
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,17p' "$0" >&2; exit 2; }
url=${1%/}; dir=$2; shift 2
command -v curl >/dev/null || { echo "slurm-file-sd: curl not found" >&2; exit 1; }
mkdir -p "$dir"
rc=0
for exporter in node gpu ipmi; do
  out="$dir/$([ "$exporter" = node ] && echo nodes || echo "$exporter").json"
  tmp=$(mktemp "$dir/.sd.XXXXXX")
  if curl -fsS --max-time 20 "$@" -o "$tmp" "$url/sd/nodes?exporter=$exporter" \
    && [ "$(head -c1 "$tmp")" = "[" ]; then
    chmod 0644 "$tmp"
    mv -f "$tmp" "$out"
  else
    echo "slurm-file-sd: could not fetch $url/sd/nodes?exporter=$exporter; keeping $out" >&2
    rm -f "$tmp"; rc=1
  fi
done
exit $rc
