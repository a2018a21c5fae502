package system

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/cache"
	"github.com/dronetrack/dronetrack/core/sim"
	"github.com/dronetrack/dronetrack/core/testenv"

	"github.com/dronetrack/dronetrack/infra/local"
)

// faultRun is one fault-injection run: the whole one-machine system, the
// simulator flying drones through its public listener, and inject called
// once traffic flows (it breaks something and repairs it before returning).
// Then the audit: every report ingest acknowledged is stored exactly once,
// nothing else is stored, and each drone's state in the cache and in the
// store is its newest acknowledged report.
type faultRun struct {
	Drones   int
	Rate     float64
	Duration time.Duration
	Batch    int           // reports per request (default 1)
	Drain    time.Duration // wait for the backlog after the run (default 90 s)
	DataDir  string        // "" for a temp dir
	// StoreURL and CacheURL choose the store and cache as `up --store` and
	// `--cache` do ("" for the data dir's bolt file and the local cache);
	// the audit reads the ones chosen.
	StoreURL, CacheURL string
	// Inject runs after InjectAfter of traffic, concurrently with it.
	InjectAfter time.Duration
	Inject      func(t *testing.T, sys *local.System)
}

type faultResult struct {
	sum                sim.Summary
	stored, lost       int
	heapStart, heapEnd uint64 // live heap after GC: system started, backlog drained
}

