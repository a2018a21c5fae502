package function

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/storeurl"
	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/events"
)

// faultEnv is process over a Firestore emulator private to the test (the
// cluster-mode adapter, firestore://), so the test may freeze or kill it.
type faultEnv struct {
	fs  *testenv.FirestoreEmulator
	st  store.Store
	h   *Handler
	srv *httptest.Server
}

func newFaultEnv(t *testing.T, drones int, opts Options) *faultEnv {
	t.Helper()
	project := testenv.NewProjectID(t)
	fs := testenv.StartFirestore(t, project)
	t.Setenv("FIRESTORE_EMULATOR_HOST", fs.Host())
	ctx := context.Background()
	st, err := storeurl.Open(ctx, "firestore://"+project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateTenant(ctx, store.Tenant{ID: "t1", Name: "T1"}); err != nil {
		t.Fatal(err)
	}
	for d := range drones {
		id := fmt.Sprintf("d%d", d)
		if err := st.CreateDrone(ctx, store.Drone{ID: id, TenantID: "t1", Name: id, KeyHash: "h-" + id}); err != nil {
			t.Fatal(err)
		}
	}
	h := NewHandler(st, opts)
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); h.Close() })
	return &faultEnv{fs: fs, st: st, h: h, srv: srv}
}

// reportEvent is the telemetry.received event of drone's report i, built
// once so every redelivery carries the same event id, as the broker's do.
func reportEvent(t *testing.T, drone string, i int) cloudevents.Event {
	t.Helper()
	ev, err := events.NewTelemetryReceived(received(drone, rep(i, 47+float64(i)/1000, 8.5, 80)))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// deliver posts ev as the broker does and returns process's status and
// headers. The client allows minutes: the test sees what the handler
// answered, never a client-side timeout.
func (e *faultEnv) deliver(t *testing.T, ev cloudevents.Event) (int, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := cehttp.NewHTTPRequestFromEvent(ctx, e.srv.URL+"/", ev)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("deliver %s: %v", ev.ID(), err)
		return 0, nil
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header
}

// audit checks the store: each drone's reports 1..perDrone are stored
// exactly once and its state is its newest report.
func (e *faultEnv) audit(t *testing.T, drones, perDrone int) {
	t.Helper()
	ctx := context.Background()
	for d := range drones {
		drone := fmt.Sprintf("d%d", d)
		pts, err := e.st.Track(ctx, store.TrackQuery{TenantID: "t1", DroneID: drone})
		if err != nil {
			t.Fatalf("%s: read history: %v", drone, err)
		}
		seen := map[time.Time]int{}
		for _, p := range pts {
			seen[p.Report.TS.UTC()]++
		}
		for i := 1; i <= perDrone; i++ {
			if n := seen[base.Add(time.Duration(i)*time.Second).UTC()]; n != 1 {
				t.Errorf("%s report %d stored %d times, want once", drone, i, n)
			}
		}
		if len(pts) != perDrone {
			t.Errorf("%s: %d history points, want %d", drone, len(pts), perDrone)
		}
		dr, err := e.st.Drone(ctx, "t1", drone)
		if err != nil || dr.State == nil || !dr.State.TS.Equal(base.Add(time.Duration(perDrone)*time.Second)) {
			t.Errorf("%s: state %+v, %v; want the newest report %d", drone, dr.State, err, perDrone)
		}
	}
}

// traffic sends perDrone reports for each drone, one drone per goroutine,
// each redelivered until process answers 2xx (the broker's retry loop), and
// runs outage once every drone has some reports acknowledged, so the fault
// hits mid-stream. Any answer other than 2xx or 503 fails the test. It
// returns the answers counted by status and the times of the 2xx answers.
func (e *faultEnv) traffic(t *testing.T, drones, perDrone int, outage func()) (map[int]int, []time.Time) {
	t.Helper()
	var mu sync.Mutex
	codes := map[int]int{}
	var acks []time.Time
	var acked atomic.Int64
	var wg sync.WaitGroup
	for d := range drones {
		wg.Go(func() {
			drone := fmt.Sprintf("d%d", d)
			for i := 1; i <= perDrone; i++ {
				ev := reportEvent(t, drone, i)
				for giveUp := time.Now().Add(3 * time.Minute); ; {
					code, hdr := e.deliver(t, ev)
					mu.Lock()
					codes[code]++
					if code/100 == 2 {
						acks = append(acks, time.Now())
					}
					mu.Unlock()
					if code/100 == 2 {
						acked.Add(1)
						break
					}
					if code != http.StatusServiceUnavailable {
						t.Errorf("%s report %d: status %d; want 2xx or 503", drone, i, code)
						return
					}
					if hdr.Get("Retry-After") == "" {
						t.Errorf("%s report %d: 503 without Retry-After", drone, i)
					}
					if time.Now().After(giveUp) { // a hang guard, not a latency bound
						t.Errorf("%s report %d: still 503 after 3 minutes of redelivery", drone, i)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	for acked.Load() < int64(drones*5) && !t.Failed() {
		time.Sleep(10 * time.Millisecond)
	}
	outage()
	wg.Wait()
	return codes, acks
}

// A delivery while the store hangs (emulator frozen with SIGSTOP: its
// connections stay open and calls never answer) gets 503 with Retry-After
// once the store deadline passes, both when the history write hangs and
// when the latest-state write does; nothing is acknowledged unwritten, and
// redelivery after the thaw stores each report exactly once.
func TestFaultFirestoreFrozenDeliveryAnswers503(t *testing.T) {
	// The state interval is long enough for the test to freeze the emulator
	// while a state write is parked in the coalescer; the store timeout must
	// exceed it (Start enforces that).
	fe := newFaultEnv(t, 1, Options{StateInterval: 3 * time.Second, StoreTimeout: 6 * time.Second})
	ev1, ev2, ev3 := reportEvent(t, "d0", 1), reportEvent(t, "d0", 2), reportEvent(t, "d0", 3)
	if code, _ := fe.deliver(t, ev1); code != http.StatusOK {
		t.Fatalf("report 1 with the store up: %d, want 200", code)
	}

	// The history write hangs.
	fe.fs.Freeze()
	code, hdr := fe.deliver(t, ev2)
	fe.fs.Thaw()
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("report 2 with the store frozen: %d, Retry-After %q; want 503 with Retry-After", code, hdr.Get("Retry-After"))
	}
	testenv.Redeliver(t, "report 2 redelivered after the thaw", time.Minute, func() (int, http.Header) { return fe.deliver(t, ev2) })

	// The state write hangs: report 3 comes within the state interval of
	// report 2's write, so its history is written at once and its state
	// waits in the coalescer; the emulator is frozen before that write
	// starts (the coalescer's lock holds its timer off meanwhile).
	answer := make(chan int, 1)
	go func() { c, _ := fe.deliver(t, ev3); answer <- c }()
	for frozen := false; !frozen; time.Sleep(5 * time.Millisecond) {
		fe.h.states.mu.Lock()
		if p := fe.h.states.drones[droneKey{"t1", "d0"}]; p != nil && p.queued && len(p.waiters) == 1 {
			fe.fs.Freeze()
			frozen = true
		}
		fe.h.states.mu.Unlock()
		select {
		case c := <-answer:
			t.Fatalf("report 3 answered %d before its state write was parked", c)
		default:
		}
	}
	code = <-answer
	fe.fs.Thaw()
	if code != http.StatusServiceUnavailable {
		t.Fatalf("report 3 with its state write frozen: %d, want 503", code)
	}
	testenv.Redeliver(t, "report 3 redelivered after the thaw", time.Minute, func() (int, http.Header) { return fe.deliver(t, ev3) })
	fe.h.Close()
	fe.audit(t, 1, 3)
}

// The Firestore emulator freezes (SIGSTOP: a partition, data kept) under
// traffic and thaws: process answers 503 meanwhile, the "broker" redelivers
// until 2xx, and in the end every report is stored exactly once and each
// drone's state is its newest report.
func TestFaultFirestoreOutage(t *testing.T) {
	const drones, perDrone = 5, 40
	fe := newFaultEnv(t, drones, Options{StateInterval: 20 * time.Millisecond, StoreTimeout: 2 * time.Second})
	codes, _ := fe.traffic(t, drones, perDrone, func() {
		fe.fs.Freeze()
		time.Sleep(3 * time.Second)
		fe.fs.Thaw()
	})
	fe.h.Close() // flush coalesced state
	t.Logf("answers by status: %v", codes)
	if codes[http.StatusServiceUnavailable] == 0 {
		t.Error("no 503: the freeze did not hit traffic")
	}
	fe.audit(t, drones, perDrone)
}

// The Firestore database process dies under traffic and is started again
// on the same port. The emulator keeps data in memory only and the jar
// ignores --export-on-exit, so testenv's Kill models a database that keeps
// what it committed: it cuts every client connection (new ones are
// refused, as for a dead process), exports the data, SIGKILLs the java
// process; Restart starts a new one on the same port with --import-data
// (see testenv.FirestoreEmulator). Meanwhile process answers 503 (never a
// 2xx for an unwritten report), its Firestore client reconnects by itself
// (the handler and store are never restarted) and in the end every report
// is stored exactly once and each drone's state is its newest report: no
// acknowledged report was lost, none doubled.
func TestFaultFirestoreRestart(t *testing.T) {
	const drones, perDrone = 5, 40
	fe := newFaultEnv(t, drones, Options{StateInterval: 20 * time.Millisecond, StoreTimeout: 2 * time.Second})
	var killed, restarted time.Time
	codes, acks := fe.traffic(t, drones, perDrone, func() {
		killed = time.Now()
		fe.fs.Kill()
		time.Sleep(2 * time.Second) // down: deliveries meet connection refused
		fe.fs.Restart()
		restarted = time.Now()
	})
	fe.h.Close() // flush coalesced state
	firstAck := time.Time{}
	for _, a := range acks {
		if a.After(restarted) && (firstAck.IsZero() || a.Before(firstAck)) {
			firstAck = a
		}
	}
	// Figures for the record, not assertions.
	t.Logf("answers by status: %v; database down %v (kill to restarted); first 2xx %v after the restart",
		codes, restarted.Sub(killed).Round(time.Millisecond), firstAck.Sub(restarted).Round(time.Millisecond))
	if codes[http.StatusServiceUnavailable] == 0 {
		t.Error("no 503: the restart did not hit traffic")
	}
	fe.audit(t, drones, perDrone)
}
