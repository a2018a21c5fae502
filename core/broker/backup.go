package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PendingEvent is an accepted event that some Trigger had not acknowledged
// when Snapshot ran: what a backup must carry for the event's work to be
// done after a restore.
type PendingEvent struct {
	// Triggers are the names of the Triggers still owing the event.
	Triggers []string `json:"triggers"`
	// Event is the stored CloudEvent in structured-mode JSON.
	Event json.RawMessage `json:"event"`
}

// SnapshotStats describes one Snapshot.
type SnapshotStats struct {
	// Events is how many pending events were written.
	Events int
	// Paused is how long new deliveries were held.
	Paused time.Duration
}

// deliveryGate holds the first delivery attempt of events while a Snapshot
// captures the broker's state and the caller's store. Deliveries already
// past it go on: their events are unacknowledged, hence in the snapshot,
// and delivered again after a restore.
type deliveryGate struct {
	mu     sync.Mutex
	closed chan struct{} // nil while open; closed to open
}

func (g *deliveryGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed == nil {
		g.closed = make(chan struct{})
	}
}

func (g *deliveryGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed != nil {
		close(g.closed)
		g.closed = nil
	}
}

// pass waits while the gate is closed; false when ctx ended first.
func (g *deliveryGate) pass(ctx context.Context) bool {
	g.mu.Lock()
	ch := g.closed
	g.mu.Unlock()
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

// Snapshot captures the broker's unacknowledged events consistently with a
// snapshot of the subscribers' store that then takes:
//
//  1. New deliveries are held (the ingress keeps accepting).
//  2. Every Trigger's acknowledgement floor is read, then every stored
//     event is passed to emit with the Triggers whose floor is below it.
//  3. then runs: the caller starts its store snapshot (a read transaction).
//  4. Deliveries resume.
//
// An event accepted before Snapshot was called is therefore either
// acknowledged by a Trigger before step 2 — its subscriber's writes were
// durable before the acknowledgement, so they are in the store snapshot —
// or emitted for that Trigger. An event accepted later has no effect in the
// store snapshot: its first delivery waits for step 4. Deliveries that were
// already running write on during the snapshot; their events are emitted
// (they are not acknowledged), so a restore delivers them again and the
// idempotent subscribers complete whatever part the store snapshot missed.
// An event a Trigger acknowledged out of order (above its floor) is emitted
// for it too: delivery stays at least once.
//
// Steps 1 to 4 take about as long as reading the backlog; emit should be
// cheap (a buffered write), and then must only start its snapshot, not
// copy it.
func (b *Broker) Snapshot(ctx context.Context, emit func(PendingEvent) error, then func() error) (stats SnapshotStats, err error) {
	if b.closing.Load() {
		return stats, ErrUnavailable
	}
	b.snapMu.Lock() // one snapshot at a time: they share the gate
	defer b.snapMu.Unlock()
	start := time.Now()
	b.gate.close()
	defer func() {
		b.gate.open()
		stats.Paused = time.Since(start)
	}()

	st, err := b.js.Stream(ctx, b.stream)
	if err != nil {
		return stats, fmt.Errorf("broker: snapshot: events stream: %w", err)
	}
	floors := make(map[string]uint64, len(b.triggers))
	for _, r := range b.triggers {
		c, err := st.Consumer(ctx, r.name)
		if err != nil {
			return stats, fmt.Errorf("broker: snapshot: consumer of trigger %q: %w", r.trigger.Metadata.Name, err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			return stats, fmt.Errorf("broker: snapshot: consumer of trigger %q: %w", r.trigger.Metadata.Name, err)
		}
		floors[r.trigger.Metadata.Name] = info.AckFloor.Stream
	}
	info, err := st.Info(ctx)
	if err != nil {
		return stats, fmt.Errorf("broker: snapshot: events stream: %w", err)
	}
	last := info.State.LastSeq
	if info.State.Msgs > 0 {
		// An ephemeral consumer without acks reads the stored events in
		// batches, skipping the holes acknowledged events leave. It is
		// deleted at once: under interest retention, events it was not
		// handed would be kept for it.
		oc, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{
			Description:       "backup snapshot",
			DeliverPolicy:     jetstream.DeliverAllPolicy,
			AckPolicy:         jetstream.AckNonePolicy,
			FilterSubjects:    []string{b.prefix + ".>"},
			InactiveThreshold: time.Minute, // should the delete below fail
			MemoryStorage:     true,
		})
		if err != nil {
			return stats, fmt.Errorf("broker: snapshot: read events: %w", err)
		}
		defer func() { _ = st.DeleteConsumer(context.WithoutCancel(ctx), oc.CachedInfo().Name) }()
	read:
		for {
			batch, err := oc.Fetch(snapshotBatch, jetstream.FetchMaxWait(snapshotWait))
			if err != nil {
				return stats, fmt.Errorf("broker: snapshot: read events: %w", err)
			}
			got := 0
			for m := range batch.Messages() {
				got++
				md, err := m.Metadata()
				if err != nil {
					return stats, fmt.Errorf("broker: snapshot: read events: %w", err)
				}
				seq := md.Sequence.Stream
				if seq > last {
					break read
				}
				emitted, err := b.emitPending(m.Subject(), seq, m.Headers(), m.Data(), floors, emit)
				if err != nil {
					return stats, err
				}
				stats.Events += emitted
				if seq == last || md.NumPending == 0 {
					break read
				}
			}
			if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
				return stats, fmt.Errorf("broker: snapshot: read events: %w", err)
			}
			if got == 0 { // the rest up to last was acknowledged meanwhile
				break
			}
		}
	}
	if err := then(); err != nil {
		return stats, err
	}
	return stats, nil
}

