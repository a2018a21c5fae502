package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/core/publish"
	"github.com/dronetrack/dronetrack/events"
)

const maxEventBytes = 4 << 20

// Ingress is the Broker's address (what K_SINK points to). It accepts a
// CloudEvent in binary or structured mode on POST to any path and answers
// 202 only once the event is durably stored; 400 (problem JSON) for a
// request that is not a valid CloudEvent; 503 while shutting down or when
// the store cannot take it, so senders retry.
//
// The handler also takes events directly (PublishEvent, the
// core/publish.EventSink interface), for publishers in the same process.
func (b *Broker) Ingress() http.Handler {
	return ingress{b}
}

type ingress struct{ b *Broker }

func (i ingress) ServeHTTP(w http.ResponseWriter, r *http.Request) { i.b.serveIngress(w, r) }

// PublishEvent does what the ingress does with an event sent over HTTP:
// it validates it, gives it the broker's hop counter when it has none and
// stores it. An error means the ingress would not have answered 202.
func (i ingress) PublishEvent(ctx context.Context, e event.Event) error {
	if i.b.closing.Load() {
		return ErrUnavailable
	}
	if err := publish.Validate(&e); err != nil {
		return fmt.Errorf("broker: invalid CloudEvent: %w", err)
	}
	// Stored with the hop counter at its start when it has none
	// (publishBatched): the caller's event is left as it was.
	if err := i.b.publishIngress(ctx, e); err != nil {
		if !errors.Is(err, errStoreDown) {
			i.b.log.Warn("ingress: event not stored", "event_id", e.ID(), "event_type", e.Type(), "err", err)
		}
		return err
	}
	return nil
}

func (b *Broker) serveIngress(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		problem.Write(w, http.StatusMethodNotAllowed, "method not allowed", "send CloudEvents with POST")
		return
	}
	if b.closing.Load() {
		w.Header().Set("Retry-After", "1")
		problem.Write(w, http.StatusServiceUnavailable, "broker unavailable", "the broker is shutting down")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxEventBytes)
	e, err := cehttp.NewEventFromHTTPRequest(r)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			problem.Write(w, http.StatusRequestEntityTooLarge, "event too large", err.Error())
			return
		}
		problem.Write(w, http.StatusBadRequest, "not a CloudEvent", "the request is not a CloudEvent in binary or structured mode: "+err.Error())
		return
	}
	if err := publish.Validate(e); err != nil {
		problem.Write(w, http.StatusBadRequest, "invalid CloudEvent", err.Error(), problem.WithErrors(invalidFields(err.Error())))
		return
	}
	if _, ok := extension(*e, ExtTTL); !ok {
		e.SetExtension(ExtTTL, defaultTTL)
	}
	if err := b.Publish(r.Context(), *e); err != nil {
		detail := "the event could not be stored; retry"
		if errors.Is(err, errStoreDown) {
			// Logged once by the store watch, not once per event.
			b.log.Debug("ingress: event not stored", "event_id", e.ID(), "event_type", e.Type(), "err", err)
			detail = "the broker's store cannot take writes (disk full?); retry later"
		} else {
			b.log.Warn("ingress: event not stored", "event_id", e.ID(), "event_type", e.Type(), "err", err)
		}
		w.Header().Set("Retry-After", "1")
		problem.Write(w, http.StatusServiceUnavailable, "broker unavailable", detail)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// invalidFields names the CloudEvents attributes a validation error mentions.
func invalidFields(msg string) []events.FieldError {
	var out []events.FieldError
	for _, f := range []string{"specversion", "id", "source", "type", "datacontenttype", "dataschema", "subject", "time"} {
		if strings.Contains(msg, f+":") {
			out = append(out, events.FieldError{Field: f, Pointer: f, Detail: msg})
		}
	}
	return out
}
