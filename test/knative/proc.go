package knative

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Replica is one function process: the host-built binary run with
// LISTEN_ADDRESS on a loopback port and its configuration in the
// environment, as the Knative user container runs it.
type Replica struct {
	Name string
	// Addr is host:port of its LISTEN_ADDRESS.
	Addr string
	// Exec is when the process was started, Listening when its readiness
	// probe first got an answer (any status: func-go serves while the
	// function's Start runs), Ready when it first answered 200.
	Exec, Listening, Ready time.Time

	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
	err    error
}

// StartReplica runs bin as function name with env (KEY=VALUE) added to a
// minimal environment. It returns once the process runs; WaitReady waits for
// its readiness probe.
func StartReplica(name, bin string, env []string) (*Replica, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &Replica{Name: name, Addr: "127.0.0.1:" + strconv.Itoa(port), out: &syncBuffer{}, exited: make(chan struct{})}
	r.cmd = exec.Command(bin)
	// The environment the user container gets: nothing of the test's own,
	// so a function cannot lean on something Knative does not set.
	r.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "LISTEN_ADDRESS=" + r.Addr}, env...)
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	// Killed with the test binary if it dies first.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	r.Exec = time.Now()
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { r.err = r.cmd.Wait(); close(r.exited) }()
	return r, nil
}

// URL is the replica's base URL.
func (r *Replica) URL() string { return "http://" + r.Addr }

// Pid is the process id.
func (r *Replica) Pid() int { return r.cmd.Process.Pid }

// WaitReady polls GET /health/readiness every 2 ms (Knative's queue-proxy
// probes a starting container this aggressively) until it answers 200 and
// records the time; it fails when the process exits first.
func (r *Replica) WaitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.URL()+"/health/readiness", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			now := time.Now()
			if r.Listening.IsZero() {
				r.Listening = now
			}
			if resp.StatusCode == http.StatusOK {
				r.Ready = now
				return nil
			}
		}
		select {
		case <-r.exited:
			return fmt.Errorf("%s exited before ready (%v):\n%s", r.Name, r.err, r.Output())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w\n%s", r.Name, ctx.Err(), r.Output())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// Kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (r *Replica) Kill() {
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.exited
}

// Terminate sends SIGTERM, as the kubelet does when a pod is deleted, and
// waits up to grace for func-go's graceful shutdown; then SIGKILL. It
// returns the process's exit error (nil for exit status 0).
func (r *Replica) Terminate(grace time.Duration) error {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
		return r.err
	case <-time.After(grace):
		r.Kill()
		return fmt.Errorf("%s did not exit within %v of SIGTERM", r.Name, grace)
	}
}

// Exited is closed when the process has exited.
func (r *Replica) Exited() <-chan struct{} { return r.exited }

// Output is what the process wrote to stdout and stderr so far.
func (r *Replica) Output() string { return r.out.String() }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 { // keep the last MiB or so
		s.b.Next(s.b.Len() / 2)
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

var errNoReplica = errors.New("no ready replica")
