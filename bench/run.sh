#!/usr/bin/env bash
# Floe vs ZeroC Ice C++, every client against every server, over tcp and over ssl: builds the
# Floe server and load generator (release, src/bin/) and the ZeroC C++ server and load generator
# (cpp/, g++ -O2, Debian's libzeroc-ice-dev, IceSSL linked in), then runs each load generator
# against each server (4 pairs) on each transport, ROUNDS times with the order of the runs
# reversed every other round, each run against a fresh server. For ssl it makes a CA, a server
# and a client certificate at run time (floe-bench-certs, into a temporary directory removed on
# exit) and both sides authenticate each other: IceSSL.VerifyPeer=2 on every server and client.
# Prints, per transport, the best figure of each pair (lowest latency, highest rate) and three
# ratios per row:
#   full stack   Floe client -> Floe server  /  C++ client -> ZeroC server
#   server only  C++ client  -> Floe server  /  C++ client -> ZeroC server
#   client only  Floe client -> ZeroC server /  C++ client -> ZeroC server
# For latency rows lower is better (a ratio under 1.0 means Floe is faster); for the others
# higher is better.
#
# Usage: bash bench/run.sh [SECONDS_PER_PHASE (default 3)]
# Environment:
#   ROUNDS           rounds over the pairs (default 2); the best of the rounds is kept
#   TRANSPORTS       the transports to run, tcp and/or ssl (default both: "tcp ssl")
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
transport_list=${TRANSPORTS:-tcp ssl}
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
transports=()
for t in $transport_list; do
  case $t in
    tcp | ssl) transports+=("$t") ;;
    *) die "unknown transport '$t' in TRANSPORTS: use tcp, ssl or both (\"tcp ssl\")" ;;
  esac
done
[ "${#transports[@]}" -gt 0 ] || die "TRANSPORTS is empty: use tcp, ssl or both (\"tcp ssl\")"
mapfile -t transports < <(printf '%s\n' "${transports[@]}" | awk '!seen[$0]++')

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
    -lIceSSL++11 -lIce++11 -lpthread
}
if [ ! -f "$cpp/Bench.cpp" ] || [ "$here/slice/Bench.ice" -nt "$cpp/Bench.cpp" ]; then
  slice2cpp --output-dir "$cpp" "$here/slice/Bench.ice"
fi
build_cpp "$cpp/zeroc-bench-server" "$here/cpp/server.cpp"
build_cpp "$cpp/zeroc-bench-load" "$here/cpp/load.cpp"

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

common=(--Ice.MessageSizeMax=4096)
server_floe=("$target/release/floe-bench-server" "${common[@]}")
server_cpp=("$cpp/zeroc-bench-server" "${common[@]}"
            --Ice.ThreadPool.Server.Size="$threads" --Ice.ThreadPool.Server.SizeMax="$threads")
load_floe=("$target/release/floe-bench-load")
load_cpp=("$cpp/zeroc-bench-load")
# Per transport: the servers' endpoint and the IceSSL properties of servers and clients (the
# same for Floe and ZeroC). ssl: mutual authentication, each side verifying the other's
# certificate against the CA (VerifyPeer=2; the client does not check the host name,
# CheckCertName=0 being IceSSL's default).
server_opts_tcp=(--Bench.Endpoints="tcp -h 127.0.0.1 -p 0")
client_opts_tcp=()
certs="$results/certs"
ssl=(--IceSSL.DefaultDir="$certs" --IceSSL.CAs=cacert.pem --IceSSL.Password=password --IceSSL.VerifyPeer=2)
server_opts_ssl=(--Bench.Endpoints="ssl -h 127.0.0.1 -p 0" "${ssl[@]}" --IceSSL.CertFile=server.p12)
client_opts_ssl=("${ssl[@]}" --IceSSL.CertFile=client.p12)
if printf '%s\n' "${transports[@]}" | grep -qx ssl; then
  "$target/release/floe-bench-certs" "$certs" || die "cannot make the ssl certificates in $certs"
fi

