package broker

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// TestSnapshotAndRequeue: Snapshot emits exactly the events some Trigger
// still owes, each with the Triggers owing it; it holds new deliveries while
// the caller's snapshot starts (an event accepted meanwhile reaches no
// subscriber until Snapshot returns, and is not emitted); Requeue into a
// fresh broker delivers each event to the Triggers that owed it and no
// other.
func TestSnapshotAndRequeue(t *testing.T) {
	ctx := context.Background()
	release := make(chan struct{})
	a := newSink(t, nil)
	b := newSink(t, func(e event.Event, _ int, w http.ResponseWriter) {
		if e.ID() == "held" {
			<-release // in flight for Trigger b across the snapshot
		}
		w.WriteHeader(http.StatusAccepted)
	})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	manifests := writeManifest(t, triggerYAML("ta", "test.a", "a", "")+triggerYAML("tb", "test.a", "b", ""))
	br, ingress := openBroker(t, Config{Files: []string{manifests}, Resolve: resolver(map[string]string{"a": a.srv.URL, "b": b.srv.URL})})

	for _, id := range []string{"e1", "e2", "e3"} {
		mustSend(t, ingress.URL, newEvent(id, "test.a"))
	}
	eventually(t, "e1-e3 delivered to both", func() bool {
		da, db := a.delivered(), b.delivered()
		return da["e1"]+da["e2"]+da["e3"] == 3 && db["e1"]+db["e2"]+db["e3"] == 3
	})
	mustSend(t, ingress.URL, newEvent("held", "test.a"))
	eventually(t, "held acknowledged for ta and in flight to b", func() bool {
		return ackFloor(t, br, "ta") == 4 && b.attempts("held") == 1
	})

	var emitted []PendingEvent
	stats, err := br.Snapshot(ctx, func(pe PendingEvent) error {
		emitted = append(emitted, pe)
		return nil
	}, func() error {
		// Accepted while the snapshot is taken: stored, but not delivered
		// until Snapshot returns.
		mustSend(t, ingress.URL, newEvent("during", "test.a"))
		time.Sleep(300 * time.Millisecond)
		if a.attempts("during")+b.attempts("during") != 0 {
			t.Error("an event accepted during the snapshot was delivered before it ended")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Events != len(emitted) || stats.Paused <= 0 {
		t.Errorf("stats %+v for %d emitted", stats, len(emitted))
	}
	// The reading consumer is gone (under interest retention it would
	// keep events for itself).
	st, err := br.js.Stream(ctx, br.stream)
	if err != nil {
		t.Fatal(err)
	}
	var consumers []string
	names := st.ConsumerNames(ctx)
	for n := range names.Name() {
		consumers = append(consumers, n)
	}
	slices.Sort(consumers)
	if !slices.Equal(consumers, []string{"trigger_ta", "trigger_tb"}) {
		t.Errorf("consumers after a snapshot: %v, want the Triggers' only", consumers)
	}
	got := map[string][]string{}
	for _, pe := range emitted {
		var e event.Event
		if err := json.Unmarshal(pe.Event, &e); err != nil {
			t.Fatalf("emitted event is not a CloudEvent: %v", err)
		}
		got[e.ID()] = pe.Triggers
	}
	if len(got) != 1 || !slices.Equal(got["held"], []string{"tb"}) {
		t.Fatalf("emitted %v, want only held, owed by tb", got)
	}
	eventually(t, "the event accepted during the snapshot delivered after it", func() bool {
		return a.delivered()["during"] == 1
	})
	close(release)
	eventually(t, "held acknowledged by b", func() bool { return b.delivered()["held"] == 1 })

	// Restore into a fresh broker: held goes to tb's subscriber only; an
	// event owed by every Trigger goes to both, once each.
	a2, b2 := newSink(t, nil), newSink(t, nil)
	br2, _ := openBroker(t, Config{Files: []string{manifests}, Resolve: resolver(map[string]string{"a": a2.srv.URL, "b": b2.srv.URL})})
	for _, pe := range emitted {
		if err := br2.Requeue(ctx, pe); err != nil {
			t.Fatal(err)
		}
	}
	both, _ := json.Marshal(newEvent("both", "test.a"))
	if err := br2.Requeue(ctx, PendingEvent{Triggers: []string{"ta", "tb", "removed-trigger"}, Event: both}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "requeued events delivered", func() bool {
		return b2.delivered()["held"] == 1 && a2.delivered()["both"] == 1 && b2.delivered()["both"] == 1
	})
	time.Sleep(200 * time.Millisecond)
	if n := a2.attempts("held"); n != 0 {
		t.Errorf("held, owed by tb only, reached ta's subscriber %d times", n)
	}
	if n := b2.attempts("both"); n != 1 {
		t.Errorf("both delivered %d times to tb, want once", n)
	}
	if err := br2.Requeue(ctx, PendingEvent{Triggers: []string{"ta"}, Event: json.RawMessage("not json")}); err == nil {
		t.Error("Requeue took an event that is not JSON")
	}
}

// ackFloor is the stream sequence up to which a Trigger acknowledged
// everything.
func ackFloor(t *testing.T, b *Broker, trigger string) uint64 {
	t.Helper()
	st, err := b.js.Stream(context.Background(), b.stream)
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.Consumer(context.Background(), "trigger_"+natsToken(trigger))
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.AckFloor.Stream
}

// BenchmarkSnapshotBacklog measures how long Snapshot holds deliveries per
// pending event: a backlog of 5000 events (published directly; no Trigger
// can deliver them, its subscriber answers 503) is captured b.N times.
func BenchmarkSnapshotBacklog(b *testing.B) {
	const backlog = 5000
	down := newSink(b, status(http.StatusServiceUnavailable))
	br, _ := openBroker(b, Config{
		Files:   []string{writeManifest(b, triggerYAML("t", "test.a", "sub", "  delivery:\n    retry: 1000\n    backoffDelay: PT10S"))},
		Resolve: resolver(map[string]string{"sub": down.srv.URL}),
	})
	ctx := context.Background()
	for i := range backlog {
		if err := br.Publish(ctx, newEvent("e"+strconv.Itoa(i), "test.a")); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var held time.Duration
	for range b.N {
		stats, err := br.Snapshot(ctx, func(PendingEvent) error { return nil }, func() error { return nil })
		if err != nil || stats.Events != backlog {
			b.Fatalf("snapshot: %+v, %v", stats, err)
		}
		held += stats.Paused
	}
	b.ReportMetric(float64(held.Microseconds())/float64(b.N)/backlog, "µs-held/event")
}

// TestDeadLettersExportImport: the dead letters of one broker, exported and
// imported into another, are listed there as they were and can be
// replayed; a record that is not a dead letter is refused.
func TestDeadLettersExportImport(t *testing.T) {
	ctx := context.Background()
	bad := newSink(t, status(http.StatusBadRequest)) // not retryable: dead-lettered at once
	manifests := writeManifest(t, triggerYAML("t", "test.a", "sub", fastRetry))
	br, ingress := openBroker(t, Config{Files: []string{manifests}, Resolve: resolver(map[string]string{"sub": bad.srv.URL})})
	mustSend(t, ingress.URL, newEvent("poison", "test.a"))
	eventually(t, "dead letter recorded", func() bool {
		dls, err := br.ListDeadLetters(ctx)
		return err == nil && len(dls) == 1
	})
	var raws []json.RawMessage
	n, err := br.ExportDeadLetters(ctx, func(r json.RawMessage) error { raws = append(raws, r); return nil })
	if err != nil || n != 1 || len(raws) != 1 {
		t.Fatalf("export: %d, %v", n, err)
	}

	good := newSink(t, nil)
	br2, _ := openBroker(t, Config{Files: []string{manifests}, Resolve: resolver(map[string]string{"sub": good.srv.URL})})
	if err := br2.ImportDeadLetter(ctx, raws[0]); err != nil {
		t.Fatal(err)
	}
	dls, err := br2.ListDeadLetters(ctx)
	if err != nil || len(dls) != 1 || dls[0].Event.ID() != "poison" || dls[0].Trigger != "t" || dls[0].Code != http.StatusBadRequest {
		t.Fatalf("imported dead letters: %+v, %v", dls, err)
	}
	if err := br2.Replay(ctx, dls[0].ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "imported dead letter replayed", func() bool { return good.delivered()["poison"] == 1 })
	if err := br2.ImportDeadLetter(ctx, json.RawMessage(`{"trigger":""}`)); err == nil {
		t.Error("a record without trigger and event was imported")
	}
}
