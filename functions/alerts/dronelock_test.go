package function

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/storeurl"
	"github.com/dronetrack/dronetrack/core/testenv"
)

// The broker delivers one drone's state.updated events in parallel. On
// Firestore (here its emulator) concurrent transactions on the drone's
// tracker document contended until STORE_TIMEOUT and answered 503, until
// the broker dead-lettered them; alerts now evaluates one drone at a time
// per instance. Every delivery is taken, the tracker ends at the newest
// state, and the battery crossing the threshold raises one alert, once.
func TestConcurrentStatesOfOneDrone(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) store.Store
	}{
		{"bolt", openBolt},
		{"firestore", openFirestore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixtureOn(t, tc.open(t))
			const n = 20
			// Battery 100, 95, ... 5: below the default 20% from state 17
			// on, and never back up, so whatever order the states are
			// evaluated in (late ones are ignored), one episode opens.
			codes := make([]int, n)
			var start, wg sync.WaitGroup
			start.Add(1)
			for i := range n {
				ev := stateEvent(t, i, 0, 0, float64(100-5*i))
				wg.Add(1)
				go func() {
					defer wg.Done()
					start.Wait()
					codes[i] = fx.send(t, ev)
				}()
			}
			start.Done()
			wg.Wait()
			for i, code := range codes {
				if code != http.StatusAccepted {
					t.Errorf("state %d: status %d, want 202", i, code)
				}
			}
			ctx := context.Background()
			tr, err := fx.st.EvaluateAlerts(ctx, "acme", "d1", func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool) {
				return prev, nil, false
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := t0.Add((n - 1) * time.Second); !tr.LastTS.Equal(want) {
				t.Errorf("tracker at state %s, want the newest, %s", tr.LastTS, want)
			}
			if diff := cmp.Diff([]string{"raised battery.low"}, fx.sink.got()); diff != "" {
				t.Errorf("published (-want +got):\n%s", diff)
			}
			list, err := fx.st.ListAlerts(ctx, "acme", time.Time{}, 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range list {
				got = append(got, fmt.Sprintf("%s open=%t", a.Kind, a.Open()))
			}
			if diff := cmp.Diff([]string{alerting.KindBatteryLow + " open=true"}, got); diff != "" {
				t.Errorf("stored alerts (-want +got):\n%s", diff)
			}
			if k := fx.h.drones.size(); k != 0 {
				t.Errorf("%d drone locks left after every delivery finished, want 0", k)
			}
		})
	}
}

