package function

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dronetrack/dronetrack/core/keys"
	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/core/ratelimit"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/tracing"
	"github.com/dronetrack/dronetrack/events"
)

// Limits of one ingest request. They are part of the public API (documented
// to drone integrators): a companion computer that buffered while offline
// sends its backlog in chunks of at most MaxReports.
const (
	// MaxReports is the most reports one request may carry. 500 keeps an
	// event around 100 KiB of JSON, well under broker message limits, and
	// matches Firestore's 500 writes per batch for the history it becomes.
	MaxReports = 500
	// MaxBodyBytes caps the request body; larger bodies get 413 unread.
	MaxBodyBytes = 1 << 20
)

// Paths served by the handler.
const (
	PathTelemetry = "/v1/telemetry"
	PathMetrics   = "/metrics"
)

// Key cache defaults that are not settings. How long a key that
// authenticated stays trusted (KEY_CACHE_TTL) and how long a lookup may take
// (STORE_TIMEOUT: a drone whose key is not cached gets 503 and resends
// rather than waiting on a hung store longer than its own HTTP client
// would) are Config's.
const (
	// DefaultNegativeKeyCacheTTL is how long an unknown key is remembered as
	// unknown, so a drone retrying a bad key in a loop costs one store lookup
	// per period. Short, so a key just registered works almost at once.
	DefaultNegativeKeyCacheTTL = 5 * time.Second
	// DefaultKeyCacheSize bounds the known-key cache (one entry per drone,
	// ~300 bytes). Smaller than the fleet, every request misses: an LRU
	// cycled through by more drones than it holds evicts each key before
	// its drone's next request, and each miss is a store read (with 20,000
	// drones and 10,000 keys, a bolt read transaction per request).
	DefaultKeyCacheSize = 100000
	// negativeCacheSize is separate and smaller so a flood of bad keys cannot
	// evict good ones.
	negativeCacheSize = 1000
)

// RetryAfter is what a 503 asks the drone to wait before resending.
const RetryAfter = 5 * time.Second

// DroneFinder finds the drone owning a key hash (store.Store satisfies it).
// It returns an error wrapping store.ErrNotFound for an unknown hash; any
// other error means the store could not answer.
type DroneFinder interface {
	DroneByKeyHash(ctx context.Context, keyHash string) (store.Drone, error)
}

// Publisher sends an event to the broker; core/publish.Publisher satisfies
// it. A nil error means the broker took the event. Publish must return in
// bounded time on its own: ingest does not cancel it when the drone hangs up.
type Publisher interface {
	Publish(ctx context.Context, e event.Event) error
}

// Deps is what the handler needs. Drones, Publisher and Pepper are required.
type Deps struct {
	Drones    DroneFinder
	Publisher Publisher
	// Pepper is DRONE_KEY_PEPPER, the secret under which key hashes were made.
	Pepper []byte
	Logger *slog.Logger     // nil: discard
	Now    func() time.Time // nil: time.Now

	// StoreTimeout bounds a key lookup in the store (0: Config's default).
	StoreTimeout        time.Duration
	KeyCacheTTL         time.Duration // 0: Config's default; negative: no cache
	NegativeKeyCacheTTL time.Duration // 0: DefaultNegativeKeyCacheTTL; negative: no cache
	KeyCacheSize        int           // 0: DefaultKeyCacheSize
	RateLimits          RateLimits    // zero: the defaults
}

// Handler is ingest's HTTP handler: the telemetry endpoint and /metrics.
type Handler struct {
	drones    DroneFinder
	publisher Publisher
	pepper    []byte
	log       *slog.Logger
	now       func() time.Time
	known     *lru
	unknown   *lru
	m         *metrics
	keyLimit  *ratelimit.Limiter // nil: unlimited
	ipLimit   *ratelimit.Limiter
	ipHops    int
	// storeTimeout bounds a key lookup in the store.
	storeTimeout time.Duration
}

