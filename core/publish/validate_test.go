package publish

import (
	"errors"
	"net/url"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// TestValidateAgreesWithSDK: Validate accepts exactly the events sdk-go's
// Validate accepts, and reports sdk-go's error for the others.
func TestValidateAgreesWithSDK(t *testing.T) {
	str := func(s string) *string { return &s }
	cases := map[string]func(e *event.Event){
		"plain":           func(e *event.Event) {},
		"absolute source": func(e *event.Event) { e.SetSource("https://example.test/x") },
		"blank id":        func(e *event.Event) { e.Context.(*event.EventContextV1).ID = "  " },
		"empty type":      func(e *event.Event) { e.Context.(*event.EventContextV1).Type = "" },
		"empty source":    func(e *event.Event) { e.Context.(*event.EventContextV1).Source = types.URIRef{} },
		"query-only source": func(e *event.Event) {
			e.Context.(*event.EventContextV1).Source = types.URIRef{URL: url.URL{RawQuery: "q=1"}}
		},
		"blank subject":       func(e *event.Event) { e.Context.(*event.EventContextV1).Subject = str(" ") },
		"subject":             func(e *event.Event) { e.SetSubject("drone-1") },
		"content type params": func(e *event.Event) { e.SetDataContentType("application/json; charset=utf-8") },
		"bad content type":    func(e *event.Event) { e.Context.(*event.EventContextV1).DataContentType = str("json") },
		"blank content type":  func(e *event.Event) { e.Context.(*event.EventContextV1).DataContentType = str(" ") },
		"no content type":     func(e *event.Event) { e.Context.(*event.EventContextV1).DataContentType = nil },
		"data schema":         func(e *event.Event) { e.SetDataSchema("https://example.test/schema") },
		"field error":         func(e *event.Event) { e.FieldErrors = map[string]error{"x": errBad} },
		"no context":          func(e *event.Event) { e.Context = nil },
		"context 0.3":         func(e *event.Event) { e.Context = e.Context.AsV03() },
		"extension":           func(e *event.Event) { e.SetExtension("knativebrokerttl", "255") },
		"octet-stream":        func(e *event.Event) { e.SetDataContentType("application/octet-stream") },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			e := plainEvent()
			change(&e)
			want := e.Validate()
			got := Validate(&e)
			if (got == nil) != (want == nil) || (got != nil && got.Error() != want.Error()) {
				t.Fatalf("Validate = %v, sdk-go's = %v", got, want)
			}
		})
	}
}

var errBad = errors.New("bad")

// plainEvent is a valid state.updated event as process replies with.
func plainEvent() event.Event {
	e := event.New()
	e.SetID("id-1")
	e.SetSource("/dronetrack/process")
	e.SetType("dronetrack.state.updated")
	_ = e.SetData("application/json", map[string]int{"a": 1})
	return e
}

func BenchmarkValidate(b *testing.B) {
	e := plainEvent()
	b.Run("publish", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = Validate(&e)
		}
	})
	b.Run("sdk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = e.Validate()
		}
	})
}
