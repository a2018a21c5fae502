package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/cache"
	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/events"
)

// Faults of the cluster's backing services, through the whole system: `up`
// with the cluster-mode adapter (Redis for the cache, the Firestore emulator
// for the store), the simulator flying, the service stopped and started
// again, then faultRun's audit on that store and that cache.

func TestMain(m *testing.M) { testenv.Main(m) }

// Redis (the cache) is stopped under traffic and restarted empty: it keeps
// nothing, as a cache node that was replaced. Reports never depend on the
// cache, so ingest keeps answering 202 and process keeps storing;
// cache-refresh answers 503 while Redis is down and the broker redelivers.
// After the drain every drone's cache entry is its newest state, or absent
// (the restart lost it and no report came since) with serve-map's
// read-through returning the store's state; an entry older than the store
// fails the audit. A drone added (through the running up's admin endpoint)
// that reports once before the outage and never again shows the second
// case: no entry after the restart, the read-through fills it.
func TestFaultRedisRestart(t *testing.T) {
	addr, stop := testenv.StartRedis(t)
	cacheURL := "redis://" + addr + "/0"
	dir := t.TempDir()
	var downAt, upAt time.Time
	fr := faultRun{Drones: 40, Rate: 4, Duration: 10 * time.Second, InjectAfter: 3 * time.Second, Drain: 45 * time.Second,
		DataDir: dir, CacheURL: cacheURL,
		Inject: func(t *testing.T, sys *system) {
			quiet, ts := reportOnce(t, sys, dir)
			raw, err := cache.Open(context.Background(), cacheURL, cache.Options{})
			if err != nil {
				t.Error(err)
				return
			}
			defer raw.Close()
			for deadline := time.Now().Add(10 * time.Second); !cachedTS(context.Background(), raw, demoTenantID, quiet).Equal(ts); time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Errorf("the quiet drone's report never reached Redis")
					return
				}
			}

			downAt = time.Now()
			stop()
			time.Sleep(3 * time.Second)
			testenv.RestartRedis(t, addr)
			upAt = time.Now()

			// A miss (not "unavailable": the client may still be in its
			// retry window) shows the restart emptied the cache.
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				_, err := raw.Drone(context.Background(), demoTenantID, quiet)
				if err == nil {
					t.Error("the quiet drone still has a cache entry after Redis restarted empty")
					break
				}
				if !errors.Is(err, cache.ErrUnavailable) {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("the cache is still unavailable after Redis restarted: %v", err)
					break
				}
			}
			through, err := cache.Open(context.Background(), cacheURL, cache.Options{Loader: sys.store})
			if err != nil {
				t.Error(err)
				return
			}
			defer through.Close()
			if got := cachedTS(context.Background(), through, demoTenantID, quiet); !got.Equal(ts) {
				t.Errorf("quiet drone after the restart, read through: state %s, want the store's %s", fmtTS(got), fmtTS(ts))
			}
			if got := cachedTS(context.Background(), raw, demoTenantID, quiet); !got.Equal(ts) {
				t.Errorf("quiet drone after the read-through: cache entry %s, want %s", fmtTS(got), fmtTS(ts))
			}
		}}
	res := fr.run(t)
	t.Logf("Redis down %s (stopped to answering PING again)", upAt.Sub(downAt).Round(time.Millisecond))
	onlyAcceptedOrUnavailable(t, res)
	if dl := deadLetters(t, fr); len(dl) > 0 {
		t.Errorf("dead letters by trigger: %v; want none (the outage is shorter than the retry budget)", dl)
	}
}

