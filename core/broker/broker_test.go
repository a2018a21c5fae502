package broker

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/problem"
)

const fastRetry = `  delivery:
    retry: 3
    backoffPolicy: exponential
    backoffDelay: PT0.001S
    deadLetterSink:
      ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: dead-letter}`

func TestRetryThenSuccess(t *testing.T) {
	sub := newSink(t, func(_ event.Event, attempt int, w http.ResponseWriter) {
		if attempt <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	b, ingress := openBroker(t, Config{
		Files:   []string{writeManifest(t, triggerYAML("t", "test.a", "sub", fastRetry))},
		Resolve: resolver(map[string]string{"sub": sub.srv.URL}),
	})
	mustSend(t, ingress.URL, newEvent("e1", "test.a"))
	eventually(t, "delivery after retries", func() bool { return sub.delivered()["e1"] == 1 })
	if got := sub.attempts("e1"); got != 3 {
		t.Errorf("attempts = %d, want 3 (two 503s, then 202)", got)
	}
	dls, err := b.ListDeadLetters(context.Background())
	if err != nil || len(dls) != 0 {
		t.Errorf("dead letters = %v, %v; want none", dls, err)
	}
}

func TestRetryExhaustionDeadLettersAndReplay(t *testing.T) {
	body := strings.Repeat("boom ", 300) // longer than Knative's 1024-byte cap
	sub := newSink(t, func(_ event.Event, _ int, w http.ResponseWriter) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(body))
	})
	dls := newSink(t, nil)
	b, ingress := openBroker(t, Config{
		Files:   []string{writeManifest(t, triggerYAML("t", "test.a", "sub", fastRetry))},
		Resolve: resolver(map[string]string{"sub": sub.srv.URL, "dead-letter": dls.srv.URL}),
	})
	ctx := context.Background()
	mustSend(t, ingress.URL, newEvent("e1", "test.a"))
	eventually(t, "dead-letter sink receives the event", func() bool { return len(dls.received()) == 1 })

	if got := sub.attempts("e1"); got != 4 {
		t.Errorf("subscriber attempts = %d, want 4 (1 + retry 3)", got)
	}
	got := dls.received()[0]
	wantExt := map[string]any{
		ExtErrorDest: sub.srv.URL,
		ExtErrorCode: "500",
		ExtErrorData: base64.StdEncoding.EncodeToString([]byte(body)[:1024]),
	}
	gotExt := map[string]any{}
	for k := range wantExt {
		gotExt[k] = got.Extensions()[k]
	}
	if diff := cmp.Diff(wantExt, gotExt); diff != "" {
		t.Errorf("dead-letter extensions (-want +got):\n%s", diff)
	}
	if got.ID() != "e1" || got.Type() != "test.a" {
		t.Errorf("dead letter is %s/%s, want the original e1/test.a", got.ID(), got.Type())
	}

	var list []DeadLetter
	eventually(t, "dead letter recorded", func() bool {
		list, _ = b.ListDeadLetters(ctx)
		return len(list) == 1
	})
	if dl := list[0]; dl.Trigger != "t" || dl.Attempts != 4 || dl.Code != 500 || !dl.SinkDelivered || dl.Event.ID() != "e1" {
		t.Errorf("dead letter = %+v, want trigger t, 4 attempts, code 500, sink delivered, event e1", dl)
	}

	// The subscriber is fixed; replay redelivers to the trigger and the
	// dead letter disappears.
	sub.setRespond(status(http.StatusOK))
	if err := b.Replay(ctx, list[0].ID); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	eventually(t, "replayed event delivered", func() bool { return sub.delivered()["e1"] == 1 })
	rec := sub.received()
	for _, k := range []string{ExtErrorDest, ExtErrorCode, ExtErrorData} {
		if v, ok := rec[len(rec)-1].Extensions()[k]; ok {
			t.Errorf("replayed event carries %s=%v, want the dead-letter extensions removed", k, v)
		}
	}
	if list, err := b.ListDeadLetters(ctx); err != nil || len(list) != 0 {
		t.Errorf("after replay dead letters = %v, %v; want none", list, err)
	}
	if err := b.Replay(ctx, list[0].ID); err == nil {
		t.Error("second Replay of the same id succeeded, want ErrNotFound")
	}
}

