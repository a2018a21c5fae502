package logging

import (
	"bytes"
	"encoding/json"
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
