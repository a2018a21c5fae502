package cli

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gomavlib/v3/pkg/dialects/common"

	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/core/testenv/mavtest"
	"github.com/dronetrack/dronetrack/events"
)

// TestBridgeCommand runs `dronetrack bridge` against a recording ingest
// stand-in and feeds it MAVLink from a gomavlib sender over UDP loopback.
func TestBridgeCommand(t *testing.T) {
	const key = "dtk_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
	var mu sync.Mutex
	var got []events.Report
	ing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/telemetry" || r.Header.Get("Authorization") != "Bearer "+key {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		var reps []events.Report
		if err := json.NewDecoder(r.Body).Decode(&reps); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, reps...)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer ing.Close()

	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udp := pc.LocalAddr().String()
	pc.Close()
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var stderr testenv.LogBuffer
	go func() {
		done <- Run(ctx, []string{"bridge", "--udp", udp, "--ingest", ing.URL, "--key-file", keyFile,
			"--data", t.TempDir(), "--flush", "100ms", "--stats", "0"}, io.Discard, &stderr)
	}()

	// The UDP socket is bound before "bridge running" is logged; a packet
	// sent earlier would be refused and lost.
	for start := time.Now(); !strings.Contains(stderr.String(), "bridge running"); time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("bridge did not start; log:\n%s", stderr.String())
		}
	}
	v := mavtest.Vehicle(t, udp, 0)
	for i := range 20 {
		if err := v.WriteMessageAll(&common.MessageGlobalPositionInt{Lat: 473977418 + int32(i), Lon: 85455939,
			Alt: 488000, Vx: 300, Vy: 400, Hdg: 4500}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingest got %d of 20 reports; bridge log:\n%s", n, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("bridge: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 20 {
		t.Fatalf("ingest got %d reports, want 20", len(got))
	}
	r := got[0]
	if r.Lat != 47.3977418 || r.Lon != 8.5455939 || *r.Alt != 488 || *r.Speed != 5 || *r.Heading != 45 {
		t.Errorf("first report %+v: units not converted (want 47.3977418, 8.5455939, 488 m, 5 m/s, 45°)", r)
	}
	if strings.Contains(stderr.String(), key) {
		t.Error("the drone key appears in the bridge log")
	}
}

func TestBridgeCommandNeedsKey(t *testing.T) {
	t.Setenv(KeyEnv, "")
	err := Run(context.Background(), []string{"bridge", "--data", t.TempDir()}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no drone key") {
		t.Fatalf("err = %v, want a missing-key error", err)
	}
}
