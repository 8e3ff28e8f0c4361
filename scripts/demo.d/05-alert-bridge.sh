# Demo part: hpcmon-alert-bridge on 127.0.0.1:19780 with its alert log in SQLite
# ($RUN/alerts.db). The demo's Alertmanager sends every notification to
# http://127.0.0.1:19780/webhook; the log is the page at http://127.0.0.1:19780/.
# DEMO_BRIDGE_STORE=mariadb stores the log in a MariaDB of its own instead
# (alert-bridge/scripts/mariadb.sh, 127.0.0.1:19306, data in $RUN/mariadb), with the
# alertsnitch-compatible tables OpenSCOW's alarm log (告警日志) reads through Grafana's
# `AlarmDB-MySQL` datasource and a read-only `openscow` account for it; the part prints the
# Grafana provisioning path for OpenSCOW.
# Sourced by scripts/demo.sh (see its header for ROOT, BIN, RUN and the demo_* functions).
# deps: mariadb
case "${DEMO_BRIDGE_STORE:-sqlite}" in
sqlite)
  store=(--storage.url="sqlite://$RUN/alerts.db")
  ;;
mariadb)
  mdb=$RUN/mariadb
  "$ROOT/alert-bridge/scripts/mariadb.sh" start "$mdb" 19306
  demo_track "$(cat "$mdb/mariadbd.fg.pid")" mariadb
  url_file=$("$ROOT/alert-bridge/scripts/mariadb.sh" createdb "$mdb" alerts)
  store=(--storage.url-file="$url_file")
  ;;
*)
  echo "DEMO_BRIDGE_STORE must be sqlite or mariadb" >&2
  exit 2
  ;;
esac
demo_spawn alert-bridge "$BIN/hpcmon-alert-bridge" \
  --web.listen-address=127.0.0.1:19780 \
  "${store[@]}" \
  --reconcile.alertmanager-url=http://127.0.0.1:19093 \
  --retention=30d
demo_scrape alert-bridge 127.0.0.1:19780
demo_url "alert log (alert bridge)" "http://127.0.0.1:19780/"
demo_url "alert log API" "http://127.0.0.1:19780/api/v1/alerts"
demo_wait_http http://127.0.0.1:19780/-/ready alert-bridge 30
if [ "${DEMO_BRIDGE_STORE:-sqlite}" = mariadb ]; then
  # The bridge has created the alertsnitch tables: grant OpenSCOW's account SELECT on them.
  ro_password=$("$ROOT/alert-bridge/scripts/mariadb.sh" readonly "$mdb" alerts openscow)
  grafana=$ROOT/alert-bridge/openscow/grafana
  echo "alert log in MariaDB 127.0.0.1:19306, database alerts (socket $mdb/mysqld.sock)"
  echo "OpenSCOW: Grafana provisioning in $grafana/provisioning (datasource AlarmDB-MySQL:"
  echo "  url 127.0.0.1:19306, database alerts, user openscow, password in $ro_password);"
  echo "  Grafana settings in $grafana/grafana.ini, mis.yaml keys in $ROOT/alert-bridge/openscow/mis.yaml"
  demo_url "OpenSCOW Grafana provisioning" "$grafana/provisioning"
  demo_url "OpenSCOW AlarmDB password" "$ro_password"
fi
