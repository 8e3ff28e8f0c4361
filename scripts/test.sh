#!/usr/bin/env bash
# Runs every test of hpcmon: the one command named in the README (and called by .ci/run).
#
#   scripts/test.sh
#
# Steps: install the Debian packages the tests need, rustfmt check, clippy (-D warnings),
# build every binary, `cargo test --workspace`, the rule checks (promtool), the dashboard
# checks, then every executable scripts/test.d/*.sh in name order (other components' checks).
# A failing step does not stop the others; the last line is "N passed, N failed" and the
# exit status is non-zero when any step failed. Works on a fresh Debian 12 machine with
# only Rust installed; needs root or sudo for the package install.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# A run of the whole suite gains nothing from incremental caches, which take tens of GB for
# this workspace's test binaries: off unless the caller sets it.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
# Keep test output readable and failures explained.
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}

passed=0
failed=0
failed_steps=()
step_times=()
t_all=$SECONDS

step() { # NAME CMD...
  local name=$1; shift
  local t0=$SECONDS rc=0
  echo
  echo "==> $name"
  "$@" || rc=$?
  local dt=$((SECONDS - t0))
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    echo "<== PASS $name (${dt}s)"
  else
    failed=$((failed + 1))
    failed_steps+=("$name")
    echo "<== FAIL $name (exit $rc, ${dt}s)"
  fi
  step_times+=("$(printf '%5ss  %s  %s' "$dt" "$([ "$rc" -eq 0 ] && echo PASS || echo FAIL)" "$name")")
}

toolchain() {
  command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs)" >&2; return 1; }
  if command -v rustup >/dev/null; then
    local missing=()
    cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
    cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
    if [ ${#missing[@]} -gt 0 ]; then rustup component add "${missing[@]}"; fi
  fi
  cargo --version && cargo fmt --version && cargo clippy --version
}

step "install Debian packages (scripts/install-deps.sh all)" scripts/install-deps.sh all
step "rust toolchain (rustfmt, clippy)" toolchain
step "cargo fmt --all --check" cargo fmt --all --check
step "cargo clippy --workspace --all-targets -- -D warnings" \
  cargo clippy --workspace --all-targets -- -D warnings
step "cargo build --workspace --bins" cargo build --workspace --bins
step "cargo test --workspace" cargo test --workspace --no-fail-fast
step "scripts/check-rules.sh" scripts/check-rules.sh
step "scripts/check-dashboards.sh" scripts/check-dashboards.sh
step "scripts/check-dashboards-schema.sh" scripts/check-dashboards-schema.sh
shopt -s nullglob
for t in scripts/test.d/*.sh; do
  [ -x "$t" ] || { echo "(skipping $t: not executable)"; continue; }
  step "$t" "$t"
done

echo
echo "Step times:"
printf '%s\n' "${step_times[@]}"
echo "Total: $((SECONDS - t_all))s"
if [ "$failed" -gt 0 ]; then
  echo "Failed steps:"
  printf '  %s\n' "${failed_steps[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