func TestNonRetryableGoesStraightToDeadLetter(t *testing.T) {
	sub := newSink(t, func(_ event.Event, _ int, w http.ResponseWriter) {
		http.Error(w, "bad drone report", http.StatusBadRequest)
	})
	b, ingress := openBroker(t, Config{
		Files:   []string{writeManifest(t, triggerYAML("t", "test.a", "sub", fastRetry))},
		Resolve: resolver(map[string]string{"sub": sub.srv.URL}), // dead-letter: ErrNoSink
	})
	mustSend(t, ingress.URL, newEvent("e1", "test.a"))
	var list []DeadLetter
	eventually(t, "dead letter recorded", func() bool {
		list, _ = b.ListDeadLetters(context.Background())
		return len(list) == 1
	})
	if got := sub.attempts("e1"); got != 1 {
		t.Errorf("attempts = %d, want 1: 400 is not retried", got)
	}
	dl := list[0]
	if dl.Code != 400 || dl.SinkDelivered || dl.Event.Extensions()[ExtErrorCode] != "400" {
		t.Errorf("dead letter = %+v, want code 400, no sink, knativeerrorcode 400", dl)
	}
}

func TestReplyIsRepublished(t *testing.T) {
	final := newSink(t, nil)
	first := newSink(t, func(e event.Event, _ int, w http.ResponseWriter) {
		reply := newEvent("reply-of-"+e.ID(), "test.b")
		req, _ := http.NewRequest(http.MethodPost, "http://unused", nil)
		if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&reply), req); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		for k, v := range req.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(http.StatusOK)
		body := reply.Data()
		_, _ = w.Write(body)
	})
	files := writeManifest(t, triggerYAML("first", "test.a", "first", fastRetry)+triggerYAML("final", "test.b", "final", fastRetry))
	_, ingress := openBroker(t, Config{
		Files:   []string{files},
		Resolve: resolver(map[string]string{"first": first.srv.URL, "final": final.srv.URL}),
	})
	mustSend(t, ingress.URL, newEvent("e1", "test.a"))
	eventually(t, "reply delivered to its trigger", func() bool { return final.delivered()["reply-of-e1"] == 1 })
	if got := final.attempts("e1"); got != 0 {
		t.Errorf("final trigger got the original event %d times, want 0", got)
	}
}

func TestAcceptedReplyIsNotRepublished(t *testing.T) {
	// 202 with a CloudEvent must not be routed (data-plane contract).
	final := newSink(t, nil)
	first := newSink(t, func(e event.Event, _ int, w http.ResponseWriter) {
		w.Header().Set("Ce-Id", "reply")
		w.Header().Set("Ce-Type", "test.b")
		w.Header().Set("Ce-Source", "/x")
		w.Header().Set("Ce-Specversion", "1.0")
		w.WriteHeader(http.StatusAccepted)
	})
	files := writeManifest(t, triggerYAML("first", "test.a", "first", fastRetry)+triggerYAML("final", "test.b", "final", fastRetry))
	_, ingress := openBroker(t, Config{
		Files:   []string{files},
		Resolve: resolver(map[string]string{"first": first.srv.URL, "final": final.srv.URL}),
	})
	mustSend(t, ingress.URL, newEvent("e1", "test.a"))
	// A marker event sent after proves the final trigger is drained.
	mustSend(t, ingress.URL, newEvent("marker", "test.b"))
	eventually(t, "original and marker delivered", func() bool {
		return first.delivered()["e1"] == 1 && final.delivered()["marker"] == 1
	})
	if got := final.attempts("reply"); got != 0 {
		t.Errorf("202 reply was routed %d times, want 0", got)
	}
}

