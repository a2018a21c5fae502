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
	TS              time.Time `firestore:"ts"`
	Lat             float64   `firestore:"lat"`
	Lon             float64   `firestore:"lon"`
	Alt             *float64  `firestore:"alt,omitempty"`
	Speed           *float64  `firestore:"speed,omitempty"`
	Heading         *float64  `firestore:"heading,omitempty"`
	Battery         *float64  `firestore:"battery,omitempty"`
	Seq             *int64    `firestore:"seq,omitempty"`
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
	TenantID string     `firestore:"tenantId"`
	DroneID  string     `firestore:"droneId"`
	TS       time.Time  `firestore:"ts"`
	Lat      float64    `firestore:"lat"`
	Lon      float64    `firestore:"lon"`
	Alt      *float64   `firestore:"alt,omitempty"`
	Speed    *float64   `firestore:"speed,omitempty"`
	Heading  *float64   `firestore:"heading,omitempty"`
	Battery  *float64   `firestore:"battery,omitempty"`
	Seq      *int64     `firestore:"seq,omitempty"`
	ExpireAt *time.Time `firestore:"expireAt,omitempty"`
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
		UpdatedAt: s.UpdatedAt,
	}
}

func (d *stateDoc) state() *events.DroneState {
	if d == nil {
		return nil
	}
	return &events.DroneState{
		TS: d.TS, Lat: d.Lat, Lon: d.Lon, Alt: d.Alt, Speed: d.Speed, Heading: d.Heading,
		Battery: d.Battery, Seq: seqIn(d.Seq), GroundSpeed: d.GroundSpeed, Course: d.Course,
		DistanceM: d.DistanceM, BatteryDrain: d.BatteryDrain, TimeToEmptySecs: d.TimeToEmptySecs,
		UpdatedAt: d.UpdatedAt,
	}
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
		Alt: r.Alt, Speed: r.Speed, Heading: r.Heading, Battery: r.Battery, Seq: seqOut(r.Seq)}
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
