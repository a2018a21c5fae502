package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/events"
	"github.com/google/go-cmp/cmp"
)

// fakeIngest answers like ingest: it checks the key and the body and keeps
// what it accepted. failFirst makes the first attempt of every distinct body
// fail with 503 and Retry-After: 0, so every request is retried once.
type fakeIngest struct {
	mu        sync.Mutex
	keys      map[string]bool
	failFirst bool
	seen      map[string]int             // body -> attempts
	accepted  map[string][]events.Report // key -> reports
	sizes     map[string][]int           // key -> reports per accepted request
}

func newFakeIngest(keys []string) *fakeIngest {
	f := &fakeIngest{keys: map[string]bool{}, seen: map[string]int{}, accepted: map[string][]events.Report{}, sizes: map[string][]int{}}
	for _, k := range keys {
		f.keys[k] = true
	}
	return f
}

func (f *fakeIngest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != IngestPath || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !f.keys[key] {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.Header.Get("Content-Type") != "application/json" {
		w.WriteHeader(http.StatusUnsupportedMediaType)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var reports []events.Report
	if bytes.HasPrefix(body, []byte("[")) {
		if err := json.Unmarshal(body, &reports); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
	} else {
		var one events.Report
		if err := json.Unmarshal(body, &one); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		reports = []events.Report{one}
	}
	now := time.Now()
	for i, rep := range reports {
		if errs := rep.Validate(now, fmt.Sprintf("/%d", i)); errs != nil {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprint(w, events.ValidationError(errs).Error())
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen[string(body)]++
	if f.failFirst && f.seen[string(body)] == 1 {
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	f.accepted[key] = append(f.accepted[key], reports...)
	f.sizes[key] = append(f.sizes[key], len(reports))
	w.WriteHeader(http.StatusAccepted)
	_, _ = fmt.Fprintf(w, `{"accepted":%d}`, len(reports))
}

func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("key-%03d", i)
	}
	return out
}

func TestRunCountsEveryReportOnce(t *testing.T) {
	tests := []struct {
		name      string
		batch     int
		failFirst bool
		tick      time.Duration
	}{
		{"single reports", 1, false, 0},
		{"batches of 5", 5, false, 0},
		{"every request retried after 503", 1, true, 0},
		{"sent once a tick", 1, false, 20 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ks := keys(20)
			fake := newFakeIngest(ks)
			fake.failFirst = tc.failFirst
			srv := httptest.NewServer(fake)
			defer srv.Close()

			var mu sync.Mutex
			acked := map[int][]events.Report{}
			s, err := Run(context.Background(), Config{
				URL: srv.URL, Keys: ks, Rate: 20, Batch: tc.batch, Count: 400, Seed: 1, Tick: tc.tick,
				Live: &testenv.LogBuffer{},
				OnAck: func(drone int, reports []events.Report, sentAt, ackedAt time.Time) {
					mu.Lock()
					acked[drone] = append(acked[drone], reports...)
					mu.Unlock()
					if ackedAt.Before(sentAt) {
						t.Errorf("acked %s before sent %s", ackedAt, sentAt)
					}
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if s.Sent != 400 || s.Acked != 400 || s.Rejected != 0 || s.Failed != 0 {
				t.Errorf("summary = %+v, want 400 sent and acked", s)
			}
			// With batches, every request carries a whole batch (each
			// drone's share, 20 reports, is 4 of 5), the first too.
			wantRequests := 0
			for i, k := range ks {
				sizes := fake.sizes[k]
				wantRequests += len(sizes)
				for j, n := range sizes {
					if n != tc.batch {
						t.Errorf("drone %d: request %d of %d reports, want %d", i, j, n, tc.batch)
					}
				}
			}
			if tc.batch == 1 && wantRequests != 400 {
				t.Errorf("server accepted %d requests of one report, want 400", wantRequests)
			}
			if tc.failFirst {
				wantRequests *= 2
				if s.Retried != 400 || s.Errors["status_503"] != 400 {
					t.Errorf("retried %d, 503s %d, want 400 each", s.Retried, s.Errors["status_503"])
				}
			}
			if s.Requests != wantRequests {
				t.Errorf("requests = %d, want %d (errors %v, p50 %s p99 %s max %s)", s.Requests, wantRequests, s.Errors, s.P50, s.P99, s.Max)
			}
			// What the simulator counts as acked is exactly what the server kept.
			for i, k := range ks {
				if diff := cmp.Diff(fake.accepted[k], acked[i]); diff != "" {
					t.Errorf("drone %d: server kept vs OnAck (-server +sim):\n%s", i, diff)
				}
				for j := 1; j < len(acked[i]); j++ {
					if !acked[i][j].TS.After(acked[i][j-1].TS) || *acked[i][j].Seq != *acked[i][j-1].Seq+1 {
						t.Errorf("drone %d report %d not after the previous one", i, j)
					}
				}
			}
			if s.P50 <= 0 || s.P99 < s.P50 {
				t.Errorf("latency p50 %s p99 %s", s.P50, s.P99)
			}
		})
	}
}

// A run bounded by Duration sends its requests evenly: each drone a whole
// batch every batch period from its place in the fleet's stagger, the
// first too (the fleet was flying before the run: its first reports are
// dated before the start), and nothing at the end but what was due
// within the run, so the server sees Rate x Duration reports in requests
// spread over the run, not a rise over the first batch period and every
// drone's partial batch at once as the run ends.
func TestRunBatchesEvenlyOverDuration(t *testing.T) {
	ks := keys(20)
	fake := newFakeIngest(ks)
	srv := httptest.NewServer(fake)
	defer srv.Close()
	var mu sync.Mutex
	var late []time.Duration
	notBefore := time.Now().Add(-300 * time.Millisecond) // before any report
	start := time.Now()
	// 20 reports/s a drone in batches of 5: a request every 250 ms, four
	// in the second the run lasts.
	s, err := Run(context.Background(), Config{
		URL: srv.URL, Keys: ks, Rate: 20, Batch: 5, Duration: time.Second, Seed: 1, NotBefore: notBefore,
		OnSend: func(n int, l time.Duration) {
			mu.Lock()
			late = append(late, l)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Sent != 20*20 || s.Acked != s.Sent {
		t.Errorf("summary = %+v, want 400 reports sent (rate x duration) and acked", s)
	}
	if len(late) != s.Requests {
		t.Errorf("OnSend called %d times for %d requests", len(late), s.Requests)
	}
	early := 0
	for i, k := range ks {
		if sizes := fake.sizes[k]; !cmp.Equal(sizes, []int{5, 5, 5, 5}) {
			t.Errorf("drone %d: requests of %v reports, want 4 of 5", i, sizes)
		}
		reps := fake.accepted[k]
		if len(reps) == 0 {
			continue
		}
		if reps[0].TS.Before(notBefore.Truncate(time.Millisecond)) {
			t.Errorf("drone %d: first report at %s, before NotBefore %s", i, reps[0].TS, notBefore)
		}
		if reps[0].TS.Before(start.Truncate(time.Millisecond)) {
			early++
		}
		for j := 1; j < len(reps); j++ {
			if d := reps[j].TS.Sub(reps[j-1].TS); d != 50*time.Millisecond {
				t.Errorf("drone %d: reports %d and %d %s apart, want 50ms", i, j-1, j, d)
			}
		}
	}
	if early == 0 {
		t.Error("no drone's first report is dated before the start: first requests were not whole batches")
	}
}

// NotBefore keeps a run's reports after it (a previous run's of the same
// drones): the first batches are short instead.
func TestRunNotBefore(t *testing.T) {
	ks := keys(20)
	fake := newFakeIngest(ks)
	srv := httptest.NewServer(fake)
	defer srv.Close()
	notBefore := time.Now().Add(100 * time.Millisecond)
	s, err := Run(context.Background(), Config{URL: srv.URL, Keys: ks, Rate: 20, Batch: 5, Duration: time.Second, Seed: 1, NotBefore: notBefore})
	if err != nil {
		t.Fatal(err)
	}
	if s.Sent == 0 || s.Sent >= 400 || s.Acked != s.Sent {
		t.Errorf("summary = %+v, want fewer than 400 reports sent, all acked", s)
	}
	for i, k := range ks {
		for _, r := range fake.accepted[k] {
			if r.TS.Before(notBefore) {
				t.Errorf("drone %d: report at %s, before NotBefore %s", i, r.TS, notBefore)
			}
		}
	}
}

func TestRunRejectsAndRetriesByStatus(t *testing.T) {
	srv := httptest.NewServer(newFakeIngest([]string{"good"}))
	defer srv.Close()
	s, err := Run(context.Background(), Config{URL: srv.URL + "/", Keys: []string{"good", "bad"}, Rate: 50, Count: 40})
	if err != nil {
		t.Fatal(err)
	}
	if s.Acked+s.Rejected != 40 || s.Acked == 0 || s.Rejected == 0 || s.Errors["status_401"] != s.Rejected {
		t.Errorf("summary = %+v, want the good key acked and the bad one rejected with 401", s)
	}
}

func TestRunGivesUpOnAnUnreachableIngest(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens any more
	s, err := Run(context.Background(), Config{URL: url, Keys: keys(2), Rate: 10, Count: 2, MaxRetries: 2})
	if err != nil {
		t.Fatal(err)
	}
	if s.Failed != 2 || s.Retried != 4 || s.Errors["transport"] != 6 {
		t.Errorf("summary = %+v, want 2 failed after 2 retries each", s)
	}
}

func TestRunSilentDronesSendNothingWhileSilent(t *testing.T) {
	ks := keys(10)
	fake := newFakeIngest(ks)
	srv := httptest.NewServer(fake)
	defer srv.Close()
	s, err := Run(context.Background(), Config{
		URL: srv.URL, Keys: ks, Rate: 20, Duration: 2 * time.Second,
		SilentFraction: 1, SilentFor: time.Second, Seed: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Silenced == 0 || s.Acked == 0 {
		t.Errorf("summary = %+v, want some reports silenced and some acked", s)
	}
	if got := s.Acked + s.Silenced + s.Rejected + s.Failed; got != s.Sent+s.Silenced {
		t.Errorf("accounted %d reports, sent+silenced %d", got, s.Sent+s.Silenced)
	}
}

func TestRunIsDeterministicInSeed(t *testing.T) {
	run := func(seed uint64) map[string][]events.Report {
		ks := keys(5)
		fake := newFakeIngest(ks)
		srv := httptest.NewServer(fake)
		defer srv.Close()
		if _, err := Run(context.Background(), Config{URL: srv.URL, Keys: ks, Rate: 50, Count: 50, Seed: seed}); err != nil {
			t.Fatal(err)
		}
		// Timestamps depend on the start time; the route must not.
		for _, reps := range fake.accepted {
			for i := range reps {
				reps[i].TS = time.Time{}
			}
		}
		return fake.accepted
	}
	// Count bounds the reports of all drones together, so how many each
	// drone sent depends on scheduling; its route must not: the shorter of
	// two runs' sequences is a prefix of the longer.
	first, second := run(9), run(9)
	for k, a := range first {
		b := second[k]
		n := min(len(a), len(b))
		if n == 0 {
			continue
		}
		if diff := cmp.Diff(a[:n], b[:n]); diff != "" {
			t.Errorf("%s: same seed, different route (-first +second):\n%s", k, diff)
		}
	}
	if cmp.Equal(run(9), run(10)) {
		t.Error("different seeds flew the same routes")
	}
}

func TestConfigNeedsAnEnd(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "http://127.0.0.1:1", Keys: keys(1)},
		{URL: "http://127.0.0.1:1", Count: 1},
		{URL: "ftp://x", Keys: keys(1), Count: 1},
		{URL: "http://127.0.0.1:1", Keys: keys(1), Count: 1, Batch: 501},
	} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("Run(%+v) = nil error, want a config error", cfg)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"-1":                            0,
		"3600":                          time.Minute,
		"Thu, 01 Jan 2026 00:00:02 GMT": 2 * time.Second,
		"soon":                          0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

// Cancelling the context ends generation, but requests in flight finish:
// a Ctrl-C or a shutdown must not turn a report the server took into a
// failure.
func TestRunCancelDrainsRequestsInFlight(t *testing.T) {
	ks := keys(10)
	fake := newFakeIngest(ks)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		fake.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(slow)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	s, err := Run(ctx, Config{URL: srv.URL, Keys: ks, Rate: 10, Duration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if s.Sent == 0 || s.Failed != 0 || s.Acked != s.Sent {
		t.Errorf("summary = %+v, want every sent report acked after cancel", s)
	}
}

func TestWakeAt(t *testing.T) {
	base := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		next time.Duration
		tick time.Duration
		want time.Duration
	}{
		{1500 * time.Microsecond, 0, 1500 * time.Microsecond},
		{1500 * time.Microsecond, 10 * time.Millisecond, 10 * time.Millisecond},
		{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond},
		{10*time.Millisecond + 1, 10 * time.Millisecond, 20 * time.Millisecond},
	} {
		if got := wakeAt(base.Add(tc.next), tc.tick).Sub(base); got != tc.want {
			t.Errorf("wakeAt(+%s, %s) = +%s; want +%s", tc.next, tc.tick, got, tc.want)
		}
	}
}
