package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// A Trigger that filters on type is handed only events of that type by
// JetStream (events are stored under their type), while a Trigger without a
// type filter, and the rest of a filter (here an extension), still see and
// select from everything.
func TestTypeFilterIsBySubject(t *testing.T) {
	a, all := newSink(t, nil), newSink(t, nil)
	b, ingress := openBroker(t, Config{
		Files: []string{writeManifest(t, triggerYAML("only-a", "test.a", "a", fastRetry)+`apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: all-tenant-x}
spec:
  broker: default
  filter: {attributes: {tenantid: x}}
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: all}}
`)},
		Resolve: resolver(map[string]string{"a": a.srv.URL, "all": all.srv.URL}),
	})
	ctx := context.Background()
	for i, typ := range []string{"test.a", "test.b", "test.b", "test.c", "test.a"} {
		e := newEvent(string(rune('1'+i)), typ)
		e.SetExtension("tenantid", "x")
		mustSend(t, ingress.URL, e)
	}
	eventually(t, "deliveries", func() bool { return len(a.delivered()) == 2 && len(all.delivered()) == 5 })
	eventually(t, "drained", func() bool { n, err := b.Pending(ctx); return err == nil && n == 0 })
	for name, want := range map[string]uint64{"only-a": 2, "all-tenant-x": 5} {
		c, err := b.js.Consumer(ctx, b.stream, "trigger_"+name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Delivered.Consumer != want {
			t.Errorf("trigger %s was handed %d events, want %d (only those its type filter selects)", name, info.Delivered.Consumer, want)
		}
	}
}

// Events an older version stored under the single events subject (before
// events were stored by type) are still delivered after an upgrade: a data
// dir may hold undelivered ones from before a crash.
func TestEventsOnLegacySubjectDelivered(t *testing.T) {
	a := newSink(t, nil)
	dir := t.TempDir()
	cfg := Config{
		DataDir: dir,
		Files:   []string{writeManifest(t, triggerYAML("only-a", "test.a", "a", fastRetry))},
		Resolve: resolver(map[string]string{"a": a.srv.URL}),
	}
	b, _ := openBroker(t, cfg)
	ctx := context.Background()
	for _, id := range []string{"old1", "old2"} {
		raw, err := encodeEvent(newEvent(id, "test.a"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.js.Publish(ctx, b.subject, raw); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "legacy events delivered", func() bool { return a.delivered()["old1"] == 1 && a.delivered()["old2"] == 1 })
}

// The ingress takes events from publishers in the same process directly
// (core/publish.EventSink): stored and delivered as if sent over HTTP, the
// caller's event left unchanged, invalid events refused, and nothing
// accepted once the broker shuts down.
func TestIngressPublishEvent(t *testing.T) {
	a := newSink(t, nil)
	b, _ := openBroker(t, Config{
		Files:   []string{writeManifest(t, triggerYAML("only-a", "test.a", "a", fastRetry))},
		Resolve: resolver(map[string]string{"a": a.srv.URL}),
	})
	sink, ok := b.Ingress().(interface {
		PublishEvent(context.Context, event.Event) error
	})
	if !ok {
		t.Fatal("the ingress takes no events directly")
	}
	ctx := context.Background()
	e := newEvent("direct", "test.a")
	if err := sink.PublishEvent(ctx, e); err != nil {
		t.Fatalf("PublishEvent: %v", err)
	}
	if _, ok := e.Extensions()[ExtTTL]; ok {
		t.Error("PublishEvent changed the caller's event")
	}
	eventually(t, "delivery", func() bool { return a.delivered()["direct"] == 1 })
	if _, ok := a.received()[0].Extensions()[ExtTTL]; ok {
		t.Error("hop counter delivered to the subscriber")
	}
	bad := newEvent("", "test.a")
	if err := sink.PublishEvent(ctx, bad); err == nil {
		t.Error("an event without id was accepted")
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if err := sink.PublishEvent(ctx, newEvent("late", "test.a")); !errors.Is(err, ErrUnavailable) {
		t.Errorf("after Shutdown: %v, want ErrUnavailable", err)
	}
}

// An event of a type no Trigger consumes is not kept: with interest
// retention and a subject per type nobody is interested in it, and the
// stream must not fill up with such events until MaxAge.
func TestUnroutedTypeNotKept(t *testing.T) {
	a := newSink(t, nil)
	b, ingress := openBroker(t, Config{
		Files:   []string{writeManifest(t, triggerYAML("only-a", "test.a", "a", fastRetry))},
		Resolve: resolver(map[string]string{"a": a.srv.URL}),
	})
	mustSend(t, ingress.URL, newEvent("nobody", "test.unrouted"))
	mustSend(t, ingress.URL, newEvent("a1", "test.a"))
	eventually(t, "delivery", func() bool { return a.delivered()["a1"] == 1 })
	ctx := context.Background()
	eventually(t, "stream empty", func() bool {
		st, err := b.js.Stream(ctx, b.stream)
		if err != nil {
			return false
		}
		info, err := st.Info(ctx)
		return err == nil && info.State.Msgs == 0
	})
}
