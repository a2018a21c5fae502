package broker

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/klauspost/compress/s2"
)

// Group commit of published events. Publish appends the event's record to
// the open batch of its subject and waits; the batch is stored as one
// JetStream message (the batch form, storage.go) once it has waited
// Config.BatchLinger since its first event, or holds Config.MaxBatch events
// or batchMaxBytes, and every caller in it returns when JetStream has acked
// that message: an event is acknowledged to its sender only once stored, as
// before. Without the linger a batch would be what arrived during the
// previous store, one or two events at the pipeline's rates, since a store
// takes about a tenth of a millisecond. Up to storesPerSubject batches of a
// subject are stored at once, so a slow store does not hold the next
// batch's round trip; further sealed batches wait for one of them.
const (
	// defaultBatchLinger is Config.BatchLinger when unset. It adds up to
	// that much to a sender's wait for its 202 and to each hop of the
	// pipeline, and buys fewer, fuller messages at moderate rates, where a
	// shorter linger leaves batches of a few events (docs/performance.md
	// "Round 3: broker batches" has the measurements).
	defaultBatchLinger = 5 * time.Millisecond
	// defaultMaxBatch is Config.MaxBatch when unset.
	defaultMaxBatch = 256
	// batchMaxBytes seals a batch: well under the server's MaxPayload
	// (8 MiB), so one event up to the ingress's 4 MiB limit always fits
	// in a batch of its own. It also sizes what a Trigger holds in memory
	// (Config.MaxAckPending messages, each kept whole until its last event
	// is delivered): a sixteenth of a MiB is ~17 events of 10 reports, or
	// dozens of one-report events, about what a batch reaches by its linger
	// at the rates one machine takes (docs/performance.md, "Round 5: memory
	// of up").
	batchMaxBytes = 64 << 10
	// storesPerSubject is how many batches of one subject are stored at
	// once.
	storesPerSubject = 4
)

// batch is a group of events stored as one message; its callers wait on
// done and then read err.
type batch struct {
	buf   []byte // the records (storage.go); back in recordBufs once stored
	n     int    // events
	bytes int    // len(buf) when it was stored
	done  chan struct{}
	err   error
}

// recordBufs and compressedBufs hold the buffers of batches' records and
// of their compressed form. A batch's buffers are not needed once its
// message is stored, since the NATS client copies a message before
// PublishMsg returns, so they are reused by the next batches instead of
// being allocated for each one (with their growth, a tenth of the bytes up
// allocated under load).
var recordBufs, compressedBufs bufPool

// bufPool is a sync.Pool of byte buffers.
type bufPool struct{ p sync.Pool } // of *[]byte

// maxPooledBuf bounds the buffers kept: a batch of one event larger than
// a batch's bound (up to the ingress's 4 MiB) is not kept for reuse.
const maxPooledBuf = 2 * batchMaxBytes

// get is an empty buffer of at least n bytes' capacity.
func (bp *bufPool) get(n int) []byte {
	if p, ok := bp.p.Get().(*[]byte); ok && cap(*p) >= n {
		return (*p)[:0]
	}
	return make([]byte, 0, n)
}

// put gives back a buffer nothing refers to any more.
func (bp *bufPool) put(b []byte) {
	if c := cap(b); c == 0 || c > maxPooledBuf {
		return
	}
	b = b[:0]
	bp.p.Put(&b)
}

// batcher forms and stores the batches of one subject.
type batcher struct {
	b       *Broker
	subject string

	mu       sync.Mutex
	open     *batch   // taking events; nil when none arrived since the last seal
	sealed   []*batch // waiting for a store slot, oldest first
	storing  int      // stores in flight
	timer    *time.Timer
	timerFor *batch // the batch the linger timer was armed for
	// sizeHint is the capacity a new batch's buffer starts with: a little
	// over the last sealed batch's size, so a batch is usually one
	// allocation instead of a buffer doubled from empty (the doubling was
	// ~11% of the bytes up allocated under load).
	sizeHint int
}

// batchStats counts what Publish stored (BatchStats).
type batchStats struct {
	messages, events atomic.Uint64
}

// BatchStats reports how many messages published events were stored in and
// how many events they held: events per message is the batch size the
// group commit reached.
type BatchStats struct {
	Messages uint64
	Events   uint64
}

// BatchStats is what Publish has stored so far.
func (b *Broker) BatchStats() BatchStats {
	return BatchStats{Messages: b.stats.messages.Load(), Events: b.stats.events.Load()}
}

func (b *Broker) batcher(subject string) *batcher {
	if q, ok := b.batchers.Load(subject); ok {
		return q.(*batcher)
	}
	q := &batcher{b: b, subject: subject}
	q.timer = time.AfterFunc(time.Hour, q.lingered)
	q.timer.Stop()
	actual, _ := b.batchers.LoadOrStore(subject, q)
	return actual.(*batcher)
}

