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

// stateDoc is a drone's state as stored: events.DroneState itself, whose
// firestore tags are its JSON names, so a field added to events is stored
// with no change here (TestStoredShapeIsStable pins the names already in
// use). The one mapping is Seq: the Firestore client refuses uint64, so
// stateDoc's own Seq, the int64 with the same bits (never queried), shadows
// the embedded one (the shallower field wins, as in encoding/json).
type stateDoc struct {
	events.DroneState
	Seq *int64 `firestore:"seq,omitempty"`
}

// trackDoc is drones/{droneId}/track/{id}; see trackID. The report is
// stored flat, as stateDoc stores a state, with the same Seq mapping.
// ExpireAt is absent for points that never expire, which is also what a TTL
// policy on expireAt skips.
type trackDoc struct {
	TenantID string `firestore:"tenantId"`
	DroneID  string `firestore:"droneId"`
	events.Report
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
	return &stateDoc{DroneState: s, Seq: seqOut(s.Seq)}
}

func (d *stateDoc) state() *events.DroneState {
	if d == nil {
		return nil
	}
	s := d.DroneState
	s.Seq = seqIn(d.Seq)
	return &s
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
	doc := trackDoc{TenantID: p.TenantID, DroneID: p.DroneID, Report: p.Report, Seq: seqOut(p.Report.Seq)}
	if !p.ExpireAt.IsZero() {
		e := p.ExpireAt
		doc.ExpireAt = &e
	}
	return doc
}

func (d trackDoc) point() store.TrackPoint {
	p := store.TrackPoint{TenantID: d.TenantID, DroneID: d.DroneID, Report: d.Report}
	p.Report.Seq = seqIn(d.Seq)
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
