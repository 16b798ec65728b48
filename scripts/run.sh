#!/usr/bin/env bash
# The main job on embedded defaults. Until the services exist it is Floe's `hello` demo: the
# server starts on its config.server (tcp port 10000 on localhost, as ZeroC's demo), the client
# calls it twoway and oneway with config.client, then asks it to shut down.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || { echo "run.sh: cargo not found: install Rust with rustup" >&2; exit 1; }

cargo build -q -p hello-example
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$PWD/$target" ;; esac
bin="$target/debug"
cd examples/hello

"$bin/hello-server" --Ice.Config=config.server &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT

# Wait until the server listens.
for _ in $(seq 1 50); do
  if "$bin/hello-client" --Ice.Config=config.client t 2>/dev/null; then
    break
  fi
  sleep 0.2
done
"$bin/hello-client" --Ice.Config=config.client o t s
wait "$server"
trap - EXIT
echo "run.sh: the hello server answered twoway and oneway calls and shut down on request"
