// Package function is alerts, the subscriber of two Broker Triggers: one on
// dev.drone.state.updated.v1 (evaluate the drone's newest state against its
// tenant's rules and geofences) and one on the lost-link check (a PingSource
// in the cluster, the local scheduler of `dronetrack up` on one machine:
// CloudEvent type dev.knative.sources.ping with extension dronetracktype =
// dev.dronetrack.link.check.v1, or the Dronetrack type itself).
//
// Rules and the per-drone state machine live in core/alerting; this function
// runs them inside store.Alerts.EvaluateAlerts, so the tracker and the
// alerts it opens or closes are written in one transaction and a redelivered
// or late state.updated opens nothing. Raised/resolved transitions wait in
// the tracker's outbox until their CloudEvents (events.NewAlert, ids
// "<alert>/raised" and "<alert>/resolved") are accepted by K_SINK; a publish
// failure answers 503, and the broker's redelivery publishes the outbox
// again. Each published transition is then delivered to the tenant's
// webhooks (webhook.go): HMAC-SHA256 signed, retried with exponential
// backoff, every attempt in the delivery log.
//
// It follows the knative func-go http contract: New, Start (config from
// env), Stop, Ready, Alive and Handle.
package function

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/dronetrack/dronetrack/core/logging"
	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/core/publish"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/storeurl"
)

// Config keys read by Start.
const (
	EnvStoreURL        = "STORE_URL"
	EnvSink            = "K_SINK"
	EnvLogLevel        = "LOG_LEVEL"
	EnvWebhookAttempts = "WEBHOOK_ATTEMPTS" // default 8
	EnvWebhookBackoff  = "WEBHOOK_BACKOFF"  // first retry delay, doubling; default 1s
	EnvRulesTTL        = "RULES_TTL"        // how long a tenant's settings and fences are cached; default 5s
	// EnvWebhookAllowPrivate ("true") lets webhooks reach loopback, private
	// and link-local addresses: one-machine mode and tests. In the cluster
	// they are refused, or a tenant could make alerts call internal services.
	EnvWebhookAllowPrivate = "WEBHOOK_ALLOW_PRIVATE"
)

// Function is the alerts function instance.
type Function struct {
	handler atomic.Pointer[Handler]
	store   store.Store
	m       *metrics
}

// New returns an instance configured by Start.
func New() *Function { return &Function{m: newMetrics()} }

// Start opens the store and the publisher. func-go already serves while
// Start runs; Handle answers 503 until it returns.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	for _, k := range []string{EnvStoreURL, EnvSink} {
		if cfg[k] == "" {
			return fmt.Errorf("alerts: missing config %s", k)
		}
	}
	opts := Options{Logger: newLogger(cfg[EnvLogLevel])}
	if s := cfg[EnvWebhookAttempts]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("alerts: %s=%q: want a positive integer", EnvWebhookAttempts, s)
		}
		opts.WebhookAttempts = n
	}
	for key, dst := range map[string]*time.Duration{EnvWebhookBackoff: &opts.WebhookBackoff, EnvRulesTTL: &opts.RulesTTL} {
		if s := cfg[key]; s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				return fmt.Errorf("alerts: %s=%q: want a Go duration", key, s)
			}
			*dst = d
		}
	}
	opts.WebhookClient = webhookClient(cfg[EnvWebhookAllowPrivate] == "true")
	pub, err := publish.New(cfg[EnvSink], publish.NewClient())
	if err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	st, err := storeurl.Open(ctx, cfg[EnvStoreURL])
	if err != nil {
		return fmt.Errorf("alerts: open store: %w", err)
	}
	f.store = st
	f.handler.Store(NewHandler(st, pub, opts))
	opts.Logger.Info("alerts started")
	return nil
}

// Stop waits (bounded by ctx) for webhook deliveries in flight, then closes
// the store.
func (f *Function) Stop(ctx context.Context) error {
	if h := f.handler.Swap(nil); h != nil {
		h.Close(ctx)
	}
	if f.store != nil {
		if err := f.store.Close(); err != nil {
			return fmt.Errorf("alerts: close store: %w", err)
		}
	}
	return nil
}

// Ready reports whether Start finished.
func (f *Function) Ready(ctx context.Context) (bool, error) { return f.handler.Load() != nil, nil }

// Alive reports the process is alive.
func (f *Function) Alive(ctx context.Context) (bool, error) { return true, nil }

// Handle serves a request, or 503 while Start has not finished.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == PathMetrics {
		f.m.serveMetrics(w, r)
		return
	}
	f.m.instrument(w, r, f.handle)
}

func (f *Function) handle(w http.ResponseWriter, r *http.Request) {
	h := f.handler.Load()
	if h == nil {
		w.Header().Set("Retry-After", "1")
		problem.Write(w, http.StatusServiceUnavailable, "", "alerts is starting")
		return
	}
	h.ServeHTTP(w, r)
}

func newLogger(level string) *slog.Logger {
	return logging.New(nil, "alerts", level)
}
