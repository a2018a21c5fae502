package tracklink

import (
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/accounts"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

var t0 = time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)

func TestTokens(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok, hash, err := NewToken()
		if err != nil {
			t.Fatal(err)
		}
		if !WellFormed(tok) || hash != accounts.HashToken(tok) || hash == tok || seen[tok] {
			t.Fatalf("token %q hash %q: want well-formed, new, stored as its SHA-256", tok, hash)
		}
		seen[tok] = true
	}
	for _, bad := range []string{"", "short", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"} {
		if WellFormed(bad) {
			t.Errorf("WellFormed(%q) = true", bad)
		}
	}
}

func TestValidateAndNew(t *testing.T) {
	for _, tc := range []struct {
		r    Request
		bad  []string
		life time.Duration
	}{
		{Request{}, nil, MaxDuration},
		{Request{Mode: ModeFlight}, nil, MaxDuration},
		{Request{Mode: ModeDuration, Minutes: 90}, nil, 90 * time.Minute},
		{Request{Mode: ModeDuration, Minutes: 1440}, nil, MaxDuration},
		{Request{Mode: ModeDuration, Minutes: 1441}, []string{"minutes"}, 0},
		{Request{Mode: ModeDuration}, []string{"minutes"}, 0},
		{Request{Mode: ModeFlight, Minutes: 5}, []string{"minutes"}, 0},
		{Request{Mode: "forever"}, []string{"mode"}, 0},
		{Request{Destination: &store.LinkDestination{Lat: 91, Lon: -181, Label: "a\nb"}},
			[]string{"destination/lat", "destination/lon", "destination/label"}, 0},
	} {
		bad := tc.r.Validate()
		if len(bad) != len(tc.bad) {
			t.Errorf("%+v: refused %v; want %v", tc.r, bad, tc.bad)
			continue
		}
		for _, f := range tc.bad {
			if bad[f] == "" {
				t.Errorf("%+v: %s not refused (%v)", tc.r, f, bad)
			}
		}
		if len(bad) > 0 {
			continue
		}
		l, tok, err := New(tc.r, "l1", "ta", "da", "ua", t0)
		if err != nil {
			t.Fatal(err)
		}
		if l.TokenHash != accounts.HashToken(tok) || l.ExpiresAt.Sub(l.CreatedAt) != tc.life || l.Mode == "" {
			t.Errorf("%+v: link %+v; want life %v", tc.r, l, tc.life)
		}
	}
}

func TestStatusOf(t *testing.T) {
	l := store.TrackLink{Mode: ModeDuration, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if s := StatusOf(l, t0.Add(59*time.Minute)); s != Live {
		t.Errorf("before expiry: %s", s)
	}
	if s := StatusOf(l, t0.Add(time.Hour)); s != Expired {
		t.Errorf("at expiry: %s", s)
	}
	at := t0.Add(time.Minute)
	l.EndedAt = &at
	if s := StatusOf(l, t0); s != Ended {
		t.Errorf("ended: %s", s)
	}
	l.RevokedAt = &at
	if s := StatusOf(l, t0.Add(2*time.Hour)); s != Revoked {
		t.Errorf("revoked (and ended, and expired): %s", s)
	}
}

// TestFlightOver: a flight ends once the drone has stayed within
// StillRadiusM for the idle time (or reported nothing), not before the
// link is idle old, and never for a duration link.
func TestFlightOver(t *testing.T) {
	idle := 5 * time.Minute
	l := store.TrackLink{Mode: ModeFlight, CreatedAt: t0, ExpiresAt: t0.Add(MaxDuration)}
	at := func(sec int, northM float64) Point {
		return Point{TS: t0.Add(time.Duration(sec) * time.Second), Lat: 47 + northM/111195, Lon: 8}
	}
	// Flying north at 10 m/s for 10 minutes, then hovering within 20 m.
	var pts []Point
	for s := 0; s <= 600; s += 5 {
		pts = append(pts, at(s, float64(s)*10))
	}
	for s := 605; s <= 1200; s += 5 {
		pts = append(pts, at(s, 6000+float64(s%20)))
	}
	for _, tc := range []struct {
		now  time.Duration
		pts  []Point
		over bool
	}{
		{4 * time.Minute, nil, false},             // younger than idle: not even silence ends it
		{5 * time.Minute, nil, true},              // silent for idle
		{9 * time.Minute, pts, false},             // flying
		{14 * time.Minute, pts, false},            // landed 4 minutes ago
		{15*time.Minute + time.Second, pts, true}, // landed over 5 minutes ago
		{30 * time.Minute, pts, true},             // silent since
		{5 * time.Minute, pts[:1], true},          // the only point (t0) is on the window's open edge: silence
	} {
		now := t0.Add(tc.now)
		_, over := FlightOver(l, tc.pts, now, idle)
		if over != tc.over {
			t.Errorf("at %v (%d points): over = %v; want %v", tc.now, len(tc.pts), over, tc.over)
		}
	}
	d := l
	d.Mode = ModeDuration
	if _, over := FlightOver(d, nil, t0.Add(time.Hour), idle); over {
		t.Error("a duration link ended by the flight rule")
	}
}

func TestPublicAndETA(t *testing.T) {
	gs, batt := 10.0, 55.0
	st := events.DroneState{TS: t0, Lat: 47, Lon: 8, GroundSpeed: &gs, Battery: &batt, DistanceM: 1234}
	dest := &store.LinkDestination{Lat: 47.009, Lon: 8, Label: "Door"}
	p := Public(st, dest)
	if p.DistanceM == nil || *p.DistanceM < 995 || *p.DistanceM > 1006 {
		t.Fatalf("distance %v; want about 1000 m", p.DistanceM)
	}
	if p.ETASecs == nil || *p.ETASecs < 99 || *p.ETASecs > 101 {
		t.Errorf("ETA %v; want about 100 s at 10 m/s", p.ETASecs)
	}
	slow := 0.2
	st.GroundSpeed = &slow
	if p := Public(st, dest); p.ETASecs != nil || p.DistanceM == nil {
		t.Errorf("hovering: ETA %v distance %v; want no ETA, a distance", p.ETASecs, p.DistanceM)
	}
	st.GroundSpeed = nil
	sp := 4.0
	st.Speed = &sp
	if p := Public(st, nil); p.GroundSpeed == nil || *p.GroundSpeed != 4 || p.DistanceM != nil || p.ETASecs != nil {
		t.Errorf("no destination, own speed: %+v", p)
	}
}

func TestThin(t *testing.T) {
	var pts []TrackPoint
	for i := range 10001 {
		pts = append(pts, TrackPoint{TS: t0.Add(time.Duration(i) * time.Second)})
	}
	got := Thin(pts, MaxViewPoints)
	if len(got) != MaxViewPoints || !got[0].TS.Equal(pts[0].TS) || !got[len(got)-1].TS.Equal(pts[len(pts)-1].TS) {
		t.Fatalf("thinned to %d, first %v last %v", len(got), got[0].TS, got[len(got)-1].TS)
	}
	for i := 1; i < len(got); i++ {
		if !got[i].TS.After(got[i-1].TS) {
			t.Fatalf("not increasing at %d", i)
		}
	}
	if len(Thin(pts[:5], MaxViewPoints)) != 5 {
		t.Error("short track thinned")
	}
}
