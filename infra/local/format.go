package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FormatFile records the layout version of a data dir, so a release
// refuses a data dir a newer release wrote (it could silently ignore what
// it does not know, such as the events a restore left to deliver) and
// upgrades an older one in place.
const FormatFile = "format.json"

// DataDirFormat is the data dir layout this release writes.
//
//	1  store.db, broker/, pepper, demo-keys.json, demo-login.json,
//	   store-url, admin.json; no format.json (the releases before it).
//	2  format.json; acme/ (the --acme-domain certificate cache);
//	   restore-pending.jsonl and restore-deadletters.jsonl (events and
//	   dead letters of a restored backup still to hand to the broker,
//	   which a release of format 1 would ignore).
//	3  broker/ may hold batches stored compressed (core/broker batch
//	   version 2), which a release of format 2 cannot read and would
//	   drop: events still queued would be lost on a downgrade.
//	4  store.db may hold history points in the compact form (core/store/bolt
//	   trackPointV1), which a release of format 3 cannot decode: it would
//	   fail to read those drones' history and never prune it.
//	5  store.db keeps a drone's flight detector in the drones bucket
//	   beside its document (core/store/bolt adjunct.go), where a release of
//	   format 4 would not look for it (it would start every drone's flight
//	   detection afresh) and would fail to list the drones (it decodes
//	   every key of the bucket as a drone); and it stores a flight in
//	   progress when it begins and ends only (readers take it from the
//	   detector), which a release of format 4 would show as of its start.
//	6  store.db keeps a drone's newest history points in the drones bucket
//	   beside its document (core/store/bolt historytail.go), where a
//	   release of format 5 would not look for them: it would not show them,
//	   store a redelivered one twice and never prune them.
const DataDirFormat = 6

// Migrations[i] turns a data dir of format i+1 into format i+2. Each runs
// once: the format is recorded after each step, so an upgrade cut short
// resumes where it stopped.
var Migrations = []func(dir string) error{
	// 1 -> 2: nothing moves; format 2 only adds files.
	func(string) error { return nil },
	// 2 -> 3: nothing moves; the broker reads the batches format 2 wrote.
	func(string) error { return nil },
	// 3 -> 4: nothing moves; the store reads the JSON points format 3
	// wrote (and rewrites one in the compact form only when it is written
	// again).
	func(string) error { return nil },
	// 4 -> 5: nothing moves here; the store moves the detectors of existing
	// drones when it opens store.db (bolt.Open, once: it marks the file
	// when done, and an upgrade cut short goes on at the next open).
	func(string) error { return nil },
	// 5 -> 6: nothing moves: a drone without a history tail has all its
	// history in its history bucket, as format 5 left it.
	func(string) error { return nil },
}

// formatRecord is the content of format.json.
type formatRecord struct {
	Format int `json:"format"`
}

// DataDirVersion is the format of the data dir: the one format.json
// records, 1 for a used data dir without it, and 0 for a new one.
func DataDirVersion(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, FormatFile))
	if err == nil {
		var r formatRecord
		if err := json.Unmarshal(b, &r); err != nil || r.Format < 1 {
			return 0, fmt.Errorf("data dir %s: %s is not a format record (%q): restore it from a backup or remove it to treat the data dir as format 1", dir, FormatFile, b)
		}
		return r.Format, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("data dir %s: %w", dir, err)
	}
	for _, f := range []string{StoreFile, brokerDir, PepperFile, DemoKeysFile, storeURLFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return 1, nil
		}
	}
	return 0, nil
}

// ErrNewerFormat says a data dir was written by a newer release.
var ErrNewerFormat = errors.New("data dir written by a newer dronetrack")

// checkFormat refuses a data dir of a newer format than this release's.
func checkFormat(dir string) (int, error) {
	v, err := DataDirVersion(dir)
	if err != nil {
		return 0, err
	}
	if v > DataDirFormat {
		return v, fmt.Errorf("%w: %s has format %d, this dronetrack reads format %d at most; "+
			"run the release that wrote it (or newer), or restore a backup taken with format %d",
			ErrNewerFormat, dir, v, DataDirFormat, DataDirFormat)
	}
	return v, nil
}

// PrepareDataDir is what `up` does before opening anything in dir: refuse
// a newer format, migrate an older one step by step, stamp a new one. It
// returns the format the data dir had.
func PrepareDataDir(dir string) (int, error) {
	v, err := checkFormat(dir)
	if err != nil {
		return 0, err
	}
	if v == 0 {
		return 0, writeFormat(dir, DataDirFormat)
	}
	for from := v; from < DataDirFormat; from++ {
		if err := Migrations[from-1](dir); err != nil {
			return v, fmt.Errorf("data dir %s: upgrade from format %d to %d: %w", dir, from, from+1, err)
		}
		if err := writeFormat(dir, from+1); err != nil {
			return v, err
		}
	}
	return v, nil
}

func writeFormat(dir string, v int) error {
	b, _ := json.Marshal(formatRecord{Format: v})
	if err := writeFileAtomic(filepath.Join(dir, FormatFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("data dir %s: record format %d: %w", dir, v, err)
	}
	return nil
}
