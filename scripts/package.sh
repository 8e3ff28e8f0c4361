#!/usr/bin/env bash
# Builds the .deb and .rpm packages of every hpcmon binary (packaging/README.md says what is
# in them):
#
#   scripts/package.sh [--glibc 2.28] [--no-build] [--profile P] [--fast] [--out DIR] [PACKAGE...]
#
#   PACKAGE     hpcmon-node-exporter hpcmon-gpu-exporter hpcmon-ipmi-exporter
#               hpcmon-slurm-exporter hpcmon-alert-bridge hpcmon-jobstats hpcmon-actions
#               (default: all)
#   --glibc V   link against glibc V's symbols (cargo-zigbuild with Zig, both from PyPI), so
#               that the binaries run on older systems: 2.28 covers RHEL 8 (see
#               packaging/README.md; below 2.30 the kit supplies gettid itself).
#               Without it the binaries need the build machine's glibc or newer (the
#               packages' dependencies say which: libc6 (>= 2.xx), libc.so.6(GLIBC_2.xx)).
#   --no-build  package the binaries already built (`cargo build --release`, or see --profile)
#   --profile P take the binaries of cargo profile P (default release; `dev` packages the debug
#               binaries of `cargo build`: the package test does, to keep CI's time down)
#   --fast      quicker, larger compression (xz -1 for the .deb, gzip for the .rpm)
#   --out DIR   where the packages go (default target/packages)
#
# Tools: cargo-deb and cargo-generate-rpm, pinned, installed once with `cargo install --locked`
# into $HPCMON_PACKAGE_TOOLS (default ~/.cache/hpcmon/package-tools, outside the work tree so
# that every checkout and CI run on this machine reuses them; ~5-10 minutes on 2 cores the
# first time). Binaries are built with the release profile, their debug info stripped (symbol
# names kept for backtraces), and the same stripped copies go into both formats.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
ALL=(hpcmon-node-exporter hpcmon-gpu-exporter hpcmon-ipmi-exporter hpcmon-slurm-exporter
  hpcmon-alert-bridge hpcmon-jobstats hpcmon-actions)
CARGO_DEB_VERSION=3.8.0
CARGO_GENERATE_RPM_VERSION=0.21.1
ZIGLANG_VERSION=0.15.2
CARGO_ZIGBUILD_VERSION=0.24.1
TOOLS=${HPCMON_PACKAGE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/hpcmon/package-tools}

glibc="" build=1 out="$ROOT/target/packages" pkgs=() profile=release fast=0
while [ $# -gt 0 ]; do
  case "$1" in
    --glibc) glibc=${2:?--glibc needs a version, e.g. 2.28}; shift 2 ;;
    --glibc=*) glibc=${1#*=}; shift ;;
    --no-build) build=0; shift ;;
    --profile) profile=${2:?--profile needs a cargo profile}; shift 2 ;;
    --profile=*) profile=${1#*=}; shift ;;
    --fast) fast=1; shift ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --out=*) out=${1#*=}; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    -*) echo "package.sh: unknown option $1" >&2; exit 2 ;;
    *) pkgs+=("$1"); shift ;;
  esac
done
[ ${#pkgs[@]} -gt 0 ] || pkgs=("${ALL[@]}")
for p in "${pkgs[@]}"; do
  case " ${ALL[*]} " in *" $p "*) ;; *) echo "package.sh: unknown package $p (one of: ${ALL[*]})" >&2; exit 2 ;; esac
done
case "$glibc" in ''|2.[0-9][0-9]) ;; *) echo "package.sh: --glibc takes a version like 2.28" >&2; exit 2 ;; esac
command -v cargo >/dev/null || { echo "package.sh: cargo not found" >&2; exit 1; }
command -v strip >/dev/null || { echo "package.sh: strip not found (binutils)" >&2; exit 1; }

# ---- tools ----
tool_ok() { # BIN VERSION
  [ -x "$TOOLS/bin/$1" ] && "$TOOLS/bin/$1" --version 2>/dev/null | grep -q " $2\$"
}
install_tool() { # CRATE VERSION
  echo "package.sh: installing $1 $2 into $TOOLS (once per machine)"
  # A quick build: the tools' speed hardly matters (xz is C code with its own flags).
  CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_LTO=false \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=64 CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_DIST_OPT_LEVEL=1 CARGO_PROFILE_DIST_LTO=false \
    cargo install --quiet --locked --root "$TOOLS" --target-dir "$TOOLS/build" "$1@$2"
}
tool_ok cargo-deb "$CARGO_DEB_VERSION" || install_tool cargo-deb "$CARGO_DEB_VERSION"
tool_ok cargo-generate-rpm "$CARGO_GENERATE_RPM_VERSION" || install_tool cargo-generate-rpm "$CARGO_GENERATE_RPM_VERSION"
rm -rf "$TOOLS/build"
export PATH="$TOOLS/bin:$PATH"