func (fr faultRun) run(t *testing.T) faultResult {
	t.Helper()
	ctx := context.Background()
	dir := fr.DataDir
	if dir == "" {
		dir = t.TempDir()
	}
	logs := &testenv.LogBuffer{}
	opts := local.Options{
		DataDir: dir, HTTPAddr: "127.0.0.1:0", DemoDrones: fr.Drones, LogLevel: slog.LevelWarn,
		StoreURL: fr.StoreURL, CacheURL: fr.CacheURL,
		Log: logs, Out: logs, StopTimeout: 60 * time.Second,
	}
	// The functions log to the process's stderr: capture it too, so the
	// audit can check no secret was ever logged.
	stderr := captureFunctionLogs(t)
	sys, err := local.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start system: %v", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = sys.Shutdown()
		}
		if t.Failed() {
			out := logs.String()
			if len(out) > 20000 {
				out = "...\n" + out[len(out)-20000:]
			}
			t.Logf("system output:\n%s", out)
		}
	}()
	demo, err := local.ReadDemoKeys(filepath.Join(dir, local.DemoKeysFile))
	if err != nil || len(demo) < fr.Drones {
		t.Fatalf("demo keys: %d, %v", len(demo), err)
	}
	demo = demo[:fr.Drones]
	heapStart := liveHeap()
	keys := make([]string, len(demo))
	for i, d := range demo {
		keys[i] = d.Key
	}
	tr := newTracker(demo)
	injected := make(chan struct{})
	go func() {
		defer close(injected)
		time.Sleep(fr.InjectAfter)
		fr.Inject(t, sys)
	}()
	sum, err := sim.Run(ctx, sim.Config{
		URL: sys.URL(), Keys: keys, Rate: fr.Rate, Batch: max(fr.Batch, 1), Duration: fr.Duration, Seed: 7,
		MaxRetries: 1000, OnAck: ackedAs(storePrecision(fr.StoreURL), tr.acked),
	})
	<-injected
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("simulator:\n%s", sum)
	// Reports still being retried when the run ends count as failed: they
	// were never acknowledged, so they are not lost. Rejections are bugs.
	if sum.Rejected > 0 {
		t.Errorf("%d reports rejected: %v", sum.Rejected, sum.Errors)
	}
	if sum.Acked == 0 {
		t.Fatal("nothing acknowledged")
	}

	// Bounded wait until every acknowledged report is stored.
	if fr.Drain <= 0 {
		fr.Drain = 90 * time.Second
	}
	drainStart := time.Now()
	drain := func() {
		waitCtx, cancel := context.WithTimeout(ctx, fr.Drain)
		go tr.poll(waitCtx, sys.Store(), 100*time.Millisecond, true)
		for tr.pendingCount() > 0 && waitCtx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
	}
	drain()
	if n := tr.pendingCount(); n > 0 {
		// Not lost yet: the broker's queue is durable. Restart the system on
		// the same data dir, as an operator would, and let it redeliver.
		t.Logf("%d acknowledged reports not stored %s after the run (backlog); restarting the system", n, fr.Drain)
		if err := sys.Shutdown(); err != nil {
			t.Errorf("shutdown before restart: %v", err)
		}
		if sys, err = local.Start(ctx, opts); err != nil {
			stopped = true
			t.Fatalf("restart system: %v", err)
		}
		drain()
	}
	if n := tr.pendingCount(); n > 0 {
		t.Errorf("%d acknowledged reports not stored within %s of the run's end", n, fr.Drain)
	} else {
		t.Logf("backlog drained %s after the run", time.Since(drainStart).Round(100*time.Millisecond))
	}
	heapEnd := liveHeap()
	requests := sum.Requests
	failedAttempts := 0
	for _, n := range sum.Errors {
		failedAttempts += n
	}
	t.Logf("figures: %.1f reports/s acked, %d/%d requests answered with an error (%.3f%%), live heap %.1f MiB -> %.1f MiB",
		sum.ReportsPerSecond(), failedAttempts, requests, 100*float64(failedAttempts)/float64(max(requests, 1)),
		float64(heapStart)/(1<<20), float64(heapEnd)/(1<<20))

	// Cache and store agree on every drone's newest state once the pipeline
	// is idle (state writes are coalesced, so wait for them, bounded).
	// A drone without a cache entry (a restarted Redis keeps nothing)
	// agrees when the read-through returns the store's state; an entry
	// older than the store does not (see cacheAudit).
	ca, err := openCacheAudit(ctx, sys)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	newest := func(id string) time.Time {
		var n time.Time
		for _, ts := range tr.ackedOf(id) {
			if ts.After(n) {
				n = ts
			}
		}
		return n.UTC()
	}
	var mismatch []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		mismatch = mismatch[:0]
		for _, d := range demo {
			want := newest(d.DroneID)
			if want.IsZero() {
				continue
			}
			sd, err := sys.Store().Drone(ctx, d.TenantID, d.DroneID)
			storeTS := time.Time{}
			if err == nil && sd.State != nil {
				storeTS = sd.State.TS.UTC()
			}
			cacheOK, cacheGot := ca.agrees(ctx, d.TenantID, d.DroneID, want)
			if !storeTS.Equal(want) || !cacheOK {
				mismatch = append(mismatch, fmt.Sprintf("%s: newest acked %s, store %s, cache %s", d.DroneID,
					want.Format(time.RFC3339Nano), storeTS.Format(time.RFC3339Nano), cacheGot))
			}
		}
		if len(mismatch) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for i, m := range mismatch {
		if i == 10 {
			t.Errorf("... and %d more", len(mismatch)-10)
			break
		}
		t.Errorf("state disagrees: %s", m)
	}
	t.Logf("cache audit: %s", ca)

	// Graceful shutdown, then the exactly-once audit on the store afresh.
	stopped = true
	if err := sys.Shutdown(); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	st, err := local.OpenStore(ctx, cmp.Or(fr.StoreURL, local.StoreURL(dir)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stored, missing := 0, 0
	for _, d := range demo {
		seen := map[time.Time]int{}
		for _, p := range readTrack(t, st, d.TenantID, d.DroneID) {
			seen[p.Report.TS.UTC()]++
		}
		for ts, n := range seen {
			if n > 1 {
				t.Errorf("drone %s: report %s stored %d times", d.DroneID, ts.Format(time.RFC3339Nano), n)
			}
		}
		for _, a := range tr.ackedOf(d.DroneID) {
			if seen[a.UTC()] == 0 {
				if missing++; missing <= 10 {
					t.Errorf("drone %s: acknowledged report %s missing", d.DroneID, a.Format(time.RFC3339Nano))
				}
			}
		}
		stored += len(seen)
	}
	// A report answered 503 may still have been published (the broker took
	// it, the reply was lost): the drone resends it and it is stored once.
	// So the store may hold reports never acked only when the run saw 503s.
	if stored < sum.Acked {
		t.Errorf("store holds %d distinct reports, %d were acknowledged", stored, sum.Acked)
	}
	lost := missing
	t.Logf("audit: %d acknowledged, %d stored, %d acknowledged but not stored", sum.Acked, stored, lost)

	// Secrets are never logged: not the key pepper, not a drone key.
	pepper, err := os.ReadFile(filepath.Join(dir, local.PepperFile))
	if err != nil {
		t.Fatal(err)
	}
	all := logs.String() + stderr()
	if strings.Contains(all, strings.TrimSpace(string(pepper))) {
		t.Error("the key pepper appears in the logs")
	}
	for _, k := range keys {
		if strings.Contains(all, k) {
			t.Errorf("drone key %s... appears in the logs", k[:6])
			break
		}
	}
	return faultResult{sum: sum, stored: stored, lost: lost, heapStart: heapStart, heapEnd: heapEnd}
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestFaultSoak (make soak) runs 2,000 reports/s (400 drones at 5 Hz, in
// batches of 10 as a buffering companion computer sends them) for
// 10 minutes (DRONETRACK_SOAK_DURATION to change) and injects a fault every
// minute, alternating: process cut mid-batch, cache-refresh cut.
// It reports loss (must be 0), the error rate and live-heap growth.
func TestFaultSoak(t *testing.T) {
	if os.Getenv("DRONETRACK_SOAK") == "" {
		t.Skip("soak test: run with make soak (DRONETRACK_SOAK=1)")
	}
	d := 10 * time.Minute
	if v := os.Getenv("DRONETRACK_SOAK_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	res := faultRun{Drones: 400, Rate: 5, Batch: 10, Duration: d, Drain: 10 * time.Minute, InjectAfter: 30 * time.Second,
		Inject: func(t *testing.T, sys *local.System) {
			// ingest is called in-process by the public listener, so
			// cutting its own listener would change nothing.
			victims := []string{local.FnProcess, local.FnCacheRefresh}
			for i := 0; time.Duration(i+1)*time.Minute < d; i++ {
				name := victims[i%len(victims)]
				t.Logf("fault %d: cutting %s for 2 s", i+1, name)
				restartListener(t, sys.Function(name), 2*time.Second)
				time.Sleep(time.Minute - 2*time.Second)
			}
		}}.run(t)
	t.Logf("soak: lost %d of %d acknowledged, heap growth %+.1f MiB",
		res.lost, res.sum.Acked, (float64(res.heapEnd)-float64(res.heapStart))/(1<<20))
}

// captureFunctionLogs redirects os.Stderr (where the functions' loggers write)
// into a buffer until the test ends; the returned func reads it so far.
func captureFunctionLogs(t *testing.T) func() string {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	buf := &testenv.LogBuffer{}
	done := make(chan struct{})
	go func() { defer close(done); _, _ = io.Copy(buf, r) }()
	t.Cleanup(func() {
		os.Stderr = old
		w.Close()
		<-done
		r.Close()
	})
	return buf.String
}

// cachedTS is the state timestamp the cache holds for a drone (zero if none).
func cachedTS(ctx context.Context, c *cache.Cache, tenantID, droneID string) time.Time {
	b, err := c.Drone(ctx, tenantID, droneID)
	if err != nil {
		return time.Time{}
	}
	var d struct {
		State *struct {
			TS time.Time `json:"ts"`
		} `json:"state"`
	}
	if json.Unmarshal(b, &d) != nil || d.State == nil {
		return time.Time{}
	}
	return d.State.TS.UTC()
}

// restartListener cuts a function's listener with requests in flight (they
// fail mid-batch, as when the function's pod dies) and serves it again on
// the same address after down (local.Hosted.Interrupt).
func restartListener(t *testing.T, h *local.Hosted, down time.Duration) {
	if err := h.Interrupt(down); err != nil {
		t.Error(err)
	}
}

// The process function's listener dies twice with deliveries in flight and
// comes back: the broker redelivers, process drops what it already stored.
func TestFaultProcessCrashMidBatch(t *testing.T) {
	faultRun{Drones: 50, Rate: 4, Duration: 8 * time.Second, InjectAfter: 2 * time.Second,
		Inject: func(t *testing.T, sys *local.System) {
			restartListener(t, sys.Function(local.FnProcess), 1500*time.Millisecond)
			time.Sleep(time.Second)
			restartListener(t, sys.Function(local.FnProcess), 500*time.Millisecond)
		}}.run(t)
}

// cache-refresh dies with deliveries in flight: the cache must still end up
// matching the store.
func TestFaultCacheRefreshCrash(t *testing.T) {
	faultRun{Drones: 50, Rate: 4, Duration: 6 * time.Second, InjectAfter: 2 * time.Second,
		Inject: func(t *testing.T, sys *local.System) {
			restartListener(t, sys.Function(local.FnCacheRefresh), 1500*time.Millisecond)
		}}.run(t)
}

// The disk under the data dir (store and broker) fills up while the
// simulator flies drones, stays full for 3 s and is freed. While it is full
// ingest answers 503 with Retry-After (never a false 202, never another 5xx,
// never a hang: the broker's ingress fails at once while its store cannot
// take writes, and the bolt store's ENOSPC is a 503 too); once space returns
// the broker restarts JetStream on its own, with no restart of up, and the
// faultRun audit holds: everything acknowledged stored exactly once, the
// cache matching the store.
//
// It mounts a 256 MB tmpfs for the data dir, so it must run as root (CI and
// the dev container do); it fails rather than skips otherwise.
func TestFaultDiskFull(t *testing.T) {
	mnt := testenv.SmallDisk(t, 256<<20)
	dir := filepath.Join(mnt, "data")
	// 15 s of traffic leaves the simulator running well past the 3 s of
	// full disk even when a loaded machine makes filling it slow.
	res := faultRun{Drones: 50, Rate: 4, Duration: 15 * time.Second, InjectAfter: 2 * time.Second,
		DataDir: dir,
		Inject: func(t *testing.T, sys *local.System) {
			fillStart := time.Now()
			free, err := testenv.FillDisk(mnt)
			if err != nil {
				t.Error(err)
				return
			}
			full := time.Now()
			t.Logf("disk filled in %s", full.Sub(fillStart).Round(time.Millisecond))
			checkDiskFull503(t, sys.URL(), dir)
			time.Sleep(3*time.Second - time.Since(full)) // traffic runs against the full disk
			if err := free(); err != nil {
				t.Error(err)
			}
		}}.run(t)
	if res.sum.Errors["status_503"] == 0 {
		t.Errorf("ingest never answered 503 while the disk was full (simulator: %s)", strings.TrimSpace(res.sum.String()))
	}
	for kind, n := range res.sum.Errors {
		if kind != "status_503" {
			t.Errorf("%d requests failed with %s while the disk was full; only 503 is right", n, kind)
		}
	}
}

// checkDiskFull503 sends reports (dated a minute back, so they never become
// a drone's newest state, which the audit compares) until ingest answers
// 503, which it must with Retry-After; before that only 202 is right (what
// still fit on the disk).
func checkDiskFull503(t *testing.T, base, dir string) {
	t.Helper()
	demo, err := local.ReadDemoKeys(filepath.Join(dir, local.DemoKeysFile))
	if err != nil || len(demo) == 0 {
		t.Errorf("demo keys: %v", err)
		return
	}
	client := &http.Client{Timeout: 30 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		body := fmt.Sprintf(`{"ts":%q,"lat":47.1,"lon":8.5}`, time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano))
		req, err := http.NewRequest(http.MethodPost, base+sim.IngestPath, strings.NewReader(body))
		if err != nil {
			t.Error(err)
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+demo[i%len(demo)].Key)
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("report with the disk full: %v; want 503 at once", err)
			return
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusAccepted:
			continue
		case http.StatusServiceUnavailable:
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("503 with the disk full has no Retry-After: %s", msg)
			}
			t.Logf("ingest with the disk full, after %d accepted: 503 Retry-After %s %s", i, resp.Header.Get("Retry-After"), bytes.TrimSpace(msg))
			return
		default:
			t.Errorf("report with the disk full: %d %s; want 202 or 503", resp.StatusCode, msg)
			return
		}
	}
	t.Error("ingest never answered 503 within 30 s of the disk filling up")
}
