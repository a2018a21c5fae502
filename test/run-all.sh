#!/usr/bin/env bash
# Runs every Dronetrack test on this machine, starting what the tests need:
# a Firestore emulator (shared by all test binaries through
# FIRESTORE_EMULATOR_HOST) and a Redis server when none answers. A missing
# service is an error here, never a skipped test.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${TEST_OUTPUT_DIR:-$root/test/results}
mkdir -p "$out"
log() { printf '\n== %s\n' "$*"; }

need_cmd() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
	if ! need_cmd apt-get; then echo "FATAL: $* missing and apt-get unavailable" >&2; exit 1; fi
	log "installing $* (apt)"
	apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Redis: the tests use REDIS_ADDR when set; testenv starts its own
# redis-server when nothing answers, so only the binary must exist.
need_cmd redis-server || apt_install redis-server

# The browser tests (test/system/browser_test.go) drive Debian's chromium;
# a browser is never downloaded from npm.
[ -x /usr/bin/chromium ] || apt_install chromium
if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
	export REDIS_ADDR=${REDIS_ADDR:-127.0.0.1:6379}
fi

# Firestore emulator: one for the whole run, each test uses its own project id.
jar=/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar
emu_pid=""
cleanup() {
	if [ -n "$emu_pid" ]; then kill "$emu_pid" 2>/dev/null || true; wait "$emu_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT
if [ -z "${FIRESTORE_EMULATOR_HOST:-}" ]; then
	[ -f "$jar" ] || { echo "FATAL: Firestore emulator jar not found at $jar (it ships with the go-svc machine image)" >&2; exit 1; }
	need_cmd java || apt_install openjdk-17-jre-headless
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	log "starting Firestore emulator on 127.0.0.1:$port"
	java -cp "$jar" com.google.cloud.datastore.emulator.firestore.CloudFirestore \
		--host 127.0.0.1 --port "$port" >"$out/firestore-emulator.log" 2>&1 &
	emu_pid=$!
	for _ in $(seq 1 120); do
		curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1 && break
		kill -0 "$emu_pid" 2>/dev/null || { cat "$out/firestore-emulator.log" >&2; echo "FATAL: emulator exited" >&2; exit 1; }
		sleep 0.5
	done
	curl -fsS "http://127.0.0.1:$port/" >/dev/null || { echo "FATAL: emulator not ready after 60 s" >&2; exit 1; }
	export FIRESTORE_EMULATOR_HOST=127.0.0.1:$port
fi

# The toolchain the go.mod files name (see Makefile), not whatever the
# machine's go env pins, so the tests and govulncheck see the Go that ships.
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
log "$(go version)"

# Workspace modules that hold Go packages (a module being scaffolded may not yet).
modules=()
for m in $(go list -m -f '{{.Dir}}'); do
	[ -n "$(cd "$m" && go list ./... 2>/dev/null)" ] && modules+=("$m")
done

# The front end (frontend/) is built into functions/serve-map/web, which is
# committed and embedded; rebuilding from source must change nothing.
if [ -f frontend/package-lock.json ]; then
	log "front end: npm ci + build, compared with the committed build"
	need_cmd npm || apt_install nodejs npm
	webhash() { (cd functions/serve-map/web && find . -type f | LC_ALL=C sort | xargs sha256sum | sha256sum); }
	before=$(webhash)
	(cd frontend && npm ci --no-audit --no-fund --loglevel=error >/dev/null && npm run --silent build >/dev/null)
	if [ "$before" != "$(webhash)" ]; then
		echo "FAIL: stale front-end build: functions/serve-map/web differs from a build of frontend/ (now rebuilt; commit it)"
		git status --short -- functions/serve-map/web
		exit 1
	fi
fi

log "gofmt + go vet"
unformatted=$(gofmt -l "${modules[@]}")
if [ -n "$unformatted" ]; then echo "gofmt needed:"; echo "$unformatted"; exit 1; fi
for m in "${modules[@]}"; do (cd "$m" && go vet ./...); done

# Each function is built on its own, outside the workspace, as
# `func build --builder=host` does: its go.mod must be complete.
log "standalone function builds (GOWORK=off)"
for f in functions/*/; do
	(cd "$f" && GOWORK=off go build ./...) || { echo "FATAL: $f does not build outside the workspace (run: cd $f && GOWORK=off go mod tidy)"; exit 1; }
done

log "go test (${#modules[@]} modules)"
status=0
: >"$out/go-test.json"
for m in "${modules[@]}"; do
	echo "-- ${m#"$root"/}"
	part=$(mktemp)
	(cd "$m" && go test -count=1 -timeout 8m -json ./... >"$part") || status=1
	# One line per package; failures are printed in full below.
	jq -r 'select(.Action=="output" and .Test==null and (.Output|test("^(ok|FAIL|\\?)\\s"))) | .Output' "$part" | sed -e 's/^/   /' -e '/^ *$/d' || true
	cat "$part" >>"$out/go-test.json"
	rm -f "$part"
done
# A package can fail without a failing test (panic, timeout, build error):
# count both.
jq -r 'select(.Action=="fail") | "FAIL: \(.Package) \(.Test // "(package)")"' "$out/go-test.json" | sort -u
fails=$(jq -r 'select(.Action=="fail") | .Package + " " + (.Test // "")' "$out/go-test.json" | wc -l)
if [ "$fails" -gt 0 ] || [ "$status" -ne 0 ]; then
	status=1
	# Failing tests' output, and for package-level failures the tail (stack dumps).
	jq -r 'select(.Action=="output") | .Output' "$out/go-test.json" | grep -B2 -A30 -- '--- FAIL' | head -300 || true
	for pkg in $(jq -r 'select(.Action=="fail" and .Test==null) | .Package' "$out/go-test.json" | sort -u); do
		echo "== output tail of $pkg"
		jq -r --arg p "$pkg" 'select(.Action=="output" and .Package==$p) | .Output' "$out/go-test.json" | tail -80
	done
fi
# Every fuzz target (func FuzzX in a _test.go file) runs a bounded number of
# executions on top of its committed seed corpus (testdata/fuzz); a crasher is
# written to testdata/fuzz/FuzzX/ in its package: commit it with the fix.
# The budget is a count (Nx), not a duration: with a duration Go <= 1.26's
# fuzz coordinator can report a spurious "context deadline exceeded" failure
# when the deadline races a busy worker (go.dev/issue/75804, fixed in 1.27).
log "fuzz (${FUZZ_TIME:=20000x} per target)"
fuzz_fail=0
while IFS=: read -r file name; do
	dir=$(dirname "$file")
	echo "-- ${dir#./} $name"
	if ! (cd "$dir" && go test -count=1 -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZ_TIME" -parallel 2 . >"$out/fuzz-$name.log" 2>&1); then
		echo "FAIL: fuzz $dir $name"; tail -30 "$out/fuzz-$name.log"; fuzz_fail=$((fuzz_fail + 1))
	fi
done < <(grep -rHoE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' "${modules[@]}" | sed 's/func //' | sort)
if [ "$fuzz_fail" -gt 0 ]; then status=1; fails=$((fails + fuzz_fail)); fi

# Known-vulnerable code reachable from our packages (the Go vulnerability
# database, through govulncheck from the module proxy at a pinned version).
log "govulncheck"
if ! ./test/govulncheck.sh; then status=1; fails=$((fails + 1)); echo "FAIL: govulncheck"; fi

passed=$(jq -r 'select(.Action=="pass" and .Test!=null) | .Test' "$out/go-test.json" | wc -l)
skipped=$(jq -r 'select(.Action=="skip" and .Test!=null) | .Test' "$out/go-test.json" | wc -l)
echo
echo "$passed passed, $fails failed, $skipped skipped"
exit $status
