package events

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestFirestoreTagsAreJSONNames: core/store/firestore stores Report,
// Position and DroneState as they are, so each field's firestore tag must be
// its JSON tag. A field added with only a json tag would be stored under its
// Go name (and read back from nowhere once renamed); this names it.
func TestFirestoreTagsAreJSONNames(t *testing.T) {
	for _, v := range []any{Report{}, Position{}, DroneState{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			f := typ.Field(i)
			js, fs := f.Tag.Get("json"), f.Tag.Get("firestore")
			if js == "" || fs != js {
				t.Errorf("%s.%s: json tag %q, firestore tag %q: give it firestore:%q", typ.Name(), f.Name, js, fs, js)
			}
		}
	}
}

// TestStateCopiesEveryReportField: every Report field has a DroneState field
// of the same name, type and tags, and Report.State copies it, so a report
// field reaches the stored state, the cache and the API without a second
// copy to remember.
func TestStateCopiesEveryReportField(t *testing.T) {
	var r Report
	rv := reflect.ValueOf(&r).Elem()
	for i := range rv.NumField() {
		f := rv.Field(i)
		switch {
		case f.Kind() == reflect.Pointer:
			f.Set(reflect.New(f.Type().Elem())) // a distinct non-nil pointer
		case f.Kind() == reflect.Float64:
			f.SetFloat(float64(i) + 0.5)
		case f.Type() == reflect.TypeOf(r.TS):
			f.Set(reflect.ValueOf(r.TS.AddDate(2026, 0, 0)))
		default:
			t.Fatalf("Report.%s: teach this test its type %s", rv.Type().Field(i).Name, f.Type())
		}
	}
	st := reflect.ValueOf(r.State())
	for i := range rv.NumField() {
		rf := rv.Type().Field(i)
		sf, ok := st.Type().FieldByName(rf.Name)
		if !ok || sf.Type != rf.Type || sf.Tag != rf.Tag {
			t.Errorf("Report.%s (%s %s) has no DroneState field of that name, type and tags", rf.Name, rf.Type, rf.Tag)
			continue
		}
		if !reflect.DeepEqual(st.FieldByIndex(sf.Index).Interface(), rv.Field(i).Interface()) ||
			(rf.Type.Kind() == reflect.Pointer && st.FieldByIndex(sf.Index).Pointer() != rv.Field(i).Pointer()) {
			t.Errorf("Report.State does not copy %s", rf.Name)
		}
	}
}

// filledReport sets every field of a Report by reflection to a value every
// range in Validate accepts (1, true, "M", now), so a field added to Report
// is in it without anyone remembering to add it.
func filledReport(t *testing.T, now time.Time) Report {
	t.Helper()
	var r Report
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		for i := range v.NumField() {
			f := v.Field(i)
			if f.Kind() == reflect.Pointer {
				f.Set(reflect.New(f.Type().Elem()))
				f = f.Elem()
			}
			switch {
			case f.Type() == reflect.TypeOf(now):
				f.Set(reflect.ValueOf(now))
			case f.Kind() == reflect.Float64:
				f.SetFloat(1.5)
			case f.Kind() == reflect.Int:
				f.SetInt(1)
			case f.Kind() == reflect.Uint64:
				f.SetUint(1)
			case f.Kind() == reflect.Bool:
				f.SetBool(true)
			case f.Kind() == reflect.String:
				f.SetString("M")
			case f.Kind() == reflect.Struct:
				fill(f)
			default:
				t.Fatalf("%s.%s: teach filledReport its type %s", v.Type().Name(), v.Type().Field(i).Name, f.Type())
			}
		}
	}
	fill(reflect.ValueOf(&r).Elem())
	return r
}

// TestCodecCoversEveryReportField: a report with every field set survives
// the strict decoder (what encoding/json writes, DecodeReports reads back
// whole) and the fast encoder (byte-identical to NewTelemetryReceived), so
// a field added to Report but not to decode.go or encode.go fails here.
func TestCodecCoversEveryReportField(t *testing.T) {
	now := time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)
	r := filledReport(t, now)
	if bad := r.Validate(now, ""); bad != nil {
		t.Fatalf("filled report invalid (give the new field a valid fill value): %+v", bad)
	}
	body, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	got, bad, err := DecodeReports(body, now, 1)
	if err != nil || bad != nil {
		t.Fatalf("DecodeReports(%s): err %v, bad %+v", body, err, bad)
	}
	if diff := cmp.Diff([]Report{r}, got); diff != "" {
		t.Errorf("decoded report (-want +got):\n%s", diff)
	}
	d := TelemetryReceived{TenantID: "t", DroneID: "d", ReceivedAt: now, Reports: []Report{r}}
	want, err := NewTelemetryReceived(d)
	if err != nil {
		t.Fatal(err)
	}
	fast, _, err := EncodeTelemetryReceived(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(fast.Data()) != string(want.Data()) {
		t.Errorf("EncodeTelemetryReceived data differs:\nwant %s\ngot  %s", want.Data(), fast.Data())
	}
}
