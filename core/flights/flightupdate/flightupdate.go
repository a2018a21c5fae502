// Package flightupdate keeps a drone's stored flights up to date as its
// reports arrive: it runs the flights detector over a store. Reports newer
// than everything seen so far take the fast path (the detector alone,
// written with the batch); a batch with a late, duplicate or out-of-order
// report records in the detector, with the same write, that a replay of
// the drone's stored history is owed from the detector's last checkpoint
// before it. Replay pays it, apart from the batch (process runs it after
// acknowledging the batch, and sweeps for replays left owed by a crash or
// a failure), so the flights come out as if every report had arrived in
// order.
package flightupdate

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/dronetrack/dronetrack/core/flights"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// pageSize is how many history points a replay reads per store call.
const pageSize = 5000

// Result says what an update or a replay did.
type Result struct {
	Replaying bool // a replay was owed (recorded by this batch, or found owed)
	Replayed  bool // a replay read history and wrote the flights
	Points    int  // history points a replay read
	Changed   int  // flights written
	// Owed: a replay is still owed after this one, because late batches
	// were written while it ran (their reports may be missing from what it
	// read); the caller runs another.
	Owed bool
}

// Store is the part of the store Update uses: the drone's flights and its
// history for a replay. Both backends satisfy it (store.Store embeds it).
type Store interface {
	UpdateFlights(ctx context.Context, tenantID, droneID string,
		fn func(prev flights.Detector) (flights.Detector, flights.Changes, bool)) (flights.Detector, error)
	Track(ctx context.Context, q store.TrackQuery) ([]store.TrackPoint, error)
}

var _ Store = store.Store(nil)

// Update brings the drone's flights up to date with reports, which must
// already be in the drone's history (process writes history first), and
// pays a replay the batch owes at once. now bounds the history a replay
// reads. A drone that does not exist is store.ErrNotFound.
func Update(ctx context.Context, st Store, s flights.Settings, tenantID, droneID string,
	reports []events.Report, now time.Time) (Result, error) {
	p := NewPass(s, reports, now)
	if _, err := st.UpdateFlights(ctx, tenantID, droneID, p.Apply); err != nil {
		return p.res, err
	}
	return p.Finish(ctx, st, tenantID, droneID, now)
}

// Pass is Update split around its first write, for a caller that runs the
// detector in a write of its own (store.DroneWriter writes it with the
// drone's history and state): Apply is the UpdateFlights function;
// NeedsReplay then says whether a replay is owed, which Finish (or Replay,
// later and elsewhere) pays.
type Pass struct {
	s          flights.Settings
	reports    []events.Report
	now        time.Time
	res        Result
	needReplay bool
}

// NewPass starts an update of a drone's flights with reports, at now (when
// a replay it owes was first owed).
func NewPass(s flights.Settings, reports []events.Report, now time.Time) *Pass {
	return &Pass{s: s, reports: reports, now: now}
}

// Apply is the UpdateFlights function: the detector runs the reports newer
// than everything it has seen, and a late report (neither newer nor applied
// already) records a replay owed from the checkpoint before it. It may run
// more than once.
func (p *Pass) Apply(prev flights.Detector) (flights.Detector, flights.Changes, bool) {
	d := prev.Clone()
	earliest, late := d.Late(p.reports)
	if late {
		d.Owe(d.Anchor(earliest), p.now)
	}
	before := d.Head
	ch := d.Apply(p.s, p.reports)
	p.res.Changed = len(ch.Upsert)
	p.needReplay = d.Owed != nil
	p.res.Replaying = p.needReplay
	return d, ch, late || d.Head.After(before)
}

// NeedsReplay says whether the drone owes a replay after the batch, as
// Apply's last call found it: recorded by a late report of the batch, or
// by an earlier one and not paid yet.
func (p *Pass) NeedsReplay() bool { return p.needReplay }

