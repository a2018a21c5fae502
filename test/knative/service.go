package knative

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Service stands in for a Knative Service: a loopback listener that spreads
// requests round-robin over the function's ready replicas, as the
// queue-proxies behind a Knative Service's endpoints do. With no replica
// and ScaleFromZero set it starts one and holds the request until the
// replica is ready, as Knative's activator does for a revision scaled to
// zero; without ScaleFromZero it answers 503 with Retry-After. A request
// whose replica refuses the connection (a replica that just died) is sent
// to another one, as the activator retries; any other failure of the
// replica is a 502.
type Service struct {
	Name string
	// ScaleFromZero lets a request start the first replica.
	ScaleFromZero bool

	bin string
	env []string

	mu       sync.Mutex
	replicas []*Replica // in rotation: ready, not yet removed
	all      []*Replica // every replica ever started, for Close
	next     int
	starting chan struct{} // closed when an on-demand start finished
	startErr error
	cold     []ColdStart

	ln    net.Listener
	srv   *http.Server
	proxy *httputil.ReverseProxy
}

// ColdStart is one replica's start: exec to ready and, for a replica
// started on demand, exec to the first request it answered.
type ColdStart struct {
	Replica         string
	ExecToListening time.Duration
	ExecToReady     time.Duration
	ExecToServed    time.Duration // zero unless started on demand
}

// NewService listens on a loopback port for function name, whose replicas
// run bin with env.
func NewService(name, bin string, env []string) (*Service, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Service{Name: name, bin: bin, env: env, ln: ln}
	s.proxy = &httputil.ReverseProxy{
		Rewrite:       func(*httputil.ProxyRequest) {}, // the transport picks the replica
		Transport:     &spread{s: s, base: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}},
		FlushInterval: -1, // SSE
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, errNoReplica) {
				w.Header().Set("Retry-After", "1")
				http.Error(w, s.Name+": no ready replica", http.StatusServiceUnavailable)
				return
			}
			http.Error(w, s.Name+": "+err.Error(), http.StatusBadGateway)
		},
	}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the Service's address, what Triggers and clients call.
func (s *Service) URL() string { return "http://" + s.ln.Addr().String() }

func (s *Service) serve(w http.ResponseWriter, r *http.Request) {
	// Buffer the body so that a request can be sent again to another
	// replica (all Dronetrack requests are small; ingest bounds its bodies).
	if r.Body != nil && r.Body != http.NoBody {
		body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	r.URL.Scheme, r.URL.Host = "http", "replica"
	s.proxy.ServeHTTP(w, r)
}

// spread is the Service's transport: it picks a replica per attempt.
type spread struct {
	s    *Service
	base http.RoundTripper
}

func (t *spread) RoundTrip(req *http.Request) (*http.Response, error) {
	var tried []*Replica
	for {
		rep, onDemand, err := t.s.pick(req.Context(), tried)
		if err != nil {
			return nil, err
		}
		out := req.Clone(req.Context())
		out.URL.Host = rep.Addr
		if req.GetBody != nil {
			out.Body, _ = req.GetBody()
		}
		resp, err := t.base.RoundTrip(out)
		if err == nil {
			if onDemand {
				t.s.servedFirst(rep)
			}
			return resp, nil
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, err
		}
		t.s.Remove(rep) // gone: out of rotation, try another
		tried = append(tried, rep)
	}
}

// pick returns the next replica in rotation, starting one when there is
// none and ScaleFromZero is set (onDemand then reports it).
func (s *Service) pick(ctx context.Context, tried []*Replica) (rep *Replica, onDemand bool, err error) {
	for {
		s.mu.Lock()
		for range len(s.replicas) {
			r := s.replicas[s.next%len(s.replicas)]
			s.next++
			if !slices.Contains(tried, r) {
				s.mu.Unlock()
				return r, false, nil
			}
		}
		if !s.ScaleFromZero {
			s.mu.Unlock()
			return nil, false, errNoReplica
		}
		wait := s.starting
		if wait == nil {
			wait = make(chan struct{})
			s.starting = wait
			go s.activate(wait)
		}
		s.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
		s.mu.Lock()
		err := s.startErr
		var fresh *Replica
		if n := len(s.replicas); n > 0 {
			fresh = s.replicas[n-1]
		}
		s.mu.Unlock()
		if err != nil {
			return nil, false, err
		}
		if fresh != nil && !slices.Contains(tried, fresh) {
			return fresh, true, nil
		}
	}
}

// activate starts a replica for requests waiting on a Service at zero.
func (s *Service) activate(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := s.Start(ctx)
	s.mu.Lock()
	s.startErr, s.starting = err, nil
	s.mu.Unlock()
	close(done)
}

// Start runs a new replica, waits until its readiness probe answers 200 and
// puts it into rotation.
func (s *Service) Start(ctx context.Context) (*Replica, error) {
	r, err := StartReplica(s.Name, s.bin, s.env)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.all = append(s.all, r)
	s.mu.Unlock()
	if err := r.WaitReady(ctx); err != nil {
		r.Kill()
		return nil, err
	}
	s.mu.Lock()
	s.replicas = append(s.replicas, r)
	s.cold = append(s.cold, ColdStart{Replica: r.Addr, ExecToListening: r.Listening.Sub(r.Exec), ExecToReady: r.Ready.Sub(r.Exec)})
	s.mu.Unlock()
	return r, nil
}

func (s *Service) servedFirst(r *Replica) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.cold {
		if s.cold[i].Replica == r.Addr && s.cold[i].ExecToServed == 0 {
			s.cold[i].ExecToServed = time.Since(r.Exec)
		}
	}
}

