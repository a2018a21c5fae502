package function_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/dronetrack/dronetrack/core/ratelimit"
	"github.com/dronetrack/dronetrack/events"
	function "github.com/dronetrack/dronetrack/functions/ingest"
)

// FuzzCloudEvents posts arbitrary bodies to PathEvents in each HTTP content
// mode (binary: fuzzed ce-type and ce-time headers; structured; batched)
// with a valid key, through the real handler and sink. A request is either
// accepted (202, exactly one telemetry.received event whose data validates)
// or refused with a 4xx problem naming what was wrong, and nothing is
// published; never a 5xx, never a panic.
func FuzzCloudEvents(f *testing.F) {
	const report = `{"ts":"2026-11-29T03:59:00Z","lat":47.1,"lon":8.1,"alt":500,"battery":80}`
	const ev = `{"specversion":"1.0","id":"e1","source":"/drones/d1","type":"dev.dronetrack.telemetry.report.v1","datacontenttype":"application/json","data":` + report + `}`
	f.Add(uint8(0), "dev.dronetrack.telemetry.report.v1", "", []byte(report))
	f.Add(uint8(0), "dev.dronetrack.telemetry.report.v1", "2026-11-29T03:59:00Z", []byte("["+report+","+report+"]"))
	f.Add(uint8(0), "dev.dronetrack.telemetry.received.v1", "", []byte(report))
	f.Add(uint8(0), "dev.dronetrack.telemetry.report.v1", "yesterday", []byte(`{"lat":1e999}`))
	f.Add(uint8(1), "", "", []byte(ev))
	f.Add(uint8(1), "", "", []byte(`{"specversion":"0.3","id":"","data_base64":"!!"}`))
	f.Add(uint8(2), "", "", []byte("["+ev+","+ev+"]"))
	f.Add(uint8(2), "", "", []byte(`[{"specversion":"1.0"},null,[]]`))

	e := newEnvDeps(f, func(d *function.Deps) {
		d.RateLimits = function.RateLimits{Key: ratelimit.Limit{Rate: -1}, IP: ratelimit.Limit{Rate: -1}}
	})
	client := &http.Client{}
	f.Fuzz(func(t *testing.T, mode uint8, ceType, ceTime string, body []byte) {
		req, err := http.NewRequest(http.MethodPost, e.url+function.PathEvents, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+e.key)
		switch mode % 3 {
		case 0:
			req.Header.Set("Content-Type", "application/json")
			for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "fz", "Ce-Source": "/drones/d1", "Ce-Type": ceType, "Ce-Time": ceTime} {
				if v != "" && validHeaderValue(v) {
					req.Header.Set(k, v)
				}
			}
		case 1:
			req.Header.Set("Content-Type", "application/cloudevents+json")
		case 2:
			req.Header.Set("Content-Type", "application/cloudevents-batch+json")
		}
		before := len(e.sink.got())
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		reply, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := e.sink.got()[before:]
		switch {
		case resp.StatusCode == http.StatusAccepted:
			if len(got) != 1 {
				t.Fatalf("202 published %d events, want 1", len(got))
			}
			data, err := events.Decode[events.TelemetryReceived](got[0], events.TypeTelemetryReceived)
			if err != nil {
				t.Fatalf("published event does not decode: %v\nbody %q", err, body)
			}
			if err := data.Validate(e.clock.Now()); err != nil {
				t.Fatalf("published data does not validate: %v\nbody %q", err, body)
			}
		case resp.StatusCode >= 400 && resp.StatusCode < 500:
			if len(got) != 0 {
				t.Fatalf("status %d but published %d events", resp.StatusCode, len(got))
			}
			var p problemBody
			if err := json.Unmarshal(reply, &p); err != nil || p.Status != resp.StatusCode {
				t.Fatalf("status %d with no problem body (%v): %q", resp.StatusCode, err, reply)
			}
		default:
			t.Fatalf("status %d for body %q: %s", resp.StatusCode, body, reply)
		}
	})
}

// validHeaderValue reports whether net/http would send v unchanged.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