// Finish pays the replay the drone owes, when Apply found one, once Apply's
// write is committed: again while late batches written meanwhile leave it
// owed (up to replayReads replays; Result.Owed says one is still owed).
func (p *Pass) Finish(ctx context.Context, st Store, tenantID, droneID string, now time.Time) (Result, error) {
	if !p.needReplay {
		return p.res, nil
	}
	changed := p.res.Changed
	res, err := Replay(ctx, st, p.s, tenantID, droneID, now)
	for n := 1; err == nil && res.Owed && n < replayReads; n++ {
		changed += res.Changed
		res, err = Replay(ctx, st, p.s, tenantID, droneID, now)
	}
	res.Changed += changed
	return res, err
}

// Replay pays the replay the drone's detector owes (none owed: nothing to
// do): it reads the drone's history from the owed checkpoint and rebuilds
// the detector and the flights from there. When late batches were written
// after the read, the rebuilt detector still owes a replay from the same
// checkpoint (Result.Owed). now bounds the history read.
func Replay(ctx context.Context, st Store, s flights.Settings, tenantID, droneID string, now time.Time) (Result, error) {
	return ReplayHolding(ctx, st, s, tenantID, droneID, now, nil)
}

// ReplayHolding is Replay for a caller that can hold the drone's writes
// (nil: none): when the drone's reports came in while the replay read its
// history twice, it reads the newer ones and writes the replay inside
// hold, which keeps the caller's own writes of the drone out meanwhile. On
// a store whose queries take longer than the drone's report interval (the
// Firestore emulator under load) a replay otherwise never catches up with
// a drone that reports on.
func ReplayHolding(ctx context.Context, st Store, s flights.Settings, tenantID, droneID string, now time.Time,
	hold func(func())) (Result, error) {
	r := replay{st: st, s: s, tenantID: tenantID, droneID: droneID, now: now,
		to: now.Add(events.MaxFutureSkew + time.Minute)}
	fresh := true // read what is owed and its history (else only the newest reports)
	for read := 1; ; read++ {
		if fresh {
			if owed, err := r.read(ctx); err != nil || !owed {
				return Result{Replaying: true}, err // none owed: paid by another replay
			}
		}
		res, missing, err := r.write(ctx)
		if err != nil || missing == gapNone {
			return res, err
		}
		if read == replayReads {
			return res, fmt.Errorf("replay flights of drone %s: its history changed under each of %d reads", droneID, read)
		}
		if fresh = missing == gapOlder || len(r.history) == 0; fresh {
			continue
		}
		// Only reports newer than the read were applied since (the drone
		// went on reporting): read those and try again.
		if hold == nil || read == 1 {
			if err := r.catchUp(ctx); err != nil {
				return res, err
			}
			continue
		}
		// Behind again: read the newest and write with the drone's writes
		// held, so that none of the caller's comes in between.
		hold(func() {
			if err = r.catchUp(ctx); err == nil {
				res, missing, err = r.write(ctx)
			}
		})
		if err != nil || missing == gapNone {
			return res, err
		}
		fresh = missing == gapOlder // another writer's (another replica's) came in: go on
	}
}

// replay is one replay in progress: what it read.
type replay struct {
	st                Store
	s                 flights.Settings
	tenantID, droneID string
	now, to           time.Time
	owed              flights.Owed
	seq               uint64 // late batches recorded when it read what is owed
	history           []events.Report
}

// read reads what the drone owes and its history from there; false when
// it owes nothing.
func (r *replay) read(ctx context.Context) (bool, error) {
	var owed *flights.Owed
	if _, err := r.st.UpdateFlights(ctx, r.tenantID, r.droneID, func(prev flights.Detector) (flights.Detector, flights.Changes, bool) {
		owed, r.seq = nil, prev.LateSeq
		if prev.Owed != nil {
			o := *prev.Owed
			owed = &o
		}
		return prev, flights.Changes{}, false
	}); err != nil || owed == nil {
		return false, err
	}
	r.owed = *owed
	from := time.Unix(0, 0).UTC() // no checkpoint: all history (both stores' earliest time)
	if !owed.From.IsZero() {
		from = owed.From.Add(-time.Duration(r.s.MaxGapSecs * float64(time.Second)))
	}
	var err error
	r.history, err = readHistory(ctx, r.st, r.tenantID, r.droneID, from, time.Time{}, r.to)
	return err == nil, err
}

