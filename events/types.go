package events

import "time"

// Event type names. They are reverse-DNS and versioned: a breaking change to a
// payload gets a new type (…v2) so old and new consumers can run side by side
// behind Broker Trigger filters.
const (
	TypeTelemetryReceived = "dev.dronetrack.telemetry.received.v1"
	TypeTelemetryReport   = "dev.dronetrack.telemetry.report.v1" // sent by a drone to ingest's /v1/events: data is a Report or []Report
	TypeStateUpdated      = "dev.dronetrack.drone.state.updated.v1"
	TypeAlertRaised       = "dev.dronetrack.drone.alert.raised.v1"
	TypeAlertResolved     = "dev.dronetrack.drone.alert.resolved.v1"
	TypeLinkCheck         = "dev.dronetrack.link.check.v1"
)

// Event sources, one per producing function.
const (
	SourceIngest  = "/dronetrack/ingest"
	SourceProcess = "/dronetrack/process"
	SourceAlerts  = "/dronetrack/alerts"
)

// Extension attribute names carried on every Dronetrack event. Triggers can
// filter on them, and the Kafka broker orders per partitionkey.
const (
	ExtTenantID     = "tenantid"
	ExtPartitionKey = "partitionkey"
)

// Report is one telemetry sample as a drone sends it. Required fields are
// plain values; optional ones are pointers so "absent" differs from zero.
// Units are SI: metres, metres per second, degrees; battery is percent.
//
// Report, Position and DroneState are also what the Firestore store keeps:
// each field's firestore tag is its JSON name (TestFirestoreTagsAreJSONNames),
// so a field declared here is stored under its wire name with no mapping.
// The one exception is Seq: the Firestore client refuses uint64, so
// core/store/firestore stores it as the int64 with the same bits.
type Report struct {
	TS      time.Time `json:"ts" firestore:"ts"`
	Lat     float64   `json:"lat" firestore:"lat"`
	Lon     float64   `json:"lon" firestore:"lon"`
	Alt     *float64  `json:"alt,omitempty" firestore:"alt,omitempty"`
	Speed   *float64  `json:"speed,omitempty" firestore:"speed,omitempty"`
	Heading *float64  `json:"heading,omitempty" firestore:"heading,omitempty"`
	Battery *float64  `json:"battery,omitempty" firestore:"battery,omitempty"`
	Seq     *uint64   `json:"seq,omitempty" firestore:"seq,omitempty"`

	// Drone telemetry (all optional; see the field comments on DroneState).
	Armed      *bool     `json:"armed,omitempty" firestore:"armed,omitempty"`
	Mode       *string   `json:"mode,omitempty" firestore:"mode,omitempty"`
	Fix        *int      `json:"fix,omitempty" firestore:"fix,omitempty"`
	Satellites *int      `json:"satellites,omitempty" firestore:"satellites,omitempty"`
	HAE        *float64  `json:"hae,omitempty" firestore:"hae,omitempty"`
	Height     *float64  `json:"height,omitempty" firestore:"height,omitempty"`
	VSpeed     *float64  `json:"vspeed,omitempty" firestore:"vspeed,omitempty"`
	HAcc       *float64  `json:"hAcc,omitempty" firestore:"hAcc,omitempty"`
	VAcc       *float64  `json:"vAcc,omitempty" firestore:"vAcc,omitempty"`
	Link       *float64  `json:"link,omitempty" firestore:"link,omitempty"`
	Home       *Position `json:"home,omitempty" firestore:"home,omitempty"`
}

// Position is a point on the Earth: latitude and longitude in degrees
// (WGS84) and, when known, Alt in metres above mean sea level. It is the
// drone's home (return-to-launch point) in a report.
type Position struct {
	Lat float64  `json:"lat" firestore:"lat"`
	Lon float64  `json:"lon" firestore:"lon"`
	Alt *float64 `json:"alt,omitempty" firestore:"alt,omitempty"`
}

// GPS fix types (MAVLink GPS_FIX_TYPE), the values of Report.Fix.
const (
	FixNoGPS  = 0 // no GPS connected
	FixNone   = 1 // no position information
	Fix2D     = 2
	Fix3D     = 3
	FixDGPS   = 4 // DGPS/SBAS aided 3D
	FixRTKFlt = 5 // RTK float, 3D
	FixRTKFix = 6 // RTK fixed, 3D
	FixStatic = 7 // static fixed (base stations)
	FixPPP    = 8 // precise point positioning, 3D
)

// TelemetryReceived is the data of TypeTelemetryReceived: the reports of one
// accepted ingest request, all from one drone. The drone and tenant come from
// the authenticated key, never from the request body.
type TelemetryReceived struct {
	TenantID   string    `json:"tenantId"`
	DroneID    string    `json:"droneId"`
	ReceivedAt time.Time `json:"receivedAt"`
	Reports    []Report  `json:"reports"`
}