# run TRANSPORT/CLIENT-SERVER: starts the server, runs the client against it, stops the server;
# appends the client's "name value" lines to $results/TRANSPORT-CLIENT-SERVER.
run() {
  local transport=${1%%/*} pair=${1#*/}
  local client=${pair%-*} server=${pair#*-} name="$transport-$pair"
  local -n srv="server_$server" cli="load_$client"
  local -n sopts="server_opts_$transport" copts="client_opts_$transport"
  local fifo="$results/stdin-$name"
  rm -f "$fifo"; mkfifo "$fifo"
  "${srv[@]}" "${sopts[@]}" < "$fifo" > "$results/proxy-$name" &
  local pid=$!
  exec 3> "$fifo"   # the server runs while this stays open
  local proxy=""
  for _ in $(seq 1 100); do
    proxy=$(sed -n 's/^PROXY //p' "$results/proxy-$name")
    [ -n "$proxy" ] && break
    sleep 0.1
  done
  [ -n "$proxy" ] || die "$server server did not start over $transport"
  "${cli[@]}" "${common[@]}" "${copts[@]}" "$proxy" "$secs" > "$results/last" ||
    die "$client client against $server server over $transport failed"
  exec 3>&-
  wait "$pid"
  cat "$results/last" >> "$results/$name"
  printf '== %-3s %-9s %s\n' "$transport" "$pair" "$(awk '{ printf "%s=%s ", $1, $2 }' "$results/last")" >&2
}

runs=()
for t in "${transports[@]}"; do
  for p in "${pairs[@]}"; do runs+=("$t/$p"); done
done
printf '== %s pairs (client-server) over %s, %s round(s), %s s per phase\n' \
  "${#pairs[@]}" "${transports[*]}" "$rounds" "$secs" >&2
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) = 1 ]; then order=("${runs[@]}")
  else mapfile -t order < <(printf '%s\n' "${runs[@]}" | tac); fi
  for item in "${order[@]}"; do run "$item"; done
done

version=$(slice2cpp --version 2>&1 | tail -n 1)
printf '\nFloe vs ZeroC Ice C++ %s over %s: %s s per phase, best of %s round(s), %s cores, ZeroC server threads %s, load average %s\n' \
  "$version" "${transports[*]}" "$secs" "$rounds" "$(nproc)" "$threads" "$(cut -d' ' -f1-3 /proc/loadavg)"
case " ${transports[*]} " in
  *" ssl "*) printf "ssl: mutual authentication (IceSSL.VerifyPeer=2 on every server and client), ECDSA P-256 certificates made at run time, each side's default TLS versions and ciphers\n" ;;
esac
printf '\n'
files=()
for t in "${transports[@]}"; do
  for p in "${pairs[@]}"; do files+=("$results/$t-$p"); done
done
awk -v pairs="${pairs[*]}" -v transports="${transports[*]}" '
  # a file is TRANSPORT-CLIENT-SERVER; best[TRANSPORT-CLIENT-SERVER, measure]
  FNR == 1 { run = FILENAME; sub(/.*\//, "", run) }
  {
    k = $1; v = $2 + 0; low = (k ~ /_us$/)
    if (!((run, k) in best) || (low ? v < best[run, k] : v > best[run, k])) best[run, k] = v
    if (!(k in seen)) { seen[k] = 1; order[++n] = k }
  }
  function has(r, k) { return (r, k) in best }
  # ratio of run a over run b for measure k, or a dash when either did not run
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
    nt = split(transports, tlist, " ")
    np = split(pairs, plist, " ")
    rows[1] = "ping p50 / p99 (lower is better)"; keys[1] = "ping_p50_us ping_p99_us"
    rows[2] = "calls/s, 1 / 16 / 64 in flight"; keys[2] = "calls_per_s_1 calls_per_s_16 calls_per_s_64"
    rows[3] = "MB/s, 64 KiB / 1 MiB sends"; keys[3] = "send_mb_per_s_64k send_mb_per_s_1m"
    rows[4] = "oneway calls/s"; keys[4] = "oneway_per_s"
    print "| transport | row | full stack (Floe→Floe vs C++→C++) | server only (C++ client: Floe vs ZeroC server) | client only (ZeroC server: Floe vs C++ client) |"
    print "|---|---|---|---|---|"
    for (t = 1; t <= nt; t++) {
      x = tlist[t] "-"
      for (i = 1; i <= 4; i++)
        printf "| %s | %s | %s | %s | %s |\n", tlist[t], rows[i],
          ratios(x "floe-floe", x "cpp-cpp", keys[i]), ratios(x "cpp-floe", x "cpp-cpp", keys[i]),
          ratios(x "floe-cpp", x "cpp-cpp", keys[i])
    }

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
    printf "\nBest of each pair (client→server):\n\n| transport | measure |"
    for (j = 1; j <= np; j++) printf " %s |", name[plist[j]]
    printf "\n|---|---|"
    for (j = 1; j <= np; j++) printf "---|"
    printf "\n"
    for (t = 1; t <= nt; t++)
      for (i = 1; i <= n; i++) {
        k = order[i]
        printf "| %s | %s |", tlist[t], (k in label) ? label[k] : k
        for (j = 1; j <= np; j++) {
          r = tlist[t] "-" plist[j]
          if (!has(r, k)) printf " – |"
          else printf (k ~ /_us$|_mb_/) ? " %.1f |" : " %.0f |", best[r, k]
        }
        printf "\n"
      }
  }' "${files[@]}"
