package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/store/bolt"

	"github.com/dronetrack/dronetrack/infra/local"
)

type tarEntry struct {
	name string
	data []byte
}

// testBackup builds a backup archive from entries, as backup writes one.
func testBackup(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		if err := local.AddBytes(tw, e.name, e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(tw.Close(), gz.Close()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// validEntries is a small, complete backup: an empty bolt store, a pepper
// and one pending event.
func validEntries(t *testing.T, info local.BackupInfo) []tarEntry {
	t.Helper()
	p := filepath.Join(t.TempDir(), "s.db")
	st, err := bolt.Open(p, bolt.WithPruneEvery(0))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	meta, _ := json.Marshal(info)
	return []tarEntry{
		{local.BackupInfoName, meta},
		{local.PepperFile, []byte("00ff\n")},
		{"acme/acme_account+key", []byte("k")},
		{local.BackupPendingName, []byte(`{"triggers":["process"],"event":{"specversion":"1.0","id":"e1","source":"/x","type":"t"}}` + "\n")},
		{local.BackupDeadName, []byte(`{"trigger":"process","attempts":1,"event":{"specversion":"1.0","id":"d1","source":"/x","type":"t"}}` + "\n")},
		{local.StoreFile, db},
	}
}

// TestRestore: a complete backup unpacks into a new data dir (files 0600,
// dir 0700, its format recorded, pending events kept for up); anything
// wrong (a cut file, a newer format, an entry that climbs out, a pending
// count that does not add up, a used target) is refused and leaves no data
// dir behind.
func TestRestore(t *testing.T) {
	info := local.BackupInfo{BackupFormat: local.BackupFormat, DataDirFormat: local.DataDirFormat, CreatedAt: time.Now().UTC(), PendingEvents: 1, DeadLetters: 1}
	root := t.TempDir()
	good := filepath.Join(root, "good.backup")
	if err := os.WriteFile(good, testBackup(t, validEntries(t, info)), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "restored")
	var out bytes.Buffer
	if err := Run(t.Context(), []string{"restore", "--data", dir, good}, &out, io.Discard); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if !strings.Contains(out.String(), "1 pending events") {
		t.Errorf("restore output: %s", out.String())
	}
	if v, err := local.DataDirVersion(dir); err != nil || v != local.DataDirFormat {
		t.Errorf("restored format %d, %v", v, err)
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		fi, _ := d.Info()
		if want := fs.FileMode(0o600); d.IsDir() {
			if fi.Mode().Perm() != 0o700 {
				t.Errorf("%s: %v, want 0700", p, fi.Mode().Perm())
			}
		} else if fi.Mode().Perm() != want {
			t.Errorf("%s: %v, want 0600", p, fi.Mode().Perm())
		}
		return nil
	})
	for _, f := range []string{local.StoreFile, local.PepperFile, local.PendingFile, local.DeadFile, "acme/acme_account+key"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("restored data dir lacks %s: %v", f, err)
		}
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 2 {
		t.Errorf("restore left temporary files beside the data dir: %v", entries)
	}

	newer := info
	newer.DataDirFormat = local.DataDirFormat + 1
	miscounted := info
	miscounted.PendingEvents = 2
	cut, _ := os.ReadFile(good)
	cut = cut[:len(cut)/2]
	climb := validEntries(t, info)
	climb = append(climb[:2], append([]tarEntry{{"acme/../../evil", []byte("x")}}, climb[2:]...)...)
	for _, tc := range []struct {
		name    string
		archive []byte
		want    []string
	}{
		{"cut", cut, []string{"unexpected EOF"}},
		{"newer", testBackup(t, validEntries(t, newer)), []string{"format " + strconv.Itoa(local.DataDirFormat+1), "format " + strconv.Itoa(local.DataDirFormat)}},
		{"climb", testBackup(t, climb), []string{`unexpected entry "acme/../../evil"`}},
		{"miscounted", testBackup(t, validEntries(t, miscounted)), []string{"holds 1 pending events", "says 2"}},
		{"no store", testBackup(t, validEntries(t, info)[:5]), []string{"lacks store.db"}},
		{"bad dead letter", testBackup(t, append(validEntries(t, info)[:4], tarEntry{local.BackupDeadName, []byte(`{"trigger":""}` + "\n")})), []string{"broker-deadletters.jsonl line 1"}},
		{"not a backup", []byte("hello"), []string{"not a dronetrack backup"}},
	} {
		file := filepath.Join(root, tc.name+".backup")
		if err := os.WriteFile(file, tc.archive, 0o600); err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(root, "target-"+tc.name)
		err := Run(t.Context(), []string{"restore", file, "--data", target}, io.Discard, io.Discard)
		if err == nil {
			t.Errorf("%s: restored", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want it to say %q", tc.name, err, w)
			}
		}
		if _, err := os.Stat(target); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: a failed restore left %s: %v", tc.name, target, err)
		}
	}
	if err := Run(t.Context(), []string{"restore", good, "--data", dir}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("restore into a used data dir: %v", err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(root, ".*"))
	if len(leftovers) > 0 {
		t.Errorf("failed restores left temporary dirs: %v", leftovers)
	}
}

// TestBackupNeedsRunningUp: backup without a running up says what to do,
// and writes nothing.
func TestBackupNeedsRunningUp(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(t.TempDir(), "x.backup")
	err := Run(t.Context(), []string{"backup", "--data", dir, "--out", out}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no running up") {
		t.Errorf("backup with no up: %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("backup with no up wrote %s", out)
	}
	if err := Run(t.Context(), []string{"backup", "--data", dir}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--out") {
		t.Errorf("backup without --out: %v", err)
	}
}
