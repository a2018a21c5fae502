#!/usr/bin/env bash
# govulncheck over every module given (default: all go.work modules): fails
# when a known vulnerability is reachable from our code (symbol level).
#
# The scanner comes from the Go module proxy at a pinned version. The
# vulnerability database is built locally from the OSV entries in the
# golang.org/x/vulndb module (a pinned snapshot, also from the proxy): the
# test machines reach only the package registries, and a pinned database
# keeps the check repeatable. GOVULNCHECK_DB=URL uses another database.
set -euo pipefail
cd "$(dirname "$0")/.."
GOVULNCHECK_VERSION=${GOVULNCHECK_VERSION:-v1.9.0}
VULNDB_VERSION=${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}

# cmd/dronetrack links every function and core package, so one scan covers
# all the code that ships; pass module dirs to scan others.
mods=("$@")
if [ ${#mods[@]} -eq 0 ]; then mods=("$PWD/cmd/dronetrack"); fi

db_args=()
if [ -n "${GOVULNCHECK_DB:-}" ]; then
	db_args=(-db "$GOVULNCHECK_DB")
else
	dir=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | jq -r .Dir)
	[ -d "$dir/data/osv" ] || { echo "FATAL: no vulnerability database: vuln.go.dev unreachable and golang.org/x/vulndb@$VULNDB_VERSION has no data/osv" >&2; exit 1; }
	db=${TMPDIR:-/tmp}/dronetrack-vulndb-$VULNDB_VERSION
	if [ ! -f "$db/index/modules.json" ]; then
		python3 - "$dir/data/osv" "$db" <<'PY'
import json, os, sys, glob
src, out = sys.argv[1], sys.argv[2]
os.makedirs(out + "/index", exist_ok=True); os.makedirs(out + "/ID", exist_ok=True)
mods, vulns, newest = {}, [], ""
for p in sorted(glob.glob(src + "/*.json")):
    e = json.load(open(p))
    if e.get("withdrawn"):
        continue
    json.dump(e, open(f"{out}/ID/{e['id']}.json", "w"))
    newest = max(newest, e["modified"])
    vulns.append({"id": e["id"], "modified": e["modified"], "aliases": e.get("aliases", [])})
    for a in e.get("affected", []):
        fixed = ""
        for r in a.get("ranges", []):
            for ev in r.get("events", []):
                fixed = ev.get("fixed", fixed)
        m = mods.setdefault(a["package"]["name"], {"path": a["package"]["name"], "vulns": []})
        if all(v["id"] != e["id"] for v in m["vulns"]):
            m["vulns"].append({"id": e["id"], "modified": e["modified"], **({"fixed": fixed} if fixed else {})})
json.dump(list(mods.values()), open(out + "/index/modules.json", "w"))
json.dump(vulns, open(out + "/index/vulns.json", "w"))
json.dump({"modified": newest}, open(out + "/index/db.json", "w"))
print(f"vulnerability database: {len(vulns)} entries from golang.org/x/vulndb snapshot")
PY
	fi
	db_args=(-db "file://$db")
fi

# Findings at symbol level (our code calls the vulnerable function) fail the
# check, in a dependency (bump it) or in the standard library (raise the
# go.mod toolchain line). GOVULNCHECK_STDLIB=warn lists standard-library
# findings without failing, for a day when no fixed toolchain is out yet.
status=0
for m in "${mods[@]}"; do
	echo "-- ${m#"$PWD"/}"
	json=$(mktemp)
	(cd "$m" && go run "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION" "${db_args[@]}" -format json ./... >"$json") || { echo "govulncheck did not run"; cat "$json" | tail -20; exit 1; }
	called='select(.finding != null and (.finding.trace[0].function // "") != "") | .finding'
	mods_hit=$(jq -r "$called | select(.trace[0].module != \"stdlib\") | \"\(.osv) \(.trace[0].module)@\(.trace[0].version) fixed in \(.fixed_version // \"(none)\")\"" "$json" | sort -u)
	std_hit=$(jq -r "$called | select(.trace[0].module == \"stdlib\") | \"\(.osv) \(.trace[0].package) (go \(.trace[0].version)) fixed in \(.fixed_version // \"(none)\")\"" "$json" | sort -u)
	if [ -n "$mods_hit" ]; then
		echo "vulnerable dependency code is reachable (bump these modules):"; echo "$mods_hit"; status=1
	fi
	if [ -n "$std_hit" ]; then
		echo "standard library vulnerabilities reachable (fixed by a newer Go toolchain):"; echo "$std_hit"
		[ "${GOVULNCHECK_STDLIB:-fail}" = fail ] && status=1
	fi
	[ -z "$mods_hit$std_hit" ] && echo "no known vulnerable code reachable"
	rm -f "$json"
done
exit $status
