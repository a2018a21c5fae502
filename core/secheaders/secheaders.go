// Package secheaders sets the browser security headers of the Dronetrack
// website and API: a strict Content-Security-Policy (our own scripts, styles
// and API only, map tiles from one configured host), no framing, no MIME
// sniffing, a referrer policy that leaks no paths, and HSTS when the request
// reached us over HTTPS.
//
// The policy allows no inline script or style: the front end must ship its
// code and CSS as files and set styles through the CSSOM (el.style.x = ...),
// never through style="" attributes in markup it injects.
package secheaders

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// DefaultTilesURL is the raster tile template the website uses unless
// configured otherwise (TILES_URL); only its origin matters here.
const DefaultTilesURL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"

// HSTS is sent on HTTPS requests: two years, subdomains included.
const HSTS = "max-age=63072000; includeSubDomains"

// TileOrigin is the scheme://host[:port] of a {z}/{x}/{y} tile URL template,
// the source CSP must allow for images. An empty template (offline basemap)
// gives "".
func TileOrigin(tilesURL string) (string, error) {
	if strings.TrimSpace(tilesURL) == "" {
		return "", nil
	}
	u, err := url.Parse(tilesURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		strings.ContainsAny(u.Host, " ;,'\"") {
		return "", fmt.Errorf("tiles URL %q: want an http(s) URL template such as %s", tilesURL, DefaultTilesURL)
	}
	return u.Scheme + "://" + u.Host, nil
}

// CSP is the Content-Security-Policy for the site with images also allowed
// from tileOrigin (none when empty).
func CSP(tileOrigin string) string {
	img := "img-src 'self' data:"
	if tileOrigin != "" {
		img += " " + tileOrigin
	}
	return strings.Join([]string{
		"default-src 'self'",
		"script-src 'self'",
		"style-src 'self'",
		img,
		"connect-src 'self'",
		"font-src 'self'",
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors 'none'",
	}, "; ")
}

// Middleware sets the headers on every response of next. tileOrigin comes
// from TileOrigin.
func Middleware(tileOrigin string) func(http.Handler) http.Handler {
	csp := []string{CSP(tileOrigin)}
	fixed := map[string][]string{
		"Content-Security-Policy":      csp,
		"X-Content-Type-Options":       {"nosniff"},
		"X-Frame-Options":              {"DENY"},
		"Referrer-Policy":              {"strict-origin-when-cross-origin"},
		"Cross-Origin-Opener-Policy":   {"same-origin"},
		"Cross-Origin-Resource-Policy": {"same-origin"},
		"Permissions-Policy":           {"camera=(), microphone=(), geolocation=(), payment=(), usb=()"},
	}
	hsts := []string{HSTS}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			for k, v := range fixed {
				h[k] = v
			}
			if HTTPS(r) {
				h["Strict-Transport-Security"] = hsts
			}
			next.ServeHTTP(w, r)
		})
	}
}

// HTTPS reports whether the client reached us over TLS: directly, or through
// a TLS-terminating proxy (Knative's ingress) that says so in
// X-Forwarded-Proto. A client could forge that header on plain HTTP, but all
// it gains is being told to use HTTPS.
func HTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	p := r.Header.Get("X-Forwarded-Proto")
	if i := strings.IndexByte(p, ','); i >= 0 {
		p = p[:i]
	}
	return strings.EqualFold(strings.TrimSpace(p), "https")
}
