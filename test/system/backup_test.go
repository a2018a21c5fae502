package system

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/sim"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/events"

	"github.com/dronetrack/dronetrack/cmd/dronetrack/cli"
	"github.com/dronetrack/dronetrack/infra/local"
)

// ackLog records, per drone, each acknowledged report with when its request
// was first sent and when the 202 arrived.
type ackLog struct {
	mu   sync.Mutex
	acks map[int][]ackedReport
}

type ackedReport struct {
	ts             time.Time
	sentAt, ackdAt time.Time
}

func (l *ackLog) on(drone int, reports []events.Report, sentAt, ackedAt time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range reports {
		l.acks[drone] = append(l.acks[drone], ackedReport{ts: r.TS.UTC(), sentAt: sentAt, ackdAt: ackedAt})
	}
}

// TestBackupUnderLoadRestore is the done-when for backups: while 20
// drones report at 5 Hz and process is down (so the broker holds a backlog
// of undelivered events), `dronetrack backup` takes a backup of the running
// up; it is restored into a new data dir and started. Every report
// acknowledged before the backup began is there (in the store, or delivered
// from the backup's pending events), no report sent after the backup ended
// is, and each drone's latest state is its newest stored report (nothing
// half processed). The tenant, drone key, user, geofence and dead letter
// made before the backup are there and work.
func TestBackupUnderLoadRestore(t *testing.T) {
	const drones = 20
	ctx := context.Background()
	root := t.TempDir()
	dir := filepath.Join(root, "data")
	sys, demo := startTestSystem(t, local.Options{DataDir: dir, DemoDrones: drones})

	// Accounts, keys and fences made before the backup.
	var out bytes.Buffer
	if err := cli.Run(ctx, []string{"tenant", "create", "--data", dir, "--name", "Backup Air"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := cli.Run(ctx, []string{"drone", "add", "--data", dir, "--tenant", "backup-air", "--name", "kept"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := cli.Run(ctx, []string{"user", "add", "--data", dir, "--tenant", local.DemoTenantID, "--email", "ops@example.com", "--role", "admin"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	keptKey := regexp.MustCompile(`key \(shown once, store it now\): (\S+)`).FindStringSubmatch(out.String())
	password := regexp.MustCompile(`password \(shown once, store it now\): (\S+)`).FindStringSubmatch(out.String())
	if keptKey == nil || password == nil {
		t.Fatalf("admin output lacks the key or the password:\n%s", out.String())
	}
	api := newAlertsAPI(t, ctx, sys)
	api.call("POST", "/api/v1/geofences", map[string]any{"name": "backed-up", "mode": "keep-in",
		"polygon": []map[string]float64{{"lat": 46.9, "lon": 8.4}, {"lat": 46.9, "lon": 8.6}, {"lat": 47.1, "lon": 8.6}, {"lat": 47.1, "lon": 8.4}}}, 201)

	// A dead letter: an event process refuses for good.
	postPoison(t, sys, "poison-backup")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		dls, err := sys.Broker().DeadLetters(ctx)
		if err == nil && len(dls) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("poison event not dead-lettered: %v %v", dls, err)
		}
	}

	// Load, with process down across the backup.
	keys := make([]string, drones)
	for i := range keys {
		keys[i] = demo[i].Key
	}
	log := &ackLog{acks: map[int][]ackedReport{}}
	simDone := make(chan sim.Summary, 1)
	go func() {
		sum, err := sim.Run(ctx, sim.Config{URL: sys.URL(), Keys: keys, Rate: 5, Duration: 6 * time.Second, Seed: 7, OnAck: log.on})
		if err != nil {
			t.Error(err)
		}
		simDone <- sum
	}()
	time.Sleep(1500 * time.Millisecond)
	outage := make(chan struct{})
	go func() { defer close(outage); restartListener(t, sys.Function(local.FnProcess), 2*time.Second) }()
	time.Sleep(500 * time.Millisecond)

	file := filepath.Join(root, "dronetrack.backup")
	var bout bytes.Buffer
	began := time.Now()
	if err := cli.Run(ctx, []string{"backup", "--data", dir, "--out", file}, &bout, io.Discard); err != nil {
		t.Fatalf("backup while up runs: %v", err)
	}
	ended := time.Now()
	t.Logf("%s(took %s)", bout.String(), ended.Sub(began).Round(time.Millisecond))
	m := regexp.MustCompile(`(\d+) pending events`).FindStringSubmatch(bout.String())
	if m == nil {
		t.Fatalf("backup output: %q", bout.String())
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 {
		t.Error("the backup holds no pending events although process was down: the test does not exercise the broker side")
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v %v, want 0600 (it holds the pepper)", fi, err)
	}
	sum := <-simDone
	<-outage
	if sum.Acked == 0 || sum.Failed > 0 {
		t.Fatalf("simulator: %s", sum)
	}
	if err := sys.Shutdown(); err != nil {
		t.Fatal(err)
	}

	// Restore into a new data dir and start it.
	restored := filepath.Join(root, "restored")
	var rout bytes.Buffer
	if err := cli.Run(ctx, []string{"restore", file, "--data", restored}, &rout, io.Discard); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if err := cli.Run(ctx, []string{"restore", file, "--data", restored}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("restore over a used data dir: %v, want it refused", err)
	}
	logs := &testenv.LogBuffer{}
	sys2, _ := startTestSystem(t, local.Options{DataDir: restored, Log: logs, Out: logs})
	if !strings.Contains(logs.String(), "requeued "+m[1]+" events and 1 dead letters of the restored backup") {
		t.Errorf("restored up does not report requeuing the %s pending events and the dead letter:\n%s", m[1], logs.String())
	}
	for _, f := range []string{local.PendingFile, local.DeadFile} {
		if _, err := os.Stat(filepath.Join(restored, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after the requeue: %v", f, err)
		}
	}
	var dlq bytes.Buffer
	if err := cli.Run(ctx, []string{"dlq", "list", "--data", restored}, &dlq, io.Discard); err != nil || !strings.Contains(dlq.String(), "poison-backup") {
		t.Errorf("dead letter not restored: %v\n%s", err, dlq.String())
	}

	// Every report acknowledged before the backup began is there (once the
	// requeued events are delivered); none sent after it ended is.
	log.mu.Lock()
	acks := log.acks
	log.mu.Unlock()
	before, after := 0, 0
	deadline := time.Now().Add(60 * time.Second)
	for i := range drones {
		for {
			stored := map[time.Time]bool{}
			for _, p := range readTrack(t, sys2.Store(), demo[i].TenantID, demo[i].DroneID) {
				stored[p.Report.TS.UTC()] = true
			}
			var missing []time.Time
			for _, a := range acks[i] {
				if a.ackdAt.Before(began) && !stored[a.ts] {
					missing = append(missing, a.ts)
				}
			}
			if len(missing) > 0 && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			if len(missing) > 0 {
				t.Errorf("drone %d: %d reports acknowledged before the backup began are missing after the restore, e.g. %s", i, len(missing), missing[0])
			}
			for _, a := range acks[i] {
				switch {
				case a.ackdAt.Before(began):
					before++
				case a.sentAt.After(ended):
					after++
					if stored[a.ts] {
						t.Errorf("drone %d: report %s, sent %s after the backup ended, is in the restored store", i, a.ts, a.sentAt.Sub(ended))
					}
				}
			}
			break
		}
	}
	if before == 0 || after == 0 {
		t.Fatalf("%d reports acknowledged before the backup and %d sent after it: the run does not straddle the backup", before, after)
	}
	t.Logf("checked %d reports acknowledged before the backup (all restored) and %d sent after it (none restored)", before, after)

	// Nothing half present: each drone's latest state is one of its stored
	// reports at every moment, and its newest once the requeued events
	// are delivered.
	for i := range drones {
		if t.Failed() {
			break // the reports are already missing; no need to wait on states
		}
		eventuallyStateIsNewest(t, sys2, demo[i])
	}

	// Accounts, keys and fences.
	loginClient(t, sys2.URL(), "ops@example.com", password[1])
	api2 := newAlertsAPI(t, ctx, sys2)
	if body := api2.call("GET", "/api/v1/geofences", nil, http.StatusOK); !bytes.Contains(body, []byte(`"backed-up"`)) {
		t.Errorf("geofence not restored: %s", body)
	}
	if _, err := sys2.Store().Tenant(ctx, "backup-air"); err != nil {
		t.Errorf("tenant not restored: %v", err)
	}
	now := time.Now().UTC().Add(-time.Second).Format(time.RFC3339Nano)
	mustPostReport(t, sys2.URL(), keptKey[1], `{"ts":"`+now+`","lat":47,"lon":8.5}`)
	mustPostReport(t, sys2.URL(), demo[0].Key, `{"ts":"`+now+`","lat":47,"lon":8.5}`)
}

// eventuallyStateIsNewest checks that the drone's latest state is one of
// its stored reports and waits until it is the newest.
//
// Each poll reads the state first and the history after it: process writes
// a report's history before the state it makes, so the state read must be
// in a history read after it, even while the restored queue is still being
// delivered. The reverse order races with those deliveries: the pending
// events of a backup include reports acknowledged after it began, which
// the restored up may still be delivering when the history is read, and
// each one delivered moves the state past that read's newest report.
//
// The wait is bounded generously: a delivery holds up to process's
// STATE_INTERVAL, and one that fails (a store timeout on a loaded machine)
// runs process's retry chain, about 50 s of backoff plus the attempts.
func eventuallyStateIsNewest(t *testing.T, sys *local.System, d local.DemoKey) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err := sys.Store().LatestState(t.Context(), d.TenantID, d.DroneID)
		pts := readTrack(t, sys.Store(), d.TenantID, d.DroneID)
		stored := make(map[time.Time]bool, len(pts))
		var newest time.Time
		for _, p := range pts {
			stored[p.Report.TS.UTC()] = true
			if p.Report.TS.After(newest) {
				newest = p.Report.TS
			}
		}
		switch {
		case errors.Is(err, store.ErrNotFound) && len(pts) == 0:
			return // nothing stored for the drone, neither state nor history
		case err == nil && !stored[st.TS.UTC()]:
			t.Errorf("drone %s: latest state %s is a report its history (%d points, newest %s) lacks: state and history disagree", d.DroneID, st.TS, len(pts), newest)
			return
		case err == nil && st.TS.Equal(newest):
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("drone %s: latest state %s (%v), want its newest stored report %s", d.DroneID, st.TS, err, newest)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
