#!/usr/bin/env bash
# Side by side: icestorm-lite and ZeroC's IceStorm 3.7 (Debian's icebox with
# IceStormService,37:createIceStorm, its shipped defaults), both transient, on loopback, started
# once and driven in turn by two clients:
#
# - the Floe client (icestorm-lite/examples/icestorm_bench.rs), one process that publishes and
#   hosts the oneway subscribers: events/s end to end with 1 and 4 subscribers, for a publisher
#   with 1 and with IN_FLIGHT oneway calls in flight, and publish-to-receipt latency p50/p99
#   (twoway publisher, one event at a time, each once every subscriber has the previous one), and
#   the CPU time the broker process spent per event in the IN_FLIGHT run (user + system, from
#   /proc);
# - the neutral client, ZeroC's own C++ (bench/cpp/storm_pub.cpp and storm_sub.cpp, g++ -O2,
#   Debian's libzeroc-ice-dev): a publisher process and 1 or 4 subscriber processes, the same
#   figures, except that the latency events are sent one every LAT_GAP_US instead of each after
#   the previous one's receipt (the processes share only marker files).
#
# Every run prints a row; then the medians of the rounds and the ratios icestorm-lite / ZeroC,
# per client. Brokers alternate which goes first by round.
#
#   bash bench/icestorm.sh [EVENTS] [LATENCY_SAMPLES] [ROUNDS]
#   CLIENTS="floe cpp"  which clients drive the brokers (default both; CLIENTS=cpp for the
#                       neutral client alone)
#   IN_FLIGHT=64        oneway calls in flight for the second throughput column
#   LAT_GAP_US=1000     the neutral publisher's interval between latency events (µs)
#   ZEROC_PROPS="K=V …" extra properties for ZeroC's icebox (default: none, ZeroC's defaults)
#   LITE_PROPS="K=V …"  extra properties for icestorm-lite (default: none)
#   BENCH_TARGET_DIR    where the C++ programs are built, in its cpp/ (default bench/target)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
events=${1:-50000}
samples=${2:-2000}
rounds=${3:-3}
in_flight=${IN_FLIGHT:-64}
clients=${CLIENTS:-floe cpp}
lat_gap=${LAT_GAP_US:-1000}
for c in $clients; do
  case $c in floe | cpp) ;; *) echo "unknown client '$c' in CLIENTS: use floe, cpp or both" >&2; exit 1 ;; esac
