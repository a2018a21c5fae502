package publish_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
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

// A delivery handed over in process carries the event itself and takes
// the reply event back; a handler reached over a socket, or a request the
// handler sends on with the delivery's context to another address, reads
// and writes the HTTP message instead.
func TestDeliveryInProcessAndOverHTTP(t *testing.T) {
	e, err := events.NewTelemetryReceived(telemetryEvent(t))
	if err != nil {
		t.Fatal(err)
	}
	reply := event.New()
	reply.SetID("r1")
	reply.SetType("test.reply")
	reply.SetSource("/test")
	var sawID string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, err := publish.EventFromRequest(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sawID = got.ID()
		if err := publish.WriteReply(w, r, &reply, http.StatusOK); err != nil {
			t.Errorf("WriteReply: %v", err)
		}
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	// call sends e to target as a delivery made for path.
	call := func(target, path string) (*http.Response, *publish.Delivery) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, target, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), req); err != nil {
			t.Fatal(err)
		}
		ctx, d := publish.WithDelivery(req.Context(), &e, req.URL.Host, path)
		resp, err := (&http.Client{Transport: publish.LocalTransport{}}).Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		return resp, d
	}

	// Over the socket: the reply is in the response, not in the slot.
	resp, d := call(srv.URL+"/", "/")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || sawID != e.ID() || resp.Header.Get("Ce-Id") != "r1" || d.Reply() != nil {
		t.Errorf("over HTTP: status %d, saw %q, reply header %q, slot %v", resp.StatusCode, sawID, resp.Header.Get("Ce-Id"), d.Reply())
	}

	// In process: the reply comes back in the slot.
	sawID = ""
	publish.RegisterLocal(addr, h)
	defer publish.UnregisterLocal(addr)
	resp, d = call(srv.URL+"/", "/")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || sawID != e.ID() || d.Reply() == nil || d.Reply().ID() != "r1" {
		t.Errorf("in process: status %d, saw %q, slot %v", resp.StatusCode, sawID, d.Reply())
	}

	// A URL without a path is delivered to "/", as a server sees it.
	sawID = ""
	resp, d = call(srv.URL, "")
	resp.Body.Close()
	if sawID != e.ID() || d.Reply() == nil {
		t.Errorf("in process, URL without a path: saw %q, slot %v", sawID, d.Reply())
	}

	// A request the handler would send on with the delivery's context, to
	// another address, is not the delivery: it reads the HTTP message and
	// answers with it.
	resp, d = call(srv.URL+"/other", "/")
	resp.Body.Close()
	if resp.Header.Get("Ce-Id") != "r1" || d.Reply() != nil {
		t.Errorf("request to another path took the delivery: reply header %q, slot %v", resp.Header.Get("Ce-Id"), d.Reply())
	}
}

// A URL without a path reaches a ServeMux registered as local in one
// request, at "/", as over a socket: not a 307 to "/" that the client then
// follows with a second request.
func TestLocalURLWithoutPathNotRedirected(t *testing.T) {
	const addr = "no-path.invalid:1"
	calls := 0
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{$}", func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.WriteHeader(http.StatusAccepted)
	})
	publish.RegisterLocal(addr, mux)
	defer publish.UnregisterLocal(addr)
	client := &http.Client{
		Transport:     publish.LocalTransport{},
		CheckRedirect: func(*http.Request, []*http.Request) error { return errors.New("redirected") },
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+addr, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || calls != 1 {
		t.Errorf("status %d after %d calls, want 202 after 1", resp.StatusCode, calls)
	}
}

