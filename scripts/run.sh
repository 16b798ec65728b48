#!/usr/bin/env bash
# The main job on embedded defaults: the users manager service as a cluster on loopback
# (`usersmanager cluster --instances 3`: an in-process icestorm-lite broker and three instances),
# then a walkthrough against it (`usersmanager demo`): a user created on instance A logs in
# through B, is verified through C, refreshes its session and is removed through B. The
# cluster keeps its users in a temporary directory and stops at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || { echo "run.sh: cargo not found: install Rust with rustup" >&2; exit 1; }

cargo build -q -p usersmanager
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$PWD/$target" ;; esac
bin="$target/debug/usersmanager"

work=$(mktemp -d)
cluster=
cleanup() {
  [ -n "$cluster" ] && kill "$cluster" 2>/dev/null && wait "$cluster" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" cluster --instances 3 --data-dir "$work/data" >"$work/managers" 2>"$work/cluster.log" &
cluster=$!

# Wait for the three Manager proxies.
for _ in $(seq 1 100); do
  [ "$(wc -l <"$work/managers")" -ge 3 ] && break
  kill -0 "$cluster" 2>/dev/null || { cat "$work/cluster.log" >&2; echo "run.sh: the cluster did not start" >&2; exit 1; }
  sleep 0.1
done
mapfile -t managers <"$work/managers"
[ "${#managers[@]}" -ge 3 ] || { cat "$work/cluster.log" >&2; echo "run.sh: the cluster did not print its proxies" >&2; exit 1; }
printf 'instance %s\n' "${managers[@]}"

"$bin" demo "${managers[@]}"
echo "run.sh: three usersmanager instances on one broker served the walkthrough"
