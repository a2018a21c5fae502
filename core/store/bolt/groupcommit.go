package bolt

import (
	"sync"
	"sync/atomic"

	"go.etcd.io/bbolt"
)

// maxGroup bounds the writes merged into one transaction.
const maxGroup = 1000

// groupCommit merges concurrent hot writes into one bbolt transaction (one
// fsync), like bbolt's DB.Batch, but without its fixed wait: a group is
// committed as soon as the previous commit ends, and everything that
// arrived meanwhile forms the next group. bbolt's Batch instead closes a
// group after MaxBatchDelay and then queues it behind the writer lock, so
// when an fsync takes longer than that delay (as it often does; figures in
// docs/performance.md) each commit carries only the delay's worth of writes and
// throughput collapses to delay/fsync of the offered rate; here the group
// grows with the fsync time. A lone write is committed at once.
type groupCommit struct {
	db      *bbolt.DB
	mu      sync.Mutex
	pending []*groupCall
	running bool

	// commits and calls count the transactions committed and the calls
	// they carried (GroupStats in tests: the group sizes a load gets).
	commits, calls atomic.Int64
}

type groupCall struct {
	fn   func(*bbolt.Tx) error
	done chan error
}

// do runs fn in a write transaction shared with concurrent callers. As with
// DB.Batch, fn may run more than once (when another write of its group
// fails, the group is retried without it) and must be idempotent.
func (g *groupCommit) do(fn func(*bbolt.Tx) error) error {
	c := &groupCall{fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, c)
	if !g.running {
		g.running = true
		go g.loop()
	}
	g.mu.Unlock()
	return <-c.done
}

func (g *groupCommit) loop() {
	for {
		g.mu.Lock()
		n := min(len(g.pending), maxGroup)
		if n == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		calls := g.pending[:n:n]
		g.pending = append([]*groupCall(nil), g.pending[n:]...)
		g.mu.Unlock()
		g.commit(calls)
	}
}

// commit runs calls in one transaction. A call whose fn fails is answered
// from a transaction of its own, and the rest are committed again without it.
func (g *groupCommit) commit(calls []*groupCall) {
	for len(calls) > 0 {
		failed := -1
		err := g.db.Update(func(tx *bbolt.Tx) error {
			for i, c := range calls {
				if err := c.fn(tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			g.commits.Add(1)
			g.calls.Add(int64(len(calls)))
			for _, c := range calls {
				c.done <- err // nil, or the commit's own failure for all
			}
			return
		}
		c := calls[failed]
		c.done <- g.db.Update(c.fn)
		calls = append(calls[:failed:failed], calls[failed+1:]...)
	}
}
