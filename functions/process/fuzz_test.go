package function

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzServeEvent feeds hostile CloudEvents (binary or structured mode, any
// attribute, any body) to the handler over a healthy store: it must never
// panic, never claim an outage (503 makes the broker retry a poison event
// until it is dead-lettered) and never answer 5xx; bad input is a 400
// problem, anything else a 2xx.
func FuzzServeEvent(f *testing.F) {
	good := `{"tenantId":"t1","droneId":"d1","receivedAt":"2026-11-29T04:00:01Z","reports":[{"ts":"2026-11-29T04:00:00Z","lat":47.4,"lon":8.5}]}`
	for _, s := range []struct {
		structured                     bool
		id, typ, src, tenant, ct, body string
	}{
		{false, "e1", "dev.dronetrack.telemetry.received.v1", "/ingest", "t1", "application/json", good},
		{false, "e2", "dev.dronetrack.telemetry.received.v1", "/ingest", "t2", "application/json", good},
		{false, "e3", "dev.dronetrack.telemetry.received.v1", "/ingest", "t1", "application/json", `{"reports":[[[[[[[[[[]]]]]]]]]]}`},
		{false, "", "", "", "", "", ""},
		{false, "e4", "x", "%zz", "t1", "text/plain", "\xff\xfe"},
		{true, "", "", "", "", "application/cloudevents+json", `{"specversion":"1.0","id":"s1","type":"dev.dronetrack.telemetry.received.v1","source":"/i","tenantid":"t1","datacontenttype":"application/json","data":` + good + `}`},
		{true, "", "", "", "", "application/cloudevents+json", `{"specversion":"1.0","id":"s2","type":"dev.dronetrack.telemetry.received.v1","source":"/i","data_base64":"!!"}`},
		{true, "", "", "", "", "application/cloudevents-batch+json", `[{}]`},
	} {
		f.Add(s.structured, s.id, s.typ, s.src, s.tenant, s.ct, s.body)
	}
	e := newEnv(f, Options{Now: func() time.Time { return time.Date(2026, 11, 29, 4, 0, 2, 0, time.UTC) }}, "d1")
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
		e.h.ServeHTTP(w, r)
		if w.Code >= 500 || (w.Code != http.StatusBadRequest && w.Code/100 != 2) {
			t.Fatalf("status %d for a hostile event: %s", w.Code, w.Body)
		}
	})
}
