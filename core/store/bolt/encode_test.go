package bolt

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// A history point decodes from what it is stored as (the compact form, or
// JSON where that cannot hold it) exactly as from encoding/json's bytes,
// the form of data dirs written by earlier versions: ids and times of every
// form (zones included: a time must come back in the location encoding/json
// gives it), reports of every shape. A redelivery compares the bytes it
// would write with the stored ones, so the same point must encode alike.
func TestTrackPointFormsDecodeAlike(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	plain := []string{"d1", "acme", "", "drone-0042"}
	odd := []string{"a<b", "x&y", "q\"uote", "back\\slash", "ünï", "tab\t", "line\u2028sep", "bad\xffutf8"}
	id := func() string {
		if rng.IntN(8) == 0 {
			return odd[rng.IntN(len(odd))]
		}
		return plain[rng.IntN(len(plain))]
	}
	zones := []*time.Location{time.UTC, time.Local, time.FixedZone("", 2*3600), time.FixedZone("x", -5*3600-30*60),
		time.FixedZone("odd", 3600+7), time.FixedZone("far", 25*3600), time.FixedZone("zero", 0)}
	if loc, err := time.LoadLocation("Europe/Berlin"); err == nil {
		zones = append(zones, loc)
	}
	tm := func() time.Time {
		switch rng.IntN(16) {
		case 0:
			return time.Time{}
		case 1:
			return time.Date(10000+rng.IntN(5), 1, 1, 0, 0, 0, 0, time.UTC)
		case 2:
			return time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)
		case 3:
			return time.Date(1+rng.IntN(1000), 1, 1, 0, 0, 0, 0, time.UTC)
		}
		t := time.Date(1960+rng.IntN(80), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60),
			[]int{0, 123000000, 123456789, 5, 100}[rng.IntN(5)], time.UTC)
		return t.In(zones[rng.IntN(len(zones))])
	}
	num := func() float64 {
		switch rng.IntN(4) {
		case 0:
			return rng.NormFloat64() * math.Pow(10, float64(rng.IntN(30)-15))
		case 1:
			return math.Round(rng.NormFloat64()*1e9) / math.Pow(10, float64(rng.IntN(12)))
		}
		return []float64{0, math.Copysign(0, -1), -1, 47.123456789, 47.1234567, 1e21, 1e-7, 520, 9007199, math.MaxFloat64,
			math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1)}[rng.IntN(13)]
	}
	opt := func() *float64 {
		if rng.IntN(2) == 0 {
			return nil
		}
		return new(num())
	}
	optInt := func() *int {
		if rng.IntN(2) == 0 {
			return nil
		}
		return new([]int{0, 3, -7, 1 << 40}[rng.IntN(4)])
	}
	compact := 0
	for range 10000 {
		r := events.Report{TS: tm(), Lat: rng.NormFloat64() * 90, Lon: rng.NormFloat64() * 180, Alt: opt(), Speed: opt(),
			Heading: opt(), Battery: opt(), HAE: opt(), Height: opt(), VSpeed: opt(), HAcc: opt(), VAcc: opt(), Link: opt(),
			Fix: optInt(), Satellites: optInt()}
		if rng.IntN(20) == 0 {
			r.Lat = num()
		}
		if rng.IntN(3) == 0 {
			r.Mode = new([]string{"AUTO.MISSION", "<&>", "ünï", "a\"b", "", "bad\xff"}[rng.IntN(6)])
		}
		if rng.IntN(3) == 0 {
			r.Armed = new(rng.IntN(2) == 0)
		}
		if rng.IntN(3) == 0 {
			r.Seq = new(uint64(rng.Uint64() >> rng.IntN(64)))
		}
		if rng.IntN(3) == 0 {
			r.Home = &events.Position{Lat: rng.NormFloat64(), Lon: rng.NormFloat64(), Alt: opt()}
		}
		p := store.TrackPoint{TenantID: id(), DroneID: id(), Report: r, ExpireAt: tm()}
		raw, wantErr := json.Marshal(p)
		got, gotErr := encodeTrackPoint(p)
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("encode %+v: error %v, encoding/json's %v", p, gotErr, wantErr)
		}
		if wantErr != nil {
			continue
		}
		if again, _ := encodeTrackPoint(p); string(again) != string(got) {
			t.Fatalf("encode %+v twice: different bytes", p)
		}
		if got[0] == trackPointV1 {
			compact++
		} else if string(got) != string(raw) {
			t.Fatalf("encode %+v: neither compact nor encoding/json's bytes:\n%q", p, got)
		}
		var want, viaStored store.TrackPoint
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		if err := decodeTrackPoint(got, want.DroneID, &viaStored); err != nil {
			t.Fatalf("decode %+v: %v", p, err)
		}
		if diff := cmp.Diff(want, viaStored, cmp.Comparer(func(a, b float64) bool {
			return math.Float64bits(a) == math.Float64bits(b)
		})); diff != "" {
			t.Fatalf("decode %+v (-encoding/json +stored):\n%s", p, diff)
		}
		for _, tt := range [][2]time.Time{{want.Report.TS, viaStored.Report.TS}, {want.ExpireAt, viaStored.ExpireAt}} {
			if !tt[0].Equal(tt[1]) || tt[0].String() != tt[1].String() || tt[0].Location().String() != tt[1].Location().String() {
				t.Fatalf("decode %+v: time %v (%v), encoding/json's %v (%v)", p, tt[1], tt[1].Location(), tt[0], tt[0].Location())
			}
		}
		if exp, ok := trackPointExpiry(got); !ok || !exp.Equal(want.ExpireAt) || exp.String() != want.ExpireAt.String() {
			t.Fatalf("expiry of %+v: %v %v, want %v", p, exp, ok, want.ExpireAt)
		}
	}
	if compact < 2000 {
		t.Fatalf("only %d of 10,000 points took the compact form: the test no longer covers it", compact)
	}
}

