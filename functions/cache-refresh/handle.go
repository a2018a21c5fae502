// Package function is the cache-refresh Knative function: the Trigger on
// dev.dronetrack.drone.state.updated.v1 delivers each accepted state here,
// and it updates the fleet cache (state entry, fleet view, geo index) and
// publishes the tenant's notice so every serve-map replica pushes the change.
//
// Replies tell the broker what to do: 204 when the event is handled (also
// when it was stale: a late event is not an error), 400 when it can never be
// handled (it goes to the dead-letter sink), 503 when the cache is down (the
// broker redelivers with backoff).
package function

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dronetrack/dronetrack/core/cache"
	"github.com/dronetrack/dronetrack/core/config"
	"github.com/dronetrack/dronetrack/core/logging"
	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/core/publish"
	"github.com/dronetrack/dronetrack/core/tracing"
	"github.com/dronetrack/dronetrack/events"
)

// Function holds the cache connection; func-go creates it with New.
type Function struct {
	ready atomic.Bool
	c     *cache.Cache
	log   *slog.Logger
	m     *metrics
}

// New returns an instance that answers 503 until Start has run.
func New() *Function {
	return &Function{log: slog.New(slog.NewJSONHandler(os.Stderr, nil)), m: newMetrics()}
}

// Config is cache-refresh's settings, parsed by core/config from the map
// func-go hands to Start.
type Config struct {
	CacheURL string `env:"CACHE_URL,required" doc:"cache the map reads (redis://host:port/db or local://NAME)"`
	LogLevel string `env:"LOG_LEVEL" doc:"debug, info, warn or error (default info)"`
}

// Start opens the cache named by CACHE_URL (redis://host:port/db or
// local://NAME). cache-refresh never reads the store.
func (f *Function) Start(ctx context.Context, env map[string]string) error {
	var cfg Config
	if err := config.Parse(ctx, env, &cfg); err != nil {
		return fmt.Errorf("cache-refresh: %w", err)
	}
	// Handle builds a logger per event (its ids) and rarely writes.
	f.log = logging.Deferred(newLogger(cfg.LogLevel).With("function", "cache-refresh"))
	url := cfg.CacheURL
	c, err := cache.Open(ctx, url, cache.Options{Logger: f.log})
	if err != nil {
		return fmt.Errorf("cache-refresh: %w", err)
	}
	f.c = c
	f.ready.Store(true)
	f.log.InfoContext(ctx, "started", "cache", redact(url))
	return nil
}

// Stop closes the cache.
func (f *Function) Stop(context.Context) error {
	f.ready.Store(false)
	if f.c != nil {
		return f.c.Close()
	}
	return nil
}

// Ready is true once started and the cache answers, so Knative does not
// route events to an instance that could only answer 503.
func (f *Function) Ready(ctx context.Context) (bool, error) {
	if !f.ready.Load() {
		return false, nil
	}
	if err := f.c.Ping(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// ReadsDeliveredEvents declares that cache-refresh reads each delivered
// event with publish.EventFromRequest, so `up` hands it deliveries without
// their HTTP encoding (core/publish RegisterLocalEvents).
func (f *Function) ReadsDeliveredEvents() bool { return true }

// Alive is true while the process runs; a cache outage is not a reason to
// restart it.
func (f *Function) Alive(context.Context) (bool, error) { return true, nil }

// Handle applies one state.updated event.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == PathMetrics {
		f.m.serveMetrics(w, r)
		return
	}
	if !f.ready.Load() {
		w.Header().Set("Retry-After", "1")
		problem.Write(w, http.StatusServiceUnavailable, "", "starting")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		problem.Write(w, http.StatusMethodNotAllowed, "", "cache-refresh accepts CloudEvents by POST")
		return
	}
	ev, err := publish.EventFromRequest(r) // in process: the broker's event itself
	if err != nil {
		f.m.outcome(outcomeRejected)
		problem.Write(w, http.StatusBadRequest, "Not a CloudEvent", err.Error())
		return
	}
	// cache-refresh's span is a child of process's (the reply's traceparent).
	tc, _ := tracing.FromEvent(*ev)
	// The event's logger is built when a line is written: most events
	// write none, and With's attributes cost even when deferred.
	var su events.StateUpdated
	decoded := false
	log := func() *slog.Logger {
		l := f.log.With(append([]any{"event", ev.ID(), "type", ev.Type()}, tc.LogAttrs()...)...)
		if decoded {
			l = l.With("tenant", su.TenantID, "drone", su.DroneID)
		}
		return l
	}
	su, err = events.DecodeStateUpdated(*ev)
	if err != nil {
		f.m.outcome(outcomeRejected)
		log().WarnContext(r.Context(), "rejected event", "err", err)
		problem.Write(w, http.StatusBadRequest, "Undecodable event", err.Error())
		return
	}
	decoded = true
	if fe := check(su, events.Extension(*ev, events.ExtTenantID)); len(fe) > 0 {
		f.m.outcome(outcomeRejected)
		log().WarnContext(r.Context(), "rejected event", "err", events.ValidationError(fe))
		problem.Write(w, http.StatusBadRequest, "Invalid state.updated event", "", problem.WithErrors(fe))
		return
	}
	start := time.Now()
	applied, err := f.c.Put(r.Context(), su.TenantID, su.DroneID, su.State)
	f.m.observePut(start)
	switch {
	case errors.Is(err, cache.ErrInvalid):
		f.m.outcome(outcomeRejected)
		log().WarnContext(r.Context(), "rejected event", "err", err)
		problem.Write(w, http.StatusBadRequest, "Invalid state.updated event", err.Error())
		return
	case err != nil:
		f.m.outcome(outcomeRetry)
		log().WarnContext(r.Context(), "cache unavailable; broker will redeliver", "err", err)
		w.Header().Set("Retry-After", "1")
		problem.Write(w, http.StatusServiceUnavailable, "", "cache unavailable")
		return
	}
	if applied {
		f.m.outcome(outcomeApplied)
	} else {
		f.m.outcome(outcomeStale)
	}
	if f.log.Enabled(r.Context(), slog.LevelDebug) {
		log().DebugContext(r.Context(), "state cached", "applied", applied, "ts", su.State.TS)
	}
	w.WriteHeader(http.StatusNoContent)
}

// check finds what makes an event unusable before it reaches the cache.
func check(su events.StateUpdated, extTenant any) []events.FieldError {
	var fe []events.FieldError
	if su.TenantID == "" {
		fe = append(fe, events.FieldError{Field: "tenantId", Pointer: "/tenantId", Detail: "required"})
	} else if s, ok := extTenant.(string); ok && s != su.TenantID {
		fe = append(fe, events.FieldError{Field: "tenantId", Pointer: "/tenantId",
			Detail: "differs from the event's tenantid attribute"})
	}
	if su.DroneID == "" {
		fe = append(fe, events.FieldError{Field: "droneId", Pointer: "/droneId", Detail: "required"})
	}
	if su.State.TS.IsZero() {
		fe = append(fe, events.FieldError{Field: "ts", Pointer: "/state/ts", Detail: "required"})
	}
	return fe
}

func newLogger(level string) *slog.Logger {
	return logging.New(nil, "cache-refresh", level)
}

// redact drops a password from a redis URL before it is logged.
func redact(url string) string {
	if i, j := strings.Index(url, "://"), strings.LastIndex(url, "@"); i >= 0 && j > i {
		return url[:i+3] + "***" + url[j:]
	}
	return url
}
