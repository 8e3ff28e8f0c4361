# Demo part: hpcmon-actions on 127.0.0.1:19781 with the shipped policy (actions/policy.yml,
# the ACMS room-temperature tiers) in DRY-RUN: Alertmanager sends it every notification, and
# its journal page shows what the policy would do (the exact scontrol/scancel commands), with
# nothing changed. The journal is $RUN/actions/journal.db.
# Sourced by scripts/demo.sh (see its header for ROOT, BIN, RUN and the demo_* functions).
D=$RUN/actions
mkdir -p "$D"
chmod 700 "$D"
export SLURM_CONF=${SLURM_CONF:-$RUN/slurm/etc/slurm.conf}
args=(
  --web.listen-address=127.0.0.1:19781
  --policy.file="$ROOT/actions/policy.yml"
  --storage.path="$D/journal.db"
  --dry-run
)
# The demo's simulated BMCs (scripts/demo.d/20-ipmi.sh) stand for nodes n1 and n2.
if [ -f "$RUN/ipmi/ipmi.yml" ] && [ -d "$RUN/ipmi/sim" ]; then
  printf 'n1 127.0.0.1:22940\nn2 127.0.0.1:22942\n' > "$D/bmcs.txt"
  args+=(--ipmi.config.file="$RUN/ipmi/ipmi.yml" --ipmi.module=sim --ipmi.bmc-map="$D/bmcs.txt")
fi
"$BIN/hpcmon-actions" check-policy "$ROOT/actions/policy.yml"
demo_spawn actions "$BIN/hpcmon-actions" "${args[@]}"
demo_webhook http://127.0.0.1:19781/webhook
demo_scrape hpcmon-actions 127.0.0.1:19781
demo_wait_http http://127.0.0.1:19781/-/ready actions 20
demo_url "actions journal (dry-run)" "http://127.0.0.1:19781/"
demo_url "actions API" "http://127.0.0.1:19781/api/v1/actions"
demo_url "actions: heat the room" "for i in 1 2; do IPMI_SIM_DIR=$RUN/ipmi/sim IPMI_SIM_BASE_PORT=22940 scripts/ipmi-sim.sh console \$i 'sensor_set_value 0x20 0 4 37 1'; done"
