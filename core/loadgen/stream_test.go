package loadgen

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestReadEvents(t *testing.T) {
	in := "retry: 2000\n: connected\n\n" +
		"id: 7\nevent: drone\ndata: {\"id\":\"a\"}\n\n" +
		": heartbeat\n\n" +
		"event: resync\r\ndata: {}\r\n\r\n" +
		"data: one\ndata: two\n\n" +
		"id: 8\nevent: drone\ndata: " + strings.Repeat("x", 70<<10) + "\n\n" +
		"event: drone\ndata: cut off"
	var got []sseEvent
	var retry time.Duration
	err := readEvents(strings.NewReader(in), func(ev sseEvent) {
		if len(ev.data) > 100 {
			ev.data = []byte(fmt.Sprintf("%d bytes", len(ev.data)))
		}
		got = append(got, ev)
	}, func(d time.Duration) { retry = d })
	if retry != 2*time.Second {
		t.Errorf("retry %v; want 2s", retry)
	}
	if err == nil {
		t.Error("readEvents ended without the reader's error")
	}
	want := []sseEvent{
		{id: "7", event: "drone", data: []byte(`{"id":"a"}`)},
		{id: "7", event: "resync", data: []byte(`{}`)}, // the last id stays, as in EventSource
		{id: "7", event: "message", data: []byte("one\ntwo")},
		{id: "8", event: "drone", data: []byte(fmt.Sprintf("%d bytes", 70<<10))},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(sseEvent{})); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestStreamerResumesAndResyncs runs the stream reader against a fake
// serve-map: it logs in, counts drone events as streamed, resumes with
// Last-Event-ID (after the stream's retry time) when the server drops it,
// and on resync reads the fleet.
func TestStreamerResumesAndResyncs(t *testing.T) {
	lastIDs := make(chan string, 10)
	var conns atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/auth/login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "dt_session", Value: "s1", Path: "/"})
	})
	authed := func(r *http.Request) bool {
		c, err := r.Cookie("dt_session")
		return err == nil && c.Value == "s1"
	}
	mux.HandleFunc("GET /api/v1/stream", func(w http.ResponseWriter, r *http.Request) {
		if !authed(r) {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		n := conns.Add(1)
		lastIDs <- r.Header.Get("Last-Event-ID")
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "retry: 1\n: connected\n\n")
		w.(http.Flusher).Flush()
		if n == 1 {
			fmt.Fprintf(w, "id: 1\nevent: drone\ndata: {\"id\":\"a\",\"name\":\"A\",\"state\":{\"ts\":%q,\"lat\":1}}\n\n", t0.Format(time.RFC3339Nano))
			fmt.Fprintf(w, "id: 2\nevent: drone\ndata: {\"id\":\"b\",\"state\":{\"ts\":%q}}\n\n", t0.Add(time.Second).Format(time.RFC3339Nano))
			return // dropped
		}
		fmt.Fprint(w, "event: resync\ndata: {}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	mux.HandleFunc("GET /api/v1/drones", func(w http.ResponseWriter, r *http.Request) {
		if !authed(r) {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, `{"drones":[{"id":"c","state":{"ts":%q}},{"id":"d"}]}`, t0.Add(2*time.Second).Format(time.RFC3339Nano))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	api, err := login(srv.URL, Login{Email: "demo@x", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	tr := newTracker([]string{"a", "b", "c", "d"}, true, t0)
	tr.setStep(0, 10)
	for i, ts := range []time.Time{t0, t0.Add(time.Second), t0.Add(2 * time.Second)} {
		tr.acked(i, reports(ts), ts, ts)
	}
	s := newStreamer(srv.URL, api, tr)
	s.alsoStored = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := s.connect(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); s.run(ctx, resp) }()
	for {
		if _, _, _, st := tr.counts(); st == 3 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the stream reader did not see all three drones' states")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if first, second := <-lastIDs, <-lastIDs; first != "" || second != "2" {
		t.Errorf("Last-Event-ID on connect %q, on reconnect %q; want \"\", \"2\"", first, second)
	}
	if r, rs := s.reconnects.Load(), s.resyncs.Load(); r != 1 || rs != 1 {
		t.Errorf("reconnects %d resyncs %d; want 1, 1", r, rs)
	}
	// alsoStored: what the stream (and the resync's fleet read) carried
	// counts as stored too; nothing counts as visible, which only the
	// fleet poll marks.
	if _, stored, visible, _ := tr.counts(); stored != 3 || visible != 0 {
		t.Errorf("stored %d visible %d; want 3, 0", stored, visible)
	}
}

// TestPollAPIMatchesLateAck: a fleet read can show a report's state before
// its 202 is recorded; the following reads revalidate (If-None-Match) and
// are answered 304 while the list is unchanged, as serve-map does, and the
// report still counts as visible once acked.
func TestPollAPIMatchesLateAck(t *testing.T) {
	var reads, full atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reads.Add(1)
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		full.Add(1)
		fmt.Fprintf(w, `{"drones":[{"id":"a","state":{"ts":%q}},{"id":"x","state":{"ts":%q}}]}`,
			t0.Format(time.RFC3339Nano), t0.Format(time.RFC3339Nano))
	}))
	defer srv.Close()
	tr := newTracker([]string{"a"}, false, t0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); tr.pollAPI(ctx, srv.Client(), srv.URL, time.Millisecond) }()
	wait := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatal(what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	wait("no fleet reads", func() bool { return reads.Load() >= 2 })
	tr.acked(0, reports(t0), t0, t0)
	wait("the late-acked report never counted as visible", func() bool { _, _, v, _ := tr.counts(); return v == 1 })
	cancel()
	<-done
	if n, f := reads.Load(), full.Load(); f != 1 {
		t.Errorf("%d of %d fleet reads answered in full; want 1 (the rest revalidated, 304)", f, n)
	}
}
