// Package function is serve-map, the Knative function behind the web page:
// a JSON API over the caller's fleet, cache first (core/cache) with the store
// behind it, and a Server-Sent Events stream of live changes.
//
// Routes (see openapi.json, served at /api/v1/openapi.json):
//
//	GET /                                 the web page (placeholder for now)
//	GET /api/v1/drones[?bbox=...]         the fleet (ETag / If-None-Match)
//	GET /api/v1/drones/{id}               one drone
//	GET /api/v1/drones/{id}/track         history, paginated by cursor
//	GET /api/v1/alerts                    open alerts (empty until alerting lands)
//	GET /api/v1/stream                    SSE: drone changes, Last-Event-ID resume
//	GET /api/v1/openapi.json, /metrics
//	/api/v1/drones/{id}/links, /t/{token}, /api/v1/t/{token}[/stream]
//	                                      tracking links (links.go)
//	GET /rid/v2/uss/flights, /rid/v2/uss/flights/{id}/details
//	                                      Network Remote ID SP (rid_sp.go, bearer tokens)
//	PUT/DELETE /rid/injection/tests/...   InterUSS test injection (rid_injection.go)
//
// The caller's tenant comes from the session (auth.go), never from a
// parameter. When
// the cache is unavailable the API answers from the store with
// X-Dronetrack-Cache: bypass and returns to the cache by itself.
//
// Config (environment): the Config struct (config.go) lists every setting
// with its default; docs/configuration.md explains them.
package function

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dronetrack/dronetrack/core/cache"
	"github.com/dronetrack/dronetrack/core/config"
	"github.com/dronetrack/dronetrack/core/logging"
	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/core/secheaders"
)

// Function is the serve-map instance func-go drives.
type Function struct {
	ready   atomic.Bool
	handler http.Handler
	srv     *server
	closers []func() error
	logOut  io.Writer // logs go here (tests capture them); nil is stderr
	mu      sync.Mutex
}

// New returns an instance that answers 503 until Start has run.
func New() *Function { return &Function{} }

// Start opens the store and the cache and builds the router.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	var c Config
	if err := config.Parse(ctx, cfg, &c); err != nil {
		return fmt.Errorf("serve-map: %w", err)
	}
	if c.StoreURL == "" {
		return fmt.Errorf("serve-map: STORE_URL is required")
	}
	st, closeStore, err := openStore(ctx, c.StoreURL)
	if err != nil {
		return fmt.Errorf("serve-map: open store: %w", err)
	}
	if err := f.startWith(ctx, c, st); err != nil {
		_ = closeStore()
		return err
	}
	f.mu.Lock()
	f.closers = append(f.closers, closeStore)
	f.mu.Unlock()
	return nil
}

// start wires the function around an open store (tests pass their own).
func (f *Function) start(ctx context.Context, env map[string]string, st Store) error {
	var cfg Config
	if err := config.Parse(ctx, env, &cfg); err != nil {
		return fmt.Errorf("serve-map: %w", err)
	}
	return f.startWith(ctx, cfg, st)
}

// startWith wires the function from its parsed config around an open store.
func (f *Function) startWith(ctx context.Context, cfg Config, st Store) error {
	log := newLogger(f.logOut, cfg.LogLevel).With("function", "serve-map")
	cacheURL := cfg.CacheURL
	c, err := cache.Open(ctx, cacheURL, cache.Options{
		Loader: st, Logger: log, RetryAfter: cfg.CacheRetryAfter, ListMaxAge: cfg.FleetListMaxAge,
	})
	if err != nil {
		return fmt.Errorf("serve-map: %w", err)
	}
	tilesURL := cfg.TilesURL
	tileOrigin, err := secheaders.TileOrigin(tilesURL)
	if err != nil {
		_ = c.Close()
		return fmt.Errorf("serve-map: TILES_URL: %w", err)
	}
	m := newMetrics()
	s := &server{
		cache: c, store: st, log: log, heartbeat: cfg.SSEHeartbeat, now: time.Now,
		metrics: m, tiles: tilesURL,
	}
	if err := s.configureAccounts(cfg, st); err != nil {
		_ = c.Close()
		return err
	}
	s.configureLinks(cfg)
	if err := s.configureRemoteID(ctx, cfg); err != nil {
		_ = c.Close()
		return err
	}
	if s.heartbeat <= 0 { // SSE_HEARTBEAT=0: the default
		s.heartbeat = DefaultConfig().SSEHeartbeat
	}
	s.hub = newHub(c, log, cfg.SSERing, m.streams.Add)
	f.mu.Lock()
	f.srv, f.handler = s, secheaders.Middleware(tileOrigin)(s.routes())
	f.closers = append(f.closers, func() error { s.hub.close(); s.rid.close(); return c.Close() })
	f.mu.Unlock()
	f.ready.Store(true)
	log.InfoContext(ctx, "started", "cache", redact(cacheURL))
	return nil
}

// Stop closes streams, the cache and the store.
func (f *Function) Stop(context.Context) error {
	f.ready.Store(false)
	f.mu.Lock()
	defer f.mu.Unlock()
	var first error
	for i := len(f.closers) - 1; i >= 0; i-- {
		if err := f.closers[i](); err != nil && first == nil {
			first = err
		}
	}
	f.closers = nil
	return first
}

// Ready is true once started. A cache outage does not make serve-map
// unready: it answers from the store.
func (f *Function) Ready(context.Context) (bool, error) { return f.ready.Load(), nil }

// Alive is true while the process runs.
func (f *Function) Alive(context.Context) (bool, error) { return true, nil }

// Handle serves every route.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) {
	if !f.ready.Load() {
		w.Header().Set("Retry-After", "1")
		problem.Write(w, http.StatusServiceUnavailable, "", "serve-map is starting")
		return
	}
	f.handler.ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		problem.Write(w, http.StatusInternalServerError, "", "could not encode the reply")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func newLogger(w io.Writer, level string) *slog.Logger {
	return logging.New(w, "serve-map", level)
}

// redact drops credentials from a URL before it is logged.
func redact(url string) string {
	if i, j := strings.Index(url, "://"), strings.LastIndex(url, "@"); i >= 0 && j > i {
		return url[:i+3] + "***" + url[j:]
	}
	return url
}
