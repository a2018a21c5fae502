package remoteid

import (
	"time"

	"github.com/dronetrack/dronetrack/events"
)

// FromState is the Telemetry of a drone's latest state. Altitude is the
// height above the WGS84 ellipsoid the drone reported (hae), never its
// mean-sea-level alt: the two differ by the geoid (up to ~100 m), and the
// standard wants the ellipsoid. Ground speed is the reported one, else the
// one derived from successive positions; track is the course over ground,
// else the reported heading.
func FromState(s events.DroneState) Telemetry {
	t := Telemetry{TS: s.TS, Lat: s.Lat, Lng: s.Lon, HAE: s.HAE, Height: s.Height, Speed: s.Speed, Track: s.Course,
		VSpeed: s.VSpeed, HAcc: s.HAcc, VAcc: s.VAcc, Armed: s.Armed, Mode: s.Mode}
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
	return Telemetry{TS: r.TS, Lat: r.Lat, Lng: r.Lon, HAE: r.HAE, Height: r.Height, Speed: r.Speed, Track: r.Heading,
		VSpeed: r.VSpeed, HAcc: r.HAcc, VAcc: r.VAcc, Armed: r.Armed, Mode: r.Mode}
}

// Home is the operator location a state implies: the drone's home (take-off,
// return-to-launch) point, nil while unknown. Its height above the
// ellipsoid is the home's mean-sea-level altitude plus the geoid
// separation the drone's own hae and alt show (the geoid changes by
// centimetres over a flight's extent); unknown when any of them is.
func Home(s events.DroneState) *Point {
	if s.Home == nil {
		return nil
	}
	p := &Point{Lat: s.Home.Lat, Lng: s.Home.Lon}
	if s.Home.Alt != nil && s.HAE != nil && s.Alt != nil {
		v := *s.Home.Alt + (*s.HAE - *s.Alt)
		p.HAE = &v
	}
	return p
}

// FreshState reports whether a fleet drone's latest state may be reported:
// its position is Fresh and process accepted it (UpdatedAt) within the
// near-real-time window too. The second test keeps a drone whose clock
// runs fast (ingest allows events.MaxFutureSkew) from staying on display
// providers' maps for minutes after it fell silent. A state without
// UpdatedAt is judged by its timestamp alone.
func FreshState(st events.DroneState, now time.Time) bool {
	return Fresh(st.TS, now) && (st.UpdatedAt.IsZero() || Fresh(st.UpdatedAt, now))
}
