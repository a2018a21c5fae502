package events

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var decodeNow = time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)

func TestDecodeAcceptsValidJSONShapes(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	u := func(v uint64) *uint64 { return &v }
	tests := map[string]struct {
		body string
		want []Report
	}{
		"whitespace everywhere": {" \n\t{ \"ts\" : \"2026-11-29T03:59:00Z\" ,\r\n \"lat\" : -1.5e1 , \"lon\" : 0 } \n",
			[]Report{{TS: decodeNow.Add(-time.Minute), Lat: -15, Lon: 0}}},
		"escaped field name and value": {`{"ts":"2026-11-29T03:59:00\u005a","l\u0061t":1,"lon":2}`,
			[]Report{{TS: decodeNow.Add(-time.Minute), Lat: 1, Lon: 2}}},
		"null optional fields are absent": {`{"ts":"2026-11-29T03:59:00Z","lat":1,"lon":2,"alt":null,"seq":null}`,
			[]Report{{TS: decodeNow.Add(-time.Minute), Lat: 1, Lon: 2}}},
		"zone offset and fraction": {`{"ts":"2026-11-29T04:59:00.5+01:00","lat":1,"lon":2}`,
			[]Report{{TS: decodeNow.Add(-time.Minute + 500*time.Millisecond), Lat: 1, Lon: 2}}},
		"all optional fields": {`[{"ts":"2026-11-29T03:59:00Z","lat":1,"lon":2,"alt":-3,"speed":4,"heading":0,"battery":0,"seq":18446744073709551615}]`,
			[]Report{{TS: decodeNow.Add(-time.Minute), Lat: 1, Lon: 2, Alt: f(-3), Speed: f(4), Heading: f(0), Battery: f(0), Seq: u(18446744073709551615)}}},
		"drone telemetry fields": {`{"ts":"2026-11-29T03:59:00Z","lat":1,"lon":2,"armed":false,"mode":"AUTO.M\u0049SSION","fix":0,"satellites":255,` +
			`"hae":-500,"height":-1.5,"vspeed":-2,"hAcc":0,"vAcc":1e5,"link":100,"home":{ "alt" : 12.5 ,"lon":-2,"lat":3}}`,
			[]Report{{TS: decodeNow.Add(-time.Minute), Lat: 1, Lon: 2, Armed: new(false), Mode: new("AUTO.MISSION"), Fix: new(0),
				Satellites: new(255), HAE: f(-500), Height: f(-1.5), VSpeed: f(-2), HAcc: f(0), VAcc: f(1e5), Link: f(100),
				Home: &Position{Lat: 3, Lon: -2, Alt: f(12.5)}}}},
		"two reports keep their own telemetry": {`[{"ts":"2026-11-29T03:59:00Z","lat":1,"lon":2,"armed":true,"home":{"lat":3,"lon":4,"alt":null}},` +
			`{"ts":"2026-11-29T03:59:00Z","lat":1,"lon":2,"armed":false,"home":{"lat":5,"lon":6,"alt":7},"hae":null,"mode":null}]`,
			[]Report{{TS: decodeNow.Add(-time.Minute), Lat: 1, Lon: 2, Armed: new(true), Home: &Position{Lat: 3, Lon: 4}},
				{TS: decodeNow.Add(-time.Minute), Lat: 1, Lon: 2, Armed: new(false), Home: &Position{Lat: 5, Lon: 6, Alt: f(7)}}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, bad, err := DecodeReports([]byte(tc.body), decodeNow, 500)
			if err != nil || bad != nil {
				t.Fatalf("err %v, bad %+v", err, bad)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
				t.Errorf("reports (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeSyntaxErrors(t *testing.T) {
	for _, body := range []string{
		``, ` `, `{`, `[`, `[{}`, `{"lat":1,}`, `{"lat" 1}`, `{lat:1}`, `{"lat":1}}`, `[{"lat":1}]]`,
		`{"lat":-}`, `{"lat":1.}`, `{"lat":1e}`, `{"lat":tru}`, `{"x":"a` + "\x01" + `"}`, `{"x":"\q"}`,
		`{"x":"\u12"}`, `{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, `[1,]`, `{"a":1}{"a":1}`,
	} {
		_, bad, err := DecodeReports([]byte(body), decodeNow, 500)
		if err == nil {
			t.Errorf("%q: no syntax error (bad fields %+v)", body, bad)
		}
		if json.Valid([]byte(body)) && !strings.Contains(body, "[[[[") {
			t.Errorf("%q is valid JSON but was called malformed", body)
		}
	}
}

// FuzzDecodeReports checks the hand-written parser against encoding/json: it
// never panics, never accepts what is not JSON, and what it accepts decodes
// to the same reports with encoding/json.
func FuzzDecodeReports(f *testing.F) {
	for _, s := range []string{
		`{"ts":"2026-11-29T03:59:00Z","lat":1,"lon":2}`,
		`[{"ts":"2026-11-29T03:59:00Z","lat":1,"lon":2,"alt":3,"speed":4,"heading":5,"battery":6,"seq":7}]`,
		`[{"ts":"2026-11-29T03:59:00Z","lat":"NaN","lon":2,"x":{"y":[1,null,true]}}]`,
		`[{"ts":"2026-11-29T03:59:00Z","lat":1,"lon":2,"armed":true,"mode":"RTL","fix":3,"satellites":12,"hae":5,"height":6,"vspeed":-1,"hAcc":2,"vAcc":3,"link":80,"home":{"lat":1,"lon":2,"alt":3}}]`,
		`[]`, `null`, `{"lat":1e999}`, `{"l\u0061t":1}`, `{"seq":-0}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		reps, bad, err := DecodeReports(body, decodeNow, 500)
		if err != nil || len(bad) > 0 {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		var std []Report
		trimmed := strings.TrimSpace(string(body))
		if strings.HasPrefix(trimmed, "{") {
			var r Report
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatalf("encoding/json rejects accepted body %q: %v", body, err)
			}
			std = []Report{r}
		} else if err := json.Unmarshal(body, &std); err != nil {
			t.Fatalf("encoding/json rejects accepted body %q: %v", body, err)
		}
		if diff := cmp.Diff(std, reps, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
			t.Fatalf("%q: reports differ from encoding/json (-std +ours):\n%s", body, diff)
		}
	})
}

func TestDecodeCapsListedErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"ts":"2026-11-29T03:59:00Z","lat":1,"lon":2`)
	for i := range 300 {
		fmt.Fprintf(&b, `,"x%d":1`, i)
	}
	b.WriteString("}")
	_, bad, err := DecodeReports([]byte(b.String()), decodeNow, 500)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != MaxFieldErrors+1 {
		t.Fatalf("%d errors listed, want %d and a summary", len(bad), MaxFieldErrors)
	}
	if last := bad[len(bad)-1]; !strings.HasPrefix(last.Detail, "200 more problems") {
		t.Errorf("summary = %+v, want it to count the 200 unlisted", last)
	}
}