// The Firestore emulator (the store, through the cluster's firestore://
// adapter in every function) is killed under traffic and restarted on the
// same address with what it had committed (testenv.FirestoreEmulator).
// Meanwhile ingest answers 202 for drones whose key it has cached (the
// broker, not the store, takes the report); a drone whose key it must look
// up is answered 503, or held until the store is back and then 202;
// process and alerts answer 503 and the broker redelivers; the functions'
// Firestore clients reconnect by themselves. Then faultRun's audit: every
// acknowledged report stored exactly once, cache and store agree (to the
// microsecond, Firestore's precision).
func TestFaultFirestoreRestart(t *testing.T) {
	project := testenv.NewProjectID(t)
	fs := testenv.StartFirestore(t, project)
	t.Setenv("FIRESTORE_EMULATOR_HOST", fs.Host())
	var killedAt, restartedAt time.Time
	dir := t.TempDir()
	// 9 drones fly; the demo has 10, so the tenth's key was never looked up
	// and ingest has to ask the store for it.
	fr := faultRun{Drones: 9, Rate: 2, Duration: 8 * time.Second, InjectAfter: 2 * time.Second, Drain: 45 * time.Second,
		DataDir: dir, StoreURL: "firestore://" + project,
		Inject: func(t *testing.T, sys *system) {
			demo, err := readDemoKeys(filepath.Join(dir, demoKeysFile))
			if err != nil || len(demo) < 10 {
				t.Errorf("demo keys: %d, %v", len(demo), err)
				return
			}
			spare := demo[9].Key
			killedAt = time.Now()
			fs.Kill()
			// A drone whose key is not cached sends while the store is
			// down: ingest must answer 503, or 202 if it held the request
			// until the store came back (it does today: the key lookup
			// has no deadline of its own), never an error or no answer.
			type answer struct {
				code  int
				retry string
				took  time.Duration
			}
			spareDone := make(chan answer, 1)
			go func() {
				start := time.Now()
				code, retry := postReport(t, sys.URL(), spare)
				spareDone <- answer{code, retry, time.Since(start)}
			}()
			time.Sleep(2 * time.Second)
			fs.Restart()
			restartedAt = time.Now()
			a := <-spareDone
			t.Logf("uncached key sent while the store was down: %d (Retry-After %q) after %s",
				a.code, a.retry, a.took.Round(time.Millisecond))
			if a.code != http.StatusAccepted && (a.code != http.StatusServiceUnavailable || a.retry == "") {
				t.Errorf("uncached key, store down: %d (Retry-After %q), want 503 with Retry-After (or 202)", a.code, a.retry)
			}
		}}
	res := fr.run(t)
	t.Logf("Firestore down %s (connections cut, export, kill, 2 s, restart with the export)",
		restartedAt.Sub(killedAt).Round(time.Millisecond))
	onlyAcceptedOrUnavailable(t, res)
	// None, alerts-state included: alerts evaluates one drone at a time
	// (functions/alerts/dronelock.go), so a drone's state.updated events,
	// delivered concurrently, no longer contend for its tracker document
	// in Firestore transactions until STORE_TIMEOUT (they did, and were
	// dead-lettered, with or without the fault).
	if dl := deadLetters(t, fr); len(dl) > 0 {
		t.Errorf("dead letters by trigger: %v; want none", dl)
	}
}

// reportOnce adds a drone to the demo tenant through the running up's admin
// endpoint (as `dronetrack drone add` does), posts one report for it and
// returns its id and the report's time.
func reportOnce(t *testing.T, sys *system, dir string) (string, time.Time) {
	t.Helper()
	var out strings.Builder
	if err := realMain(context.Background(), []string{"drone", "add", "--data", dir, "--tenant", demoTenantID, "--name", "quiet"}, &out, io.Discard); err != nil {
		t.Fatalf("drone add: %v", err)
	}
	var id, key string
	for _, line := range strings.Split(out.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "drone "); ok {
			id, _, _ = strings.Cut(rest, " ")
		}
		if i := strings.LastIndex(line, ": "); strings.HasPrefix(line, "key ") && i > 0 {
			key = line[i+2:]
		}
	}
	if id == "" || key == "" {
		t.Fatalf("drone add printed %q", out.String())
	}
	ts := time.Now().UTC().Truncate(time.Millisecond)
	body := fmt.Sprintf(`{"ts":%q,"lat":47.37,"lon":8.54}`, ts.Format(time.RFC3339Nano))
	req, _ := http.NewRequest(http.MethodPost, sys.URL()+"/v1/telemetry", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("report of the quiet drone: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("report of the quiet drone: %d, want 202", resp.StatusCode)
	}
	return id, ts
}

