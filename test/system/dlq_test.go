package system

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/events"

	"github.com/dronetrack/dronetrack/cmd/dronetrack/cli"
	"github.com/dronetrack/dronetrack/infra/local"
)

// An event process can never handle (400) is dead-lettered by the broker;
// `dlq list` shows it and `dlq replay` sends it through again, all through
// the running up's admin endpoint.
func TestDeadLettersThroughRunningUp(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	logs := &testenv.LogBuffer{}
	sys, err := local.Start(ctx, local.Options{DataDir: dir, HTTPAddr: "127.0.0.1:0", Log: logs, Out: logs})
	if err != nil {
		t.Fatalf("start system: %v", err)
	}
	defer func() {
		if err := sys.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("system output:\n%s", logs.String())
		}
	}()

	postPoison(t, sys, "poison-1")

	list := func() string {
		var out bytes.Buffer
		if err := cli.Run(ctx, []string{"dlq", "list", "--data", dir}, &out, &out); err != nil {
			t.Fatalf("dlq list: %v", err)
		}
		return out.String()
	}
	waitFor := func(what string, ok func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got := list()
			if ok(got) {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: dlq list still says:\n%s", what, got)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	first := waitFor("dead letter recorded", func(s string) bool { return strings.Contains(s, "poison-1") })
	id := strings.Fields(first)[0]
	if !strings.Contains(first, "process") || !strings.Contains(first, events.TypeTelemetryReceived) {
		t.Errorf("dead letter line lacks trigger or type:\n%s", first)
	}

	var out bytes.Buffer
	if err := cli.Run(ctx, []string{"dlq", "replay", "--data", dir, id}, &out, &out); err != nil {
		t.Fatalf("dlq replay %s: %v", id, err)
	}
	// Still poison: it is dead-lettered again under a new id.
	again := waitFor("replayed event dead-lettered again", func(s string) bool {
		return strings.Contains(s, "poison-1") && strings.Fields(s)[0] != id
	})
	if strings.Count(again, "poison-1") != 1 {
		t.Errorf("want exactly one dead letter after replay:\n%s", again)
	}
	if err := cli.Run(ctx, []string{"dlq", "replay", "--data", dir, id}, &out, &out); err == nil {
		t.Error("replaying a removed dead letter succeeded")
	}
}

// postPoison publishes, through the broker's ingress, a telemetry.received
// event (id ceID) that process refuses for good, so it ends as a dead
// letter.
func postPoison(t *testing.T, sys *local.System, ceID string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, sys.Broker().IngressURL(), strings.NewReader(`{"tenantId":"demo"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("ce-specversion", "1.0")
	req.Header.Set("ce-id", ceID)
	req.Header.Set("ce-source", events.SourceIngest)
	req.Header.Set("ce-type", events.TypeTelemetryReceived)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("broker ingress answered %s", resp.Status)
	}
}
