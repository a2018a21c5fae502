package broker

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"
)

// testAckWait is short so the tests below outlive it several times over;
// the lease reports progress every quarter of it.
const testAckWait = time.Second

// TestSlowDeliveryIsNotRedelivered: a subscriber that takes longer than the
// ack wait, and a retry whose backoff is longer than the ack wait, are not
// raced by a redelivery: the lease keeps the event in progress, so the
// subscriber sees exactly the attempts the Trigger's policy makes.
func TestSlowDeliveryIsNotRedelivered(t *testing.T) {
	slow := 5 * testAckWait / 2
	sub := newSink(t, func(e event.Event, attempt int, w http.ResponseWriter) {
		switch {
		case e.ID() == "slow":
			time.Sleep(slow)
			w.WriteHeader(http.StatusAccepted)
		case e.ID() == "retried" && attempt == 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	})
	// One retry after 2.5 ack waits: the backoff is slept under the lease.
	delivery := `  delivery:
    retry: 1
    backoffPolicy: linear
    backoffDelay: PT2.5S`
	b, ingress := openBroker(t, Config{
		Files:             []string{writeManifest(t, triggerYAML("t", "test.a", "sub", delivery))},
		Resolve:           resolver(map[string]string{"sub": sub.srv.URL}),
		SubscriberTimeout: 4 * slow, // the slow answer is not a timeout
		AckWait:           testAckWait,
	})
	if got := consumerInfo(t, b).Config.AckWait; got != testAckWait {
		t.Fatalf("consumer ack wait %v, want %v", got, testAckWait)
	}
	mustSend(t, ingress.URL, newEvent("slow", "test.a"))
	mustSend(t, ingress.URL, newEvent("retried", "test.a"))
	eventually(t, "both events delivered and acked", func() bool {
		d := sub.delivered()
		info := consumerInfo(t, b)
		return d["slow"] > 0 && d["retried"] > 0 && info.NumAckPending == 0 && info.NumPending == 0
	})
	// Shutdown waits for every delivery still running, so a redelivery's
	// 2xx cannot hide an original attempt that is yet to come.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := sub.attempts("slow"); n != 1 {
		t.Errorf("slow event delivered %d times, want 1", n)
	}
	if n := sub.attempts("retried"); n != 2 {
		t.Errorf("retried event delivered %d times, want 2 (the first attempt and one retry)", n)
	}
}

// TestCrashRedeliversInFlight: a broker that stops without acking the event
// it is delivering (as a kill leaves it) hands that event to the subscriber
// again once it is reopened on the same data dir, including a data dir whose
// consumers an older version created with a long ack wait: Open updates
// them, so the event comes back after the new ack wait, not the old one.
func TestCrashRedeliversInFlight(t *testing.T) {
	for _, tc := range []struct {
		name       string
		ackWaitWas time.Duration
	}{
		{"same ack wait", testAckWait},
		// What the previous version set (twice the 30 s subscriber
		// timeout): eventually gives up well before it would run out.
		{"data dir of an older version", time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hang := make(chan struct{})
			defer close(hang)
			var once sync.Once
			inFlight := make(chan struct{})
			sub := newSink(t, func(_ event.Event, attempt int, w http.ResponseWriter) {
				if attempt == 1 {
					once.Do(func() { close(inFlight) })
					<-hang // never answered: the broker dies first
					return
				}
				w.WriteHeader(http.StatusAccepted)
			})
			cfg := Config{
				DataDir: t.TempDir(),
				Files:   []string{writeManifest(t, triggerYAML("t", "test.a", "sub", fastRetry))},
				Resolve: resolver(map[string]string{"sub": sub.srv.URL}),
				AckWait: tc.ackWaitWas,
			}
			b, ingress := openBroker(t, cfg)
			mustSend(t, ingress.URL, newEvent("in-flight", "test.a"))
			<-inFlight
			crash(b)

			cfg.AckWait = testAckWait
			reopened := time.Now()
			b2, _ := openBroker(t, cfg)
			if got := consumerInfo(t, b2).Config.AckWait; got != testAckWait {
				t.Errorf("consumer ack wait after reopening %v, want %v (updated at Open)", got, testAckWait)
			}
			eventually(t, "in-flight event delivered after reopening", func() bool { return sub.delivered()["in-flight"] > 0 })
			t.Logf("in-flight event delivered again %v after reopening (ack wait %v, was %v)",
				time.Since(reopened).Round(time.Millisecond), testAckWait, tc.ackWaitWas)
		})
	}
}

// crash stops b as a kill would leave its store: deliveries in flight are
// dropped without ack, nak or drain, and NATS stops. (The store is closed
// cleanly; TestKillMidStream and cmd/dronetrack's TestKillUpMidStream kill
// real processes.) A later Shutdown does nothing.
func crash(b *Broker) {
	b.shutOnce.Do(func() {
		b.closing.Store(true)
		b.mu.Lock()
		b.stopped = true
		b.mu.Unlock()
		b.abandon()
		close(b.health.quit)
		b.inflight.Wait() // dispatchers gone: their leases send no more progress
		close(b.health.stop)
		<-b.health.done
		b.stopNATS()
	})
}

// consumerInfo is the first Trigger's JetStream consumer as the server sees it.
func consumerInfo(t *testing.T, b *Broker) *jetstream.ConsumerInfo {
	t.Helper()
	ctx := context.Background()
	st, err := b.js.Stream(ctx, b.stream)
	if err != nil {
		t.Fatalf("events stream: %v", err)
	}
	c, err := st.Consumer(ctx, b.triggers[0].name)
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	return info
}

// Config.MaxAckPending is the consumer's bound of unacked messages, by
// default MaxInFlight; an existing consumer takes a new value at Open.
func TestMaxAckPendingConfiguresConsumer(t *testing.T) {
	sub := newSink(t, status(http.StatusOK))
	cfg := Config{
		DataDir:     t.TempDir(),
		Files:       []string{writeManifest(t, triggerYAML("t", "test.a", "sub", fastRetry))},
		Resolve:     resolver(map[string]string{"sub": sub.srv.URL}),
		MaxInFlight: 32,
	}
	b, _ := openBroker(t, cfg)
	if got := consumerInfo(t, b).Config.MaxAckPending; got != 32 {
		t.Errorf("MaxAckPending %d with none set, want MaxInFlight's 32", got)
	}
	crash(b)
	cfg.MaxAckPending = 5
	b2, ingress := openBroker(t, cfg)
	if got := consumerInfo(t, b2).Config.MaxAckPending; got != 5 {
		t.Errorf("MaxAckPending %d after reopening, want 5", got)
	}
	for i := range 20 {
		mustSend(t, ingress.URL, newEvent(fmt.Sprintf("e%d", i), "test.a"))
	}
	eventually(t, "every event delivered under the lower bound", func() bool { return len(sub.delivered()) == 20 })
}
