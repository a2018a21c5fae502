package bolt

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/alerting"
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

// A drone's alert tracker is stored as json.Marshal's bytes and read back
// as json.Unmarshal reads them, whichever way: the hand encoder and decoder
// of the common form, or encoding/json for any other.
func TestTrackerEncodingMatchesJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	ids := []string{"acme", "d1", "", "acme", "d2", "drone-7", "a<b", "q\"uote", "ünï"}
	zones := []*time.Location{time.UTC, time.FixedZone("", 2*3600), time.UTC, time.FixedZone("odd", 3600+7)}
	tm := func() time.Time {
		if rng.IntN(6) == 0 {
			return time.Time{}
		}
		return time.Date(2020+rng.IntN(10), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60),
			[]int{0, 123456789, 5}[rng.IntN(3)], zones[rng.IntN(len(zones))])
	}
	hand := 0
	for range 3000 {
		id := func() string { return ids[rng.IntN(len(ids)-rng.IntN(2)*3)] } // mostly plain
		tr := alerting.Tracker{TenantID: id(), DroneID: id(),
			LastTS: tm(), LastSeen: tm(), LinkLost: rng.IntN(2) == 0}
		switch rng.IntN(6) {
		case 0:
			tr.Open = map[string]alerting.Alert{"battery.low": {ID: "a1", Kind: "battery.low"}}
		case 1:
			tr.Claims = map[string]time.Time{"e1": tm()}
		case 2:
			tr.Open = map[string]alerting.Alert{} // empty: omitted, as encoding/json does
		}
		want, err := json.Marshal(tr)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendTracker(nil, tr)
		if ok {
			hand++
			if string(got) != string(want) {
				t.Fatalf("encode %+v:\n%s\nencoding/json:\n%s", tr, got, want)
			}
		}
		for _, raw := range []string{string(want), strings.Replace(string(want), `"linkLost"`, `"linkLost" `, 1),
			strings.Replace(string(want), `{"tenantId"`, `{"droneId":"x","tenantId"`, 1)} {
			base := alerting.Tracker{TenantID: "preset", DroneID: "preset"}
			viaJSON, viaHand := base, base
			if err := json.Unmarshal([]byte(raw), &viaJSON); err != nil {
				t.Fatal(err)
			}
			if !readTracker([]byte(raw), &viaHand) {
				if err := json.Unmarshal([]byte(raw), &viaHand); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(viaJSON, viaHand); diff != "" {
				t.Fatalf("decode %s (-encoding/json +hand):\n%s", raw, diff)
			}
			if viaJSON.LastTS.String() != viaHand.LastTS.String() || viaJSON.LastSeen.String() != viaHand.LastSeen.String() {
				t.Fatalf("decode %s: times %v %v, encoding/json's %v %v", raw, viaHand.LastTS, viaHand.LastSeen, viaJSON.LastTS, viaJSON.LastSeen)
			}
		}
	}
	if hand < 500 {
		t.Fatalf("only %d of 3,000 trackers took the hand encoder: the test no longer covers it", hand)
	}
}
