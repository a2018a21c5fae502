package knative

import (
	"bufio"
	"context"
	"net/http"
	"testing"
	"time"
)

// TestSSEOutlivesFuncGoTimeouts (DRONETRACK_SOAK=1, it takes 40 s): func-go's
// server has ReadTimeout and WriteTimeout of 30 s. serve-map lifts the write
// deadline on its streams; this checks a stream from a serve-map replica
// under func-go still delivers after 35 s.
func TestSSEOutlivesFuncGoTimeouts(t *testing.T) {
	if !soak() {
		t.Skip("soak test: run with make soak (DRONETRACK_SOAK=1)")
	}
	f := newFixture(t)
	sys := up(t, f, map[string]int{"ingest": 1, "process": 1, "cache-refresh": 1, "alerts": 1, "serve-map": 1},
		map[string][]string{"serve-map": {"SSE_HEARTBEAT=1s"}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, sys.Services["serve-map"].Replicas()[0].URL()+"/api/v1/stream", nil)
	resp, err := http.DefaultClient.Do(f.authed(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	sc := bufio.NewScanner(resp.Body)
	last := start
	for sc.Scan() {
		last = time.Now()
		if time.Since(start) > 40*time.Second {
			t.Logf("stream still delivering after %v", time.Since(start).Round(time.Second))
			return
		}
	}
	t.Fatalf("stream ended after %v (last line %v after start): %v", time.Since(start).Round(time.Millisecond), last.Sub(start).Round(time.Millisecond), sc.Err())
}