// openFirestore returns a store on a fresh project of the shared emulator.
func openFirestore(t *testing.T) store.Store {
	t.Helper()
	testenv.Firestore(t)
	st, err := storeurl.Open(context.Background(), "firestore://"+testenv.NewProjectID(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// refs is how many deliveries hold or wait for the drone's lock.
func (l *droneLocks) refs(tenantID, droneID string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.m[droneKey{tenantID, droneID}]; e != nil {
		return e.refs
	}
	return 0
}

// waitRefs waits until n deliveries hold or wait for the drone's lock.
func waitRefs(t *testing.T, l *droneLocks, droneID string, n int) {
	t.Helper()
	for l.refs("acme", droneID) != n {
		time.Sleep(time.Millisecond)
	}
}

// A delivery waiting for its drone's lock gives up when its request
// context ends, with a 503 the broker retries, and leaves no waiter behind.
func TestDroneLockWaitEndsWithContext(t *testing.T) {
	fx := newFixture(t)
	lk, err := fx.h.drones.lock(context.Background(), "acme", "d1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, err := cehttp.NewHTTPRequestFromEvent(ctx, "/", stateEvent(t, 1, 0, 0, 5))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { defer close(done); fx.h.ServeHTTP(rec, req) }()
	waitRefs(t, fx.h.drones, "d1", 2)
	cancel()
	<-done
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("delivery ended while waiting: %d, Retry-After %q; want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	if n := fx.h.drones.refs("acme", "d1"); n != 1 {
		t.Errorf("%d on the lock after the waiter left, want 1 (the holder)", n)
	}
	fx.h.drones.unlock("acme", "d1", lk)
	if n := fx.h.drones.size(); n != 0 {
		t.Errorf("%d drone locks left, want 0", n)
	}
	if got := fx.sink.got(); len(got) != 0 {
		t.Errorf("published %v, want nothing", got)
	}
}

// The link check takes each stale drone's lock in turn: it waits for a
// drone being evaluated, evaluates the others meanwhile never holding two,
// and raises link.lost for both once the first is released.
func TestLinkCheckTakesEachDronesLock(t *testing.T) {
	fx := newFixture(t)
	for _, id := range []string{"d1", "d2"} {
		if code := fx.send(t, droneStateEvent(t, id, 0, 0, 0, 90)); code != http.StatusAccepted {
			t.Fatalf("state of %s: %d", id, code)
		}
	}
	fx.setNow(t0.Add(64 * time.Second))
	lk, err := fx.h.drones.lock(context.Background(), "acme", "d2")
	if err != nil {
		t.Fatal(err)
	}
	code := make(chan int, 1)
	go func() { code <- fx.send(t, pingEvent()) }()
	waitRefs(t, fx.h.drones, "d2", 2)
	fx.h.drones.unlock("acme", "d2", lk)
	if c := <-code; c != http.StatusAccepted {
		t.Fatalf("link check: %d", c)
	}
	if diff := cmp.Diff([]string{"raised link.lost", "raised link.lost"}, fx.sink.got()); diff != "" {
		t.Errorf("published (-want +got):\n%s", diff)
	}
	if n := fx.h.drones.size(); n != 0 {
		t.Errorf("%d drone locks left, want 0", n)
	}
}

// gatedStore holds the first EvaluateAlerts until release is closed, and
// counts the calls.
type gatedStore struct {
	store.Store
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	calls   int
}

func (g *gatedStore) EvaluateAlerts(ctx context.Context, tenantID, droneID string,
	fn func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool)) (alerting.Tracker, error) {
	g.mu.Lock()
	g.calls++
	g.mu.Unlock()
	g.once.Do(func() { close(g.entered); <-g.release })
	return g.Store.EvaluateAlerts(ctx, tenantID, droneID, fn)
}

func (g *gatedStore) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls
}

// A state queued behind a newer one of its drone skips the transaction
// once the newer one was evaluated and published, since the transaction
// would ignore it; but not while the outbox still holds an unpublished
// transition: then the older state's delivery is what publishes it.
func TestOlderStateQueuedBehindNewer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sinkFails bool     // while the newer state is evaluated
		newer     int      // its status
		calls     int      // EvaluateAlerts calls in all
		want      []string // published
	}{
		// The newer state's evaluation and the removal of what it
		// published from the outbox; none for the older state.
		{"published", false, http.StatusAccepted, 2, []string{"raised battery.low"}},
		// The newer state's evaluation and its release of the claim, then
		// the older state's claim and the removal of what it published.
		{"publish failed", true, http.StatusServiceUnavailable, 4, []string{"raised battery.low"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &gatedStore{Store: openBolt(t), entered: make(chan struct{}), release: make(chan struct{})}
			fx := newFixtureOn(t, g)
			// The newer state's one publish fails; the older state's, which
			// may start as soon as the newer one answers, must not.
			if tc.sinkFails {
				fx.sink.failNext.Store(1)
			}
			newer := make(chan int, 1)
			go func() { newer <- fx.send(t, stateEvent(t, 3, 0, 0, 5)) }()
			<-g.entered
			older := make(chan int, 1)
			go func() { older <- fx.send(t, stateEvent(t, 2, 0, 0, 5)) }()
			waitRefs(t, fx.h.drones, "d1", 2)
			close(g.release)
			if c := <-newer; c != tc.newer {
				t.Errorf("newer state: %d, want %d", c, tc.newer)
			}
			if c := <-older; c != http.StatusAccepted {
				t.Errorf("older state: %d, want 202", c)
			}
			if n := g.count(); n != tc.calls {
				t.Errorf("EvaluateAlerts called %d times, want %d", n, tc.calls)
			}
			if diff := cmp.Diff(tc.want, fx.sink.got()); diff != "" {
				t.Errorf("published (-want +got):\n%s", diff)
			}
		})
	}
}
