package function

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// Alert API defaults.
const (
	defaultClosedWithin = 24 * time.Hour // GET /api/v1/alerts lists alerts closed this recently
	maxAlertsListed     = 500
	maxDeliveriesListed = 200
	// alertLag is how far back each stream poll looks: an alert's
	// updatedAt is the server time of the state that changed it, and its
	// write lands after the pipeline's delay (process, broker, alerts).
	alertLag = 30 * time.Second
	// alertPoll is how often a stream reads the tenant's alert changes
	// (each replica reads the store; alerts change rarely).
	alertPoll = 2 * time.Second
)

// alertRoutes are the tenant-scoped alert, geofence, settings and webhook
// endpoints; the caller's tenant comes from the request context. Every
// member reads alerts, settings and fences and may acknowledge an alert (the
// person watching the map); changing the rules, fences and webhooks, and
// reading webhooks, needs a manager role, as changing the fleet does.
func (s *server) alertRoutes(r chi.Router) {
	r.Get("/api/v1/alerts", s.listAlerts)
	r.Post("/api/v1/alerts/{id}/ack", s.ackAlert)
	r.Get("/api/v1/alert-settings", s.getAlertSettings)
	r.Get("/api/v1/geofences", s.listGeofences)
	r.Get("/api/v1/geofences/{id}", s.getGeofence)
	r.Group(func(r chi.Router) {
		r.Use(requireManager)
		// Webhook URLs often carry the receiver's credential (a token in
		// the path or query), so only managers may read them.
		r.Get("/api/v1/webhooks", s.listWebhooks)
		r.Get("/api/v1/webhooks/{id}/deliveries", s.listDeliveries)
		r.Put("/api/v1/alert-settings", s.putAlertSettings)
		r.Post("/api/v1/geofences", s.createGeofence)
		r.Put("/api/v1/geofences/{id}", s.updateGeofence)
		r.Delete("/api/v1/geofences/{id}", s.deleteGeofence)
		r.Post("/api/v1/webhooks", s.createWebhook)
		r.Delete("/api/v1/webhooks/{id}", s.deleteWebhook)
		s.channelRoutes(r) // channels.go
	})
}

