package broker

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkIngress measures events/s accepted (stored, 202) through the
// ingress over loopback HTTP with parallel senders.
func BenchmarkIngress(b *testing.B) {
	_, ingress := openBroker(b, Config{Resolve: resolver(nil)})
	var n atomic.Int64
	b.SetParallelism(16) // 16 x GOMAXPROCS senders
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := n.Add(1)
			if code, err := send(ingress.URL, newEvent(fmt.Sprint("b", id), "test.a")); err != nil || code != http.StatusAccepted {
				b.Errorf("send: %d %v", code, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkEndToEnd measures events/s from ingress to a no-op subscriber
// (202) through one Trigger, including the durable store and the ack.
func BenchmarkEndToEnd(b *testing.B) {
	var delivered atomic.Int64
	noop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		delivered.Add(1)
		w.WriteHeader(http.StatusAccepted)
	}))
	b.Cleanup(noop.Close)
	_, ingress := openBroker(b, Config{
		Files:   []string{writeManifest(b, triggerYAML("t", "test.a", "sub", fastRetry))},
		Resolve: resolver(map[string]string{"sub": noop.URL}),
	})
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := n.Add(1)
			if code, err := send(ingress.URL, newEvent(fmt.Sprint("b", id), "test.a")); err != nil || code != http.StatusAccepted {
				b.Errorf("send: %d %v", code, err)
				return
			}
		}
	})
	for delivered.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}