// NewHandler checks deps and builds a handler with its own metrics registry.
func NewHandler(d Deps) (*Handler, error) {
	if d.Drones == nil || d.Publisher == nil {
		return nil, errors.New("ingest: Drones and Publisher are required")
	}
	if len(d.Pepper) < keys.MinPepperLen {
		return nil, fmt.Errorf("ingest: DRONE_KEY_PEPPER must be at least %d bytes", keys.MinPepperLen)
	}
	h := &Handler{drones: d.Drones, publisher: d.Publisher, pepper: d.Pepper, log: d.Logger, now: d.Now, m: newMetrics()}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	def := DefaultConfig()
	ttl, nttl, size := d.KeyCacheTTL, d.NegativeKeyCacheTTL, d.KeyCacheSize
	if ttl == 0 {
		ttl = time.Duration(def.KeyCacheTTL)
	}
	if nttl == 0 {
		nttl = DefaultNegativeKeyCacheTTL
	}
	if size == 0 {
		size = DefaultKeyCacheSize
	}
	h.known, h.unknown = newLRU(size, ttl), newLRU(negativeCacheSize, nttl)
	h.keyLimit, h.ipLimit = d.RateLimits.limiters(def.rateLimits())
	h.ipHops = d.RateLimits.IPHops
	h.storeTimeout = d.StoreTimeout
	if h.storeTimeout <= 0 {
		h.storeTimeout = time.Duration(def.StoreTimeout)
	}
	return h, nil
}

// Registry is the handler's metrics registry, served at /metrics.
func (h *Handler) Registry() *prometheus.Registry { return h.m.reg }

// ServeHTTP routes the handler's paths; anything else is a 404 problem.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case PathTelemetry, PathOsmAnd, PathEvents:
		if code := h.limitIP(w, r); code != 0 {
			h.m.request(code)
			return
		}
	}
	switch r.URL.Path {
	case PathTelemetry:
		// The drone's traceparent (or a new trace) follows the reports
		// into the event's distributed tracing extension. Handed over as
		// a value: a request copy with a new context per request cost
		// three allocations.
		h.m.request(h.ingest(w, r, tracing.FromHeader(r.Header)))
	case PathOsmAnd, PathEvents:
		r = r.WithContext(tracing.NewContext(r.Context(), tracing.FromHeader(r.Header)))
		if r.URL.Path == PathOsmAnd {
			h.m.request(h.osmand(w, r))
		} else {
			h.m.request(h.cloudEvents(w, r))
		}
	case PathMetrics:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			problem.Write(w, http.StatusMethodNotAllowed, "", r.Method+" is not allowed on "+PathMetrics)
			return
		}
		h.m.handler.ServeHTTP(w, r)
	default:
		problem.Write(w, http.StatusNotFound, "", "no such resource; telemetry goes to POST "+PathTelemetry,
			problem.WithInstance(r.URL.Path))
	}
}

// accepted is the 202 reply body.
type accepted struct {
	Accepted int    `json:"accepted"`
	EventID  string `json:"eventId"`
}

