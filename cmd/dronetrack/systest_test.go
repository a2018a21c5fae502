package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startTestSystem starts the whole one-machine system in-process on a fresh
// data dir and loopback port, shuts it down when the test ends (printing its
// output if the test failed), and returns it with its demo drones' keys.
// Fields set in o win over these defaults.
func startTestSystem(t *testing.T, o upOptions) (*system, []demoKey) {
	t.Helper()
	logs := &lockedBuffer{}
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
	sys, err := startSystem(context.Background(), o)
	if err != nil {
		t.Fatalf("start system: %v", err)
	}
	t.Cleanup(func() {
		_ = sys.Shutdown()
		if t.Failed() {
			t.Logf("system output:\n%s", logs.String())
		}
	})
	demo, err := readDemoKeys(filepath.Join(o.DataDir, demoKeysFile))
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
