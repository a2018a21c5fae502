package system

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/testenv"
	bbolt "go.etcd.io/bbolt"

	"github.com/dronetrack/dronetrack/cmd/dronetrack/cli"
	"github.com/dronetrack/dronetrack/infra/local"
)

// untarFixture unpacks a testdata .tar.gz into a fresh directory.
func untarFixture(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "data")
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, dir) {
			t.Fatalf("fixture entry %q climbs out", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o700); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// fixtureExpect is testdata/datadir-format1.json: what the fixture holds.
type fixtureExpect struct {
	Reports map[string][]time.Time `json:"reports"` // demo drone id -> report times
	Scout   struct {
		Key     string      `json:"key"`
		Reports []time.Time `json:"reports"`
	} `json:"scout"`
	Geofence string `json:"geofence"`
	User     struct{ Email, Password string }
}

// TestDataDirFromPreviousRelease opens a data dir written by the release
// before formats were recorded (testdata/datadir-format1.md): up upgrades
// it to today's format, says so once, and everything in it is intact and
// working: tenants, drones and their history and state, drone keys (the
// pepper), the demo login and an added user, a geofence, and its broker
// queue, which takes new reports.
func TestDataDirFromPreviousRelease(t *testing.T) {
	var exp fixtureExpect
	b, err := os.ReadFile(filepath.Join("testdata", "datadir-format1.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	dir := untarFixture(t, "datadir-format1.tar.gz")
	if v, err := local.DataDirVersion(dir); err != nil || v != 1 {
		t.Fatalf("fixture format %d, %v; want 1 (no format.json)", v, err)
	}
	logs := &testenv.LogBuffer{}
	sys, demo := startTestSystem(t, local.Options{DataDir: dir, Log: logs, Out: logs})
	if !strings.Contains(logs.String(), "upgraded from format 1 to "+itoa(local.DataDirFormat)) {
		t.Errorf("up does not say it upgraded the data dir:\n%s", logs.String())
	}
	if v, err := local.DataDirVersion(dir); err != nil || v != local.DataDirFormat {
		t.Errorf("after up: format %d, %v; want %d", v, err, local.DataDirFormat)
	}
	ctx := t.Context()
	checkFixture(t, sys, demo, exp)

	// Still working: the old keys report, through the old broker queue.
	now := time.Now().UTC().Add(-time.Second).Format(time.RFC3339Nano)
	mustPostReport(t, sys.URL(), exp.Scout.Key, `{"ts":"`+now+`","lat":46.6,"lon":8.5}`)
	scout := scoutDrone(t, sys)
	for deadline := time.Now().Add(30 * time.Second); len(fixtureTrack(t, sys, "acme-air", scout)) < len(exp.Scout.Reports)+1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the report posted with the fixture's scout key was not stored within 30 s")
		}
	}
	if _, err := sys.Store().Tenant(ctx, local.DemoTenantID); err != nil {
		t.Error(err)
	}

	// A second start finds today's format: no upgrade.
	if err := sys.Shutdown(); err != nil {
		t.Fatal(err)
	}
	checkDetectorBesideDrone(t, dir, scout)
	logs2 := &testenv.LogBuffer{}
	startTestSystem(t, local.Options{DataDir: dir, Log: logs2, Out: logs2})
	if strings.Contains(logs2.String(), "upgraded") {
		t.Errorf("second start upgraded again:\n%s", logs2.String())
	}
}

// checkDetectorBesideDrone checks the store of the upgraded data dir in
// dir keeps the flight detector of droneID (which reported after the
// upgrade) and its newest history points beside the drone's document
// (formats 5 and 6), no detector in the bucket of
// their own the earlier releases used, and the fixture's alert trackers
// where they were.
func checkDetectorBesideDrone(t *testing.T, dir, droneID string) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(dir, local.StoreFile), 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		if n := tx.Bucket([]byte("flightDetectors")).Stats().KeyN; n != 0 {
			t.Errorf("after the upgrade flightDetectors holds %d records; want them beside their drones", n)
		}
		if tx.Bucket([]byte("drones")).Get([]byte(droneID+"\x00f")) == nil {
			t.Errorf("drone %s: no flight detector beside it after a report", droneID)
		}
		// Format 6: its newest history points beside it too.
		if tx.Bucket([]byte("drones")).Get([]byte(droneID+"\x00h")) == nil {
			t.Errorf("drone %s: no history tail beside it after a report", droneID)
		}
		if n := tx.Bucket([]byte("alertTrackers")).Stats().KeyN; n < 3 {
			t.Errorf("alertTrackers holds %d records; want the fixture's 3 at least", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkFixture checks that a running system holds what the format-1 fixture
// holds.
func checkFixture(t *testing.T, sys *local.System, demo []local.DemoKey, exp fixtureExpect) {
	t.Helper()
	byID := map[string]local.DemoKey{}
	for _, d := range demo {
		byID[d.DroneID] = d
	}
	for id, want := range exp.Reports {
		d, ok := byID[id]
		if !ok {
			t.Fatalf("demo drone %s of the fixture is not among the demo keys", id)
		}
		checkTrackTimes(t, sys, d.TenantID, id, want)
		st, err := sys.Store().LatestState(t.Context(), d.TenantID, id)
		if err != nil || !st.TS.Equal(want[len(want)-1]) {
			t.Errorf("drone %s latest state at %s, %v; want the last report's %s", id, st.TS, err, want[len(want)-1])
		}
	}
	checkTrackTimes(t, sys, "acme-air", scoutDrone(t, sys), exp.Scout.Reports)

	// Accounts: the demo owner and the added user log in.
	c, _ := loginClient(t, sys.URL(), sys.DemoLogin().Email, sys.DemoLogin().Password)
	loginClient(t, sys.URL(), exp.User.Email, exp.User.Password)
	// The geofence.
	resp, err := c.Get(sys.URL() + "/api/v1/geofences")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"name":"`+exp.Geofence+`"`)) {
		t.Errorf("geofences: %d %s; want %q", resp.StatusCode, body, exp.Geofence)
	}
	// Keys: a demo drone's key still authenticates (the pepper is intact).
	now := time.Now().UTC().Add(-time.Second).Format(time.RFC3339Nano)
	mustPostReport(t, sys.URL(), demo[0].Key, `{"ts":"`+now+`","lat":47.3,"lon":8.5}`)
}

func checkTrackTimes(t *testing.T, sys *local.System, tenantID, droneID string, want []time.Time) {
	t.Helper()
	var got []time.Time
	for _, p := range fixtureTrack(t, sys, tenantID, droneID) {
		got = append(got, p.Report.TS.UTC())
	}
	slices.SortFunc(got, func(a, b time.Time) int { return a.Compare(b) })
	wantUTC := make([]time.Time, len(want))
	for i, w := range want {
		wantUTC[i] = w.UTC()
	}
	if !slices.EqualFunc(got, wantUTC, time.Time.Equal) {
		t.Errorf("drone %s/%s history %v, want %v", tenantID, droneID, got, wantUTC)
	}
}

// fixtureTrack reads a drone's history from before the fixture was made:
// its reports are from that day (readTrack looks back 24 h only), kept for
// ten years by the history TTL the fixture was written with.
func fixtureTrack(t *testing.T, sys *local.System, tenantID, droneID string) []store.TrackPoint {
	t.Helper()
	pts, err := sys.Store().Track(t.Context(), store.TrackQuery{TenantID: tenantID, DroneID: droneID,
		From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Now().Add(time.Hour), Limit: 1000})
	if err != nil {
		t.Fatalf("track of %s: %v", droneID, err)
	}
	return pts
}

// scoutDrone is the id of the fixture's drone in tenant acme-air.
func scoutDrone(t *testing.T, sys *local.System) string {
	t.Helper()
	ds, err := sys.Store().Drones(t.Context(), "acme-air")
	if err != nil || len(ds) != 1 {
		t.Fatalf("drones of acme-air: %v, %v; want the one scout", ds, err)
	}
	return ds[0].ID
}

// TestNewerDataDirRefused: a data dir of a format newer than this release
// is refused before anything opens it, by up and by the admin commands, with
// a message naming both formats; nothing in it changes.
func TestNewerDataDirRefused(t *testing.T) {
	dir := t.TempDir()
	newer := []byte(`{"format":` + itoa(local.DataDirFormat+1) + `}` + "\n")
	if err := os.WriteFile(filepath.Join(dir, local.FormatFile), newer, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := local.Start(t.Context(), local.Options{DataDir: dir, HTTPAddr: "127.0.0.1:0"})
	wantMsg := []string{"format " + itoa(local.DataDirFormat+1), "format " + itoa(local.DataDirFormat)}
	if err == nil || !errors.Is(err, local.ErrNewerFormat) {
		t.Fatalf("up on a newer data dir: %v, want it refused", err)
	}
	for _, w := range wantMsg {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal %q does not name %q", err, w)
		}
	}
	err = cli.Run(t.Context(), []string{"tenant", "create", "--data", dir, "--name", "x"}, io.Discard, io.Discard)
	if err == nil || !errors.Is(err, local.ErrNewerFormat) {
		t.Errorf("admin command on a newer data dir: %v, want it refused", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the refused data dir was changed: %v", entries)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, local.FormatFile)); !bytes.Equal(b, newer) {
		t.Errorf("format.json rewritten: %s", b)
	}
	// A format record that is not one is refused too, not guessed at.
	if err := os.WriteFile(filepath.Join(dir, local.FormatFile), []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := local.Start(t.Context(), local.Options{DataDir: dir, HTTPAddr: "127.0.0.1:0"}); err == nil || !strings.Contains(err.Error(), "not a format record") {
		t.Errorf("up on a garbled format.json: %v", err)
	}
}

// TestDataDirFormatBasics: a new data dir gets today's format; every
// format before today's has its migration.
func TestDataDirFormatBasics(t *testing.T) {
	if len(local.Migrations) != local.DataDirFormat-1 {
		t.Fatalf("%d migrations for format %d, want one per step from 1", len(local.Migrations), local.DataDirFormat)
	}
	dir := t.TempDir()
	if from, err := local.PrepareDataDir(dir); err != nil || from != 0 {
		t.Fatalf("new data dir: from %d, %v", from, err)
	}
	if v, err := local.DataDirVersion(dir); err != nil || v != local.DataDirFormat {
		t.Errorf("new data dir: format %d, %v; want %d", v, err, local.DataDirFormat)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
