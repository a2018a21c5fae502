package system

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dronetrack/dronetrack/core/loadgen"

	"github.com/dronetrack/dronetrack/cmd/dronetrack/cli"
	"github.com/dronetrack/dronetrack/infra/local"
)

// TestLoadCmd runs `dronetrack load` briefly both ways: starting the system
// in this process, and with --url against a running system (reading its
// data dir, counting through the APIs). Every acked report must be stored
// and reach the live stream, and the table, JSON and chart must be written.
func TestLoadCmd(t *testing.T) {
	const drones = 20
	run := func(t *testing.T, extra ...string) {
		out := t.TempDir()
		args := append([]string{"--drones", "20", "--rates", "20", "--step", "2s", "--drain", "60s", "--out", out}, extra...)
		var stdout, stderr bytes.Buffer
		if err := cli.Run(context.Background(), append([]string{"load"}, args...), &stdout, &stderr); err != nil {
			t.Fatalf("load: %v\n%s", err, stderr.String())
		}
		if !strings.Contains(stdout.String(), "| 202→SSE p50/p95/p99 ms |") {
			t.Errorf("table lacks the 202→SSE column:\n%s", stdout.String())
		}
		var res loadgen.Result
		raw, err := os.ReadFile(filepath.Join(out, "load.json"))
		if err == nil {
			err = json.Unmarshal(raw, &res)
		}
		if err != nil {
			t.Fatalf("load.json: %v", err)
		}
		if res.Acked == 0 || res.Lost != 0 || res.Stored != res.Acked || !res.Drained {
			t.Errorf("acked %d stored %d lost %d drained %v; want all stored and drained", res.Acked, res.Stored, res.Lost, res.Drained)
		}
		if res.Streamed != res.Acked {
			t.Errorf("%d of %d acked reports reached the live stream", res.Streamed, res.Acked)
		}
		if len(res.Steps) != 1 || res.Drones != drones {
			t.Errorf("steps %d drones %d; want 1 step of %d drones", len(res.Steps), res.Drones, drones)
		}
		f, err := os.Open(filepath.Join(out, "load.png"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := png.Decode(f); err != nil {
			t.Errorf("load.png: %v", err)
		}
	}
	t.Run("in process", func(t *testing.T) { run(t) })
	t.Run("url", func(t *testing.T) {
		sys, _ := startTestSystem(t, local.Options{DemoDrones: drones})
		run(t, "--url", sys.URL(), "--data", sys.DataDir())
	})
}
