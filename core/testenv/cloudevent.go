package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/dronetrack/dronetrack/core/publish"
)

// PostEvent delivers e to url in binary content mode (ce-* headers, data as
// the body), as the broker and Knative deliver events to a function, with
// the default client; header adds request headers (an Authorization, say).
//
// It returns the response with its body already read into memory, so the
// caller need not close it and may still read it or decode a reply event
// from it (cehttp.NewEventFromHTTPResponse). Whatever status the receiver
// answers is returned; a request that cannot be built or sent fails the
// test, so call PostEvent from the test's goroutine.
func PostEvent(t testing.TB, url string, e event.Event, header ...http.Header) *http.Response {
	t.Helper()
	req, err := cehttp.NewHTTPRequestFromEvent(context.Background(), url, e)
	if err != nil {
		t.Fatalf("event %s as a request: %v", e.ID(), err)
	}
	for _, h := range header {
		for k, vs := range h {
			req.Header[http.CanonicalHeaderKey(k)] = vs
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post event %s: %v", e.ID(), err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("post event %s: reading the answer: %v", e.ID(), err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp
}

// DeliverInProcess hands e to h the way the one-machine broker delivers to
// a function that reads its events from the delivery
// (publish.RegisterLocalEvents): in process, through a LocalTransport, with
// no ce-* headers and no body, asking for a reply. It returns the response
// and the reply event the handler left (publish.WriteReply), or nil. path
// is where the Trigger delivers ("/" for a function's root).
func DeliverInProcess(t testing.TB, h http.Handler, path string, e event.Event) (*http.Response, *event.Event) {
	t.Helper()
	addr := fmt.Sprintf("deliver-in-process-%d.invalid:80", deliveries.Add(1))
	publish.RegisterLocalEvents(addr, h)
	defer publish.UnregisterLocal(addr)
	u := &url.URL{Scheme: "http", Host: addr, Path: path}
	ctx, d := publish.WithUnencodedDelivery(context.Background(), &e, u.Host, u.Path)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Prefer", "reply")
	resp, err := publish.LocalTransport{}.RoundTrip(req)
	if err != nil {
		t.Fatalf("deliver event %s in process: %v", e.ID(), err)
	}
	return resp, d.Reply()
}

var deliveries atomic.Int64

// Redeliver calls deliver the way the broker redelivers an event that was
// answered 503 with Retry-After: again after a pause, until it answers 2xx.
// A store that has just come back may first have to answer the calls queued
// while it was away, and on a busy machine that can outlast the function's
// store timeout once or twice; the event must still be taken. Any other
// answer, or 503s for longer than within, fails the test. It returns the
// 2xx status and how many deliveries it took.
func Redeliver(t testing.TB, what string, within time.Duration, deliver func() (int, http.Header)) (code, deliveries int) {
	t.Helper()
	deadline := time.Now().Add(within)
	for n := 1; ; n++ {
		code, hdr := deliver()
		if code/100 == 2 {
			return code, n
		}
		if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || time.Now().After(deadline) {
			t.Fatalf("%s (delivery %d): %d, Retry-After %q; want 2xx, or 503 with Retry-After for at most %s",
				what, n, code, hdr.Get("Retry-After"), within)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
