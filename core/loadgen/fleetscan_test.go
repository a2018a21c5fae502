package loadgen

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

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
		d := drone{ID: fmt.Sprintf("d%d", i), Name: strings.Repeat(`"\{`, i%3) + strings.Repeat(`\`, i%2)}
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

// BenchmarkFleetRead compares the scan with the encoding/json decode it
// replaced, on a list of 5,000 drones shaped like the fleet API's.
func BenchmarkFleetRead(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"drones":[`)
	for i := range 5000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"id":"d%016x","name":"demo-%d","state":{"ts":"2026-12-03T18:55:06.029Z","lat":47.3877486,"lon":8.5189514,"alt":476.7,"speed":13.27,"heading":109.1,"battery":78.04,"seq":6,"armed":true,"mode":"AUTO.MISSION","fix":3,"satellites":12,"hae":524.1,"height":76.7,"vspeed":0,"hAcc":1,"vAcc":1.5,"link":88,"home":{"lat":47.3745794,"lon":8.5326562,"alt":400},"groundSpeed":13.273082272950425,"course":109.10361246330984,"distanceM":79.634777477119,"batteryDrain":0.10204999999999684,"timeToEmptySecs":764.7231749142815,"updatedAt":"2026-12-03T18:55:20.155176363Z"}}`, i, i)
	}
	sb.WriteString(`]}`)
	body := []byte(sb.String())
	b.Run("scan", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			n := 0
			_ = scanFleet(body, func(fleetState) { n++ })
		}
	})
	b.Run("json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var v struct {
				Drones []struct {
					ID    string `json:"id"`
					State *struct {
						TS time.Time `json:"ts"`
					} `json:"state"`
				} `json:"drones"`
			}
			_ = json.Unmarshal(body, &v)
		}
	})
}
