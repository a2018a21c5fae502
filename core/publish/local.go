package publish

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/dronetrack/dronetrack/core/workers"
)

// localWorkers runs the local handlers on goroutines reused across
// requests (their stacks already grown).
var localWorkers = workers.New(time.Second)

// local maps a listen address (host:port) to the handler that serves it in
// this process.
var local sync.Map

// RegisterLocal declares that addr (host:port, as in a URL) is served by h
// in this process: clients whose transport is a LocalTransport (NewClient's
// is) then hand requests for addr to h directly instead of over a socket.
// `dronetrack up` registers every function and the broker's ingress, so a
// report crosses no loopback socket between ingest, the broker and the
// functions (profiles put loopback HTTP at a third of the pipeline's CPU).
// In a cluster nothing is registered and every request goes to the network.
func RegisterLocal(addr string, h http.Handler) { local.Store(addr, h) }

// RegisterLocalEvents is RegisterLocal for a handler that takes the event
// of every delivery sent to it from the request's context
// (EventFromRequest, DeliveredType) and answers with WriteReply, reading
// nothing else of the request but its method, path and context: a
// delivery made with WithUnencodedDelivery reaches it without the event
// written into the HTTP message. The functions declare it with
// EventReader.
func RegisterLocalEvents(addr string, h http.Handler) { local.Store(addr, eventHandler{h}) }

// EventReader is implemented by a function instance whose handler reads
// every event a broker delivers to it with EventFromRequest or
// DeliveredType, never from the HTTP message, on every path a Trigger
// delivers to: one-machine mode registers it with RegisterLocalEvents.
type EventReader interface {
	ReadsDeliveredEvents() bool
}

// eventHandler marks a handler registered with RegisterLocalEvents.
type eventHandler struct{ http.Handler }

// EventSink is a handler registered with RegisterLocal that can also take
// an event directly. A Publisher whose sink is such a handler calls
// PublishEvent instead of encoding the event as an HTTP request that the
// handler decodes again (the one-machine broker's ingress is one). It
// must behave as the handler would for the same event sent over HTTP and
// answered 2xx (nil) or not (an error).
type EventSink interface {
	http.Handler
	PublishEvent(ctx context.Context, e event.Event) error
}

// localSink returns the EventSink registered for addr, if any.
func localSink(addr string) (EventSink, bool) {
	v, ok := local.Load(addr)
	if !ok {
		return nil, false
	}
	s, ok := v.(EventSink)
	return s, ok
}

// IsLocal reports whether addr (host:port) is served in this process
// (RegisterLocal).
func IsLocal(addr string) bool {
	_, ok := local.Load(addr)
	return ok
}

// UnregisterLocal undoes RegisterLocal: requests for addr go to the network
// again (a stopped or cut server then refuses them, as it should).
func UnregisterLocal(addr string) { local.Delete(addr) }

