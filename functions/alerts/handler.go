package function

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/logging"
	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/core/publish"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/tracing"
	"github.com/dronetrack/dronetrack/events"
)

// Link-check event identity. A Knative PingSource always sends type
// TypePing; infra/base/pingsource.yaml puts the Dronetrack type in the
// ExtDronetrackType extension, and the local scheduler sends the same.
const (
	TypePing             = "dev.knative.sources.ping"
	ExtDronetrackType    = "dronetracktype"
	minLostLinkThreshold = time.Second // alerting.Settings.Validate's lower bound for LostLinkSecs
	// claimLease is how long an evaluator holds outbox entries it is
	// publishing before another may take them over (it crashed).
	claimLease = 30 * time.Second
)

// Publisher sends a CloudEvent to the broker (core/publish.Publisher).
type Publisher interface {
	Publish(ctx context.Context, e cloudevents.Event) error
}

// Options tune the handler; zero values take the defaults. Webhook retries
// are not among them: the alerts-webhooks-* Triggers' delivery specs are
// the retry policy.
type Options struct {
	RulesTTL      time.Duration // settings/fences cache per tenant; 0: Config's default (RULES_TTL); negative: no cache
	WebhookClient *http.Client  // default: 10 s timeout
	Logger        *slog.Logger
	Now           func() time.Time
	SMTP          SMTPConfig // the mail server of email channels (notify_send.go)
	SiteURL       string     // the website, for links in notifications
}

// Handler is the alerts function's HTTP handler.
type Handler struct {
	st    Store
	pub   Publisher
	opts  Options
	log   *slog.Logger
	mux   *http.ServeMux
	rules *rulesCache
	// drones keeps this instance to one evaluation per drone at a time
	// (dronelock.go).
	drones *droneLocks
}

