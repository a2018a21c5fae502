package ratelimit

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC)

func TestBurstThenRetryAfter(t *testing.T) {
	l := New(Limit{Rate: 10, Burst: 3})
	for i := range 3 {
		if ok, _ := l.Allow("a", t0); !ok {
			t.Fatalf("request %d within the burst refused", i+1)
		}
	}
	ok, wait := l.Allow("a", t0)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("4th request at once: ok=%v wait=%v, want refused with 100ms", ok, wait)
	}
	if got := RetryAfter(wait); got != "1" {
		t.Errorf("Retry-After = %q, want 1 (whole seconds, at least 1)", got)
	}
	if ok, _ := l.Allow("b", t0); !ok {
		t.Error("another key was refused: buckets must be per key")
	}
	// A refused request does not consume: after 100 ms exactly one more.
	if ok, _ := l.Allow("a", t0.Add(100*time.Millisecond)); !ok {
		t.Error("refused after the token refilled")
	}
	if ok, _ := l.Allow("a", t0.Add(100*time.Millisecond)); ok {
		t.Error("allowed beyond the rate")
	}
}

func TestSweepDropsFullBuckets(t *testing.T) {
	l := New(Limit{Rate: 1, Burst: 1})
	for i := range 1000 {
		l.Allow(fmt.Sprint("k", i), t0)
	}
	if l.Len() != 1000 {
		t.Fatalf("Len = %d, want 1000", l.Len())
	}
	// Long after, every bucket is full again; touching each shard sweeps it.
	later := t0.Add(time.Hour)
	for i := range 1024 { // enough keys to touch every shard
		l.Allow(fmt.Sprint("z", i), later)
	}
	if n := l.Len(); n != 1024 {
		t.Errorf("Len = %d after the sweep, want only the 1024 fresh keys", n)
	}
}

func TestOffAllowsAll(t *testing.T) {
	var l *Limiter = New(Limit{})
	if l != nil {
		t.Fatal("New(off) should be nil")
	}
	if ok, _ := l.Allow("x", t0); !ok {
		t.Fatal("nil limiter refused")
	}
}

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]Limit{
		"50/s:100": {50, 100}, "50/s": {50, 100}, "0.5/s:1": {0.5, 1}, "off": {}, "0": {}, "2000": {2000, 4000},
	} {
		got, err := ParseLimit(in)
		if err != nil {
			t.Errorf("ParseLimit(%q): %v", in, err)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ParseLimit(%q) (-want +got):\n%s", in, diff)
		}
	}
	for _, bad := range []string{"", "x", "-1/s", "NaN/s", "5/s:0", "5/s:x", "Inf"} {
		if _, err := ParseLimit(bad); err == nil {
			t.Errorf("ParseLimit(%q) accepted", bad)
		}
	}
}

func TestClientIP(t *testing.T) {
	r := httptest.NewRequest("POST", "/", nil)
	r.RemoteAddr = "10.0.0.9:5555"
	r.Header.Add("X-Forwarded-For", "6.6.6.6, 1.2.3.4")
	r.Header.Add("X-Forwarded-For", "10.1.1.1")
	for hops, want := range map[int]string{0: "10.0.0.9", 1: "10.1.1.1", 2: "1.2.3.4", 3: "6.6.6.6", 4: "10.0.0.9"} {
		if got := ClientIP(r, hops); got != want {
			t.Errorf("ClientIP(hops=%d) = %q, want %q", hops, got, want)
		}
	}
}

func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"50/s:100", "off", "1e308/s:1", "/s:", ":", "9999999999999999999/s:9999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLimit(s)
		if err != nil {
			return
		}
		if !l.Off() && l.Burst < 1 {
			t.Fatalf("ParseLimit(%q) = %+v: burst below 1", s, l)
		}
		New(l).Allow("k", t0)
	})
}

func TestNetwork(t *testing.T) {
	for in, want := range map[string]string{
		"198.51.100.7":            "198.51.100.7",
		"::ffff:198.51.100.7":     "198.51.100.7",
		"2001:db8:7:9::1":         "2001:db8:7:9::/64",
		"2001:db8:7:9:ffff:1:2:3": "2001:db8:7:9::/64",
		"fe80::1%eth0":            "fe80::/64",
		"not-an-address":          "not-an-address",
	} {
		if got := Network(in); got != want {
			t.Errorf("Network(%q) = %q; want %q", in, got, want)
		}
	}
}
