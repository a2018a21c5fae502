package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// sink is a real HTTP subscriber that records what it receives and answers
// with whatever its respond function decides.
type sink struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []event.Event
	ok      map[string]int // event id -> 2xx answers
	respond func(e event.Event, attempt int, w http.ResponseWriter)
	tries   map[string]int
}

func newSink(t testing.TB, respond func(e event.Event, attempt int, w http.ResponseWriter)) *sink {
	t.Helper()
	s := &sink{ok: map[string]int{}, tries: map[string]int{}, respond: respond}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.tries[e.ID()]++
		attempt := s.tries[e.ID()]
		s.got = append(s.got, *e)
		respond := s.respond
		s.mu.Unlock()
		rec := httptest.NewRecorder()
		if respond == nil {
			rec.WriteHeader(http.StatusAccepted)
		} else {
			respond(*e, attempt, rec)
		}
		if rec.Code >= 200 && rec.Code < 300 {
			s.mu.Lock()
			s.ok[e.ID()]++
			s.mu.Unlock()
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) setRespond(f func(e event.Event, attempt int, w http.ResponseWriter)) {
	s.mu.Lock()
	s.respond = f
	s.mu.Unlock()
}

func (s *sink) attempts(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tries[id]
}

func (s *sink) delivered() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.ok))
	for k, v := range s.ok {
		out[k] = v
	}
	return out
}

func (s *sink) received() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.Event(nil), s.got...)
}

func status(code int) func(event.Event, int, http.ResponseWriter) {
	return func(_ event.Event, _ int, w http.ResponseWriter) { w.WriteHeader(code) }
}

// writeManifest puts YAML in a temp file for Config.Files.
func writeManifest(t testing.TB, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "triggers.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// resolver maps Service names to URLs; unknown names are ErrNoSink.
func resolver(urls map[string]string) func(Reference) (string, error) {
	return func(r Reference) (string, error) {
		if u, ok := urls[r.Name]; ok {
			return u, nil
		}
		return "", fmt.Errorf("%w: %s", ErrNoSink, r.Name)
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("BROKER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// openBroker opens a broker on dir and serves its ingress; Shutdown runs at
// cleanup unless the test already did it.
func openBroker(t testing.TB, cfg Config) (*Broker, *httptest.Server) {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.SubscriberTimeout == 0 {
		cfg.SubscriberTimeout = 5 * time.Second
	}
	b, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	srv := httptest.NewServer(b.Ingress())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Shutdown(ctx)
	})
	return b, srv
}

func newEvent(id, typ string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetType(typ)
	e.SetSource("/dronetrack/test")
	_ = e.SetData(event.ApplicationJSON, map[string]string{"id": id})
	return e
}

var sendClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}

// send POSTs an event in binary mode and returns the status code.
func send(target string, e event.Event) (int, error) {
	req, err := http.NewRequest(http.MethodPost, target, nil)
	if err != nil {
		return 0, err
	}
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), req); err != nil {
		return 0, err
	}
	resp, err := sendClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func mustSend(t testing.TB, target string, e event.Event) {
	t.Helper()
	code, err := send(target, e)
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("send %s: code %d, err %v; want 202", e.ID(), code, err)
	}
}

// eventually polls cond until it holds; the bound only turns a hang into a
// failure, it asserts no timing.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// trigger builds a hand-written Trigger manifest for tests.
func triggerYAML(name, typ, subscriber, delivery string) string {
	return fmt.Sprintf(`apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: %s
spec:
  broker: default
  filter:
    attributes:
      type: %s
  subscriber:
    ref:
      apiVersion: serving.knative.dev/v1
      kind: Service
      name: %s
%s
---
`, name, typ, subscriber, delivery)
}
