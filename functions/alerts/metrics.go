package function

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dronetrack/dronetrack/core/publish"
	"github.com/dronetrack/dronetrack/events"
)

// PathMetrics serves Prometheus metrics (GET), from New on, so a scrape
// works while Start is still opening the store.
const PathMetrics = "/metrics"

// metrics are the alerts function's Prometheus series, counted around the
// handler (by event type and status), on a registry of its own: several
// functions share one process in one-machine mode.
type metrics struct {
	events  *prometheus.CounterVec
	seconds *prometheus.HistogramVec
	// observers are seconds' series by type label, and counters events'
	// by type label and status (sync.Map of typeCode), resolved once
	// rather than per event.
	observers map[string]prometheus.Observer
	counters  sync.Map
	handler   http.Handler
}

type typeCode struct {
	typ  string
	code int
}

func newMetrics() *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dronetrack_alerts_events_total",
			Help: "Events delivered to alerts, by CloudEvent type (state_updated, link_check, alert for webhook delivery, other) and status code (503 on alert: a webhook failed, the broker retries).",
		}, []string{"type", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dronetrack_alerts_event_duration_seconds",
			Help:    "Time to handle one event (state_updated, link_check: rules, store transaction, outbox publish; alert: the webhook POSTs).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"type"}),
	}
	m.observers = map[string]prometheus.Observer{}
	for _, typ := range []string{"state_updated", "link_check", "alert"} {
		m.observers[typ] = m.seconds.WithLabelValues(typ) // export from the first scrape, before any event
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.events, m.seconds,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

// eventLabel bounds the type label to the types alerts subscribes to.
func eventLabel(r *http.Request) string {
	switch publish.DeliveredType(r) {
	case events.TypeStateUpdated:
		return "state_updated"
	case events.TypeLinkCheck, TypePing:
		return "link_check"
	case events.TypeAlertRaised, events.TypeAlertResolved:
		return "alert"
	}
	return "other"
}

// instrument serves r with next and counts it.
func (m *metrics) instrument(w http.ResponseWriter, r *http.Request, next func(http.ResponseWriter, *http.Request)) {
	typ := eventLabel(r)
	sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
	start := time.Now()
	next(sw, r)
	obs, ok := m.observers[typ]
	if !ok {
		obs = m.seconds.WithLabelValues(typ)
	}
	obs.Observe(time.Since(start).Seconds())
	key := typeCode{typ, sw.code}
	c, ok := m.counters.Load(key)
	if !ok {
		c, _ = m.counters.LoadOrStore(key, m.events.WithLabelValues(typ, strconv.Itoa(sw.code)))
	}
	c.(prometheus.Counter).Inc()
}

// serveMetrics answers PathMetrics; only GET and HEAD.
func (m *metrics) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	m.handler.ServeHTTP(w, r)
}

type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wrote {
		s.code, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
