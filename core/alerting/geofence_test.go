package alerting

import "testing"

func TestPolygonContains(t *testing.T) {
	square := []Point{{52, 13}, {52, 14}, {53, 14}, {53, 13}}
	// 10° wide box across the antimeridian, vertices given in [-180, 180].
	dateline := []Point{{-5, 175}, {-5, -175}, {5, -175}, {5, 175}}
	// The same box, wound the other way.
	datelineCW := []Point{{5, 175}, {5, -175}, {-5, -175}, {-5, 175}}
	// A ring at 80°N around the north pole.
	arctic := []Point{{80, 0}, {80, 90}, {80, 180}, {80, -90}}
	// A ring at 70°S around the south pole, wound westward.
	antarctic := []Point{{-70, 0}, {-70, -120}, {-70, 120}}
	// A thin fence whose edge runs along the antimeridian on the east.
	touching := []Point{{0, 170}, {0, 180}, {10, 180}, {10, 170}}
	tests := []struct {
		name     string
		ring     []Point
		lat, lon float64
		want     bool
	}{
		{"inside square", square, 52.5, 13.5, true},
		{"outside square", square, 51.9, 13.5, false},
		{"dateline: east side", dateline, 0, 178, true},
		{"dateline: west side", dateline, 0, -178, true},
		{"dateline: on the line at +180", dateline, 0, 180, true},
		{"dateline: on the line at -180", dateline, 0, -180, true},
		{"dateline: outside east", dateline, 0, 170, false},
		{"dateline: outside west", dateline, 0, -170, false},
		{"dateline: far side of the world", dateline, 0, 0, false},
		{"dateline clockwise: inside", datelineCW, 1, -179, true},
		{"dateline clockwise: outside", datelineCW, 6, 179, false},
		{"edge at 180: inside written as -180", touching, 5, -179.999999, false},
		{"edge at 180: inside", touching, 5, 175, true},
		{"arctic: at the pole", arctic, 90, 0, true},
		{"arctic: 85N any longitude", arctic, 85, -135, true},
		{"arctic: 85N near the dateline", arctic, 85, 179.9, true},
		{"arctic: 75N outside", arctic, 75, 45, false},
		{"antarctic: at the pole", antarctic, -90, 0, true},
		{"antarctic: 80S", antarctic, -80, 170, true},
		{"antarctic: 60S outside", antarctic, -60, 10, false},
		{"antarctic: north pole outside", antarctic, 90, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := polygonContains(tt.ring, tt.lat, tt.lon); got != tt.want {
				t.Errorf("contains(%g, %g) = %v; want %v", tt.lat, tt.lon, got, tt.want)
			}
		})
	}
}

func TestCircleContains(t *testing.T) {
	tests := []struct {
		name     string
		c        Point
		r        float64
		lat, lon float64
		want     bool
	}{
		{"centre", Point{52.5, 13.4}, 100, 52.5, 13.4, true},
		{"just inside 1 km", Point{0, 0}, 1000, 0.0089, 0, true},               // ~990 m
		{"just outside 1 km", Point{0, 0}, 1000, 0.0091, 0, false},             // ~1012 m
		{"across the antimeridian", Point{0, 179.999}, 500, 0, -179.999, true}, // ~222 m
		{"over the pole", Point{89.999, 0}, 300, 89.999, 180, true},            // ~222 m
		{"far longitude near the pole", Point{89.9, 0}, 5000, 89.9, 90, false}, // ~15.7 km
	}
	for _, tt := range tests {
		fence := Fence{Mode: ModeKeepOut, Center: &tt.c, RadiusM: tt.r}
		if got := fence.Contains(tt.lat, tt.lon); got != tt.want {
			t.Errorf("%s: Contains = %v; want %v", tt.name, got, tt.want)
		}
		if got := fence.Breached(tt.lat, tt.lon); got != tt.want {
			t.Errorf("%s: keep-out Breached = %v; want %v", tt.name, got, tt.want)
		}
	}
}

func TestFenceValidate(t *testing.T) {
	ok := Fence{Name: "a", Mode: ModeKeepIn, Polygon: []Point{{0, 0}, {0, 1}, {1, 1}}}
	for _, tt := range []struct {
		name  string
		mod   func(*Fence)
		field string
	}{
		{"valid", func(*Fence) {}, ""},
		{"no name", func(f *Fence) { f.Name = "" }, "name"},
		{"bad mode", func(f *Fence) { f.Mode = "sideways" }, "mode"},
		{"two vertices", func(f *Fence) { f.Polygon = f.Polygon[:2] }, "polygon"},
		{"lat out of range", func(f *Fence) { f.Polygon[1].Lat = 91 }, "polygon[1].lat"},
		{"lon out of range", func(f *Fence) { f.Polygon[2].Lon = -181 }, "polygon[2].lon"},
		{"no shape", func(f *Fence) { f.Polygon = nil }, "polygon"},
		{"circle without radius", func(f *Fence) { f.Polygon, f.Center = nil, &Point{0, 0} }, "radiusM"},
	} {
		f := ok
		f.Polygon = append([]Point(nil), ok.Polygon...)
		tt.mod(&f)
		got := ""
		if fe, isFE := f.Validate().(*FieldError); isFE {
			got = fe.Field
		}
		if got != tt.field {
			t.Errorf("%s: field = %q; want %q", tt.name, got, tt.field)
		}
	}
}