// catchUp reads the reports newer than the last read.
func (r *replay) catchUp(ctx context.Context) error {
	newer, err := readHistory(ctx, r.st, r.tenantID, r.droneID, r.history[0].TS, r.history[len(r.history)-1].TS, r.to)
	r.history = append(r.history, newer...)
	return err
}

// write rebuilds the detector from the owed checkpoint over what was read
// and writes it with the flights, unless the detector has applied a
// report since that the read lacks (the gap says which).
func (r *replay) write(ctx context.Context) (Result, gap, error) {
	res := Result{Replaying: true, Points: len(r.history)}
	anchor := r.owed.From
	missing := gapNone
	_, err := r.st.UpdateFlights(ctx, r.tenantID, r.droneID, func(prev flights.Detector) (flights.Detector, flights.Changes, bool) {
		res.Owed, res.Changed, res.Replayed, missing = false, 0, false, gapNone
		switch {
		case prev.Owed == nil:
			// Paid since the read by a replay that read at least as much
			// (it cleared what it found owed only if no late batch came
			// after its read; a late batch since would owe again).
			return prev, flights.Changes{}, false
		case prev.Owed.From.Before(anchor):
			missing = gapOlder // a late batch since wants an earlier checkpoint
			return prev, flights.Changes{}, false
		}
		if missing = unread(prev, anchor, r.history); missing != gapNone {
			return prev, flights.Changes{}, false
		}
		d := prev.Clone()
		ch := d.Replay(r.s, anchor, r.history)
		if prev.LateSeq != r.seq {
			// Late batches written since the read: their reports may be
			// missing from history as read, so the replay is owed again
			// from the same checkpoint (reports before it are as they
			// were, so the detector is idle there still).
			d.Owed = &flights.Owed{From: anchor, Since: r.now.UTC()}
			res.Owed = true
		}
		res.Changed, res.Replayed = len(ch.Upsert), true
		return d, ch, true
	})
	return res, missing, err
}

// replayReads is how many times Replay reads history (all of it from the
// checkpoint, or the reports newer than its last read) while reports keep
// being applied between its read and its write.
const replayReads = 5

// gap is what a replay's read of history lacks of what the detector has
// applied since.
type gap int

const (
	gapNone  gap = iota
	gapNewer     // reports newer than the newest read: a drone reporting on
	gapOlder     // a report among or before those read: read all again
)

// unread says whether the detector prev has applied a report, from anchor
// on, that history (what a replay read) does not hold: a batch committed
// after the read. Replaying over it would drop that report from the
// flights (a newer report's step, or another late report's replay that
// committed first); the replay reads history again instead, only what is
// newer than it read when every such report is (gapNewer). Every applied
// report is in history by the time it is applied (written in the same
// commit, or before), so a read after it holds it.
func unread(prev flights.Detector, anchor time.Time, history []events.Report) gap {
	g := gapNone
	for i := len(prev.Applied) - 1; i >= 0; i-- {
		ts := prev.Applied.At(i)
		if ts.Before(anchor) {
			break
		}
		if _, found := slices.BinarySearchFunc(history, ts, func(r events.Report, t time.Time) int { return r.TS.Compare(t) }); !found {
			if len(history) == 0 || !ts.After(history[len(history)-1].TS) {
				return gapOlder
			}
			g = gapNewer
		}
	}
	return g
}

// readHistory reads the drone's reports in [from, to) after after (zero:
// from from on), oldest first.
func readHistory(ctx context.Context, st Store, tenantID, droneID string, from, after, to time.Time) ([]events.Report, error) {
	var out []events.Report
	for {
		pts, err := st.Track(ctx, store.TrackQuery{TenantID: tenantID, DroneID: droneID, From: from, To: to,
			After: after, Limit: pageSize})
		if err != nil {
			return nil, fmt.Errorf("read history for flights: %w", err)
		}
		for _, p := range pts {
			out = append(out, p.Report)
		}
		if len(pts) < pageSize {
			return out, nil
		}
		after = pts[len(pts)-1].Report.TS
	}
}
