package remoteid

import (
	"math"
	"time"
)

// Telemetry is what the SP knows of an aircraft at one instant, in
// Dronetrack's units; nil means unknown. It is the input of the mapping to
// RIDAircraftState, kept apart from events.DroneState so the mapping does
// not change when the wire format grows.
type Telemetry struct {
	TS       time.Time
	Lat, Lng float64
	HAE      *float64 // m above the WGS84 ellipsoid
	Height   *float64 // m above the take-off point
	Track    *float64 // degrees clockwise from true north
	Speed    *float64 // ground speed, m/s
	VSpeed   *float64 // m/s, positive up
	HAcc     *float64 // horizontal accuracy, m (95 %)
	VAcc     *float64 // vertical accuracy, m (95 %)
	Armed    *bool
	Mode     *string
	Baro     *float64 // pressure altitude, m (1013.25 hPa)
}

// Fresh reports whether a position taken at ts is still within the
// near-real-time window at now. A timestamp ahead of now (a drone clock a
// little fast) counts as fresh.
func Fresh(ts, now time.Time) bool {
	return now.Sub(ts) <= NearRealTimeWindow
}

// HorizontalAccuracy maps a 95 % horizontal accuracy in metres to the
// standard's HorizontalAccuracy (ADS-B NACp steps): the best category whose
// bound the value is below.
func HorizontalAccuracy(m *float64) string {
	if m == nil || math.IsNaN(*m) || *m < 0 {
		return "HAUnknown"
	}
	steps := []struct {
		below float64
		name  string
	}{{1, "HA1m"}, {3, "HA3m"}, {10, "HA10m"}, {30, "HA30m"}, {92.6, "HA005NM"}, {185.2, "HA01NM"},
		{555.6, "HA03NM"}, {926, "HA05NM"}, {1852, "HA1NM"}, {3704, "HA2NM"}, {7408, "HA4NM"}, {18520, "HA10NM"}}
	for _, s := range steps {
		if *m < s.below {
			return s.name
		}
	}
	return "HA10NMPlus"
}

// VerticalAccuracy maps a 95 % vertical accuracy in metres to
// VerticalAccuracy.
func VerticalAccuracy(m *float64) string {
	if m == nil || math.IsNaN(*m) || *m < 0 {
		return "VAUnknown"
	}
	steps := []struct {
		below float64
		name  string
	}{{1, "VA1m"}, {3, "VA3m"}, {10, "VA10m"}, {25, "VA25m"}, {45, "VA45m"}, {150, "VA150m"}}
	for _, s := range steps {
		if *m < s.below {
			return s.name
		}
	}
	return "VA150mPlus"
}

// emergencyModes are flight modes (as MAVLink bridges and drones report
// them, compared case-insensitively) that mean the aircraft declared an
// emergency rather than flies its mission.
var emergencyModes = map[string]bool{"EMERGENCY": true, "FLIGHT_TERMINATION": true, "TERMINATE": true,
	"FLIGHTTERMINATION": true}

// Status is the RIDOperationalStatus of t: Emergency when the mode says so,
// Ground when the drone reports it is disarmed, Airborne when armed (or,
// without an armed flag, when it moves or is above its take-off point),
// else Undeclared.
func (t Telemetry) Status() string {
	if t.Mode != nil && emergencyModes[upper(*t.Mode)] {
		return "Emergency"
	}
	if t.Armed != nil {
		if *t.Armed {
			return "Airborne"
		}
		return "Ground"
	}
	if (t.Speed != nil && *t.Speed >= 1) || (t.Height != nil && *t.Height >= 2) {
		return "Airborne"
	}
	return "Undeclared"
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// round7 rounds degrees to the standard's 1e-7 resolution.
func round7(v float64) float64 { return math.Round(v*1e7) / 1e7 }

// round2 keeps two decimals (centimetres, hundredths of a degree or m/s):
// finer than every resolution the standard asks for.
func round2(v float64) float64 { return math.Round(v*100) / 100 }

// Position is the RIDAircraftPosition of t.
func (t Telemetry) Position() Position {
	p := Position{Lat: round7(t.Lat), Lng: round7(t.Lng), Alt: UnknownAlt,
		AccuracyH: HorizontalAccuracy(t.HAcc), AccuracyV: VerticalAccuracy(t.VAcc)}
	if t.HAE != nil && !math.IsNaN(*t.HAE) {
		p.Alt = round2(*t.HAE)
	}
	if t.Height != nil && !math.IsNaN(*t.Height) {
		p.Height = &Height{Distance: round2(*t.Height), Reference: "TakeoffLocation"}
	}
	if t.Baro != nil && !math.IsNaN(*t.Baro) {
		v := round2(*t.Baro)
		p.PressureAltitude = &v
	}
	return p
}

// State is the RIDAircraftState of t, with the standard's special values
// for what is unknown and its caps on speeds.
func (t Telemetry) State() AircraftState {
	s := AircraftState{
		Timestamp:         NewTime(t.TS),
		OperationalStatus: t.Status(),
		Position:          t.Position(),
		Track:             UnknownTrack,
		Speed:             UnknownSpeed,
		SpeedAccuracy:     "SAUnknown",
		VerticalSpeed:     UnknownVerticalSpeed,
	}
	if t.Track != nil && !math.IsNaN(*t.Track) {
		tr := math.Mod(*t.Track, 360)
		if tr < 0 {
			tr += 360
		}
		s.Track = round2(tr)
		if s.Track >= 360 {
			s.Track = 0
		}
	}
	if t.Speed != nil && !math.IsNaN(*t.Speed) && *t.Speed >= 0 {
		s.Speed = round2(math.Min(*t.Speed, MaxSpeed))
	}
	if t.VSpeed != nil && !math.IsNaN(*t.VSpeed) {
		s.VerticalSpeed = round2(math.Max(-MaxVerticalSpeed, math.Min(*t.VSpeed, MaxVerticalSpeed)))
	}
	return s
}

// NewFlight is the RIDFlight of a drone with the given identity (nil when
// its owner declared none) at telemetry t.
func NewFlight(id string, ident *Identity, t Telemetry) Flight {
	st := t.State()
	return Flight{ID: id, AircraftType: ident.aircraftType(), CurrentState: &st}
}
