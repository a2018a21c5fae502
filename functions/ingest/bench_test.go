package function_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/dronetrack/dronetrack/core/keys"
	"github.com/dronetrack/dronetrack/core/ratelimit"
	"github.com/dronetrack/dronetrack/core/store"
	function "github.com/dronetrack/dronetrack/functions/ingest"
)

// The benchmarks below run in one `go test -bench .` so their figures are
// comparable: each builds its request the same way (httptest.NewRequest with
// the same body and headers, a fresh httptest.ResponseRecorder) and calls
// ServeHTTP in-process, so the difference is the handler's own work.
//
//	go test -run '^$' -bench . -benchmem -count 5
//
// Goal: BenchmarkIngestDecodeValidate >= 0.5x BenchmarkHelloWorld throughput.

type noopPublisher struct{}

func (noopPublisher) Publish(context.Context, event.Event) error { return nil }

func benchRequest(key string, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, function.PathTelemetry, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+key)
	return r
}

// benchLimits keep both token buckets in the measured path but never empty
// them: one benchmark drone sends far more than a real drone may.
var benchLimits = function.RateLimits{Key: ratelimit.Limit{Rate: 1e12, Burst: 1 << 30}, IP: ratelimit.Limit{Rate: 1e12, Burst: 1 << 30}}

func BenchmarkHelloWorld(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("hello"))
	})
	key, _ := keys.Generate()
	body := []byte(report(0, 52.52, 13.405))
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, benchRequest(key, body))
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}

func benchIngest(b *testing.B, body []byte, n int) {
	key, _ := keys.Generate()
	d := store.Drone{ID: "drone-1", TenantID: "tenant-1", KeyHash: keys.Hash(pepper, key)}
	h, err := function.NewHandler(function.Deps{
		Drones:     &finder{drones: map[string]store.Drone{d.KeyHash: d}},
		Publisher:  noopPublisher{},
		Pepper:     pepper,
		Now:        (&clock{now: t0}).Now,
		RateLimits: benchLimits,
	})
	if err != nil {
		b.Fatal(err)
	}
	warm := httptest.NewRecorder()
	h.ServeHTTP(warm, benchRequest(key, body)) // fills the key cache
	if warm.Code != http.StatusAccepted {
		b.Fatalf("warm-up: %d %s", warm.Code, warm.Body)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	cpu := cpuTime()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, benchRequest(key, body))
		if w.Code != http.StatusAccepted {
			b.Fatal(w.Code)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "reports/s")
}

// cpuTime is the process's CPU time so far (user + system, GC workers
// included). On a shared machine ns/op also counts the time other processes
// held the CPU; CPU time per request does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIngestHandler is BenchmarkIngestDecodeValidate without the
// benchmark's own request building: one request whose body is rewound and
// one response writer whose header is cleared, so what it measures is the
// handler alone (httptest.NewRequest parses a request from text and costs
// about as much as the handler).
func BenchmarkIngestHandler(b *testing.B) {
	key, _ := keys.Generate()
	d := store.Drone{ID: "drone-1", TenantID: "tenant-1", KeyHash: keys.Hash(pepper, key)}
	h, err := function.NewHandler(function.Deps{
		Drones: &finder{drones: map[string]store.Drone{d.KeyHash: d}}, Publisher: noopPublisher{},
		Pepper: pepper, Now: (&clock{now: t0}).Now, RateLimits: benchLimits,
	})
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(report(0, 52.52, 13.405))
	rd := bytes.NewReader(body)
	r := benchRequest(key, body)
	r.Body = io.NopCloser(rd)
	w := &resetWriter{h: http.Header{}}
	h.ServeHTTP(w, r)
	if w.code != http.StatusAccepted {
		b.Fatalf("warm-up: %d", w.code)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	cpu := cpuTime()
	for b.Loop() {
		rd.Reset(body)
		clear(w.h)
		w.code = 0
		h.ServeHTTP(w, r)
		if w.code != http.StatusAccepted {
			b.Fatal(w.code)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
}

// resetWriter is a ResponseWriter a benchmark reuses: it keeps the status
// and drops the body.
type resetWriter struct {
	h    http.Header
	code int
}

func (w *resetWriter) Header() http.Header { return w.h }
func (w *resetWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *resetWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(p), nil
}

// BenchmarkIngestDecodeValidate is one report through the whole handler:
// auth (cached key), strict decode, validation, event build, no-op publish.
func BenchmarkIngestDecodeValidate(b *testing.B) {
	benchIngest(b, []byte(report(0, 52.52, 13.405)), 1)
}

// BenchmarkIngestBatch100 is a companion computer's 100-report batch.
func BenchmarkIngestBatch100(b *testing.B) {
	benchIngest(b, []byte(batch(100)), 100)
}

// BenchmarkInterleaved runs hello-world and the one-report ingest request
// alternately in one loop and reports their throughput ratio. On a shared
// machine the separate benchmarks see different load; interleaving makes
// both halves see the same.
func BenchmarkInterleaved(b *testing.B) {
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("hello"))
	})
	key, _ := keys.Generate()
	d := store.Drone{ID: "drone-1", TenantID: "tenant-1", KeyHash: keys.Hash(pepper, key)}
	h, err := function.NewHandler(function.Deps{
		Drones: &finder{drones: map[string]store.Drone{d.KeyHash: d}}, Publisher: noopPublisher{},
		Pepper: pepper, Now: (&clock{now: t0}).Now, RateLimits: benchLimits,
	})
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(report(0, 52.52, 13.405))
	h.ServeHTTP(httptest.NewRecorder(), benchRequest(key, body))
	var helloT, ingestT time.Duration
	for b.Loop() {
		t := time.Now()
		w := httptest.NewRecorder()
		hello.ServeHTTP(w, benchRequest(key, body))
		t2 := time.Now()
		w2 := httptest.NewRecorder()
		h.ServeHTTP(w2, benchRequest(key, body))
		t3 := time.Now()
		if w.Code != http.StatusOK || w2.Code != http.StatusAccepted {
			b.Fatal(w.Code, w2.Code)
		}
		helloT += t2.Sub(t)
		ingestT += t3.Sub(t2)
	}
	b.ReportMetric(float64(helloT.Nanoseconds())/float64(b.N), "hello-ns/op")
	b.ReportMetric(float64(ingestT.Nanoseconds())/float64(b.N), "ingest-ns/op")
	b.ReportMetric(float64(helloT)/float64(ingestT), "ingest/hello")
}
