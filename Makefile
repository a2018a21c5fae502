# Dronetrack developer entry points. `make run` starts the one-machine system;
# `make test` runs every test, starting the services they need.
SHELL := /bin/bash
GO ?= go
# Build with the toolchain the go.mod files name (go1.26.10: it fixes
# standard-library vulnerabilities reachable from our code in 1.26.8),
# fetched once through the Go module proxy; a newer local Go is used as is.
# A machine whose go env says GOTOOLCHAIN=local would otherwise ignore it.
export GOTOOLCHAIN ?= auto
MODULES := events core functions/ingest functions/process functions/cache-refresh functions/alerts functions/serve-map infra cmd/dronetrack test/knative test/system

.PHONY: run test test-go lint bench load tidy soak

run:
	$(GO) run ./cmd/dronetrack up --simulate 50

test:
	./test/run-all.sh

lint:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	for m in $(MODULES); do (cd $$m && $(GO) vet ./...) || exit 1; done

# Benchmarks that bound the speed, -count 5 into test/results/bench.txt
# (benchstat-ready), with medians and goal ratios (docs/performance.md).
bench:
	./test/bench.sh

# One-machine load test: `dronetrack up` in its own process driven by
# `dronetrack load --url` from another (test/load.sh), drones at 1 Hz, one
# report per request, at a ramp of rates; table, JSON and chart in
# test/results/load.{md,json,png}. LOAD_DRONES and LOAD_FLAGS override it.
# Stored latency comes from the live stream (process announces a state only
# after its store write commits); --poll is the fleet API's, for visible.
# The table has up's CPU and the generator's own, per report and request.
# The stretch run (10k drones at 1 Hz): LOAD_DRONES=10000 LOAD_FLAGS="--rates 2500,5000,10000 --step 15s --poll 250ms".
# `dronetrack load` without --url runs up in the generator's process.
LOAD_DRONES ?= 5000
LOAD_FLAGS ?= --rates 1000,2500,5000 --step 15s --poll 250ms
load:
	GO=$(GO) ./test/load.sh $(CURDIR)/test/results $(LOAD_DRONES) $(LOAD_FLAGS)

tidy:
	for m in $(MODULES); do (cd $$m && $(GO) mod tidy) || exit 1; done

# Long-running acceptance tests kept out of `make test`: the MAVLink bridge
# with the uplink cut for 30 s (3 s in `make test`), alone and through `up`
# into the store; every position must arrive once, in order. TestFaultSoak:
# 2,000 reports/s through `up` for 10 min with a function cut every minute;
# prints loss (must be 0), error rate and live-heap growth.
# TestFaultSoakCluster: the same on the cluster's adapters (a private
# Firestore emulator and Redis), 500 reports/s for 10 min with a fault every
# minute in turn: process cut, cache-refresh cut, Redis restart, Firestore
# kill and restart. DRONETRACK_SOAK_DURATION shortens both soaks.
# test/knative: each function as its own func-go process (host-built): 20 cold
# starts per function, kill -9 and rolling restarts under a minute of load,
# an SSE stream held past func-go's 30 s server timeouts.
soak:
	cd core && DRONETRACK_SOAK=1 $(GO) test -count=1 -timeout 10m -run 'TestBridgeLinkCut' -v ./bridge
	cd test/system && DRONETRACK_SOAK=1 $(GO) test -count=1 -timeout 10m -run 'TestBridgeThroughUp' -v .
	cd test/system && DRONETRACK_SOAK=1 $(GO) test -count=1 -timeout 25m -run '^TestFaultSoak$$' -v .
	cd test/system && DRONETRACK_SOAK=1 $(GO) test -count=1 -timeout 45m -run '^TestFaultSoakCluster$$' -v .
	cd test/knative && DRONETRACK_SOAK=1 $(GO) test -count=1 -timeout 30m -run '^(TestColdStart|TestKillReplicasUnderLoad|TestRollingRestartUnderLoad|TestSSEOutlivesFuncGoTimeouts)$$' -v .
