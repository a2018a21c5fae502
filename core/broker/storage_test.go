package broker

import (
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"
)

// The stored binary form keeps every attribute, extension and data byte, and
// the structured JSON form of older data dirs still reads back the same.
func TestStoredFormRoundTrip(t *testing.T) {
	full := event.New()
	full.SetID("e1")
	full.SetType("dev.dronetrack.test.v1")
	full.SetSource("/dronetrack/test?x=1")
	full.SetSubject("drone-7")
	full.SetTime(time.Date(2026, 12, 3, 8, 0, 0, 123456789, time.UTC))
	full.SetDataSchema("https://dronetrack.dev/schema.json")
	full.SetExtension("tenantid", "t1")
	full.SetExtension(ExtTTL, 254)
	full.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	if err := full.SetData(event.ApplicationJSON, map[string]any{"lat": 47.1, "ok": true}); err != nil {
		t.Fatal(err)
	}
	binary := event.New()
	binary.SetID("e2")
	binary.SetType("t")
	binary.SetSource("s")
	_ = binary.SetData("application/octet-stream", []byte{0, 0xff, 'x', 0x80})
	bare := event.New()
	bare.SetID("e3")
	bare.SetType("t")
	bare.SetSource("s")

	for _, e := range []event.Event{full, binary, bare} {
		m, err := encodeStored("subj", e)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Header[storedSpecVersion]) == 0 {
			t.Fatalf("%s: not stored in the binary form", e.ID())
		}
		got, err := decodeStored(m.Header, m.Data)
		if err != nil {
			t.Fatalf("%s: decode: %v", e.ID(), err)
		}
		raw, err := encodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		legacy, err := decodeStored(nil, raw)
		if err != nil {
			t.Fatalf("%s: decode legacy JSON: %v", e.ID(), err)
		}
		for form, d := range map[string]event.Event{"binary": got, "legacy JSON": legacy} {
			if diff := cmp.Diff(canonical(t, e), canonical(t, d)); diff != "" {
				t.Errorf("%s, %s form: (-want +got)\n%s", e.ID(), form, diff)
			}
			if string(d.Data()) != string(e.Data()) {
				t.Errorf("%s, %s form: data %q, want %q", e.ID(), form, d.Data(), e.Data())
			}
			if n := brokerTTL(d); e.ID() == "e1" && n != 254 {
				t.Errorf("%s, %s form: ttl %d, want 254", e.ID(), form, n)
			}
		}
	}
	if _, err := decodeStored(map[string][]string{storedSpecVersion: {"1.0"}}, nil); err == nil {
		t.Error("a stored event without id and type decoded")
	}
}

// canonical is an event's attributes as the strings a subscriber sees.
func canonical(t *testing.T, e event.Event) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range []string{"specversion", "id", "type", "source", "subject", "datacontenttype", "dataschema", "time"} {
		if v, ok := attribute(e, name); ok {
			out[name] = v
		}
	}
	for name := range e.Extensions() {
		v, _ := attribute(e, name)
		out[name] = v
	}
	return out
}
