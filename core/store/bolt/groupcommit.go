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
// of the next when the writer is busy. A commit costs two fsyncs and a
// rewrite of every page it touched whatever it carries, and the functions'
// writes come spread out (a report's state write in process, its alerts'
// tracker write after the broker's hop): without a gap most groups held a
// few writes at 1,000 reports/s. A write arriving after a quiet gap is
// committed at once; one arriving sooner waits at most the gap. Measured in
// docs/performance.md (Round 3: bolt store; Round 5: bolt writer).
const commitGap = 2 * time.Millisecond

// maxCommitGap is the gap after large groups. The gap grows with the size
// of the group just committed (gapFullGroup calls and more get all of it):
// a busy writer's commits then carry more writes each, which shares the
// fsyncs, the meta page and the pages every group rewrites (the track
// bucket's leaves, the expiry index's tail, the branch pages above the
// drones' documents) among more reports. A writer that is behind (as
// many writes arrived during its last commit as that commit carried)
// skips the gap (groupCommit.behind).
const (
	maxCommitGap = 10 * time.Millisecond
	gapFullGroup = 32
)

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
	// gap and maxGap bound the time from a commit's end to the next's
	// start after a group of two calls or more (gapAfter); a lone call's
	// commit is followed by none, so a caller writing one transaction
	// after another on a quiet store does not wait. gap == maxGap: that
	// gap after every commit.
	gap, maxGap time.Duration
	full        chan struct{} // a full group is pending: the gap ends
	nextGap     time.Duration // loop only: the gap before the next commit
	lastN       int           // loop only: the calls of the last commit
	lastEnd     time.Time     // loop only

	// Trimming the file's pages (unmapResident): lastTrim is when the last
	// trim began (UnixNano), mapped says pages may have been mapped since,
	// and timerArmed that a trim is scheduled for them (trimSoon).
	lastTrim   atomic.Int64
	mapped     atomic.Bool
	timerArmed atomic.Bool

	// faults turns the kernel's fault-around off for bbolt's mapping
	// (registered again by each trim once bbolt has mapped the file anew).
	faults *faultAround
	// While the writer is busy a trim waits until the process's resident
	// file pages have grown by budget bytes since the last (trimmedRSS,
	// from rss; trims counts them): see overBudget.
	rss        *fileRSS
	budget     int64
	trimmedRSS atomic.Int64
	trims      atomic.Int64

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
	if len(g.pending) == maxGroup {
		select {
		case g.full <- struct{}{}:
		default:
		}
	}
	if !g.running {
		g.running = true
		go g.loop()
	}
	g.mu.Unlock()
	return <-c.done
}

func (g *groupCommit) loop() {
	var timer *time.Timer
	for {
		if wait := g.nextGap - time.Since(g.lastEnd); wait > 0 && !g.behind() {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-timer.C:
			case <-g.full: // a full group is pending: waiting adds nothing to it
				timer.Stop()
			}
		}
		g.mu.Lock()
		n := min(len(g.pending), maxGroup)
		if n == 0 && g.sinceTrim() >= trimEvery {
			// Going quiet: what the last writes and reads mapped is
			// dropped now, not at the next write. The loop still runs
			// meanwhile, so there is no second one.
			g.mu.Unlock()
			g.unmapResident()
			continue
		}
		if n == 0 {
			g.running = false
			g.mu.Unlock()
			// Trimmed less than trimEvery ago: the last writes' pages
			// are dropped by the timer instead.
			g.trimSoon()
			if timer != nil {
				timer.Stop()
			}
			return
		}
		calls := g.pending[:n:n]
		g.pending = append([]*groupCall(nil), g.pending[n:]...)
		g.mu.Unlock()
		// The timer trims during a long commit too: a group of a
		// thousand drones' writes maps pages of each.
		g.mapped.Store(true)
		g.trimSoon()
		g.commit(calls)
		g.mapped.Store(true)
		g.coverMapping()
		g.lastEnd = time.Now()
		g.nextGap, g.lastN = g.gapAfter(n), n
		if g.sinceTrim() >= trimEvery && g.overBudget() {
			g.unmapResident()
		} else {
			g.trimSoon()
		}
	}
}

// behind says the next group needs no gap to gather: a full group is
// pending (its signal on g.full may have been taken by an earlier wait),
// or, with the adaptive gap, the writes that arrived during the last
// commit already make a group as large as it and of at least gapFullGroup
// calls. The writer is then the bottleneck (its commits take as long as
// the gap would, or longer), and a gap would only idle it.
func (g *groupCommit) behind() bool {
	g.mu.Lock()
	n := len(g.pending)
	g.mu.Unlock()
	return n >= g.behindAt()
}

// behindAt is the pending calls at which behind holds.
func (g *groupCommit) behindAt() int {
	if g.maxGap <= g.gap {
		return maxGroup
	}
	return min(maxGroup, max(gapFullGroup, g.lastN))
}

// gapAfter is the gap that follows the commit of a group of n calls: none
// after a lone call (a sequential writer on an otherwise quiet store),
// otherwise gap, growing with n to maxGap at gapFullGroup calls. Groups
// grow with the gap in turn, so under a steady load of concurrent writes
// the gap settles where the groups it gathers put it: at maxGap once the
// writes come faster than gapFullGroup per maxGap, nearer gap below that.
func (g *groupCommit) gapAfter(n int) time.Duration {
	if g.maxGap <= g.gap {
		return g.gap
	}
	if n <= 1 {
		return 0
	}
	return min(g.maxGap, max(g.gap, g.maxGap*time.Duration(n)/gapFullGroup))
}

