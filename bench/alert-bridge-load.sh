#!/usr/bin/env bash
# Alert bridge under load (loopback only; bounded in count and time):
#
#   bench/alert-bridge-load.sh [--skip-memory] [--skip-matchers] [--size-mb 15] [--clients 24]
#
# 1. Memory: 24 clients post one ~15 MB notification each at once to the release bridge
#    (SQLite), retrying 503s after 200 ms; prints the bridge's peak RSS (VmHWM), the time until
#    all are stored and the 503s — with the default admission limits, and with the limits lifted
#    as the reference measured in the same run.
# 2. Matchers: 500 000 generated episodes whose job_id label has 432 000 distinct values; p50/p99
#    of an equality matcher (the reference), a regex with a literal prefix and one without,
#    alone and four at once, with the RSS growth.
# Prints numbers only; asserts nothing about time (results in alert-bridge/README.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
exec timeout 1800 cargo bench -q -p hpcmon-alert-bridge --bench load -- "$@"
