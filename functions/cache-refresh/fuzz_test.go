package function

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzHandle feeds hostile CloudEvents to cache-refresh over a healthy local
// cache: no panic, no 5xx (a 503 would make the broker retry a poison event),
// bad input is a 400 problem and anything else 204.
func FuzzHandle(f *testing.F) {
	good := `{"tenantId":"t1","droneId":"d1","state":{"ts":"2026-11-29T04:00:00Z","lat":47.4,"lon":8.5,"updatedAt":"2026-11-29T04:00:01Z"}}`
	for _, s := range []struct {
		structured                     bool
		id, typ, src, tenant, ct, body string
	}{
		{false, "e1", "dev.dronetrack.state.updated.v1", "/process", "t1", "application/json", good},
		{false, "e2", "dev.dronetrack.state.updated.v1", "/process", "other", "application/json", good},
		{false, "e3", "dev.dronetrack.state.updated.v1", "/process", "t1", "application/json", `{"state":{"lat":1e999}}`},
		{false, "", "", "", "", "", ""},
		{false, "e4", "x", "%zz", "t1", "text/plain", "\xff\xfe"},
		{true, "", "", "", "", "application/cloudevents+json", `{"specversion":"1.0","id":"s1","type":"dev.dronetrack.state.updated.v1","source":"/p","tenantid":"t1","data":` + good + `}`},
		{true, "", "", "", "", "application/cloudevents+json", `{"specversion":"0.3","id":1}`},
	} {
		f.Add(s.structured, s.id, s.typ, s.src, s.tenant, s.ct, s.body)
	}
	fn := New()
	if err := fn.Start(context.Background(), map[string]string{"CACHE_URL": "local://" + uniq("fuzz"), "LOG_LEVEL": "error"}); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { fn.Stop(context.Background()) })
	f.Fuzz(func(t *testing.T, structured bool, id, typ, src, tenant, ct, body string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		if !structured {
			for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Id": id, "Ce-Type": typ,
				"Ce-Source": src, "Ce-Tenantid": tenant} {
				r.Header[k] = []string{v}
			}
		}
		r.Header["Content-Type"] = []string{ct}
		w := httptest.NewRecorder()
		fn.Handle(w, r)
		if w.Code != http.StatusBadRequest && w.Code/100 != 2 {
			t.Fatalf("status %d for a hostile event: %s", w.Code, w.Body)
		}
	})
}
