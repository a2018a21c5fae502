package knative

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/keys"
	"github.com/dronetrack/dronetrack/core/store"
)

// fleetLoad is a fleet of drones reporting through ingest's Service for a
// while, each as a real drone does: one report per request at its rate,
// the same request resent after a 503 or 429 (waiting as Retry-After says,
// capped for the test's sake), a report counted only once it got 202.
type fleetLoad struct {
	f      *fixture
	drones []string
	keys   []string

	stopped atomic.Bool

	mu       sync.Mutex
	accepted map[string][]time.Time // drone -> accepted report times
	codes    map[int]int            // every status ingest answered, by code
	noRetry  []string               // 503/429 answers without Retry-After
}

func newFleetLoad(t *testing.T, f *fixture, n int) *fleetLoad {
	l := &fleetLoad{f: f, accepted: map[string][]time.Time{}, codes: map[int]int{}}
	for i := range n {
		id := "load-" + strconv.Itoa(i)
		key, err := keys.Generate()
		if err != nil {
			t.Fatal(err)
		}
		f.addDrone(t, id, key)
		l.drones, l.keys = append(l.drones, id), append(l.keys, key)
	}
	return l
}

// run sends from every drone at hz reports per second for d, until ctx
// ends or stop. Battery falls by 2 % per report from 40 % (under 20 %
// from the 11th report on) to 5 %, so each drone raises one battery.low
// alert.
func (l *fleetLoad) run(ctx context.Context, t *testing.T, ingestURL string, hz float64, d time.Duration) {
	var wg sync.WaitGroup
	start := time.Now()
	for i := range l.drones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.Duration(float64(time.Second) / hz)
			for n := 0; time.Since(start) < d && ctx.Err() == nil && !l.stopped.Load(); n++ {
				ts := time.Now().Add(-time.Second).Truncate(time.Millisecond)
				battery := max(5, 40-2*n)
				body := fmt.Sprintf(`{"ts":%q,"lat":%g,"lon":8.5,"alt":100,"battery":%d}`,
					ts.UTC().Format(time.RFC3339Nano), 47+float64(n)/1e4, battery)
				l.send(ctx, t, ingestURL, i, ts, body)
				time.Sleep(tick)
			}
		}()
	}
	wg.Wait()
}

// stop ends run after each drone's request in flight.
func (l *fleetLoad) stop() { l.stopped.Store(true) }

func (l *fleetLoad) send(ctx context.Context, t *testing.T, url string, i int, ts time.Time, body string) {
	for ctx.Err() == nil {
		req, _ := newReportRequest(ctx, url, l.keys[i], body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				t.Errorf("drone %s: %v", l.drones[i], err)
			}
			return
		}
		resp.Body.Close()
		l.mu.Lock()
		l.codes[resp.StatusCode]++
		l.mu.Unlock()
		switch resp.StatusCode {
		case http.StatusAccepted:
			l.mu.Lock()
			l.accepted[l.drones[i]] = append(l.accepted[l.drones[i]], ts)
			l.mu.Unlock()
			return
		case http.StatusServiceUnavailable, http.StatusTooManyRequests:
			ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if err != nil {
				l.mu.Lock()
				l.noRetry = append(l.noRetry, fmt.Sprintf("%d %q", resp.StatusCode, resp.Header.Get("Retry-After")))
				l.mu.Unlock()
				ra = 1
			}
			time.Sleep(min(time.Duration(ra)*time.Second, 200*time.Millisecond))
		default:
			return // counted in codes; the test fails on it
		}
	}
}

func newReportRequest(ctx context.Context, url, key, body string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/telemetry", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	return req, nil
}

// total is how many reports were accepted.
func (l *fleetLoad) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.accepted {
		n += len(a)
	}
	return n
}

// checkDrained waits up to d for every accepted report to be in the store
// exactly once, each drone's stored state to be its last accepted report and
// the cached state to equal the stored one; then checks that each drone has
// exactly one battery.low alert and no alert twice, and that the broker
// holds no dead letters.
func (l *fleetLoad) checkDrained(t *testing.T, sys *System, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	l.mu.Lock()
	accepted := map[string][]time.Time{}
	for k, v := range l.accepted {
		accepted[k] = slices.Clone(v)
	}
	l.mu.Unlock()
	var why string
	deadline := time.Now().Add(d)
	for {
		why = l.drainProblem(t, accepted)
		if why == "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if why != "" {
		t.Fatalf("not drained after %v: %s", d, why)
	}
	t.Logf("history, state and cache drained %v after the load", d-time.Until(deadline).Round(time.Millisecond))
	// Alerts: the drones' battery.low alerts are raised by alerts replicas
	// and may trail the state; wait for one per drone, then none twice.
	var seen map[string]int
	for {
		seen = map[string]int{}
		for _, a := range l.alertsByDrone(t) {
			seen[a.DroneID+" "+a.Kind]++
		}
		all := true
		for _, id := range l.drones {
			all = all && seen[id+" battery.low"] > 0
		}
		if all || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("alerts complete %v after the load", d-time.Until(deadline).Round(time.Millisecond))
	for _, id := range l.drones {
		if n := seen[id+" battery.low"]; n != 1 {
			t.Errorf("drone %s: %d battery.low alerts, want exactly 1", id, n)
		}
	}
	for k, n := range seen {
		if n > 1 {
			t.Errorf("alert %s raised %d times", k, n)
		}
	}
	if dls, err := sys.Broker.ListDeadLetters(ctx); err != nil || len(dls) != 0 {
		t.Errorf("dead letters: %d %v, want none", len(dls), err)
	}
}

func (l *fleetLoad) drainProblem(t *testing.T, accepted map[string][]time.Time) string {
	ctx := context.Background()
	for _, id := range l.drones {
		want := accepted[id]
		if len(want) == 0 {
			return id + ": no report accepted"
		}
		pts, err := l.f.st.Track(ctx, store.TrackQuery{TenantID: l.f.tenant, DroneID: id, Limit: 100000})
		if err != nil {
			return err.Error()
		}
		got := map[int64]int{}
		for _, p := range pts {
			got[p.Report.TS.UnixMilli()]++
		}
		for _, ts := range want {
			if got[ts.UnixMilli()] != 1 {
				return fmt.Sprintf("%s: report at %v stored %d times", id, ts, got[ts.UnixMilli()])
			}
		}
		if len(pts) != len(want) {
			return fmt.Sprintf("%s: %d points stored, %d accepted", id, len(pts), len(want))
		}
		last := slices.MaxFunc(want, func(a, b time.Time) int { return a.Compare(b) })
		st, err := l.f.st.LatestState(ctx, l.f.tenant, id)
		if err != nil || !st.TS.Equal(last) {
			return fmt.Sprintf("%s: stored state at %v (%v), last accepted %v", id, st.TS, err, last)
		}
		v, err := l.f.cachedState(t, id)
		if err != nil || v.State == nil || !v.State.TS.Equal(st.TS) {
			return fmt.Sprintf("%s: cached state %+v (%v), stored %v", id, v.State, err, st.TS)
		}
	}
	return ""
}

// alertsByDrone lists the tenant's alerts, open or closed, of the load's
// drones.
func (l *fleetLoad) alertsByDrone(t *testing.T) []alerting.Alert {
	t.Helper()
	all, err := l.f.st.ListAlerts(context.Background(), l.f.tenant, time.Time{}, 10000)
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(all, func(a alerting.Alert) bool { return !slices.Contains(l.drones, a.DroneID) })
}
