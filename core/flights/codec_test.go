package flights

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/events"
)

// binaryRoundTrip encodes d in the binary form and decodes it back.
func binaryRoundTrip(t testing.TB, d Detector) Detector {
	t.Helper()
	raw, err := d.AppendBinary(nil)
	if err != nil {
		t.Fatalf("AppendBinary: %v", err)
	}
	var got Detector
	if err := got.UnmarshalBinary(raw); err != nil {
		t.Fatalf("UnmarshalBinary: %v", err)
	}
	return got
}

// The binary form gives back what the JSON form gives back, byte for byte
// once both are written as JSON, for every detector a day of reports
// passes through (in order, then shuffled with replays and redeliveries).
func TestDetectorBinaryMatchesJSON(t *testing.T) {
	s := DefaultSettings()
	check := func(d Detector) {
		t.Helper()
		raw, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var viaJSON Detector
		if err := json.Unmarshal(raw, &viaJSON); err != nil {
			t.Fatal(err)
		}
		viaBinary := binaryRoundTrip(t, d)
		if diff := cmp.Diff(viaJSON, viaBinary); diff != "" {
			t.Fatalf("binary round trip differs from JSON's (-json +binary):\n%s", diff)
		}
		again, err := json.Marshal(viaBinary)
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(raw) {
			t.Fatalf("JSON after the binary round trip:\n%s\nwant\n%s", again, raw)
		}
	}
	for seed := range 3 {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		reps := randomDay(rng)
		d := Detector{TenantID: "t", DroneID: "d"}
		for i := 0; i < len(reps); i += 5 {
			d.Apply(s, reps[i:min(i+5, len(reps))])
			// The store hands the next batch the decoded detector.
			d = binaryRoundTrip(t, d)
			check(d)
		}
		// Replays from a checkpoint, as a late report causes.
		d2 := Detector{TenantID: "t", DroneID: "d"}
		d2.Replay(s, time.Time{}, reps[:len(reps)/2])
		check(d2)
	}
	d := Detector{TenantID: "t", DroneID: "d"}
	d.Apply(s, armedSequence()[:60]) // in flight
	if d.Open == nil {
		t.Fatal("armed sequence: no open flight; the check covers less than it should")
	}
	check(d)
	check(Detector{})
}

// Every field of a detector, its fix and its flights survives the binary
// form: a field added to one of them and not to the codec fails here.
func TestDetectorBinaryEveryField(t *testing.T) {
	var d Detector
	fill(reflect.ValueOf(&d).Elem(), 1)
	got := binaryRoundTrip(t, d)
	if diff := cmp.Diff(d, got); diff != "" {
		t.Fatalf("binary round trip lost fields (-want +got):\n%s", diff)
	}
	// Times keep their zone offset, as JSON's do.
	d.Head = time.Date(2026, 12, 3, 10, 0, 0, 5, time.FixedZone("", 2*3600))
	got = binaryRoundTrip(t, d)
	if _, off := got.Head.Zone(); off != 2*3600 || !got.Head.Equal(d.Head) {
		t.Fatalf("head %v, want %v", got.Head, d.Head)
	}
}

// fill sets every field reachable from v to a non-zero value.
func fill(v reflect.Value, n int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("s" + string(rune('a'+n%26)))
	case reflect.Float64:
		v.SetFloat(float64(n) + 0.25)
	case reflect.Int:
		v.SetInt(int64(n))
	case reflect.Int64: // Instants: Unix nanoseconds
		v.SetInt(time.Date(2026, 12, 3, 9, 0, n, n, time.UTC).UnixNano())
	case reflect.Uint64:
		v.SetUint(uint64(n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n+1)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i), n+i+1)
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2026, 12, 3, 9, 0, n, n, time.UTC)))
			return
		}
		for i := range v.NumField() {
			fill(v.Field(i), n+i+1)
		}
	default:
		panic("fill: add kind " + v.Kind().String())
	}
}

func TestDetectorBinaryRefuses(t *testing.T) {
	// A time the binary form cannot hold: the store writes JSON instead.
	if _, err := (Detector{Head: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}).AppendBinary(nil); err == nil {
		t.Error("AppendBinary took a time in 2300")
	}
	d := Detector{TenantID: "t", DroneID: "d"}
	d.Apply(DefaultSettings(), armedSequence()[:60])
	raw, err := d.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(raw) {
		var x Detector
		if err := x.UnmarshalBinary(raw[:n]); err == nil {
			t.Fatalf("decoded %d of %d bytes without an error", n, len(raw))
		}
	}
	var x Detector
	if err := x.UnmarshalBinary(append(raw, 0)); err == nil {
		t.Error("decoded a detector followed by a stray byte")
	}
	// An owed replay is an optional tail: cut inside it, the detector does
	// not decode (cut before it, it is a detector that owes nothing).
	owes := d.Clone()
	owes.Owe(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC), time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
	full, err := owes.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	for n := len(raw) + 1; n < len(full); n++ {
		if err := x.UnmarshalBinary(full[:n]); err == nil {
			t.Fatalf("decoded %d of %d bytes of an owing detector without an error", n, len(full))
		}
	}
	if err := x.UnmarshalBinary(full); err != nil || x.Owed == nil || *x.Owed != *owes.Owed || x.LateSeq != 1 {
		t.Fatalf("owing detector decoded as %+v (late batches %d), %v; want %+v, 1", x.Owed, x.LateSeq, err, owes.Owed)
	}
	if err := x.UnmarshalBinary([]byte(`{"tenantId":"t"}`)); err == nil {
		t.Error("decoded JSON as the binary form")
	}
}

