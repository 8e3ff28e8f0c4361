#!/usr/bin/env bash
# Runs the hpcmon suite on this machine, everything on 127.0.0.1: the README's run command.
#
#   scripts/demo.sh [start]   install packages, build release binaries, start every part,
#                             Alertmanager and Prometheus; print the URLs
#   scripts/demo.sh stop      stop everything started
#   scripts/demo.sh status    what runs, and Prometheus' view of its targets
#   (DEMO_PROFILE=debug scripts/demo.sh start: debug binaries, quicker to build;
#    DEMO_SKIP_BUILD=1: use the binaries already built)
#
# Parts: every scripts/demo.d/NN-NAME.sh is sourced (in a subshell, in name order) with
#   ROOT  the repository        BIN  the release binaries     RUN  the state dir (.run/demo)
# and these functions:
#   demo_track PID NAME               register a process for `stop`
#   demo_scrape JOB TARGET [LINE...]  add a Prometheus scrape job (extra YAML lines go into the job)
#   demo_spawn NAME CMD [ARG...]      start CMD in the background in its own session, log to
#                                     $RUN/NAME.log, demo_track it; its pid is in $DEMO_PID
#   demo_wait_http URL NAME [SECS]    wait until URL answers; fail early if NAME's process died
#   demo_url LABEL URL                list a URL in the final summary
#   demo_webhook URL                  Alertmanager also sends every notification to URL
#   demo_remote_write URL             Prometheus also remote-writes everything to URL
# A part that fails (non-zero status) is reported and the others go on.
# Ports: prometheus 19090, alertmanager 19093, node 19100, ipmi 19290, slurm 19341,
# gpu 19835, alert-bridge 19780, actions 19781, jobstats 19782, victoria-metrics 19428
# (DEMO_LTS=victoria: VictoriaMetrics as the long-term store behind Prometheus).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN=$ROOT/.run/demo
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
# DEMO_PROFILE=debug uses (and builds) debug binaries instead: quicker while developing.
PROFILE=${DEMO_PROFILE:-release}
case "$PROFILE" in
  release) BUILD_FLAGS=(--release) ;;
  debug) BUILD_FLAGS=() ;;
  *) echo "DEMO_PROFILE must be release or debug" >&2; exit 2 ;;
esac
BIN=$TARGET_DIR/$PROFILE
PROM_PORT=19090
AM_PORT=19093
BRIDGE_WEBHOOK=http://127.0.0.1:19780/webhook
export ROOT BIN RUN

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi

say() { printf '%s\n' "$*"; }

demo_track() { # PID NAME
  printf '%s %s\n' "$1" "$2" >> "$RUN/pids"
}

demo_remote_write() { # URL
  printf '%s\n' "$1" >> "$RUN/remote_write"
}

demo_scrape() { # JOB TARGET [extra yaml lines...]
  local job=$1 target=$2; shift 2
  {
    printf '  - job_name: "%s"\n    static_configs:\n      - targets: ["%s"]\n' "$job" "$target"
    local line
    for line in "$@"; do printf '    %s\n' "$line"; done
  } >> "$RUN/scrape.yml"
}

demo_spawn() { # NAME CMD [ARG...]
  local name=$1; shift
  setsid "$@" >> "$RUN/$name.log" 2>&1 < /dev/null &
  DEMO_PID=$!
  demo_track "$DEMO_PID" "$name"
}

demo_url() { # LABEL URL
  printf '%-28s %s\n' "$1" "$2" >> "$RUN/urls"
}

demo_webhook() { # URL: a second receiver of every notification (beside the alert bridge)
  printf '%s\n' "$1" >> "$RUN/webhooks"
}

pid_of() { # NAME -> last recorded pid
  awk -v n="$1" '$2 == n { p = $1 } END { if (p) print p }' "$RUN/pids" 2>/dev/null
}

demo_wait_http() { # URL NAME [SECS]
  local url=$1 name=$2 secs=${3:-30} pid i
  pid=$(pid_of "$name")
  for ((i = 0; i < secs * 10; i++)); do
    if curl -sf -o /dev/null --max-time 2 "$url"; then return 0; fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      say "  $name exited; last lines of $RUN/$name.log:" >&2
      tail -n 15 "$RUN/$name.log" 2>/dev/null | sed 's/^/    /' >&2
      return 1
    fi
    sleep 0.1
  done
  say "  $name: $url not ready after ${secs}s (log: $RUN/$name.log)" >&2
  return 1
}
export -f demo_track demo_scrape demo_spawn demo_url demo_webhook demo_remote_write demo_wait_http pid_of say

alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^State:.*zombie' "/proc/$1/status" 2>/dev/null; }

