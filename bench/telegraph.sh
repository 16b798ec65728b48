#!/usr/bin/env bash
# Telegraph's messaging against the bare Floe round trip and mosquitto, in one run: message
# latency p50/p99 and messages per second between client pairs (1 pair and 16), encryption on;
# register, login and lookup calls per second on the managers (1 and 16 callers).
#
# It builds the load generator bench/telegraph/ (release; a cargo workspace of its own),
# installs Debian's `mosquitto` when missing, starts a mosquitto broker on 127.0.0.1 (a free
# port, persistence off, TCP_NODELAY) and a cluster of 3 Telegraph managers (in a process of
# their own: `telegraph-bench cluster`, default timings), then runs, ROUNDS times, alternating
# the order of the sides from one round to the next:
#
#   telegraph  each pair's sender sends a 100-byte text to its receiver one at a time
#              (`Client::send` -> the receiver's `Event::Received`): sealed and signed per
#              docs/telegraph-crypto.md, written and flushed to the sender's sled store before
#              `send` returns and to the receiver's before it acknowledges;
#   mqtt       mosquitto carrying payloads of the same size as the sealed envelope (the
#              encoded `Telegraph::Envelope`), published with QoS 1 to a topic the receiver
#              subscribes to with QoS 1, publish -> receive; no encryption, no disk;
#   mqttseal   the same, with the sender sealing and the receiver opening each message with
#              Telegraph's own crypto (so end-to-end encryption on both sides);
#   floor      the bare Floe round trip: `Inbox.deliver` of the same envelope to a servant that
#              does nothing (one Floe communicator per end);
#   ping       `ice_ping` over the same connection setup.
#
# N pairs are N processes of the load generator, each holding one sender and its receiver
# (its own clients, communicators and stores), started together and measuring over the same
# SECONDS (a file barrier); their latencies are merged and their rates added. (Not 16 pairs in
# one process: Telegraph's store flushes with sled 0.34's flush_async, which hangs for ever
# once 7 flushes wait at once in one process; the `fanin` line of the table checks it.)
#
# Then the managers (`managers`: 1 and 16 callers, register / login / lookup), the pieces of
# one message measured alone (`parts`: seal, open, each side's store write + flush), and the
# flush hang (`fanin`: 6 and 7 concurrent receivers' writes on one store).
#
# Each figure is the best of the ROUNDS (lowest latency, highest rate); ratios are computed
# from those. Everything it started is killed on exit.
#
# Usage: bash bench/telegraph.sh [SECONDS (default 5)]
# Environment: CARGO_TARGET_DIR (default /work/target-bench), ROUNDS (default 2),
#              PAIRS (default "1 16"), JOBS (cargo -j; default 1 while another cargo or rustc
#              runs, else the number of cores), KEEP=1 (keep the temporary directory).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
secs=${1:-5}
rounds=${ROUNDS:-2}
pair_counts=${PAIRS:-"1 16"}
target=${CARGO_TARGET_DIR:-/work/target-bench}

