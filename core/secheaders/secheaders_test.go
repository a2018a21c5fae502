package secheaders

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCSPIsStrict(t *testing.T) {
	origin, err := TileOrigin(DefaultTilesURL)
	if err != nil {
		t.Fatal(err)
	}
	csp := CSP(origin)
	for _, want := range []string{"default-src 'self'", "img-src 'self' data: https://tile.openstreetmap.org",
		"connect-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "script-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP lacks %q: %s", want, csp)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*"} {
		if strings.Contains(csp, bad) {
			t.Errorf("CSP allows %q: %s", bad, csp)
		}
	}
	if got := CSP(""); !strings.Contains(got, "img-src 'self' data:;") {
		t.Errorf("offline basemap CSP: %s", got)
	}
}

func TestTileOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://tiles.example.com:8443/a/{z}/{x}/{y}.png?key=k": "https://tiles.example.com:8443",
		"": "",
	} {
		got, err := TileOrigin(in)
		if err != nil || got != want {
			t.Errorf("TileOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"javascript:alert(1)", "tiles/{z}", "https://a.example; script-src *", "data:x"} {
		if _, err := TileOrigin(bad); err == nil {
			t.Errorf("TileOrigin(%q) accepted", bad)
		}
	}
}

func TestMiddleware(t *testing.T) {
	h := Middleware("https://t.example")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	for _, tc := range []struct {
		name string
		req  func() *http.Request
		hsts bool
	}{
		{"plain http", func() *http.Request { return httptest.NewRequest("GET", "/", nil) }, false},
		{"tls", func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.TLS = &tls.ConnectionState{}
			return r
		}, true},
		{"behind a TLS proxy", func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("X-Forwarded-Proto", "https")
			return r
		}, true},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, tc.req())
		if rec.Code != http.StatusTeapot {
			t.Errorf("%s: status %d: the handler's answer must pass through", tc.name, rec.Code)
		}
		for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
			"Referrer-Policy": "strict-origin-when-cross-origin", "Content-Security-Policy": CSP("https://t.example")} {
			if got := rec.Header().Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", tc.name, k, got, want)
			}
		}
		if got := rec.Header().Get("Strict-Transport-Security") != ""; got != tc.hsts {
			t.Errorf("%s: HSTS sent = %v, want %v", tc.name, got, tc.hsts)
		}
	}
}
