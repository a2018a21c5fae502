#!/usr/bin/env bash
# Creates (or updates) one region's Firestore database and applies
# firestore.indexes.json next to this script: composite indexes, single-field
# index exemptions and the TTL policy (track.expireAt). Idempotent: run it
# again after editing the JSON.
#
#   infra/firestore/setup.sh [--dry-run] PROJECT DATABASE LOCATION
#   e.g. infra/firestore/setup.sh dronetrack-prod europe-west1 europe-west1
#
# Why these settings (see docs/deploy.md, "Firestore"):
# - Queries run on document ids (track ranges) or on equality plus document
#   id (drones, geofences, webhooks of a tenant), which need no composite
#   index; the alert queries (tenantId + closedAt/updatedAt, linkLost +
#   lastSeen) have composite indexes in the JSON. Alert records keep their
#   body in an unindexed `data` field.
# - track.ts and track.expireAt are sequential values: indexed, they cap a
#   collection at ~500 writes/s (hotspot). Nothing queries them, nor the
#   other telemetry fields, nor drones.state (rewritten ~1/s per drone), so
#   their single-field indexes are exempted: cheaper, faster writes.
# - TTL on track.expireAt: Firestore deletes expired history points within
#   about 24 h of expiry; readers skip expired points meanwhile (the
#   emulator does not enforce TTL).
set -euo pipefail
dry=""
if [ "${1:-}" = "--dry-run" ]; then dry=1; shift; fi
if [ $# -ne 3 ]; then
	echo "usage: $0 [--dry-run] PROJECT DATABASE LOCATION" >&2
	exit 2
fi
project=$1 database=$2 location=$3
spec="$(dirname "$0")/firestore.indexes.json"
command -v jq >/dev/null || { echo "jq is required" >&2; exit 1; }

run() {
	if [ -n "$dry" ]; then printf '%q ' "$@"; echo; else "$@"; fi
}
common=(--project="$project")

if [ -n "$dry" ] || ! gcloud firestore databases describe --database="$database" "${common[@]}" >/dev/null 2>&1; then
	run gcloud firestore databases create --database="$database" --location="$location" \
		--type=firestore-native --delete-protection "${common[@]}"
fi

# Single-field overrides: TTL and index exemptions.
while IFS=$'\t' read -r group field ttl nindexes; do
	if [ "$ttl" = true ]; then
		# Synchronous: a second operation on the same field (its index
		# exemption below) fails while this one runs.
		run gcloud firestore fields ttls update "$field" --collection-group="$group" --enable-ttl \
			--database="$database" "${common[@]}"
	fi
	if [ "$nindexes" = 0 ]; then
		run gcloud firestore indexes fields update "$field" --collection-group="$group" --disable-indexes \
			--database="$database" --async "${common[@]}"
	fi
done < <(jq -r '.fieldOverrides[] | [.collectionGroup, .fieldPath, (.ttl // false), (.indexes | length)] | @tsv' "$spec")

# Composite indexes (the alert queries: core/store/firestore/alerts.go).
while IFS=$'\t' read -r group scope fields; do
	read -r -a configs <<<"$fields"
	run gcloud firestore indexes composite create --collection-group="$group" --query-scope="$scope" \
		"${configs[@]}" --database="$database" --async "${common[@]}" || true # exists already
done < <(jq -r '.indexes[] | [.collectionGroup,
	(.queryScope // "COLLECTION" | ascii_downcase | sub("_group"; "-group")),
	([.fields[] | "--field-config=field-path=\(.fieldPath)," +
		(if .arrayConfig then "array-config=contains" else "order=\(.order | ascii_downcase)" end)] | join(" "))] | @tsv' "$spec")
