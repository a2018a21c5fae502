package events

import (
	"reflect"
	"testing"
	"time"
)

// fullState has every field set (pointers to values of their own).
func fullState() DroneState {
	f := func(v float64) *float64 { return &v }
	seq, armed, mode, fix, sats := uint64(7), true, "AUTO", 3, 11
	ts := time.Date(2026, 12, 6, 9, 0, 0, 123000000, time.UTC)
	return DroneState{TS: ts, Lat: 47.1, Lon: 8.5, Alt: f(420), Speed: f(12), Heading: f(90), Battery: f(80),
		Seq: &seq, Armed: &armed, Mode: &mode, Fix: &fix, Satellites: &sats, HAE: f(470), Height: f(30),
		VSpeed: f(1), HAcc: f(2), VAcc: f(3), Link: f(99), Home: &Position{Lat: 47, Lon: 8, Alt: f(400)},
		GroundSpeed: f(11), Course: f(91), DistanceM: 1234, BatteryDrain: f(0.01), TimeToEmptySecs: f(8000),
		UpdatedAt: ts.Add(time.Second)}
}

// TestSameStateComparesEveryField: a copy with its own pointers is the
// same state; changing any one field, or any one value a pointer field
// points to, makes it another. A field added to DroneState and not to
// sameState fails here, before the memo could hand out a stale encoding.
func TestSameStateComparesEveryField(t *testing.T) {
	a := fullState()
	b := fullState()
	if !sameState(&a, &b) {
		t.Fatal("equal states with pointers of their own are not the same")
	}
	typ := reflect.TypeFor[DroneState]()
	for i := range typ.NumField() {
		field := typ.Field(i)
		b := fullState()
		v := reflect.ValueOf(&b).Elem().Field(i)
		if v.Kind() == reflect.Pointer {
			// The value pointed to changes; then the pointer goes nil.
			changeValue(t, field.Name, v.Elem())
			if sameState(&a, &b) {
				t.Errorf("%s: another value pointed to, and still the same state", field.Name)
			}
			v.Set(reflect.Zero(v.Type()))
		} else {
			changeValue(t, field.Name, v)
		}
		if sameState(&a, &b) {
			t.Errorf("%s: changed, and still the same state", field.Name)
		}
	}
	// A time at the same instant with another offset encodes otherwise.
	c := fullState()
	c.TS = c.TS.In(time.FixedZone("", 3600))
	if sameState(&a, &c) {
		t.Error("the same instant at another offset is the same state (it encodes otherwise)")
	}
}

func changeValue(t *testing.T, name string, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Float64:
		v.SetFloat(v.Float() + 0.5)
	case reflect.Uint64:
		v.SetUint(v.Uint() + 1)
	case reflect.Int:
		v.SetInt(v.Int() + 1)
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Struct:
		switch x := v.Addr().Interface().(type) {
		case *time.Time:
			*x = x.Add(time.Millisecond)
		case *Position:
			x.Lon += 0.5
		default:
			t.Fatalf("%s: no change known for %s", name, v.Type())
		}
	default:
		t.Fatalf("%s: no change known for %s", name, v.Type())
	}
}

// TestAppendJSONFromTheMemoIsTheEncoding: a state encoded again, or an
// equal one decoded from its JSON, gets the same bytes; a changed one
// gets its own.
func TestAppendJSONFromTheMemoIsTheEncoding(t *testing.T) {
	s := fullState()
	first, err := s.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := string(first)
	again, _ := s.AppendJSON([]byte("prefix"))
	if string(again) != "prefix"+want {
		t.Fatalf("again = %s, want prefix%s", again, want)
	}
	var decoded DroneState
	if err := decoded.UnmarshalJSON(first); err != nil {
		t.Fatal(err)
	}
	if got, _ := decoded.AppendJSON(nil); string(got) != want {
		t.Fatalf("decoded and encoded = %s, want %s", got, want)
	}
	*s.Battery = 79 // written through a pointer of a state already encoded: the memo holds values, not the pointer
	s2 := fullState()
	*s2.Battery = 79
	got, _ := s2.AppendJSON(nil)
	s3 := s2
	s3.Battery = nil
	got3, _ := s3.AppendJSON(nil)
	if string(got) == want || string(got3) == string(got) {
		t.Fatalf("changed states encoded as before: %s / %s", got, got3)
	}
	if (&s3).plain() {
		plain := s3.appendPlain(nil)
		if string(plain) != string(got3) {
			t.Fatalf("memo %s, encoder %s", got3, plain)
		}
	}
}

// BenchmarkAppendJSON is a state encoded again (the memo's hit), against
// the hand encoder it saves.
func BenchmarkAppendJSON(b *testing.B) {
	s := fullState()
	buf := make([]byte, 0, 1024)
	b.Run("memo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = s.AppendJSON(buf[:0])
		}
	})
	b.Run("encoder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = s.appendPlain(buf[:0])
		}
	})
}
