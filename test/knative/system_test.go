package knative

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/cache"
	_ "github.com/dronetrack/dronetrack/core/cache/redis" // the system's cache, read directly by the tests
)

// soak reports whether the long variants run (make soak).
func soak() bool { return os.Getenv("DRONETRACK_SOAK") != "" }

// up starts the system on f with the given replicas (0: scaled to zero)
// and stops it at the end of the test.
func up(t *testing.T, f *fixture, replicas map[string]int, fnEnv map[string][]string) *System {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sys, err := Up(ctx, Options{Bins: bins(t), Replicas: replicas, Env: f.env(), FunctionEnv: fnEnv, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Deliveries still retrying at the end (a test that failed) are
		// not waited for long.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		sys.Close(ctx, t.Logf)
		t.Logf("system stopped in %v", time.Since(start).Round(time.Millisecond))
		if t.Failed() {
			t.Logf("replica output:\n%s", sys.Output())
		}
	})
	return sys
}

// eventually polls cond every 50 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// droneView is what serve-map and the cache render for a drone.
type droneView struct {
	ID    string `json:"id"`
	State *struct {
		TS  time.Time `json:"ts"`
		Lat float64   `json:"lat"`
	} `json:"state"`
}

// cachedState reads the drone's entry from Redis only (no store loader): what
// cache-refresh wrote.
func (f *fixture) cachedState(t *testing.T, droneID string) (droneView, error) {
	t.Helper()
	c, err := cache.Open(context.Background(), "redis://"+f.redis+"/0", cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.Drone(context.Background(), f.tenant, droneID)
	if err != nil {
		return droneView{}, err
	}
	var v droneView
	return v, json.Unmarshal(raw, &v)
}

// TestScaleFromZero: with only ingest running (min scale 1, as deployed)
// and process, cache-refresh, alerts and serve-map scaled to zero, a drone's
// report is accepted, and each downstream function is started on demand by
// the first event routed to it (one replica each, however many events
// wait), gets that event only once its readiness probe answers, and the
// report ends up in the store, in Redis, and on serve-map (itself started by
// the first page request).
func TestScaleFromZero(t *testing.T) {
	f := newFixture(t)
	sys := up(t, f, map[string]int{"ingest": 1}, nil)
	downstream := []string{"process", "cache-refresh", "alerts", "serve-map"}
	for _, name := range downstream {
		if n := sys.Services[name].Started(); n != 0 {
			t.Fatalf("%s has %d replicas before any event, want 0", name, n)
		}
	}
	ts := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	sent := time.Now()
	for i := range 5 { // five requests: still one replica per function
		if code, body := postReport(t, sys.Services["ingest"].URL(), f.key, report(ts.Add(time.Duration(i)*time.Millisecond), 47.2+float64(i)/1000)); code != http.StatusAccepted {
			t.Fatalf("ingest: %d %s", code, body)
		}
	}
	last := ts.Add(4 * time.Millisecond)
	eventually(t, 30*time.Second, "report not in the cache", func() bool {
		v, err := f.cachedState(t, f.drone)
		return err == nil && v.State != nil && v.State.TS.Equal(last)
	})
	t.Logf("first report to cache with three functions started on demand: %v", time.Since(sent).Round(time.Millisecond))
	st, err := f.st.LatestState(context.Background(), f.tenant, f.drone)
	if err != nil || !st.TS.Equal(last) {
		t.Errorf("store: %+v %v, want the report at %v", st, err, last)
	}
	code, body := get(t, sys.Services["serve-map"].URL()+"/api/v1/drones/"+f.drone, f)
	var v droneView
	if err := json.Unmarshal([]byte(body), &v); code != http.StatusOK || err != nil || v.State == nil || !v.State.TS.Equal(last) {
		t.Errorf("serve-map: %d %s, want the state at %v", code, body, last)
	}
	eventually(t, 10*time.Second, "alerts not started", func() bool { return len(sys.Services["alerts"].ColdStarts()) > 0 })
	for _, name := range downstream {
		s := sys.Services[name]
		cs := s.ColdStarts()
		if s.Started() != 1 || len(cs) != 1 {
			t.Errorf("%s: %d replicas started, want exactly 1 (on demand)", name, s.Started())
			continue
		}
		if cs[0].ExecToServed == 0 || cs[0].ExecToServed < cs[0].ExecToReady {
			t.Errorf("%s: first request answered %v after exec, ready at %v: want it only after ready", name, cs[0].ExecToServed, cs[0].ExecToReady)
		}
		t.Logf("%-13s exec->listening %v exec->ready %v exec->first request answered %v", name,
			cs[0].ExecToListening.Round(time.Millisecond), cs[0].ExecToReady.Round(time.Millisecond), cs[0].ExecToServed.Round(time.Millisecond))
	}
	if dls, err := sys.Broker.ListDeadLetters(context.Background()); err != nil || len(dls) != 0 {
		t.Errorf("dead letters: %v %v, want none", dls, err)
	}
}

// TestColdStart measures each function's cold start under func-go, as a
// Service scaled to zero sees it: a request arrives, a replica is started,
// the request is held until the readiness probe answers and then served.
// Per function it runs coldRuns starts (20 with DRONETRACK_SOAK=1) and logs
// p50 and max of exec->listening (process start and Go init: the port
// answers), exec->ready (func-go called Start and Ready is true: store and
// cache clients open) and exec->first request answered (the first call
// also dials the store and Redis). docs/performance.md keeps the table.
func TestColdStart(t *testing.T) {
	b := bins(t)
	f := newFixture(t)
	sink := &sinkRecorder{}
	sinkSrv := httptest.NewServer(sink)
	defer sinkSrv.Close()
	env := append(f.env(), "K_SINK="+sinkSrv.URL)
	runs := 5
	if soak() {
		runs = 20
	}
	var telemetry, stateUpdated recorded
	request := map[string]func(url string, i int) (int, string){
		"ingest": func(url string, i int) (int, string) {
			return postReport(t, url, f.key, report(time.Now().Add(-time.Second), 47.3+float64(i)/1000))
		},
		"process": func(url string, _ int) (int, string) {
			code, r := deliver(t, url, telemetry)
			if stateUpdated.body == nil && code == http.StatusOK {
				stateUpdated = r
			}
			return code, string(r.body)
		},
		"cache-refresh": func(url string, _ int) (int, string) {
			code, r := deliver(t, url, stateUpdated)
			return code, string(r.body)
		},
		"alerts": func(url string, _ int) (int, string) {
			code, r := deliver(t, url, stateUpdated)
			return code, string(r.body)
		},
		"serve-map": func(url string, _ int) (int, string) { return get(t, url+"/api/v1/drones/"+f.drone, f) },
	}
	var table strings.Builder
	table.WriteString("\n| function | exec->listening p50 / max | exec->ready p50 / max | exec->first request answered p50 / max |\n|---|---|---|---|\n")
	for _, name := range Functions {
		s, err := NewService(name, b[name], env)
		if err != nil {
			t.Fatal(err)
		}
		s.ScaleFromZero = true
		for i := range runs {
			if code, body := request[name](s.URL(), i); code/100 != 2 {
				t.Fatalf("%s run %d: %d %s\n%s", name, i, code, body, s.Output())
			}
			if name == "ingest" && i == 0 {
				telemetry = sink.all()[0]
			}
			if err := s.ScaleToZero(10 * time.Second); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		cs := s.ColdStarts()
		s.Close()
		if len(cs) != runs {
			t.Fatalf("%s: %d cold starts, want %d", name, len(cs), runs)
		}
		l, r, sv := quantiles(cs, func(c ColdStart) time.Duration { return c.ExecToListening }),
			quantiles(cs, func(c ColdStart) time.Duration { return c.ExecToReady }),
			quantiles(cs, func(c ColdStart) time.Duration { return c.ExecToServed })
		fmt.Fprintf(&table, "| %s | %v / %v | %v / %v | %v / %v |\n", name, l[0], l[1], r[0], r[1], sv[0], sv[1])
		// The goal is p50 <= 300 ms; the bound leaves room for a busy
		// shared machine so that the test catches a regression (a
		// blocking Start, a slow init) rather than noise.
		if r[0] > time.Second || sv[0] > 2*time.Second {
			t.Errorf("%s: cold start p50 exec->ready %v, exec->served %v; want <= 1 s and <= 2 s (goal 300 ms)", name, r[0], sv[0])
		}
	}
	t.Logf("cold starts, %d per function:%s", runs, table.String())
}

// quantiles returns p50 and max of what over cs, rounded to the millisecond.
func quantiles(cs []ColdStart, what func(ColdStart) time.Duration) [2]time.Duration {
	d := make([]time.Duration, len(cs))
	for i, c := range cs {
		d[i] = what(c)
	}
	slices.Sort(d)
	return [2]time.Duration{d[(len(d)-1)/2].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond)}
}
