# Demo part: hpcmon-alert-bridge on 127.0.0.1:19780 with its alert log in SQLite
# ($RUN/alerts.db). The demo's Alertmanager sends every notification to
# http://127.0.0.1:19780/webhook; the log is the page at http://127.0.0.1:19780/.
# Sourced by scripts/demo.sh (see its header for ROOT, BIN, RUN and the demo_* functions).
demo_spawn alert-bridge "$BIN/hpcmon-alert-bridge" \
  --web.listen-address=127.0.0.1:19780 \
  --storage.url="sqlite://$RUN/alerts.db" \
  --retention=30d
demo_scrape alert-bridge 127.0.0.1:19780
demo_url "alert log (alert bridge)" "http://127.0.0.1:19780/"
demo_url "alert log API" "http://127.0.0.1:19780/api/v1/alerts"
demo_wait_http http://127.0.0.1:19780/-/ready alert-bridge 30
