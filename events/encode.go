package events

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// EncodeTelemetryReceived builds exactly the event NewTelemetryReceived
// builds (same attributes, byte-identical data; TestEventMatchesContract pins
// this) without encoding/json's reflection, which dominated the CPU of an
// ingest request (BenchmarkIngestDecodeValidate in functions/ingest; figures
// in docs/performance.md). It is the encoder of the ingest hot path; other
// producers use NewTelemetryReceived. It appends the data into buf and
// returns the grown buffer so a caller can reuse it: the event keeps its own
// copy. It lives beside Report so a new report field is encoded where it is
// declared (appendReport, in Report's field order).
func EncodeTelemetryReceived(d TelemetryReceived, buf []byte) (event.Event, []byte, error) {
	// The context is filled directly: event.New and SetSource would parse
	// the constant source URI and validate constant extension names on
	// every request.
	// The context and what its pointer fields point at are one allocation.
	c := &telemetryContext{
		ec:          event.EventContextV1{Type: TypeTelemetryReceived, Source: ingestSource},
		contentType: event.ApplicationJSON,
	}
	ec := &c.ec
	if err := ec.SetID(TelemetryEventID(d.DroneID, d.Reports)); err != nil {
		return event.Event{}, buf, err
	}
	// As SetSubject and SetTime: an empty subject and a zero time are absent.
	if s := strings.TrimSpace(d.DroneID); s != "" {
		c.subject = s
		ec.Subject = &c.subject
	}
	if !d.ReceivedAt.IsZero() {
		c.time.Time = d.ReceivedAt
		ec.Time = &c.time
	}
	ec.DataContentType = &c.contentType
	// Room for the traceparent and tracestate ingest adds.
	ec.Extensions = make(map[string]any, 4)
	ec.Extensions[ExtTenantID] = d.TenantID
	ec.Extensions[ExtPartitionKey] = d.DroneID
	e := event.Event{Context: ec}

	b := append(buf[:0], `{"tenantId":`...)
	b = appendString(b, d.TenantID)
	b = append(b, `,"droneId":`...)
	b = appendString(b, d.DroneID)
	b = append(b, `,"receivedAt":`...)
	b = appendTime(b, d.ReceivedAt)
	b = append(b, `,"reports":`...)
	if d.Reports == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range d.Reports {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendReport(b, &d.Reports[i])
		}
		b = append(b, ']')
	}
	b = append(b, '}')
	// The event keeps its own copy: buf goes back to a pool.
	e.DataEncoded = append([]byte(nil), b...)
	e.DataBase64 = false
	return e, b, nil
}

// telemetryContext is a telemetry.received (or state.updated) event's
// context with the values its pointer fields point at, so building it is one
// allocation, not four.
type telemetryContext struct {
	ec          event.EventContextV1
	time        types.Timestamp
	subject     string
	contentType string
}

func appendReport(b []byte, r *Report) []byte {
	b = append(b, `{"ts":`...)
	b = appendTime(b, r.TS)
	b = append(b, `,"lat":`...)
	b = appendFloat(b, r.Lat)
	b = append(b, `,"lon":`...)
	b = appendFloat(b, r.Lon)
	for _, f := range [...]struct {
		name string
		v    *float64
	}{{`,"alt":`, r.Alt}, {`,"speed":`, r.Speed}, {`,"heading":`, r.Heading}, {`,"battery":`, r.Battery}} {
		if f.v != nil {
			b = append(b, f.name...)
			b = appendFloat(b, *f.v)
		}
	}
	if r.Seq != nil {
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, *r.Seq, 10)
	}
	// The drone telemetry fields, in Report's field order.
	if r.Armed != nil {
		b = append(b, `,"armed":`...)
		b = strconv.AppendBool(b, *r.Armed)
	}
	if r.Mode != nil {
		b = append(b, `,"mode":`...)
		b = appendString(b, *r.Mode)
	}
	if r.Fix != nil {
		b = append(b, `,"fix":`...)
		b = strconv.AppendInt(b, int64(*r.Fix), 10)
	}
	if r.Satellites != nil {
		b = append(b, `,"satellites":`...)
		b = strconv.AppendInt(b, int64(*r.Satellites), 10)
	}
	for _, f := range [...]struct {
		name string
		v    *float64
	}{{`,"hae":`, r.HAE}, {`,"height":`, r.Height}, {`,"vspeed":`, r.VSpeed}, {`,"hAcc":`, r.HAcc},
		{`,"vAcc":`, r.VAcc}, {`,"link":`, r.Link}} {
		if f.v != nil {
			b = append(b, f.name...)
			b = appendFloat(b, *f.v)
		}
	}
	if h := r.Home; h != nil {
		b = append(b, `,"home":{"lat":`...)
		b = appendFloat(b, h.Lat)
		b = append(b, `,"lon":`...)
		b = appendFloat(b, h.Lon)
		if h.Alt != nil {
			b = append(b, `,"alt":`...)
			b = appendFloat(b, *h.Alt)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendFloat formats like encoding/json (ES6 number formatting). Reports
// are validated first, so NaN and Inf never reach it.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	fmt := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		fmt = 'e'
	}
	b = strconv.AppendFloat(b, f, fmt, -1, 64)
	if fmt == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendTime formats like time.Time.MarshalJSON for the years validation
// lets through.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString quotes s like encoding/json; ids are plain ASCII, anything
// else takes encoding/json's own path.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// ingestSource is SourceIngest parsed once.
var ingestSource = mustURIRef(SourceIngest)

// mustURIRef is a constant source parsed, as SetSource parses it.
func mustURIRef(s string) types.URIRef {
	u, err := url.Parse(s)
	if err != nil {
		panic(fmt.Sprintf("source %q is not a URI reference: %v", s, err))
	}
	return types.URIRef{URL: *u}
}
