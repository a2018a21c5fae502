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
		Heading: new(359.9), Battery: new(87.0), Seq: new(uint64(7))}
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good
			tt.mutate(&r)
			var got []string
			for _, fe := range r.Validate(now, "/2") {
				got = append(got, fe.Pointer)
				if fe.Detail == "" || !strings.HasSuffix(fe.Pointer, "/"+fe.Field) {
					t.Errorf("field error %+v: want a detail and a pointer ending in the field", fe)
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
