package system

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
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

// TestUpSimulatorZeroLoss starts the whole one-machine system in-process,
// flies 200 simulated drones at 1 Hz for 10 s through its public listener,
// and checks that every report ingest acknowledged with 202 is in the store
// exactly once after a graceful shutdown. It logs the sustained rate and the
// ingest->stored latency (no timed assertions).
//
// DRONETRACK_LOAD="drones,rate,batch,duration" (e.g. "2000,1,1,30s") runs the
// same test as a load measurement at another size.
func TestUpSimulatorZeroLoss(t *testing.T) {
	drones, rate, batch, duration := 200, 1.0, 1, 10*time.Second
	if v := os.Getenv("DRONETRACK_LOAD"); v != "" {
		var d string
		if _, err := fmt.Sscanf(strings.ReplaceAll(v, ",", " "), "%d %g %d %s", &drones, &rate, &batch, &d); err != nil {
			t.Fatalf("DRONETRACK_LOAD=%q: want drones,rate,batch,duration: %v", v, err)
		}
		var err error
		if duration, err = time.ParseDuration(d); err != nil {
			t.Fatalf("DRONETRACK_LOAD duration: %v", err)
		}
	}
	ctx := context.Background()
	dir := t.TempDir()
	logs := &testenv.LogBuffer{}
	sys, err := local.Start(ctx, local.Options{
		DataDir: dir, HTTPAddr: "127.0.0.1:0", DemoDrones: drones, LogLevel: slog.LevelWarn,
		Log: logs, Out: logs, StopTimeout: 60 * time.Second,
	})
	if err != nil {
		t.Fatalf("start system: %v", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = sys.Shutdown()
		}
		if t.Failed() {
			t.Logf("system output:\n%s", logs.String())
		}
	}()
	demo, err := local.ReadDemoKeys(filepath.Join(dir, local.DemoKeysFile))
	if err != nil || len(demo) < drones {
		t.Fatalf("demo keys: %d, %v", len(demo), err)
	}
	demo = demo[:drones]
	keys := make([]string, drones)
	for i, d := range demo {
		keys[i] = d.Key
	}

	// While up runs, the admin commands go through its admin endpoint (the
	// bolt file and the broker are this process's).
	var adminOut bytes.Buffer
	if err := cli.Run(ctx, []string{"drone", "add", "--data", dir, "--tenant", local.DemoTenantID, "--name", "via-admin"}, &adminOut, io.Discard); err != nil {
		t.Errorf("drone add while up runs: %v", err)
	}
	if err := cli.Run(ctx, []string{"dlq", "list", "--data", dir}, &adminOut, io.Discard); err != nil {
		t.Errorf("dlq list while up runs: %v", err)
	}
	if !strings.Contains(adminOut.String(), "key (shown once") || !strings.Contains(adminOut.String(), "no dead letters") {
		t.Errorf("admin output through the running up:\n%s", adminOut.String())
	}

	tr := newTracker(demo)
	// Latency is sampled on at most 100 drones: polling every drone's track
	// every 20 ms would load the machine more than the system under test.
	pollCtx, stopPoll := context.WithCancel(ctx)
	pollDone := make(chan struct{})
	go func() { defer close(pollDone); tr.poll(pollCtx, sys.Store(), 20*time.Millisecond, false) }()

	sum, err := sim.Run(ctx, sim.Config{
		URL: sys.URL(), Keys: keys, Rate: rate, Batch: batch, Duration: duration,
		SilentFraction: 0.1, SilentFor: 3 * time.Second, Seed: 1,
		OnAck: tr.acked,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("simulator:\n%s", sum)
	if sum.Rejected+sum.Failed > 0 {
		t.Errorf("%d rejected and %d failed reports; errors %v", sum.Rejected, sum.Failed, sum.Errors)
	}
	if sum.Acked == 0 {
		t.Fatal("nothing acknowledged")
	}

	// Wait, bounded, until every acknowledged report is stored.
	stopPoll()
	<-pollDone
	runEnd := time.Now()
	waitCtx, cancelWait := context.WithTimeout(ctx, 60*time.Second)
	go tr.poll(waitCtx, sys.Store(), 100*time.Millisecond, true)
	for tr.pendingCount() > 0 && waitCtx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	cancelWait()
	t.Logf("backlog: the last acknowledged report was stored %s after the simulator ended", time.Since(runEnd).Round(10*time.Millisecond))
	if n := tr.pendingCount(); n > 0 {
		t.Errorf("%d acknowledged reports not stored within 60 s of the run's end", n)
	}
	lat := tr.latencies()
	t.Logf("sustained %.1f reports/s acked over %s (%d drones at %g Hz, batches of %d, 10%% silent 3 s)",
		sum.ReportsPerSecond(), sum.Elapsed.Round(time.Millisecond), drones, rate, batch)
	t.Logf("ingest->stored (202 received -> visible in the store, %d drones polled every ~20 ms): n=%d p50 %s p90 %s p99 %s max %s",
		min(drones, latencySample), len(lat), pct(lat, 0.5), pct(lat, 0.9), pct(lat, 0.99), pct(lat, 1))

	// Graceful shutdown flushes everything; then read the store afresh.
	stopped = true
	if err := sys.Shutdown(); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	st, err := local.OpenStore(ctx, local.StoreURL(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stored, dupes := 0, 0
	for _, d := range demo {
		points := readTrack(t, st, d.TenantID, d.DroneID)
		seen := map[time.Time]int{}
		for _, p := range points {
			seen[p.Report.TS.UTC()]++
		}
		for ts, n := range seen {
			if n > 1 {
				dupes++
				t.Errorf("drone %s: report %s stored %d times", d.DroneID, ts.Format(time.RFC3339Nano), n)
			}
		}
		for _, a := range tr.ackedOf(d.DroneID) {
			if seen[a.UTC()] == 0 {
				t.Errorf("drone %s: acknowledged report %s missing from the store", d.DroneID, a.Format(time.RFC3339Nano))
			}
		}
		stored += len(points)
	}
	if stored != sum.Acked {
		t.Errorf("store holds %d points, simulator got 202 for %d reports", stored, sum.Acked)
	}
	t.Logf("store: %d points for %d acknowledged reports, %d duplicates", stored, sum.Acked, dupes)

	// The simulator sends the drone telemetry fields, and the drones it
	// started in the air (armed) are in a flight.
	ds, err := st.Drones(ctx, local.DemoTenantID)
	if err != nil {
		t.Fatal(err)
	}
	full := 0
	for _, d := range ds {
		if s := d.State; s != nil && s.Armed != nil && s.Mode != nil && s.Fix != nil && s.Height != nil && s.HAE != nil && s.Home != nil && s.Link != nil {
			full++
		}
	}
	fl, err := st.ListFlights(ctx, store.FlightQuery{TenantID: local.DemoTenantID, From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if full < drones*9/10 || len(fl) < drones/2 {
		t.Errorf("%d of %d drones have a state with the telemetry fields, %d flights; want nearly all and about 80%% in flight", full, drones, len(fl))
	}
	t.Logf("%d drone states with telemetry fields, %d flights", full, len(fl))
}

// readTrack reads a drone's whole history page by page (pages of
// pollLimit: on the Firestore emulator a page costs the whole database).
func readTrack(t *testing.T, st store.Store, tenantID, droneID string) []store.TrackPoint {
	t.Helper()
	var all []store.TrackPoint
	q := store.TrackQuery{TenantID: tenantID, DroneID: droneID, From: time.Now().Add(-24 * time.Hour), To: time.Now().Add(time.Hour), Limit: pollLimit}
	for {
		page, err := st.Track(context.Background(), q)
		if err != nil {
			t.Fatalf("track of %s: %v", droneID, err)
		}
		all = append(all, page...)
		if len(page) < q.Limit {
			return all
		}
		q.After = page[len(page)-1].Report.TS
	}
}

// pollLimit is the most points a poll reads of a drone at once.
const pollLimit = 20_000

// latencySample is how many drones the latency poll watches.
const latencySample = 100

// tracker records what ingest acknowledged and when each report first
// appears in the store.
type tracker struct {
	mu      sync.Mutex
	byIndex []local.DemoKey
	pending map[string]map[time.Time]time.Time // drone -> ts -> acked at
	acks    map[string][]time.Time             // drone -> acked ts
	lat     []time.Duration
}

func newTracker(demo []local.DemoKey) *tracker {
	return &tracker{byIndex: demo, pending: map[string]map[time.Time]time.Time{}, acks: map[string][]time.Time{}}
}

func (tr *tracker) acked(drone int, reports []events.Report, _, ackedAt time.Time) {
	id := tr.byIndex[drone].DroneID
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.pending[id] == nil {
		tr.pending[id] = map[time.Time]time.Time{}
	}
	for _, r := range reports {
		tr.pending[id][r.TS.UTC()] = ackedAt
		tr.acks[id] = append(tr.acks[id], r.TS)
	}
}

func (tr *tracker) ackedOf(id string) []time.Time {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.acks[id])
}

func (tr *tracker) pendingCount() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, m := range tr.pending {
		n += len(m)
	}
	return n
}

func (tr *tracker) latencies() []time.Duration {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	l := slices.Clone(tr.lat)
	slices.Sort(l)
	return l
}

// poll sweeps the pending drones' tracks until ctx ends, stamping each
// acknowledged report with the time it was first seen stored. It sweeps
// the sampled drones only, or every drone when all is set; latency is
// recorded for the sampled ones.
func (tr *tracker) poll(ctx context.Context, st store.Store, every time.Duration, all bool) {
	for ctx.Err() == nil {
		tr.mu.Lock()
		type want struct {
			tenant, drone string
			from          time.Time
			sampled       bool
		}
		var sweep []want
		for i, d := range tr.byIndex {
			if !all && i >= latencySample {
				break
			}
			m := tr.pending[d.DroneID]
			if len(m) == 0 {
				continue
			}
			from := time.Time{}
			for ts := range m {
				if from.IsZero() || ts.Before(from) {
					from = ts
				}
			}
			sweep = append(sweep, want{d.TenantID, d.DroneID, from, i < latencySample})
		}
		tr.mu.Unlock()
		began := time.Now()
		for _, w := range sweep {
			// One read a drone a sweep, whatever its backlog: on the
			// Firestore emulator a query costs in proportion to the whole
			// database, not to what it returns, and with 1,000 a read a
			// 10-minute soak's drain took a sweep of minutes per 1,000.
			points, err := st.Track(ctx, store.TrackQuery{TenantID: w.tenant, DroneID: w.drone, From: w.from,
				To: w.from.Add(time.Hour), Limit: pollLimit})
			if err != nil {
				continue // the next sweep tries again
			}
			now := time.Now()
			tr.mu.Lock()
			for _, p := range points {
				ts := p.Report.TS.UTC()
				if at, ok := tr.pending[w.drone][ts]; ok {
					if w.sampled {
						tr.lat = append(tr.lat, now.Sub(at))
					}
					delete(tr.pending[w.drone], ts)
				}
			}
			tr.mu.Unlock()
		}
		// A sweep that was slow rests as long: on the Firestore emulator
		// every query reads the whole database, so a poller that swept
		// back to back under a backlog took the emulator's time from the
		// writes it waits for.
		select {
		case <-ctx.Done():
		case <-time.After(max(every, time.Since(began))):
		}
	}
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)].Round(100 * time.Microsecond)
}

// TestUpHistoryTTL: --history-ttl reaches process as HISTORY_TTL, so each
// history point expires that long after its report (the bolt store then
// deletes it; docs/configuration.md sizes the file from it).
func TestUpHistoryTTL(t *testing.T) {
	const ttl = 90 * time.Minute
	sys, demo := startTestSystem(t, local.Options{HistoryTTL: ttl})
	d := demo[0]
	ts := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	body := fmt.Sprintf(`{"ts":%q,"lat":47.1,"lon":8.5}`, ts.Format(time.RFC3339))
	mustPostReport(t, sys.URL(), d.Key, body)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if pts := readTrack(t, sys.Store(), d.TenantID, d.DroneID); len(pts) > 0 {
			if want := ts.Add(ttl); !pts[0].ExpireAt.Equal(want) {
				t.Fatalf("history point expires at %s, want %s (ts + --history-ttl)", pts[0].ExpireAt, want)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the report never reached the history")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
