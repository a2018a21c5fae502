package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"regexp"
	"testing"
)

func TestNewLevelsAndFunction(t *testing.T) {
	for level, wantDebug := range map[string]bool{"debug": true, "DEBUG": true, "": false, "nonsense": false, "warn": false} {
		var buf bytes.Buffer
		log := New(&buf, "ingest", level)
		log.Debug("d")
		log.Warn("w")
		lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
		if got := len(lines) == 2; got != wantDebug {
			t.Errorf("level %q: %d lines, want debug shown=%v", level, len(lines), wantDebug)
		}
		var rec map[string]any
		if err := json.Unmarshal(lines[len(lines)-1], &rec); err != nil || rec["function"] != "ingest" {
			t.Errorf("level %q: last line %s, want JSON naming the function", level, lines[len(lines)-1])
		}
	}
}

// A Deferred logger writes the same lines as the logger it wraps, With
// and groups included.
func TestDeferredWritesTheSameLines(t *testing.T) {
	write := func(l *slog.Logger) {
		l = l.With("event_id", "e1", "n", 2)
		l.Debug("hidden")
		l.With("drone_id", "d1").WithGroup("g").With("x", 1).Warn("w", "k", "v")
		l.Info("i")
	}
	var plain, deferred bytes.Buffer
	write(New(&plain, "process", "info"))
	write(Deferred(New(&deferred, "process", "info")))
	noTime := regexp.MustCompile(`"time":"[^"]*",`)
	got, want := noTime.ReplaceAllString(deferred.String(), ""), noTime.ReplaceAllString(plain.String(), "")
	if got != want || want == "" {
		t.Fatalf("deferred logger wrote\n%s\nwant\n%s", got, want)
	}
}
