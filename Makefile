# Dronetrack developer entry points. `make run` starts the one-machine system;
# `make test` runs every test, starting the services they need.
SHELL := /bin/bash
GO ?= go
MODULES := events core functions/ingest functions/process functions/cache-refresh functions/serve-map infra

.PHONY: run test test-go lint bench tidy soak

run:
	$(GO) run ./cmd/dronetrack up --simulate 50

test:
	./test/run-all.sh

lint:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	for m in $(MODULES); do (cd $$m && $(GO) vet ./...) || exit 1; done

bench:
	for m in $(MODULES); do (cd $$m && $(GO) test -run '^$$' -bench . -benchmem ./...) || exit 1; done

tidy:
	for m in $(MODULES); do (cd $$m && $(GO) mod tidy) || exit 1; done

# Long-running acceptance tests kept out of `make test`: the MAVLink bridge
# with the uplink cut for 30 s (3 s in `make test`), alone and through `up`
# into the store; every position must arrive once, in order.
soak:
	cd core && DRONETRACK_SOAK=1 $(GO) test -count=1 -timeout 10m -run 'TestBridgeLinkCut' -v ./bridge
	cd cmd/dronetrack && DRONETRACK_SOAK=1 $(GO) test -count=1 -timeout 10m -run 'TestBridgeThroughUp' -v .
