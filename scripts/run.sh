#!/usr/bin/env bash
# The project's main job on embedded defaults. Until the services land this builds
# the workspace, shows the Slice compiler's usage and compiles slice/UsersManager.ice
# with it into a temporary directory.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || { echo "scripts/run.sh: cargo not found: install Rust with rustup (https://rustup.rs)" >&2; exit 1; }

cpus=$(nproc 2>/dev/null || echo 2)
jobs=${FLOE_JOBS:-$(( cpus < 2 ? cpus : 2 ))}

cargo build --workspace -j "$jobs"
cargo run -q -j "$jobs" --bin slice2rs -- --help

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo run -q -j "$jobs" --bin slice2rs -- -I slice --output-dir "$out" slice/UsersManager.ice
echo "slice2rs compiled slice/UsersManager.ice into:"
find "$out" -type f | sed "s|^$out/|  |"
