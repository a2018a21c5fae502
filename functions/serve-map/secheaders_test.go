package function

import (
	"net/http"
	"strings"
	"testing"
)

// Every answer, page or API, carries the security headers, and the CSP
// allows images from the configured tile host only.
func TestSecurityHeaders(t *testing.T) {
	fx := newFixture(t, "local://"+uniq("sec"), map[string]string{"TILES_URL": "https://tiles.example.net/{z}/{x}/{y}.png"})
	for _, path := range []string{"/", "/api/v1/drones", "/api/v1/openapi.json", "/nope"} {
		resp, err := http.Get(fx.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "img-src 'self' data: https://tiles.example.net;") ||
			!strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options = %q", path, got)
		}
		if got := resp.Header.Get("Strict-Transport-Security"); got != "" {
			t.Errorf("%s: HSTS %q on plain http", path, got)
		}
	}
}

func TestBadTilesURLRefusedAtStart(t *testing.T) {
	f := New()
	err := f.start(t.Context(), map[string]string{"TILES_URL": "https://x.example; script-src *"}, newTestStore(t))
	if err == nil || !strings.Contains(err.Error(), "TILES_URL") {
		t.Fatalf("start = %v, want a TILES_URL error", err)
	}
}