# Each package's crate folder (cargo-generate-rpm's -p takes the folder).
crate_dir() {
  case "$1" in
    hpcmon-node-exporter) echo exporters/node ;;
    hpcmon-gpu-exporter) echo exporters/gpu ;;
    hpcmon-ipmi-exporter) echo exporters/ipmi ;;
    hpcmon-slurm-exporter) echo exporters/slurm ;;
    hpcmon-alert-bridge) echo alert-bridge ;;
    hpcmon-jobstats) echo jobstats ;;
    hpcmon-actions) echo actions ;;
  esac
}

# Cargo's folder of a profile's binaries.
case "$profile" in dev|test) profdir=debug ;; bench) profdir=release ;; *) profdir=$profile ;; esac

# ---- binaries (each package is the cargo package of the same name, with one binary of that name) ----
build_args=(); for p in "${pkgs[@]}"; do build_args+=(-p "$p" --bin "$p"); done
if [ -n "$glibc" ]; then
  # cargo-zigbuild links against glibc $glibc's symbol versions with Zig's linker.
  ZV="$TOOLS/zig-venv"
  want="ziglang==$ZIGLANG_VERSION cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
  if [ "$(cat "$ZV/.versions" 2>/dev/null)" != "$want" ]; then
    rm -rf "$ZV"
    python3 -m venv "$ZV"
    # shellcheck disable=SC2086
    "$ZV/bin/pip" install --quiet --disable-pip-version-check $want
    echo "$want" > "$ZV/.versions"
  fi
  export PATH="$ZV/bin:$PATH"
  triple=x86_64-unknown-linux-gnu
  bindir="$ROOT/target/$triple/$profdir"
  if [ "$build" = 1 ]; then
    # glibc < 2.30 has no gettid(), which the kit's log formatter links against: the kit
    # then provides it (exporters/kit/src/lib.rs). Its own target dir keeps the flag from
    # invalidating the normal build.
    compat=()
    case "$glibc" in 2.2[0-9]) compat=(--cfg hpcmon_glibc_compat) ;; esac
    RUSTFLAGS="${RUSTFLAGS:-} ${compat[*]}" \
      cargo zigbuild --locked --profile "$profile" --target "$triple.$glibc" "${build_args[@]}"
  fi
else
  bindir="$ROOT/target/$profdir"
  if [ "$build" = 1 ]; then
    cargo build --locked --profile "$profile" "${build_args[@]}"
  fi
fi

# Stripped copies in a staging target dir, which both tools read as their target/release/
# (whatever profile built them).
stage="$ROOT/target/package-stage"
rm -rf "$stage"; mkdir -p "$stage/release" "$out"
for p in "${pkgs[@]}"; do
  [ -x "$bindir/$p" ] || { echo "package.sh: $bindir/$p missing (build first, or drop --no-build)" >&2; exit 1; }
  strip --strip-debug -o "$stage/release/$p" "$bindir/$p"
done

# ---- packages ----
deb_fast=() rpm_compress=xz
if [ "$fast" = 1 ]; then deb_fast=(--fast); rpm_compress=gzip; fi   # xz -1 (cargo-deb's gz is zopfli: slow)
for p in "${pkgs[@]}"; do
  CARGO_TARGET_DIR="$stage" cargo deb --quiet --no-build --no-strip --no-dbgsym "${deb_fast[@]}" \
    -p "$p" -o "$out/"
  CARGO_TARGET_DIR="$stage" cargo generate-rpm -p "$(crate_dir "$p")" --profile release \
    --target-dir "$stage" --payload-compress "$rpm_compress" --auto-req builtin -o "$out/"
done
echo "package.sh: packages in $out:"
( cd "$out" && ls -l ./*.deb ./*.rpm )
echo "package.sh: glibc symbol versions the binaries need (run on a glibc at least this new):"
for p in "${pkgs[@]}"; do
  v=$(objdump -T "$stage/release/$p" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -V -u | tail -1)
  echo "  $p: ${v:-?}"
done
