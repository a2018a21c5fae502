package system

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/remoteid"

	"github.com/dronetrack/dronetrack/cmd/dronetrack/cli"
	"github.com/dronetrack/dronetrack/infra/local"
)

// TestRemoteIDOneMachine runs `up` on loopback (so the local test authority
// is on), takes tokens from `dronetrack rid token`, turns Remote ID on for
// the demo tenant and follows a drone report through ingest, process and
// cache-refresh to the SP's /flights (alt from its hae), and an injected
// test flight to /flights and /details.
func TestRemoteIDOneMachine(t *testing.T) {
	dir := t.TempDir()
	sys, demo := startTestSystem(t, local.Options{DataDir: dir})
	ctx := context.Background()
	token := func(scope string) string {
		var out, errb bytes.Buffer
		if err := cli.Run(ctx, []string{"rid", "token", "--scope", scope, "--data", dir, "--audience", "127.0.0.1"}, &out, &errb); err != nil {
			t.Fatalf("rid token: %v %s", err, errb.String())
		}
		return "Bearer " + strings.TrimSpace(out.String())
	}
	display, inject := token("rid.display_provider"), token("rid.inject_test_data")
	do := func(method, path, auth string, body []byte) (int, []byte) {
		req, _ := http.NewRequest(method, sys.URL()+path, bytes.NewReader(body))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	view := "/rid/v2/uss/flights?view=47.370,8.535,47.385,8.550"
	if code, b := do("GET", view, display, nil); code != 200 || strings.Contains(string(b), demo[0].DroneID) {
		t.Fatalf("before Remote ID is on: %d %s", code, b)
	}
	if code, _ := do("GET", view, inject, nil); code != 403 {
		t.Errorf("inject token on /flights: %d, want 403", code)
	}
	if err := sys.Store().SetTenantRemoteID(ctx, demo[0].TenantID, true); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	mustPostReport(t, sys.URL(), demo[0].Key, fmt.Sprintf(
		`{"ts":%q,"lat":47.3775,"lon":8.5420,"alt":410,"hae":457.5,"height":30,"speed":6,"heading":10,"armed":true}`,
		now.Format(time.RFC3339Nano)))

	start := now.Add(-5 * time.Second)
	var tel []string
	for i := 0; i < 90; i++ {
		tel = append(tel, fmt.Sprintf(`{"timestamp":%q,"position":{"lat":47.38,"lng":%f,"alt":500,"accuracy_h":"HA3m","accuracy_v":"VA3m"},"speed":5,"track":90,"vertical_speed":0,"speed_accuracy":"SA1mps","timestamp_accuracy":0.1,"operational_status":"Airborne"}`,
			start.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano), 8.54+float64(i)*1e-5))
	}
	body := `{"requested_flights":[{"injection_id":"e2e","aircraft_type":"Aeroplane","telemetry":[` + strings.Join(tel, ",") +
		`],"details_responses":[{"effective_after":"2020-01-01T00:00:00Z","details":{"id":"x","operator_id":"OP1","uas_id":{"registration_id":"CHE.1"}}}]}]}`
	if code, b := do("PUT", "/rid/injection/tests/e2e-test", inject, []byte(body)); code != 200 {
		t.Fatalf("inject: %d %s", code, b)
	}

	deadline := time.Now().Add(15 * time.Second)
	for {
		code, b := do("GET", view, display, nil)
		var got remoteid.FlightsResponse
		_ = json.Unmarshal(b, &got)
		var drone, test *remoteid.Flight
		for i, f := range got.Flights {
			switch f.ID {
			case demo[0].DroneID:
				drone = &got.Flights[i]
			case remoteid.TestFlightID("e2e-test", "e2e"):
				test = &got.Flights[i]
			}
		}
		if code == 200 && drone != nil && test != nil {
			if drone.CurrentState.Position.Alt != 457.5 || drone.CurrentState.OperationalStatus != "Airborne" ||
				drone.CurrentState.Position.Height.Distance != 30 || !test.Simulated || test.AircraftType != "Aeroplane" {
				t.Errorf("flights: %s", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the drone's report and the injected flight did not both reach /flights: %d %s", code, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, b := do("GET", "/rid/v2/uss/flights/"+remoteid.TestFlightID("e2e-test", "e2e")+"/details", display, nil)
	if code != 200 || !strings.Contains(string(b), `"registration_id":"CHE.1"`) {
		t.Errorf("details: %d %s", code, b)
	}
}

func TestRIDAuthorityOnlyOnLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "localhost:1": true, "[::1]:80": true,
		"0.0.0.0:8080": false, ":8080": false, "10.1.2.3:80": false, "example.test:80": false} {
		if got := local.LoopbackAddr(addr); got != want {
			t.Errorf("loopbackAddr(%q) = %v", addr, got)
		}
	}
	dir := t.TempDir()
	if cfg, err := local.RIDAuthorityConfig("auto", dir, "0.0.0.0:8080"); err != nil || cfg != nil {
		t.Errorf("auto on 0.0.0.0: %v %v; want off", cfg, err)
	}
	if _, err := local.RIDAuthorityConfig("on", dir, ":8080"); err == nil {
		t.Error("on for a non-loopback listener accepted")
	}
	if cfg, err := local.RIDAuthorityConfig("off", dir, "127.0.0.1:0"); err != nil || cfg != nil {
		t.Errorf("off: %v %v", cfg, err)
	}
	cfg, err := local.RIDAuthorityConfig("auto", dir, "127.0.0.1:0")
	if err != nil || cfg["RID_PUBLIC_KEY_FILE"] == "" || !strings.Contains(cfg["RID_AUDIENCE"], "127.0.0.1") {
		t.Errorf("auto on loopback: %v %v", cfg, err)
	}
	var out, errb bytes.Buffer
	if err := cli.Run(context.Background(), []string{"rid", "token", "--data", t.TempDir(), "--scope", "rid.display_provider"}, &out, &errb); err == nil ||
		!strings.Contains(err.Error(), "no local test authority") {
		t.Errorf("token without an authority: %v", err)
	}
}
