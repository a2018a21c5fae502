// Package function is process, the subscriber of the Broker Trigger on
// dev.dronetrack.telemetry.received.v1. For each event it writes the reports
// to the drone's history, advances the drone's latest state (newer wins,
// derived values from core/telemetry) and replies with a
// dev.dronetrack.drone.state.updated.v1 event, which the broker republishes.
//
// Exactly once in effect: the broker delivers at least once and process
// acknowledges only after its writes are durable; history points have
// deterministic ids (drone, ts) and the state write is an atomic newer-wins
// update, so duplicates, retries and out-of-order events leave the store as
// one clean delivery would. Status codes: 200 with a reply event when the
// state advanced, 202 when it did not (duplicate, older report, unknown
// drone), 400 for events that can never succeed (the broker dead-letters
// them without retrying), 503 when the store is unavailable or does not answer
// within STORE_TIMEOUT (retried; never a 2xx for a report not written).
//
// Writes are batched: concurrent events' history points share one store
// write (group commit), and a drone's latest-state document is written at
// most about once per second (STATE_INTERVAL); see coalescer.
//
// It follows the knative func-go http contract: New, Start (config from
// env), Stop, Ready, Alive and Handle.
package function

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/dronetrack/dronetrack/core/config"
	"github.com/dronetrack/dronetrack/core/logging"
	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/core/store/storeurl"
)

// Config keys read by Start (the env names of Config; the defaults are
// Config's tags).
const (
	EnvStoreURL      = "STORE_URL"
	EnvLogLevel      = "LOG_LEVEL"
	EnvHistoryTTL    = "HISTORY_TTL"    // Go duration
	EnvStateInterval = "STATE_INTERVAL" // Go duration
	// EnvStoreTimeout bounds each store call and each delivery's wait for
	// its writes (Go duration, more than STATE_INTERVAL). Past
	// it a delivery answers 503 and the broker redelivers.
	EnvStoreTimeout = "STORE_TIMEOUT"
	// EnvReplayConcurrency bounds the flights replays running at once.
	EnvReplayConcurrency = "REPLAY_CONCURRENCY"
	// EnvReplaySweep is how often owed flights replays are swept up.
	EnvReplaySweep = "REPLAY_SWEEP"
)

// Function is the process function instance.
type Function struct {
	handler atomic.Pointer[Handler]
	store   openedStore
}

// New returns an instance configured by Start.
func New() *Function { return &Function{} }

// Config is process's settings, parsed by core/config from the map func-go
// hands to Start. Its tags are the one home of the defaults: NewHandler
// takes them for zero Options through DefaultConfig.
type Config struct {
	StoreURL      string        `env:"STORE_URL,required" doc:"store of drones and history (bolt:///path or firestore://PROJECT)"`
	LogLevel      string        `env:"LOG_LEVEL" doc:"debug, info, warn or error (default info)"`
	HistoryTTL    time.Duration `env:"HISTORY_TTL,default=720h" doc:"how long history points live"`
	StateInterval time.Duration `env:"STATE_INTERVAL,default=1s" doc:"about one latest-state write per drone per interval at most (a drone's writes at least 0.9 interval apart)"`
	StoreTimeout  time.Duration `env:"STORE_TIMEOUT,default=5s" doc:"bound of each store call and of a delivery's wait for its writes; must exceed STATE_INTERVAL"`
	// ReplayConcurrency bounds the flights replays (a batch with a late
	// report reads the drone's history) running at once.
	ReplayConcurrency int `env:"REPLAY_CONCURRENCY,default=4" doc:"flights replays of late reports run at once; more wait for a slot"`
	// ReplaySweep is how often process lists the flights replays owed in
	// the store for longer than it and runs them.
	ReplaySweep time.Duration `env:"REPLAY_SWEEP,default=1m" doc:"how often flights replays owed longer than this (left by a crash, a stop or a failure) are listed and run; all of them at start"`
}

// DefaultConfig is Config with only its tags' defaults set (STORE_URL and
// LOG_LEVEL empty): what NewHandler applies to zero Options.
func DefaultConfig() Config { return config.Defaults[Config]() }

// Validate checks the durations: positive, and a store timeout longer than
// the state interval (a state write may wait out STATE_INTERVAL before it
// starts: a shorter timeout would time out every busy drone).
func (c *Config) Validate() error {
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{EnvHistoryTTL, c.HistoryTTL}, {EnvStateInterval, c.StateInterval}, {EnvStoreTimeout, c.StoreTimeout},
		{EnvReplaySweep, c.ReplaySweep}} {
		if d.v <= 0 {
			return fmt.Errorf("%s=%v: want a positive Go duration", d.key, d.v)
		}
	}
	if c.ReplayConcurrency < 1 {
		return fmt.Errorf("%s=%d: want at least 1", EnvReplayConcurrency, c.ReplayConcurrency)
	}
	if c.StoreTimeout <= c.StateInterval {
		return fmt.Errorf("%s=%v must exceed %s=%v", EnvStoreTimeout, c.StoreTimeout, EnvStateInterval, c.StateInterval)
	}
	return nil
}

// Start opens the store named by STORE_URL. func-go already serves while
// Start runs; Handle answers 503 until it returns.
func (f *Function) Start(ctx context.Context, env map[string]string) error {
	var c Config
	if err := config.Parse(ctx, env, &c); err != nil {
		return fmt.Errorf("process: %w", err)
	}
	opts := Options{Logger: newLogger(c.LogLevel), HistoryTTL: c.HistoryTTL, StateInterval: c.StateInterval,
		StoreTimeout: c.StoreTimeout, ReplayConcurrency: c.ReplayConcurrency, ReplaySweep: c.ReplaySweep}
	st, err := storeurl.Open(ctx, c.StoreURL)
	if err != nil {
		return fmt.Errorf("process: open store: %w", err)
	}
	f.store = st
	f.handler.Store(NewHandler(st, opts))
	opts.Logger.Info("process started")
	return nil
}

// Stop writes what is pending and closes the store. func-go stops the HTTP
// server (draining requests) before calling Stop.
func (f *Function) Stop(ctx context.Context) error {
	h := f.handler.Swap(nil)
	if h != nil {
		h.Close()
	}
	if f.store != nil {
		if err := f.store.Close(); err != nil {
			return fmt.Errorf("process: close store: %w", err)
		}
	}
	return nil
}

// Ready reports whether Start finished.
func (f *Function) Ready(ctx context.Context) (bool, error) { return f.handler.Load() != nil, nil }

// ReadsDeliveredEvents declares that process reads each delivered event
// with publish.EventFromRequest and replies with publish.WriteReply, so
// `up` hands it deliveries without their HTTP encoding (core/publish
// RegisterLocalEvents).
func (f *Function) ReadsDeliveredEvents() bool { return true }

// Alive reports the process is alive.
func (f *Function) Alive(ctx context.Context) (bool, error) { return true, nil }

// Handle serves a request, or 503 while Start has not finished.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) {
	h := f.handler.Load()
	if h == nil {
		w.Header().Set("Retry-After", "1")
		problem.Write(w, http.StatusServiceUnavailable, "", "process is starting")
		return
	}
	h.ServeHTTP(w, r)
}

func newLogger(level string) *slog.Logger {
	return logging.New(nil, "process", level)
}
