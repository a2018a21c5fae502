#!/bin/bash
# make load: `dronetrack up` in a process of its own on a fresh data dir, and
# `dronetrack load --url` driving it from another, so the load generator's
# CPU is not in the system's figures (RSS and up CPU in the table are up's;
# gen CPU is the generator's own, read from /proc/self).
# usage: test/load.sh OUT_DIR DRONES [load flags...]
set -euo pipefail
out=$1 drones=$2
shift 2
tmp=$(mktemp -d)
(cd "$(dirname "$0")/../cmd/dronetrack" && ${GO:-go} build -o "$tmp/dronetrack" .)
# Every simulated drone sends from this machine's loopback address, where a
# real fleet's come from many: ingest's per-address limit (RATE_LIMIT_IP,
# 5,000 requests/s) would cap the run there and answer the rest 429, so it
# is off for up unless set. The per-drone limit (RATE_LIMIT_KEY) stays.
RATE_LIMIT_IP=${RATE_LIMIT_IP:-off} "$tmp/dronetrack" up --data "$tmp/data" --http 127.0.0.1:0 --demo-drones "$drones" >"$tmp/up.out" 2>"$tmp/up.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
echo "load: starting up with $drones demo drones (seeding takes a while)" >&2
url=""
for _ in $(seq 900); do
	url=$(sed -n 's/^Dronetrack is up: open \(http[^ ]*\).*/\1/p' "$tmp/up.out")
	[ -n "$url" ] && break
	if ! kill -0 $pid 2>/dev/null; then
		cat "$tmp/up.log" >&2
		exit 1
	fi
	sleep 1
done
[ -n "$url" ] || { echo "load: up did not start" >&2; exit 1; }
"$tmp/dronetrack" load --url "$url" --data "$tmp/data" --drones "$drones" --out "$out" "$@"
