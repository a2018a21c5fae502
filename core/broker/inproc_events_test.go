package broker

import (
	"net/http"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/dronetrack/dronetrack/core/publish"
)

// A subscriber registered as taking events (publish.RegisterLocalEvents)
// gets the delivery without the event written into the HTTP message (no
// ce-* headers, no body) and still reads the event and replies; the reply
// is stored and routed. A subscriber that reads HTTP messages is covered by
// TestInProcessSubscriberGetsEventAndReplies (registered with RegisterLocal)
// and every TCP test (the message as before).
func TestInProcessEventSubscriberGetsNoHTTPEncoding(t *testing.T) {
	final := newSink(t, nil)
	const addr = "inproc-events.invalid:80"
	var (
		mu     sync.Mutex
		got    []event.Event
		header []string
		bodies []int64
	)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		e, err := publish.EventFromRequest(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, *e)
		header = append(header, r.Header.Get("Ce-Id")+r.Header.Get("Content-Type"))
		bodies = append(bodies, r.ContentLength)
		mu.Unlock()
		reply := newEvent("reply-of-"+e.ID(), "test.b")
		if err := publish.WriteReply(w, r, &reply, http.StatusOK); err != nil {
			t.Errorf("WriteReply: %v", err)
		}
	})
	publish.RegisterLocalEvents(addr, mux)
	t.Cleanup(func() { publish.UnregisterLocal(addr) })
	files := writeManifest(t, triggerYAML("first", "test.a", "first", fastRetry)+triggerYAML("final", "test.b", "final", fastRetry))
	_, ingress := openBroker(t, Config{
		Files:      []string{files},
		Resolve:    resolver(map[string]string{"first": "http://" + addr, "final": final.srv.URL}),
		HTTPClient: &http.Client{Transport: publish.LocalTransport{}},
	})
	sent := newEvent("e1", "test.a")
	sent.SetExtension("tenantid", "t1")
	mustSend(t, ingress.URL, sent)
	eventually(t, "reply delivered to its trigger", func() bool { return final.delivered()["reply-of-e1"] == 1 })

	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].ID() != "e1" || got[0].Extensions()["tenantid"] != "t1" || string(got[0].Data()) != string(sent.Data()) {
		t.Fatalf("subscriber got %v, want e1 with its extension and data", got)
	}
	if header[0] != "" || bodies[0] != 0 {
		t.Errorf("delivery carried an HTTP encoding: headers %q, body of %d bytes", header[0], bodies[0])
	}
	// The final subscriber is over TCP: it got the reply as an HTTP message.
	if r := final.received(); len(r) != 1 || r[0].ID() != "reply-of-e1" {
		t.Errorf("final trigger got %v", r)
	}
}
