package osmand_test

import (
	"math"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/dronetrack/dronetrack/core/osmand"
	"github.com/dronetrack/dronetrack/events"
)

func f(v float64) *float64 { return &v }
func b(v bool) *bool       { return &v }

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// now is the receiver clock used for requests without a timestamp.
var now = ts("2025-06-15T14:00:00Z")

var opts = cmp.Options{
	cmpopts.IgnoreUnexported(osmand.Position{}),
	cmpopts.EquateApprox(0, 1e-9),
	cmpopts.EquateEmpty(),
}

// The request shapes below are the ones Traccar's own OsmAndProtocolDecoder
// tests use (captured from OsmAnd, Traccar Client for Android/iOS and
// hardware trackers), so a device that works with Traccar works with us.
func TestParseGolden(t *testing.T) {
	tests := []struct {
		name        string
		query       string
		contentType string
		body        string
		want        osmand.Message
	}{
		{
			name:  "iso timestamp, hdop, altitude, zero speed",
			query: "id=902064&lat=42.06288&lon=-88.23412&timestamp=2016-01-27T18%3A55%3A47Z&hdop=6.0&altitude=224.0&speed=0.0",
			want: osmand.Message{DeviceID: "902064", Positions: []osmand.Position{{
				Report: events.Report{TS: ts("2016-01-27T18:55:47Z"), Lat: 42.06288, Lon: -88.23412, Alt: f(224), Speed: f(0)},
				HDOP:   f(6), Valid: true,
			}}},
		},
		{
			name:  "epoch milliseconds",
			query: "id=902064&lat=42.06288&lon=-88.23412&timestamp=1442068686579&hdop=6.0&altitude=224.0&speed=0.0",
			want: osmand.Message{DeviceID: "902064", Positions: []osmand.Position{{
				Report: events.Report{TS: ts("2015-09-12T14:38:06.579Z"), Lat: 42.06288, Lon: -88.23412, Alt: f(224), Speed: f(0)},
				HDOP:   f(6), Valid: true,
			}}},
		},
		{
			name:  "yyyy-MM-dd HH:mm:ss with + for space, id last",
			query: "lat=49.60688&lon=6.15788&timestamp=2014-06-04+09%3A10%3A11&altitude=384.7&speed=0.0&id=353861053849681",
			want: osmand.Message{DeviceID: "353861053849681", Positions: []osmand.Position{{
				Report: events.Report{TS: ts("2014-06-04T09:10:11Z"), Lat: 49.60688, Lon: 6.15788, Alt: f(384.7), Speed: f(0)},
				Valid:  true,
			}}},
		},
		{
			name:  "epoch seconds, bearing",
			query: "id=123456&timestamp=1377177267&lat=60.0&lon=30.0&speed=0.0&bearing=0.0&altitude=0&hdop=0.0",
			want: osmand.Message{DeviceID: "123456", Positions: []osmand.Position{{
				Report: events.Report{TS: ts("2013-08-22T13:14:27Z"), Lat: 60, Lon: 30, Alt: f(0), Speed: f(0), Heading: f(0)},
				HDOP:   f(0), Valid: true,
			}}},
		},
		{
			name:  "deviceid, heading, no timestamp (receiver clock), unknown keys kept",
			query: "lat=60.0&lon=30.0&speed=0.0&heading=0.0&vacc=0&hacc=0&altitude=0&deviceid=123456",
			want: osmand.Message{DeviceID: "123456", Positions: []osmand.Position{{
				Report:     events.Report{TS: now, Lat: 60, Lon: 30, Alt: f(0), Speed: f(0), Heading: f(0)},
				Valid:      true,
				Attributes: map[string]string{"vacc": "0", "hacc": "0"},
			}}},
		},
		{
			name:  "battery percent",
			query: "id=861001000719969&lat=41.666667&lon=-0.883333&altitude=350.059479&speed=0.000000&batt=87",
			want: osmand.Message{DeviceID: "861001000719969", Positions: []osmand.Position{{
				Report: events.Report{TS: now, Lat: 41.666667, Lon: -0.883333, Alt: f(350.059479), Speed: f(0), Battery: f(87)},
				Valid:  true,
			}}},
		},
		{
			name:  "location=lat,lon",
			query: "id=123456&timestamp=1377177267&location=60.0,30.0",
			want: osmand.Message{DeviceID: "123456", Positions: []osmand.Position{{
				Report: events.Report{TS: ts("2013-08-22T13:14:27Z"), Lat: 60, Lon: 30},
				Valid:  true,
			}}},
		},
		{
			name:  "speed in knots, vehicle attributes",
			query: "id=123456789012345&timestamp=1504763810&lat=40.7232948571&lon=-74.0061408571&bearing=7.19889788244&speed=40&ignition=true&rpm=933&fuel=24",
			want: osmand.Message{DeviceID: "123456789012345", Positions: []osmand.Position{{
				Report: events.Report{TS: ts("2017-09-07T05:56:50Z"), Lat: 40.7232948571, Lon: -74.0061408571,
					Speed: f(40 * 1852.0 / 3600.0), Heading: f(7.19889788244)},
				Valid:      true,
				Attributes: map[string]string{"ignition": "true", "rpm": "933", "fuel": "24"},
			}}},
		},
		{
			name:  "accuracy, charge, valid=false",
			query: "id=abc&lat=1&lon=2&accuracy=12.5&charge=true&valid=false&timestamp=1377177267",
			want: osmand.Message{DeviceID: "abc", Positions: []osmand.Position{{
				Report:   events.Report{TS: ts("2013-08-22T13:14:27Z"), Lat: 1, Lon: 2, HAcc: f(12.5)},
				Charging: b(true), Valid: false,
			}}},
		},
		{
			name:        "form body when the query is empty (POST)",
			contentType: "application/x-www-form-urlencoded",
			body:        "id=123456&timestamp=1377177267&lat=60.0&lon=30.0&speed=10&bearing=360&batt=50.5",
			want: osmand.Message{DeviceID: "123456", Positions: []osmand.Position{{
				Report: events.Report{TS: ts("2013-08-22T13:14:27Z"), Lat: 60, Lon: 30,
					Speed: f(10 * 1852.0 / 3600.0), Heading: f(0), Battery: f(50.5)},
				Valid: true,
			}}},
		},
		{
			name:  "query wins over body, as in Traccar",
			query: "id=q&lat=1&lon=2&timestamp=1377177267",
			body:  "id=b&lat=3&lon=4",
			want: osmand.Message{DeviceID: "q", Positions: []osmand.Position{{
				Report: events.Report{TS: ts("2013-08-22T13:14:27Z"), Lat: 1, Lon: 2}, Valid: true,
			}}},
		},
		{
			name:        "JSON: Traccar Client Android, charging flag, level 1",
			contentType: "application/json",
			body:        `{"location":{"timestamp":"2025-06-15T13:45:12.862Z","coords":{"latitude":37.4219983,"longitude":-122.084,"accuracy":5,"speed":0,"heading":-1,"altitude":5},"is_moving":false,"odometer":0,"event":"motionchange","battery":{"level":1,"is_charging":false},"activity":{"type":"still"},"extras":{},"_":"&id=48241179&lat=37.4219983&lon=-122.084&timestamp=2025-06-15T13:45:12.862Z&"},"device_id":"48241179"}`,
			want: osmand.Message{DeviceID: "48241179", Positions: []osmand.Position{{
				Report:   events.Report{TS: ts("2025-06-15T13:45:12.862Z"), Lat: 37.4219983, Lon: -122.084, Alt: f(5), Speed: f(0), Battery: f(100), HAcc: f(5)},
				Charging: b(false), Valid: true,
				Attributes: map[string]string{"motion": "false", "odometer": "0", "event": "motionchange", "activity": "still",
					"_": "&id=48241179&lat=37.4219983&lon=-122.084&timestamp=2025-06-15T13:45:12.862Z&"},
			}}},
		},
		{
			name:        "JSON: extras become attributes",
			contentType: "application/json",
			body:        `{"location":{"timestamp":"2025-06-15T13:45:12.862Z","coords":{"latitude":37.4219983,"longitude":-122.084,"accuracy":5,"speed":0,"heading":-1,"altitude":5},"is_moving":false,"odometer":0,"event":"motionchange","battery":{"level":1,"is_charging":false},"activity":{"type":"still"},"extras":{"device_string_test":"long_device_id","device_bool_test":true,"device_integer_test":1,"device_double_test":1.345}},"device_id":"48241179"}`,
			want: osmand.Message{DeviceID: "48241179", Positions: []osmand.Position{{
				Report:   events.Report{TS: ts("2025-06-15T13:45:12.862Z"), Lat: 37.4219983, Lon: -122.084, Alt: f(5), Speed: f(0), Battery: f(100), HAcc: f(5)},
				Charging: b(false), Valid: true,
				Attributes: map[string]string{"motion": "false", "odometer": "0", "event": "motionchange", "activity": "still",
					"device_string_test": "long_device_id", "device_bool_test": "true", "device_integer_test": "1", "device_double_test": "1.345"},
			}}},
		},
		{
			name:        "JSON: iOS simulator, -1 means unknown speed, heading and battery",
			contentType: "application/json; charset=utf-8",
			body:        `{"location":{"extras":{},"mock":true,"coords":{"speed_accuracy":-1,"speed":-1,"longitude":-122.406417,"ellipsoidal_altitude":0,"floor":null,"heading_accuracy":-1,"latitude":37.785834000000001,"accuracy":5,"altitude_accuracy":-1,"altitude":0,"heading":-1},"is_moving":false,"age":188,"odometer":0,"uuid":"2FB04C65-99CF-42AB-8DD3-EBCB4B108BF8","event":"motionchange","battery":{"level":-1,"is_charging":false},"activity":{"type":"unknown","confidence":100},"timestamp":"2025-05-09T04:11:30.579Z"},"device_id":"658765"}`,
			want: osmand.Message{DeviceID: "658765", Positions: []osmand.Position{{
				// speed -1 (unknown) with is_moving false: standing still.
				Report: events.Report{TS: ts("2025-05-09T04:11:30.579Z"), Lat: 37.785834, Lon: -122.406417, Alt: f(0),
					Speed: f(0), HAcc: f(5), HAE: f(0)},
				Charging: b(false), Valid: true,
				Attributes: map[string]string{"mock": "true", "motion": "false", "age": "188", "odometer": "0",
					"uuid": "2FB04C65-99CF-42AB-8DD3-EBCB4B108BF8", "event": "motionchange", "activity": "unknown",
					"coords.speed_accuracy": "-1", "coords.floor": "null", "coords.heading_accuracy": "-1"},
			}}},
		},
		{
			name: "JSON without Content-Type: m/s speed kept, level 0.79 -> 79 %",
			body: `{"location":{"event":"motionchange","is_moving":false,"uuid":"0e9a2473-a9a7-4c00-997b-fb97d2154e75","timestamp":"2021-07-21T08:06:34.444Z","odometer":0,"coords":{"latitude":-6.1148096,"longitude":106.6837015,"accuracy":3.8,"speed":18.67,"speed_accuracy":0.26,"heading":63,"heading_accuracy":0.28,"altitude":35.7,"altitude_accuracy":3.8},"activity":{"type":"still","confidence":100},"battery":{"is_charging":false,"level":0.79},"extras":{}},"device_id":"8737767034"}`,
			want: osmand.Message{DeviceID: "8737767034", Positions: []osmand.Position{{
				Report: events.Report{TS: ts("2021-07-21T08:06:34.444Z"), Lat: -6.1148096, Lon: 106.6837015,
					Alt: f(35.7), Speed: f(18.67), Heading: f(63), Battery: f(79), HAcc: f(3.8), VAcc: f(3.8)},
				Charging: b(false), Valid: true,
				Attributes: map[string]string{"event": "motionchange", "motion": "false", "uuid": "0e9a2473-a9a7-4c00-997b-fb97d2154e75",
					"odometer": "0", "activity": "still", "coords.speed_accuracy": "0.26", "coords.heading_accuracy": "0.28"},
			}}},
		},
		{
			name:        "JSON: batched location array, numeric device_id",
			contentType: "application/json",
			body:        `{"device_id":42,"location":[{"timestamp":"2025-06-15T13:00:00Z","coords":{"latitude":1,"longitude":2}},{"timestamp":"2025-06-15T13:00:01Z","coords":{"latitude":1.5,"longitude":2.5,"speed":3}}]}`,
			want: osmand.Message{DeviceID: "42", Positions: []osmand.Position{
				{Report: events.Report{TS: ts("2025-06-15T13:00:00Z"), Lat: 1, Lon: 2}, Valid: true},
				{Report: events.Report{TS: ts("2025-06-15T13:00:01Z"), Lat: 1.5, Lon: 2.5, Speed: f(3)}, Valid: true},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := osmand.Parse(tt.query, tt.contentType, []byte(tt.body), now)
			if len(errs) > 0 {
				t.Fatalf("Parse: unexpected errors %v", errs)
			}
			if diff := cmp.Diff(tt.want, got, opts); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnitConversions(t *testing.T) {
	if math.Abs(osmand.KnotsToMPS-0.514444) > 5e-7 {
		t.Fatalf("KnotsToMPS = %v, want 0.514444 (1852 m / 3600 s)", osmand.KnotsToMPS)
	}
	for _, tc := range []struct {
		query string
		speed float64 // m/s
	}{
		{"speed=1", 0.514444},
		{"speed=10", 5.14444},
		{"speed=97.2", 50.004}, // about 180 km/h
		{"speed=583.153", 300}, // events.MaxSpeed
	} {
		m, errs := osmand.Parse("id=x&lat=0&lon=0&"+tc.query, "", nil, now)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", tc.query, errs)
		}
		got := *m.Positions[0].Report.Speed
		if math.Abs(got-tc.speed) > 1e-3 {
			t.Errorf("%s: speed = %.6f m/s, want %.6f", tc.query, got, tc.speed)
		}
	}
	// Battery: JSON level is a fraction, query batt a percent; both end as percent.
	m, _ := osmand.Parse("", "application/json", []byte(`{"device_id":"d","location":{"coords":{"latitude":0,"longitude":0},"battery":{"level":0.07}}}`), now)
	if got := *m.Positions[0].Report.Battery; got != 7 {
		t.Errorf("battery level 0.07 -> %v %%, want 7", got)
	}
}

// TestTraccarClient9Fields: Traccar Client 9's accuracies, ellipsoidal
// altitude and motion state land in the report's own fields.
func TestTraccarClient9Fields(t *testing.T) {
	parse := func(loc string) events.Report {
		t.Helper()
		m, errs := osmand.Parse("", "application/json", []byte(`{"device_id":"d","location":`+loc+`}`), now)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", loc, errs)
		}
		return m.Positions[0].Report
	}
	r := parse(`{"coords":{"latitude":1,"longitude":2,"accuracy":4.5,"altitude_accuracy":7.25,"altitude":400,"ellipsoidal_altitude":447.5,"speed":-1},"is_moving":true}`)
	if r.HAcc == nil || *r.HAcc != 4.5 || r.VAcc == nil || *r.VAcc != 7.25 || r.HAE == nil || *r.HAE != 447.5 || *r.Alt != 400 {
		t.Errorf("accuracies and altitudes: %+v", r)
	}
	if r.Speed != nil {
		t.Errorf("moving with unknown speed came out as speed %v, want unknown", *r.Speed)
	}
	r = parse(`{"coords":{"latitude":1,"longitude":2,"accuracy":-1,"altitude_accuracy":-1},"is_moving":false}`)
	if r.HAcc != nil || r.VAcc != nil {
		t.Errorf("-1 accuracies came out as %v / %v, want unknown", r.HAcc, r.VAcc)
	}
	if r.Speed == nil || *r.Speed != 0 {
		t.Errorf("stationary with unknown speed: speed %v, want 0", r.Speed)
	}
	if r = parse(`{"coords":{"latitude":1,"longitude":2,"speed":2.5},"is_moving":false}`); *r.Speed != 2.5 {
		t.Errorf("a speed of its own was replaced: %v", *r.Speed)
	}
	if _, errs := osmand.Parse("", "application/json", []byte(`{"device_id":"d","location":{"coords":{"latitude":1,"longitude":2},"is_moving":"yes"}}`), now); len(errs) != 1 || errs[0].Pointer != "/location/is_moving" {
		t.Errorf("is_moving as a string: errors %+v, want one at /location/is_moving", errs)
	}
}

func TestParseTimestamp(t *testing.T) {
	for in, want := range map[string]string{
		"1377177267":                    "2013-08-22T13:14:27Z",
		"1377177267000":                 "2013-08-22T13:14:27Z",
		"1377177267.5":                  "2013-08-22T13:14:27.5Z",
		"2147483646":                    "2038-01-19T03:14:06Z", // last value read as seconds
		"2147483647":                    "1970-01-25T20:31:23.647Z",
		"2016-01-27T18:55:47Z":          "2016-01-27T18:55:47Z",
		"2016-01-27T18:55:47.123+02:00": "2016-01-27T16:55:47.123Z",
		"2016-01-27T18:55:47+0200":      "2016-01-27T16:55:47Z",
		"2016-01-27T18:55:47":           "2016-01-27T18:55:47Z",
		"2014-06-04 09:10:11":           "2014-06-04T09:10:11Z",
	} {
		got, err := osmand.ParseTimestamp(in)
		if err != nil {
			t.Errorf("ParseTimestamp(%q): %v", in, err)
			continue
		}
		if !got.Equal(ts(want)) {
			t.Errorf("ParseTimestamp(%q) = %s, want %s", in, got.Format(time.RFC3339Nano), want)
		}
	}
	for _, in := range []string{"", "yesterday", "-5", "1e9", "NaN", "0x10", "2016-13-01T00:00:00Z", "99999999999999999999"} {
		if got, err := osmand.ParseTimestamp(in); err == nil {
			t.Errorf("ParseTimestamp(%q) = %s, want an error", in, got)
		}
	}
}

func TestParseErrorsNameTheParameter(t *testing.T) {
	tests := []struct {
		name        string
		query, body string
		contentType string
		want        []events.FieldError
	}{
		{
			name:  "no id",
			query: "lat=1&lon=2",
			want:  []events.FieldError{{Field: "id", Pointer: "/id"}},
		},
		{
			name:  "empty id and bad numbers",
			query: "id=&lat=north&lon=2&speed=fast&timestamp=noon",
			want: []events.FieldError{{Field: "id", Pointer: "/id"}, {Field: "lat", Pointer: "/lat"},
				{Field: "speed", Pointer: "/speed"}, {Field: "timestamp", Pointer: "/timestamp"}},
		},
		{
			name:  "conflicting ids",
			query: "id=a&deviceid=b&lat=1&lon=2",
			want:  []events.FieldError{{Field: "id", Pointer: "/id"}},
		},
		{
			name:  "no position",
			query: "id=a&timestamp=1377177267&cell=257,02,16,2224",
			want:  []events.FieldError{{Field: "lat", Pointer: "/lat"}, {Field: "lon", Pointer: "/lon"}},
		},
		{
			name:  "malformed location",
			query: "id=a&location=60.0",
			want:  []events.FieldError{{Field: "location", Pointer: "/location"}},
		},
		{
			name:  "NaN is not a number",
			query: "id=a&lat=NaN&lon=Inf",
			want:  []events.FieldError{{Field: "lat", Pointer: "/lat"}, {Field: "lon", Pointer: "/lon"}},
		},
		{
			name:  "malformed query",
			query: "id=a&lat=%zz",
			want:  []events.FieldError{{Field: "query"}},
		},
		{
			name:        "JSON: wrong type points into the body",
			contentType: "application/json",
			body:        `{"device_id":"d","location":{"coords":{"latitude":"north","longitude":2}}}`,
			want:        []events.FieldError{{Field: "latitude", Pointer: "/location/coords/latitude"}},
		},
		{
			name:        "JSON: missing device_id and coords",
			contentType: "application/json",
			body:        `{"location":{"timestamp":"2025-06-15T13:00:00Z"}}`,
			want:        []events.FieldError{{Field: "device_id", Pointer: "/device_id"}, {Field: "coords", Pointer: "/location/coords"}},
		},
		{
			name:        "JSON: bad timestamp in the second batched location",
			contentType: "application/json",
			body:        `{"device_id":"d","location":[{"coords":{"latitude":1,"longitude":2}},{"timestamp":"soon","coords":{"latitude":1,"longitude":2}}]}`,
			want:        []events.FieldError{{Field: "timestamp", Pointer: "/location/1/timestamp"}},
		},
		{
			name:        "JSON: not JSON",
			contentType: "application/json",
			body:        `{"device_id":`,
			want:        []events.FieldError{{Field: "body"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := osmand.Parse(tt.query, tt.contentType, []byte(tt.body), now)
			if diff := cmp.Diff(tt.want, errs, cmpopts.IgnoreFields(events.FieldError{}, "Detail")); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
			for _, e := range errs {
				if e.Detail == "" {
					t.Errorf("%s: empty detail", e.Field)
				}
			}
		})
	}
}

// Validate applies the contract's ranges and names each error by what the
// client sent, so "bearing=400" is reported as bearing, not heading.
func TestValidateNamesParameters(t *testing.T) {
	tests := []struct {
		name        string
		query, body string
		want        []events.FieldError
	}{
		{"valid", "id=a&lat=1&lon=2&timestamp=2025-06-15T13:59:00Z&speed=10&bearing=90&batt=50", "", nil},
		{"bearing out of range", "id=a&lat=1&lon=2&bearing=400", "", []events.FieldError{{Field: "bearing", Pointer: "/bearing"}}},
		{"location out of range", "id=a&location=91,2", "", []events.FieldError{{Field: "location", Pointer: "/location"}}},
		{"too fast in knots", "id=a&lat=1&lon=2&speed=600", "", []events.FieldError{{Field: "speed", Pointer: "/speed"}}},
		{"battery over 100", "id=a&lat=1&lon=2&batt=101", "", []events.FieldError{{Field: "batt", Pointer: "/batt"}}},
		{"old timestamp", "id=a&lat=1&lon=2&timestamp=1377177267", "", []events.FieldError{{Field: "timestamp", Pointer: "/timestamp"}}},
		{"JSON latitude", "", `{"device_id":"d","location":{"coords":{"latitude":-95,"longitude":2}}}`,
			[]events.FieldError{{Field: "latitude", Pointer: "/location/coords/latitude"}}},
		{"JSON altitude in batch", "", `{"device_id":"d","location":[{"coords":{"latitude":1,"longitude":2}},{"coords":{"latitude":1,"longitude":2,"altitude":99999}}]}`,
			[]events.FieldError{{Field: "altitude", Pointer: "/location/1/coords/altitude"}}},
		{"accuracy beyond any fix", "id=a&lat=1&lon=2&accuracy=200000", "", []events.FieldError{{Field: "accuracy", Pointer: "/accuracy"}}},
		{"JSON accuracies and ellipsoidal altitude", "", `{"device_id":"d","location":{"coords":{"latitude":1,"longitude":2,"accuracy":1e6,"altitude_accuracy":2e5,"ellipsoidal_altitude":-900}}}`,
			[]events.FieldError{{Field: "ellipsoidal_altitude", Pointer: "/location/coords/ellipsoidal_altitude"},
				{Field: "accuracy", Pointer: "/location/coords/accuracy"}, {Field: "altitude_accuracy", Pointer: "/location/coords/altitude_accuracy"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, errs := osmand.Parse(tt.query, "", []byte(tt.body), now)
			if len(errs) > 0 {
				t.Fatalf("Parse: %v", errs)
			}
			got := m.Validate(now)
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(events.FieldError{}, "Detail")); diff != "" {
				t.Errorf("Validate mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"id=902064&lat=42.06288&lon=-88.23412&timestamp=2016-01-27T18%3A55%3A47Z&hdop=6.0&altitude=224.0&speed=0.0",
		"id=123456&timestamp=1377177267&location=60.0,30.0",
		"lat=60.0&lon=30.0&speed=0.0&heading=0.0&vacc=0&hacc=0&altitude=0&deviceid=123456",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		m, errs := osmand.Parse(raw, "", []byte(raw), now)
		if len(errs) > 0 {
			if len(m.Positions) != 0 || m.DeviceID != "" {
				t.Fatalf("errors %v came with a message %+v", errs, m)
			}
			for _, e := range errs {
				if e.Field == "" || e.Detail == "" {
					t.Fatalf("unnamed error %+v", e)
				}
			}
			return
		}
		if m.DeviceID == "" || len(m.DeviceID) > osmand.MaxDeviceIDLen || len(m.Positions) == 0 {
			t.Fatalf("accepted message without a device or position: %+v", m)
		}
		for _, e := range m.Validate(now) {
			if e.Field == "" || e.Detail == "" {
				t.Fatalf("unnamed validation error %+v", e)
			}
		}
	})
}

func FuzzParseJSON(f *testing.F) {
	f.Add(`{"device_id":"d","location":{"timestamp":"2025-06-15T13:00:00Z","coords":{"latitude":1,"longitude":2,"speed":3,"heading":-1},"battery":{"level":0.5,"is_charging":true}}}`)
	f.Add(`{"device_id":1,"location":[{"coords":{"latitude":1,"longitude":2}}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		m, errs := osmand.ParseJSON([]byte(body), now)
		if len(errs) == 0 && (m.DeviceID == "" || len(m.Positions) == 0) {
			t.Fatalf("accepted message without a device or position: %+v", m)
		}
		_ = m.Validate(now)
	})
}

func TestParseQueryValuesDirect(t *testing.T) {
	// A repeated parameter takes its last value, as in Traccar.
	m, errs := osmand.ParseQuery(url.Values{"id": {"a", "a"}, "lat": {"1", "3"}, "lon": {"2"}}, now)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := m.Positions[0].Report.Lat; got != 3 {
		t.Errorf("lat = %v, want the last value 3", got)
	}
}

func BenchmarkParse(b *testing.B) {
	q := "id=tracker-7Qe2Lk9ZpX4mWc1R&lat=47.3977&lon=8.5456&timestamp=1795924790&speed=10&bearing=270.5&altitude=488.1&accuracy=4&batt=87&hdop=0.9"
	body := []byte(`{"location":{"timestamp":"2025-06-15T13:45:12.862Z","coords":{"latitude":37.4219983,"longitude":-122.084,"accuracy":5,"speed":0,"heading":-1,"altitude":5},"is_moving":false,"odometer":0,"event":"motionchange","battery":{"level":1,"is_charging":false},"activity":{"type":"still"},"extras":{}},"device_id":"48241179"}`)
	b.Run("query", func(b *testing.B) {
		for b.Loop() {
			if _, errs := osmand.Parse(q, "", nil, now); errs != nil {
				b.Fatal(errs)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		for b.Loop() {
			if _, errs := osmand.Parse("", "application/json", body, now); errs != nil {
				b.Fatal(errs)
			}
		}
	})
}
