package publish

import (
	"context"
	"net/http"
	"sync"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// Delivery is an event a broker sends to a subscriber, carried by the
// request's context next to its HTTP encoding, and the slot for the
// subscriber's reply event. When the request is handed to a handler in this
// process (LocalTransport), the handler reads the event itself
// (EventFromRequest) and leaves its reply in the slot (WriteReply), so
// neither is parsed back from, or encoded into, an HTTP message; over a
// socket the context stays behind and both ends use the HTTP message, as
// in a cluster. The request still carries the event in binary content
// mode, so a handler that reads the HTTP message sees the same event.
type Delivery struct {
	event *event.Event
	host  string // the request's host and path: a request the handler
	path  string // sends on with the same context is not this delivery

	mu    sync.Mutex
	reply *event.Event
}

type deliveryKey struct{}

// WithDelivery returns ctx carrying e for the request req will be: a
// request made with the returned context to req's host and path (the
// broker's delivery). The handler must not change the event.
func WithDelivery(ctx context.Context, e *event.Event, host, path string) (context.Context, *Delivery) {
	d := &Delivery{event: e, host: host, path: rootPath(path)}
	return context.WithValue(ctx, deliveryKey{}, d), d
}

// Reply is the reply event the handler left with WriteReply, or nil.
func (d *Delivery) Reply() *event.Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reply
}

// delivery returns the Delivery r was made for, if it came in process.
func delivery(r *http.Request) (*Delivery, bool) {
	d, ok := r.Context().Value(deliveryKey{}).(*Delivery)
	if !ok || d.host != r.Host || d.path != rootPath(r.URL.Path) {
		return nil, false
	}
	return d, true
}

// EventFromRequest returns the CloudEvent a request carries: the event
// itself for a delivery handed over in process (WithDelivery), else the
// event decoded from the HTTP message (binary or structured mode). The
// caller must not change an event it did not clone: in process it shares
// the sender's attributes and data.
func EventFromRequest(r *http.Request) (*event.Event, error) {
	if d, ok := delivery(r); ok {
		e := *d.event
		return &e, nil
	}
	return cehttp.NewEventFromHTTPRequest(r)
}

// WriteReply answers r with status and the reply event: for a delivery
// handed over in process the event itself goes back to the sender
// (Delivery.Reply) and only the status is written; otherwise the event is
// written in binary content mode, as the Knative data-plane contract asks.
func WriteReply(w http.ResponseWriter, r *http.Request, reply *event.Event, status int) error {
	if d, ok := delivery(r); ok {
		d.mu.Lock()
		d.reply = reply
		d.mu.Unlock()
		w.WriteHeader(status)
		return nil
	}
	return cehttp.WriteResponseWriter(r.Context(), binding.ToMessage(reply), status, w)
}

// rootPath is "/" for a URL without a path, as a ServeMux sees it.
func rootPath(p string) string {
	if p == "" {
		return "/"
	}
	return p
}
