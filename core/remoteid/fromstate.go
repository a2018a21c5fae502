package remoteid

import "github.com/dronetrack/dronetrack/events"

// FromState is the Telemetry of a drone's latest state. Ground speed is the
// reported one, else the one derived from successive positions; track is
// the course over ground, else the reported heading.
func FromState(s events.DroneState) Telemetry {
	t := Telemetry{TS: s.TS, Lat: s.Lat, Lng: s.Lon, Speed: s.Speed, Track: s.Course}
	if t.Speed == nil {
		t.Speed = s.GroundSpeed
	}
	if t.Track == nil {
		t.Track = s.Heading
	}
	return t
}

// FromReport is the Telemetry of one history sample (recent positions).
func FromReport(r events.Report) Telemetry {
	return Telemetry{TS: r.TS, Lat: r.Lat, Lng: r.Lon, Speed: r.Speed, Track: r.Heading}
}

// Home is the operator location a state implies (the take-off point), nil
// while unknown.
func Home(s events.DroneState) *Point {
	return nil
}
