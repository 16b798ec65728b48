#!/usr/bin/env bash
# Dispotify against the disk and against nginx, same run, same machine:
#
# - upload MB/s of a 50 MB WAV with R=3, over HTTP and over Ice, against the floor of writing
#   the same bytes 3 times (each fsynced) to the cluster's disk;
# - streaming MB/s over HTTP (`GET /music/stream/{id}`) from a node holding a replica and from
#   one holding none, against Debian's nginx serving the same file (sendfile on), fetched by the
#   same client code;
# - search latency p50/p99 over 100,000 synthetic songs (a SearchIndex, and the cluster's
#   catalog over HTTP).
#
# It installs Debian's nginx when missing (after apt-get update), builds bench/dispotify/ (a
# cargo workspace of its own, release), and runs `dispotify-bench`, which starts a users manager
# and 4 Dispotify nodes (R=3) in its own process and nginx as a child, in a temporary
# directory; the tables (Markdown, with ratios) go to stdout. Everything is removed on exit.
#
# Usage: bash bench/dispotify.sh [RUNS (default 3)]
# Environment: CARGO_TARGET_DIR (default /work/target-bench), JOBS (cargo -j; default 1 while
#              another cargo or rustc runs, else the number of cores), BENCH_ARGS (more
#              arguments for dispotify-bench, e.g. "--size-mb 5 --catalog-songs 10000"),
#              TMPDIR (where the cluster's data and the files go: the disk measured).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
runs=${1:-3}

die() { printf 'bench/dispotify.sh: %s\n' "$*" >&2; exit 1; }
note() { printf '== %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || die "cargo not found: install Rust with rustup"

nginx=$(command -v nginx || true)
[ -z "$nginx" ] && [ -x /usr/sbin/nginx ] && nginx=/usr/sbin/nginx
if [ -z "$nginx" ]; then
  [ "$(id -u)" = 0 ] || die "nginx is missing: run as root, or apt-get install -y nginx"
  note "installing nginx"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
  nginx=$(command -v nginx || echo /usr/sbin/nginx)
  [ -x "$nginx" ] || die "nginx installed but not found"
  # The package starts a system nginx on port 80 where it can; this benchmark starts its own.
  if command -v systemctl >/dev/null; then systemctl stop nginx >/dev/null 2>&1 || true; fi
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-bench}
if [ -z "${JOBS:-}" ]; then
  if pgrep -x cargo >/dev/null || pgrep -x rustc >/dev/null; then JOBS=1; else JOBS=$(nproc); fi
fi
note "building bench/dispotify (release, -j$JOBS, target $CARGO_TARGET_DIR)"
cargo build --release --quiet -j "$JOBS" --manifest-path "$here/dispotify/Cargo.toml"
bin="$CARGO_TARGET_DIR/release/dispotify-bench"

work=$(mktemp -d "${TMPDIR:-/tmp}/dispotify-bench.XXXXXX")
chmod 755 "$work"   # nginx's workers run as another user
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  # nginx is the bench's child; should the bench have died, stop the nginx of this directory.
  if [ -f "$work/run/nginx/nginx.pid" ]; then
    kill "$(cat "$work/run/nginx/nginx.pid")" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

note "commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)'), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r)"
note "before: $(uptime)"
# shellcheck disable=SC2086
"$bin" --runs "$runs" --dir "$work/run" --nginx "$nginx" ${BENCH_ARGS:-} &
pid=$!
status=0
wait "$pid" || status=$?
pid=""
note "after: $(uptime)"
exit "$status"
