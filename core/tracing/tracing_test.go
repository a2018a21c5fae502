package tracing_test

import (
	"net/http"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/tracing"
)

// The W3C Trace Context example value.
const example = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{example, true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future", true}, // higher version: extra fields allowed
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", false}, // version 00 is exactly 55
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},       // version ff forbidden
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},       // zero trace id
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},       // zero span id
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false},       // upper case
		{"00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01", false},       // misplaced dash
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x", false},       // bad flags
		{"", false},
	} {
		c, ok := tracing.Parse(tc.in)
		if ok != tc.ok {
			t.Errorf("Parse(%q) ok = %v, want %v", tc.in, ok, tc.ok)
		}
		if ok && tc.in[:2] == "00" && c.TraceParent() != tc.in {
			t.Errorf("Parse(%q).TraceParent() = %q, want the input back", tc.in, c.TraceParent())
		}
	}
}

func TestFromHeaderContinuesOrStarts(t *testing.T) {
	h := http.Header{}
	h.Set("traceparent", example)
	h.Add("tracestate", "vendor=a")
	h.Add("tracestate", "other=b")
	c := tracing.FromHeader(h)
	want := []string{"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "vendor=a,other=b"}
	if diff := cmp.Diff(want, []string{c.TraceIDString(), c.ParentIDString(), c.State}); diff != "" {
		t.Errorf("continued trace (-want +got):\n%s", diff)
	}
	if c.SpanIDString() == "00f067aa0ba902b7" || !c.Valid() {
		t.Errorf("child span id %s: want a fresh valid id", c.SpanIDString())
	}

	h.Set("traceparent", "garbage")
	n := tracing.FromHeader(h)
	if !n.Valid() || n.TraceIDString() == c.TraceIDString() || n.ParentIDString() != "" || n.State != "" {
		t.Errorf("invalid header: got %+v, want a new root trace without state", n)
	}
}

func TestEventRoundTrip(t *testing.T) {
	sender := tracing.New()
	sender.State = "dt=1"
	e := event.New()
	sender.Inject(&e)
	if got := e.Extensions()["traceparent"]; got != sender.TraceParent() {
		t.Fatalf("traceparent extension = %v, want %s", got, sender.TraceParent())
	}
	recv, ok := tracing.FromEvent(e)
	if !ok {
		t.Fatal("FromEvent: no trace context on an injected event")
	}
	if diff := cmp.Diff([]string{sender.TraceIDString(), sender.SpanIDString(), "dt=1"},
		[]string{recv.TraceIDString(), recv.ParentIDString(), recv.State}); diff != "" {
		t.Errorf("receiver span (-want +got):\n%s", diff)
	}

	bare := event.New()
	if c, ok := tracing.FromEvent(bare); ok || !c.Valid() {
		t.Errorf("FromEvent(no extension) = %+v, %v; want a new trace and false", c, ok)
	}
	tracing.Context{}.Inject(&e)
	if _, has := e.Extensions()["traceparent"]; has {
		t.Error("Inject of the zero Context left a traceparent")
	}
}

func TestLogAttrs(t *testing.T) {
	root := tracing.New()
	if n := len(root.LogAttrs()); n != 4 {
		t.Errorf("root LogAttrs has %d items, want trace_id and span_id pairs", n)
	}
	if n := len(root.Child().LogAttrs()); n != 6 {
		t.Errorf("child LogAttrs has %d items, want parent_span_id too", n)
	}
	if tracing.FromContext(t.Context()).Valid() {
		t.Error("FromContext of an empty context is valid")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(example)
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := tracing.Parse(s)
		if ok {
			if back, ok2 := tracing.Parse(c.TraceParent()); !ok2 || back != c {
				t.Fatalf("Parse(%q) = %+v does not round-trip", s, c)
			}
		}
	})
}
