package function

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
)

var errClosed = errors.New("process is stopping")

// TrackAppender writes history points idempotently (store.AppendTrack).
type TrackAppender func(ctx context.Context, points []store.TrackPoint) error

// groupCommit gathers the history points of concurrent requests into one
// store write: a bbolt transaction costs an fsync and a Firestore commit a
// round trip, whatever their size, so batching is most of process's
// throughput. Each caller waits for the write holding its points.
type groupCommit struct {
	write    TrackAppender
	maxBatch int
	linger   time.Duration // extra wait for company after the first request; 0 = natural batching only
	timeout  time.Duration // bound of one store write

	in   chan batchReq
	done chan struct{}
	once sync.Once
}

type batchReq struct {
	points []store.TrackPoint
	result chan error
}

func newGroupCommit(write TrackAppender, maxBatch int, linger, timeout time.Duration) *groupCommit {
	g := &groupCommit{write: write, maxBatch: maxBatch, linger: linger, timeout: timeout,
		in: make(chan batchReq), done: make(chan struct{})}
	go g.loop()
	return g
}

// Append waits until points are durable. ctx bounds the wait only.
func (g *groupCommit) Append(ctx context.Context, points []store.TrackPoint) error {
	req := batchReq{points: points, result: make(chan error, 1)}
	select {
	case g.in <- req:
	case <-g.done:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.result:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *groupCommit) loop() {
	for {
		var first batchReq
		select {
		case first = <-g.in:
		case <-g.done:
			return
		}
		// Natural batching: take whatever queued up while the last write
		// ran, without waiting for more. Under load batches grow by
		// themselves; at low load a lone request pays no added latency.
		// With a linger, wait up to that long (or maxBatch points) for more.
		reqs, n := []batchReq{first}, len(first.points)
		var deadline <-chan time.Time
		var timer *time.Timer
		if g.linger > 0 {
			timer = time.NewTimer(g.linger)
			deadline = timer.C
		}
	gather:
		for n < g.maxBatch {
			if deadline == nil {
				select {
				case r := <-g.in:
					reqs = append(reqs, r)
					n += len(r.points)
				default:
					break gather
				}
				continue
			}
			select {
			case r := <-g.in:
				reqs = append(reqs, r)
				n += len(r.points)
			case <-deadline:
				break gather
			case <-g.done:
				break gather
			}
		}
		if timer != nil {
			timer.Stop()
		}
		points := make([]store.TrackPoint, 0, n)
		for _, r := range reqs {
			points = append(points, r.points...)
		}
		err := g.writeOnce(points)
		if err != nil && len(reqs) > 1 && !outage(err) {
			// Not an outage, so maybe one request's points are bad (an id the
			// backend refuses): write each request alone so the bad one
			// fails by itself instead of failing, and being retried with,
			// every request that shared its batch.
			for _, r := range reqs {
				r.result <- g.writeOnce(r.points)
			}
			continue
		}
		for _, r := range reqs {
			r.result <- err
		}
	}
}

// outage reports whether err says the store is down or hung rather than
// refusing these points: writing each request alone would then only repeat
// the wait once per request.
func outage(err error) bool {
	return errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// writeOnce writes detached from any caller (a caller that gave up must not
// cancel a write others wait on), bounded by the store timeout so a hung
// store holds the loop for one timeout, not indefinitely.
func (g *groupCommit) writeOnce(points []store.TrackPoint) error {
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	return g.write(ctx, points)
}

// Close stops the loop after the batch in hand is written; callers blocked
// in Append get errClosed.
func (g *groupCommit) Close() { g.once.Do(func() { close(g.done) }) }
