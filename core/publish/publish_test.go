package publish_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/publish"
	"github.com/dronetrack/dronetrack/events"
)

func telemetryEvent(t *testing.T) events.TelemetryReceived {
	t.Helper()
	return events.TelemetryReceived{
		TenantID: "t1", DroneID: "d1",
		ReceivedAt: time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC),
		Reports:    []events.Report{{TS: time.Date(2026, 11, 29, 3, 59, 59, 0, time.UTC), Lat: 52.5, Lon: 13.4}},
	}
}

// sink records what it received, decoded with sdk-go's HTTP binding the way
// our consumers decode.
type sink struct {
	mu      sync.Mutex
	status  int
	headers []http.Header
	got     []events.TelemetryReceived
	errs    []error
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.headers = append(s.headers, r.Header.Clone())
	e, err := cehttp.NewEventFromHTTPRequest(r)
	if err != nil {
		s.errs = append(s.errs, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	d, err := events.Decode[events.TelemetryReceived](*e, events.TypeTelemetryReceived)
	if err != nil {
		s.errs = append(s.errs, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.got = append(s.got, d)
	status := s.status
	if status == 0 {
		status = http.StatusAccepted
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte("broker says hi"))
}

func TestPublishBinaryMode(t *testing.T) {
	s := &sink{}
	srv := httptest.NewServer(s)
	defer srv.Close()

	p, err := publish.New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	data := telemetryEvent(t)
	e, err := events.NewTelemetryReceived(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(context.Background(), e); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	if len(s.errs) > 0 {
		t.Fatalf("sink could not decode: %v", s.errs)
	}
	if diff := cmp.Diff([]events.TelemetryReceived{data}, s.got); diff != "" {
		t.Errorf("sink got (-want +got):\n%s", diff)
	}
	h := s.headers[0]
	wantHeaders := map[string]string{
		"Ce-Specversion":  "1.0",
		"Ce-Id":           e.ID(),
		"Ce-Type":         events.TypeTelemetryReceived,
		"Ce-Source":       events.SourceIngest,
		"Ce-Subject":      "d1",
		"Ce-Tenantid":     "t1",
		"Ce-Partitionkey": "d1",
		"Content-Type":    "application/json",
	}
	gotHeaders := map[string]string{}
	for k := range wantHeaders {
		gotHeaders[k] = h.Get(k)
	}
	if diff := cmp.Diff(wantHeaders, gotHeaders); diff != "" {
		t.Errorf("binary-mode headers (-want +got):\n%s", diff)
	}
	if strings.HasPrefix(h.Get("Content-Type"), "application/cloudevents") {
		t.Errorf("structured mode used: Content-Type %q", h.Get("Content-Type"))
	}
}

func TestPublishNon2xxIsUnavailable(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusInternalServerError, http.StatusServiceUnavailable} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			s := &sink{status: status}
			srv := httptest.NewServer(s)
			defer srv.Close()
			p, _ := publish.New(srv.URL, nil)
			e, _ := events.NewTelemetryReceived(telemetryEvent(t))

			err := p.Publish(context.Background(), e)
			if !errors.Is(err, publish.ErrUnavailable) {
				t.Fatalf("Publish error = %v, want ErrUnavailable", err)
			}
			var se *publish.StatusError
			if !errors.As(err, &se) || se.Status != status {
				t.Errorf("Publish error = %v, want StatusError with status %d", err, status)
			}
		})
	}
}

func TestPublishSinkDownIsUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more

	p, _ := publish.New(url, nil)
	e, _ := events.NewTelemetryReceived(telemetryEvent(t))
	if err := p.Publish(context.Background(), e); !errors.Is(err, publish.ErrUnavailable) {
		t.Fatalf("Publish error = %v, want ErrUnavailable", err)
	}
}

func TestPublishCanceledIsUnavailable(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)

	p, _ := publish.New(srv.URL, nil)
	e, _ := events.NewTelemetryReceived(telemetryEvent(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Publish(ctx, e); !errors.Is(err, publish.ErrUnavailable) {
		t.Fatalf("Publish error = %v, want ErrUnavailable", err)
	}
}

func TestPublishInvalidEventIsNotUnavailable(t *testing.T) {
	s := &sink{}
	srv := httptest.NewServer(s)
	defer srv.Close()
	p, _ := publish.New(srv.URL, nil)
	e, _ := events.NewTelemetryReceived(telemetryEvent(t))
	e.SetType("") // a required attribute

	err := p.Publish(context.Background(), e)
	if err == nil || errors.Is(err, publish.ErrUnavailable) {
		t.Fatalf("Publish error = %v, want a non-retryable error", err)
	}
	if len(s.headers) != 0 {
		t.Errorf("sink received %d requests for an invalid event, want 0", len(s.headers))
	}
}

func TestNewRejectsBadSink(t *testing.T) {
	for _, u := range []string{"", "broker", "ftp://x/", "http://", "://x"} {
		if _, err := publish.New(u, nil); err == nil {
			t.Errorf("New(%q) = nil error, want one", u)
		}
	}
}
