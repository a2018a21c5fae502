package events

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestReportValidate(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	good := Report{TS: now.Add(-time.Second), Lat: 48.85, Lon: 2.35, Alt: new(120.0), Speed: new(12.5),
		Heading: new(359.9), Battery: new(87.0), Seq: new(uint64(7)),
		Armed: new(true), Mode: new("AUTO.MISSION"), Fix: new(Fix3D), Satellites: new(14), HAE: new(167.3),
		Height: new(80.0), VSpeed: new(-1.5), HAcc: new(0.8), VAcc: new(1.2), Link: new(93.0),
		Home: &Position{Lat: 48.8, Lon: 2.3, Alt: new(40.0)}}
	tests := []struct {
		name   string
		mutate func(*Report)
		want   []string // bad field pointers, in order
	}{
		{"valid", func(*Report) {}, nil},
		{"only required fields", func(r *Report) { *r = Report{TS: r.TS, Lat: 0, Lon: 0} }, nil},
		{"ts missing", func(r *Report) { r.TS = time.Time{} }, []string{"/2/ts"}},
		{"ts within skew", func(r *Report) { r.TS = now.Add(MaxFutureSkew) }, nil},
		{"ts far future", func(r *Report) { r.TS = now.Add(MaxFutureSkew + time.Second) }, []string{"/2/ts"}},
		{"ts too old", func(r *Report) { r.TS = now.Add(-MaxAge - time.Second) }, []string{"/2/ts"}},
		{"lat too high", func(r *Report) { r.Lat = 90.0001 }, []string{"/2/lat"}},
		{"lat poles ok", func(r *Report) { r.Lat = -90 }, nil},
		{"lon antimeridian ok", func(r *Report) { r.Lon = 180 }, nil},
		{"lon too low", func(r *Report) { r.Lon = -180.5 }, []string{"/2/lon"}},
		{"lat NaN", func(r *Report) { r.Lat = math.NaN() }, []string{"/2/lat"}},
		{"lon Inf", func(r *Report) { r.Lon = math.Inf(1) }, []string{"/2/lon"}},
		{"alt too high", func(r *Report) { r.Alt = new(20001.0) }, []string{"/2/alt"}},
		{"speed negative", func(r *Report) { r.Speed = new(-1.0) }, []string{"/2/speed"}},
		{"heading 360 is 0", func(r *Report) { r.Heading = new(360.0) }, []string{"/2/heading"}},
		{"battery over 100", func(r *Report) { r.Battery = new(100.1) }, []string{"/2/battery"}},
		{"several at once", func(r *Report) { r.Lat, r.Lon, r.Battery = 91, 181, new(-3.0) },
			[]string{"/2/lat", "/2/lon", "/2/battery"}},
		{"mode empty", func(r *Report) { r.Mode = new("") }, []string{"/2/mode"}},
		{"mode 32 characters ok", func(r *Report) { r.Mode = new(strings.Repeat("é", 32)) }, nil},
		{"mode 33 characters", func(r *Report) { r.Mode = new(strings.Repeat("M", 33)) }, []string{"/2/mode"}},
		{"mode control character", func(r *Report) { r.Mode = new("RTL\n") }, []string{"/2/mode"}},
		{"mode invalid UTF-8", func(r *Report) { r.Mode = new("\xff") }, []string{"/2/mode"}},
		{"fix bounds ok", func(r *Report) { r.Fix, r.Satellites = new(0), new(0) }, nil},
		{"fix PPP ok", func(r *Report) { r.Fix = new(8) }, nil},
		{"fix 9", func(r *Report) { r.Fix = new(9) }, []string{"/2/fix"}},
		{"fix negative", func(r *Report) { r.Fix = new(-1) }, []string{"/2/fix"}},
		{"satellites 256", func(r *Report) { r.Satellites = new(256) }, []string{"/2/satellites"}},
		{"hae too low", func(r *Report) { r.HAE = new(-501.0) }, []string{"/2/hae"}},
		{"height below take-off ok", func(r *Report) { r.Height = new(-300.0) }, nil},
		{"height too high", func(r *Report) { r.Height = new(MaxHeight + 1) }, []string{"/2/height"}},
		{"height NaN", func(r *Report) { r.Height = new(math.NaN()) }, []string{"/2/height"}},
		{"vspeed sinking ok", func(r *Report) { r.VSpeed = new(-MaxSpeed) }, nil},
		{"vspeed too fast", func(r *Report) { r.VSpeed = new(MaxSpeed + 1) }, []string{"/2/vspeed"}},
		{"hAcc negative", func(r *Report) { r.HAcc = new(-0.1) }, []string{"/2/hAcc"}},
		{"vAcc too big", func(r *Report) { r.VAcc = new(MaxAccuracy * 2) }, []string{"/2/vAcc"}},
		{"link over 100", func(r *Report) { r.Link = new(100.5) }, []string{"/2/link"}},
		{"link negative", func(r *Report) { r.Link = new(-1.0) }, []string{"/2/link"}},
		{"home lat and alt", func(r *Report) { r.Home = &Position{Lat: -91, Lon: 2, Alt: new(-600.0)} },
			[]string{"/2/home/lat", "/2/home/alt"}},
		{"home lon Inf", func(r *Report) { r.Home = &Position{Lat: 1, Lon: math.Inf(-1)} }, []string{"/2/home/lon"}},
		{"home without alt ok", func(r *Report) { r.Home = &Position{Lat: 1, Lon: 2} }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good
			tt.mutate(&r)
			var got []string
			for _, fe := range r.Validate(now, "/2") {
				got = append(got, fe.Pointer)
				if fe.Detail == "" || !(fe.Pointer == "/2/"+fe.Field || strings.HasPrefix(fe.Pointer, "/2/"+fe.Field+"/")) {
					t.Errorf("field error %+v: want a detail and a pointer to the field", fe)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("bad fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTelemetryReceivedValidate(t *testing.T) {
	now := time.Now()
	err := TelemetryReceived{Reports: []Report{{TS: now, Lat: 100}}}.Validate(now)
	var ve ValidationError
	if err == nil {
		t.Fatal("want an error for missing ids and bad lat")
	}
	ve = err.(ValidationError)
	var got []string
	for _, fe := range ve {
		got = append(got, fe.Pointer)
	}
	want := []string{"/tenantId", "/droneId", "/reports/0/lat"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bad fields (-want +got):\n%s", diff)
	}
	if err := (TelemetryReceived{TenantID: "t", DroneID: "d"}).Validate(now); err == nil {
		t.Error("empty reports accepted")
	}
	if err := (TelemetryReceived{TenantID: "t", DroneID: "d", Reports: []Report{{TS: now}}}).Validate(now); err != nil {
		t.Errorf("valid data rejected: %v", err)
	}
}
