package alerting

import (
	"fmt"
	"math"
	"time"

	"github.com/dronetrack/dronetrack/core/telemetry"
)

// Fence modes.
const (
	ModeKeepIn  = "keep-in"  // breached while the drone is outside
	ModeKeepOut = "keep-out" // breached while the drone is inside
)

// Point is a position in degrees (WGS 84).
type Point struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// Fence is a tenant-defined zone: a polygon (a ring of at least three
// vertices, not repeating the first) or a circle (Center and RadiusM).
type Fence struct {
	ID        string    `json:"id"`
	TenantID  string    `json:"tenantId"`
	Name      string    `json:"name"`
	Mode      string    `json:"mode"`
	Polygon   []Point   `json:"polygon,omitempty"`
	Center    *Point    `json:"center,omitempty"`
	RadiusM   float64   `json:"radiusM,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Validate reports the first field that is wrong.
func (f Fence) Validate() error {
	if f.Name == "" || len(f.Name) > 200 {
		return &FieldError{"name", "must be 1 to 200 characters"}
	}
	if f.Mode != ModeKeepIn && f.Mode != ModeKeepOut {
		return &FieldError{"mode", `must be "keep-in" or "keep-out"`}
	}
	switch {
	case len(f.Polygon) > 0 && f.Center != nil:
		return &FieldError{"polygon", "give a polygon or a center and radiusM, not both"}
	case len(f.Polygon) > 0:
		if len(f.Polygon) < 3 || len(f.Polygon) > 1000 {
			return &FieldError{"polygon", "needs 3 to 1000 vertices"}
		}
		for i, p := range f.Polygon {
			if err := p.validate(fmt.Sprintf("polygon[%d]", i)); err != nil {
				return err
			}
		}
	case f.Center != nil:
		if err := f.Center.validate("center"); err != nil {
			return err
		}
		if !(f.RadiusM > 0 && f.RadiusM <= 20_000_000) {
			return &FieldError{"radiusM", "must be within (0, 20000000] metres"}
		}
	default:
		return &FieldError{"polygon", "give a polygon or a center and radiusM"}
	}
	return nil
}

func (p Point) validate(field string) error {
	if !(p.Lat >= -90 && p.Lat <= 90) {
		return &FieldError{field + ".lat", "must be within [-90, 90]"}
	}
	if !(p.Lon >= -180 && p.Lon <= 180) {
		return &FieldError{field + ".lon", "must be within [-180, 180]"}
	}
	return nil
}

// Breached reports whether a drone at lat/lon violates the fence.
func (f Fence) Breached(lat, lon float64) bool {
	in := f.Contains(lat, lon)
	if f.Mode == ModeKeepOut {
		return in
	}
	return !in
}

func (f Fence) breachMessage() string {
	if f.Mode == ModeKeepOut {
		return fmt.Sprintf("inside keep-out zone %q", f.Name)
	}
	return fmt.Sprintf("outside keep-in zone %q", f.Name)
}

// Contains reports whether lat/lon lies in the fence (on a circle's edge
// counts as inside).
func (f Fence) Contains(lat, lon float64) bool {
	if f.Center != nil {
		return telemetry.Distance(f.Center.Lat, f.Center.Lon, lat, lon) <= f.RadiusM
	}
	return polygonContains(f.Polygon, lat, lon)
}

// polygonContains tests a point against a ring of lat/lon vertices whose
// edges run the short way in longitude. Longitudes are unwrapped along the
// ring (each step taken within ±180°), so a ring across the antimeridian
// becomes one continuous shape, e.g. 170..190; the point is tested at lon
// and lon±360. A ring whose unwrapped longitudes wind a full turn goes
// around a pole: it is closed over the pole on its side (the sign of its
// mean latitude) before the test.
func polygonContains(ring []Point, lat, lon float64) bool {
	if len(ring) < 3 {
		return false
	}
	xs := make([]float64, 0, len(ring)+3)
	ys := make([]float64, 0, len(ring)+3)
	x := ring[0].Lon
	sumLat := 0.0
	for i, p := range ring {
		if i > 0 {
			x += wrap180(p.Lon - ring[i-1].Lon)
		}
		xs, ys = append(xs, x), append(ys, p.Lat)
		sumLat += p.Lat
	}
	// The closing edge back to the first vertex.
	winding := x + wrap180(ring[0].Lon-ring[len(ring)-1].Lon) - ring[0].Lon
	if math.Abs(winding) > 180 { // a full turn: the ring circles a pole
		pole := 90.0
		if sumLat < 0 {
			pole = -90
		}
		if lat == pole {
			return true
		}
		end := x + wrap180(ring[0].Lon-ring[len(ring)-1].Lon)
		xs = append(xs, end, end, xs[0])
		ys = append(ys, ring[0].Lat, pole, pole)
		// The point may sit turns away from where the ring starts: bring it
		// into [lo, lo+360) arithmetically (a loop adding 360 never ends
		// for ±Inf or a longitude so large that 360 is below its precision).
		lo := math.Min(xs[0], end)
		lon = lo + math.Mod(math.Mod(lon-lo, 360)+360, 360)
		return pip(xs, ys, lon, lat)
	}
	if math.Abs(lat) == 90 { // a ring that does not circle a pole cannot hold it
		return false
	}
	for _, dx := range []float64{0, 360, -360} {
		if pip(xs, ys, lon+dx, lat) {
			return true
		}
	}
	return false
}

// pip is the even-odd ray-casting test in the plane.
func pip(xs, ys []float64, x, y float64) bool {
	in := false
	for i, j := 0, len(xs)-1; i < len(xs); j, i = i, i+1 {
		if (ys[i] > y) != (ys[j] > y) {
			xc := xs[j] + (y-ys[j])*(xs[i]-xs[j])/(ys[i]-ys[j])
			if x < xc {
				in = !in
			}
		}
	}
	return in
}

// wrap180 brings a longitude difference into [-180, 180).
func wrap180(d float64) float64 {
	d = math.Mod(d+180, 360)
	if d < 0 {
		d += 360
	}
	return d - 180
}
