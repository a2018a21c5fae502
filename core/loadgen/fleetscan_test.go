package loadgen

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func scanned(t *testing.T, scan func([]byte, func(fleetState)) error, body string) []string {
	t.Helper()
	var got []string
	if err := scan([]byte(body), func(d fleetState) { got = append(got, string(d.id)+"@"+string(d.ts)) }); err != nil {
		t.Fatalf("scan %s: %v", body, err)
	}
	return got
}

// TestScanFleet: only each drone's own id and its state's own ts are taken,
// whatever else the list holds: nested ids and ts, keys inside strings
// (escaped quotes), arrays, drones without a state, other top-level keys.
func TestScanFleet(t *testing.T) {
	body := `{"version":3,"other":[{"id":"x","state":{"ts":"no"}}],"drones":[` +
		`{"id":"a","name":"say \"id\":\"z\" {[","state":{"home":{"ts":"nested"},"ts":"2026-12-03T12:00:00Z","tags":["ts","id"]}},` +
		` {"name":"b-name","flight":{"id":"f1"},"state":{"ts":"2026-12-03T12:00:01.5Z"},"id":"b"},` +
		`{"id":"c","state":null},` +
		`{"id":"d","extra":[1,2.5,true,null,{"state":{"ts":"deep"}}]}` +
		`],"next":{"id":"y"}}`
	got := scanned(t, scanFleet, body)
	want := []string{"a@2026-12-03T12:00:00Z", "b@2026-12-03T12:00:01.5Z", "c@", "d@"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("scanFleet (-want +got):\n%s", diff)
	}
	for _, bad := range []string{`{"drones":[{"id":"a"`, `{"drones":[{"id":"a}]}`, `]]`} {
		if err := scanFleet([]byte(bad), func(fleetState) {}); err == nil {
			t.Errorf("scanFleet(%s) = nil error", bad)
		}
	}
}

func TestScanDrone(t *testing.T) {
	got := scanned(t, scanDrone, `{"id":"a","name":"n","state":{"lat":1,"home":{"ts":"x"},"ts":"2026-12-03T12:00:00.25Z"}}`)
	if diff := cmp.Diff([]string{"a@2026-12-03T12:00:00.25Z"}, got); diff != "" {
		t.Errorf("scanDrone (-want +got):\n%s", diff)
	}
}

// TestScanFleetMatchesJSON: on a list rendered by encoding/json the scan
// finds what a decode does.
func TestScanFleetMatchesJSON(t *testing.T) {
	type state struct {
		TS  string  `json:"ts"`
		Lat float64 `json:"lat"`
	}
	type drone struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		State *state `json:"state"`
	}
	var in struct {
		Drones []drone `json:"drones"`
	}
	var want []string
	for i := range 50 {
		d := drone{ID: fmt.Sprintf("d%d", i), Name: strings.Repeat(`"\{`, i%3)}
		if i%4 != 0 {
			d.State = &state{TS: fmt.Sprintf("2026-12-03T12:00:%02dZ", i), Lat: float64(i) / 3}
			want = append(want, d.ID+"@"+d.State.TS)
		} else {
			want = append(want, d.ID+"@")
		}
		in.Drones = append(in.Drones, d)
	}
	b, _ := json.Marshal(in)
	if diff := cmp.Diff(want, scanned(t, scanFleet, string(b))); diff != "" {
		t.Errorf("scanFleet (-want +got):\n%s", diff)
	}
}