func TestIngressRejects(t *testing.T) {
	b, ingress := openBroker(t, Config{Resolve: resolver(nil)})
	post := func(ct, body string, hdr map[string]string) int {
		req, _ := http.NewRequest(http.MethodPost, ingress.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	cases := []struct {
		name string
		got  int
		want int
	}{
		{"plain JSON, not an event", post("application/json", `{"lat":1}`, nil), 400},
		{"structured, no source", post("application/cloudevents+json", `{"specversion":"1.0","id":"1","type":"t"}`, nil), 400},
		{"binary, no type", post("application/json", `{}`, map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "1", "Ce-Source": "/s"}), 400},
		{"structured, valid", post("application/cloudevents+json", `{"specversion":"1.0","id":"1","type":"t","source":"/s"}`, nil), 202},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, tc.got, tc.want)
		}
	}
	// The 400 is RFC 9457 problem JSON (core/problem) naming the attribute.
	resp, err := http.Post(ingress.URL, "application/cloudevents+json", strings.NewReader(`{"specversion":"1.0","id":"1","type":"t"}`))
	if err != nil {
		t.Fatal(err)
	}
	var p problem.Details
	err = json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); err != nil || ct != problem.ContentType || p.Status != 400 ||
		len(p.Errors) != 1 || p.Errors[0].Field != "source" {
		t.Errorf("no source: Content-Type %q, problem %+v (decode err %v); want problem JSON naming field source", ct, p, err)
	}
	resp, err = http.Get(ingress.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d, want 405", resp.StatusCode)
	}
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, _ := send(ingress.URL, newEvent("late", "t")); code != http.StatusServiceUnavailable {
		t.Errorf("after Shutdown: status %d, want 503", code)
	}
}

