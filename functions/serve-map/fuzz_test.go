package function

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzQueryParams: any bbox, from, to, limit and after on the fleet and track
// routes is answered 200 or a 400 problem (or 304/404 where meaningful),
// never a 5xx or a panic.
func FuzzQueryParams(f *testing.F) {
	for _, s := range [][5]string{
		{"8,47,9,48", "", "", "", ""},
		{"", "2026-11-29T03:00:00Z", "2026-11-29T04:00:00Z", "10", ""},
		{"", "2026-11-29T04:00:00Z", "2026-11-29T03:00:00Z", "0", "x"},
		{"x", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "1000000", "2026-11-29T03:00:00+14:00"},
		{"-180,-90,180,90", "2026-11-29T03:00:00.000000001Z", "2026-11-29T03:00:00.000000002Z", "-1", "2026-11-29T03:00:00Z"},
		{"NaN,1,2,3", "", "", "99999999999999999999", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4])
	}
	fx := newFixture(f, "local://"+uniq("fuzz"), nil)
	h := withSession(fx.cookie, http.HandlerFunc(fx.f.Handle))
	f.Fuzz(func(t *testing.T, bbox, from, to, limit, after string) {
		for _, path := range []string{"/api/v1/drones", "/api/v1/drones/" + fx.tenant + "-a/track"} {
			q := url.Values{}
			for k, v := range map[string]string{"bbox": bbox, "from": from, "to": to, "limit": limit, "after": after} {
				if v != "" {
					q.Set(k, v)
				}
			}
			r := httptest.NewRequest(http.MethodGet, path+"?"+q.Encode(), nil)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			switch w.Code {
			case http.StatusOK, http.StatusBadRequest:
			default:
				t.Fatalf("GET %s: status %d: %s", r.URL, w.Code, w.Body)
			}
		}
	})
}