// DroneState is a drone's latest known state with the values derived from
// its previous state.
type DroneState struct {
	TS      time.Time `json:"ts" firestore:"ts"`
	Lat     float64   `json:"lat" firestore:"lat"`
	Lon     float64   `json:"lon" firestore:"lon"`
	Alt     *float64  `json:"alt,omitempty" firestore:"alt,omitempty"`
	Speed   *float64  `json:"speed,omitempty" firestore:"speed,omitempty"`
	Heading *float64  `json:"heading,omitempty" firestore:"heading,omitempty"`
	Battery *float64  `json:"battery,omitempty" firestore:"battery,omitempty"`
	Seq     *uint64   `json:"seq,omitempty" firestore:"seq,omitempty"`

	// Drone telemetry as last reported. Every field is optional: a drone
	// sends what its autopilot knows. Alt above is metres above mean sea
	// level; HAE and Height are the other two altitudes a pilot meets.
	Armed      *bool     `json:"armed,omitempty" firestore:"armed,omitempty"`           // motors armed
	Mode       *string   `json:"mode,omitempty" firestore:"mode,omitempty"`             // flight mode as the autopilot names it, e.g. "AUTO.MISSION", "RTL"
	Fix        *int      `json:"fix,omitempty" firestore:"fix,omitempty"`               // GPS fix type, MAVLink GPS_FIX_TYPE (0..8, see FixNoGPS..FixPPP)
	Satellites *int      `json:"satellites,omitempty" firestore:"satellites,omitempty"` // satellites used or visible
	HAE        *float64  `json:"hae,omitempty" firestore:"hae,omitempty"`               // metres above the WGS84 ellipsoid
	Height     *float64  `json:"height,omitempty" firestore:"height,omitempty"`         // metres above the take-off point
	VSpeed     *float64  `json:"vspeed,omitempty" firestore:"vspeed,omitempty"`         // vertical speed, m/s, up positive
	HAcc       *float64  `json:"hAcc,omitempty" firestore:"hAcc,omitempty"`             // horizontal position accuracy, metres
	VAcc       *float64  `json:"vAcc,omitempty" firestore:"vAcc,omitempty"`             // vertical position accuracy, metres
	Link       *float64  `json:"link,omitempty" firestore:"link,omitempty"`             // link quality, percent
	Home       *Position `json:"home,omitempty" firestore:"home,omitempty"`             // home (return-to-launch) position

	// Derived values, computed by process from the previous accepted state.
	GroundSpeed     *float64 `json:"groundSpeed,omitempty" firestore:"groundSpeed,omitempty"`         // m/s, from successive positions
	Course          *float64 `json:"course,omitempty" firestore:"course,omitempty"`                   // degrees true, from successive positions
	DistanceM       float64  `json:"distanceM" firestore:"distanceM"`                                 // metres travelled since first report
	BatteryDrain    *float64 `json:"batteryDrain,omitempty" firestore:"batteryDrain,omitempty"`       // percent per second, positive when draining
	TimeToEmptySecs *float64 `json:"timeToEmptySecs,omitempty" firestore:"timeToEmptySecs,omitempty"` // at the current drain rate

	UpdatedAt time.Time `json:"updatedAt" firestore:"updatedAt"` // when process accepted this state
}

// State is the drone state that r reports on its own: every field of r
// copied into the DroneState field of the same name, the derived values and
// UpdatedAt left zero for core/telemetry to fill. It lives beside both types
// so a report field that the state keeps is carried over where it is
// declared (TestStateCopiesEveryReportField checks that none is missed).
func (r Report) State() DroneState {
	return DroneState{
		TS: r.TS, Lat: r.Lat, Lon: r.Lon, Alt: r.Alt, Speed: r.Speed, Heading: r.Heading,
		Battery: r.Battery, Seq: r.Seq,
		Armed: r.Armed, Mode: r.Mode, Fix: r.Fix, Satellites: r.Satellites, HAE: r.HAE, Height: r.Height,
		VSpeed: r.VSpeed, HAcc: r.HAcc, VAcc: r.VAcc, Link: r.Link, Home: r.Home,
	}
}

// StateUpdated is the data of TypeStateUpdated.
type StateUpdated struct {
	TenantID string     `json:"tenantId"`
	DroneID  string     `json:"droneId"`
	State    DroneState `json:"state"`
}

// Alert is the data of TypeAlertRaised and TypeAlertResolved.
type Alert struct {
	ID         string     `json:"id"`
	TenantID   string     `json:"tenantId"`
	DroneID    string     `json:"droneId"`
	Kind       string     `json:"kind"`
	FenceID    string     `json:"fenceId,omitempty"` // set for geofence alerts
	Message    string     `json:"message"`
	OpenedAt   time.Time  `json:"openedAt"`
	ResolvedAt *time.Time `json:"resolvedAt,omitempty"`
	// Battery (percent) and TimeToEmptySecs are the drone's readings in the
	// state that caused the transition, when it had them (never for
	// link.lost): notifications quote them.
	Battery         *float64 `json:"battery,omitempty"`
	TimeToEmptySecs *float64 `json:"timeToEmptySecs,omitempty"`
}
