#!/usr/bin/env bash
# floe-raft against etcd, side by side: commit latency p50/p99 and writes per second with 1 and
# 64 concurrent clients, 3 nodes of each on loopback, durable writes on both sides.
#
# It installs Debian's `etcd-server` (and `protobuf-compiler`, which the `etcd-client` crate's
# build needs) when missing, builds `floe-raft-kv` (release) and the load generator bench/raft/
# (a cargo workspace of its own), starts 3 `floe-raft-kv node` processes and a static 3-member
# etcd cluster on loopback, data directories in one temporary directory (same disk for both),
# waits until each has a leader, then runs the same load generator against the leader of each
# in alternating order (floe, etcd, then etcd, floe, ...), ROUNDS rounds per client count, and
# prints every run, the best of each (highest writes/s, lowest p50 and p99), and the ratios.
# Everything it started is killed on exit.
#
# Durability: etcd keeps its default, an fdatasync of its WAL before a write is acknowledged;
# floe-raft acknowledges after sled's flush of the log append (which on Linux is a
# sync_file_range of sled's log, with sled's own fsync every 500 ms: see bench/RESULTS.md).
#
# Each run: CLIENTS concurrent clients, each on a connection of its own to the leader, putting
# 100-byte values to keys of their own one after the other (one in flight per client);
# WARMUP_MS (default 1000) unmeasured, then SECONDS measured. Next to each run, over the whole
# run (warm-up included) and per write: the CPU time of the three server processes together
# (user + system, /proc/PID/stat) and of the load generator, and, when `perf` can count
# syscalls, the flush syscalls (fsync + fdatasync + sync_file_range) of the leader and of a
# follower, and the context switches of the three servers together (`perf stat -p`).
#
# Usage: bash bench/raft.sh [SECONDS (default 5)]
# Environment: CARGO_TARGET_DIR (default target/), ROUNDS (default 2), CLIENTS (default "1 64"),
#              JOBS (cargo -j; default 1 while another cargo runs, else the number of cores),
#              WARMUP_MS, PERF=0 (no syscall counting), KEEP=1 (keep the temporary directory:
#              node logs and data).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
secs=${1:-5}
rounds=${ROUNDS:-2}
client_counts=${CLIENTS:-"1 64"}

