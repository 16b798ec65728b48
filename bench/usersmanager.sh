#!/usr/bin/env bash
# usersmanager benchmark: login + verifySession + refresh calls per second for users held by the
# instance under test, at 1 and 32 concurrent clients, for the Floe instance (release build) and
# for the Python implementation of tests/usersmanager/ (ZeroC Ice for Python), in the same run,
# on loopback. Both instances share one broker (the Floe instance's embedded icestorm-lite); the
# measured operations never use it. The load generator is bench/usersmanager/client.rs.
#
# Mode `all` logs in on every iteration (the password hash dominates: argon2id for Floe, PBKDF2
# for the Python implementation); mode `session` logs in once per client, then loops
# verifySession + refresh.
#
# usage: bash bench/usersmanager.sh [SECONDS]    (default 5 seconds per measurement)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${1:-5}

if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
/usr/bin/python3 -c 'import Ice' || { echo "install python3-zeroc-ice" >&2; exit 1; }

cargo build -q --release -j 2 -p usersmanager --bin usersmanager --example usersmanager-bench
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$PWD/$target" ;; esac
floe_bin="$target/release/usersmanager"
bench_bin="$target/release/examples/usersmanager-bench"

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/floe.config" <<CFG
usersmanageradapter.Endpoints=tcp -h 127.0.0.1 -p 0
IceStorm.TopicManager.Endpoints=tcp -h 127.0.0.1 -p $port
UsersManager.DataDir=$work/floe-data
UsersManager.QueryTimeout=200
CFG
cat >"$work/py.config" <<CFG
usersmanageradapter.Endpoints=tcp -h 127.0.0.1 -p 0
IceStorm.TopicManager.Proxy=IceStorm/TopicManager:tcp -h 127.0.0.1 -p $port
UsersManager.DataDir=$work/py-data
UsersManager.QueryTimeout=200
CFG
mkdir -p "$work/stubs"
slice2py --output-dir "$work/stubs" slice/UsersManager.ice

wait_line() { # file
  for _ in $(seq 1 200); do [ -s "$1" ] && return 0; sleep 0.05; done
  echo "bench: no proxy in $1" >&2; exit 1
}
RUST_LOG=warn "$floe_bin" --Ice.Config="$work/floe.config" >"$work/floe.proxy" 2>"$work/floe.log" &
pids+=($!)
wait_line "$work/floe.proxy"
/usr/bin/python3 tests/usersmanager/usersmanager_py.py "$work/stubs" --Ice.Config="$work/py.config" \
  >"$work/py.proxy" 2>"$work/py.log" &
pids+=($!)
wait_line "$work/py.proxy"

floe=$(head -1 "$work/floe.proxy")
py=$(head -1 "$work/py.proxy")
echo "machine: $(nproc) cores, $(uname -sr); ${seconds}s per measurement"
printf '| implementation | mode | clients | calls/s | login ms | verifySession ms | refresh ms |\n'
printf '| --- | --- | --- | --- | --- | --- | --- |\n'
for mode in all session; do
for clients in 1 32; do
  for impl in floe python; do
    if [ "$impl" = floe ]; then prx=$floe; name="Floe (release)"; else prx=$py; name="Python (ZeroC Ice 3.7)"; fi
    json=$("$bench_bin" "$prx" "$clients" "$seconds" "$impl-$mode-u$clients" "$mode")
    /usr/bin/python3 - "$name" "$mode" "$json" <<'PY'
import json, sys
r = json.loads(sys.argv[3])
print("| %s | %s | %d | %.0f | %.2f | %.2f | %.2f |" % (sys.argv[1], sys.argv[2], r["clients"],
      r["calls_per_s"], r["login_ms"], r["verify_ms"], r["refresh_ms"]))
PY
  done
done
done
