package function

import (
	_ "embed"
	"errors"
	"hash/fnv"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dronetrack/dronetrack/core/accounts"
	"github.com/dronetrack/dronetrack/core/cache"
	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

//go:embed openapi.json
var openAPIDoc []byte

// Track paging limits.
const (
	DefaultTrackLimit  = 500
	MaxTrackLimit      = 5000
	DefaultTrackWindow = time.Hour
)

// CacheHeader tells clients (and tests) where an answer came from: "cache",
// or "bypass" when the cache was unavailable and the store answered.
const CacheHeader = "X-Dronetrack-Cache"

// VersionHeader carries the fleet version a list reflects (at least). A
// client opens the stream with since= (or Last-Event-ID) set to it and
// receives every change after the list, so list + stream never miss one.
const VersionHeader = "X-Dronetrack-Version"

// server holds what the handlers need; Function wires it from config.
type server struct {
	cache     *cache.Cache
	store     Store
	hub       *hub
	log       *slog.Logger
	heartbeat time.Duration
	now       func() time.Time
	metrics   *metrics
	tiles     string // TILES_URL, written into the page
	// accounts resolves sessions and runs the account endpoints (auth.go).
	accounts     *accounts.Service
	cookieSecure bool
	sessionTTL   time.Duration
	// sessionRecheck is how often an open stream re-checks its session.
	sessionRecheck time.Duration
	ipHops         int
	// links configures the public tracking links (links.go).
	links linkSettings
	// rid is the Network Remote ID service provider (rid*.go).
	rid *ridService
}

type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	bypass   *prometheus.CounterVec
	streams  prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dronetrack_serve_map_requests_total", Help: "HTTP requests by route pattern and status.",
		}, []string{"route", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dronetrack_serve_map_request_seconds", Help: "Time to answer, by route pattern (streams excluded).",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		bypass: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dronetrack_serve_map_cache_bypass_total", Help: "Answers served from the store because the cache was unavailable.",
		}, []string{"route"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dronetrack_serve_map_streams", Help: "Open SSE streams.",
		}),
	}
	m.reg.MustRegister(m.requests, m.seconds, m.bypass, m.streams,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// routes is the whole HTTP surface; the OpenAPI test walks it.
func (s *server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(s.instrument)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, http.StatusNotFound, "", "no such resource", problem.WithInstance(r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, http.StatusMethodNotAllowed, "", r.Method+" is not allowed on "+r.URL.Path)
	})
	r.Get("/", s.serveIndex)
	r.Get("/assets/{name}", s.serveAsset)
	r.Get("/account/{page}", s.serveAccount)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	r.Get("/api/v1/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(openAPIDoc)
	})
	s.publicAccountRoutes(r)
	s.publicLinkRoutes(r)
	s.ridRoutes(r)
	r.Group(func(r chi.Router) {
		r.Use(s.authenticate, requireTenant, s.csrf)
		s.sessionAccountRoutes(r)
		r.Get("/api/v1/drones", s.listDrones)
		r.Get("/api/v1/drones/{id}", s.getDrone)
		r.Get("/api/v1/drones/{id}/track", s.getTrack)
		s.alertRoutes(r)
		s.sessionLinkRoutes(r)
		s.remoteIDRoutes(r)
		s.flightRoutes(r)
		r.Get("/api/v1/stream", s.sessionBound(s.serveStream))
	})
	return r
}

func (s *server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
		if !strings.HasSuffix(route, "/stream") { // streams last as long as they are open
			s.metrics.seconds.WithLabelValues(route).Observe(time.Since(start).Seconds())
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// listDrones is GET /api/v1/drones[?bbox=minLon,minLat,maxLon,maxLat].
func (s *server) listDrones(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	tenantID := TenantFrom(ctx)
	var box *cache.BBox
	if q := r.URL.Query(); q.Has("bbox") {
		b, err := cache.ParseBBox(q.Get("bbox"))
		if err != nil {
			badParams(w, events.FieldError{Field: "bbox", Pointer: "/bbox", Detail: err.Error()})
			return
		}
		box = &b
	}
	var (
		f   cache.Fleet
		err error
	)
	if box != nil {
		f, err = s.cache.FleetInBox(ctx, tenantID, *box)
	} else {
		f, err = s.cache.Fleet(ctx, tenantID)
	}
	var body []byte
	etag := ""
	switch {
	case err == nil:
		w.Header().Set(CacheHeader, "cache")
		w.Header().Set(VersionHeader, strconv.FormatUint(f.Version, 10))
		body, etag = f.JSON, `"v`+strconv.FormatUint(f.Version, 10)+`"`
	case errors.Is(err, cache.ErrUnavailable):
		ds, serr := s.store.Drones(ctx, tenantID)
		if serr != nil {
			s.storeFailed(w, r, serr)
			return
		}
		if box != nil {
			ds = inBox(ds, *box)
		}
		if body, err = cache.RenderDrones(ds); err != nil {
			s.log.ErrorContext(ctx, "render drones", "tenant", tenantID, "err", err)
			problem.Write(w, http.StatusInternalServerError, "", "could not render the fleet")
			return
		}
		s.bypassed(w, r)
		h := fnv.New64a()
		h.Write(body)
		etag = `"s` + strconv.FormatUint(h.Sum64(), 36) + `"`
	default:
		s.storeFailed(w, r, err)
		return
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "private, no-cache")
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+len(`{"drones":}`)+1))
	_, _ = w.Write([]byte(`{"drones":`))
	_, _ = w.Write(body)
	_, _ = w.Write([]byte("}\n"))
}

