package alerting

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// circleRing is an n-vertex ring of radius r degrees around lat/lon,
// longitudes written in [-180, 180] as the API receives them.
func circleRing(n int, lat, lon, r float64) []Point {
	ring := make([]Point, n)
	for i := range ring {
		a := 2 * math.Pi * float64(i) / float64(n)
		ring[i] = Point{Lat: lat + r*math.Sin(a), Lon: wrap180(lon + r*math.Cos(a))}
	}
	return ring
}

// parallelRing is an n-vertex ring along one parallel, eastward around
// the pole.
func parallelRing(n int, lat float64) []Point {
	ring := make([]Point, n)
	for i := range ring {
		ring[i] = Point{Lat: lat, Lon: wrap180(float64(i) * 360 / float64(n))}
	}
	return ring
}

// TestFenceValidateShape: a polygon must be a simple ring with area, judged
// as polygonContains reads it (edges the short way in longitude, rings
// around a pole closed over it), so the rings TestPolygonContains relies on
// stay valid.
func TestFenceValidateShape(t *testing.T) {
	// A 40-vertex star: concave, valid.
	star := make([]Point, 40)
	for i := range star {
		r := 1.0
		if i%2 == 1 {
			r = 0.4
		}
		a := 2 * math.Pi * float64(i) / 40
		star[i] = Point{Lat: 10 + r*math.Sin(a), Lon: 20 + r*math.Cos(a)}
	}
	// A 1 cm by 100 m corridor near Zurich (1e-7° is about 1 cm).
	corridor := []Point{{47, 8.5}, {47, 8.501}, {47.0000001, 8.501}, {47.0000001, 8.5}}
	// A band eastward from 0° to 40° past a full turn (400° long): on the
	// globe it lies over itself.
	band := []Point{{0, 0}, {0, 100}, {0, -160}, {0, -60}, {0, 40}, {10, 40}, {10, -60}, {10, -160}, {10, 100}, {10, 0}}
	// Twice around the north pole, spiralling down from 85°N to 75°N.
	var spiral []Point
	for i := range 16 {
		spiral = append(spiral, Point{Lat: 85 - float64(i)*10/16, Lon: wrap180(float64(i) * 45)})
	}
	for _, tt := range []struct {
		name   string
		ring   []Point
		field  string // "" for valid
		reason string // a piece of the reason
	}{
		{"square", []Point{{52, 13}, {52, 14}, {53, 14}, {53, 13}}, "", ""},
		{"triangle", []Point{{0, 0}, {0, 1}, {1, 1}}, "", ""},
		{"concave star", star, "", ""},
		{"thin corridor", corridor, "", ""},
		{"dateline box", []Point{{-5, 175}, {-5, -175}, {5, -175}, {5, 175}}, "", ""},
		{"dateline box clockwise", []Point{{5, 175}, {5, -175}, {-5, -175}, {-5, 175}}, "", ""},
		{"dateline box typed in the editor", []Point{{0, 170}, {0, -170}, {10, -170}, {10, 170}}, "", ""},
		{"edge along 180, written both ways", []Point{{0, 170}, {0, 180}, {10, -180}, {10, 170}}, "", ""},
		{"edge along the antimeridian", []Point{{0, 170}, {0, 180}, {10, 180}, {10, 170}}, "", ""},
		{"arctic ring around the pole", []Point{{80, 0}, {80, 90}, {80, 180}, {80, -90}}, "", ""},
		{"antarctic ring wound westward", []Point{{-70, 0}, {-70, -120}, {-70, 120}}, "", ""},
		{"1000 vertices", circleRing(1000, 47, 8, 0.5), "", ""},
		{"1000 vertices across the antimeridian", circleRing(1000, -20, 179.5, 3), "", ""},
		{"1000 vertices around the south pole", parallelRing(1000, -80), "", ""},

		{"bow tie", []Point{{0, 0}, {0, 1}, {1, 0}, {1, 1}}, "polygon[3]", "crosses"},
		{"bow tie across the antimeridian", []Point{{0, 170}, {0, -170}, {10, 170}, {10, -170}}, "polygon[3]", "crosses"},
		{"repeated vertex", []Point{{0, 0}, {0, 1}, {0, 1}, {1, 1}}, "polygon[2]", "same point as the vertex before it"},
		{"first vertex repeated at the end", []Point{{0, 0}, {0, 1}, {1, 1}, {0, 0}}, "polygon[0]", "do not repeat the first vertex"},
		{"first vertex repeated, fractional degrees", []Point{{47.1, 8.5417}, {47.1, 8.5533}, {47.2, 8.5533}, {47.1, 8.5417}}, "polygon[0]", "do not repeat the first vertex"},
		{"first vertex repeated around the pole", []Point{{80, 0}, {80, 90}, {80, 180}, {80, -90}, {80, 0}}, "polygon[0]", "do not repeat the first vertex"},
		{"180 and -180 are one point", []Point{{0, 180}, {0, -180}, {10, 170}}, "polygon[1]", "same point"},
		{"all on one line", []Point{{0, 0}, {1, 1}, {2, 2}, {3, 3}}, "polygon", "no area"},
		{"spike back along an edge", []Point{{0, 0}, {0, 2}, {0, 1}, {1, 1}}, "polygon[1]", "crosses or touches"},
		{"pinched at a vertex", []Point{{0, 0}, {0, 2}, {1, 1}, {2, 2}, {2, 0}, {1, 1}}, "polygon", "crosses or touches"},
		{"band over itself past a full turn", band, "polygon", "crosses or touches"},
		{"arctic ring out of order", []Point{{80, 0}, {80, 180}, {80, 90}, {80, -90}}, "polygon", "crosses or touches"},
		{"twice around the pole", spiral, "polygon", "crosses or touches"},
		{"ring of points at the pole", []Point{{90, 0}, {90, 120}, {90, -120}}, "polygon", "no area"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := Fence{Name: "f", Mode: ModeKeepOut, Polygon: tt.ring}
			err := f.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v; want valid", err)
				}
				return
			}
			fe, ok := err.(*FieldError)
			if !ok {
				t.Fatalf("Validate = %v; want a FieldError on %s", err, tt.field)
			}
			// "polygon" in the table accepts any vertex of it too.
			if fe.Field != tt.field && !(tt.field == "polygon" && strings.HasPrefix(fe.Field, "polygon[")) {
				t.Errorf("field %q; want %q (%s)", fe.Field, tt.field, fe.Reason)
			}
			if !strings.Contains(fe.Reason, tt.reason) {
				t.Errorf("reason %q; want it to say %q", fe.Reason, tt.reason)
			}
			t.Logf("%s: %s", fe.Field, fe.Reason)
		})
	}
}