die() { printf 'bench/raft.sh: %s\n' "$*" >&2; exit 1; }
note() { printf '== %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || die "cargo not found: install Rust with rustup"
command -v python3 >/dev/null || die "python3 not found (picks free ports): apt-get install -y python3"

missing=()
command -v etcd >/dev/null || missing+=(etcd-server)
command -v protoc >/dev/null || missing+=(protobuf-compiler)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing Debian packages ${missing[*]}: run as root, or apt-get install -y ${missing[*]}"
  note "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  command -v etcd >/dev/null || die "etcd-server installed but no etcd on PATH"
  command -v protoc >/dev/null || die "protobuf-compiler installed but no protoc on PATH"
fi

# Builds: one job while someone else's cargo runs, so that a core stays theirs.
if [ -n "${JOBS:-}" ]; then jobs=$JOBS
elif pgrep -x cargo >/dev/null; then jobs=1
else jobs=$(nproc); fi
target=${CARGO_TARGET_DIR:-$root/target}
case "$target" in /*) ;; *) target="$root/$target" ;; esac
export CARGO_TARGET_DIR="$target"
note "building floe-raft-kv and the load generator (release, -j$jobs, target $target)"
(cd "$root" && cargo build --release --quiet -j "$jobs" -p floe-raft --bin floe-raft-kv)
cargo build --release --quiet -j "$jobs" --manifest-path "$here/raft/Cargo.toml"
kv="$target/release/floe-raft-kv"
load="$target/release/raft-bench-load"

perf_ok=0
if [ "${PERF:-1}" != 0 ] && command -v perf >/dev/null &&
   perf stat -e syscalls:sys_enter_fsync -- true >/dev/null 2>&1; then
  perf_ok=1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/raft-bench.XXXXXX")
pids=()
perf_running=()
cleanup() {
  trap '' INT TERM
  for p in "${perf_running[@]}" "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then note "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Nine free loopback ports: 3 for the floe nodes, 3 etcd client ports, 3 etcd peer ports.
read -r -a ports <<<"$(python3 -c '
import socket
ss = [socket.socket() for _ in range(9)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')"

# floe-raft: 3 initial members (Raft.Peer.*), defaults for heartbeat (100 ms) and election
# timeout (1000 to 2000 ms), as etcd's.
peers=()
for i in 1 2 3; do peers+=("--Raft.Peer.$i=tcp -h 127.0.0.1 -p ${ports[i-1]}"); done
floe_pids=()
for i in 1 2 3; do
  "$kv" node --Raft.NodeId="$i" --Raft.Endpoints="tcp -h 127.0.0.1 -p ${ports[i-1]}" "${peers[@]}" \
    --Raft.DataDir="$work/floe-$i" >"$work/floe-$i.out" 2>"$work/floe-$i.log" &
  pids+=($!); floe_pids+=($!)
done

# etcd: a static 3-member cluster; heartbeat 100 ms and election timeout 1000 ms are its
# defaults, and so is an fdatasync of the WAL before a write is acknowledged.
cluster=""
for i in 1 2 3; do cluster+="${cluster:+,}e$i=http://127.0.0.1:${ports[i+5]}"; done
etcd_pids=()
etcd_urls=()
for i in 1 2 3; do
  url="http://127.0.0.1:${ports[i+2]}"
  etcd --name "e$i" --data-dir "$work/etcd-$i" \
    --listen-client-urls "$url" --advertise-client-urls "$url" \
    --listen-peer-urls "http://127.0.0.1:${ports[i+5]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${ports[i+5]}" \
    --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token raft-bench \
    --logger zap --log-outputs stderr >"$work/etcd-$i.out" 2>"$work/etcd-$i.log" &
  pids+=($!); etcd_pids+=($!)
  etcd_urls+=("$url")
done

floe_proxies=()
for i in 1 2 3; do
  proxy=""
  for _ in $(seq 1 200); do
    proxy=$(sed -n 's/^ready //p' "$work/floe-$i.out")
    [ -n "$proxy" ] && break
    kill -0 "${floe_pids[i-1]}" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$proxy" ] || { cat "$work/floe-$i.log" >&2; die "floe-raft-kv node $i did not start"; }
  floe_proxies+=("$proxy")
done
note "floe-raft-kv nodes: ${floe_proxies[*]}"
leader=$("$load" leader floe "${floe_proxies[@]}") ||
  { tail -n 20 "$work"/floe-*.log >&2; die "floe-raft-kv has no leader"; }
note "floe-raft leader: $leader"
note "etcd members: ${etcd_urls[*]}"
leader=$("$load" leader etcd "${etcd_urls[@]}") ||
  { tail -n 20 "$work"/etcd-*.log >&2; die "etcd has no leader"; }
note "etcd leader: $leader"

# CPU ticks (user + system) of the given processes.
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
hz=$(getconf CLK_TCK)

# measure SYSTEM CLIENTS: one run of the load generator; appends its line to $work/results with,
# over the whole run: the servers' CPU µs per write (3 nodes together), and when perf works, the
# flush syscalls (fsync + fdatasync + sync_file_range) per write of the leader and of a follower
# (mean of the two), and the servers' context switches per write (3 nodes together).
measure() {
  local system=$1 clients=$2 line i
  local -a endpoints server_pids
  if [ "$system" = floe ]; then endpoints=("${floe_proxies[@]}"); server_pids=("${floe_pids[@]}")
  else endpoints=("${etcd_urls[@]}"); server_pids=("${etcd_pids[@]}"); fi
  if [ "$perf_ok" = 1 ]; then
    for i in 0 1 2; do
      perf stat -x, -o "$work/perf-$i" -p "${server_pids[i]}" -e context-switches \
        -e syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync,syscalls:sys_enter_sync_file_range &
      perf_running+=($!)
    done
    sleep 0.3
  fi
  local t0; t0=$(ticks "${server_pids[@]}")
  line=$("$load" run "$system" "$clients" "$secs" "${endpoints[@]}")
  local t1; t1=$(ticks "${server_pids[@]}")
  local total leader
  total=$(sed -n 's/.* puts_total=\([0-9]*\).*/\1/p' <<<"$line")
  leader=$(sed -n 's/.* leader_index=\([0-9]*\).*/\1/p' <<<"$line")
  local cpu_us leader_syncs=- follower_syncs=- switches=-
  cpu_us=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$total" 'BEGIN { printf "%.1f", n ? d * 1e6 / hz / n : 0 }')
  if [ ${#perf_running[@]} -gt 0 ]; then
    for i in 0 1 2; do kill -INT "${perf_running[i]}" 2>/dev/null || true; done
    for i in 0 1 2; do wait "${perf_running[i]}" 2>/dev/null || true; done
    perf_running=()
    local syncs=() cs=0 n
    for i in 0 1 2; do
      syncs[i]=$(awk -F, '$3 ~ /^syscalls:/ { n += $1 } END { print n + 0 }' "$work/perf-$i")
      n=$(awk -F, '$3 == "context-switches" { n += $1 } END { print n + 0 }' "$work/perf-$i")
      cs=$((cs + n))
    done
    local f=0; for i in 0 1 2; do [ "$i" = "$leader" ] || f=$((f + syncs[i])); done
    leader_syncs=$(awk -v s="${syncs[leader]}" -v n="$total" 'BEGIN { printf "%.2f", n ? s / n : 0 }')
    follower_syncs=$(awk -v s="$f" -v n="$total" 'BEGIN { printf "%.2f", n ? s / 2 / n : 0 }')
    switches=$(awk -v s="$cs" -v n="$total" 'BEGIN { printf "%.1f", n ? s / n : 0 }')
  fi
  line="$line server_cpu_us_per_write=$cpu_us leader_flushes_per_write=$leader_syncs"
  line="$line follower_flushes_per_write=$follower_syncs server_switches_per_write=$switches"
  printf '%s\n' "$line" >>"$work/results"
  printf '%s\n' "$line" >&2
}

# What else runs: the load average, and other cargo and rustc processes (someone's build).
machine() {
  printf 'load average %s; other cargo/rustc processes: %s' "$(cut -d' ' -f1-3 /proc/loadavg)" \
    "$( (pgrep -x cargo; pgrep -x rustc) | wc -l)"
}
note "before: $(machine)"
for clients in $client_counts; do
  for r in $(seq 1 "$rounds"); do
    if [ $((r % 2)) = 1 ]; then measure floe "$clients"; measure etcd "$clients"
    else measure etcd "$clients"; measure floe "$clients"; fi
  done
done
note "after: $(machine)"

# Leader changes and errors seen in the servers' logs over the whole session.
floe_roles=$(cat "$work"/floe-*.log | grep -c 'floe_raft::election' || true)
etcd_elections=$(cat "$work"/etcd-*.log | grep -c 'elected leader' || true)
floe_warn=$(cat "$work"/floe-*.log | grep -cE ' (WARN|ERROR) ' || true)
note "floe-raft-kv logs: $floe_roles role lines (floe_raft::election), $floe_warn WARN/ERROR lines"
note "etcd logs: $etcd_elections 'elected leader' lines"
if [ "$floe_warn" != 0 ]; then
  cat "$work"/floe-*.log | grep -E ' (WARN|ERROR) ' | head -10 >&2
fi

printf '\nfloe-raft (floe-raft-kv) vs etcd %s: 3 nodes on loopback, %s s per run after %s ms warm-up, %s rounds, %s cores\n\n' \
  "$(etcd --version | sed -n 's/^etcd Version: //p')" "$secs" "${WARMUP_MS:-1000}" "$rounds" "$(nproc)"
printf '| system | clients | writes/s | p50 µs | p99 µs | max µs | errors | term before → after | server CPU µs/write | client CPU µs/write | leader flushes/write | follower flushes/write | server context switches/write |\n'
printf '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n'
awk '{
  for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
  printf "| %s | %s | %s | %s | %s | %s | %s | %s → %s | %s | %s | %s | %s | %s |\n", (f["system"] == "floe" ? "floe-raft" : "etcd"),
    f["clients"], f["writes_per_s"], f["p50_us"], f["p99_us"], f["max_us"], f["errors"],
    f["term_before"], f["term_after"], f["server_cpu_us_per_write"], f["client_cpu_us_per_write"],
    f["leader_flushes_per_write"], f["follower_flushes_per_write"], f["server_switches_per_write"]
}' "$work/results"

printf '\nBest of %s runs (highest writes/s, lowest p50 and p99) and ratios floe-raft/etcd\n\n' "$rounds"
awk '
  {
    for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    k = f["system"] SUBSEP f["clients"]
    if (!(f["clients"] in seen)) { seen[f["clients"]] = 1; order[++n] = f["clients"] }
    w = f["writes_per_s"] + 0; p50 = f["p50_us"] + 0; p99 = f["p99_us"] + 0
    if (!(k in tput) || w > tput[k]) tput[k] = w
    if (!(k in l50) || p50 < l50[k]) l50[k] = p50
    if (!(k in l99) || p99 < l99[k]) l99[k] = p99
  }
  END {
    printf "| system | clients | writes/s | p50 µs | p99 µs |\n| --- | --- | --- | --- | --- |\n"
    for (i = 1; i <= n; i++) {
      c = order[i]
      printf "| floe-raft | %s | %d | %d | %d |\n", c, tput["floe", c], l50["floe", c], l99["floe", c]
      printf "| etcd | %s | %d | %d | %d |\n", c, tput["etcd", c], l50["etcd", c], l99["etcd", c]
    }
    printf "\n| clients | writes/s floe/etcd (aim ≥ 1) | p50 floe/etcd (aim ≤ 1) | p99 floe/etcd (aim ≤ 1) |\n| --- | --- | --- | --- |\n"
    for (i = 1; i <= n; i++) {
      c = order[i]
      printf "| %s | %.2f | %.2f | %.2f |\n", c,
        tput["etcd", c] ? tput["floe", c] / tput["etcd", c] : 0,
        l50["etcd", c] ? l50["floe", c] / l50["etcd", c] : 0,
        l99["etcd", c] ? l99["floe", c] / l99["etcd", c] : 0
    }
  }' "$work/results"
