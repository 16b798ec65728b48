#!/usr/bin/env bash
# The project's test command: installs ZeroC Ice 3.7 from Debian's packages when
# missing, fetches ZeroC's source tree (its Slice corpus is a test oracle), then
# builds and tests the whole workspace. Exits non-zero on any failure.
#
# Environment:
#   CARGO_TARGET_DIR   where cargo builds (cargo's default when unset)
#   FLOE_JOBS          parallel jobs for cargo and tests (default: number of CPUs, at most 2)
#   FLOE_SKIP_APT=1    never run apt-get (fail if a package is missing)
#   FLOE_ICE_SOURCE    an unpacked zeroc-ice source tree to use instead of fetching one
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf '\nscripts/test.sh: error: %s\n' "$*" >&2; exit 1; }

started=$(date +%s)
on_exit() {
  local rc=$?
  if [ "$rc" != 0 ]; then
    printf '\nscripts/test.sh: FAILED (exit %s) after %ss\n' "$rc" "$(( $(date +%s) - started ))" >&2
  fi
}
trap on_exit EXIT

# --- ZeroC Ice from Debian -------------------------------------------------
packages=(python3-zeroc-ice zeroc-ice-compilers zeroc-ice-slice zeroc-icebox
          libzeroc-icestorm3.7 libzeroc-ice-dev dpkg-dev g++
          zeroc-icegrid python3-cryptography tmux chromium chromium-driver)

installed() {
  [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | cut -c1-2)" = "ii" ]
}

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  [ "${FLOE_SKIP_APT:-0}" = 1 ] && die "missing Debian packages: ${missing[*]} (FLOE_SKIP_APT=1 forbids installing them); run: apt-get install -y ${missing[*]}"
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "missing Debian packages: ${missing[*]}; run as root or install them with: apt-get install -y ${missing[*]}"
    sudo=(sudo)
  fi
  say "installing ${missing[*]}"
  "${sudo[@]}" apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  for p in "${missing[@]}"; do
    installed "$p" || die "package $p is still not installed after apt-get install"
  done
fi

/usr/bin/python3 -c 'import Ice' \
  || die "'/usr/bin/python3 -c \"import Ice\"' failed: install the Debian package python3-zeroc-ice"
command -v slice2py >/dev/null \
  || die "slice2py not found: install the Debian package zeroc-ice-compilers"
slice2py --version >/dev/null 2>&1 \
  || die "'slice2py --version' failed: reinstall the Debian package zeroc-ice-compilers"
[ -f /usr/share/ice/slice/Ice/Identity.ice ] \
  || die "/usr/share/ice/slice/Ice/Identity.ice is missing: install the Debian package zeroc-ice-slice"
say "ZeroC Ice $(slice2py --version 2>&1) present"

# --- ZeroC's source tree (test corpus) --------------------------------------
if [ -n "${FLOE_ICE_SOURCE:-}" ] && [ -d "$FLOE_ICE_SOURCE/cpp/test/Slice/errorDetection" ]; then
  say "using the ZeroC Ice source tree given in FLOE_ICE_SOURCE"
else
  say "fetching ZeroC Ice source into build/ice-src"
  FLOE_ICE_SOURCE=$(bash tests/tools/fetch-ice-source.sh "$root/build/ice-src") \
    || die "could not fetch the zeroc-ice source package (see messages above)"
fi
[ -d "$FLOE_ICE_SOURCE/cpp/test/Slice/errorDetection" ] \
  || die "fetched tree $FLOE_ICE_SOURCE has no cpp/test/Slice/errorDetection"
export FLOE_ICE_SOURCE
say "FLOE_ICE_SOURCE=$FLOE_ICE_SOURCE"

# --- Rust --------------------------------------------------------------------
if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null \
  || die "cargo not found: install Rust (>= the workspace rust-version) with rustup: https://rustup.rs"

# A one-off build gains nothing from incremental state, which would double the disk it takes.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

cpus=$(nproc 2>/dev/null || echo 2)
jobs=${FLOE_JOBS:-$(( cpus < 2 ? cpus : 2 ))}

say "cargo build --workspace --all-targets (-j $jobs)"
cargo build --workspace --all-targets -j "$jobs"

say "cargo check of the fuzz targets (fuzz/, outside the workspace; stable, without libFuzzer)"
cargo check --manifest-path fuzz/Cargo.toml --no-default-features --bins -j "$jobs"

say "cargo test --workspace (-j $jobs, $jobs test threads)"
cargo test --workspace --no-fail-fast -j "$jobs" -- --test-threads="$jobs"

say "all tests passed in $(( $(date +%s) - started ))s"
