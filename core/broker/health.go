package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// When the disk under DataDir fills up, a standalone nats-server neither
// answers the publish it failed to write nor disables JetStream: the
// stream keeps the write error and refuses every later write, silently, until
// JetStream is restarted. So the broker watches the server's own health
// report (which names a stream's write error), answers publishes with
// ErrUnavailable at once while the store is down, and restarts JetStream on
// the same store directory once a probe file fits on the disk again. The
// streams and consumers are recovered from disk by the restart; nothing
// JetStream had acknowledged is lost, and what was delivered but not yet
// acknowledged is delivered again.
const (
	// storeCheckEvery is how often the watch asks the server for its health
	// (a read of the store directory listing; cheap).
	storeCheckEvery = 500 * time.Millisecond
	// publishTimeout bounds one publish when the caller gives no earlier
	// deadline: the server does not answer a publish it failed to write.
	publishTimeout = 10 * time.Second
	// probeBytes must fit on the disk before JetStream is restarted: with
	// less room the restart would only fail again.
	probeBytes = 4 << 20
	// restartBackoffMax bounds the wait between failed restarts.
	restartBackoffMax = 30 * time.Second
)

// storeHealth records whether the JetStream store takes writes.
type storeHealth struct {
	mu    sync.Mutex
	up    context.Context // done while the store is down; context.Cause says why
	down  context.CancelCauseFunc
	back  chan struct{} // closed when a down store takes writes again
	since time.Time     // when it went down

	quit chan struct{} // closed by Shutdown: stop holding deliveries for the store
	stop chan struct{} // closed by Shutdown once deliveries are drained
	done chan struct{} // closed when watchStore returns
}

func (h *storeHealth) init() {
	h.up, h.down = context.WithCancelCause(context.Background())
	h.back = make(chan struct{})
	h.quit = make(chan struct{})
	h.stop = make(chan struct{})
	h.done = make(chan struct{})
}

// state returns a context that is done while the store is down and a
// channel closed once it is back.
func (h *storeHealth) state() (context.Context, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.up, h.back
}

// err is why the store is down, nil when it takes writes.
func (h *storeHealth) err() error {
	up, _ := h.state()
	if up.Err() == nil {
		return nil
	}
	return context.Cause(up)
}

// markDown reports whether the store was up until now.
func (h *storeHealth) markDown(cause error) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.up.Err() != nil {
		return false
	}
	h.down(cause)
	h.since = time.Now()
	return true
}

// markUp returns how long the store was down.
func (h *storeHealth) markUp() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.up.Err() == nil {
		return 0
	}
	close(h.back)
	h.up, h.down = context.WithCancelCause(context.Background())
	h.back = make(chan struct{})
	return time.Since(h.since)
}

// errStoreDown wraps the server's health report while the store is down.
var errStoreDown = errors.New("broker store cannot take writes")

// watchStore checks the store every storeCheckEvery until Shutdown.
func (b *Broker) watchStore() {
	defer close(b.health.done)
	t := time.NewTicker(storeCheckEvery)
	defer t.Stop()
	var (
		nextTry time.Time
		wait    = time.Second
		probeOK = true // last probe's outcome, so each change is logged once
	)
	for {
		select {
		case <-b.health.stop:
			return
		case <-t.C:
		}
		// Down stays down until a restart has recovered the store and its
		// consumers, even if the server's report turns healthy before.
		if err := b.storeProblem(); err == nil && b.health.err() == nil {
			continue
		} else if err != nil && b.health.markDown(err) {
			b.log.Error("broker store cannot take writes (disk full?); the ingress answers 503 and deliveries hold their replies until it recovers; free space under the data dir",
				"data_dir", b.cfg.DataDir, "err", err)
			nextTry, wait = time.Time{}, time.Second
		}
		if time.Now().Before(nextTry) {
			continue
		}
		if err := probeSpace(b.cfg.DataDir); err != nil {
			if probeOK {
				b.log.Warn("broker store: still no room on the disk; waiting", "data_dir", b.cfg.DataDir, "err", err)
			}
			probeOK = false
			continue
		}
		probeOK = true
		b.log.Info("broker store: room on the disk again; restarting JetStream", "data_dir", b.cfg.DataDir)
		err := b.restartJetStream()
		if err == nil {
			err = b.storeProblem()
		}
		if err != nil {
			b.log.Warn("broker store: restart did not recover it; trying again", "retry_in", wait, "err", err)
			nextTry, wait = time.Now().Add(wait), min(2*wait, restartBackoffMax)
			continue
		}
		d := b.health.markUp()
		b.log.Warn("broker store takes writes again; JetStream restarted on its data dir", "down_for", d.Round(time.Millisecond))
	}
}

