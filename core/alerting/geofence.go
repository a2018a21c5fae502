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
		if err := validateRing(f.Polygon); err != nil {
			return err
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

// unwrappedRing is a polygon ring as polygonContains sees it: longitudes
// unwrapped along the ring (each edge taken the short way, within ±180°),
// so a ring across the antimeridian is one continuous shape. xs[n], ys[n]
// close the ring: they are vertex 0 again, turns·360° further east when the
// ring circles a pole (turns ≠ 0), else exactly vertex 0.
type unwrappedRing struct {
	xs, ys []float64
	turns  int
}

func unwrap(ring []Point) unwrappedRing {
	n := len(ring)
	r := unwrappedRing{xs: make([]float64, n+1), ys: make([]float64, n+1)}
	x := ring[0].Lon
	for i, p := range ring {
		if i > 0 {
			x += wrap180(p.Lon - ring[i-1].Lon)
		}
		r.xs[i], r.ys[i] = x, p.Lat
	}
	end := x + wrap180(ring[0].Lon-ring[n-1].Lon)
	// The winding is a whole number of turns up to rounding; snap it, so
	// the closing vertex is exactly vertex 0 shifted.
	r.turns = int(math.Round((end - r.xs[0]) / 360))
	r.xs[n], r.ys[n] = r.xs[0]+float64(r.turns)*360, r.ys[0]
	return r
}

// validateRing refuses a ring that is not a simple polygon: a vertex equal
// to the one before it, no area (all vertices on one line), or two edges
// that cross or touch. It works in the unwrapped longitudes polygonContains
// uses, and compares edges also a turn (±360°) apart, as they lie on the
// globe, so valid rings across the antimeridian or around a pole pass.
// Checking every pair of edges is O(n²): half a million pairs at the
// 1000-vertex limit, a few milliseconds.
func validateRing(ring []Point) error {
	n := len(ring)
	for i := range n {
		// Compared as given, not unwrapped, where rounding along the ring
		// could hide a repeat; 180 and -180 are one longitude.
		j := (i + 1) % n
		if ring[j].Lat == ring[i].Lat && wrap180(ring[j].Lon-ring[i].Lon) == 0 {
			if j == 0 {
				return &FieldError{"polygon[0]", fmt.Sprintf("is the same point as the last vertex, polygon[%d]: the ring closes by itself, do not repeat the first vertex", n-1)}
			}
			return &FieldError{fmt.Sprintf("polygon[%d]", j), fmt.Sprintf("is the same point as the vertex before it, polygon[%d]", i)}
		}
	}
	r := unwrap(ring)
	if r.flat() {
		return &FieldError{"polygon", "has no area: its vertices lie on one line"}
	}
	if i, j, ok := r.crossing(); ok {
		return &FieldError{fmt.Sprintf("polygon[%d]", j), fmt.Sprintf("the edge from polygon[%d] to polygon[%d] crosses or touches the edge from polygon[%d] to polygon[%d]: the outline must not cross itself", j, (j+1)%n, i, (i+1)%n)}
	}
	return nil
}

// flat reports whether the shape has no area: every vertex on the line
// through vertex 0 and the vertex farthest from it, to within 1e-12 of that
// distance (rounding, not a real fence: a 1 cm by 100 m corridor is 1e-4).
// A ring around a pole is closed over the pole first, as polygonContains
// closes it: a ring along one parallel has area, a ring of points at the
// pole has none. (A ring with area whose signed area cancels, a bow tie,
// is refused as crossing itself.)
func (r unwrappedRing) flat() bool {
	xs, ys := r.xs, r.ys
	if r.turns != 0 {
		pole := 90.0
		sum := 0.0
		for _, y := range ys[:len(ys)-1] {
			sum += y
		}
		if sum < 0 {
			pole = -90
		}
		n := len(xs)
		xs = append(append([]float64(nil), xs...), xs[n-1], xs[0])
		ys = append(append([]float64(nil), ys...), pole, pole)
	}
	far, farD := 0, 0.0
	for i := range xs {
		if d := math.Hypot(xs[i]-xs[0], ys[i]-ys[0]); d > farD {
			far, farD = i, d
		}
	}
	if farD == 0 {
		return true
	}
	dx, dy := xs[far]-xs[0], ys[far]-ys[0]
	for i := range xs {
		// The cross product is the distance from the line times farD.
		if math.Abs(dx*(ys[i]-ys[0])-dy*(xs[i]-xs[0])) > 1e-12*farD*farD {
			return false
		}
	}
	return true
}

// crossing finds two edges i < j (edge k runs from vertex k to k+1) that
// cross or touch, other than where consecutive edges share their vertex.
func (r unwrappedRing) crossing() (i, j int, found bool) {
	n := len(r.xs) - 1
	type box struct{ x0, x1, y0, y1 float64 }
	boxes := make([]box, n)
	for k := range n {
		boxes[k] = box{math.Min(r.xs[k], r.xs[k+1]), math.Max(r.xs[k], r.xs[k+1]), math.Min(r.ys[k], r.ys[k+1]), math.Max(r.ys[k], r.ys[k+1])}
	}
	for i = range n {
		a, b := boxes[i], r.pt(i)
		for j = i + 1; j < n; j++ {
			c := boxes[j]
			if c.y0 > a.y1 || c.y1 < a.y0 {
				continue
			}
			// Edge j shifted by whole turns so it may meet edge i: each
			// edge spans at most 180°, so at most two shifts qualify.
			for k := math.Ceil((a.x0 - c.x1) / 360); k <= math.Floor((a.x1-c.x0)/360); k++ {
				d := k * 360
				p, q := point{r.xs[j] + d, r.ys[j]}, point{r.xs[j+1] + d, r.ys[j+1]}
				switch {
				case j == i+1 && k == 0: // share vertex i+1
					if overlapAt(b.p, b.q, q) {
						return i, j, true
					}
				case i == 0 && j == n-1 && int(k) == -r.turns: // the closing edge ends at vertex 0
					if overlapAt(b.q, b.p, p) {
						return i, j, true
					}
				default:
					if segmentsMeet(b.p, b.q, p, q) {
						return i, j, true
					}
				}
			}
		}
	}
	return 0, 0, false
}

type point struct{ x, y float64 }

type segment struct{ p, q point }

func (r unwrappedRing) pt(k int) segment {
	return segment{point{r.xs[k], r.ys[k]}, point{r.xs[k+1], r.ys[k+1]}}
}

// orient is the sign of the turn a→b→c: +1 left, -1 right, 0 collinear.
func orient(a, b, c point) int {
	v := (b.x-a.x)*(c.y-a.y) - (b.y-a.y)*(c.x-a.x)
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// within reports whether c, collinear with a and b, lies on segment ab.
func within(a, b, c point) bool {
	return math.Min(a.x, b.x) <= c.x && c.x <= math.Max(a.x, b.x) && math.Min(a.y, b.y) <= c.y && c.y <= math.Max(a.y, b.y)
}

// segmentsMeet reports whether segments ab and cd have a point in common:
// they cross, or an end of one lies on the other.
func segmentsMeet(a, b, c, d point) bool {
	o1, o2, o3, o4 := orient(a, b, c), orient(a, b, d), orient(c, d, a), orient(c, d, b)
	if o1*o2 < 0 && o3*o4 < 0 {
		return true
	}
	return (o1 == 0 && within(a, b, c)) || (o2 == 0 && within(a, b, d)) ||
		(o3 == 0 && within(c, d, a)) || (o4 == 0 && within(c, d, b))
}

// overlapAt reports whether consecutive edges a→v and v→c (sharing v) run
// back over each other: collinear and pointing the same way from v.
func overlapAt(a, v, c point) bool {
	ax, ay, cx, cy := a.x-v.x, a.y-v.y, c.x-v.x, c.y-v.y
	return ax*cy-ay*cx == 0 && ax*cx+ay*cy > 0
}
