package testenv

import (
	"bytes"
	"sync"
)

// LogBuffer collects output written from several goroutines (a server's
// handlers, a function's workers, a slog handler) and reads it back whole.
// A bytes.Buffer alone is not safe for that, and the race detector says so.
// The zero value is ready to use.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