// listAlerts is GET /api/v1/alerts[?closedWithin=24h]: open alerts and
// those closed within the window, most recently updated first.
func (s *server) listAlerts(w http.ResponseWriter, r *http.Request) {
	within := defaultClosedWithin
	if raw := r.URL.Query().Get("closedWithin"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d < 0 || d > 90*24*time.Hour {
			badParams(w, events.FieldError{Field: "closedWithin", Pointer: "closedWithin",
				Detail: "want a Go duration such as 24h, at most 2160h"})
			return
		}
		within = d
	}
	list, err := s.store.ListAlerts(r.Context(), TenantFrom(r.Context()), s.now().Add(-within), maxAlertsListed)
	if err != nil {
		s.alertStoreFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": nonNil(list)})
}

// ackAlert is POST /api/v1/alerts/{id}/ack. Acknowledging twice keeps the
// first acknowledgement and answers 200 with it.
func (s *server) ackAlert(w http.ResponseWriter, r *http.Request) {
	a, err := s.store.AcknowledgeAlert(r.Context(), TenantFrom(r.Context()), chi.URLParam(r, "id"), actor(r), s.now())
	if err != nil {
		s.alertStoreFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *server) getAlertSettings(w http.ResponseWriter, r *http.Request) {
	st, err := s.store.AlertSettings(r.Context(), TenantFrom(r.Context()))
	if err != nil {
		s.alertStoreFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *server) putAlertSettings(w http.ResponseWriter, r *http.Request) {
	var st alerting.Settings
	if !decodeBody(w, r, &st) {
		return
	}
	if err := st.Validate(); err != nil {
		fieldProblem(w, err)
		return
	}
	if err := s.store.PutAlertSettings(r.Context(), TenantFrom(r.Context()), st); err != nil {
		s.alertStoreFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *server) listGeofences(w http.ResponseWriter, r *http.Request) {
	list, err := s.store.Geofences(r.Context(), TenantFrom(r.Context()))
	if err != nil {
		s.alertStoreFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"geofences": nonNil(list)})
}

// fenceInput is what a client may set on a geofence.
type fenceInput struct {
	Name    string           `json:"name"`
	Mode    string           `json:"mode"`
	Polygon []alerting.Point `json:"polygon,omitempty"`
	Center  *alerting.Point  `json:"center,omitempty"`
	RadiusM float64          `json:"radiusM,omitempty"`
}

func (in fenceInput) fence() alerting.Fence {
	return alerting.Fence{Name: in.Name, Mode: in.Mode, Polygon: in.Polygon, Center: in.Center, RadiusM: in.RadiusM}
}

func (s *server) createGeofence(w http.ResponseWriter, r *http.Request) {
	var in fenceInput
	if !decodeBody(w, r, &in) {
		return
	}
	f := in.fence()
	if err := f.Validate(); err != nil {
		fieldProblem(w, err)
		return
	}
	now := s.now().UTC()
	f.ID, f.TenantID, f.CreatedAt, f.UpdatedAt = "gf_"+randomID(), TenantFrom(r.Context()), now, now
	if err := s.store.CreateGeofence(r.Context(), f); err != nil {
		s.alertStoreFailed(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/geofences/"+f.ID)
	writeJSON(w, http.StatusCreated, f)
}

func (s *server) getGeofence(w http.ResponseWriter, r *http.Request) {
	f, err := s.store.Geofence(r.Context(), TenantFrom(r.Context()), chi.URLParam(r, "id"))
	if err != nil {
		s.alertStoreFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func (s *server) updateGeofence(w http.ResponseWriter, r *http.Request) {
	ctx, tenantID, id := r.Context(), TenantFrom(r.Context()), chi.URLParam(r, "id")
	var in fenceInput
	if !decodeBody(w, r, &in) {
		return
	}
	f := in.fence()
	if err := f.Validate(); err != nil {
		fieldProblem(w, err)
		return
	}
	old, err := s.store.Geofence(ctx, tenantID, id)
	if err != nil {
		s.alertStoreFailed(w, r, err)
		return
	}
	f.ID, f.TenantID, f.CreatedAt, f.UpdatedAt = id, tenantID, old.CreatedAt, s.now().UTC()
	if err := s.store.UpdateGeofence(ctx, f); err != nil {
		s.alertStoreFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func (s *server) deleteGeofence(w http.ResponseWriter, r *http.Request) {
	if err := s.store.DeleteGeofence(r.Context(), TenantFrom(r.Context()), chi.URLParam(r, "id")); err != nil {
		s.alertStoreFailed(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// webhookView is a webhook as listed: the secret is shown once, when the
// webhook is created.
type webhookView struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	CreatedAt time.Time `json:"createdAt"`
	Secret    string    `json:"secret,omitempty"`
}

func (s *server) listWebhooks(w http.ResponseWriter, r *http.Request) {
	list, err := s.store.Webhooks(r.Context(), TenantFrom(r.Context()))
	if err != nil {
		s.alertStoreFailed(w, r, err)
		return
	}
	out := make([]webhookView, len(list))
	for i, h := range list {
		out[i] = webhookView{ID: h.ID, URL: h.URL, CreatedAt: h.CreatedAt}
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": out})
}

// createWebhook is POST /api/v1/webhooks {"url": ...}. The reply carries
// the signing secret, once: deliveries carry X-Dronetrack-Signature
// "t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">".
func (s *server) createWebhook(w http.ResponseWriter, r *http.Request) {
	var in struct {
		URL string `json:"url"`
	}
	if !decodeBody(w, r, &in) {
		return
	}
	u, err := url.Parse(in.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(in.URL) > 2000 {
		fieldProblem(w, &alerting.FieldError{Field: "url", Reason: "want an absolute http(s) URL without credentials"})
		return
	}
	secret := randomID() + randomID()
	h := store.Webhook{ID: "wh_" + randomID(), TenantID: TenantFrom(r.Context()), URL: in.URL, Secret: secret,
		CreatedAt: s.now().UTC()}
	if err := s.store.CreateWebhook(r.Context(), h); err != nil {
		s.alertStoreFailed(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/webhooks/"+h.ID)
	writeJSON(w, http.StatusCreated, webhookView{ID: h.ID, URL: h.URL, CreatedAt: h.CreatedAt, Secret: secret})
}

func (s *server) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	if err := s.store.DeleteWebhook(r.Context(), TenantFrom(r.Context()), chi.URLParam(r, "id")); err != nil {
		s.alertStoreFailed(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	list, err := s.store.Deliveries(r.Context(), TenantFrom(r.Context()), chi.URLParam(r, "id"), maxDeliveriesListed)
	if err != nil {
		s.alertStoreFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": nonNil(list)})
}

func (s *server) alertStoreFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		problem.Write(w, http.StatusNotFound, "", "no such resource in your tenant", problem.WithInstance(r.URL.Path))
	case errors.Is(err, store.ErrAlreadyExists):
		problem.Write(w, http.StatusConflict, "", "already exists")
	case errors.Is(err, store.ErrUnavailable):
		s.log.WarnContext(r.Context(), "store unavailable", "tenant", TenantFrom(r.Context()), "path", r.URL.Path, "err", err)
		unavailable(w, "the store is unavailable")
	default:
		s.log.ErrorContext(r.Context(), "store failed", "tenant", TenantFrom(r.Context()), "path", r.URL.Path, "err", err)
		problem.Write(w, http.StatusInternalServerError, "", "could not complete the request")
	}
}

// decodeBody reads a small JSON object, rejecting unknown fields; false
// after answering 400.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 256<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		problem.Write(w, http.StatusBadRequest, "Invalid body", "want a JSON object: "+err.Error(),
			problem.WithErrors([]events.FieldError{{Field: "body", Pointer: "", Detail: err.Error()}}))
		return false
	}
	return true
}

func fieldProblem(w http.ResponseWriter, err error) {
	var fe *alerting.FieldError
	if !errors.As(err, &fe) {
		problem.Write(w, http.StatusBadRequest, "Invalid body", err.Error())
		return
	}
	problem.Write(w, http.StatusBadRequest, "Invalid body", "fix the named fields",
		problem.WithErrors([]events.FieldError{{Field: fe.Field, Pointer: "/" + jsonPointer(fe.Field), Detail: fe.Reason}}))
}

// jsonPointer turns "polygon[2].lat" into "polygon/2/lat".
func jsonPointer(field string) string {
	out := make([]byte, 0, len(field))
	for i := 0; i < len(field); i++ {
		switch c := field[i]; c {
		case '[', '.':
			out = append(out, '/')
		case ']':
		default:
			out = append(out, c)
		}
	}
	return string(out)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func randomID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// alertCursor follows a tenant's alert changes for one stream: each poll
// reads what changed in the last alertLag and sends only (id, updatedAt)
// pairs not sent before, so a write that lands late is still sent, once.
type alertCursor struct {
	from time.Time
	sent map[string]time.Time // "id@updatedAt" -> updatedAt
}

// newAlertCursor starts a stream's cursor: changes already stored are what
// GET /api/v1/alerts shows, so they are marked as sent, not streamed.
func (s *server) newAlertCursor(r *http.Request) (*alertCursor, error) {
	c := &alertCursor{from: s.now(), sent: map[string]time.Time{}}
	_, err := s.pollAlerts(r, c, nil, false)
	return c, err
}

// pollAlerts appends an "alert" SSE frame (data: the alert) per change not
// sent yet; with emit false it only marks them sent.
func (s *server) pollAlerts(r *http.Request, c *alertCursor, buf []byte, emit bool) ([]byte, error) {
	now := s.now()
	since := c.from.Add(-alertLag)
	list, err := s.store.AlertsUpdatedSince(r.Context(), TenantFrom(r.Context()), since)
	if err != nil {
		return buf, err
	}
	for _, a := range list {
		k := a.ID + "@" + a.UpdatedAt.UTC().Format(time.RFC3339Nano)
		if _, ok := c.sent[k]; ok {
			continue
		}
		c.sent[k] = a.UpdatedAt
		if !emit {
			continue
		}
		b, err := json.Marshal(a)
		if err != nil {
			return buf, err
		}
		buf = append(buf, "event: alert\ndata: "...)
		buf = append(buf, b...)
		buf = append(buf, "\n\n"...)
	}
	for k, at := range c.sent {
		if at.Before(since) {
			delete(c.sent, k)
		}
	}
	c.from = now
	return buf, nil
}
