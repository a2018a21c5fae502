package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// function is the knative func-go HTTP instance contract every Dronetrack
// function implements.
type function interface {
	Handle(http.ResponseWriter, *http.Request)
	Start(ctx context.Context, cfg map[string]string) error
	Stop(ctx context.Context) error
	Ready(ctx context.Context) (bool, error)
	Alive(ctx context.Context) (bool, error)
}

// hosted is one function on its own loopback HTTP server, served the way
// func-go's http runtime serves it: /health/readiness and /health/liveness
// answer from Ready and Alive, every other path goes to Handle.
type Hosted struct {
	Name string
	Fn   function
	Ln   net.Listener
	Srv  *http.Server
	Done chan error
}

// listen binds the function's loopback listener and starts serving at once,
// like func-go, which serves while Start runs (Handle answers 503 until then).
func Listen(name string, fn function, log *slog.Logger) (*Hosted, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("%s: listen: %w", name, err)
	}
	h := &Hosted{Name: name, Fn: fn, Ln: ln, Done: make(chan error, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("/health/readiness", func(w http.ResponseWriter, r *http.Request) {
		health(w, r, fn.Ready, "READY", "function not yet ready")
	})
	mux.HandleFunc("/health/liveness", func(w http.ResponseWriter, r *http.Request) {
		health(w, r, fn.Alive, "ALIVE", "function not alive")
	})
	mux.HandleFunc("/", fn.Handle)
	h.Srv = &http.Server{
		Handler:  mux,
		ErrorLog: slog.NewLogLogger(log.With("function", name).Handler(), slog.LevelWarn),
	}
	LimitServer(h.Srv)
	InprocHandlers.Store(ln.Addr().String(), h.Srv.Handler)
	go func() { h.Done <- h.Srv.Serve(ln) }()
	return h, nil
}

// URL is where the function listens; the broker delivers to it and the
// public listener proxies to it.
func (h *Hosted) URL() string { return "http://" + h.Ln.Addr().String() }

// shutdown stops accepting, waits for requests in flight, then calls Stop so
// the function flushes what it buffered.
func (h *Hosted) Shutdown(ctx context.Context) error {
	InprocHandlers.Delete(h.Ln.Addr().String())
	err := h.Srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		_ = h.Srv.Close()
	}
	return errors.Join(err, h.Fn.Stop(ctx))
}

// Server limits against hostile clients, for every listener `up` opens. No
// ReadTimeout or WriteTimeout: they would cut the SSE stream; bodies are
// bounded by the handlers (ingest's MaxBodyBytes).
const (
	// ReadHeaderTimeout closes a connection whose request headers dribble in
	// (slow loris).
	ReadHeaderTimeout = 10 * time.Second
	// IdleTimeout closes keep-alive connections nobody uses.
	IdleTimeout = 120 * time.Second
	// MaxHeaderBytes answers 431 to header floods; a drone's headers are
	// well under 1 KiB, a browser's under 8 KiB.
	MaxHeaderBytes = 64 << 10
)

// limitServer applies the limits above to srv.
func LimitServer(srv *http.Server) {
	srv.ReadHeaderTimeout = ReadHeaderTimeout
	srv.IdleTimeout = IdleTimeout
	srv.MaxHeaderBytes = MaxHeaderBytes
}

func health(w http.ResponseWriter, r *http.Request, check func(context.Context) (bool, error), ok, notOK string) {
	good, err := check(r.Context())
	switch {
	case err != nil:
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, "error checking health: ", err.Error())
	case !good:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, notOK)
	default:
		fmt.Fprint(w, ok)
	}
}

// waitReady polls the function's readiness endpoint until it answers 200,
// the same probe Knative would use.
func (h *Hosted) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.URL()+"/health/readiness", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w", h.Name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
