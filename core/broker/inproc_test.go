package broker

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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

// A delivery its in-process subscriber holds on purpose (publish.Hold, as
// process does while it waits out a drone's STATE_INTERVAL) gives its
// place in the Trigger's bound back: with one delivery in flight allowed,
// every held delivery still reaches the subscriber, where before the
// first held one kept the others waiting for its slot. Held deliveries
// are still acked only once answered. Hold tells the subscriber which of
// them keep their slots (false): those past MaxHeld.
func TestHeldDeliveriesFreeTheirSlots(t *testing.T) {
	for _, c := range []struct {
		name    string
		maxHeld int
		inside  int // deliveries in the subscriber at once
		refused int // Hold answered false: held, but with its slot
	}{
		{"every one held without its slot", 5, 5, 0},
		{"two held without their slots, the third keeps its own", 2, 3, 1},
		{"none held without its slot (MaxHeld 0)", 0, 1, 5},
	} {
		t.Run(c.name, func(t *testing.T) { testHeldDeliveries(t, c.maxHeld, c.inside, c.refused) })
	}
}

func testHeldDeliveries(t *testing.T, maxHeld, wantInside, wantRefused int) {
	const addr = "inproc-holder.invalid:80"
	const n = 5
	release := make(chan struct{})
	var mu sync.Mutex
	inside, maxInside, answered, refused := 0, 0, 0, 0
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		freed := publish.Hold(r.Context())
		mu.Lock()
		if !freed {
			refused++
		}
		inside++
		maxInside = max(maxInside, inside)
		mu.Unlock()
		<-release
		mu.Lock()
		inside--
		answered++
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})
	publish.RegisterLocalEvents(addr, mux)
	t.Cleanup(func() { publish.UnregisterLocal(addr) })
	b, ingress := openBroker(t, Config{
		Files:         []string{writeManifest(t, triggerYAML("hold", "test.a", "holder", fastRetry))},
		Resolve:       resolver(map[string]string{"holder": "http://" + addr}),
		HTTPClient:    &http.Client{Transport: publish.LocalTransport{}},
		MaxInFlight:   1,
		MaxHeld:       maxHeld,
		MaxAckPending: n,
		BatchLinger:   -1,
		// No attempt times out while held: a retry is not a second delivery.
		SubscriberTimeout: time.Minute,
	})
	var once sync.Once
	defer once.Do(func() { close(release) })
	for i := range n {
		mustSend(t, ingress.URL, newEvent("e"+strconv.Itoa(i), "test.a"))
	}
	eventually(t, "held deliveries in the subscriber at once", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return inside == wantInside
	})
	once.Do(func() { close(release) })
	eventually(t, "every delivery answered and acked", func() bool {
		mu.Lock()
		done := answered == n
		p, err := b.Pending(context.Background())
		mu.Unlock()
		return done && err == nil && p == 0
	})
	if maxInside != wantInside {
		t.Errorf("%d deliveries in the subscriber at most, want %d (one slot, %d held without theirs)", maxInside, wantInside, maxHeld)
	}
	if refused != wantRefused {
		t.Errorf("Hold answered false %d times, want %d (deliveries held past MaxHeld %d keep their slots)", refused, wantRefused, maxHeld)
	}
}
