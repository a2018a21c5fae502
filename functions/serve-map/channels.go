package function

import (
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/notify"
	"github.com/dronetrack/dronetrack/core/store"
)

// Channel limits.
const (
	maxChannelName = 100
	maxRecipients  = 20
)

// channelRoutes are the notification channel endpoints, for managers only
// (the router puts them behind requireManager): recipients are people's
// addresses, and a channel decides who is woken at night. The functions/
// alerts deliverer sends through them (core/notify has the rules).
func (s *server) channelRoutes(r chi.Router) {
	r.Get("/api/v1/channels", s.listChannels)
	r.Post("/api/v1/channels", s.createChannel)
	r.Get("/api/v1/channels/{id}", s.getChannel)
	r.Put("/api/v1/channels/{id}", s.updateChannel)
	r.Delete("/api/v1/channels/{id}", s.deleteChannel)
	r.Get("/api/v1/channels/{id}/deliveries", s.listChannelDeliveries)
}

// channelInput is what a client may set on a channel. URL (Slack, Teams)
// is write-only: on PUT, leaving it out keeps the stored one.
type channelInput struct {
	Name       string   `json:"name"`
	Kind       string   `json:"kind"`
	Recipients []string `json:"recipients,omitempty"`
	URL        string   `json:"url,omitempty"`
	notify.Rules
}

// channelView is a channel as the API shows it: never its URL (a chat
// incoming-webhook URL is a credential), only whether one is set and its
// host, so people can tell channels apart.
type channelView struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Kind       string   `json:"kind"`
	Recipients []string `json:"recipients,omitempty"`
	URLSet     bool     `json:"urlSet"`
	URLHost    string   `json:"urlHost,omitempty"`
	notify.Rules
	CreatedAt time.Time           `json:"createdAt"`
	UpdatedAt time.Time           `json:"updatedAt"`
	Status    store.ChannelStatus `json:"status"`
}

func viewChannel(c store.Channel) channelView {
	v := channelView{ID: c.ID, Name: c.Name, Kind: c.Kind, Recipients: c.Recipients, URLSet: c.URL != "",
		Rules: c.Rules, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, Status: c.Status}
	if u, err := url.Parse(c.URL); err == nil {
		v.URLHost = u.Hostname()
	}
	return v
}

// validate checks the input; keepURL is the stored URL a PUT may keep.
func (in *channelInput) validate(keepURL string) error {
	in.Name = strings.TrimSpace(in.Name)
	if len(in.Name) > maxChannelName {
		return &alerting.FieldError{Field: "name", Reason: "at most 100 bytes"}
	}
	if !slices.Contains(notify.Kinds, in.Kind) {
		return &alerting.FieldError{Field: "kind", Reason: "want one of " + strings.Join(notify.Kinds, ", ")}
	}
	if in.Name == "" {
		in.Name = in.Kind
	}
	switch in.Kind {
	case notify.KindEmail:
		if in.URL != "" {
			return &alerting.FieldError{Field: "url", Reason: "email channels have recipients, not a URL"}
		}
		if len(in.Recipients) == 0 || len(in.Recipients) > maxRecipients {
			return &alerting.FieldError{Field: "recipients", Reason: "want 1 to 20 email addresses"}
		}
		for i, r := range in.Recipients {
			a, err := mail.ParseAddress(r)
			if err != nil || a.Name != "" || a.Address != r || len(r) > 254 {
				return &alerting.FieldError{Field: "recipients[" + strconv.Itoa(i) + "]", Reason: "want a plain email address such as ops@example.com"}
			}
		}
	default:
		if len(in.Recipients) > 0 {
			return &alerting.FieldError{Field: "recipients", Reason: "chat channels have a URL, not recipients"}
		}
		if in.URL == "" {
			in.URL = keepURL
		}
		u, err := url.Parse(in.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || len(in.URL) > 2000 {
			return &alerting.FieldError{Field: "url", Reason: "want the channel's https incoming-webhook URL"}
		}
	}
	return in.Rules.Validate()
}

func (s *server) listChannels(w http.ResponseWriter, r *http.Request) {
	list, err := s.store.Channels(r.Context(), TenantFrom(r.Context()))
	if err != nil {
		s.alertStoreFailed(w, r, err)
		return
	}
	out := make([]channelView, len(list))
	for i, c := range list {
		out[i] = viewChannel(c)
	}
	writeJSON(w, http.StatusOK, map[string]any{"channels": out})
}

// createChannel is POST /api/v1/channels.
func (s *server) createChannel(w http.ResponseWriter, r *http.Request) {
	var in channelInput
	if !decodeBody(w, r, &in) {
		return
	}
	if err := in.validate(""); err != nil {
		fieldProblem(w, err)
		return
	}
	now := s.now().UTC()
	c := store.Channel{ID: "ch_" + randomID(), TenantID: TenantFrom(r.Context()), Name: in.Name, Kind: in.Kind,
		Recipients: in.Recipients, URL: in.URL, Rules: in.Rules, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateChannel(r.Context(), c); err != nil {
		s.alertStoreFailed(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/channels/"+c.ID)
	writeJSON(w, http.StatusCreated, viewChannel(c))
}

func (s *server) getChannel(w http.ResponseWriter, r *http.Request) {
	c, err := s.store.Channel(r.Context(), TenantFrom(r.Context()), chi.URLParam(r, "id"))
	if err != nil {
		s.alertStoreFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewChannel(c))
}

// updateChannel is PUT /api/v1/channels/{id}: replaces the settings; the
// kind cannot change (a new channel is the way), and an omitted url keeps
// the stored one.
func (s *server) updateChannel(w http.ResponseWriter, r *http.Request) {
	ctx, tenantID, id := r.Context(), TenantFrom(r.Context()), chi.URLParam(r, "id")
	var in channelInput
	if !decodeBody(w, r, &in) {
		return
	}
	old, err := s.store.Channel(ctx, tenantID, id)
	if err != nil {
		s.alertStoreFailed(w, r, err)
		return
	}
	if in.Kind != old.Kind {
		fieldProblem(w, &alerting.FieldError{Field: "kind", Reason: "a channel's kind cannot change; create a new channel"})
		return
	}
	if err := in.validate(old.URL); err != nil {
		fieldProblem(w, err)
		return
	}
	c := store.Channel{ID: id, TenantID: tenantID, Name: in.Name, Kind: in.Kind, Recipients: in.Recipients,
		URL: in.URL, Rules: in.Rules, CreatedAt: old.CreatedAt, UpdatedAt: s.now().UTC(), Status: old.Status}
	if err := s.store.UpdateChannel(ctx, c); err != nil {
		s.alertStoreFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewChannel(c))
}

func (s *server) deleteChannel(w http.ResponseWriter, r *http.Request) {
	if err := s.store.DeleteChannel(r.Context(), TenantFrom(r.Context()), chi.URLParam(r, "id")); err != nil {
		s.alertStoreFailed(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) listChannelDeliveries(w http.ResponseWriter, r *http.Request) {
	list, err := s.store.ChannelDeliveries(r.Context(), TenantFrom(r.Context()), chi.URLParam(r, "id"), maxDeliveriesListed)
	if err != nil {
		s.alertStoreFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": nonNil(list)})
}
