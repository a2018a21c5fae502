package firestore

import (
	"fmt"
	"strings"
	"time"

	"github.com/dronetrack/dronetrack/core/remoteid"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// Documents as stored. Field names are explicit (firestore tags) so the
// stored shape is a deliberate contract (index exemptions, TTL policy, other
// readers), not whatever the Go field names happen to be.

// tenantDoc is tenants/{tenantId}.
type tenantDoc struct {
	Name      string    `firestore:"name"`
	CreatedAt time.Time `firestore:"createdAt"`
	// RemoteID is queried (RemoteIDTenants): it keeps its single-field
	// index. Absent on tenants created before Remote ID existed (= off).
	RemoteID        bool  `firestore:"remoteId"`
	RemoteIDVersion int64 `firestore:"remoteIdVersion"`
}

func (d tenantDoc) tenant(id string) store.Tenant {
	return store.Tenant{ID: id, Name: d.Name, CreatedAt: d.CreatedAt, RemoteID: d.RemoteID, RemoteIDVersion: d.RemoteIDVersion}
}

// droneDoc is drones/{droneId}. State is absent until the first report.
type droneDoc struct {
	TenantID  string       `firestore:"tenantId"`
	Name      string       `firestore:"name"`
	KeyHash   string       `firestore:"keyHash"`
	CreatedAt time.Time    `firestore:"createdAt"`
	State     *stateDoc    `firestore:"state,omitempty"`
	RemoteID  *identityDoc `firestore:"remoteId,omitempty"`
}

// identityDoc mirrors remoteid.Identity.
type identityDoc struct {
	SerialNumber     string `firestore:"serialNumber,omitempty"`
	RegistrationID   string `firestore:"registrationId,omitempty"`
	UAType           string `firestore:"uaType,omitempty"`
	OperatorID       string `firestore:"operatorId,omitempty"`
	EUCategory       string `firestore:"euCategory,omitempty"`
	EUClass          string `firestore:"euClass,omitempty"`
	OperatorLocation string `firestore:"operatorLocation,omitempty"`
}

func toIdentityDoc(id *remoteid.Identity) *identityDoc {
	if id == nil {
		return nil
	}
	d := identityDoc(*id)
	return &d
}

func (d *identityDoc) identity() *remoteid.Identity {
	if d == nil {
		return nil
	}
	id := remoteid.Identity(*d)
	return &id
}

// ridTestDoc is ridTests/{testId}. expireAt carries a TTL policy.
type ridTestDoc struct {
	Version   string    `firestore:"version"`
	Flights   []byte    `firestore:"flights"`
	CreatedAt time.Time `firestore:"createdAt"`
	ExpireAt  time.Time `firestore:"expireAt"`
}

// keyDoc is droneKeys/{keyHash}: the unique index from a key to its drone,
// created in the same transaction as the drone.
type keyDoc struct {
	DroneID  string `firestore:"droneId"`
	TenantID string `firestore:"tenantId"`
}

// stateDoc mirrors events.DroneState. Seq is a uint64 the Firestore client
// refuses, so it is stored as the int64 with the same bits (never queried).
type stateDoc struct {
	TS      time.Time `firestore:"ts"`
	Lat     float64   `firestore:"lat"`
	Lon     float64   `firestore:"lon"`
	Alt     *float64  `firestore:"alt,omitempty"`
	Speed   *float64  `firestore:"speed,omitempty"`
	Heading *float64  `firestore:"heading,omitempty"`
	Battery *float64  `firestore:"battery,omitempty"`
	Seq     *int64    `firestore:"seq,omitempty"`
	telemetryDoc
	GroundSpeed     *float64  `firestore:"groundSpeed,omitempty"`
	Course          *float64  `firestore:"course,omitempty"`
	DistanceM       float64   `firestore:"distanceM"`
	BatteryDrain    *float64  `firestore:"batteryDrain,omitempty"`
	TimeToEmptySecs *float64  `firestore:"timeToEmptySecs,omitempty"`
	UpdatedAt       time.Time `firestore:"updatedAt"`
}

// trackDoc is drones/{droneId}/track/{id}; see trackID. ExpireAt is absent
// for points that never expire, which is also what a TTL policy on expireAt
// skips.
type trackDoc struct {
	TenantID string    `firestore:"tenantId"`
	DroneID  string    `firestore:"droneId"`
	TS       time.Time `firestore:"ts"`
	Lat      float64   `firestore:"lat"`
	Lon      float64   `firestore:"lon"`
	Alt      *float64  `firestore:"alt,omitempty"`
	Speed    *float64  `firestore:"speed,omitempty"`
	Heading  *float64  `firestore:"heading,omitempty"`
	Battery  *float64  `firestore:"battery,omitempty"`
	Seq      *int64    `firestore:"seq,omitempty"`
	telemetryDoc
	ExpireAt *time.Time `firestore:"expireAt,omitempty"`
}

// telemetryDoc holds the drone telemetry fields of a report or state
// (events.Report.Armed ... Home), embedded in stateDoc and trackDoc so both
// store them under the same names.
type telemetryDoc struct {
	Armed      *bool        `firestore:"armed,omitempty"`
	Mode       *string      `firestore:"mode,omitempty"`
	Fix        *int64       `firestore:"fix,omitempty"`
	Satellites *int64       `firestore:"satellites,omitempty"`
	HAE        *float64     `firestore:"hae,omitempty"`
	Height     *float64     `firestore:"height,omitempty"`
	VSpeed     *float64     `firestore:"vspeed,omitempty"`
	HAcc       *float64     `firestore:"hAcc,omitempty"`
	VAcc       *float64     `firestore:"vAcc,omitempty"`
	Link       *float64     `firestore:"link,omitempty"`
	Home       *positionDoc `firestore:"home,omitempty"`
}

// positionDoc is an events.Position.
type positionDoc struct {
	Lat float64  `firestore:"lat"`
	Lon float64  `firestore:"lon"`
	Alt *float64 `firestore:"alt,omitempty"`
}

func intOut(p *int) *int64 {
	if p == nil {
		return nil
	}
	v := int64(*p)
	return &v
}

func intIn(p *int64) *int {
	if p == nil {
		return nil
	}
	v := int(*p)
	return &v
}

func positionOut(p *events.Position) *positionDoc {
	if p == nil {
		return nil
	}
	return &positionDoc{Lat: p.Lat, Lon: p.Lon, Alt: p.Alt}
}

func (d *positionDoc) position() *events.Position {
	if d == nil {
		return nil
	}
	return &events.Position{Lat: d.Lat, Lon: d.Lon, Alt: d.Alt}
}

// reportTelemetry is the telemetry part of a report (or, through
// stateTelemetry, of a state) as stored.
func reportTelemetry(r events.Report) telemetryDoc {
	return telemetryDoc{Armed: r.Armed, Mode: r.Mode, Fix: intOut(r.Fix), Satellites: intOut(r.Satellites),
		HAE: r.HAE, Height: r.Height, VSpeed: r.VSpeed, HAcc: r.HAcc, VAcc: r.VAcc, Link: r.Link,
		Home: positionOut(r.Home)}
}

// setReport sets r's telemetry fields from the stored ones.
func (d telemetryDoc) setReport(r *events.Report) {
	r.Armed, r.Mode, r.Fix, r.Satellites = d.Armed, d.Mode, intIn(d.Fix), intIn(d.Satellites)
	r.HAE, r.Height, r.VSpeed, r.HAcc, r.VAcc, r.Link = d.HAE, d.Height, d.VSpeed, d.HAcc, d.VAcc, d.Link
	r.Home = d.Home.position()
}

func stateTelemetry(s events.DroneState) telemetryDoc {
	return reportTelemetry(events.Report{Armed: s.Armed, Mode: s.Mode, Fix: s.Fix, Satellites: s.Satellites,
		HAE: s.HAE, Height: s.Height, VSpeed: s.VSpeed, HAcc: s.HAcc, VAcc: s.VAcc, Link: s.Link, Home: s.Home})
}

func (d telemetryDoc) setState(s *events.DroneState) {
	var r events.Report
	d.setReport(&r)
	s.Armed, s.Mode, s.Fix, s.Satellites = r.Armed, r.Mode, r.Fix, r.Satellites
	s.HAE, s.Height, s.VSpeed, s.HAcc, s.VAcc, s.Link, s.Home = r.HAE, r.Height, r.VSpeed, r.HAcc, r.VAcc, r.Link, r.Home
}

func seqOut(p *uint64) *int64 {
	if p == nil {
		return nil
	}
	v := int64(*p)
	return &v
}

func seqIn(p *int64) *uint64 {
	if p == nil {
		return nil
	}
	v := uint64(*p)
	return &v
}

func toStateDoc(s events.DroneState) *stateDoc {
	return &stateDoc{
		TS: s.TS, Lat: s.Lat, Lon: s.Lon, Alt: s.Alt, Speed: s.Speed, Heading: s.Heading,
		Battery: s.Battery, Seq: seqOut(s.Seq), GroundSpeed: s.GroundSpeed, Course: s.Course,
		DistanceM: s.DistanceM, BatteryDrain: s.BatteryDrain, TimeToEmptySecs: s.TimeToEmptySecs,
		UpdatedAt: s.UpdatedAt, telemetryDoc: stateTelemetry(s),
	}
}

func (d *stateDoc) state() *events.DroneState {
	if d == nil {
		return nil
	}
	s := &events.DroneState{
		TS: d.TS, Lat: d.Lat, Lon: d.Lon, Alt: d.Alt, Speed: d.Speed, Heading: d.Heading,
		Battery: d.Battery, Seq: seqIn(d.Seq), GroundSpeed: d.GroundSpeed, Course: d.Course,
		DistanceM: d.DistanceM, BatteryDrain: d.BatteryDrain, TimeToEmptySecs: d.TimeToEmptySecs,
		UpdatedAt: d.UpdatedAt,
	}
	d.telemetryDoc.setState(s)
	return s
}

func toDroneDoc(d store.Drone) droneDoc {
	doc := droneDoc{TenantID: d.TenantID, Name: d.Name, KeyHash: d.KeyHash, CreatedAt: d.CreatedAt,
		RemoteID: toIdentityDoc(d.RemoteID)}
	if d.State != nil {
		doc.State = toStateDoc(*d.State)
	}
	return doc
}

func (d droneDoc) drone(id string) store.Drone {
	return store.Drone{ID: id, TenantID: d.TenantID, Name: d.Name, KeyHash: d.KeyHash,
		CreatedAt: d.CreatedAt, State: d.State.state(), RemoteID: d.RemoteID.identity()}
}

func toTrackDoc(p store.TrackPoint) trackDoc {
	r := p.Report
	doc := trackDoc{TenantID: p.TenantID, DroneID: p.DroneID, TS: r.TS, Lat: r.Lat, Lon: r.Lon,
		Alt: r.Alt, Speed: r.Speed, Heading: r.Heading, Battery: r.Battery, Seq: seqOut(r.Seq),
		telemetryDoc: reportTelemetry(r)}
	if !p.ExpireAt.IsZero() {
		e := p.ExpireAt
		doc.ExpireAt = &e
	}
	return doc
}

func (d trackDoc) point() store.TrackPoint {
	p := store.TrackPoint{TenantID: d.TenantID, DroneID: d.DroneID,
		Report: events.Report{TS: d.TS, Lat: d.Lat, Lon: d.Lon, Alt: d.Alt, Speed: d.Speed,
			Heading: d.Heading, Battery: d.Battery, Seq: seqIn(d.Seq)}}
	d.telemetryDoc.setReport(&p.Report)
	if d.ExpireAt != nil {
		p.ExpireAt = *d.ExpireAt
	}
	return p
}

// Track ids are the sample time in Unix nanoseconds, truncated to Firestore's
// microsecond precision and zero-padded to 20 digits, so document-id order is
// time order and a duplicate sample rewrites its own document. Range queries
// run on the document id, so ts and expireAt need no single-field index
// (a sequential indexed field is a write hotspot in production).
var (
	minTrackTime = time.Unix(0, 0)
	maxTrackTime = time.Unix(0, 1<<63-1).Truncate(time.Microsecond)
)

func trackID(t time.Time) string {
	return fmt.Sprintf("%020d", t.Truncate(time.Microsecond).UnixNano())
}

// validTrackTime reports whether t can be a track id.
func validTrackTime(t time.Time) bool {
	return !t.Before(minTrackTime) && !t.After(maxTrackTime)
}

// validID reports whether id can be a Firestore document id. Lookups of an
// impossible id are simply not found; creating one is an error.
func validID(id string) bool {
	if id == "" || id == "." || id == ".." || len(id) > 1500 || strings.Contains(id, "/") {
		return false
	}
	return !(strings.HasPrefix(id, "__") && strings.HasSuffix(id, "__"))
}
