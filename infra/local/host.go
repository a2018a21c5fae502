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

// Instance is the knative func-go HTTP instance contract every Dronetrack
// function implements.
type Instance interface {
	Handle(http.ResponseWriter, *http.Request)
	Start(ctx context.Context, cfg map[string]string) error
	Stop(ctx context.Context) error
	Ready(ctx context.Context) (bool, error)
	Alive(ctx context.Context) (bool, error)
}

// Hosted is one function on its own loopback HTTP server, served the way
// func-go's http runtime serves it: /health/readiness and /health/liveness
// answer from Ready and Alive, every other path goes to Handle.
type Hosted struct {
	name string
	fn   Instance
	ln   net.Listener
	srv  *http.Server
	done chan error
}

// Listen binds the function's loopback listener and starts serving at once,
// like func-go, which serves while Start runs (Handle answers 503 until then).
func Listen(name string, fn Instance, log *slog.Logger) (*Hosted, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("%s: listen: %w", name, err)
	}
	h := &Hosted{name: name, fn: fn, ln: ln, done: make(chan error, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("/health/readiness", func(w http.ResponseWriter, r *http.Request) {
		health(w, r, fn.Ready, "READY", "function not yet ready")
	})
	mux.HandleFunc("/health/liveness", func(w http.ResponseWriter, r *http.Request) {
		health(w, r, fn.Alive, "ALIVE", "function not alive")
	})
	mux.HandleFunc("/", fn.Handle)
	h.srv = &http.Server{
		Handler:  mux,
		ErrorLog: slog.NewLogLogger(log.With("function", name).Handler(), slog.LevelWarn),
	}
	limitServer(h.srv)
	inprocHandlers.StoreFunction(ln.Addr().String(), fn, h.srv.Handler)
	go func() { h.done <- h.srv.Serve(ln) }()
	return h, nil
}

// URL is where the function listens; the broker delivers to it and the
// public listener proxies to it.
func (h *Hosted) URL() string { return "http://" + h.ln.Addr().String() }

// Shutdown stops accepting, waits for requests in flight, then calls Stop so
// the function flushes what it buffered.
func (h *Hosted) Shutdown(ctx context.Context) error {
	inprocHandlers.Delete(h.ln.Addr().String())
	err := h.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		_ = h.srv.Close()
	}
	return errors.Join(err, h.fn.Stop(ctx))
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
func limitServer(srv *http.Server) {
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
			return fmt.Errorf("%s not ready: %w", h.name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Name is the function's name (its Knative Service name).
func (h *Hosted) Name() string { return h.name }

// Interrupt cuts the function's listener with requests in flight (they fail
// mid-batch, as when the function's pod dies) and serves it again on the
// same address after down. The fault tests use it; in-process deliveries to
// the function fail while it is down, as TCP ones do.
func (h *Hosted) Interrupt(down time.Duration) error {
	addr := h.ln.Addr().String()
	inprocHandlers.Delete(addr)
	_ = h.srv.Close() // abrupt: open connections are closed, not drained
	<-h.done
	time.Sleep(down)
	var ln net.Listener
	var err error
	for range 100 { // the port may linger briefly
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("relisten on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h.srv.Handler, ErrorLog: h.srv.ErrorLog}
	limitServer(srv)
	h.ln, h.srv = ln, srv
	inprocHandlers.StoreFunction(addr, h.fn, srv.Handler)
	go func() { h.done <- srv.Serve(ln) }()
	return nil
}
