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
// again.
//
// Webhooks are delivered durably, the Knative way (webhook.go): the
// published alert events come back through two more Triggers
// (alerts-webhooks-raised and alerts-webhooks-resolved, subscriber uri
// PathWebhooks), and each delivery POSTs the event, HMAC-SHA256 signed, to
// every webhook of the tenant whose delivery log has no successful attempt
// for it yet, logging each attempt. A failed webhook answers 503, so the
// broker retries with the Trigger's exponential backoff and dead-letters
// the event when retries run out; nothing waits in memory, so a function
// that scales to zero or crashes loses no retry. Alert events carry the
// W3C trace context of the state.updated that raised them (core/tracing),
// and the webhook POSTs continue it in their traceparent header.
//
// Notification channels (email over SMTP, Slack, Teams; notify.go) are
// delivery targets on the same path: each channel that wants the alert gets
// it once, logged and retried the same way, unless it is older than the
// tenant's staleness limit or falls in the channel's quiet hours.
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

	"github.com/dronetrack/dronetrack/core/config"
	"github.com/dronetrack/dronetrack/core/logging"
	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/core/publish"
	"github.com/dronetrack/dronetrack/core/store/storeurl"
)

// Config keys read by Start (the env names of Config).
const (
	EnvStoreURL = "STORE_URL"
	EnvSink     = "K_SINK"
	EnvLogLevel = "LOG_LEVEL"
	EnvRulesTTL = "RULES_TTL" // how long a tenant's settings and fences are cached
	// EnvWebhookAllowPrivate ("true") lets webhooks reach loopback, private
	// and link-local addresses: one-machine mode and tests. In the cluster
	// they are refused, or a tenant could make alerts call internal services.
	EnvWebhookAllowPrivate = "WEBHOOK_ALLOW_PRIVATE"
)

// Function is the alerts function instance.
type Function struct {
	handler atomic.Pointer[Handler]
	store   openedStore
	m       *metrics
}

// New returns an instance configured by Start.
func New() *Function { return &Function{m: newMetrics()} }

// Start opens the store and the publisher. func-go already serves while
// Start runs; Handle answers 503 until it returns.
func (f *Function) Start(ctx context.Context, env map[string]string) error {
	var cfg Config
	if err := config.Parse(ctx, env, &cfg); err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	opts := Options{Logger: newLogger(cfg.LogLevel), RulesTTL: cfg.RulesTTL, SiteURL: cfg.SiteURL}
	var err error
	opts.WebhookClient = webhookClient(cfg.WebhookAllowPrivate)
	if opts.SMTP, err = smtpFromConfig(cfg); err != nil {
		return err
	}
	pub, err := publish.New(cfg.Sink, publish.NewClient())
	if err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	st, err := storeurl.Open(ctx, cfg.StoreURL)
	if err != nil {
		return fmt.Errorf("alerts: open store: %w", err)
	}
	f.store = st
	f.handler.Store(NewHandler(withStoreDeadline(st, cfg.StoreTimeout), pub, opts))
	opts.Logger.Info("alerts started")
	return nil
}

// Stop closes the store. No delivery waits in memory: an event whose
// webhooks were not all reached is the broker's to redeliver.
func (f *Function) Stop(ctx context.Context) error {
	f.handler.Store(nil)
	if f.store != nil {
		if err := f.store.Close(); err != nil {
			return fmt.Errorf("alerts: close store: %w", err)
		}
	}
	return nil
}

// Ready reports whether Start finished.
func (f *Function) Ready(ctx context.Context) (bool, error) { return f.handler.Load() != nil, nil }

// ReadsDeliveredEvents declares that alerts reads each delivered event
// (both Triggers' paths, and its metrics' type label) with
// publish.EventFromRequest and DeliveredType, so `up` hands it deliveries
// without their HTTP encoding (core/publish RegisterLocalEvents).
func (f *Function) ReadsDeliveredEvents() bool { return true }

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
