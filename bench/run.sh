#!/usr/bin/env bash
# Floe vs ZeroC Ice C++, every client against every server: builds the Floe server and load
# generator (release, src/bin/) and the ZeroC C++ server and load generator (cpp/, g++ -O2,
# Debian's libzeroc-ice-dev), then runs each load generator against each server (4 pairs), ROUNDS
# times with the order of the pairs reversed every other round, each run against a fresh server.
# Prints the best figure of each pair (lowest latency, highest rate) and three ratios per row:
#   full stack   Floe client -> Floe server  /  C++ client -> ZeroC server
#   server only  C++ client  -> Floe server  /  C++ client -> ZeroC server
#   client only  Floe client -> ZeroC server /  C++ client -> ZeroC server
# For latency rows lower is better (a ratio under 1.0 means Floe is faster); for the others
# higher is better.
#
# Usage: bash bench/run.sh [SECONDS_PER_PHASE (default 3)]
# Environment:
#   ROUNDS           rounds over the pairs (default 2); the best of the rounds is kept
#   PAIRS            the pairs to run, CLIENT-SERVER with floe or cpp on each side, or a column
#                    name for the two pairs it needs (full, server, client); default all four,
#                    e.g. PAIRS=client ROUNDS=1 bash bench/run.sh 1 for a quick look at one column
#   BENCH_TARGET_DIR build directory (default bench/target; the C++ programs go to its cpp/)
#   SERVER_THREADS   ZeroC's Ice.ThreadPool.Server.Size/SizeMax (default 1, ZeroC's own default
#                    and its fastest setting on this load)
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

pairs=()
for p in ${PAIRS:-floe-floe cpp-cpp cpp-floe floe-cpp}; do
  case $p in
    full) pairs+=(floe-floe cpp-cpp) ;;
    server) pairs+=(cpp-floe cpp-cpp) ;;
    client) pairs+=(floe-cpp cpp-cpp) ;;
    all) pairs+=(floe-floe cpp-cpp cpp-floe floe-cpp) ;;
    floe-floe | cpp-cpp | cpp-floe | floe-cpp) pairs+=("$p") ;;
    *) die "unknown pair '$p' in PAIRS: use CLIENT-SERVER (floe-floe, cpp-cpp, cpp-floe, floe-cpp) or full, server, client, all" ;;
  esac
done
# Each pair once, in the order given.
mapfile -t pairs < <(printf '%s\n' "${pairs[@]}" | awk '!seen[$0]++')

printf '== building (release)\n' >&2
cargo build --release --quiet --manifest-path "$here/Cargo.toml" --target-dir "$target"
cpp="$target/cpp"
mkdir -p "$cpp"
# Rebuilds OUT from the C++ sources SRC... when any of them or the Slice is newer.
build_cpp() {
  local out=$1; shift
  local stale=0 f
  [ -f "$out" ] || stale=1
  for f in "$@" "$here/slice/Bench.ice"; do [ "$f" -nt "$out" ] && stale=1; done
  [ "$stale" = 0 ] && return 0
  g++ -std=c++11 -O2 -DICE_CPP11_MAPPING -pthread -I"$cpp" "$@" "$cpp/Bench.cpp" -o "$out" \
    -lIce++11 -lpthread
}
if [ ! -f "$cpp/Bench.cpp" ] || [ "$here/slice/Bench.ice" -nt "$cpp/Bench.cpp" ]; then
  slice2cpp --output-dir "$cpp" "$here/slice/Bench.ice"
fi
build_cpp "$cpp/zeroc-bench-server" "$here/cpp/server.cpp"
build_cpp "$cpp/zeroc-bench-load" "$here/cpp/load.cpp"

common=(--Ice.MessageSizeMax=4096)
server_floe=("$target/release/floe-bench-server" "${common[@]}")
server_cpp=("$cpp/zeroc-bench-server" "${common[@]}"
            --Ice.ThreadPool.Server.Size="$threads" --Ice.ThreadPool.Server.SizeMax="$threads")
load_floe=("$target/release/floe-bench-load")
load_cpp=("$cpp/zeroc-bench-load")

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