// publishBatched stores e through its subject's batcher and returns once
// the message holding it is acked by JetStream, or ctx ends (the event may
// then still be stored: the sender retries, subscribers are idempotent, as
// with any publish whose answer was lost).
//
// With hop, e is stored with the broker's hop counter at its start when it
// has none (the ingress's events), without a copy of e to set it.
func (b *Broker) publishBatched(ctx context.Context, subject string, e event.Event, hop bool) error {
	if _, ok := e.Context.(*event.EventContextV1); !ok {
		if _, has := extension(e, ExtTTL); hop && !has {
			e.Context = e.Context.Clone() // the caller's event is left as it was
			e.SetExtension(ExtTTL, defaultTTL)
		}
		return b.publishTo(ctx, subject, e) // the JSON form carries other spec versions
	}
	if err := b.health.err(); err != nil {
		return fmt.Errorf("%w: store event %s: %w", ErrUnavailable, e.ID(), err)
	}
	bt, err := b.batcher(subject).add(e, hop)
	if err != nil {
		return fmt.Errorf("broker: encode event %s: %w", e.ID(), err)
	}
	select {
	case <-bt.done:
	case <-ctx.Done():
		return fmt.Errorf("%w: store event %s: %w", ErrUnavailable, e.ID(), context.Cause(ctx))
	}
	if bt.err != nil {
		return fmt.Errorf("%w: store event %s (in a batch of %d, %d bytes): %w", ErrUnavailable, e.ID(), bt.n, bt.bytes, bt.err)
	}
	return nil
}

// add appends e to the open batch and returns the batch; hop as
// publishBatched's.
func (q *batcher) add(e event.Event, hop bool) (*batch, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	bt := q.open
	if bt == nil {
		bt = q.newBatchLocked()
	}
	before := len(bt.buf)
	buf, err := appendRecord(bt.buf, e, hop)
	if err != nil {
		bt.buf = buf[:before]
		return nil, err
	}
	if bt.n > 0 && len(buf) > batchMaxBytes {
		// Too big with this event: the open batch goes as it is and the
		// event starts the next one.
		bt.buf = buf[:before]
		q.sealLocked()
		bt = q.newBatchLocked()
		if bt.buf, err = appendRecord(bt.buf, e, hop); err != nil {
			return nil, err
		}
	} else {
		bt.buf = buf
	}
	bt.n++
	if bt.n == 1 {
		q.open = bt
		q.timerFor = bt
		q.timer.Reset(q.b.cfg.BatchLinger)
	}
	if bt.n >= q.b.cfg.MaxBatch || len(bt.buf) >= batchMaxBytes {
		q.sealLocked()
	}
	return bt, nil
}

// newBatchLocked is an empty batch whose buffer has the size hint's
// capacity.
func (q *batcher) newBatchLocked() *batch {
	return &batch{done: make(chan struct{}), buf: recordBufs.get(q.sizeHint)}
}

// lingered seals the open batch once its linger is over.
func (q *batcher) lingered() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.open != nil && q.open == q.timerFor {
		q.sealLocked()
	}
}

// sealLocked closes the open batch to more events and starts stores while
// slots are free.
func (q *batcher) sealLocked() {
	if q.open != nil {
		n := len(q.open.buf)
		q.sizeHint = min(n+n/4+512, batchMaxBytes+batchMaxBytes/4)
		q.sealed = append(q.sealed, q.open)
		q.open = nil
	}
	q.startLocked()
}

// startLocked starts stores of sealed batches while slots are free. The
// open batch is left to its linger or to filling up: a store that ends
// does not seal it early.
func (q *batcher) startLocked() {
	for q.storing < storesPerSubject && len(q.sealed) > 0 {
		bt := q.sealed[0]
		q.sealed[0] = nil
		q.sealed = q.sealed[1:]
		q.storing++
		go q.store(bt)
	}
}

// store stores one batch and wakes its callers.
func (q *batcher) store(bt *batch) {
	z := compressedBufs.get(s2.MaxEncodedLen(len(bt.buf)))
	m := batchMessage(q.subject, bt.buf, z)
	// Not the callers' contexts: one caller giving up must not fail the
	// others. publishMsg bounds it, and ends it when the store goes down.
	bt.err = q.b.publishMsg(context.Background(), m)
	// The client has copied the message: both buffers can be reused.
	compressedBufs.put(z)
	bt.bytes = len(bt.buf)
	recordBufs.put(bt.buf)
	bt.buf = nil
	if bt.err == nil {
		q.b.stats.messages.Add(1)
		q.b.stats.events.Add(uint64(bt.n))
	}
	close(bt.done)
	q.mu.Lock()
	q.storing--
	q.startLocked()
	q.mu.Unlock()
}
