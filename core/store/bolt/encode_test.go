package bolt

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// A history point is stored as json.Marshal's bytes whichever way it is
// encoded: a redelivery compares the bytes it would write with the stored
// ones (equal bytes: nothing written), and data dirs written by earlier
// versions hold encoding/json's. Ids and times of every form, reports of
// every shape, including what the hand encoder hands to encoding/json.
func TestTrackPointEncodingMatchesJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	plain := []string{"d1", "acme", "", "drone-0042"}
	odd := []string{"a<b", "x&y", "q\"uote", "back\\slash", "ünï", "tab\t", "line\u2028sep"}
	id := func() string {
		if rng.IntN(8) == 0 {
			return odd[rng.IntN(len(odd))]
		}
		return plain[rng.IntN(len(plain))]
	}
	zones := []*time.Location{time.UTC, time.Local, time.FixedZone("", 2*3600), time.FixedZone("x", -5*3600-30*60),
		time.FixedZone("odd", 3600+7), time.FixedZone("far", 25*3600)}
	tm := func() time.Time {
		switch rng.IntN(16) {
		case 0:
			return time.Time{}
		case 1:
			return time.Date(10000+rng.IntN(5), 1, 1, 0, 0, 0, 0, time.UTC)
		case 2:
			return time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		t := time.Date(1960+rng.IntN(80), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60),
			[]int{0, 123000000, 123456789, 5, 100}[rng.IntN(5)], time.UTC)
		return t.In(zones[rng.IntN(len(zones))])
	}
	opt := func() *float64 {
		if rng.IntN(2) == 0 {
			return nil
		}
		return new([]float64{0, -1, 47.123456789, 1e21, 1e-7, 520}[rng.IntN(6)])
	}
	hand := 0
	for range 5000 {
		r := events.Report{TS: tm(), Lat: rng.NormFloat64() * 90, Lon: rng.NormFloat64() * 180, Alt: opt(), Speed: opt(),
			Battery: opt(), Height: opt()}
		if rng.IntN(3) == 0 {
			r.Mode = new([]string{"AUTO.MISSION", "<&>", "ünï", "a\"b"}[rng.IntN(4)])
		}
		if rng.IntN(3) == 0 {
			r.Armed = new(rng.IntN(2) == 0)
		}
		p := store.TrackPoint{TenantID: id(), DroneID: id(), Report: r, ExpireAt: tm()}
		want, wantErr := json.Marshal(p)
		got, gotErr := encodeTrackPoint(p)
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("encode %+v: error %v, encoding/json's %v", p, gotErr, wantErr)
		}
		if string(got) != string(want) {
			t.Fatalf("encode %+v:\n%s\nencoding/json:\n%s", p, got, want)
		}
		if _, ok := appendTrackPoint(nil, p); ok {
			hand++
		}
	}
	if hand < 1000 {
		t.Fatalf("only %d of 5,000 points took the hand encoder: the test no longer covers it", hand)
	}
}
