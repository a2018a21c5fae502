package events

import (
	"reflect"
	"testing"
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