// TestParallelSenders is the regression test for the sdk-go receive-handler
// hang: 32 senders in parallel, every event accepted and delivered.
func TestParallelSenders(t *testing.T) {
	sub := newSink(t, nil)
	_, ingress := openBroker(t, Config{
		Files:   []string{writeManifest(t, triggerYAML("t", "test.a", "sub", fastRetry))},
		Resolve: resolver(map[string]string{"sub": sub.srv.URL}),
	})
	const senders, each = 32, 50
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("s%d-%d", s, i)
				if code, err := send(ingress.URL, newEvent(id, "test.a")); err != nil || code != 202 {
					errs <- fmt.Errorf("%s: code %d err %v", id, code, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	eventually(t, "all events delivered", func() bool { return len(sub.delivered()) == senders*each })
}

// TestShutdownDrainsInFlight: deliveries in progress when Shutdown starts
// complete and are acked, so none is delivered again after reopening.
func TestShutdownDrainsInFlight(t *testing.T) {
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(4)
	sub := newSink(t, func(_ event.Event, _ int, w http.ResponseWriter) {
		started.Done()
		<-release
		w.WriteHeader(http.StatusAccepted)
	})
	dir := t.TempDir()
	cfg := Config{
		DataDir: dir,
		Files:   []string{writeManifest(t, triggerYAML("t", "test.a", "sub", fastRetry))},
		Resolve: resolver(map[string]string{"sub": sub.srv.URL}),
	}
	b, ingress := openBroker(t, cfg)
	for i := range 4 {
		mustSend(t, ingress.URL, newEvent(fmt.Sprint("e", i), "test.a"))
	}
	started.Wait()
	done := make(chan error)
	go func() { done <- b.Shutdown(context.Background()) }()
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	sub.setRespond(status(http.StatusAccepted))
	_, ingress2 := openBroker(t, cfg)
	mustSend(t, ingress2.URL, newEvent("marker", "test.a"))
	eventually(t, "marker delivered", func() bool { return sub.delivered()["marker"] == 1 })
	for i := range 4 {
		if n := sub.attempts(fmt.Sprint("e", i)); n != 1 {
			t.Errorf("e%d delivered %d times, want exactly 1 (drained before stop)", i, n)
		}
	}
}

func TestOpenRejectsUnresolvableSubscriber(t *testing.T) {
	_, err := Open(context.Background(), Config{
		DataDir: t.TempDir(),
		Files:   []string{writeManifest(t, triggerYAML("t", "test.a", "missing", ""))},
		Resolve: resolver(nil),
		Logger:  testLogger(t),
	})
	if err == nil || !strings.Contains(err.Error(), `trigger "t": subscriber`) {
		t.Fatalf("Open err = %v, want an unresolvable subscriber error", err)
	}
}

// TestReplyLoopEnds: a subscriber that answers every event with another
// event of the same type would loop forever; Knative's knativebrokerttl hop
// counter ends it, and subscribers never see the counter.
func TestReplyLoopEnds(t *testing.T) {
	sub := newSink(t, func(e event.Event, _ int, w http.ResponseWriter) {
		reply := newEvent(e.ID()+"+", "test.a")
		for k, v := range e.Extensions() { // a careless echo copies extensions
			reply.SetExtension(k, v)
		}
		req, _ := http.NewRequest(http.MethodPost, "http://unused", nil)
		_ = cehttp.WriteRequest(context.Background(), binding.ToMessage(&reply), req)
		for k, v := range req.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(reply.Data())
	})
	b, ingress := openBroker(t, Config{
		Files:   []string{writeManifest(t, triggerYAML("t", "test.a", "sub", fastRetry))},
		Resolve: resolver(map[string]string{"sub": sub.srv.URL}),
	})
	e := newEvent("loop", "test.a")
	e.SetExtension(ExtTTL, 3)
	mustSend(t, ingress.URL, e)
	ctx := context.Background()
	eventually(t, "trigger idle after the loop", func() bool {
		st, err := b.js.Stream(ctx, b.stream)
		if err != nil {
			return false
		}
		c, err := st.Consumer(ctx, b.triggers[0].name)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && len(sub.received()) > 0
	})
	var ids []string
	for _, got := range sub.received() {
		ids = append(ids, got.ID())
		if v, ok := got.Extensions()[ExtTTL]; ok {
			t.Errorf("subscriber saw %s=%v on %s, want it stripped", ExtTTL, v, got.ID())
		}
	}
	if diff := cmp.Diff([]string{"loop", "loop+", "loop++"}, ids); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
}

// TestShutdownDeadlineAbandonsAndRedelivers: a delivery still running when
// Shutdown's context ends is abandoned unacked and delivered after reopen.
func TestShutdownDeadlineAbandonsAndRedelivers(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	sub := newSink(t, func(_ event.Event, _ int, w http.ResponseWriter) {
		<-hang
	})
	cfg := Config{
		DataDir: t.TempDir(),
		Files:   []string{writeManifest(t, triggerYAML("t", "test.a", "sub", fastRetry))},
		Resolve: resolver(map[string]string{"sub": sub.srv.URL}),
	}
	b, ingress := openBroker(t, cfg)
	mustSend(t, ingress.URL, newEvent("stuck", "test.a"))
	eventually(t, "delivery started", func() bool { return sub.attempts("stuck") == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no time to drain
	if err := b.Shutdown(ctx); err == nil {
		t.Error("Shutdown with an expired context and a stuck delivery returned nil, want the context error")
	}
	sub.setRespond(status(http.StatusAccepted))
	cfg.AckWait = 200 * time.Millisecond // short ack wait: the stuck one comes back quickly
	openBroker(t, cfg)
	eventually(t, "abandoned event delivered after reopen", func() bool { return sub.delivered()["stuck"] == 1 })
}

func TestLargeEventAccepted(t *testing.T) {
	sub := newSink(t, nil)
	_, ingress := openBroker(t, Config{
		Files:   []string{writeManifest(t, triggerYAML("t", "test.a", "sub", fastRetry))},
		Resolve: resolver(map[string]string{"sub": sub.srv.URL}),
	})
	e := newEvent("big", "test.a")
	data := make([]byte, 3<<20) // binary, not valid UTF-8
	for i := range data {
		data[i] = byte(i * 7)
	}
	_ = e.SetData("application/octet-stream", data)
	mustSend(t, ingress.URL, e)
	eventually(t, "big event delivered", func() bool { return sub.delivered()["big"] == 1 })
	if got := sub.received()[0].Data(); !bytes.Equal(got, data) {
		t.Errorf("delivered %d data bytes differing from the %d sent", len(got), len(data))
	}
}