die() { printf 'bench/telegraph.sh: %s\n' "$*" >&2; exit 1; }
note() { printf '== %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
export PATH="$PATH:/usr/sbin:/sbin"
command -v cargo >/dev/null || die "cargo not found: install Rust with rustup"
command -v python3 >/dev/null || die "python3 not found (free ports, the table): apt-get install -y python3"

if ! command -v mosquitto >/dev/null; then
  note "installing mosquitto (Debian)"
  apt-get update -qq
  # No daemon started by the package: this script runs its own broker.
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  command -v mosquitto >/dev/null || die "mosquitto did not install"
fi

if [ -n "${JOBS:-}" ]; then jobs=$JOBS
elif pgrep -x cargo >/dev/null || pgrep -x rustc >/dev/null; then jobs=1
else jobs=$(nproc); fi
commit=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
# What was built: the work tree, which may hold uncommitted changes of the measured crates.
dirty=$(git -C "$here/.." status --porcelain -- services/telegraph runtime raft icestorm-lite codegen 2>/dev/null | wc -l)
[ "$dirty" = 0 ] || commit="$commit + $dirty uncommitted file(s) in the measured crates"
note "building bench/telegraph (release, -j$jobs, target $target)"
cargo build --release --quiet -j"$jobs" --manifest-path "$here/telegraph/Cargo.toml" --target-dir "$target"
bin="$target/release/telegraph-bench"

work=$(mktemp -d)
results="$work/results"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then note "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

port=$(free_port)
cat > "$work/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
CONF
mosquitto -c "$work/mosquitto.conf" 2> "$work/mosquitto.log" &
mosq=$!; pids+=("$mosq")
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || die "mosquitto did not start: $(cat "$work/mosquitto.log")"
mosq_version=$(mosquitto -h 2>/dev/null | head -1 || true)

RUST_LOG=error "$bin" cluster --dir "$work" > "$work/cluster.out" 2> "$work/cluster.log" &
cluster=$!; pids+=("$cluster")
proxy=""
for _ in $(seq 1 300); do
  proxy=$(sed -n 's/^PROXY //p' "$work/cluster.out")
  [ -n "$proxy" ] && break
  sleep 0.1
done
[ -n "$proxy" ] || die "the managers did not start: $(cat "$work/cluster.log")"
note "mosquitto on 127.0.0.1:$port ($mosq_version); managers: $proxy"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
date_start=$(date -u '+%Y-%m-%d %H:%M UTC')
note "uptime before: $(uptime)"

# phase SIDE N ROUND: N processes, one pair each, measuring together; appends the merged
# figures to $results.
phase() {
  local side=$1 n=$2 round=$3
  local dir="$work/$side-$n-$round"
  mkdir -p "$dir"
  local args
  case $side in
    telegraph) args=(telegraph --managers "$proxy" --tag "r${round}n${n}") ;;
    floor) args=(floor) ;;
    ping) args=(floor --op ping) ;;
    mqtt) args=(mqtt --port "$port" --tag "r${round}n${n}") ;;
    mqttseal) args=(mqtt --seal --port "$port" --tag "s${round}n${n}") ;;
  esac
  local ppids=() k
  for k in $(seq 0 $((n - 1))); do
    RUST_LOG=error timeout 600 "$bin" "${args[@]}" --pairs 1 --first "$k" --seconds "$secs" --dir "$work" \
      --out "$dir/out.$k" --ready "$dir/ready.$k" --go "$dir/go" > "$dir/log.$k" 2>&1 &
    ppids+=("$!"); pids+=("$!")
  done
  local waited=0
  while [ "$(find "$dir" -name 'ready.*' | wc -l)" -lt "$n" ]; do
    for k in "${ppids[@]}"; do kill -0 "$k" 2>/dev/null || { cat "$dir"/log.* >&2; die "$side: a load process ended before its warm-up was done"; }; done
    sleep 0.05; waited=$((waited + 1))
    [ "$waited" -lt 6000 ] || die "$side: $n processes not ready after 300 s"
  done
  # The server side's CPU: mosquitto's for mqtt*, the managers' process for telegraph.
  local server=""
  case $side in mqtt*) server=$mosq ;; telegraph) server=$cluster ;; esac
  local before=0
  [ -z "$server" ] || before=$(cpu_ticks "$server")
  # Is anyone else compiling or testing (cargo, rustc) as this phase starts?
  phases=$((phases + 1))
  [ $(( $(pgrep -c -x cargo || true) + $(pgrep -c -x rustc || true) )) = 0 ] || busy=$((busy + 1))
  touch "$dir/go"
  local failed=0
  for k in "${ppids[@]}"; do wait "$k" || failed=1; done
  [ "$failed" = 0 ] || { cat "$dir"/log.* >&2; die "$side with $n pairs failed (or hung: timeout 600 s)"; }
  "$bin" aggregate "$side" "$dir"/out.* > "$dir/figures"
  if [ -n "$server" ]; then
    local after count
    after=$(cpu_ticks "$server")
    count=$(awk -v k="${side}_count_$n" '$1 == k {print $2}' "$dir/figures")
    awk -v t=$((after - before)) -v c="$count" -v k="${side}_brokercpu_us_$n" \
      'BEGIN { printf "%s %.1f\n", k, t * 10000 / (c > 0 ? c : 1) }' >> "$dir/figures"
  fi
  sed "s/^/round$round /" "$dir/figures" >> "$results"
  note "$side, $n pair(s), round $round: $(awk '/_p50_us_/{p=$2} /_p99_us_/{q=$2} /_per_s_/{r=$2} END {printf "p50 %s us, p99 %s us, %s/s", p, q, r}' "$dir/figures")"
}

: > "$results"
phases=0 busy=0
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) = 1 ]; then order="telegraph mqtt mqttseal floor ping"; else order="ping floor mqttseal mqtt telegraph"; fi
  for n in $pair_counts; do
    for side in $order; do phase "$side" "$n" "$round"; done
  done
  note "managers, round $round"
  RUST_LOG=error "$bin" managers --managers "$proxy" --callers "$(echo "$pair_counts" | tr ' ' ,)" --seconds "$secs" --tag "m$round" 2>> "$work/managers.log" \
    | sed "s/^/round$round /" >> "$results"
  note "parts, round $round"
  RUST_LOG=error "$bin" parts --seconds 2 --dir "$work" 2>> "$work/parts.log" | sed "s/^/round$round /" >> "$results"
