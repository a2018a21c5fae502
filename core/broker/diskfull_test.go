package broker

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/dronetrack/dronetrack/core/testenv"
)

// TestDiskFullRecovers fills the disk under the broker's store while events
// are accepted and deliveries are in flight, then frees it. While it is full
// the ingress answers 503 with Retry-After (never hangs, never a false 202);
// once space returns the broker recovers by itself, without a restart:
// every accepted event is delivered, and every reply a subscriber gave (it
// replies once, as process does, and answers a repeat as a duplicate) is
// stored and delivered, including those given while the disk was full.
func TestDiskFullRecovers(t *testing.T) {
	mnt := testenv.SmallDisk(t, 32<<20)
	dir := filepath.Join(mnt, "broker")

	// sub replies to an event's first delivery only; gate holds deliveries
	// of "held-" events until it is closed.
	gate := make(chan struct{})
	var openGate sync.Once
	t.Cleanup(func() { openGate.Do(func() { close(gate) }) }) // on failure too
	sub := newSink(t, func(e event.Event, attempt int, w http.ResponseWriter) {
		if strings.HasPrefix(e.ID(), "held-") {
			<-gate
		}
		if attempt > 1 {
			w.WriteHeader(http.StatusAccepted) // a duplicate: no reply
			return
		}
		reply := newEvent("r-"+e.ID(), "test.reply")
		req, _ := http.NewRequest(http.MethodPost, "http://unused", nil)
		if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&reply), req); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for k, v := range req.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(reply.Data())
	})
	replies := newSink(t, nil)
	manifest := writeManifest(t, triggerYAML("events", "test.a", "sub", fastRetry)+triggerYAML("replies", "test.reply", "replies", fastRetry))
	cfg := Config{
		DataDir:           dir,
		Files:             []string{manifest},
		Resolve:           resolver(map[string]string{"sub": sub.srv.URL, "replies": replies.srv.URL}),
		SubscriberTimeout: 30 * time.Second, // the gate must not look like a timeout
	}
	b, srv := openBroker(t, cfg)

	var accepted []string
	for i := range 20 {
		id := fmt.Sprintf("before-%d", i)
		mustSend(t, srv.URL, newEvent(id, "test.a"))
		accepted = append(accepted, id)
	}
	for i := range 10 {
		id := fmt.Sprintf("held-%d", i)
		mustSend(t, srv.URL, newEvent(id, "test.a"))
		accepted = append(accepted, id)
	}
	eventually(t, "held events in flight at the subscriber", func() bool {
		for i := range 10 {
			if sub.attempts(fmt.Sprintf("held-%d", i)) == 0 {
				return false
			}
		}
		return true
	})

	freeDisk, err := testenv.FillDisk(mnt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = freeDisk() })
	free := func() {
		if err := freeDisk(); err != nil {
			t.Errorf("free the disk: %v", err)
		}
	}
	// Events that still fit in the store's last page are accepted; the
	// first write that does not fit turns the ingress to 503.
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatal("the ingress never answered 503 with the disk full")
		}
		id := fmt.Sprintf("full-%d", i)
		res := post(t, srv.URL, newEvent(id, "test.a"))
		if res.code == http.StatusAccepted {
			accepted = append(accepted, id)
			continue
		}
		if res.code != http.StatusServiceUnavailable || res.retryAfter == "" {
			t.Fatalf("send %s with the disk full: %d (Retry-After %q); want 202 or 503 with Retry-After", id, res.code, res.retryAfter)
		}
		t.Logf("first 503 after %d events with the disk full: %s", i, res.body)
		break
	}
	// From now on until space is freed the store is down: the ingress
	// answers 503 at once (the probe file cannot fit, so no restart).
	for i := range 5 {
		id := fmt.Sprintf("down-%d", i)
		res := post(t, srv.URL, newEvent(id, "test.a"))
		if res.code != http.StatusServiceUnavailable || res.retryAfter == "" || !strings.Contains(res.body, "cannot take writes") {
			t.Fatalf("send %s with the store down: %d (Retry-After %q) %s; want 503 saying the store cannot take writes", id, res.code, res.retryAfter, res.body)
		}
	}
	// The held deliveries answer now, with replies the store cannot take.
	openGate.Do(func() { close(gate) })
	eventually(t, "held deliveries answered", func() bool {
		d := sub.delivered()
		for i := range 10 {
			if d[fmt.Sprintf("held-%d", i)] == 0 {
				return false
			}
		}
		return true
	})

	free()
	// Recovery needs no restart of the broker: the ingress takes events again.
	for i := range 5 {
		id := fmt.Sprintf("after-%d", i)
		eventually(t, "the ingress accepts events again after space is freed", func() bool {
			return post(t, srv.URL, newEvent(id, "test.a")).code == http.StatusAccepted
		})
		accepted = append(accepted, id)
	}
	eventually(t, "every accepted event delivered and its reply stored and delivered", func() bool {
		d, r := sub.delivered(), replies.delivered()
		for _, id := range accepted {
			if d[id] == 0 || r["r-"+id] == 0 {
				return false
			}
		}
		return true
	})
	if dls, err := b.ListDeadLetters(context.Background()); err != nil || len(dls) != 0 {
		t.Errorf("dead letters after recovery: %d, %v; want none", len(dls), err)
	}

	// Nothing corrupt: the store opens again and takes events.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown after recovery: %v", err)
	}
	_, srv2 := openBroker(t, cfg)
	mustSend(t, srv2.URL, newEvent("reopened", "test.a"))
	eventually(t, "event delivered after reopening the store", func() bool {
		return replies.delivered()["r-reopened"] > 0
	})
	t.Logf("%d events accepted and delivered, each reply stored once the disk had room", len(accepted))
}

