package broker

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/dronetrack/dronetrack/core/publish"
)

// A subscriber served in this process (core/publish LocalTransport) gets
// the stored event itself through the request (publish.EventFromRequest),
// with the same attributes, extensions and data a subscriber reading the
// HTTP message sees, and its reply (publish.WriteReply) is stored and
// routed like a reply sent over HTTP. The address has
// no listener: nothing goes over a socket.
func TestInProcessSubscriberGetsEventAndReplies(t *testing.T) {
	final := newSink(t, nil)
	const addr = "inproc-subscriber.invalid:80"
	var (
		mu      sync.Mutex
		got     []event.Event
		headers []string
	)
	inProcess := true
	mux := http.NewServeMux() // as `up` serves a function: it sees the path "/"
	publish.RegisterLocal(addr, mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		e, err := publish.EventFromRequest(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, *e)
		headers = append(headers, r.Header.Get("Ce-Id")) // still a binary-mode message
		mu.Unlock()
		reply := newEvent("reply-of-"+e.ID(), "test.b")
		if err := publish.WriteReply(w, r, &reply, http.StatusOK); err != nil {
			t.Errorf("WriteReply: %v", err)
		}
		mu.Lock()
		inProcess = inProcess && w.Header().Get("Ce-Id") == "" // else encoded as HTTP
		mu.Unlock()
	})
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
	if len(got) != 1 || len(headers) != 1 || headers[0] != "e1" {
		t.Fatalf("subscriber got %d events (Ce-Id headers %v), want e1 once", len(got), headers)
	}
	if !inProcess {
		t.Errorf("the reply was encoded as an HTTP message, want it handed back in process")
	}
	e := got[0]
	if e.ID() != "e1" || e.Type() != "test.a" || e.Source() != "/dronetrack/test" {
		t.Errorf("event attributes %s %s %s, want e1 test.a /dronetrack/test", e.ID(), e.Type(), e.Source())
	}
	if v := e.Extensions()["tenantid"]; v != "t1" {
		t.Errorf("tenantid extension %v, want t1", v)
	}
	if _, ok := e.Extensions()[ExtTTL]; ok {
		t.Errorf("the broker's hop counter reached the subscriber")
	}
	if string(e.Data()) != string(sent.Data()) {
		t.Errorf("data %q, want %q", e.Data(), sent.Data())
	}
	if r := final.received(); len(r) != 1 || !strings.HasPrefix(r[0].ID(), "reply-of-") {
		t.Fatalf("final trigger got %v", r)
	}
}