done
note "fanin (one store, 6 then 7 concurrent writers; 7 is expected to hang with sled 0.34)"
for n in 6 7; do
  "$bin" fanin --pairs "$n" --seconds 2 --dir "$work" 2>> "$work/fanin.log" | grep '^fanin_hung' | sed 's/^/round1 /' >> "$results" || true
done

note "uptime after: $(uptime)"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

machine="$(nproc) cores, $(uname -r); other cargo/rustc processes running at the start of $busy of $phases phases"
python3 - "$results" "$secs" "$rounds" "$pair_counts" "$load_before" "$load_after" "$date_start" "$mosq_version" "$commit" "$machine" <<'PY'
import sys, collections
path, secs, rounds, counts, lb, la, date, mosq, commit, machine = sys.argv[1:11]
counts = [int(c) for c in counts.split()]
runs = collections.defaultdict(list)
for line in open(path):
    r, k, v = line.split()
    runs[k].append(float(v))
def best(k):
    v = runs.get(k)
    if not v:
        return None
    return max(v) if ("_per_s_" in k or "_count_" in k or "hung" in k) else min(v)
def fmt(v, d=0):
    return "-" if v is None else f"{v:,.{d}f}"
def ratio(a, b):
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}"
print(f"\nTelegraph vs the bare Floe round trip and mosquitto ({date}, commit {commit}; {secs} s per phase, "
      f"best of {rounds} rounds; load average before {lb}, after {la}; {machine}; {mosq})\n")
head = "| measure | " + " | ".join(f"{c} pair{'s' if c > 1 else ''}" for c in counts) + " |"
print(head)
print("|" + "---|" * (len(counts) + 1))
rows = [
    ("telegraph", "Telegraph"), ("floor", "Floe round trip (Inbox.deliver, no-op)"), ("ping", "Floe ice_ping"),
    ("mqtt", "mosquitto QoS 1 (same bytes)"), ("mqttseal", "mosquitto QoS 1 + seal/open"),
]
for side, label in rows:
    for metric, unit, d in (("p50_us", "p50 µs", 0), ("p99_us", "p99 µs", 0), ("per_s", "msgs/s", 0), ("cpu_us", "client CPU µs/msg", 0), ("brokercpu_us", "server CPU µs/msg", 0)):
        vals = [best(f"{side}_{metric}_{c}") for c in counts]
        if all(v is None for v in vals):
            continue
        print(f"| {label}: {unit} | " + " | ".join(fmt(v, d) for v in vals) + " |")
for a, b, label in (("telegraph", "floor", "Telegraph / Floe round trip"), ("telegraph", "mqtt", "Telegraph / mosquitto"), ("telegraph", "mqttseal", "Telegraph / mosquitto + seal")):
    for metric, unit in (("p50_us", "p50"), ("p99_us", "p99"), ("per_s", "msgs/s")):
        print(f"| {label}: {unit} | " + " | ".join(ratio(best(f"{a}_{metric}_{c}"), best(f"{b}_{metric}_{c}")) for c in counts) + " |")
print()
print("| managers | " + " | ".join(f"{c} caller{'s' if c > 1 else ''}" for c in counts) + " |")
print("|" + "---|" * (len(counts) + 1))
for op in ("register", "login", "lookup"):
    print(f"| {op}: calls/s | " + " | ".join(fmt(best(f"{op}_per_s_{c}"), 1) for c in counts) + " |")
    print(f"| {op}: p50 / p99 ms | " + " | ".join(
        f"{fmt((best(f'{op}_p50_us_{c}') or 0) / 1000, 2)} / {fmt((best(f'{op}_p99_us_{c}') or 0) / 1000, 2)}" for c in counts) + " |")
print()
print("| one message's pieces, alone | p50 µs | p99 µs |")
print("|---|---|---|")
for k, label in (("seal", "seal (crypto::seal)"), ("open", "open (crypto::open)"), ("receiptsign", "sign a receipt"), ("receiptverify", "check a receipt"),
                 ("sendstore", "sender's store write + flush (as send)"), ("recvstore", "receiver's store write + flush (as receive)"),
                 ("twostores", "both, one after the other")):
    print(f"| {label} | {fmt(best(f'{k}_p50_us_1'))} | {fmt(best(f'{k}_p99_us_1'))} |")
for n in (6, 7):
    h = best(f"fanin_hung_{n}")
    print(f"| {n} concurrent receiver writes + flushes on one store | " + ("hung (no answer in 22 s)" if h == 1 else "completed" if h == 0 else "-") + " | |")
PY