// ingest serves POST /v1/telemetry and returns the status it replied with;
// tc is the trace the request came with (not Valid: none).
func (h *Handler) ingest(w http.ResponseWriter, r *http.Request, tc tracing.Context) int {
	if r.Method != http.MethodPost {
		w.Header()["Allow"] = allowPost
		return fail(w, http.StatusMethodNotAllowed, "", r.Method+" is not allowed; use POST")
	}
	id, status := h.authenticate(w, r)
	if status != 0 {
		return status
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" && !isJSON(ct) {
		w.Header()["Accept-Post"] = contentTypeJSON
		return fail(w, http.StatusUnsupportedMediaType, "", fmt.Sprintf("Content-Type %q: send application/json", ct))
	}
	if r.ContentLength > MaxBodyBytes {
		return tooLarge(w)
	}
	buf := bodyPool.Get().(*[]byte)
	defer func() {
		if cap(*buf) <= 64<<10 { // don't pin rare huge buffers
			bodyPool.Put(buf)
		}
	}()
	body, err := readBody(r.Body, (*buf)[:0], r.ContentLength, MaxBodyBytes)
	*buf = body
	switch {
	case errors.Is(err, errTooLarge):
		return tooLarge(w)
	case err != nil:
		return fail(w, http.StatusBadRequest, "", "could not read the request body")
	}

	now := h.now()
	reps, bad, err := events.DecodeReports(body, now, MaxReports)
	if err != nil {
		return fail(w, http.StatusBadRequest, "Malformed JSON", err.Error())
	}
	if len(bad) > 0 {
		return fail(w, http.StatusBadRequest, "Invalid telemetry",
			fmt.Sprintf("%d problem(s) in the request; nothing was accepted", len(bad)), problem.WithErrors(bad))
	}

	events.TruncateTimes(reps)
	e, data, err := events.EncodeTelemetryReceived(events.TelemetryReceived{
		TenantID: id.TenantID, DroneID: id.DroneID, ReceivedAt: now.UTC(), Reports: reps,
	}, (*buf)[:0])
	*buf = data
	if err != nil {
		h.log.Error("build telemetry event", "drone", id.DroneID, "tenant", id.TenantID, "err", err)
		return fail(w, http.StatusInternalServerError, "", "could not build the event")
	}
	// A drone that hangs up mid-publish must not cut the publish short: the
	// broker may already hold the event, and a clean outcome either way
	// (published, or 503 and the drone resends the same event id) beats a
	// half-sent request. The Publisher bounds its own time (core/publish:
	// publish.Timeout).
	if !tc.Valid() {
		tc = tracing.New()
	}
	tc.Inject(&e)
	start := time.Now()
	err = h.publisher.Publish(context.WithoutCancel(r.Context()), e)
	h.m.publishSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		h.log.With(tc.LogAttrs()...).Warn("publish failed; drone told to retry", "drone", id.DroneID, "tenant", id.TenantID,
			"event", e.ID(), "reports", len(reps), "err", err)
		return unavailable(w, "the event broker did not take the reports; nothing was accepted, resend later")
	}
	h.m.reports.Add(float64(len(reps)))
	if h.log.Enabled(r.Context(), slog.LevelDebug) {
		h.log.With(tc.LogAttrs()...).Debug("accepted", "drone", id.DroneID, "tenant", id.TenantID, "event", e.ID(), "reports", len(reps))
	}

	w.Header()["Content-Type"] = contentTypeJSON
	w.WriteHeader(http.StatusAccepted)
	// Hand-built into the body buffer, which decoding no longer needs: the id
	// is hex and the count an int, so nothing needs escaping.
	b := append((*buf)[:0], `{"accepted":`...)
	b = strconv.AppendInt(b, int64(len(reps)), 10)
	b = append(b, `,"eventId":"`...)
	b = append(b, e.ID()...)
	b = append(b, "\"}\n"...)
	*buf = b
	_, _ = w.Write(b)
	return http.StatusAccepted
}

// Shared header values: assigning a shared slice saves an allocation per
// response. They must never be modified.
var (
	contentTypeJSON = []string{"application/json"}
	allowPost       = []string{http.MethodPost}
)

func fail(w http.ResponseWriter, status int, title, detail string, opts ...problem.Option) int {
	problem.Write(w, status, title, detail, opts...)
	return status
}

// authenticate resolves the bearer key to a drone. When it cannot, it
// writes the error reply (401 or 503) itself and returns its status.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (identity, int) {
	key, present := bearer(r.Header.Get("Authorization"))
	if !present {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dronetrack"`)
		return identity{}, fail(w, http.StatusUnauthorized, "", "send the drone key as Authorization: Bearer <key>")
	}
	if !keys.WellFormed(key) {
		return identity{}, badKey(w)
	}
	return h.identify(w, r, key)
}

// identify resolves a credential (a drone key, or an OsmAnd device id used
// as one) to a drone through the key caches and the store. When it cannot,
// it writes the error reply (401 or 503) itself and returns its status.
func (h *Handler) identify(w http.ResponseWriter, r *http.Request, key string) (identity, int) {
	ck := keyOf(key)
	now := h.now()
	if id, ok := h.known.get(ck, now); ok {
		h.m.keyHit.Inc()
		return id, h.limitDrone(w, id)
	}
	if _, ok := h.unknown.get(ck, now); ok {
		h.m.keyNegativeHit.Inc()
		return identity{}, badKey(w)
	}
	h.m.keyMiss.Inc()
	// A hung store must not hold the drone: past storeTimeout it is told
	// to resend (503), as when the store answers with an error.
	ctx, cancel := context.WithTimeout(r.Context(), h.storeTimeout)
	defer cancel()
	d, err := h.drones.DroneByKeyHash(ctx, keys.Hash(h.pepper, key))
	switch {
	case errors.Is(err, store.ErrNotFound):
		h.unknown.put(ck, identity{}, now)
		return identity{}, badKey(w)
	case err != nil:
		h.log.Error("drone key lookup failed", "err", err)
		return identity{}, unavailable(w, "could not check the drone key; resend later")
	}
	id := newIdentity(d.TenantID, d.ID)
	h.known.put(ck, id, now)
	return id, h.limitDrone(w, id)
}

