package events

import (
	"math"
	"reflect"
	"testing"
	"time"
)

// TestEventMatchesContract pins EncodeTelemetryReceived to the contract's
// own constructor: same attributes, byte-identical data.
func TestEventMatchesContract(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	u := func(v uint64) *uint64 { return &v }
	at := time.Date(2026, 11, 29, 4, 0, 0, 123456789, time.UTC)
	cases := map[string]TelemetryReceived{
		"full": {TenantID: "t1", DroneID: "d1", ReceivedAt: at, Reports: []Report{
			{TS: at.Add(-time.Second), Lat: 52.520008, Lon: 13.404954, Alt: f(120.5), Speed: f(0), Heading: f(359.999),
				Battery: f(100), Seq: u(math.MaxUint64), Armed: new(true), Mode: new("AUTO.MISSION"), Fix: new(6),
				Satellites: new(0), HAE: f(167.25), Height: f(-0.5), VSpeed: f(-2.5e-7), HAcc: f(0.02), VAcc: f(1e21),
				Link: f(100), Home: &Position{Lat: 52.52, Lon: 13.4, Alt: f(34.5)}},
			{TS: at, Lat: 1, Lon: 2, Armed: new(false), Mode: new(`ÄUTO "<&>"`), Home: &Position{Lat: 0, Lon: -0.0}},
			{TS: at.Add(-2 * time.Second).In(time.FixedZone("x", 3600)), Lat: -90, Lon: 180},
		}},
		"awkward floats": {TenantID: "t", DroneID: "d", ReceivedAt: at, Reports: []Report{
			{TS: at, Lat: 1e-7, Lon: -1.5e-7, Alt: f(-0.0000001), Speed: f(1e-6), Heading: f(0.1 + 0.2), Battery: f(33.333333333333336)},
			{TS: at, Lat: 0, Lon: math.Copysign(0, -1), Alt: f(19999.999999999996), Speed: f(299.99)},
		}},
		"ids needing escapes": {TenantID: `t"<&>\`, DroneID: "dröne\u2028\n", ReceivedAt: at,
			Reports: []Report{{TS: at, Lat: 1, Lon: 2}}},
		"zero time": {TenantID: "t", DroneID: "d", Reports: []Report{{TS: at, Lat: 1, Lon: 2}}},
	}
	for name, d := range cases {
		t.Run(name, func(t *testing.T) {
			want, err := NewTelemetryReceived(d)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := EncodeTelemetryReceived(d, nil)
			if err != nil {
				t.Fatal(err)
			}
			if string(got.DataEncoded) != string(want.DataEncoded) {
				t.Errorf("data differs:\nwant %s\ngot  %s", want.DataEncoded, got.DataEncoded)
			}
			if !reflect.DeepEqual(want, got) {
				t.Errorf("event differs:\nwant %s\ngot  %s", want, got)
			}
		})
	}
}
