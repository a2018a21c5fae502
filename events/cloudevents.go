package events

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
)

// TelemetryEventID derives the event id from the drone and its reports'
// timestamps. A drone that retries a request after a lost reply produces the
// same id, so consumers can drop the duplicate by id before any work.
//
// It is the hex of the first 16 bytes of SHA-256(drone id, then for each
// report a 0 byte and its ts in RFC 3339 with nanoseconds, UTC). The hashed
// bytes are built in a stack buffer, hashed in one call when they fit (a few
// reports) and streamed through a digest in buffer-sized pieces when they do
// not, so the id string is the only allocation of a one-report request and a
// batch adds one digest.
func TelemetryEventID(droneID string, reports []Report) string {
	var scratch [512]byte
	b := append(scratch[:0], droneID...)
	var h hash.Hash
	for i := range reports {
		if len(b) > len(scratch)-64 { // less than one report's room left
			if h == nil {
				h = sha256.New()
			}
			h.Write(b)
			b = scratch[:0]
		}
		b = append(b, 0)
		b = reports[i].TS.UTC().AppendFormat(b, time.RFC3339Nano)
	}
	var sum [sha256.Size]byte
	if h == nil {
		sum = sha256.Sum256(b)
	} else {
		h.Write(b)
		h.Sum(sum[:0])
	}
	var id [32]byte
	hex.Encode(id[:], sum[:16])
	return string(id[:])
}

// NewTelemetryReceived builds the CloudEvent ingest publishes for one accepted
// request. Subject and partitionkey are the drone id so an ordered broker
// keeps a drone's reports in order.
func NewTelemetryReceived(data TelemetryReceived) (cloudevents.Event, error) {
	return newEvent(TelemetryEventID(data.DroneID, data.Reports), TypeTelemetryReceived, SourceIngest,
		data.TenantID, data.DroneID, data.ReceivedAt, data)
}

// NewStateUpdated builds the event process emits when a drone's latest state
// changed. Its id is deterministic in (drone, ts): a replay is a duplicate.
func NewStateUpdated(data StateUpdated) (cloudevents.Event, error) {
	// process builds one per advancing report: the context is filled
	// directly, as EncodeTelemetryReceived does (the same event newEvent
	// builds, TestStateUpdatedAsNewEvent), and the data encoded here:
	// SetData's codec would marshal it through encoding/json, which
	// re-scans what the method writes.
	raw, err := data.AppendJSON(make([]byte, 0, 448))
	if err != nil {
		return cloudevents.Event{}, fmt.Errorf("encode %s data: %w", TypeStateUpdated, err)
	}
	c := &telemetryContext{
		ec:          cloudevents.EventContextV1{Type: TypeStateUpdated, Source: processSource},
		contentType: cloudevents.ApplicationJSON,
	}
	ec := &c.ec
	id := make([]byte, 0, len(data.DroneID)+1+len(time.RFC3339Nano))
	id = append(append(id, data.DroneID...), '@')
	if err := ec.SetID(string(data.State.TS.UTC().AppendFormat(id, time.RFC3339Nano))); err != nil {
		return cloudevents.Event{}, err
	}
	// As SetSubject and SetTime: an empty subject and a zero time are absent.
	if s := strings.TrimSpace(data.DroneID); s != "" {
		c.subject = s
		ec.Subject = &c.subject
	}
	if !data.State.UpdatedAt.IsZero() {
		c.time.Time = data.State.UpdatedAt
		ec.Time = &c.time
	}
	ec.DataContentType = &c.contentType
	// Room for the traceparent and tracestate process adds.
	ec.Extensions = make(map[string]any, 4)
	ec.Extensions[ExtTenantID] = data.TenantID
	ec.Extensions[ExtPartitionKey] = data.DroneID
	return cloudevents.Event{Context: ec, DataEncoded: raw}, nil
}

// processSource is SourceProcess parsed once.
var processSource = mustURIRef(SourceProcess)

// jsonData is data already encoded as JSON, for newEvent.
type jsonData []byte

// AlertEventID is the CloudEvent id of an alert's raised event, or of its
// resolved event: "<alert id>/raised" or "<alert id>/resolved". Fixed ids
// let consumers dedupe, and let the webhook deliverer find the raised
// event's deliveries when the resolved one comes.
func AlertEventID(alertID string, resolved bool) string {
	if resolved {
		return alertID + "/resolved"
	}
	return alertID + "/raised"
}

// NewAlert builds an alert raised or resolved event (typ selects which).
func NewAlert(typ string, data Alert) (cloudevents.Event, error) {
	at := data.OpenedAt
	if data.ResolvedAt != nil {
		at = *data.ResolvedAt
	}
	return newEvent(AlertEventID(data.ID, data.ResolvedAt != nil), typ, SourceAlerts, data.TenantID, data.DroneID, at, data)
}

func newEvent(id, typ, source, tenantID, droneID string, at time.Time, data any) (cloudevents.Event, error) {
	e := cloudevents.New()
	e.SetID(id)
	e.SetType(typ)
	e.SetSource(source)
	e.SetSubject(droneID)
	if !at.IsZero() {
		e.SetTime(at)
	}
	e.SetExtension(ExtTenantID, tenantID)
	e.SetExtension(ExtPartitionKey, droneID)
	if raw, ok := data.(jsonData); ok {
		// What SetData stores for JSON data, without its codec.
		e.SetDataContentType(cloudevents.ApplicationJSON)
		e.DataEncoded, e.DataBase64 = raw, false
		return e, nil
	}
	if err := e.SetData(cloudevents.ApplicationJSON, data); err != nil {
		return e, fmt.Errorf("encode %s data: %w", typ, err)
	}
	return e, nil
}

// Extension is e's extension name (a lower-case name, as stored), or nil:
// Event.Extensions copies every extension on each call, and the functions
// read one or two of them per event.
func Extension(e cloudevents.Event, name string) any {
	if ec, ok := e.Context.(*cloudevents.EventContextV1); ok {
		return ec.Extensions[name]
	}
	return e.Extensions()[name]
}

// Decode unmarshals an event's data after checking its type, so a consumer
// behind a misconfigured Trigger fails loudly instead of reading zero values.
func Decode[T any](e cloudevents.Event, wantType string) (T, error) {
	var v T
	if e.Type() != wantType {
		return v, fmt.Errorf("event %s: type %q, want %q", e.ID(), e.Type(), wantType)
	}
	var err error
	if d, ok := any(&v).(dataDecoder); ok {
		err = d.decodeData(e.Data())
	} else {
		err = json.Unmarshal(e.Data(), &v)
	}
	if err != nil {
		return v, fmt.Errorf("event %s: decode %s data: %w", e.ID(), wantType, err)
	}
	return v, nil
}

// dataDecoder is the data of an event decoded by hand (statejson.go):
// decodeData reads what json.Unmarshal reads and fails where it fails,
// without encoding/json's separate validation pass over input the hand
// parser takes (which is valid JSON by construction).
type dataDecoder interface{ decodeData([]byte) error }
