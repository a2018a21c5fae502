package events

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The hand codecs of state.updated's and telemetry.received's data write
// and read what encoding/json does (the types without their methods), for
// random states and reports and for variants the hand parser hands on; and
// Decode fails exactly where json.Unmarshal fails, though it skips
// encoding/json's validation pass for what the parser takes.
func TestEventDataJSONMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	mutations := []func(string) string{
		func(s string) string { return s },
		func(s string) string { return strings.Replace(s, `"droneId":`, `"droneId":null,"droneId":`, 1) },
		func(s string) string { return strings.Replace(s, `"tenantId":`, `"TenantID":`, 1) },
		func(s string) string { return strings.Replace(s, `"droneId":"`, `"droneId":"\u0064`, 1) },
		func(s string) string { return strings.Replace(s, `{"tenantId"`, `{"x":[1,{"a":2}],"tenantId"`, 1) },
		func(s string) string { return strings.Replace(s, `,"droneId":`, ` , "droneId" :`, 1) },
		func(s string) string { return strings.Replace(s, `"lat":`, `"lat":01,"lat":`, 1) },
		func(s string) string { return strings.Replace(s, `"lat":`, `"lat":tru,"lat":`, 1) },
		func(s string) string { return strings.Replace(s, `"reports":[`, `"reports":[null,`, 1) },
		func(s string) string { return strings.Replace(s, `"reports":[`, `"reports":null,"r":[`, 1) },
		func(s string) string { return strings.Replace(s, `"state":{`, `"state":null,"s":{`, 1) },
		func(s string) string { return strings.Replace(s, `"ts":"`, `"ts":"x`, 1) },
		func(s string) string { return strings.Replace(s, `}`, `,}`, 1) },
		func(s string) string { return strings.Replace(s, `]`, `,]`, 1) },
		func(s string) string { return s[:len(s)-1] },
		func(s string) string { return s[:len(s)/2] },
		func(s string) string { return s + "x" },
		func(s string) string { return " \n" + s + "\t" },
	}
	for i := range 2000 {
		su := StateUpdated{TenantID: "t" + string(rune('a'+i%26)), DroneID: "drone-" + strings.Repeat("x", i%3), State: randomState(rng)}
		if i%50 == 0 {
			su.DroneID = "<d&\"é>"
		}
		got, gotErr := json.Marshal(su)
		want, wantErr := json.Marshal((*stateUpdatedJSON)(&su))
		if (gotErr == nil) != (wantErr == nil) || string(got) != string(want) {
			t.Fatalf("marshal:\n%s (%v)\nencoding/json:\n%s (%v)", got, gotErr, want, wantErr)
		}
		if ev, err := NewStateUpdated(su); err != nil || string(ev.Data()) != string(want) || ev.DataBase64 {
			t.Fatalf("NewStateUpdated data %s (%v, base64 %v), want %s", ev.Data(), err, ev.DataBase64, want)
		}
		tr := TelemetryReceived{TenantID: su.TenantID, DroneID: su.DroneID, ReceivedAt: su.State.UpdatedAt}
		for range i % 4 {
			tr.Reports = append(tr.Reports, stateReport(randomState(rng)))
		}
		if i%7 == 0 {
			tr.Reports = []Report{}
		}
		trJSON, err := json.Marshal((*telemetryReceivedJSON)(&tr))
		if err != nil {
			t.Fatal(err)
		}
		for _, mut := range mutations {
			data := []byte(mut(string(want)))
			var a, b StateUpdated
			aErr, bErr := a.decodeData(data), json.Unmarshal(data, (*stateUpdatedJSON)(&b))
			if (aErr == nil) != (bErr == nil) || !cmp.Equal(a, StateUpdated(b)) || a.State.TS.String() != b.State.TS.String() {
				t.Fatalf("decode %s: %+v (%v), encoding/json's %+v (%v)", data, a, aErr, b, bErr)
			}
			data = []byte(mut(string(trJSON)))
			var c, d TelemetryReceived
			cErr, dErr := c.decodeData(data), json.Unmarshal(data, (*telemetryReceivedJSON)(&d))
			if (cErr == nil) != (dErr == nil) || !cmp.Equal(c, TelemetryReceived(d)) || c.ReceivedAt.String() != d.ReceivedAt.String() {
				t.Fatalf("decode %s: %+v (%v), encoding/json's %+v (%v)", data, c, cErr, d, dErr)
			}
		}
	}
}

// FuzzEventDataJSON: Decode's hand path fails where json.Unmarshal fails
// and reads what it reads.
func FuzzEventDataJSON(f *testing.F) {
	ts := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	su, _ := json.Marshal(StateUpdated{TenantID: "t", DroneID: "d", State: DroneState{TS: ts, Lat: 1}})
	tr, _ := json.Marshal(TelemetryReceived{TenantID: "t", DroneID: "d", ReceivedAt: ts, Reports: []Report{{TS: ts, Lat: 1}}})
	f.Add(su)
	f.Add(tr)
	f.Fuzz(func(t *testing.T, data []byte) {
		var a, b StateUpdated
		if aErr, bErr := a.decodeData(data), json.Unmarshal(data, (*stateUpdatedJSON)(&b)); (aErr == nil) != (bErr == nil) || !cmp.Equal(a, StateUpdated(b)) {
			t.Fatalf("state.updated %s: %+v (%v), encoding/json's %+v (%v)", data, a, aErr, b, bErr)
		}
		var c, d TelemetryReceived
		if cErr, dErr := c.decodeData(data), json.Unmarshal(data, (*telemetryReceivedJSON)(&d)); (cErr == nil) != (dErr == nil) || !cmp.Equal(c, TelemetryReceived(d)) {
			t.Fatalf("telemetry.received %s: %+v (%v), encoding/json's %+v (%v)", data, c, cErr, d, dErr)
		}
	})
}

// NewStateUpdated builds the event newEvent builds from the same values
// (attributes, extensions, data), with the context filled directly.
func TestStateUpdatedAsNewEvent(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for i := range 500 {
		su := StateUpdated{TenantID: "t1", DroneID: "d" + strings.Repeat("1", i%4), State: randomState(rng)}
		switch i % 50 {
		case 1:
			su.DroneID = " padded "
		case 2:
			su.DroneID, su.TenantID = "", ""
		case 3:
			su.State.UpdatedAt = time.Time{}
		}
		got, err := NewStateUpdated(su)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal((*stateUpdatedJSON)(&su))
		want, err := newEvent(su.DroneID+"@"+su.State.TS.UTC().Format(time.RFC3339Nano), TypeStateUpdated, SourceProcess,
			su.TenantID, su.DroneID, su.State.UpdatedAt, jsonData(raw))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want.String(), got.String()); diff != "" || !reflect.DeepEqual(want, got) {
			t.Fatalf("NewStateUpdated(%+v) (-newEvent +got):\n%s\n%#v\n%#v", su, diff, want.Context, got.Context)
		}
		if err := got.Validate(); err != nil && su.DroneID != "" {
			t.Fatalf("invalid: %v", err)
		}
	}
}
