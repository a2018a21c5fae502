package dss

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/remoteid"
)

// fakeDSS is a FAKE: a few lines written for this test from the F3411-22a
// API shapes (paths, versions, subscribers), not InterUSS's DSS. It proves
// the client sends what the standard names and reads what it returns; it
// cannot prove a real DSS agrees.
type fakeDSS struct {
	mu       sync.Mutex
	isas     map[string]ISA
	subURL   string
	requests []string
}

func (f *fakeDSS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
	if r.Header.Get("Authorization") != "Bearer tok:127.0.0.1:rid.service_provider" {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"bad token"}`))
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/rid/v2/dss/identification_service_areas/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	id, version, _ := strings.Cut(rest, "/")
	cur, exists := f.isas[id]
	conflict := func() {
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"message":"version mismatch"}`))
	}
	subs := []SubscriberToNotify{{URL: f.subURL, Subscriptions: []SubscriptionState{{SubscriptionID: "sub-1", NotificationIndex: 3}}}}
	switch r.Method {
	case http.MethodPut:
		if exists != (version != "") || (exists && cur.Version != version) {
			conflict()
			return
		}
		var p ISAParameters
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil || p.Extents.TimeEnd == nil || p.USSBaseURL == "" ||
			p.Extents.Volume.OutlinePolygon == nil || len(p.Extents.Volume.OutlinePolygon.Vertices) < 3 {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"message":"bad parameters"}`))
			return
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(cur.Version, "v"))
		isa := ISA{ID: id, Owner: "dronetrack", Version: "v" + strconv.Itoa(n+1), USSBaseURL: p.USSBaseURL,
			TimeStart: remoteid.NewTime(time.Now()), TimeEnd: *p.Extents.TimeEnd}
		f.isas[id] = isa
		_ = json.NewEncoder(w).Encode(ISAResponse{ServiceArea: isa, Subscribers: subs})
	case http.MethodDelete:
		if !exists || cur.Version != version {
			conflict()
			return
		}
		delete(f.isas, id)
		_ = json.NewEncoder(w).Encode(ISAResponse{ServiceArea: cur, Subscribers: subs})
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func TestISALifecycleAgainstAFakeDSS(t *testing.T) {
	var (
		mu    sync.Mutex
		notes []string
	)
	sub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n ISANotification
		_ = json.NewDecoder(r.Body).Decode(&n)
		raw, _ := json.Marshal(n)
		mu.Lock()
		notes = append(notes, r.URL.Path+" "+r.Header.Get("Authorization")+" "+string(raw))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer sub.Close()
	fake := &fakeDSS{isas: map[string]ISA{}, subURL: sub.URL + "/rid/v2"}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	c := &Client{BaseURL: srv.URL + "/rid/v2", Token: func(_ context.Context, aud, scope string) (string, error) {
		return "tok:" + aud + ":" + scope, nil
	}}
	ctx := context.Background()
	end := remoteid.NewTime(time.Now().Add(time.Hour))
	p := ISAParameters{USSBaseURL: "https://sp.example/rid/v2", Extents: Volume4D{TimeEnd: &end, Volume: Volume3D{
		OutlinePolygon: &Polygon{Vertices: []remoteid.LatLng{{Lat: 47, Lng: 8}, {Lat: 47, Lng: 8.1}, {Lat: 47.1, Lng: 8.1}}},
		AltitudeUpper:  remoteid.NewAltitude(1000)}}}
	const id = "2f1a7c3e-5a0b-4a43-9d9b-3c7f4c0e9a11"

	r, err := c.PutISA(ctx, id, "", p)
	if err != nil || r.ServiceArea.Version != "v1" || r.ServiceArea.USSBaseURL != p.USSBaseURL || len(r.Subscribers) != 1 {
		t.Fatalf("create: %+v %v", r, err)
	}
	if err := c.Notify(ctx, r.Subscribers, id, &r.ServiceArea, &p.Extents); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutISA(ctx, id, "", p); !errors.Is(err, ErrConflict) {
		t.Errorf("create twice: %v, want ErrConflict", err)
	}
	if _, err := c.PutISA(ctx, id, "v9", p); !errors.Is(err, ErrConflict) {
		t.Errorf("update at a stale version: %v, want ErrConflict", err)
	}
	if r, err = c.PutISA(ctx, id, "v1", p); err != nil || r.ServiceArea.Version != "v2" {
		t.Fatalf("update: %+v %v", r, err)
	}
	d, err := c.DeleteISA(ctx, id, "v2")
	if err != nil || d.ServiceArea.ID != id {
		t.Fatalf("delete: %+v %v", d, err)
	}
	if err := c.Notify(ctx, d.Subscribers, id, nil, nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(notes) != 2 {
		t.Fatalf("notifications %v", notes)
	}
	wantPath := "/rid/v2/uss/identification_service_areas/" + id + " Bearer tok:127.0.0.1:rid.service_provider "
	if !strings.HasPrefix(notes[0], wantPath) || !strings.Contains(notes[0], `"service_area":{"id":"`+id) ||
		!strings.Contains(notes[0], `"extents":{"volume":{"outline_polygon"`) || !strings.Contains(notes[0], `"subscription_id":"sub-1","notification_index":3`) {
		t.Errorf("put notification %s", notes[0])
	}
	if body := notes[1][strings.Index(notes[1], "{"):]; !strings.HasPrefix(notes[1], wantPath) ||
		strings.Contains(body, "service_area") || strings.Contains(body, "extents") {
		t.Errorf("delete notification %s: want subscriptions only", notes[1])
	}

	noEnd := p
	noEnd.Extents.TimeEnd = nil
	if _, err := c.PutISA(ctx, "x", "", noEnd); err == nil {
		t.Error("an ISA without time_end was sent")
	}
	bad := &Client{BaseURL: c.BaseURL, Token: func(context.Context, string, string) (string, error) { return "wrong", nil }}
	var de *Error
	if _, err := bad.PutISA(ctx, "y", "", p); !errors.As(err, &de) || de.Status != 401 || de.Message != "bad token" {
		t.Errorf("refused token: %v", err)
	}
}