// BenchmarkDetectorCodecs is the store's work around Apply per batch,
// decode the stored detector and encode it back, for a drone in flight
// that has reported for a while (RecentApplied times remembered), in the
// binary form the bolt store keeps and in JSON.
func BenchmarkDetectorCodecs(b *testing.B) {
	s := DefaultSettings()
	d := Detector{TenantID: "t", DroneID: "d"}
	d.Apply(s, armedSequence()[:60])
	for i := range RecentApplied {
		d.Apply(s, []events.Report{at(60+float64(i), 0)})
	}
	b.Run("binary", func(b *testing.B) {
		raw, err := d.AppendBinary(nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(raw)), "bytes")
		b.ReportAllocs()
		buf := make([]byte, 0, len(raw))
		for b.Loop() {
			var x Detector
			if err := x.UnmarshalBinary(raw); err != nil {
				b.Fatal(err)
			}
			if buf, err = x.AppendBinary(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		raw, err := json.Marshal(d)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(raw)), "bytes")
		b.ReportAllocs()
		for b.Loop() {
			var x Detector
			if err := json.Unmarshal(raw, &x); err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(x); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A detector stored before Applied held instants (time.Time values, with
// the report's zone offset when it had one) reads back in both stored
// forms as the same instants: a redelivery of those reports, in whatever
// zone, is still not late.
func TestAppliedStoredAsTimesReadsAsInstants(t *testing.T) {
	plus2 := time.FixedZone("", 2*3600)
	old := []time.Time{
		time.Date(2026, 12, 3, 11, 0, 0, 500, plus2),
		time.Date(2026, 12, 3, 9, 0, 1, 0, time.UTC),
	}
	head := old[1]
	// The binary form as written then: Applied as times (offset and all).
	e := encoder{b: []byte{DetectorCodec}}
	e.str("t")
	e.str("d")
	e.time(head)
	e.b = append(e.b, 0)       // no fix
	e.b = append(e.b, 0, 0, 0) // no open, candidate or landing flight
	e.times(nil)               // checkpoints
	e.times(old)
	var viaBinary Detector
	if err := viaBinary.UnmarshalBinary(e.b); err != nil {
		t.Fatal(err)
	}
	var viaJSON Detector
	js := `{"tenantId":"t","droneId":"d","head":"2026-12-03T09:00:01Z","applied":["2026-12-03T11:00:00.0000005+02:00","2026-12-03T09:00:01Z"]}`
	if err := json.Unmarshal([]byte(js), &viaJSON); err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]Detector{"binary": viaBinary, "JSON": viaJSON} {
		if len(d.Applied) != len(old) {
			t.Fatalf("%s: %d applied, want %d", name, len(d.Applied), len(old))
		}
		for i, want := range old {
			if !d.Applied.At(i).Equal(want) {
				t.Errorf("%s: applied[%d] = %v, want %v", name, i, d.Applied.At(i), want)
			}
		}
		redelivered := []events.Report{{TS: old[0].UTC()}, {TS: old[1].In(plus2)}}
		if _, late := d.Late(redelivered); late {
			t.Errorf("%s: a redelivery of the applied reports counts as late", name)
		}
		if _, late := d.Late([]events.Report{{TS: old[0].Add(time.Nanosecond)}}); !late {
			t.Errorf("%s: a report never applied, older than the head, is not late", name)
		}
	}
	out, err := json.Marshal(viaBinary.Applied)
	if err != nil {
		t.Fatal(err)
	}
	if want := `["2026-12-03T09:00:00.0000005Z","2026-12-03T09:00:01Z"]`; string(out) != want {
		t.Errorf("applied as JSON: %s, want %s", out, want)
	}
	// Out of UnixNano's range: refused, not wrapped around.
	if err := json.Unmarshal([]byte(`{"applied":["2300-01-01T00:00:00Z"]}`), &viaJSON); err == nil {
		t.Error("decoded an applied time in 2300")
	}
}