stop_all() {
  [ -f "$RUN/pids" ] || { say "demo: nothing recorded as running"; return 0; }
  local pid name pids=()
  # Newest first: Prometheus before the exporters it scrapes.
  while read -r pid name; do
    [ -n "$pid" ] || continue
    pids+=("$pid")
    if alive "$pid"; then
      # Each part's process leads its own session/group (setsid): signal the group too.
      kill -TERM -- "-$pid" 2>/dev/null || true
      kill -TERM "$pid" 2>/dev/null || true
      say "demo: stopping $name (pid $pid)"
    fi
  done < <(tac "$RUN/pids")
  local i
  for ((i = 0; i < 50; i++)); do
    local left=0
    for pid in "${pids[@]}"; do alive "$pid" && left=1; done
    [ $left -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    if alive "$pid"; then
      kill -KILL -- "-$pid" 2>/dev/null || true
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -f "$RUN/pids"
  say "demo: stopped"
}

status() {
  if [ ! -f "$RUN/pids" ]; then say "demo: not running"; return 3; fi
  local pid name down=0
  while read -r pid name; do
    if alive "$pid"; then say "running  $name (pid $pid)"; else say "DEAD     $name (pid $pid, log $RUN/$name.log)"; down=1; fi
  done < "$RUN/pids"
  if curl -sf -o /dev/null "http://127.0.0.1:$PROM_PORT/-/ready"; then
    say ""
    say "Prometheus targets:"
    curl -s "http://127.0.0.1:$PROM_PORT/api/v1/targets?state=active" | python3 -c '
import json, sys
for t in json.load(sys.stdin)["data"]["activeTargets"]:
    err = (" (" + t["lastError"] + ")") if t.get("lastError") else ""
    print("  %-8s %-16s %s%s" % (t["health"], t["labels"]["job"], t["scrapeUrl"], err))
'
  fi
  [ -f "$RUN/urls" ] && { say ""; cat "$RUN/urls"; }
  return $down
}

write_configs() {
  local f
  mkdir -p "$RUN/rules"
  shopt -s nullglob
  local rule_files=()
  for f in "$ROOT"/rules/*.rules.yml; do
    cp "$f" "$RUN/rules/"
    rule_files+=("rules/$(basename "$f")")
  done
  {
    cat <<YAML
# Generated by scripts/demo.sh
global:
  scrape_interval: 5s
  scrape_timeout: 4s
  evaluation_interval: 5s
  external_labels:
    cluster: demo
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:$AM_PORT"]
rule_files:
YAML
    if [ ${#rule_files[@]} -eq 0 ]; then say "  []"; fi
    for f in "${rule_files[@]}"; do say "  - $f"; done
    cat <<YAML
scrape_configs:
  - job_name: "prometheus"
    static_configs:
      - targets: ["127.0.0.1:$PROM_PORT"]
  - job_name: "alertmanager"
    static_configs:
      - targets: ["127.0.0.1:$AM_PORT"]
YAML
    cat "$RUN/scrape.yml"
    if [ -s "$RUN/remote_write" ]; then
      say "remote_write:"
      while read -r u; do [ -n "$u" ] && printf '  - url: "%s"\n' "$u"; done < "$RUN/remote_write"
    fi
  } > "$RUN/prometheus.yml"
  cat > "$RUN/alertmanager.yml" <<YAML
# Generated by scripts/demo.sh: every alert goes to the alert bridge.
route:
  receiver: alert-bridge
  group_by: [alertname, cluster]
  group_wait: 1s
  group_interval: 5s
  repeat_interval: 1h
receivers:
  - name: alert-bridge
    webhook_configs:
      - url: "$BRIDGE_WEBHOOK"
        send_resolved: true
$(while read -r u; do [ -n "$u" ] && printf '      - url: "%s"\n        send_resolved: true\n' "$u"; done < "$RUN/webhooks")
YAML
}

build() {
  say "demo: building $PROFILE binaries (cargo build ${BUILD_FLAGS[*]} --workspace --bins)"
  if ! (cd "$ROOT" && cargo build "${BUILD_FLAGS[@]}" --workspace --bins); then
    # One broken crate must not keep the rest of the suite from running: build each
    # package on its own; parts whose binary is missing then fail clearly.
    say "demo: the workspace build failed; building each package separately"
    local pkg
    for pkg in $(cd "$ROOT" && cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
for p in json.load(sys.stdin)["packages"]:
    if any("bin" in t["kind"] for t in p["targets"]):
        print(p["name"])'); do
      (cd "$ROOT" && cargo build "${BUILD_FLAGS[@]}" -p "$pkg" --bins) || say "demo: package $pkg does not build; its part will fail"
    done
  fi
}

start() {
  local t0=$SECONDS
  if [ -f "$RUN/pids" ]; then say "demo: stopping the running demo first"; stop_all; fi
  say "demo: installing packages (scripts/install-deps.sh)"
  local groups=(prom infra)
  local g
  # Parts may name the extra package groups they need in a line "# deps: GROUP...".
  for g in $(sed -n 's/^# deps: *//p' "$ROOT"/scripts/demo.d/*.sh 2>/dev/null); do groups+=("$g"); done
  "$ROOT/scripts/install-deps.sh" $(printf '%s\n' "${groups[@]}" | sort -u)
  if [ "${DEMO_SKIP_BUILD:-0}" = 1 ]; then
    say "demo: DEMO_SKIP_BUILD=1: using the binaries already in $BIN"
  else
    build
  fi
  rm -rf "$RUN"
  mkdir -p "$RUN"
  : > "$RUN/pids"; : > "$RUN/scrape.yml"; : > "$RUN/urls"; : > "$RUN/webhooks"; : > "$RUN/remote_write"

  local part name failed=()
  shopt -s nullglob
  for part in "$ROOT"/scripts/demo.d/*.sh; do
    name=$(basename "$part" .sh)
    say "demo: starting part $name"
    # A separate bash, so that `set -e` holds inside the part (it would not inside
    # `if ( ... )`). Its output goes to a file, not a pipe: a daemon that inherits the part's
    # stdout must not keep a caller's pipe (`scripts/demo.sh | tee`) open.
    local rc=0
    (cd "$RUN" && bash -euo pipefail -c '. "$1"' part "$part") > "$RUN/part-$name.out" 2>&1 < /dev/null || rc=$?
    sed "s/^/  [$name] /" "$RUN/part-$name.out"
    if [ "$rc" -eq 0 ]; then
      say "demo: part $name started"
    else
      say "demo: part $name FAILED to start (logs in $RUN/); continuing with the rest"
      failed+=("$name")
    fi
  done

  write_configs
  promtool check config "$RUN/prometheus.yml" > "$RUN/promtool-check.log" 2>&1 \
    || { cat "$RUN/promtool-check.log"; say "demo: generated prometheus.yml is invalid"; return 1; }
  amtool check-config "$RUN/alertmanager.yml" > "$RUN/amtool-check.log" 2>&1 \
    || { cat "$RUN/amtool-check.log"; say "demo: generated alertmanager.yml is invalid"; return 1; }

  say "demo: starting Alertmanager on 127.0.0.1:$AM_PORT"
  demo_spawn alertmanager prometheus-alertmanager \
    --config.file="$RUN/alertmanager.yml" --storage.path="$RUN/alertmanager-data" \
    --web.listen-address="127.0.0.1:$AM_PORT" --web.external-url="http://127.0.0.1:$AM_PORT" \
    --cluster.listen-address=
  demo_wait_http "http://127.0.0.1:$AM_PORT/-/ready" alertmanager 30
  say "demo: starting Prometheus on 127.0.0.1:$PROM_PORT"
  demo_spawn prometheus prometheus \
    --config.file="$RUN/prometheus.yml" --storage.tsdb.path="$RUN/prometheus-data" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --web.external-url="http://127.0.0.1:$PROM_PORT" \
    --web.enable-lifecycle --rules.alert.resend-delay=1s
  demo_wait_http "http://127.0.0.1:$PROM_PORT/-/ready" prometheus 30

  # Give Prometheus one scrape round so the status shows real target health.
  local i
  for ((i = 0; i < 100; i++)); do
    if curl -s "http://127.0.0.1:$PROM_PORT/api/v1/targets?state=active" \
      | python3 -c 'import json,sys; t=json.load(sys.stdin)["data"]["activeTargets"]; sys.exit(0 if t and all(x["health"]!="unknown" for x in t) else 1)' 2>/dev/null; then
      break
    fi
    sleep 0.1
  done

  say ""
  say "hpcmon demo is up ($((SECONDS - t0))s); everything listens on 127.0.0.1 only."
  say "  Prometheus                   http://127.0.0.1:$PROM_PORT/classic/graph"
  say "  Prometheus targets           http://127.0.0.1:$PROM_PORT/classic/targets"
  say "  Prometheus alerts            http://127.0.0.1:$PROM_PORT/classic/alerts"
  say "  Prometheus API               http://127.0.0.1:$PROM_PORT/api/v1/query?query=up"
  say "  Alertmanager API             http://127.0.0.1:$AM_PORT/api/v2/alerts"
  [ -s "$RUN/urls" ] && sed 's/^/  /' "$RUN/urls"
  say "  State, configs and logs      $RUN"
  say ""
  status || true
  if [ ${#failed[@]} -gt 0 ]; then
    say ""
    say "demo: these parts FAILED to start: ${failed[*]} (see their logs in $RUN/)"
  fi
  say "Stop with: scripts/demo.sh stop"
}

case "${1:-start}" in
  start) start ;;
  stop) stop_all ;;
  status) status ;;
  *) say "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
