package local

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/dronetrack/dronetrack/core/publish"
)

// headerFunction records the Ce-Id header and the event of each delivery;
// events makes it declare that it reads delivered events (publish.EventReader).
type headerFunction struct {
	okFunction
	events bool
	mu     sync.Mutex
	seen   []string
}

func (f *headerFunction) Handle(w http.ResponseWriter, r *http.Request) {
	e, err := publish.EventFromRequest(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.seen = append(f.seen, e.ID()+" header="+r.Header.Get("Ce-Id"))
	f.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

type eventFunction struct{ *headerFunction }

func (eventFunction) ReadsDeliveredEvents() bool { return true }

// A hosted function that declares it reads delivered events gets the
// broker's in-process deliveries without their HTTP encoding, also once
// served again after a cut (Interrupt); one that does not declare it, and the
// declaring one with in-process delivery off (over its socket), get the
// binary-mode CloudEvent.
func TestHostedFunctionsTakeEventsAsDeclared(t *testing.T) {
	t.Setenv(EnvInprocDelivery, "")
	e := event.New()
	e.SetID("e1")
	e.SetType("test.a")
	e.SetSource("/test")
	deliver := func(t *testing.T, h *Hosted) {
		t.Helper()
		u, _ := url.Parse(h.URL())
		ctx, _ := publish.WithUnencodedDelivery(context.Background(), &e, u.Host, u.Path)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL(), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Transport: publish.LocalTransport{}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("delivery: %d", resp.StatusCode)
		}
	}
	host := func(t *testing.T, fn Instance) *Hosted {
		h, err := Listen("f", fn, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Shutdown(context.Background()) })
		return h
	}

	reader := &headerFunction{}
	h := host(t, eventFunction{reader})
	deliver(t, h)
	if err := h.Interrupt(10 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	deliver(t, h) // registered again after Interrupt: in process, no encoding
	plain := &headerFunction{}
	deliver(t, host(t, plain))

	t.Setenv(EnvInprocDelivery, "0")
	overTCP := &headerFunction{}
	deliver(t, host(t, eventFunction{overTCP}))

	if got := overTCP.seen; len(got) != 1 || got[0] != "e1 header=e1" {
		t.Errorf("function over TCP saw %q, want the binary-mode message", got)
	}
	if got := reader.seen; len(got) != 2 || got[0] != "e1 header=" || got[1] != "e1 header=" {
		t.Errorf("event-reading function saw %q, want the event without an HTTP encoding twice", got)
	}
	if got := plain.seen; len(got) != 1 || got[0] != "e1 header=e1" {
		t.Errorf("other function saw %q, want the binary-mode message", got)
	}
}

// TestBrokerInFlightBound: up's broker keeps its deliveries in flight at a
// fixed bound unless DRONETRACK_BROKER_MININFLIGHT sets a floor to adapt
// from; 0, or a value that is not a count, leaves the bound fixed.
func TestBrokerInFlightBound(t *testing.T) {
	for _, c := range []struct {
		env  string
		set  bool
		want int
	}{{"", false, 0}, {"0", true, 0}, {"64", true, 64}, {"128", true, 128}, {"x", true, 0}, {"-1", true, 0}} {
		if c.set {
			t.Setenv(EnvBrokerMinInFlight, c.env)
		} else {
			t.Setenv(EnvBrokerMinInFlight, "")
			os.Unsetenv(EnvBrokerMinInFlight)
		}
		if got := minInFlight(); got != c.want {
			t.Errorf("%s=%q (set %v): floor %d, want %d", EnvBrokerMinInFlight, c.env, c.set, got, c.want)
		}
	}
}
