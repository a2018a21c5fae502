package function_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dronetrack/dronetrack/core/keys"
	"github.com/dronetrack/dronetrack/core/store"
	function "github.com/dronetrack/dronetrack/functions/ingest"
)

type closeCounter struct{ n int }

func (c *closeCounter) Close() error { c.n++; return nil }

func TestFunctionLifecycle(t *testing.T) {
	s := &sink{}
	sinkSrv := httptest.NewServer(s)
	defer sinkSrv.Close()
	key, _ := keys.Generate()
	d := store.Drone{ID: "drone-9", TenantID: "tenant-9", KeyHash: keys.Hash(pepper, key)}
	closer := &closeCounter{}
	var openedURL string
	f := function.NewWithStore(func(_ context.Context, url string) (function.DroneFinder, io.Closer, error) {
		openedURL = url
		return &finder{drones: map[string]store.Drone{d.KeyHash: d}}, closer, nil
	})
	srv := httptest.NewServer(http.HandlerFunc(f.Handle))
	defer srv.Close()

	post := func() *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+function.PathTelemetry, strings.NewReader(
			`{"ts":"`+nowRFC3339()+`","lat":1,"lon":2}`))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	// func-go serves while Start runs: until then every request is 503.
	if ready, _ := f.Ready(context.Background()); ready {
		t.Error("Ready before Start")
	}
	if resp := post(); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("before Start: %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	cfg := map[string]string{
		"STORE_URL": "bolt:///tmp/x.db", "K_SINK": sinkSrv.URL, "DRONE_KEY_PEPPER": string(pepper), "LOG_LEVEL": "error",
	}
	if err := f.Start(context.Background(), cfg); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if openedURL != "bolt:///tmp/x.db" {
		t.Errorf("store opened with %q, want STORE_URL", openedURL)
	}
	if ready, _ := f.Ready(context.Background()); !ready {
		t.Error("not Ready after Start")
	}
	if alive, _ := f.Alive(context.Background()); !alive {
		t.Error("not Alive")
	}
	if resp := post(); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("after Start: %d, want 202", resp.StatusCode)
	}
	if n := len(s.got()); n != 1 {
		t.Errorf("sink got %d events, want 1", n)
	}
	if err := f.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if closer.n != 1 {
		t.Errorf("store closed %d times, want 1", closer.n)
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	opener := func(context.Context, string) (function.DroneFinder, io.Closer, error) {
		return &finder{}, nil, nil
	}
	good := map[string]string{"STORE_URL": "bolt:///tmp/x.db", "K_SINK": "http://127.0.0.1:1/", "DRONE_KEY_PEPPER": string(pepper)}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		m[k] = v
		return m
	}
	for name, tc := range map[string]struct {
		cfg  map[string]string
		want string
	}{
		"nothing":      {map[string]string{}, "STORE_URL, K_SINK, DRONE_KEY_PEPPER"},
		"no pepper":    {with("DRONE_KEY_PEPPER", ""), "DRONE_KEY_PEPPER"},
		"short pepper": {with("DRONE_KEY_PEPPER", "abc"), "DRONE_KEY_PEPPER"},
		"bad sink":     {with("K_SINK", "not a url"), "K_SINK"},
		"bad key ttl":  {with("KEY_CACHE_TTL", "soon"), "KEY_CACHE_TTL"},
	} {
		t.Run(name, func(t *testing.T) {
			err := function.NewWithStore(opener).Start(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start error = %v, want one naming %s", err, tc.want)
			}
		})
	}

	t.Run("store does not open", func(t *testing.T) {
		boom := errors.New("boom")
		f := function.NewWithStore(func(context.Context, string) (function.DroneFinder, io.Closer, error) { return nil, nil, boom })
		if err := f.Start(context.Background(), good); !errors.Is(err, boom) {
			t.Fatalf("Start error = %v, want it to wrap the store's", err)
		}
		if ready, _ := f.Ready(context.Background()); ready {
			t.Error("Ready after a failed Start")
		}
	})
}
