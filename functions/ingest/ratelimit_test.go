package function_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/ratelimit"
	function "github.com/dronetrack/dronetrack/functions/ingest"
)

// A drone over its rate gets 429 + Retry-After and nothing is published;
// once its bucket refills it is served again.
func TestRateLimitPerDrone(t *testing.T) {
	e := newEnvDeps(t, func(d *function.Deps) {
		d.RateLimits = function.RateLimits{Key: ratelimit.Limit{Rate: 0.5, Burst: 2}}
	})
	for i := range 2 {
		if r := e.post(t, report(time.Duration(i)*time.Second, 47.4, 8.5)); r.status != http.StatusAccepted {
			t.Fatalf("request %d within the burst: %d %s", i+1, r.status, r.body)
		}
	}
	r := e.post(t, report(5*time.Second, 47.4, 8.5))
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("3rd request: %d %s, want 429", r.status, r.body)
	}
	decodeProblem(t, r)
	if got := r.header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After = %q, want 2 (one token at 0.5/s)", got)
	}
	if n := len(e.sink.got()); n != 2 {
		t.Errorf("%d events published, want 2 (the refused request must not be)", n)
	}
	e.clock.advance(2 * time.Second)
	if r := e.post(t, report(6*time.Second, 47.4, 8.5)); r.status != http.StatusAccepted {
		t.Fatalf("after Retry-After: %d %s", r.status, r.body)
	}
}

// The per-address limit answers before the key is looked up, so a flood of
// made-up keys costs no store reads; X-Forwarded-For counts only as far as
// the configured trusted hops.
func TestRateLimitPerIP(t *testing.T) {
	e := newEnvDeps(t, func(d *function.Deps) {
		d.RateLimits = function.RateLimits{IP: ratelimit.Limit{Rate: 1, Burst: 3}, IPHops: 1}
	})
	send := func(xff string) int {
		req, _ := http.NewRequest(http.MethodPost, e.url+function.PathTelemetry, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer dt_notakeynotakeynotakeynotakey00")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 3 {
		if got := send("9.9.9.9, 203.0.113.7"); got == http.StatusTooManyRequests {
			t.Fatalf("request %d within the burst got 429", i+1)
		}
	}
	before := e.finder.lookups()
	// A spoofed left-most entry does not buy a new bucket.
	if got := send("1.1.1.1, 203.0.113.7"); got != http.StatusTooManyRequests {
		t.Fatalf("4th request from 203.0.113.7: %d, want 429", got)
	}
	if e.finder.lookups() != before {
		t.Error("a rate-limited request still looked its key up")
	}
	if got := send("203.0.113.8"); got == http.StatusTooManyRequests {
		t.Error("another address was limited")
	}
}
