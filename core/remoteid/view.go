package remoteid

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// earthRadiusM is the mean Earth radius (IUGG) used for view diagonals and
// obfuscation offsets.
const earthRadiusM = 6371008.8

// ErrViewTooLarge is returned by CheckView for a view whose diagonal exceeds
// MaxViewDiagonalKm: the SP answers 413.
var ErrViewTooLarge = errors.New("view too large")

// View is the area of a /flights query: the smallest box bounded by two
// corners. The box may cross the antimeridian (when the corners' longitudes
// are more than 180° apart the smaller box goes the other way round).
type View struct {
	Lat1, Lng1, Lat2, Lng2 float64
}

// Box is a plain lon/lat rectangle, west <= east.
type Box struct {
	MinLng, MinLat, MaxLng, MaxLat float64
}

// Contains reports whether the point lies in the box, edges included.
func (b Box) Contains(lat, lng float64) bool {
	return lng >= b.MinLng && lng <= b.MaxLng && lat >= b.MinLat && lat <= b.MaxLat
}

// ParseView reads "lat1,lng1,lat2,lng2". A malformed or out-of-range view is
// an error the SP turns into 400.
func ParseView(s string) (View, error) {
	if s == "" {
		return View{}, errors.New("view is required: lat1,lng1,lat2,lng2")
	}
	parts := strings.Split(s, ",")
	if len(parts) != 4 {
		return View{}, fmt.Errorf("want lat1,lng1,lat2,lng2, got %d values", len(parts))
	}
	var v [4]float64
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return View{}, fmt.Errorf("value %d (%q) is not a number", i+1, p)
		}
		v[i] = f
	}
	view := View{Lat1: v[0], Lng1: v[1], Lat2: v[2], Lng2: v[3]}
	for _, lat := range []float64{view.Lat1, view.Lat2} {
		if lat < -90 || lat > 90 {
			return View{}, fmt.Errorf("latitude %v out of [-90, 90]", lat)
		}
	}
	for _, lng := range []float64{view.Lng1, view.Lng2} {
		if lng < -180 || lng > 180 {
			return View{}, fmt.Errorf("longitude %v out of [-180, 180]", lng)
		}
	}
	return view, nil
}

// DiagonalKm is the great-circle distance between the view's corners.
func (v View) DiagonalKm() float64 {
	return DistanceM(v.Lat1, v.Lng1, v.Lat2, v.Lng2) / 1000
}

// CheckView returns ErrViewTooLarge (wrapped, with the figure) for a view
// whose diagonal exceeds MaxViewDiagonalKm.
func CheckView(v View) error {
	if d := v.DiagonalKm(); d > MaxViewDiagonalKm {
		return fmt.Errorf("%w: diagonal %.2f km exceeds %.0f km", ErrViewTooLarge, d, MaxViewDiagonalKm)
	}
	return nil
}

// Boxes is the view as one or two west<=east boxes (two when it crosses the
// antimeridian), for geo indexes that do not wrap.
func (v View) Boxes() []Box {
	minLat, maxLat := math.Min(v.Lat1, v.Lat2), math.Max(v.Lat1, v.Lat2)
	w, e := math.Min(v.Lng1, v.Lng2), math.Max(v.Lng1, v.Lng2)
	if e-w <= 180 {
		return []Box{{MinLng: w, MinLat: minLat, MaxLng: e, MaxLat: maxLat}}
	}
	// The smaller box runs from e eastwards across ±180 to w.
	return []Box{
		{MinLng: e, MinLat: minLat, MaxLng: 180, MaxLat: maxLat},
		{MinLng: -180, MinLat: minLat, MaxLng: w, MaxLat: maxLat},
	}
}

// Contains reports whether the point lies in the view.
func (v View) Contains(lat, lng float64) bool {
	for _, b := range v.Boxes() {
		if b.Contains(lat, lng) {
			return true
		}
	}
	return false
}

// DistanceM is the haversine distance in metres.
func DistanceM(lat1, lng1, lat2, lng2 float64) float64 {
	const rad = math.Pi / 180
	dLat, dLng := (lat2-lat1)*rad, (lng2-lng1)*rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLng/2)*math.Sin(dLng/2)
	return 2 * earthRadiusM * math.Asin(math.Min(1, math.Sqrt(a)))
}
