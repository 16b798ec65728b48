#!/usr/bin/env bash
# Side by side: icestorm-lite and ZeroC's IceStorm 3.7 (Debian's icebox with
# IceStormService,37:createIceStorm, its shipped defaults), both transient, on loopback, driven by
# the same Floe client (icestorm-lite/examples/icestorm_bench.rs): events/s end to end with 1 and 4
# oneway subscribers, for a publisher with 1 and with IN_FLIGHT oneway calls in flight, and
# publish-to-receipt latency p50/p99 (twoway publisher, one event at a time), and the CPU time
# the broker process spent per event in the IN_FLIGHT run (user + system, from /proc). Prints
# every round, then the medians and the ratios icestorm-lite / ZeroC.
#
#   bash bench/icestorm.sh [EVENTS] [LATENCY_SAMPLES] [ROUNDS]
#   IN_FLIGHT=64        oneway calls in flight for the second throughput column
#   ZEROC_PROPS="K=V …" extra properties for ZeroC's icebox (default: none, ZeroC's defaults)
#   LITE_PROPS="K=V …"  extra properties for icestorm-lite (default: none)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
events=${1:-50000}
samples=${2:-2000}
rounds=${3:-3}
in_flight=${IN_FLIGHT:-64}
command -v icebox >/dev/null || { echo "icebox missing: apt-get install -y zeroc-icebox libzeroc-icestorm3.7" >&2; exit 1; }

cargo build --release -q -j "${FLOE_JOBS:-2}" -p icestorm-lite --bin icestorm-lite --example icestorm_bench
target=${CARGO_TARGET_DIR:-$root/target}
lite="$target/release/icestorm-lite"
client="$target/release/examples/icestorm_bench"

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
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

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
results="$work/results"
: > "$results"
echo "| broker | subscribers | events/s, 1 in flight | events/s, $in_flight in flight | deliveries/s, $in_flight in flight | broker CPU µs/event | latency p50 (µs) | latency p99 (µs) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for subs in 1 4; do
  for round in $(seq "$rounds"); do
    # Alternate which broker goes first.
    order="zeroc lite"; [ $((round % 2)) = 0 ] && order="lite zeroc"
    for broker in $order; do
      port=$zc_tm; name="ZeroC IceStorm 3.7.8"; pid=$zc_pid
      [ "$broker" = lite ] && { port=$lite_tm; name="icestorm-lite"; pid=$lite_pid; }
      proxy="IceStorm/TopicManager:tcp -h 127.0.0.1 -p $port"
      eval "$("$client" "$proxy" "$subs" "$events" 0 1)"
      one=$events_per_s
      t0=$(ticks "$pid")
      eval "$("$client" "$proxy" "$subs" "$events" 0 "$in_flight")"
      cpu=$(awk -v t="$(( $(ticks "$pid") - t0 ))" -v hz="$hz" -v n="$events" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
      many=$events_per_s; many_deliveries=$deliveries_per_s
      eval "$("$client" "$proxy" "$subs" 10 "$samples" 1)"
      echo "| $name (round $round) | $subs | $one | $many | $many_deliveries | $cpu | $p50_us | $p99_us |"
      echo "$broker $subs $one $many $p50_us $p99_us $cpu" >> "$results"
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
/usr/bin/python3 - "$results" "$in_flight" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
n = sys.argv[2]
med = lambda b, s, i: statistics.median(float(r[i]) for r in rows if r[0] == b and r[1] == s)
print(f"| medians | subscribers | events/s, 1 in flight | events/s, {n} in flight | broker CPU µs/event | latency p50 (µs) | latency p99 (µs) |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for s in ("1", "4"):
    z = [med("zeroc", s, i) for i in (2, 3, 6, 4, 5)]
    l = [med("lite", s, i) for i in (2, 3, 6, 4, 5)]
    print(f"| ZeroC IceStorm 3.7.8 | {s} | {z[0]:.0f} | {z[1]:.0f} | {z[2]:.2f} | {z[3]:.0f} | {z[4]:.0f} |")
    print(f"| icestorm-lite | {s} | {l[0]:.0f} | {l[1]:.0f} | {l[2]:.2f} | {l[3]:.0f} | {l[4]:.0f} |")
    print(f"| ratio lite/ZeroC | {s} | {l[0]/z[0]:.2f}x | {l[1]/z[1]:.2f}x | {l[2]/z[2]:.2f} | {l[3]/z[3]:.2f} | {l[4]/z[4]:.2f} |")
PY
