// Package function is ingest, the HTTPS trigger drones call: it
// authenticates a drone by its key, checks its telemetry strictly and
// publishes it to the broker as one CloudEvent.
//
// API: POST /v1/telemetry with "Authorization: Bearer <drone key>" and a JSON
// body that is one report or an array of up to MaxReports reports (at most
// MaxBodyBytes). The drone and tenant come from the key, never from the body.
// Replies: 202 {"accepted": n, "eventId": "..."}; 400 problem+json naming
// every bad field by JSON pointer ("/3/lat"); 401 bad or missing key; 405;
// 413 body too large; 415 not application/json; 429 with Retry-After when a
// drone or a client address exceeds its rate (RATE_LIMIT_KEY, default
// 50/s:100 per drone; RATE_LIMIT_IP, default 5000/s:10000 per address, taken
// from X-Forwarded-For behind RATE_LIMIT_IP_HOPS trusted proxies); 503 with
// Retry-After when the key store or the broker is unavailable. Nothing is half-accepted: either
// every report of the request is published or the reply is an error, and the
// drone resends the whole request.
//
// One event per request, not per report: a batch becomes one
// dev.dronetrack.telemetry.received.v1 event, one broker write and one
// delivery to process instead of up to 500. Its id is derived from the drone
// and the reports' timestamps, so a retried request is a duplicate process
// drops.
//
// The package follows the knative func-go http contract: New, Start (config
// from env), Stop, Ready, Alive and Handle; NewHandler builds the handler for
// tests and for embedding with other adapters.
package function

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/dronetrack/dronetrack/core/config"
	"github.com/dronetrack/dronetrack/core/logging"
	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/core/publish"
)

// Config keys read by Start (environment variables under Knative; the env
// names of Config).
const (
	EnvStoreURL = "STORE_URL"
	EnvSink     = "K_SINK"
	EnvPepper   = "DRONE_KEY_PEPPER"
	EnvLogLevel = "LOG_LEVEL"
	EnvKeyTTL   = "KEY_CACHE_TTL" // optional, Go duration, e.g. 30s
	// EnvStoreTimeout bounds a drone key lookup in the store (Go duration);
	// past it the drone gets 503 with Retry-After.
	EnvStoreTimeout = "STORE_TIMEOUT"
)

// StoreOpener opens the store named by STORE_URL and returns the part ingest
// uses plus what to close on Stop.
type StoreOpener func(ctx context.Context, storeURL string) (DroneFinder, io.Closer, error)

// Function is the ingest function instance.
type Function struct {
	open    StoreOpener
	handler atomic.Pointer[Handler]
	closer  io.Closer
}

// New returns an instance that opens its store with the default opener
// (STORE_URL through core/store/storeurl).
func New() *Function { return &Function{open: openStore} }

// NewWithStore returns an instance whose Start opens the store with open;
// the one-machine runner and tests use it to share a store.
func NewWithStore(open StoreOpener) *Function { return &Function{open: open} }

// Start opens the store and the publisher from cfg. func-go already serves
// while Start runs; Handle answers 503 until it returns.
func (f *Function) Start(ctx context.Context, env map[string]string) error {
	var cfg Config
	if err := config.Parse(ctx, env, &cfg); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	log := newLogger(cfg.LogLevel)
	pub, err := publish.New(cfg.Sink, nil)
	if err != nil {
		return fmt.Errorf("ingest: %s: %w", EnvSink, err)
	}
	deps := Deps{Publisher: pub, Pepper: []byte(cfg.Pepper), Logger: log, RateLimits: cfg.rateLimits(),
		KeyCacheTTL: time.Duration(cfg.KeyCacheTTL), KeyCacheSize: cfg.KeyCacheSize, StoreTimeout: time.Duration(cfg.StoreTimeout)}
	drones, closer, err := f.open(ctx, cfg.StoreURL)
	if err != nil {
		return fmt.Errorf("ingest: open store: %w", err)
	}
	deps.Drones = drones
	h, err := NewHandler(deps)
	if err != nil {
		if closer != nil {
			_ = closer.Close()
		}
		return err
	}
	f.closer = closer
	f.handler.Store(h)
	log.Info("ingest started", "sink", pub.Sink())
	return nil
}

// Stop closes the store. In-flight requests finish first: func-go stops the
// HTTP server before calling Stop.
func (f *Function) Stop(ctx context.Context) error {
	f.handler.Store(nil)
	if f.closer != nil {
		if err := f.closer.Close(); err != nil {
			return fmt.Errorf("ingest: close store: %w", err)
		}
	}
	return nil
}

// Ready reports whether Start finished, so Knative routes traffic only then.
func (f *Function) Ready(ctx context.Context) (bool, error) {
	return f.handler.Load() != nil, nil
}

// Alive reports the process is alive; it has no state that can wedge.
func (f *Function) Alive(ctx context.Context) (bool, error) { return true, nil }

// Handle serves a request, or 503 while Start has not finished.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) {
	h := f.handler.Load()
	if h == nil {
		w.Header().Set("Retry-After", "1")
		problem.Write(w, http.StatusServiceUnavailable, "", "ingest is starting")
		return
	}
	h.ServeHTTP(w, r)
}

// Handler returns the running handler, nil before Start.
func (f *Function) Handler() *Handler { return f.handler.Load() }

func newLogger(level string) *slog.Logger {
	return logging.New(nil, "ingest", level)
}
