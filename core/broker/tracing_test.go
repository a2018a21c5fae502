package broker

import (
	"context"
	"net/http"
	"testing"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-cmp/cmp"
)

// The distributed tracing extension passes through the broker unchanged,
// to the subscriber and, for a reply, as the subscriber set it: like
// Knative, the broker neither copies the original's extensions onto a
// reply nor invents them (process stamps its own span on state.updated).
func TestTraceExtensionsPassThrough(t *testing.T) {
	const (
		parent      = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		replyParent = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01"
	)
	final := newSink(t, nil)
	first := newSink(t, func(e event.Event, _ int, w http.ResponseWriter) {
		reply := newEvent("reply-of-"+e.ID(), "test.b")
		if e.ID() == "with-reply-trace" {
			reply.SetExtension("traceparent", replyParent)
		}
		req, _ := http.NewRequest(http.MethodPost, "http://unused", nil)
		if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&reply), req); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		for k, v := range req.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(reply.Data())
	})
	files := writeManifest(t, triggerYAML("first", "test.a", "first", fastRetry)+triggerYAML("final", "test.b", "final", fastRetry))
	_, ingress := openBroker(t, Config{
		Files:   []string{files},
		Resolve: resolver(map[string]string{"first": first.srv.URL, "final": final.srv.URL}),
	})
	for _, id := range []string{"with-reply-trace", "without-reply-trace"} {
		e := newEvent(id, "test.a")
		e.SetExtension("traceparent", parent)
		e.SetExtension("tracestate", "dt=1,other=x")
		mustSend(t, ingress.URL, e)
	}
	eventually(t, "both replies delivered", func() bool {
		d := final.delivered()
		return d["reply-of-with-reply-trace"] == 1 && d["reply-of-without-reply-trace"] == 1
	})

	got := map[string][2]any{}
	for _, e := range append(first.received(), final.received()...) {
		ext := e.Extensions()
		got[e.ID()] = [2]any{ext["traceparent"], ext["tracestate"]}
	}
	want := map[string][2]any{
		"with-reply-trace":             {parent, "dt=1,other=x"},
		"without-reply-trace":          {parent, "dt=1,other=x"},
		"reply-of-with-reply-trace":    {replyParent, nil},
		"reply-of-without-reply-trace": {nil, nil},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("trace extensions as delivered (-want +got):\n%s", diff)
	}
}
