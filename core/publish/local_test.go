package publish_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/dronetrack/dronetrack/core/publish"
	"github.com/dronetrack/dronetrack/events"
)

// A sink registered as local gets the event in process (its address has no
// listener at all), as the same binary-mode request; once unregistered the
// publisher goes to the network, where nothing listens.
func TestPublishToLocalSink(t *testing.T) {
	ln := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(ln.URL, "http://")
	ln.Close() // the address now refuses connections
	var got []string
	publish.RegisterLocal(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil || r.Header.Get("Ce-Id") == "" {
			t.Errorf("not a binary-mode CloudEvent: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		got = append(got, e.ID())
		w.WriteHeader(http.StatusAccepted)
	}))
	p, err := publish.New("http://"+addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := events.NewTelemetryReceived(telemetryEvent(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(context.Background(), e); err != nil {
		t.Fatalf("publish to local sink: %v", err)
	}
	if len(got) != 1 || got[0] != e.ID() {
		t.Errorf("local sink got %v, want [%s]", got, e.ID())
	}
	publish.UnregisterLocal(addr)
	if err := p.Publish(context.Background(), e); !errors.Is(err, publish.ErrUnavailable) {
		t.Errorf("publish after unregistering: %v, want ErrUnavailable (nothing listens)", err)
	}
}

// A local handler that hangs does not hang the caller past its context.
func TestLocalTransportHonoursContext(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	publish.RegisterLocal("hang.local:1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer publish.UnregisterLocal("hang.local:1")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://hang.local:1/", nil)
	_, err := (&http.Client{Transport: publish.LocalTransport{}}).Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's deadline", err)
	}
}

type directSink struct {
	http.Handler
	got []string
	err error
}

func (s *directSink) PublishEvent(_ context.Context, e event.Event) error {
	s.got = append(s.got, e.ID())
	return s.err
}

// A local sink that takes events directly gets the event itself, and its
// refusal is ErrUnavailable to the caller (ingest answers 503).
func TestPublishToLocalEventSink(t *testing.T) {
	s := &directSink{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the HTTP handler was called instead of PublishEvent")
	})}
	publish.RegisterLocal("direct.local:1", s)
	defer publish.UnregisterLocal("direct.local:1")
	p, err := publish.New("http://direct.local:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := events.NewTelemetryReceived(telemetryEvent(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(context.Background(), e); err != nil || len(s.got) != 1 || s.got[0] != e.ID() {
		t.Fatalf("publish: %v, sink got %v", err, s.got)
	}
	s.err = errors.New("store down")
	if err := p.Publish(context.Background(), e); !errors.Is(err, publish.ErrUnavailable) {
		t.Errorf("refused: %v, want ErrUnavailable", err)
	}
}