// The compact form encodes every field of events.Report by name: a field
// added to the report must be added to it (trackpoint.go) and to
// TestTrackPointFormsDecodeAlike, or the history would drop it.
func TestTrackPointCompactFormKnowsEveryField(t *testing.T) {
	var names []string
	for _, typ := range []reflect.Type{reflect.TypeFor[events.Report](), reflect.TypeFor[events.Position](), reflect.TypeFor[store.TrackPoint]()} {
		for f := range typ.Fields() {
			names = append(names, typ.Name()+"."+f.Name)
		}
	}
	want := []string{"Report.TS", "Report.Lat", "Report.Lon", "Report.Alt", "Report.Speed", "Report.Heading", "Report.Battery",
		"Report.Seq", "Report.Armed", "Report.Mode", "Report.Fix", "Report.Satellites", "Report.HAE", "Report.Height",
		"Report.VSpeed", "Report.HAcc", "Report.VAcc", "Report.Link", "Report.Home",
		"Position.Lat", "Position.Lon", "Position.Alt",
		"TrackPoint.TenantID", "TrackPoint.DroneID", "TrackPoint.Report", "TrackPoint.ExpireAt"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Fatalf("fields the compact track point form knows (-known +now):\n%s", diff)
	}
}

// A point with every field set takes the compact form at about a quarter
// of its JSON's size: what a leaf of a drone's history holds.
func TestTrackPointCompactFormSize(t *testing.T) {
	ts := time.Date(2026, 12, 4, 21, 0, 0, 123456789, time.UTC)
	p := store.TrackPoint{TenantID: "acme", DroneID: "d1", ExpireAt: ts.Add(24 * time.Hour), Report: events.Report{TS: ts,
		Lat: 47.123456, Lon: 8.123456, Alt: new(520.5), Speed: new(8.2), Heading: new(271.0), Battery: new(80.0),
		Armed: new(true), Mode: new("AUTO.MISSION"), Height: new(40.0)}}
	raw, err := encodeTrackPoint(p)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(p)
	if raw[0] != trackPointV1 || len(raw)*2 > len(js) {
		t.Fatalf("point stored in %d bytes (form %#x), its JSON in %d", len(raw), raw[0], len(js))
	}
	t.Logf("compact %d bytes, JSON %d", len(raw), len(js))
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

// A damaged compact point is an error to its reader, never a panic or a
// point made up of the wrong fields.
func TestTrackPointCompactFormDamaged(t *testing.T) {
	ts := time.Date(2026, 12, 4, 21, 0, 0, 0, time.UTC)
	raw, err := encodeTrackPoint(store.TrackPoint{TenantID: "acme", DroneID: "d1", ExpireAt: ts.Add(time.Hour),
		Report: events.Report{TS: ts, Lat: 47, Lon: 8, Mode: new("AUTO"), Home: &events.Position{Lat: 1, Lon: 2}}})
	if err != nil || raw[0] != trackPointV1 {
		t.Fatalf("encode: %q, %v", raw, err)
	}
	var p store.TrackPoint
	for n := 1; n < len(raw); n++ {
		if err := decodeTrackPoint(raw[:n], "d1", &p); err == nil {
			t.Errorf("decoded the first %d of %d bytes", n, len(raw))
		}
	}
	if err := decodeTrackPoint(append(raw[:len(raw):len(raw)], 0), "d1", &p); err == nil {
		t.Error("decoded a point with a byte after it")
	}
	fields, n := binary.Uvarint(raw[1:])
	unknown := append([]byte{trackPointV1}, binary.AppendUvarint(nil, fields|1<<20)...)
	if err := decodeTrackPoint(append(unknown, raw[1+n:]...), "d1", &p); err == nil {
		t.Error("decoded a point with a field this version does not know")
	}
}
