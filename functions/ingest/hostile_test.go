package function_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	function "github.com/dronetrack/dronetrack/functions/ingest"
)

// Hostile bodies get a clear 4xx and never reach the broker: nesting deep
// enough to exhaust a recursive decoder's stack, and an oversize body sent
// chunked (no Content-Length to refuse it by).
func TestHostileBodies(t *testing.T) {
	e := newEnv(t)
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	deepObj := strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000)
	good := report(time.Second, 47.4, 8.5)
	for _, tc := range []struct {
		name string
		body string
		want int
	}{
		{"deep array as the body", deep, http.StatusBadRequest},
		{"deep object in an unknown field", good[:len(good)-1] + `,"x":` + deepObj + "}", http.StatusBadRequest},
		{"deep array as a value", good[:len(good)-1] + `,"lat2":` + deep + "}", http.StatusBadRequest},
	} {
		r := e.post(t, tc.body)
		if r.status != tc.want {
			t.Errorf("%s: status %d, want %d: %.200s", tc.name, r.status, tc.want, r.body)
			continue
		}
		decodeProblem(t, r)
	}

	// Chunked: the server cannot know the size up front; it stops reading
	// at the limit.
	pr, pw := io.Pipe()
	go func() {
		chunk := []byte(strings.Repeat(" ", 64<<10))
		_, _ = pw.Write([]byte("["))
		for i := 0; i < 2*function.MaxBodyBytes/len(chunk)+1; i++ {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		_ = pw.Close() // the JSON never closes; it is too large anyway
	}()
	r := e.do(t, http.MethodPost, function.PathTelemetry, e.key, "application/json", pr)
	if r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked oversize body: status %d, want 413", r.status)
	}
	if n := len(e.sink.got()); n != 0 {
		t.Errorf("%d events published from hostile bodies, want 0", n)
	}
}