// Remove takes r out of rotation (new requests no longer reach it), as
// Knative removes a terminating pod from the Service's endpoints.
func (s *Service) Remove(r *Replica) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replicas = slices.DeleteFunc(s.replicas, func(x *Replica) bool { return x == r })
}

// Replicas returns the replicas in rotation.
func (s *Service) Replicas() []*Replica {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.replicas)
}

// ColdStarts returns every replica start so far.
func (s *Service) ColdStarts() []ColdStart {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.cold)
}

// Started reports how many replicas were ever started.
func (s *Service) Started() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.all)
}

// DrainDelay is how long a replica stays up after leaving rotation before
// it gets SIGTERM, standing in for the queue-proxy's drain: Knative keeps a
// terminating pod serving until the endpoints no longer name it, so a
// request already routed to it is not refused.
const DrainDelay = 200 * time.Millisecond

// Restart replaces every replica one at a time, as a new Knative revision
// rolls out: a new replica starts and becomes ready, then an old one leaves
// rotation and, after DrainDelay, gets SIGTERM (func-go drains its requests
// and calls Stop).
func (s *Service) Restart(ctx context.Context, grace time.Duration) error {
	for _, old := range s.Replicas() {
		if _, err := s.Start(ctx); err != nil {
			return err
		}
		s.Remove(old)
		time.Sleep(DrainDelay)
		if err := old.Terminate(grace); err != nil {
			return fmt.Errorf("%s replica %s: SIGTERM: %w\n%s", s.Name, old.Addr, err, old.Output())
		}
	}
	return nil
}

// ScaleToZero takes every replica out of rotation and stops it (SIGTERM),
// as Knative does with a revision that got no requests for a while.
func (s *Service) ScaleToZero(grace time.Duration) error {
	var errs []error
	for _, r := range s.Replicas() {
		s.Remove(r)
		if err := r.Terminate(grace); err != nil {
			errs = append(errs, fmt.Errorf("%s replica %s: %w", s.Name, r.Addr, err))
		}
	}
	return errors.Join(errs...)
}

// Close stops the listener and every replica (SIGTERM, then SIGKILL).
func (s *Service) Close() {
	_ = s.srv.Close()
	s.mu.Lock()
	all := slices.Clone(s.all)
	s.replicas = nil
	s.mu.Unlock()
	for _, r := range all {
		select {
		case <-r.Exited():
		default:
			_ = r.Terminate(5 * time.Second)
		}
	}
}

// Output joins every replica's output, for failure messages.
func (s *Service) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b bytes.Buffer
	for _, r := range s.all {
		// func-go logs every not-ready probe at debug level; leave those out.
		var kept []string
		for _, l := range strings.Split(r.Output(), "\n") {
			if !strings.Contains(l, `"function not yet ready"`) {
				kept = append(kept, l)
			}
		}
		fmt.Fprintf(&b, "--- %s replica %s (pid %d)\n%s\n", s.Name, r.Addr, r.Pid(), strings.Join(kept, "\n"))
	}
	return b.String()
}