// LocalTransport sends a request for an address registered with
// RegisterLocal to its handler in process, and any other request to Next
// (http.DefaultTransport when nil). The handler sees an ordinary server
// request (the same headers and body, RemoteAddr 127.0.0.1); the caller
// gets an ordinary response. It gives up when the request's context ends,
// like a real client, even if the handler does not.
type LocalTransport struct{ Next http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (t LocalTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	v, ok := local.Load(req.URL.Host)
	if _, events := v.(eventHandler); !events {
		// The handler, or the network, reads the HTTP message: an
		// unencoded delivery's event is written into it here.
		var err error
		if req, err = encodeDelivery(req); err != nil {
			return nil, err
		}
	}
	if !ok {
		next := t.Next
		if next == nil {
			next = http.DefaultTransport
		}
		return next.RoundTrip(req)
	}
	h := v.(http.Handler)
	// The call's state (the server's copy of the request, the recorder,
	// the channel of the answer) is reused from call to call: with four
	// deliveries in process per report, allocating it each time was a few
	// percent of the bytes a report costs.
	c := localCalls.Get().(*localCall)
	// A shallow copy: the handler reads the caller's headers and body, as
	// a server would read them off the wire (req.Clone's deep copy of the
	// headers was 5% of the pipeline's CPU). Handlers must not change
	// request headers, which no handler of Dronetrack does.
	c.sr = *req
	sr := &c.sr
	sr.RequestURI = req.URL.RequestURI()
	if req.URL.Path == "" {
		// A server reads "POST / HTTP/1.1" for a URL without a path; with
		// the empty path a ServeMux answered 307 to "/" and every delivery
		// to a function in process was sent twice (http.Client follows).
		u := *req.URL
		u.Path = "/"
		sr.URL = &u
	}
	sr.RemoteAddr = "127.0.0.1:1"
	sr.Host = req.URL.Host
	if sr.Body == nil {
		sr.Body = http.NoBody
	}
	c.h, c.req = h, req
	localWorkers.Go(c.serve)
	select {
	case r := <-c.done:
		c.release()
		return r.resp, r.err
	case <-req.Context().Done():
		// The handler may still be running with c: it is left to the
		// collector, not reused.
		return nil, req.Context().Err()
	}
}

// localCall is a request to a handler in process, run by localWorkers.
// Like a server's request, it is the handler's only until the handler
// returns (net/http's contract): then it is reused.
type localCall struct {
	sr    http.Request
	rec   recorder
	h     http.Handler
	req   *http.Request // the caller's, for the response
	done  chan localResult
	serve func() // c.run, bound once
}

type localResult struct {
	resp *http.Response
	err  error
}

var localCalls = sync.Pool{New: func() any {
	c := &localCall{done: make(chan localResult, 1)}
	c.serve = c.run
	return c
}}

func (c *localCall) run() {
	defer func() {
		if p := recover(); p != nil {
			c.done <- localResult{err: fmt.Errorf("handler for %s panicked: %v", c.req.URL.Host, p)}
		}
	}()
	c.h.ServeHTTP(&c.rec, &c.sr)
	c.done <- localResult{resp: c.rec.result(c.req)}
}

// release makes c ready for the next call; its answer has been taken.
func (c *localCall) release() {
	c.sr = http.Request{}
	c.rec = recorder{} // the response keeps the body it was given
	c.h, c.req = nil, nil
	localCalls.Put(c)
}

// recorder is the http.ResponseWriter of a handler called in process: what
// a client reads off the wire, as httptest.ResponseRecorder records it
// (headers as they were at WriteHeader, the status, the body, a sniffed
// Content-Type), without the recorder's copies of the header map on every
// response (most deliveries are answered with a bare status).
type recorder struct {
	header http.Header
	sent   http.Header // the header at WriteHeader
	code   int
	body   []byte
}

func (r *recorder) Header() http.Header {
	if r.header == nil {
		r.header = http.Header{}
	}
	return r.header
}

func (r *recorder) WriteHeader(code int) {
	if r.code != 0 {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	r.code = code
	if len(r.header) > 0 {
		r.sent = r.header.Clone()
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		if _, ok := r.header["Content-Type"]; !ok && len(r.header["Transfer-Encoding"]) == 0 {
			r.Header().Set("Content-Type", http.DetectContentType(b))
		}
		r.WriteHeader(http.StatusOK)
	}
	r.body = append(r.body, b...)
	return len(b), nil
}

// Flush is a no-op: the response is handed over when the handler returns.
func (r *recorder) Flush() {
	if r.code == 0 {
		r.WriteHeader(http.StatusOK)
	}
}

// statusLines are the Status of a response with each code that has a
// text, made once instead of for every response.
var statusLines = func() (s [600]string) {
	for code := range s {
		if t := http.StatusText(code); t != "" {
			s[code] = strconv.Itoa(code) + " " + t
		}
	}
	return s
}()

// statusLine is the Status of a response with code, as a client reads it.
func statusLine(code int) string {
	if code >= 0 && code < len(statusLines) && statusLines[code] != "" {
		return statusLines[code]
	}
	return strconv.Itoa(code) + " " + http.StatusText(code)
}

// result is the response the client gets.
func (r *recorder) result(req *http.Request) *http.Response {
	if r.code == 0 {
		r.WriteHeader(http.StatusOK)
	}
	h := r.sent
	if h == nil {
		h = http.Header{}
	}
	resp := &http.Response{
		Status:     statusLine(r.code),
		StatusCode: r.code,
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        h,
		Body:          http.NoBody,
		ContentLength: int64(len(r.body)),
		Request:       req,
	}
	if len(r.body) > 0 {
		resp.Body = io.NopCloser(bytes.NewReader(r.body))
	}
	return resp
}
