#!/usr/bin/env bash
# Side by side: icestorm-lite and ZeroC's IceStorm 3.7 (Debian's icebox with
# IceStormService,37:createIceStorm), both transient, on loopback, driven by the same Floe client
# (icestorm-lite/examples/icestorm_bench.rs): events/s end to end with 1 and 4 oneway
# subscribers, and publish-to-receipt latency p50/p99 (twoway publisher, one event at a time).
#
#   bash bench/icestorm.sh [EVENTS] [LATENCY_SAMPLES] [ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
events=${1:-50000}
samples=${2:-2000}
rounds=${3:-3}
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
(cd "$work" && exec icebox --Ice.Config="$work/icebox.cfg") & pids+=($!)
(cd "$work" && exec "$lite" --Ice.Config="$work/lite.cfg") & pids+=($!)
wait_port "$zc_tm"; wait_port "$lite_tm"

echo "| broker | subscribers | events/s | deliveries/s | latency p50 (µs) | latency p99 (µs) |"
echo "| --- | --- | --- | --- | --- | --- |"
for subs in 1 4; do
  for round in $(seq "$rounds"); do
    for broker in zeroc lite; do
      port=$zc_tm; name="ZeroC IceStorm 3.7.8"
      [ "$broker" = lite ] && { port=$lite_tm; name="icestorm-lite"; }
      line=$("$client" "IceStorm/TopicManager:tcp -h 127.0.0.1 -p $port" "$subs" "$events" "$samples")
      eval "$line"
      echo "| $name (round $round) | $subs | $events_per_s | $deliveries_per_s | $p50_us | $p99_us |"
    done
  done
done
