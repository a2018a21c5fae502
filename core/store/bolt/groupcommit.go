package bolt

import (
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
)

// maxGroup bounds the writes merged into one transaction.
const maxGroup = 1000

// commitGap is the least time from the end of a group commit to the start
// of the next. A commit costs two fsyncs and a rewrite of every page it
// touched whatever it carries, and the functions' writes come spread out
// (a report's state write in process, its alerts' tracker write after the
// broker's hop): without a gap most groups held a few writes at
// 1,000 reports/s. A write arriving after a quiet gap is committed at once;
// one arriving sooner waits at most the gap (so a caller writing one
// transaction after another pays it each time). Measured in
// docs/performance.md (Round 3: bolt store).
const commitGap = 2 * time.Millisecond

// groupCommit merges concurrent hot writes into one bbolt transaction (one
// fsync), like bbolt's DB.Batch, but without its fixed wait: a group is
// committed as soon as the previous commit ends (and gap has passed since),
// and everything that arrived meanwhile forms the next group. bbolt's Batch
// instead closes a group after MaxBatchDelay and then queues it behind the
// writer lock, so when an fsync takes longer than that delay (as it often
// does; figures in docs/performance.md) each commit carries only the
// delay's worth of writes and throughput collapses to delay/fsync of the
// offered rate; here the group grows with the fsync time.
type groupCommit struct {
	db      *bbolt.DB
	mu      sync.Mutex
	pending []*groupCall
	running bool
	gap     time.Duration // least time from a commit's end to the next's start
	lastEnd time.Time     // loop only

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
		if g.gap > 0 {
			if wait := g.gap - time.Since(g.lastEnd); wait > 0 {
				time.Sleep(wait)
			}
		}
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
		g.lastEnd = time.Now()
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