// postReport posts one report (now) with key and returns ingest's status
// and Retry-After.
func postReport(t *testing.T, baseURL, key string) (int, string) {
	body := fmt.Sprintf(`{"ts":%q,"lat":47.37,"lon":8.54}`, time.Now().UTC().Format(time.RFC3339Nano))
	req, err := http.NewRequest(http.MethodPost, baseURL+"/v1/telemetry", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	// Bounded, so an ingest that never answers fails the test instead of
	// hanging it.
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Errorf("post a report: %v", err)
		return 0, ""
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// storePrecision is how finely the store at url keeps times: the store
// contract promises the microsecond (Firestore's precision, see
// core/store), bolt keeps nanoseconds.
func storePrecision(url string) time.Duration {
	if strings.HasPrefix(url, "firestore://") {
		return time.Microsecond
	}
	return 0
}

// ackedAs records acknowledged reports with their times as a store of that
// precision keeps them, so the audit, which compares times exactly, finds
// them. The simulator's times have nanoseconds (its drones report at
// 1/rate intervals offset by index/drones).
func ackedAs(precision time.Duration, on func(int, []events.Report, time.Time, time.Time)) func(int, []events.Report, time.Time, time.Time) {
	if precision <= 0 {
		return on
	}
	return func(drone int, reports []events.Report, sentAt, ackedAt time.Time) {
		kept := make([]events.Report, len(reports))
		for i, r := range reports {
			r.TS = r.TS.Truncate(precision)
			kept[i] = r
		}
		on(drone, kept, sentAt, ackedAt)
	}
}

// deadLetters starts the system of fr again on its data dir (fr.DataDir must
// be set) and returns how many events its broker dead-lettered, by Trigger.
// The run's shutdown drains the broker's retries, so they are all known
// only after it; the broker keeps them across restarts.
func deadLetters(t *testing.T, fr faultRun) map[string]int {
	t.Helper()
	sys, err := startSystem(context.Background(), upOptions{DataDir: fr.DataDir, HTTPAddr: "127.0.0.1:0",
		DemoDrones: fr.Drones, StoreURL: fr.StoreURL, CacheURL: fr.CacheURL, StopTimeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("start the system again to read its dead letters: %v", err)
	}
	defer func() {
		if err := sys.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	dls, err := sys.broker.DeadLetters(context.Background())
	if err != nil {
		t.Fatalf("dead letters: %v", err)
	}
	by := map[string]int{}
	for _, d := range dls {
		by[d.Trigger]++
	}
	return by
}

// onlyAcceptedOrUnavailable fails the test when ingest answered anything
// but 202 or 503 (with which the drone resends) during the run.
func onlyAcceptedOrUnavailable(t *testing.T, res faultResult) {
	t.Helper()
	for _, kind := range slices.Sorted(maps.Keys(res.sum.Errors)) {
		if kind != "status_503" {
			t.Errorf("ingest answered %s %d times; only 202 and 503 are allowed during the outage", kind, res.sum.Errors[kind])
		}
	}
	t.Logf("ingest answered 503 %d times", res.sum.Errors["status_503"])
}

// cacheAudit reads a running system's cache for the audit twice over: as
// stored (a cache with no store behind it: what Redis, or the local cache,
// holds) and as serve-map reads it (read-through to the store on a miss).
type cacheAudit struct {
	raw, through *cache.Cache
	// first is, per drone, whether its first check found an entry: after a
	// Redis restart the drones that sent nothing since have none.
	first map[string]bool
	// precision is the store's: the cache keeps the state's time as the
	// report had it, the store to its precision (storePrecision).
	precision time.Duration
}

// openCacheAudit opens sys's cache (CACHE_URL) for the audit.
func openCacheAudit(ctx context.Context, sys *system) (*cacheAudit, error) {
	raw, err := cache.Open(ctx, sys.cacheURL, cache.Options{})
	if err != nil {
		return nil, fmt.Errorf("open cache %s: %w", redactURL(sys.cacheURL), err)
	}
	through, err := cache.Open(ctx, sys.cacheURL, cache.Options{Loader: sys.store})
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("open cache %s: %w", redactURL(sys.cacheURL), err)
	}
	return &cacheAudit{raw: raw, through: through, first: map[string]bool{}, precision: storePrecision(sys.storeURL)}, nil
}

func (a *cacheAudit) Close() {
	a.raw.Close()
	a.through.Close()
}

// agrees reports whether the cache agrees with want, the drone's newest
// state in the store: its entry holds that state (to the store's
// precision); or it has no entry (a restarted Redis lost it) and the
// read-through returns that state. An entry with an older (or newer) state,
// or none, disagrees. got says what the cache holds.
func (a *cacheAudit) agrees(ctx context.Context, tenantID, droneID string, want time.Time) (ok bool, got string) {
	_, err := a.raw.Drone(ctx, tenantID, droneID)
	if _, seen := a.first[droneID]; !seen {
		a.first[droneID] = err == nil
	}
	if err == nil {
		ts := cachedTS(ctx, a.raw, tenantID, droneID)
		return ts.Truncate(a.precision).Equal(want), "entry " + fmtTS(ts)
	}
	ts := cachedTS(ctx, a.through, tenantID, droneID)
	return ts.Truncate(a.precision).Equal(want), "no entry, read-through " + fmtTS(ts)
}

// String says how many drones the first check found in the cache and how
// many it had to read through the store.
func (a *cacheAudit) String() string {
	hits := 0
	for _, hit := range a.first {
		if hit {
			hits++
		}
	}
	return fmt.Sprintf("first check: %d drones with a cache entry, %d without (read through the store)", hits, len(a.first)-hits)
}

func fmtTS(ts time.Time) string {
	if ts.IsZero() {
		return "(none)"
	}
	return ts.Format(time.RFC3339Nano)
}