// sinceTrim is the time since the last unmapResident began.
func (g *groupCommit) sinceTrim() time.Duration {
	return time.Duration(time.Now().UnixNano() - g.lastTrim.Load())
}

// afterRead notes that a read transaction may have mapped pages of the file
// and schedules their trim: reads map pages as writes do (reading every
// drone's history maps most of the file), and a store that is only read
// has no write loop to trim it.
func (g *groupCommit) afterRead() {
	if !g.mapped.Load() {
		g.mapped.Store(true)
	}
	if !g.timerArmed.Load() {
		g.trimSoon()
	}
}

// trimSoon arms a timer that trims the pages mapped since the last trim,
// trimEvery after that trim, unless one is armed already. While the
// write loop trims as it writes, the timer finds its pages trimmed and
// goes again only if reads mapped more since.
func (g *groupCommit) trimSoon() {
	if g.mapped.Load() && g.timerArmed.CompareAndSwap(false, true) {
		time.AfterFunc(max(trimEvery-g.sinceTrim(), 0), g.trimTimer)
	}
}

func (g *groupCommit) trimTimer() {
	if !g.mapped.Load() { // trimmed since, and nothing mapped after
		g.timerArmed.Store(false)
		g.trimSoon() // a read that came between the check and the disarm
		return
	}
	if wait := trimEvery - g.sinceTrim(); wait > 0 {
		time.AfterFunc(wait, g.trimTimer)
		return
	}
	g.timerArmed.Store(false)
	if g.busy() && !g.overBudget() {
		// The write loop checks again after its next commit, and
		// trims when it goes quiet.
		return
	}
	g.unmapResident()
	g.trimSoon() // pages mapped while it ran
}

// busy says the write loop is running: writes keep coming.
func (g *groupCommit) busy() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.running
}

// overBudget says the process's resident file pages grew by budget bytes
// or more since the last trim (or that this cannot be told). A trim drops
// the writer's own pages too, and the writer faults them back in one by
// one on its single goroutine, the pipeline's serial part (bbolt's
// Page.FastCheck, the first read of a page, in up's profiles). So while
// writes keep coming the store trims by what has been mapped, not by the
// clock; when they stop, by the clock again (the write loop going quiet,
// the timer). docs/performance.md, "Round 6: resident store pages".
func (g *groupCommit) overBudget() bool {
	now := g.rss.bytes()
	return now < 0 || now-g.trimmedRSS.Load() >= g.budget
}

// trimEvery is how often a store drops the file's pages from the
// process's page tables (unmapResident). Every write reads pages of its
// own through the mapping (the drone's history leaf and branches, state,
// geo index), so what is resident between trims grows with the write rate
// times this period (docs/performance.md, "Round 5: memory of up"). A
// shorter period costs little more: a drone's pages are touched once per
// post whatever the period, so mostly the shared branch pages fault again
// (a minor fault) after each trim.
const trimEvery = 250 * time.Millisecond

// trimBudget is how much the process's resident file pages may grow before
// a busy writer trims (overBudget): with fault-around off (faultAround) a
// write maps about the pages it reads, so this bounds the store's share of
// RSS under load. A larger budget costs the writer fewer faults and RSS
// more (docs/performance.md, "Round 6: resident store pages").
const trimBudget = 32 << 20

// unmapResident drops the pages of bbolt's read-only file mapping from the
// process's page tables (madvise MADV_DONTNEED; a no-op where there is
// none). Every page a transaction has read through the mapping stays
// mapped, and copy-on-write puts each new version of a drone's pages at
// another place in the file, so the process's resident set grew with the
// file (RssFile, hundreds of MB at 10,000 drones: docs/performance.md,
// "Round 4: 10 per request and RSS") though the kernel could drop those
// pages at any time. Dropped, a page is read again from the page cache on
// its next access (a minor fault): the hot pages of the last few seconds
// come back, nothing is lost, as the mapping is of the file itself and
// the file is written with pwrite. It runs inside a read transaction,
// which holds bbolt's mapping lock, so bbolt cannot remap the file
// meanwhile (writes go on); tx.Size, the file's size as of the last commit,
// is never more than the mapping, and no transaction reads a page past it
// through the mapping.
func (g *groupCommit) unmapResident() {
	g.lastTrim.Store(time.Now().UnixNano())
	g.mapped.Store(false)
	tx, err := g.db.Begin(false)
	if err != nil {
		return // closed: nothing mapped
	}
	defer func() { _ = tx.Rollback() }()
	addr, size := g.db.Info().Data, uintptr(tx.Size())
	dropMapped(addr, size)
	g.faults.cover(addr, size)
	g.trimmedRSS.Store(g.rss.bytes())
	g.trims.Add(1)
}

// coverMapping turns fault-around off for bbolt's mapping at once when a
// commit made bbolt map the file anew (it does as the file grows), rather
// than at the next trim.
func (g *groupCommit) coverMapping() {
	tx, err := g.db.Begin(false) // keeps the mapping as it is meanwhile
	if err != nil {
		return
	}
	g.faults.cover(g.db.Info().Data, uintptr(tx.Size()))
	_ = tx.Rollback()
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
