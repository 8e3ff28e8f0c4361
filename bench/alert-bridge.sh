#!/usr/bin/env bash
# Benchmark hpcmon-alert-bridge (loopback only; bounded in count and time):
#
#   bench/alert-bridge.sh [--backend sqlite|postgres|both] [--seconds S] [--episodes N] [--max-alerts N]
#
# 1. Ingest: 8 clients post webhook notifications of 1, 10 and 100 alerts (60 % new episodes,
#    30 % repeats, 10 % resolves) to the real bridge binary for at most S seconds (default 8)
#    or N alerts (default 200000): alerts stored per second, p50/p99 request latency.
# 2. Floor, measured in the same run: the same notifications written by a bare loop of
#    prepared single-row INSERT/UPDATE statements, one transaction per notification (same
#    durability settings: SQLite WAL + synchronous=FULL); prints bridge / floor.
# 3. Query: a log of N episodes (default 1000000) generated in SQL, then 200 label-matcher +
#    1-day time-range queries of each kind through the bridge's API: p50/p99.
# PostgreSQL runs on a private loopback cluster (scripts/postgres.sh). Prints numbers only;
# asserts nothing about timing (targets in alert-bridge/README.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
exec cargo bench -q -p hpcmon-alert-bridge --bench ingest -- "$@"