done
has_client() { case " $clients " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
command -v icebox >/dev/null || { echo "icebox missing: apt-get install -y zeroc-icebox libzeroc-icestorm3.7" >&2; exit 1; }

if has_client floe; then
  cargo build --release -q -j "${FLOE_JOBS:-2}" -p icestorm-lite --bin icestorm-lite --example icestorm_bench
else
  cargo build --release -q -j "${FLOE_JOBS:-2}" -p icestorm-lite --bin icestorm-lite
fi
target=${CARGO_TARGET_DIR:-$root/target}
lite="$target/release/icestorm-lite"
client="$target/release/examples/icestorm_bench"

# The neutral client: ZeroC C++ publisher and subscriber, rebuilt when a source is newer.
cpp=${BENCH_TARGET_DIR:-$root/bench/target}/cpp
clock_ice="$root/icestorm-lite/tests/slice/Clock.ice"
if has_client cpp; then
  command -v g++ >/dev/null || { echo "g++ missing: apt-get install -y g++" >&2; exit 1; }
  command -v slice2cpp >/dev/null || { echo "slice2cpp missing: apt-get install -y zeroc-ice-compilers" >&2; exit 1; }
  [ -f /usr/include/IceStorm/IceStorm.h ] || { echo "IceStorm/IceStorm.h missing: apt-get install -y libzeroc-ice-dev" >&2; exit 1; }
  mkdir -p "$cpp"
  if [ ! -f "$cpp/Clock.cpp" ] || [ "$clock_ice" -nt "$cpp/Clock.cpp" ]; then
    slice2cpp --output-dir "$cpp" "$clock_ice"
  fi
  for prog in pub sub; do
    src="$root/bench/cpp/storm_$prog.cpp" out="$cpp/zeroc-storm-$prog"
    if [ ! -f "$out" ] || [ "$src" -nt "$out" ] || [ "$cpp/Clock.cpp" -nt "$out" ]; then
      g++ -std=c++11 -O2 -DICE_CPP11_MAPPING -pthread -I"$cpp" "$src" "$cpp/Clock.cpp" -o "$out" \
        -lIceStorm++11 -lIce++11 -lpthread
    fi
  done
fi

work=$(mktemp -d)
pids=()      # the brokers
sub_pids=()  # the neutral subscribers of the run under way
cleanup() {
  for p in "${pids[@]}" "${sub_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 not listening" >&2; exit 1; }

zc_tm=$(free_port); zc_pub=$(free_port); lite_tm=$(free_port); lite_pub=$(free_port)
cat > "$work/icebox.cfg" <<CFG
IceBox.InheritProperties=1
IceBox.Service.IceStorm=IceStormService,37:createIceStorm
IceStorm.InstanceName=IceStorm
IceStorm.Transient=1
IceStorm.TopicManager.Endpoints=tcp -h 127.0.0.1 -p $zc_tm
IceStorm.Publish.Endpoints=tcp -h 127.0.0.1 -p $zc_pub
Ice.Warn.Connections=0
CFG
cat > "$work/lite.cfg" <<CFG
IceStorm.InstanceName=IceStorm
IceStorm.Transient=1
IceStorm.TopicManager.Endpoints=tcp -h 127.0.0.1 -p $lite_tm
IceStorm.Publish.Endpoints=tcp -h 127.0.0.1 -p $lite_pub
CFG
for kv in ${ZEROC_PROPS:-}; do echo "$kv" >> "$work/icebox.cfg"; done
for kv in ${LITE_PROPS:-}; do echo "$kv" >> "$work/lite.cfg"; done
(cd "$work" && exec icebox --Ice.Config="$work/icebox.cfg") & zc_pid=$!; pids+=($zc_pid)
(cd "$work" && exec "$lite" --Ice.Config="$work/lite.cfg") & lite_pid=$!; pids+=($lite_pid)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
wait_port "$zc_tm"; wait_port "$lite_tm"

# Sets port, name and pid for broker $1 (zeroc or lite).
broker_vars() {
  port=$zc_tm; name="ZeroC IceStorm 3.7.8"; pid=$zc_pid
  if [ "$1" = lite ]; then port=$lite_tm; name="icestorm-lite"; pid=$lite_pid; fi
}

# One run of the Floe client against broker $1 with $2 subscribers; sets the figures.
run_floe() {
  broker_vars "$1"
  local proxy="IceStorm/TopicManager:tcp -h 127.0.0.1 -p $port" out t0
  out=$("$client" "$proxy" "$2" "$events" 0 1) || { echo "icestorm_bench failed against $name" >&2; exit 1; }
  eval "$out"; one=$events_per_s
  t0=$(ticks "$pid")
  out=$("$client" "$proxy" "$2" "$events" 0 "$in_flight") || { echo "icestorm_bench failed against $name" >&2; exit 1; }
  eval "$out"
  cpu=$(awk -v t="$(( $(ticks "$pid") - t0 ))" -v hz="$hz" -v n="$events" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
  many=$events_per_s; many_deliveries=$deliveries_per_s
  out=$("$client" "$proxy" "$2" 10 "$samples" 1) || { echo "icestorm_bench failed against $name" >&2; exit 1; }
  eval "$out"
}

# One run of the neutral client (C++ publisher, $2 C++ subscriber processes) against broker $1.
run_cpp() {
  broker_vars "$1"
  local proxy="IceStorm/TopicManager:tcp -h 127.0.0.1 -p $port" out i
  local topic="neutral-$1-$2-$RANDOM$RANDOM" sync="$work/sync-$1-$2"
  rm -rf "$sync"; mkdir -p "$sync"
  sub_pids=()
  for i in $(seq 0 $(($2 - 1))); do
    "$cpp/zeroc-storm-sub" "$proxy" "$topic" "$i" "$events" "$sync" & sub_pids+=($!)
  done
  out=$("$cpp/zeroc-storm-pub" "$proxy" "$topic" "$2" "$events" "$samples" "$in_flight" "$sync" \
        --broker-pid="$pid" --gap-us="$lat_gap") || { echo "zeroc-storm-pub failed against $name" >&2; exit 1; }
  wait "${sub_pids[@]}" || { echo "a zeroc-storm-sub failed against $name" >&2; exit 1; }
  sub_pids=()
  eval "$out"
  one=$events_per_s_1; many=$events_per_s; many_deliveries=$deliveries_per_s; cpu=$cpu_us_per_event
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
results="$work/results"
: > "$results"
for c in $clients; do
  echo
  if [ "$c" = floe ]; then
    echo "Floe client (icestorm_bench: publisher and subscribers in one process)"
  else
    echo "Neutral client (ZeroC C++: zeroc-storm-pub and 1 or 4 zeroc-storm-sub processes, latency events every $lat_gap µs)"
  fi
  echo
  echo "| broker | subscribers | events/s, 1 in flight | events/s, $in_flight in flight | deliveries/s, $in_flight in flight | broker CPU µs/event | latency p50 (µs) | latency p99 (µs) |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
  for subs in 1 4; do
    for round in $(seq "$rounds"); do
      # Alternate which broker goes first.
      order="zeroc lite"; [ $((round % 2)) = 0 ] && order="lite zeroc"
      for broker in $order; do
        "run_$c" "$broker" "$subs"
        echo "| $name (round $round) | $subs | $one | $many | $many_deliveries | $cpu | $p50_us | $p99_us |"
        echo "$c $broker $subs $one $many $p50_us $p99_us $cpu" >> "$results"
      done
    done
  done
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$results" "$in_flight" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
n = sys.argv[2]
title = {"floe": "Floe client", "cpp": "neutral client (ZeroC C++)"}
for c in dict.fromkeys(r[0] for r in rows):
    med = lambda b, s, i: statistics.median(float(r[i]) for r in rows if r[0] == c and r[1] == b and r[2] == s)
    print()
    print(f"Medians, {title[c]}:")
    print()
    print(f"| broker | subscribers | events/s, 1 in flight | events/s, {n} in flight | broker CPU µs/event | latency p50 (µs) | latency p99 (µs) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for s in ("1", "4"):
        z = [med("zeroc", s, i) for i in (3, 4, 7, 5, 6)]
        l = [med("lite", s, i) for i in (3, 4, 7, 5, 6)]
        r = lambda i: f"{l[i] / z[i]:.2f}" if z[i] > 0 else "–"
        print(f"| ZeroC IceStorm 3.7.8 | {s} | {z[0]:.0f} | {z[1]:.0f} | {z[2]:.2f} | {z[3]:.0f} | {z[4]:.0f} |")
        print(f"| icestorm-lite | {s} | {l[0]:.0f} | {l[1]:.0f} | {l[2]:.2f} | {l[3]:.0f} | {l[4]:.0f} |")
        print(f"| ratio lite/ZeroC | {s} | {r(0)}x | {r(1)}x | {r(2)} | {r(3)} | {r(4)} |")
PY