// storeProblem is the embedded server's own health check: JetStream off, or
// a stream that hit a write error (nats-server keeps that error on the
// stream until it is reloaded).
//
// The report's first check, that the server is ready for connections,
// gives itself 1 ms and fails when the checking goroutine is off the CPU
// for longer, which a busy machine does (BenchmarkPipeline at 2,500/s on a
// shared machine: the store was taken for down, the ingress answered 503 and
// JetStream was restarted on a healthy store). That failure alone says
// nothing about the store, and the server cannot stop being ready while the
// broker runs it, so the check is asked again; a failing store fails every
// time.
func (b *Broker) storeProblem() error {
	var h *server.HealthStatus
	for range readinessTries {
		h = b.ns.Healthz(&server.HealthzOptions{Details: true})
		if !onlyReadiness(h) {
			break
		}
	}
	return healthErr(h)
}

// readinessTries is how many health reports storeProblem asks for while
// the only failure is the 1 ms readiness check.
const readinessTries = 3

// onlyReadiness reports whether the readiness check is all that failed in h.
func onlyReadiness(h *server.HealthStatus) bool {
	if len(h.Errors) == 0 {
		return false
	}
	for _, e := range h.Errors {
		if e.Type != server.HealthzErrorConn {
			return false
		}
	}
	return true
}

// healthErr is the store's state in a health report: nil when healthy.
func healthErr(h *server.HealthStatus) error {
	if h.Error == "" && len(h.Errors) == 0 && h.StatusCode < 300 {
		return nil
	}
	msg := h.Error
	for _, e := range h.Errors {
		if msg != "" {
			msg += "; "
		}
		msg += e.Error
	}
	return fmt.Errorf("%w: jetstream: %s (%d)", errStoreDown, msg, h.StatusCode)
}

// probeSpace writes and syncs probeBytes in dir, then removes them.
func probeSpace(dir string) error {
	f, err := os.CreateTemp(dir, ".space-probe-*")
	if err != nil {
		return fmt.Errorf("space probe: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(make([]byte, probeBytes))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("space probe: %w", err)
	}
	return nil
}

// restartJetStream stops JetStream and starts it again on the same store
// directory, as nats-server does itself when a config reload re-enables it,
// then re-creates what setup creates (idempotent: streams and consumers are
// recovered from disk) and resumes consuming.
func (b *Broker) restartJetStream() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b.mu.Lock()
	for _, cc := range b.consumers {
		cc.Stop()
	}
	b.consumers = nil
	b.mu.Unlock()
	if b.ns.JetStreamEnabled() {
		if err := b.ns.ShutdownJetStream(); err != nil {
			return fmt.Errorf("stop jetstream: %w", err)
		}
	}
	// The configuration the server started with, limits included: left to
	// itself EnableJetStream would size the store limit from the disk's
	// free space now, which may be little, and keep that until the process
	// restarts. StoreDir is the one we gave (EnableJetStream appends
	// "jetstream" to it again).
	cfg := b.jsConfig
	cfg.StoreDir = b.cfg.DataDir
	if err := b.ns.EnableJetStream(&cfg); err != nil {
		return fmt.Errorf("start jetstream on %s: %w", b.cfg.DataDir, err)
	}
	return b.setup(ctx)
}

// awaitStore returns at once while the store takes writes; otherwise it
// waits until it does (the event's lease keeps reporting progress, to the
// restarted JetStream too). It reports false when the delivery is abandoned
// (Shutdown: the event stays unacknowledged and is delivered again after
// the next Open).
func (b *Broker) awaitStore(ctx context.Context) bool {
	up, back := b.health.state()
	if up.Err() == nil {
		return true
	}
	select {
	case <-back:
		return true
	case <-ctx.Done():
		return false
	case <-b.health.quit:
		return false
	}
}