// An unencoded delivery (WithUnencodedDelivery) reaches a handler
// registered with RegisterLocalEvents without the event in its HTTP message,
// and the handler still gets the event and returns its reply. Any other
// receiver reads the HTTP message: a handler registered with RegisterLocal,
// or the same handler over a socket (not registered, as a function cut by a
// fault test or in a cluster), gets the event in binary content mode, as
// WithDelivery's requests carry it, and the caller's request is not changed.
func TestUnencodedDeliveryInProcessAndOverHTTP(t *testing.T) {
	e, err := events.NewTelemetryReceived(telemetryEvent(t))
	if err != nil {
		t.Fatal(err)
	}
	reply := event.New()
	reply.SetID("r1")
	reply.SetType("test.reply")
	reply.SetSource("/test")
	var sawID, sawType, sawHeader string
	var sawData []byte
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawHeader, sawType = r.Header.Get("Ce-Id"), publish.DeliveredType(r)
		got, err := publish.EventFromRequest(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sawID, sawData = got.ID(), got.Data()
		if err := publish.WriteReply(w, r, &reply, http.StatusOK); err != nil {
			t.Errorf("WriteReply: %v", err)
		}
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	call := func(target, path string) (*http.Response, *publish.Delivery, *http.Request) {
		t.Helper()
		sawID, sawType, sawHeader, sawData = "", "", "", nil
		req, err := http.NewRequest(http.MethodPost, target, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Prefer", "reply")
		ctx, d := publish.WithUnencodedDelivery(req.Context(), &e, req.URL.Host, path)
		req = req.WithContext(ctx)
		resp, err := (&http.Client{Transport: publish.LocalTransport{}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp, d, req
	}
	unchanged := func(where string, req *http.Request) {
		t.Helper()
		if len(req.Header) != 1 || req.Body != nil {
			t.Errorf("%s: the caller's request was changed: headers %v, body %v", where, req.Header, req.Body)
		}
	}

	// Over the socket: the HTTP message carries the event, the reply
	// comes back in the response.
	resp, d, req := call(srv.URL+"/", "/")
	if resp.StatusCode != http.StatusOK || sawID != e.ID() || sawHeader != e.ID() || sawType != e.Type() ||
		string(sawData) != string(e.Data()) || resp.Header.Get("Ce-Id") != "r1" || d.Reply() != nil {
		t.Errorf("over HTTP: status %d, saw %q (header %q, type %q), reply header %q, slot %v",
			resp.StatusCode, sawID, sawHeader, sawType, resp.Header.Get("Ce-Id"), d.Reply())
	}
	unchanged("over HTTP", req)

	// In process, to a handler that reads HTTP messages: encoded, and the
	// reply comes back in the slot.
	publish.RegisterLocal(addr, h)
	defer publish.UnregisterLocal(addr)
	resp, d, req = call(srv.URL+"/", "/")
	if resp.StatusCode != http.StatusOK || sawID != e.ID() || sawHeader != e.ID() || d.Reply() == nil || d.Reply().ID() != "r1" {
		t.Errorf("in process (RegisterLocal): status %d, saw %q (header %q), slot %v", resp.StatusCode, sawID, sawHeader, d.Reply())
	}
	unchanged("in process (RegisterLocal)", req)

	// In process, to a handler that takes the event: no HTTP encoding.
	publish.RegisterLocalEvents(addr, h)
	resp, d, _ = call(srv.URL, "")
	if resp.StatusCode != http.StatusOK || sawID != e.ID() || sawHeader != "" || sawType != e.Type() || d.Reply() == nil {
		t.Errorf("in process (RegisterLocalEvents): status %d, saw %q (header %q, type %q), slot %v",
			resp.StatusCode, sawID, sawHeader, sawType, d.Reply())
	}

	// A request sent with the delivery's context to another path is not the
	// delivery: it is neither given the event nor encoded with it.
	resp, d, _ = call(srv.URL+"/other", "/")
	if resp.StatusCode != http.StatusBadRequest || sawHeader != "" || d.Reply() != nil {
		t.Errorf("request to another path: status %d, header %q, slot %v; want 400 (no event)", resp.StatusCode, sawHeader, d.Reply())
	}
}

// A handler called in process answers the client as over a socket, as
// httptest.ResponseRecorder records it: status, headers as at WriteHeader
// (later changes are not sent), body, a sniffed Content-Type, 200 for a
// handler that writes nothing.
func TestLocalResponseAsOverSocket(t *testing.T) {
	const addr = "local-response.invalid:1"
	handlers := map[string]http.HandlerFunc{
		"/status": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) },
		"/headers": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Ce-Id", "r1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusAccepted)
			w.Header().Set("Ce-Id", "changed")
			_, _ = w.Write([]byte(`{"a":`))
			_, _ = w.Write([]byte(`1}`))
		},
		"/sniffed": func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>hi</html>")) },
		"/nothing": func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-Set", "1") },
	}
	mux := http.NewServeMux()
	for p, h := range handlers {
		mux.Handle(p, h)
	}
	publish.RegisterLocal(addr, mux)
	defer publish.UnregisterLocal(addr)
	for _, tc := range []struct {
		path, header, value, body string
		code                      int
	}{
		{"/status", "Ce-Id", "", "", http.StatusNoContent},
		{"/headers", "Ce-Id", "r1", `{"a":1}`, http.StatusAccepted},
		{"/headers", "Content-Type", "application/json", `{"a":1}`, http.StatusAccepted},
		{"/sniffed", "Content-Type", "text/html; charset=utf-8", "<html>hi</html>", http.StatusOK},
		{"/nothing", "X-Set", "1", "", http.StatusOK},
	} {
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Transport: publish.LocalTransport{}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || resp.Header.Get(tc.header) != tc.value || string(b) != tc.body ||
			resp.ContentLength != int64(len(tc.body)) || resp.Status != strconv.Itoa(tc.code)+" "+http.StatusText(tc.code) {
			t.Errorf("%s: %s, %s %q, body %q (length %d); want %d, %q, %q",
				tc.path, resp.Status, tc.header, resp.Header.Get(tc.header), b, resp.ContentLength, tc.code, tc.value, tc.body)
		}
	}
}

// Hold calls what the delivery's sender set with OnHold, once however often
// the handler holds, through contexts derived from the request's, and
// answers with what the sender answered the first time; a context without
// a delivery, or a delivery without OnHold, is left alone and may be held.
func TestHold(t *testing.T) {
	e := event.New()
	for _, freed := range []bool{true, false} {
		ctx, d := publish.WithUnencodedDelivery(context.Background(), &e, "h.local:1", "/")
		held := 0
		d.OnHold(func() bool { held++; return freed && held == 1 })
		derived, cancel := context.WithTimeout(ctx, time.Minute)
		if got := publish.Hold(derived); got != freed {
			t.Errorf("sender answering %v: Hold = %v", freed, got)
		}
		if got := publish.Hold(ctx); got != freed {
			t.Errorf("sender answering %v: second Hold = %v, want the first answer", freed, got)
		}
		cancel()
		if held != 1 {
			t.Errorf("OnHold called %d times, want once", held)
		}
	}
	if !publish.Hold(context.Background()) {
		t.Error("Hold without a delivery = false, want true (nothing to refuse it)")
	}
	other, _ := publish.WithDelivery(context.Background(), &e, "h.local:1", "/")
	if !publish.Hold(other) {
		t.Error("Hold of a delivery whose sender did not ask = false, want true")
	}
}
