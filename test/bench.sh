#!/usr/bin/env bash
# `make bench`: the Go benchmarks that bound Dronetrack's speed, run -count
# times into one benchstat-ready file (test/results/bench.txt), then the
# medians and the ratios against the in-run baselines (test/benchratio.awk),
# and a benchstat summary when the tool can be fetched from the module proxy.
# Starts the Firestore emulator and uses (or testenv starts) Redis, as
# test/run-all.sh does. COUNT and BENCHTIME tune the run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${TEST_OUTPUT_DIR:-$root/test/results}
mkdir -p "$out"
count=${COUNT:-6} # benchstat needs >= 6 for a confidence interval
benchtime=${BENCHTIME:-1s}
BENCHSTAT=golang.org/x/perf/cmd/benchstat@v0.0.0-20250813145418-2f7363a06fe1

if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
	export REDIS_ADDR=${REDIS_ADDR:-127.0.0.1:6379}
fi
jar=/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar
emu_pid=""
cleanup() {
	if [ -n "$emu_pid" ]; then kill "$emu_pid" 2>/dev/null || true; wait "$emu_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT
if [ -z "${FIRESTORE_EMULATOR_HOST:-}" ]; then
	[ -f "$jar" ] || { echo "FATAL: Firestore emulator jar not found at $jar" >&2; exit 1; }
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	java -cp "$jar" com.google.cloud.datastore.emulator.firestore.CloudFirestore \
		--host 127.0.0.1 --port "$port" >"$out/firestore-emulator-bench.log" 2>&1 &
	emu_pid=$!
	for _ in $(seq 1 120); do
		curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1 && break
		kill -0 "$emu_pid" 2>/dev/null || { echo "FATAL: emulator exited" >&2; exit 1; }
		sleep 0.5
	done
	curl -fsS "http://127.0.0.1:$port/" >/dev/null || { echo "FATAL: emulator not ready after 60 s" >&2; exit 1; }
	export FIRESTORE_EMULATOR_HOST=127.0.0.1:$port
fi

res=$out/bench.txt
: >"$res"
# module;packages;benchmark regexp;[benchtime: fixed iterations where the
# timed part is tiny and the untimed setup per iteration is not, which
# would make -benchtime 1s run for many minutes];[environment]
# BenchmarkPipeline is issue 14's CPU a report: the whole one-machine
# pipeline in process at 2,500 reports/s, one per request, under up's GC
# settings (infra/local/gctune.go). BenchmarkClusterPath is the cluster
# path's store share on the Firestore emulator (rounds of 1,000 reports).
runs=(
	"functions/ingest;.;^(BenchmarkHelloWorld|BenchmarkIngestDecodeValidate|BenchmarkIngestBatch100|BenchmarkInterleaved)$;"
	"events;.;.;"
	"functions/process;.;BenchmarkProcessReport;"
	"core;./store/bolt;BenchmarkAppendTrack;200x"
	"core;./store/firestore;BenchmarkAppendTrack;50x"
	"core;./cache;^(BenchmarkFleet1k|BenchmarkFleet10k|BenchmarkBBox1kOf10k)$;300x"
	"functions/serve-map;.;BenchmarkHTTPFleet10k;100x"
	"functions/serve-map;.;BenchmarkRIDFlights10k;100x"
	"core;./broker;.;3000x"
	"core;./store/firestore;BenchmarkClusterPath;20x"
	"test/system;.;^BenchmarkPipeline$;15000x;DRONETRACK_BENCH_RATE=2500 GOGC=400 GOMEMLIMIT=256MiB"
)
for r in "${runs[@]}"; do
	IFS=';' read -r mod pkgs re bt envs <<<"$r"
	bt=${bt:-$benchtime}
	echo "== $envs $mod $pkgs -bench '$re' -count $count -benchtime $bt" >&2
	# shellcheck disable=SC2086 # envs is a list of NAME=value words
	(cd "$mod" && env $envs go test -run '^$' -bench "$re" -benchmem -count "$count" -benchtime "$bt" -timeout 30m $pkgs) | tee -a "$res" >&2
done

echo
echo "results: $res"
awk -f test/benchratio.awk "$res" | tee "$out/bench-ratios.txt"
if go run "$BENCHSTAT" "$res" >"$out/benchstat.txt" 2>/dev/null; then
	echo "benchstat summary: $out/benchstat.txt"
else
	echo "benchstat unavailable (module proxy); medians above are computed by test/benchratio.awk"
fi
