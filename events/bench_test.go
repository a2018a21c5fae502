package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/dronetrack/dronetrack/events"
)

func benchData(n int) events.TelemetryReceived {
	t0 := time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC)
	d := events.TelemetryReceived{TenantID: "tenant-1", DroneID: "drone-1", ReceivedAt: t0}
	for i := range n {
		alt, speed, hdg, batt, seq := 120.5, 12.25, 271.5, 87.5, uint64(i)
		d.Reports = append(d.Reports, events.Report{TS: t0.Add(time.Duration(i) * time.Second), Lat: 47.3769, Lon: 8.5417,
			Alt: &alt, Speed: &speed, Heading: &hdg, Battery: &batt, Seq: &seq})
	}
	return d
}

// BenchmarkEncodeBinaryHTTP is what ingest does per request: build the
// telemetry.received event and write it as a binary-mode HTTP request.
func BenchmarkEncodeBinaryHTTP(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run(map[int]string{1: "reports=1", 10: "reports=10"}[n], func(b *testing.B) {
			d := benchData(n)
			b.ReportAllocs()
			for b.Loop() {
				e, err := events.NewTelemetryReceived(d)
				if err != nil {
					b.Fatal(err)
				}
				req := httptest.NewRequest(http.MethodPost, "http://broker/", nil)
				if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeBinaryHTTP is what process does per delivery: read the
// binary-mode request and decode its data.
func BenchmarkDecodeBinaryHTTP(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run(map[int]string{1: "reports=1", 10: "reports=10"}[n], func(b *testing.B) {
			e, err := events.NewTelemetryReceived(benchData(n))
			if err != nil {
				b.Fatal(err)
			}
			proto := httptest.NewRequest(http.MethodPost, "http://process/", nil)
			if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), proto); err != nil {
				b.Fatal(err)
			}
			body := e.Data()
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, "http://process/", bytes.NewReader(body))
				r.Header = proto.Header.Clone()
				got, err := cehttp.NewEventFromHTTPRequest(r)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := events.Decode[events.TelemetryReceived](*got, events.TypeTelemetryReceived); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStructuredJSON is the broker's storage form: the event as
// structured JSON, encoded at ingress and decoded per Trigger delivery.
func BenchmarkStructuredJSON(b *testing.B) {
	e, err := events.NewTelemetryReceived(benchData(1))
	if err != nil {
		b.Fatal(err)
	}
	raw, err := json.Marshal(e)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var got = e.Clone()
			if err := json.Unmarshal(raw, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDecodeOnly isolates the report parser that ingest runs on every
// request body (no HTTP, no event): the one-report body of ingest's
// BenchmarkIngestDecodeValidate.
func BenchmarkDecodeOnly(b *testing.B) {
	t0 := time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)
	body := []byte(`{"ts":"2026-11-29T04:00:00Z","lat":52.52,"lon":13.405,"alt":120.5,"speed":12,"heading":90,"battery":87.5,"seq":100000}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, bad, err := events.DecodeReports(body, t0, 500); err != nil || bad != nil {
			b.Fatal(err, bad)
		}
	}
}

// BenchmarkEncodeTelemetryReceived is ingest's event build per request,
// beside BenchmarkEncodeBinaryHTTP's reflection-based NewTelemetryReceived.
func BenchmarkEncodeTelemetryReceived(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run(map[int]string{1: "reports=1", 10: "reports=10"}[n], func(b *testing.B) {
			d := benchData(n)
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if _, buf, err = events.EncodeTelemetryReceived(d, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