// TestValidRingsContainTheirCentre: the 1000-vertex rings the shape test
// accepts are the shapes Contains sees (a ring around its centre).
func TestValidRingsContainTheirCentre(t *testing.T) {
	for _, c := range []struct{ lat, lon, r float64 }{{47, 8, 0.5}, {-20, 179.5, 3}, {0, -179.9, 1}} {
		ring := circleRing(1000, c.lat, c.lon, c.r)
		f := Fence{Name: "c", Mode: ModeKeepOut, Polygon: ring}
		if err := f.Validate(); err != nil {
			t.Fatalf("ring around %v,%v: %v", c.lat, c.lon, err)
		}
		if !f.Contains(c.lat, c.lon) {
			t.Errorf("ring around %v,%v does not contain its centre", c.lat, c.lon)
		}
	}
}

// BenchmarkValidate1000 is the worst case the API accepts: a valid
// 1000-vertex ring, every pair of edges compared.
func BenchmarkValidate1000(b *testing.B) {
	for _, c := range []struct{ lat, lon float64 }{{47, 8}, {0, 179.5}} {
		f := Fence{Name: "c", Mode: ModeKeepIn, Polygon: circleRing(1000, c.lat, c.lon, 1)}
		b.Run(fmt.Sprintf("%v,%v", c.lat, c.lon), func(b *testing.B) {
			for b.Loop() {
				if err := f.Validate(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
