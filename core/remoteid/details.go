package remoteid

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"strconv"
)

// Point is a location with an optional height above the WGS84 ellipsoid.
type Point struct {
	Lat, Lng float64
	HAE      *float64
}

// Details is the RIDFlightDetails of a drone's flight. op is where the
// operator is (the take-off point; nil when unknown). key is the server's
// secret: it keys the obfuscation offset, so nobody without it can undo
// the offset, and the utm_id reported when the owner declared neither a
// serial nor a registration.
func Details(flightID string, ident *Identity, op *Point, key []byte) FlightDetails {
	d := FlightDetails{ID: flightID}
	uas := UASID{}
	mode := OperatorObfuscated
	if ident != nil {
		uas.SerialNumber, uas.RegistrationID = ident.SerialNumber, ident.RegistrationID
		d.OperatorID = ident.OperatorID
		if ident.EUCategory != "" || ident.EUClass != "" {
			c := EUClassification{Category: ident.EUCategory, Class: ident.EUClass}
			if c.Category == "" {
				c.Category = "EUCategoryUndefined"
			}
			if c.Class == "" {
				c.Class = "EUClassUndefined"
			}
			d.EUClassification = &c
		}
		if ident.OperatorLocation != "" {
			mode = ident.OperatorLocation
		}
	}
	if uas.SerialNumber == "" && uas.RegistrationID == "" {
		// The standard wants at least one UAS id; a session id the SP can
		// trace back to the drone is what utm_id is for.
		uas.UTMID = UTMID(key, flightID)
	}
	d.UASID = &uas
	if op != nil && mode != OperatorHidden {
		pos := LatLng{Lat: round7(op.Lat), Lng: round7(op.Lng)}
		if mode == OperatorObfuscated {
			pos = Obfuscate(op.Lat, op.Lng, key, flightID)
		}
		loc := OperatorLocation{Position: pos}
		if op.HAE != nil && mode == OperatorExact {
			loc.Altitude, loc.AltitudeType = NewAltitude(round2(*op.HAE)), "Takeoff"
		}
		d.OperatorLocation = &loc
	}
	return d
}

// Obfuscate moves an operator location between MinObfuscationM and twice
// that in a direction and distance drawn from a keyed hash of the flight and
// the location (rounded to about 100 m). The offset is the same on every
// query and every replica, so averaging many answers does not reveal the
// true point, and a new take-off place gets a new offset.
func Obfuscate(lat, lng float64, key []byte, flightID string) LatLng {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("operator-location\x00" + flightID + "\x00" +
		strconv.FormatFloat(math.Round(lat*1000), 'f', 0, 64) + "," + strconv.FormatFloat(math.Round(lng*1000), 'f', 0, 64)))
	h := m.Sum(nil)
	u1 := float64(binary.BigEndian.Uint64(h[0:8])>>11) / (1 << 53)
	u2 := float64(binary.BigEndian.Uint64(h[8:16])>>11) / (1 << 53)
	bearing := u1 * 2 * math.Pi
	dist := MinObfuscationM * (1 + u2)
	la, lo := Destination(lat, lng, bearing, dist)
	return LatLng{Lat: round7(la), Lng: round7(lo)}
}

// Destination is the point dist metres from (lat, lng) along the initial
// bearing (radians clockwise from north) on a sphere.
func Destination(lat, lng, bearing, dist float64) (float64, float64) {
	const rad = math.Pi / 180
	φ1, λ1, δ := lat*rad, lng*rad, dist/earthRadiusM
	φ2 := math.Asin(math.Sin(φ1)*math.Cos(δ) + math.Cos(φ1)*math.Sin(δ)*math.Cos(bearing))
	λ2 := λ1 + math.Atan2(math.Sin(bearing)*math.Sin(δ)*math.Cos(φ1), math.Cos(δ)-math.Sin(φ1)*math.Sin(φ2))
	lon := math.Mod(λ2/rad+540, 360) - 180
	return φ2 / rad, lon
}

// UTMID is a UUID (version 4 layout) derived from the flight id under the
// server's key: stable for the flight, traceable by the SP, meaningless to
// others.
func UTMID(key []byte, flightID string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("utm-id\x00" + flightID))
	b := m.Sum(nil)[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