func badKey(w http.ResponseWriter) int {
	w.Header().Set("WWW-Authenticate", `Bearer realm="dronetrack", error="invalid_token"`)
	return fail(w, http.StatusUnauthorized, "", "the drone key is not valid")
}

// bearer extracts the token of an "Authorization: Bearer <token>" header.
// The scheme is case-insensitive (RFC 9110 section 11.1).
func bearer(h string) (string, bool) {
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(scheme):])
	return tok, tok != ""
}

// isJSON accepts application/json with parameters (charset=utf-8).
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

func tooLarge(w http.ResponseWriter) int {
	w.Header().Set("Connection", "close") // the rest of the body stays unread
	return fail(w, http.StatusRequestEntityTooLarge, "",
		fmt.Sprintf("the body must be at most %d bytes; send at most %d reports per request", MaxBodyBytes, MaxReports))
}

func unavailable(w http.ResponseWriter, detail string) int {
	w.Header().Set("Retry-After", strconv.Itoa(int(RetryAfter/time.Second)))
	return fail(w, http.StatusServiceUnavailable, "", detail)
}

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// errTooLarge is readBody's answer to a body over the limit.
var errTooLarge = errors.New("request body too large")

// readBody reads r to the end into buf, failing with errTooLarge past limit
// bytes; it presizes buf from the declared length when there is one. It
// replaces http.MaxBytesReader to save an allocation per request.
func readBody(r io.Reader, buf []byte, declared, limit int64) ([]byte, error) {
	if declared > 0 && declared >= int64(cap(buf)) {
		buf = make([]byte, 0, declared+1) // +1 so the final Read sees EOF without growing
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		room := buf[len(buf):cap(buf)]
		if max := limit + 1 - int64(len(buf)); int64(len(room)) > max {
			room = room[:max] // read at most one byte past the limit
		}
		n, err := r.Read(room)
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return buf, errTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

type metrics struct {
	reg            *prometheus.Registry
	handler        http.Handler
	requests       *prometheus.CounterVec
	reports        prometheus.Counter
	publishSeconds prometheus.Histogram
	keyHit         prometheus.Counter
	keyNegativeHit prometheus.Counter
	keyMiss        prometheus.Counter

	// byCode caches the requests counter of each status code, so the hot
	// path does no label lookup and takes no lock.
	byCode [600]atomic.Pointer[prometheus.Counter]
}

func newMetrics() *metrics {
	keyCache := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dronetrack_ingest_key_cache_total",
		Help: "Drone key lookups by cache result (hit, negative_hit, miss).",
	}, []string{"result"})
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dronetrack_ingest_requests_total",
			Help: "Telemetry requests by HTTP status code.",
		}, []string{"code"}),
		reports: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dronetrack_ingest_reports_accepted_total",
			Help: "Reports accepted and published to the broker.",
		}),
		publishSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "dronetrack_ingest_publish_duration_seconds",
			Help:    "Time to hand one event to the broker, successful or not.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		keyHit:         keyCache.WithLabelValues("hit"),
		keyNegativeHit: keyCache.WithLabelValues("negative_hit"),
		keyMiss:        keyCache.WithLabelValues("miss"),
	}
	m.reg.MustRegister(m.requests, m.reports, m.publishSeconds, keyCache,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

// request counts one telemetry request by status; counters are cached per
// code so the hot path skips the label lookup. Two requests racing to cache
// a code's counter store the same one: WithLabelValues returns one child per
// label value.
func (m *metrics) request(code int) {
	if code < 0 || code >= len(m.byCode) {
		m.requests.WithLabelValues(strconv.Itoa(code)).Inc()
		return
	}
	c := m.byCode[code].Load()
	if c == nil {
		c = new(m.requests.WithLabelValues(strconv.Itoa(code)))
		m.byCode[code].Store(c)
	}
	(*c).Inc()
}