type postResult struct {
	code       int
	retryAfter string
	body       string
}

// post sends an event in binary mode and returns the answer.
func post(t *testing.T, target string, e event.Event) postResult {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), req); err != nil {
		t.Fatal(err)
	}
	resp, err := sendClient.Do(req)
	if err != nil {
		t.Fatalf("send %s: %v", e.ID(), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return postResult{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: string(body)}
}

// TestStoreRestartResumes drives the recovery path alone (no disk to fill,
// so it runs anywhere): once the store is marked down the watch restarts
// JetStream even though the server reports healthy again, the ingress
// answers 503 until then, and the Triggers consume again afterwards,
// including the delivery that was in flight across the restart.
func TestStoreRestartResumes(t *testing.T) {
	gate := make(chan struct{})
	var openGate sync.Once
	t.Cleanup(func() { openGate.Do(func() { close(gate) }) })
	sub := newSink(t, func(e event.Event, _ int, w http.ResponseWriter) {
		if e.ID() == "in-flight" {
			<-gate
		}
		w.WriteHeader(http.StatusAccepted)
	})
	manifest := writeManifest(t, triggerYAML("events", "test.a", "sub", fastRetry))
	b, srv := openBroker(t, Config{
		Files:             []string{manifest},
		Resolve:           resolver(map[string]string{"sub": sub.srv.URL}),
		SubscriberTimeout: 30 * time.Second,
	})
	mustSend(t, srv.URL, newEvent("in-flight", "test.a"))
	eventually(t, "delivery in flight", func() bool { return sub.attempts("in-flight") > 0 })

	// Marked down, the ingress refuses at once (unless the watch has
	// already restarted the store: then it is up again, and 202 is right).
	b.health.markDown(fmt.Errorf("%w: test", errStoreDown))
	if res := post(t, srv.URL, newEvent("refused", "test.a")); res.code != http.StatusServiceUnavailable && b.health.err() != nil {
		t.Fatalf("send with the store marked down: %d %s; want 503", res.code, res.body)
	}
	eventually(t, "store restarted and back", func() bool { return b.health.err() == nil })
	openGate.Do(func() { close(gate) })
	for i := range 20 {
		mustSend(t, srv.URL, newEvent(fmt.Sprintf("after-%d", i), "test.a"))
	}
	eventually(t, "events after the restart delivered", func() bool {
		d := sub.delivered()
		for i := range 20 {
			if d[fmt.Sprintf("after-%d", i)] == 0 {
				return false
			}
		}
		return d["in-flight"] > 0
	})
}
