#!/bin/sh
# hpcmon-jobstats EpilogSlurmctld: store a finished job's summary without ever blocking
# slurmctld.
#
# Install (on the slurmctld host):
#   install -m 0755 epilog-slurmctld.sh /etc/slurm/epilog-slurmctld.d/hpcmon-jobstats.sh
#   slurm.conf:  EpilogSlurmctld=/etc/slurm/epilog-slurmctld.d/hpcmon-jobstats.sh
#   (or call it from your existing EpilogSlurmctld script), then `scontrol reconfigure`.
#
# slurmctld runs it as SlurmUser with SLURM_JOB_ID set, once per job (array task) at its end.
# It starts `hpcmon-jobstats summarize "$SLURM_JOB_ID" $HPCMON_JOBSTATS_ARGS` in the
# background, in its own session, with stdin/stdout/stderr detached (slurmscriptd waits for
# the script's pipes), under `timeout`, and exits 0 at once: a slow Prometheus or slurmdbd
# delays the summary, never the scheduler. The summary is written to the job's AdminComment
# (`sacctmgr`, so SlurmUser must be an accounting admin — it is by default) and/or the
# `--store.url` table, as the arguments say; jobs the epilog missed are caught up by
# `hpcmon-jobstats backfill`.
#
# Settings: environment, or shell assignments in /etc/default/hpcmon-jobstats (path:
# HPCMON_JOBSTATS_DEFAULTS):
#   HPCMON_JOBSTATS          the binary (default: hpcmon-jobstats in PATH, else
#                            /usr/bin/hpcmon-jobstats)
#   HPCMON_JOBSTATS_ARGS     extra arguments, word-split (e.g. "--config /etc/hpcmon/jobstats.yml
#                            --store.url sqlite:///var/lib/hpcmon-jobstats/summaries.db")
#   HPCMON_JOBSTATS_TIMEOUT  seconds before the summary run is killed (default 120)
#   HPCMON_JOBSTATS_DELAY    seconds to wait first, so the node exporter's last samples are
#                            scraped (default 0; 2x the scrape interval is a good value)
#   HPCMON_JOBSTATS_LOG      a file to append to; default: syslog via `logger -t hpcmon-jobstats`
#                            (and nowhere if logger is missing)
#   HPCMON_JOBSTATS_ENABLE   0 turns the epilog into a no-op
# Exit status: always 0 (a failing EpilogSlurmctld would only add noise to slurmctld's log).

DEFAULTS=${HPCMON_JOBSTATS_DEFAULTS:-/etc/default/hpcmon-jobstats}
# shellcheck disable=SC1090
[ -r "$DEFAULTS" ] && . "$DEFAULTS"

[ "${HPCMON_JOBSTATS_ENABLE:-1}" = 0 ] && exit 0

JOBID=${SLURM_JOB_ID:-${SLURM_JOBID:-}}
case "$JOBID" in
  '' | *[!0-9_+]*) # not set or not a job id: nothing to do (never run with odd input)
    exit 0 ;;
esac

BIN=${HPCMON_JOBSTATS:-}
if [ -z "$BIN" ]; then
  BIN=$(command -v hpcmon-jobstats 2>/dev/null) || BIN=/usr/bin/hpcmon-jobstats
fi
TMO=${HPCMON_JOBSTATS_TIMEOUT:-120}
case "$TMO" in '' | *[!0-9]*) TMO=120 ;; esac
DELAY=${HPCMON_JOBSTATS_DELAY:-0}
case "$DELAY" in '' | *[!0-9]*) DELAY=0 ;; esac
LOG=${HPCMON_JOBSTATS_LOG:-}

log_sink() { # reads lines on stdin, writes them to the log, each tagged with the job id
  if [ -n "$LOG" ]; then
    while IFS= read -r line; do
      printf '%s job %s: %s\n' "$(date '+%Y-%m-%dT%H:%M:%S%z')" "$JOBID" "$line"
    done >> "$LOG" 2>/dev/null
  elif command -v logger > /dev/null 2>&1; then
    while IFS= read -r line; do
      logger -t hpcmon-jobstats -p daemon.info -- "job $JOBID: $line" 2>/dev/null
    done
  else
    cat > /dev/null
  fi
}

run() {
  [ "$DELAY" -gt 0 ] && sleep "$DELAY"
  start=$(date +%s)
  if [ ! -x "$BIN" ]; then
    echo "$BIN is not an executable; no summary stored"
    return
  fi
  # shellcheck disable=SC2086  # HPCMON_JOBSTATS_ARGS is meant to be word-split
  timeout -k 10 "$TMO" "$BIN" summarize "$JOBID" ${HPCMON_JOBSTATS_ARGS:-} 2>&1
  rc=$?
  case $rc in
    0) echo "summary stored in $(( $(date +%s) - start )) s" ;;
    124 | 137) echo "hpcmon-jobstats summarize killed after ${TMO}s" ;;
    *) echo "hpcmon-jobstats summarize failed (exit $rc)" ;;
  esac
}

if [ "${1:-}" = __run ]; then
  run 2>&1 | log_sink
  exit 0
fi

# Detach completely: a new session (slurmscriptd kills the script's process group when it
# exits) and no inherited descriptors; the detached copy of this script does the work.
if command -v setsid > /dev/null 2>&1; then
  setsid sh "$0" __run < /dev/null > /dev/null 2>&1 &
else
  nohup sh "$0" __run < /dev/null > /dev/null 2>&1 &
fi
exit 0