# run CLIENT-SERVER: starts the server, runs the client against it, stops the server; appends the
# client's "name value" lines to $results/CLIENT-SERVER.
run() {
  local pair=$1 client=${1%-*} server=${1#*-}
  local -n srv="server_$server" cli="load_$client"
  local fifo="$results/stdin-$pair"
  rm -f "$fifo"; mkfifo "$fifo"
  "${srv[@]}" < "$fifo" > "$results/proxy-$pair" &
  local pid=$!
  exec 3> "$fifo"   # the server runs while this stays open
  local proxy=""
  for _ in $(seq 1 100); do
    proxy=$(sed -n 's/^PROXY //p' "$results/proxy-$pair")
    [ -n "$proxy" ] && break
    sleep 0.1
  done
  [ -n "$proxy" ] || die "$server server did not start"
  "${cli[@]}" "${common[@]}" "$proxy" "$secs" > "$results/last" || die "$client client against $server server failed"
  exec 3>&-
  wait "$pid"
  cat "$results/last" >> "$results/$pair"
  printf '== %-9s %s\n' "$pair" "$(awk '{ printf "%s=%s ", $1, $2 }' "$results/last")" >&2
}

printf '== %s pairs (client-server), %s round(s), %s s per phase\n' "${#pairs[@]}" "$rounds" "$secs" >&2
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) = 1 ]; then order=("${pairs[@]}")
  else mapfile -t order < <(printf '%s\n' "${pairs[@]}" | tac); fi
  for p in "${order[@]}"; do run "$p"; done
done

version=$(slice2cpp --version 2>&1 | tail -n 1)
printf '\nFloe vs ZeroC Ice C++ %s: %s s per phase, best of %s round(s), %s cores, ZeroC server threads %s, load average %s\n\n' \
  "$version" "$secs" "$rounds" "$(nproc)" "$threads" "$(cut -d' ' -f1-3 /proc/loadavg)"
awk -v pairs="${pairs[*]}" '
  FNR == 1 { pair = FILENAME; sub(/.*\//, "", pair) }
  {
    k = $1; v = $2 + 0; low = (k ~ /_us$/)
    if (!((pair, k) in best) || (low ? v < best[pair, k] : v > best[pair, k])) best[pair, k] = v
    if (!(k in seen)) { seen[k] = 1; order[++n] = k }
  }
  function has(p, k) { return (p, k) in best }
  # ratio of pair a over pair b for measure k, or a dash when either pair did not run
  function ratio(a, b, k) {
    if (!has(a, k) || !has(b, k) || best[b, k] == 0) return "–"
    return sprintf("%.2f", best[a, k] / best[b, k])
  }
  # the ratios of the measures in ks (space-separated), joined with " / "
  function ratios(a, b, ks,    m, i, s) {
    m = split(ks, list, " ")
    for (i = 1; i <= m; i++) s = s (i > 1 ? " / " : "") ratio(a, b, list[i])
    return s
  }
  END {
    rows[1] = "ping p50 / p99 (lower is better)"; keys[1] = "ping_p50_us ping_p99_us"
    rows[2] = "calls/s, 1 / 16 / 64 in flight"; keys[2] = "calls_per_s_1 calls_per_s_16 calls_per_s_64"
    rows[3] = "MB/s, 64 KiB / 1 MiB sends"; keys[3] = "send_mb_per_s_64k send_mb_per_s_1m"
    rows[4] = "oneway calls/s"; keys[4] = "oneway_per_s"
    print "| row | full stack (Floe→Floe vs C++→C++) | server only (C++ client: Floe vs ZeroC server) | client only (ZeroC server: Floe vs C++ client) |"
    print "|---|---|---|---|"
    for (i = 1; i <= 4; i++)
      printf "| %s | %s | %s | %s |\n", rows[i], ratios("floe-floe", "cpp-cpp", keys[i]),
        ratios("cpp-floe", "cpp-cpp", keys[i]), ratios("floe-cpp", "cpp-cpp", keys[i])

    label["ping_p50_us"] = "ping p50 (µs, lower is better)"
    label["ping_p99_us"] = "ping p99 (µs, lower is better)"
    label["calls_per_s_1"] = "calls/s, 1 in flight"
    label["calls_per_s_16"] = "calls/s, 16 in flight"
    label["calls_per_s_64"] = "calls/s, 64 in flight"
    label["send_mb_per_s_64k"] = "MB/s, 64 KiB sends"
    label["send_mb_per_s_1m"] = "MB/s, 1 MiB sends"
    label["oneway_per_s"] = "oneway calls/s"
    name["floe-floe"] = "Floe→Floe"; name["cpp-cpp"] = "C++→C++"
    name["cpp-floe"] = "C++→Floe"; name["floe-cpp"] = "Floe→C++"
    np = split(pairs, plist, " ")
    printf "\nBest of each pair (client→server):\n\n| measure |"
    for (j = 1; j <= np; j++) printf " %s |", name[plist[j]]
    printf "\n|---|"
    for (j = 1; j <= np; j++) printf "---|"
    printf "\n"
    for (i = 1; i <= n; i++) {
      k = order[i]
      printf "| %s |", (k in label) ? label[k] : k
      for (j = 1; j <= np; j++)
        printf (k ~ /_us$|_mb_/) ? " %.1f |" : " %.0f |", best[plist[j], k]
      printf "\n"
    }
  }' $(for p in "${pairs[@]}"; do printf '%s ' "$results/$p"; done)
