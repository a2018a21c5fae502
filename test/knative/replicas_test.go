package knative

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestReplicasShareNothingThatMatters runs two replicas each of ingest,
// process, alerts and serve-map (one cache-refresh) and checks what would
// break if a replica kept in memory what must be shared:
//   - a client streaming (SSE) from serve-map replica A sees a report that
//     went in through ingest replica B: the notice travels through Redis;
//   - a drone key revoked through serve-map replica B stops working on every
//     ingest replica within KEY_CACHE_TTL (each replica caches keys for that
//     long: the documented bound).
func TestReplicasShareNothingThatMatters(t *testing.T) {
	f := newFixture(t)
	const ttl = 2 * time.Second
	sys := up(t, f, map[string]int{"ingest": 2, "process": 2, "cache-refresh": 1, "alerts": 2, "serve-map": 2},
		map[string][]string{"ingest": {"KEY_CACHE_TTL=" + ttl.String()}})
	ingest, serveMap := sys.Services["ingest"].Replicas(), sys.Services["serve-map"].Replicas()

	// SSE on serve-map replica A.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, serveMap[0].URL()+"/api/v1/stream", nil)
	resp, err := http.DefaultClient.Do(f.authed(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream on serve-map A: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := make(chan string, 256)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	ts := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	stamp := ts.UTC().Format(time.RFC3339Nano)
	sent := time.Now()
	for i, r := range ingest {
		if code, body := postReport(t, r.URL(), f.key, report(ts.Add(time.Duration(i-1)*time.Millisecond), 47.4)); code != http.StatusAccepted {
			t.Fatalf("ingest replica %d: %d %s", i, code, body)
		}
	}
	// The later report (ts) went in through replica B; A's client must see it.
	seen := false
	for !seen {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("stream ended before the report arrived")
			}
			seen = strings.HasPrefix(l, "data:") && strings.Contains(l, f.drone) && strings.Contains(l, stamp)
		case <-ctx.Done():
			t.Fatalf("serve-map A's stream never showed the report at %s sent through ingest B", stamp)
		}
	}
	t.Logf("ingest B -> SSE on serve-map A: %v", time.Since(sent).Round(time.Millisecond))

	// Both ingest replicas hold the key in their caches, then it is revoked
	// through serve-map replica B.
	for i, r := range ingest {
		if code, body := postReport(t, r.URL(), f.key, report(time.Now().Add(-time.Second), 47.45)); code != http.StatusAccepted {
			t.Fatalf("ingest replica %d: %d %s", i, code, body)
		}
	}
	del, _ := http.NewRequest(http.MethodDelete, serveMap[1].URL()+"/api/v1/drones/"+f.drone+"/key", nil)
	dresp, err := http.DefaultClient.Do(f.authed(del))
	if err != nil {
		t.Fatal(err)
	}
	dresp.Body.Close()
	if dresp.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke via serve-map B: %d, want 204", dresp.StatusCode)
	}
	revoked := time.Now()
	for i, r := range ingest {
		var last int
		for {
			code, _ := postReport(t, r.URL(), f.key, report(time.Now().Add(-time.Second), 47.5))
			last = code
			if code == http.StatusUnauthorized || time.Since(revoked) > ttl+time.Second {
				break
			}
			if code != http.StatusAccepted {
				t.Fatalf("ingest replica %d after revoke: %d, want 202 (cached key) or 401", i, code)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if last != http.StatusUnauthorized {
			t.Errorf("ingest replica %d still takes the revoked key %v after revocation (KEY_CACHE_TTL %v)", i, time.Since(revoked), ttl)
		} else {
			t.Logf("ingest replica %d refuses the revoked key %v after revocation (KEY_CACHE_TTL %v)", i, time.Since(revoked).Round(time.Millisecond), ttl)
		}
	}
}
