package cache

import (
	"math"
	"testing"
)

// FuzzParseBBox: any query string either fails with an error or yields a
// finite, ordered box within the globe.
func FuzzParseBBox(f *testing.F) {
	for _, s := range []string{"8.4,47.3,8.6,47.5", "-180,-90,180,90", "1,2,3", "NaN,0,1,1", "Inf,0,1,1",
		" 1 , 2 , 3 , 4 ", "0x1p-2,0,1,1", "1e308,0,1e309,1", "10,0,5,1", "1,2,3,4,5", ",,,", "1_0,0,1,1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBBox(s)
		if err != nil {
			return
		}
		for _, v := range []float64{b.MinLon, b.MinLat, b.MaxLon, b.MaxLat} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("ParseBBox(%q) = %+v: not finite", s, b)
			}
		}
		if b.MinLon < -180 || b.MaxLon > 180 || b.MinLat < -90 || b.MaxLat > 90 || b.MinLon > b.MaxLon || b.MinLat > b.MaxLat {
			t.Fatalf("ParseBBox(%q) = %+v: out of range or inverted", s, b)
		}
		if !b.Contains(b.MinLon, b.MinLat) {
			t.Fatalf("box %+v does not contain its own corner", b)
		}
	})
}
