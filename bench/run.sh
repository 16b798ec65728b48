#!/usr/bin/env bash
# Floe vs ZeroC Ice C++, side by side: builds the Floe server and load generator (release) and
# the ZeroC C++ server (g++ -O2, Debian's libzeroc-ice-dev), then runs the same Floe load
# generator against each server, ROUNDS times in alternating order, and prints the best figure
# of each (lowest latency, highest rate) with the ratio Floe/ZeroC.
#
# Usage: bash bench/run.sh [SECONDS_PER_PHASE (default 3)]
# Environment: ROUNDS (default 2), BENCH_TARGET_DIR (default bench/target),
#              SERVER_THREADS (ZeroC's Ice.ThreadPool.Server.Size/SizeMax; default 1, ZeroC's
#              own default and its fastest setting on this load).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
secs=${1:-3}
rounds=${ROUNDS:-2}
target=${BENCH_TARGET_DIR:-$here/target}
threads=${SERVER_THREADS:-1}

die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 1; }
command -v cargo >/dev/null || die "cargo not found: install Rust with rustup"
command -v g++ >/dev/null || die "g++ not found: apt-get install -y g++"
command -v slice2cpp >/dev/null || die "slice2cpp not found: apt-get install -y zeroc-ice-compilers"
[ -f /usr/include/Ice/Ice.h ] || die "Ice/Ice.h not found: apt-get install -y libzeroc-ice-dev"

printf '== building (release)\n' >&2
cargo build --release --quiet --manifest-path "$here/Cargo.toml" --target-dir "$target"
mkdir -p "$target/cpp"
slice2cpp --output-dir "$target/cpp" "$here/slice/Bench.ice"
g++ -std=c++11 -O2 -DICE_CPP11_MAPPING -pthread -I"$target/cpp" \
  "$here/cpp/server.cpp" "$target/cpp/Bench.cpp" -o "$target/cpp/zeroc-bench-server" \
  -lIce++11 -lpthread

common=(--Ice.MessageSizeMax=4096)
floe_server=("$target/release/floe-bench-server" "${common[@]}")
zeroc_server=("$target/cpp/zeroc-bench-server" "${common[@]}"
              --Ice.ThreadPool.Server.Size="$threads" --Ice.ThreadPool.Server.SizeMax="$threads")
load=("$target/release/floe-bench-load")

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

# run NAME SERVER...: starts the server, runs the load generator against it, stops the server.
run() {
  local name=$1; shift
  local fifo="$results/stdin-$name"
  rm -f "$fifo"; mkfifo "$fifo"
  "$@" < "$fifo" > "$results/proxy-$name" &
  local pid=$!
  exec 3> "$fifo"   # the server runs while this stays open
  local proxy=""
  for _ in $(seq 1 100); do
    proxy=$(sed -n 's/^PROXY //p' "$results/proxy-$name")
    [ -n "$proxy" ] && break
    sleep 0.1
  done
  [ -n "$proxy" ] || die "$name server did not start"
  printf '== %s: %s\n' "$name" "$proxy" >&2
  "${load[@]}" "${common[@]}" "$proxy" "$secs" >> "$results/$name"
  exec 3>&-
  wait "$pid"
}

for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) = 1 ]; then run floe "${floe_server[@]}"; run zeroc "${zeroc_server[@]}"
  else run zeroc "${zeroc_server[@]}"; run floe "${floe_server[@]}"; fi
done

printf '\nFloe vs ZeroC Ice C++ 3.7 (%s s per phase, best of %s rounds, %s cores, ZeroC server threads %s)\n\n' \
  "$secs" "$rounds" "$(nproc)" "$threads"
awk '
  FNR == 1 { side = (FILENAME ~ /floe$/) ? "floe" : "zeroc" }
  {
    k = $1; v = $2 + 0; low = (k ~ /_us$/)
    if (!((side, k) in best) || (low ? v < best[side, k] : v > best[side, k])) best[side, k] = v
    if (!(k in seen)) { seen[k] = 1; order[++n] = k }
  }
  END {
    label["ping_p50_us"] = "ping p50 (us, lower wins)"
    label["ping_p99_us"] = "ping p99 (us, lower wins)"
    label["calls_per_s_1"] = "calls/s, 1 in flight"
    label["calls_per_s_16"] = "calls/s, 16 in flight"
    label["calls_per_s_64"] = "calls/s, 64 in flight"
    label["send_mb_per_s_64k"] = "MB/s, 64 KiB payloads"
    label["send_mb_per_s_1m"] = "MB/s, 1 MiB payloads"
    label["oneway_per_s"] = "oneway calls/s"
    printf "| %-26s | %12s | %12s | %11s |\n", "measure", "Floe", "ZeroC C++", "Floe/ZeroC"
    printf "|%s|%s|%s|%s|\n", "----------------------------", "--------------", "--------------", "-------------"
    for (i = 1; i <= n; i++) {
      k = order[i]; f = best["floe", k]; z = best["zeroc", k]
      ratio = (z > 0) ? f / z : 0
      printf "| %-26s | %12.1f | %12.1f | %11.2f |\n", label[k], f, z, ratio
    }
  }' "$results/floe" "$results/zeroc"
