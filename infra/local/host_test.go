package local

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

type okFunction struct{}

func (okFunction) Handle(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }

func (okFunction) Start(context.Context, map[string]string) error { return nil }

func (okFunction) Stop(context.Context) error { return nil }

func (okFunction) Ready(context.Context) (bool, error) { return true, nil }

func (okFunction) Alive(context.Context) (bool, error) { return true, nil }

func hostOK(t *testing.T) *Hosted {
	t.Helper()
	h, err := Listen("ok", okFunction{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Shutdown(context.Background()) })
	return h
}

// A flood of headers is refused with 431 instead of being buffered.
func TestHeaderFloodRefused(t *testing.T) {
	h := hostOK(t)
	req, _ := http.NewRequest(http.MethodGet, h.URL()+"/", nil)
	for i := range 200 {
		req.Header.Set("X-Flood-"+strings.Repeat("a", 10)+string(rune('a'+i%26))+strings.Repeat("b", i), strings.Repeat("v", 500))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d for ~100 KiB of headers, want 431", resp.StatusCode)
	}
}

// A client that sends half a request line and then nothing (slow loris) is
// disconnected once ReadHeaderTimeout passes, not held forever.
func TestSlowLorisDisconnected(t *testing.T) {
	h := hostOK(t)
	c, err := net.Dial("tcp", h.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST /v1/telemetry HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	// Generous bound so a slow machine doesn't fail the test; what matters
	// is that the server hangs up at all.
	_ = c.SetReadDeadline(time.Now().Add(ReadHeaderTimeout + 20*time.Second))
	_, err = bufio.NewReader(c).ReadString('\n')
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("connection still open after ReadHeaderTimeout (read: %v)", err)
	}
}