func inBox(ds []store.Drone, b cache.BBox) []store.Drone {
	out := ds[:0:0]
	for _, d := range ds {
		if d.State != nil && b.Contains(d.State.Lon, d.State.Lat) {
			out = append(out, d)
		}
	}
	return out
}

// etagMatches implements If-None-Match's weak comparison (RFC 9110 13.1.2).
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// getDrone is GET /api/v1/drones/{id}; another tenant's drone is 404.
func (s *server) getDrone(w http.ResponseWriter, r *http.Request) {
	body, ok := s.droneDoc(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "private, no-cache")
	_, _ = w.Write(append(body, '\n'))
}

// droneDoc finds the caller's drone, answering the error itself.
func (s *server) droneDoc(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	ctx := r.Context()
	tenantID, id := TenantFrom(ctx), chi.URLParam(r, "id")
	body, err := s.cache.Drone(ctx, tenantID, id)
	switch {
	case err == nil:
		w.Header().Set(CacheHeader, "cache")
		return body, true
	case errors.Is(err, store.ErrNotFound):
		notFound(w, r)
		return nil, false
	case errors.Is(err, cache.ErrUnavailable):
		d, serr := s.store.Drone(ctx, tenantID, id)
		if serr != nil {
			s.storeFailed(w, r, serr)
			return nil, false
		}
		s.bypassed(w, r)
		if body, err = cache.RenderDrone(d); err != nil {
			problem.Write(w, http.StatusInternalServerError, "", "could not render the drone")
			return nil, false
		}
		return body, true
	default:
		s.storeFailed(w, r, err)
		return nil, false
	}
}

// trackPage is the body of GET /api/v1/drones/{id}/track.
type trackPage struct {
	DroneID string          `json:"droneId"`
	Points  []events.Report `json:"points"`
	// Next is the cursor for the following page (pass it as after=), null
	// on the last page.
	Next *string `json:"next"`
}

// getTrack is GET /api/v1/drones/{id}/track?from=&to=&limit=&after=: a
// drone's history in [from, to), oldest first, paginated by cursor.
func (s *server) getTrack(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	var bad []events.FieldError
	to := timeParam(q, "to", s.now(), &bad)
	from := timeParam(q, "from", to.Add(-DefaultTrackWindow), &bad)
	after := timeParam(q, "after", time.Time{}, &bad)
	limit, badLimit := limitParam(r, DefaultTrackLimit, MaxTrackLimit)
	bad = append(bad, badLimit...)
	if len(bad) == 0 && !from.Before(to) {
		bad = append(bad, events.FieldError{Field: "from", Pointer: "/from", Detail: "must be before to"})
	}
	if len(bad) > 0 {
		badParams(w, bad...)
		return
	}
	if _, ok := s.droneDoc(w, r); !ok { // 404 for another tenant's drone
		return
	}
	id := chi.URLParam(r, "id")
	pts, err := s.store.Track(ctx, store.TrackQuery{
		TenantID: TenantFrom(ctx), DroneID: id, From: from, To: to, After: after, Limit: limit + 1,
	})
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	page := trackPage{DroneID: id, Points: make([]events.Report, 0, min(len(pts), limit))}
	for i, p := range pts {
		if i == limit {
			next := pts[limit-1].Report.TS.UTC().Format(time.RFC3339Nano)
			page.Next = &next
			break
		}
		page.Points = append(page.Points, p.Report)
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *server) bypassed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(CacheHeader, "bypass")
	s.metrics.bypass.WithLabelValues(chi.RouteContext(r.Context()).RoutePattern()).Inc()
}

func (s *server) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrNotFound) {
		notFound(w, r)
		return
	}
	s.log.WarnContext(r.Context(), "store read failed", "tenant", TenantFrom(r.Context()), "path", r.URL.Path, "err", err)
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, cache.ErrUnavailable) {
		unavailable(w, "the fleet store is unavailable")
		return
	}
	problem.Write(w, http.StatusInternalServerError, "", "could not read the fleet")
}

func notFound(w http.ResponseWriter, r *http.Request) {
	problem.Write(w, http.StatusNotFound, "", "no such drone in your fleet", problem.WithInstance(r.URL.Path))
}

func unavailable(w http.ResponseWriter, detail string) {
	w.Header().Set("Retry-After", "2")
	problem.Write(w, http.StatusServiceUnavailable, "", detail)
}

func badParams(w http.ResponseWriter, fe ...events.FieldError) {
	problem.Write(w, http.StatusBadRequest, "Invalid query parameters", "fix the named parameters", problem.WithErrors(fe))
}
