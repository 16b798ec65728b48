#!/usr/bin/env bash
# Fetches Debian's source package of ZeroC Ice (the same version as the installed
# runtime) into a build directory, through a private apt directory whose deb-src
# entry is derived from the machine's own Debian sources. The system's apt lists
# are never touched. Prints the path of the unpacked tree on stdout.
#
# Usage: fetch-ice-source.sh DEST_DIR
set -euo pipefail

dest=${1:?usage: fetch-ice-source.sh DEST_DIR}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

existing=$(find "$dest" -maxdepth 1 -type d -name 'zeroc-ice-3.7*' | head -1)
if [ -n "$existing" ] && [ -d "$existing/cpp/test/Slice/errorDetection" ]; then
  echo "$existing"
  exit 0
fi

for tool in apt-get dpkg-source; do
  if ! command -v "$tool" >/dev/null; then
    echo "fetch-ice-source: '$tool' is missing; install it with: apt-get install -y dpkg-dev" >&2
    exit 1
  fi
done

aptdir="$dest/apt"
mkdir -p "$aptdir/lists/partial" "$aptdir/archives/partial" "$aptdir/sources.list.d"

# Derive deb-src entries from the machine's Debian sources (deb822 or one-line form).
srcs="$aptdir/sources.list.d/debian-src.sources"
: > "$srcs"
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  sed -e 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >> "$srcs"
fi
if [ -f /etc/apt/sources.list ]; then
  grep -E '^deb ' /etc/apt/sources.list | sed -e 's/^deb /deb-src /' > "$aptdir/sources.list" || true
else
  : > "$aptdir/sources.list"
fi
if [ ! -s "$srcs" ] && [ ! -s "$aptdir/sources.list" ]; then
  echo "fetch-ice-source: no Debian sources found in /etc/apt to derive a deb-src entry from" >&2
  exit 1
fi

opts=(
  -o "Dir::Etc::SourceList=$aptdir/sources.list"
  -o "Dir::Etc::SourceParts=$aptdir/sources.list.d"
  -o "Dir::State::Lists=$aptdir/lists"
  -o "Dir::Cache::Archives=$aptdir/archives"
  -o "Debug::NoLocking=1"
)
apt-get "${opts[@]}" update -qq >&2
version=$(dpkg-query -W -f='${source:Version}' python3-zeroc-ice 2>/dev/null || true)
pkg=zeroc-ice
[ -n "$version" ] && pkg="zeroc-ice=$version"
(cd "$dest" && apt-get "${opts[@]}" source --download-only -qq "$pkg" >&2)
dsc=$(ls "$dest"/zeroc-ice_*.dsc | head -1)
(cd "$dest" && dpkg-source --no-check -x "$dsc" >&2)
tree=$(find "$dest" -maxdepth 1 -type d -name 'zeroc-ice-3.7*' | head -1)
if [ -z "$tree" ]; then
  echo "fetch-ice-source: unpacking $dsc produced no zeroc-ice-3.7* directory" >&2
  exit 1
fi
echo "$tree"
