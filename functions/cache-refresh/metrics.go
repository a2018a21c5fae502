package function

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// PathMetrics serves Prometheus metrics (GET), from New on, so a scrape
// works while Start is still connecting to the cache.
const PathMetrics = "/metrics"

// Outcomes of one state.updated event, the label of
// dronetrack_cache_refresh_events_total.
const (
	outcomeApplied  = "applied"  // the cache took the state
	outcomeStale    = "stale"    // the cache already held a newer state
	outcomeRejected = "rejected" // 400: the event can never be applied
	outcomeRetry    = "retry"    // 503: cache unavailable, the broker redelivers
)

// metrics are cache-refresh's Prometheus series, on a registry of its own
// (several functions share one process in one-machine mode).
type metrics struct {
	events     *prometheus.CounterVec
	outcomes   map[string]prometheus.Counter // events' series, resolved once
	putSeconds prometheus.Histogram
	handler    http.Handler
}

func newMetrics() *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dronetrack_cache_refresh_events_total",
			Help: "state.updated events handled, by outcome (applied, stale, rejected, retry).",
		}, []string{"outcome"}),
		putSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "dronetrack_cache_refresh_put_duration_seconds",
			Help:    "Time to write one state to the cache (entry, fleet view, geo index, notice).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	m.outcomes = map[string]prometheus.Counter{}
	for _, o := range []string{outcomeApplied, outcomeStale, outcomeRejected, outcomeRetry} {
		m.outcomes[o] = m.events.WithLabelValues(o) // export zeros, so rate() works from the first scrape
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.events, m.putSeconds,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

func (m *metrics) outcome(o string) { m.outcomes[o].Inc() }

func (m *metrics) observePut(start time.Time) { m.putSeconds.Observe(time.Since(start).Seconds()) }

// serveMetrics answers PathMetrics; only GET and HEAD.
func (m *metrics) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	m.handler.ServeHTTP(w, r)
}
