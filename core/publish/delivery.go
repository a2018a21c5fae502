package publish

import (
	"context"
	"fmt"
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
// in a cluster. The request carries the event in binary content mode too
// (WithDelivery), or gets it written in by LocalTransport before it reaches
// anything but a handler that reads only the event (WithUnencodedDelivery),
// so a handler that reads the HTTP message sees the same event.
type Delivery struct {
	event *event.Event
	host  string // the request's host and path: a request the handler
	path  string // sends on with the same context is not this delivery
	// unencoded: the request does not carry the event yet
	// (WithUnencodedDelivery); LocalTransport writes it in when the
	// request goes anywhere but a handler that takes the event itself.
	unencoded bool

	mu    sync.Mutex
	reply *event.Event

	onHold   func() bool // set by the sender (OnHold), called once by Hold
	holdOnce sync.Once
	held     bool // onHold's answer
}

// OnHold sets what Hold calls for this delivery, before the request is
// sent. A broker frees the delivery's place in its bound of deliveries in
// flight: a delivery held on purpose waits for time to pass, not for the
// subscriber's work, and counted against the bound it kept deliveries the
// subscriber could take waiting behind it. fn reports whether it did; a
// sender at its own bound of held deliveries says no (false).
func (d *Delivery) OnHold(fn func() bool) { d.onHold = fn }

// Hold tells the sender of the delivery ctx carries (the context of a
// request delivered in process, or one derived from it) that the handler
// holds it on purpose: it will answer once some time has passed (process
// merging a drone's reports into one write per STATE_INTERVAL), not once
// work queued ahead of it is done. Nothing happens for a request that did
// not come in process or whose sender did not ask (OnHold).
//
// Hold reports whether the handler may go on holding the delivery: false
// only when its sender in process asked and could not free its place,
// because as many deliveries as it lets wait so are waiting already. A
// handler told false should do its work now rather than wait: held, the
// delivery would keep a place of those being worked on, and a backlog
// whose deliveries are all held drains only as fast as the holds end.
// Elsewhere (over a socket, a sender that did not ask) it is true: there
// the handler's wait costs the sender nothing it told us of. Calls after
// the first return the first's answer.
func Hold(ctx context.Context) bool {
	d, ok := ctx.Value(deliveryKey{}).(*Delivery)
	if !ok || d.onHold == nil {
		return true
	}
	d.holdOnce.Do(func() { d.held = d.onHold() })
	return d.held
}

type deliveryKey struct{}

// WithDelivery returns ctx carrying e for the request req will be: a
// request made with the returned context to req's host and path (the
// broker's delivery). The handler must not change the event.
func WithDelivery(ctx context.Context, e *event.Event, host, path string) (context.Context, *Delivery) {
	d := &Delivery{event: e, host: host, path: rootPath(path)}
	return context.WithValue(ctx, deliveryKey{}, d), d
}

// WithUnencodedDelivery is WithDelivery for a request that does not carry
// e in its HTTP message (no ce-* headers, no body), for a sender whose
// client's transport is a LocalTransport: the transport hands the request
// as it is to a handler registered with RegisterLocalEvents, which reads
// only the event, and writes e into a copy of the request in binary
// content mode before the request goes to any other handler or to the
// network. So a delivery to a function in this process is not encoded
// into an HTTP message that nobody reads, and one over a socket (a
// function cut by a fault test, the cluster) is exactly as WithDelivery's
// with the header "Prefer: reply" (a delivery with a slot for the reply
// asks for one; the transport writes the header with the event).
func WithUnencodedDelivery(ctx context.Context, e *event.Event, host, path string) (context.Context, *Delivery) {
	d := &Delivery{event: e, host: host, path: rootPath(path), unencoded: true}
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

// encodeDelivery returns req ready to be read as an HTTP message: req
// itself, or, for the request of an unencoded delivery
// (WithUnencodedDelivery), a copy carrying the event in binary content
// mode (headers copied, so the caller's request is not changed).
func encodeDelivery(req *http.Request) (*http.Request, error) {
	d, ok := req.Context().Value(deliveryKey{}).(*Delivery)
	if !ok || !d.unencoded || d.host != req.URL.Host || d.path != rootPath(req.URL.Path) {
		return req, nil
	}
	r := new(http.Request)
	*r = *req
	r.Header = req.Header.Clone()
	if r.Header == nil {
		r.Header = http.Header{}
	}
	r.Header.Set("Prefer", "reply")
	ctx := binding.WithForceBinary(req.Context())
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(d.event), r); err != nil {
		return nil, fmt.Errorf("encode event %s: %w", d.event.ID(), err)
	}
	return r, nil
}

// DeliveredType is the type of the CloudEvent r carries as a delivery in
// process (WithDelivery), else its Ce-Type header (binary content mode):
// for metrics and routing that must not decode the event.
func DeliveredType(r *http.Request) string {
	if d, ok := delivery(r); ok {
		return d.event.Type()
	}
	return r.Header.Get("Ce-Type")
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
