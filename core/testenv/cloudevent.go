package testenv

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
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
