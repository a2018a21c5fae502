package system

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/testenv"

	"github.com/dronetrack/dronetrack/infra/local"
)

// startTestSystem starts the whole one-machine system in-process on a fresh
// data dir and loopback port, shuts it down when the test ends (printing its
// output if the test failed), and returns it with its demo drones' keys.
// Fields set in o win over these defaults.
func startTestSystem(t testing.TB, o local.Options) (*local.System, []local.DemoKey) {
	t.Helper()
	logs := &testenv.LogBuffer{}
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.HTTPAddr == "" {
		o.HTTPAddr = "127.0.0.1:0"
	}
	if o.LogLevel == 0 {
		o.LogLevel = slog.LevelWarn
	}
	if o.Log == nil {
		o.Log, o.Out = logs, logs
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = 30 * time.Second
	}
	sys, err := local.Start(context.Background(), o)
	if err != nil {
		t.Fatalf("start system: %v", err)
	}
	t.Cleanup(func() {
		_ = sys.Shutdown()
		if t.Failed() {
			t.Logf("system output:\n%s", logs.String())
		}
	})
	demo, err := local.ReadDemoKeys(filepath.Join(o.DataDir, local.DemoKeysFile))
	if err != nil || len(demo) == 0 {
		t.Fatalf("demo keys: %d, %v", len(demo), err)
	}
	return sys, demo
}

// readSSE parses a Server-Sent Events body until it ends, calling on with
// each data line and the event type it belongs to.
func readSSE(body io.Reader, on func(kind, data string)) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	kind := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			kind = line[7:]
		case strings.HasPrefix(line, "data: "):
			on(kind, line[6:])
		}
	}
}

// mustPostReport posts a telemetry body to the system's ingest with a drone key
// (and extra header name/value pairs) and fails the test unless it is
// accepted (202).
func mustPostReport(t *testing.T, baseURL, key, body string, header ...string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, baseURL+"/v1/telemetry", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req) // an ingest that never answers fails the test
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/telemetry: %d %s, want 202", resp.StatusCode, b)
	}
}