// NewHandler builds the handler.
func NewHandler(st Store, pub Publisher, opts Options) *Handler {
	if opts.RulesTTL == 0 {
		opts.RulesTTL = DefaultConfig().RulesTTL
	}
	if opts.WebhookClient == nil {
		opts.WebhookClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// The handler builds a logger per event (its ids) and rarely writes.
	h := &Handler{st: st, pub: pub, opts: opts, log: logging.Deferred(opts.Logger), mux: http.NewServeMux(),
		rules:  &rulesCache{st: st, ttl: opts.RulesTTL, now: opts.Now, m: map[string]rulesEntry{}},
		drones: newDroneLocks()}
	h.mux.HandleFunc("POST /{$}", h.serveEvent)
	h.mux.HandleFunc("POST "+PathWebhooks, h.serveWebhooks)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// serveEvent: 2xx done; 400 permanent (dead-letter); 503 retry.
func (h *Handler) serveEvent(w http.ResponseWriter, r *http.Request) {
	ev, err := publish.EventFromRequest(r) // in process: the broker's event itself
	if err != nil {
		h.reject(w, "not a CloudEvent: "+err.Error())
		return
	}
	// alerts' span is a child of the event's sender (process for
	// state.updated); it goes on the alert events published here, which
	// the webhook POSTs then continue.
	tc, _ := tracing.FromEvent(*ev)
	switch {
	case ev.Type() == events.TypeStateUpdated:
		h.serveState(w, r, *ev, tc)
	case ev.Type() == events.TypeLinkCheck || (ev.Type() == TypePing && extension(*ev, ExtDronetrackType) == events.TypeLinkCheck):
		h.serveLinkCheck(w, r, tc)
	default:
		h.reject(w, "unexpected event type "+ev.Type())
	}
}

func extension(ev cloudevents.Event, name string) string {
	v, _ := events.Extension(ev, name).(string)
	return v
}

func (h *Handler) serveState(w http.ResponseWriter, r *http.Request, ev cloudevents.Event, tc tracing.Context) {
	data, err := events.DecodeStateUpdated(ev)
	if err != nil || data.TenantID == "" || data.DroneID == "" {
		h.reject(w, "invalid state.updated event")
		return
	}
	// The event's logger is built when a line is written: most events
	// write none, and With's attributes cost even when deferred.
	log := func() *slog.Logger {
		return h.log.With(append([]any{"event_id", ev.ID(), "tenant_id", data.TenantID, "drone_id", data.DroneID}, tc.LogAttrs()...)...)
	}
	ctx := r.Context()
	settings, fences, err := h.rules.get(ctx, data.TenantID)
	if err != nil {
		h.transient(w, log(), "read alert rules", err)
		return
	}
	lk, err := h.drones.lock(ctx, data.TenantID, data.DroneID)
	if err != nil {
		h.transient(w, log(), "wait for the drone's previous evaluation", err)
		return
	}
	defer h.drones.unlock(data.TenantID, data.DroneID, lk)
	// An event queued behind a newer state of the drone that was
	// evaluated and fully published: the transaction would ignore its
	// state and find no outbox entry to publish, so it is not run.
	if !lk.evaluated.IsZero() && !data.State.TS.After(lk.evaluated) {
		if h.log.Enabled(ctx, slog.LevelDebug) {
			log().Debug("state older than the one just evaluated: skipped", "ts", data.State.TS)
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	lk.evaluated = time.Time{} // unknown until this evaluation succeeds
	now := h.opts.Now()
	var claimed []alerting.Transition
	tr, err := h.st.EvaluateAlerts(ctx, data.TenantID, data.DroneID,
		func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool) {
			next, ts, changed := alerting.EvaluateState(prev, data.State, settings, fences, now)
			var claimedAny bool
			next, claimed, claimedAny = alerting.Claim(next, now, claimLease)
			return next, ts, changed || claimedAny
		})
	if err != nil {
		h.transient(w, log(), "evaluate alerts", err)
		return
	}
	if len(claimed) > 0 {
		if tr, err = h.flush(ctx, log(), tc, tr, claimed); err != nil {
			h.transient(w, log(), "publish alerts", err)
			return
		}
	}
	lk.evaluate(tr)
	w.WriteHeader(http.StatusAccepted)
}

// serveLinkCheck evaluates link.lost for every drone not heard from for at
// least the smallest threshold a tenant may set; each drone's own tenant
// threshold then decides.
func (h *Handler) serveLinkCheck(w http.ResponseWriter, r *http.Request, tc tracing.Context) {
	ctx := r.Context()
	now := h.opts.Now()
	stale, err := h.st.StaleTrackers(ctx, now.Add(-minLostLinkThreshold))
	if err != nil {
		h.transient(w, h.log, "list stale drones", err)
		return
	}
	var failed error
	for _, cand := range stale {
		log := h.log.With("tenant_id", cand.TenantID, "drone_id", cand.DroneID)
		settings, _, err := h.rules.get(ctx, cand.TenantID)
		if err != nil {
			failed = err
			continue
		}
		// Most candidates are merely between reports: only those past their
		// tenant's threshold need a transaction (which checks again).
		if _, _, changed := alerting.EvaluateLink(cand, settings, now); !changed {
			continue
		}
		// A retired drone is silent for good: no alert for it.
		if _, err := h.st.Drone(ctx, cand.TenantID, cand.DroneID); errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			failed = err
			continue
		}
		if err := h.evaluateLink(ctx, log, tc, cand, settings, now); err != nil {
			failed = err
			if ctx.Err() != nil {
				break // the delivery is over: the rest would only wait to fail
			}
		}
	}
	if failed != nil {
		h.transient(w, h.log, "link check", failed)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// evaluateLink runs the link rule on one stale drone under the drone's
// lock, which it releases before the link check moves to the next drone:
// it never holds two, so it cannot deadlock with serveState.
func (h *Handler) evaluateLink(ctx context.Context, log *slog.Logger, tc tracing.Context,
	cand alerting.Tracker, settings alerting.Settings, now time.Time) error {
	lk, err := h.drones.lock(ctx, cand.TenantID, cand.DroneID)
	if err != nil {
		log.Error("wait for the drone's evaluation", "err", err)
		return err
	}
	defer h.drones.unlock(cand.TenantID, cand.DroneID, lk)
	lk.evaluated = time.Time{}
	var claimed []alerting.Transition
	tr, err := h.st.EvaluateAlerts(ctx, cand.TenantID, cand.DroneID,
		func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool) {
			next, ts, changed := alerting.EvaluateLink(prev, settings, now)
			var claimedAny bool
			next, claimed, claimedAny = alerting.Claim(next, now, claimLease)
			return next, ts, changed || claimedAny
		})
	if err != nil {
		log.Error("evaluate link", "err", err)
		return err
	}
	if tr, err = h.flush(ctx, log, tc, tr, claimed); err != nil {
		log.Error("publish link alert", "err", err)
		return err
	}
	lk.evaluate(tr)
	return nil
}

// flush publishes the transitions this evaluator claimed from the
// tracker's outbox, in order, each stamped with the trace context of the
// event being handled, then removes them from the outbox and releases the
// claims on any it could not publish (a later delivery for the drone
// retries them). The broker routes each published event back to
// PathWebhooks for the tenant's webhooks. It returns the tracker now
// stored.
func (h *Handler) flush(ctx context.Context, log *slog.Logger, tc tracing.Context, tr alerting.Tracker, claimed []alerting.Transition) (alerting.Tracker, error) {
	if len(claimed) == 0 {
		return tr, nil
	}
	var done, failed []string
	var pubErr error
	for _, t := range claimed {
		if pubErr != nil {
			failed = append(failed, t.EventID())
			continue
		}
		ev, err := events.NewAlert(t.Type, t.Alert.Event())
		if err == nil {
			tc.Inject(&ev)
			err = h.pub.Publish(ctx, ev)
		}
		if err != nil {
			pubErr = err
			failed = append(failed, t.EventID())
			continue
		}
		log.Info("alert event published", "alert_id", t.Alert.ID, "kind", t.Alert.Kind, "type", t.Type)
		done = append(done, t.EventID())
	}
	tr, err := h.st.EvaluateAlerts(context.WithoutCancel(ctx), tr.TenantID, tr.DroneID,
		func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool) {
			next, changed := alerting.Published(prev, done, failed)
			return next, nil, changed
		})
	return tr, errors.Join(pubErr, err)
}

func (h *Handler) reject(w http.ResponseWriter, detail string) {
	h.log.Warn("event rejected", "detail", detail)
	problem.Write(w, http.StatusBadRequest, "", detail)
}

func (h *Handler) transient(w http.ResponseWriter, log *slog.Logger, what string, err error) {
	log.Error(what, "err", err)
	w.Header().Set("Retry-After", "1")
	problem.Write(w, http.StatusServiceUnavailable, "", what+" failed; retry")
}

// rulesCache keeps each tenant's settings and fences for a short while: a
// busy tenant would otherwise read them for every state.updated event. An
// edit takes effect within the TTL.
type rulesCache struct {
	st  Store
	ttl time.Duration
	now func() time.Time
	mu  sync.Mutex
	m   map[string]rulesEntry
}

type rulesEntry struct {
	at       time.Time
	settings alerting.Settings
	fences   []alerting.Fence
}

func (c *rulesCache) get(ctx context.Context, tenantID string) (alerting.Settings, []alerting.Fence, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[tenantID]
	c.mu.Unlock()
	if ok && c.ttl > 0 && now.Sub(e.at) < c.ttl {
		return e.settings, e.fences, nil
	}
	s, err := c.st.AlertSettings(ctx, tenantID)
	if err != nil {
		return s, nil, err
	}
	fences, err := c.st.Geofences(ctx, tenantID)
	if err != nil {
		return s, nil, err
	}
	c.mu.Lock()
	c.m[tenantID] = rulesEntry{at: now, settings: s, fences: fences}
	c.mu.Unlock()
	return s, fences, nil
}
