// Package problem writes RFC 9457 "problem details" replies, so every bad
// request a Dronetrack endpoint rejects tells the client what to fix in one
// machine-readable shape, with each bad field named by a JSON pointer.
package problem

import (
	"encoding/json"
	"net/http"

	"github.com/dronetrack/dronetrack/events"
)

// ContentType is the media type of a problem reply (RFC 9457 section 3).
const ContentType = "application/problem+json"

// Details is the problem body. Type defaults to "about:blank", which RFC 9457
// says means "the title is the HTTP status phrase, nothing more specific".
// Errors is our extension member: every bad field of the request, so a
// client fixes them all in one round trip.
type Details struct {
	Type     string              `json:"type"`
	Title    string              `json:"title"`
	Status   int                 `json:"status"`
	Detail   string              `json:"detail,omitempty"`
	Instance string              `json:"instance,omitempty"`
	Errors   []events.FieldError `json:"errors,omitempty"`
}

// Error lets a Details travel as an error inside a handler until it is
// written.
func (d *Details) Error() string {
	if d.Detail != "" {
		return d.Title + ": " + d.Detail
	}
	return d.Title
}

// Option adds an optional member to a problem.
type Option func(*Details)

// WithType sets the problem type URI, for problems a client branches on.
func WithType(uri string) Option { return func(d *Details) { d.Type = uri } }

// WithInstance names the occurrence, typically the request path.
func WithInstance(uri string) Option { return func(d *Details) { d.Instance = uri } }

// WithErrors attaches the bad fields.
func WithErrors(errs []events.FieldError) Option {
	return func(d *Details) { d.Errors = errs }
}

// New builds a problem; an empty title becomes the status phrase.
func New(status int, title, detail string, opts ...Option) *Details {
	if title == "" {
		title = http.StatusText(status)
	}
	d := &Details{Type: "about:blank", Title: title, Status: status, Detail: detail}
	for _, o := range opts {
		o(d)
	}
	return d
}

// Write replies with a problem. Headers the status needs (Allow,
// WWW-Authenticate, Retry-After) must be set by the caller before Write.
func Write(w http.ResponseWriter, status int, title, detail string, opts ...Option) {
	WriteDetails(w, New(status, title, detail, opts...))
}

// WriteDetails replies with an already built problem; its Status is the
// HTTP status.
func WriteDetails(w http.ResponseWriter, d *Details) {
	body, err := json.Marshal(d)
	if err != nil { // only reachable with a broken FieldError; keep the status honest
		body = []byte(`{"type":"about:blank","title":"` + http.StatusText(d.Status) + `"}`)
	}
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(d.Status)
	_, _ = w.Write(append(body, '\n'))
}