// Snapshot reads stored events this many at a time, waiting at most
// snapshotWait for a batch (only reached when the events it expected were
// acknowledged and removed meanwhile).
const (
	snapshotBatch = 1000
	snapshotWait  = 200 * time.Millisecond
)

// emitPending emits the events of one stored message (one event, or each
// event of a batch) for the Triggers whose floor is below it and whose
// consumer reads its subject: the legacy single subject is read by every
// Trigger, a type subject by the Triggers of that type (or of every type),
// a replay by its own Trigger only. Messages owed by none are skipped. A
// batch is owed whole, since its message is acked once all its events are
// done: every event of it is emitted, including those its Trigger's filter
// drops or that were delivered already (at least once). Each event is
// emitted in structured JSON, whatever its stored form, so a backup reads
// the same across versions. It returns how many it emitted.
func (b *Broker) emitPending(subject string, seq uint64, h nats.Header, data []byte, floors map[string]uint64, emit func(PendingEvent) error) (int, error) {
	var owing []string
	for _, r := range b.triggers {
		name := r.trigger.Metadata.Name
		if seq <= floors[name] || !b.reads(r.trigger, subject) {
			continue
		}
		owing = append(owing, name)
	}
	if len(owing) == 0 {
		return 0, nil
	}
	evs, err := decodeMessage(h, data)
	if err != nil {
		return 0, fmt.Errorf("broker: snapshot: stored message %d: %w", seq, err)
	}
	for _, e := range evs {
		raw, err := encodeEvent(e)
		if err != nil {
			return 0, fmt.Errorf("broker: snapshot: event %s: %w", e.ID(), err)
		}
		if err := emit(PendingEvent{Triggers: owing, Event: raw}); err != nil {
			return 0, err
		}
	}
	return len(evs), nil
}

// reads reports whether Trigger t's consumer reads events stored on
// subject: whether one of its filter subjects matches it (a trailing ">"
// matches one or more tokens, as in NATS).
func (b *Broker) reads(t Trigger, subject string) bool {
	for _, f := range b.consumerSubjects(t) {
		if prefix, ok := strings.CutSuffix(f, ">"); ok {
			if strings.HasPrefix(subject, prefix) && len(subject) > len(prefix) {
				return true
			}
		} else if subject == f {
			return true
		}
	}
	return false
}

// Requeue stores a PendingEvent of a Snapshot (taken here or on another
// machine) so its Triggers deliver it: once for every Trigger when all of
// this broker's Triggers owe it, else once per owing Trigger on its replay
// subject. Triggers this broker does not have are ignored, as an event for
// a removed Trigger is dropped at Open.
func (b *Broker) Requeue(ctx context.Context, pe PendingEvent) error {
	if b.closing.Load() {
		return ErrUnavailable
	}
	if !json.Valid(pe.Event) {
		return errors.New("broker: requeue: the event is not JSON")
	}
	owing := map[string]bool{}
	for _, t := range pe.Triggers {
		owing[t] = true
	}
	var subjects []string
	for _, r := range b.triggers {
		if owing[r.trigger.Metadata.Name] {
			subjects = append(subjects, b.replaySubject(r.trigger.Metadata.Name))
		}
	}
	if len(subjects) == len(b.triggers) {
		subjects = []string{b.subject}
	}
	for _, s := range subjects {
		if err := b.publishRaw(ctx, s, pe.Event); err != nil {
			return fmt.Errorf("broker: requeue to %s: %w", strings.TrimPrefix(s, b.prefix+"."), err)
		}
	}
	return nil
}

// ExportDeadLetters passes every recorded dead letter, as stored, to emit,
// oldest first, for a backup; ImportDeadLetter records one again.
func (b *Broker) ExportDeadLetters(ctx context.Context, emit func(json.RawMessage) error) (int, error) {
	st, err := b.js.Stream(ctx, b.dlStream)
	if err != nil {
		return 0, fmt.Errorf("broker: deadletter stream: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("broker: deadletter stream: %w", err)
	}
	n := 0
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq > 0 && seq <= info.State.LastSeq; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(b.dlSubj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return n, fmt.Errorf("broker: dead letter %d: %w", seq, err)
		}
		if m.Sequence > info.State.LastSeq {
			break
		}
		seq = m.Sequence + 1
		if err := emit(m.Data); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// ImportDeadLetter records a dead letter ExportDeadLetters gave (from this
// broker or another), so `dlq list` shows it and Replay can deliver it.
func (b *Broker) ImportDeadLetter(ctx context.Context, raw json.RawMessage) error {
	if b.closing.Load() {
		return ErrUnavailable
	}
	var dl DeadLetter
	if err := json.Unmarshal(raw, &dl); err != nil || dl.Trigger == "" || dl.Event.ID() == "" {
		return fmt.Errorf("broker: import dead letter: not a dead letter record (%v)", err)
	}
	if err := b.publishRaw(ctx, b.dlSubj, raw); err != nil {
		return fmt.Errorf("broker: import dead letter: %w", err)
	}
	return nil
}
