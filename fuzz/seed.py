#!/usr/bin/env python3
"""Writes a seed corpus for the fuzz targets from the captured Ice 3.7.8 traffic in
../../shared/ice/vectors/out (every message of every capture, and each connection's whole
stream of one direction). Usage: python3 seed.py [corpus-dir] (default: corpus/message)."""
import glob
import hashlib
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
vectors = os.path.join(here, "..", "..", "shared", "ice", "vectors", "out")
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus", "message")
os.makedirs(out, exist_ok=True)

streams = {}
count = 0
for path in sorted(glob.glob(os.path.join(vectors, "*_events.json"))):
    with open(path) as f:
        events = json.load(f).get("events", [])
    for e in events:
        h = e.get("hex")
        if not h:
            continue
        data = bytes.fromhex(h)
        key = (os.path.basename(path), e.get("conn"), e.get("dir"))
        streams[key] = streams.get(key, b"") + data
        with open(os.path.join(out, hashlib.sha1(data).hexdigest()), "wb") as f:
            f.write(data)
        count += 1
for blob in streams.values():
    with open(os.path.join(out, hashlib.sha1(blob).hexdigest()), "wb") as f:
        f.write(blob)
print("%d messages and %d streams written to %s" % (count, len(streams), out))
