// Package flightupdate keeps a drone's stored flights up to date as its
// reports arrive: it runs the flights detector over a store. Reports newer
// than everything seen so far take the fast path (the detector alone, in
// one store transaction); a batch with a late, duplicate or out-of-order
// report replays the drone's stored history from the detector's last
// checkpoint before it, so the flights come out as if every report had
// arrived in order.
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

// Result says what an update did.
type Result struct {
	Replaying bool // a late report called for a replay of history (done or not)
	Replayed  bool // a late report made it replay history
	Points    int  // history points a replay read
	Changed   int  // flights written
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
// already be in the drone's history (process writes history first). now
// bounds the history a replay reads. A drone that does not exist is
// store.ErrNotFound.
func Update(ctx context.Context, st Store, s flights.Settings, tenantID, droneID string,
	reports []events.Report, now time.Time) (Result, error) {
	p := NewPass(s, reports)
	if _, err := st.UpdateFlights(ctx, tenantID, droneID, p.Apply); err != nil {
		return p.res, err
	}
	return p.Finish(ctx, st, tenantID, droneID, now)
}

// Pass is Update split around its first transaction, for a caller that
// runs the detector in a transaction of its own (store.DroneWriter writes
// it with the drone's history and state): Apply is the UpdateFlights
// function, and Finish, called once that transaction is committed, does
// the rest (the replay, when a report was late).
type Pass struct {
	s          flights.Settings
	reports    []events.Report
	res        Result
	needReplay bool
	anchor     time.Time
}

// NewPass starts an update of a drone's flights with reports.
func NewPass(s flights.Settings, reports []events.Report) *Pass {
	return &Pass{s: s, reports: reports}
}

// Apply is the fast path's UpdateFlights function: the detector alone when
// every report is newer than what it has seen, else nothing (Finish
// replays). It may run more than once.
func (p *Pass) Apply(prev flights.Detector) (flights.Detector, flights.Changes, bool) {
	d := prev.Clone()
	if earliest, late := d.Late(p.reports); late {
		p.needReplay, p.anchor = true, d.Anchor(earliest)
		return prev, flights.Changes{}, false
	}
	p.needReplay = false
	before := d.Head
	ch := d.Apply(p.s, p.reports)
	p.res.Changed = len(ch.Upsert)
	return d, ch, d.Head.After(before)
}

// NeedsReplay says whether Finish will replay history: a late report in
// the batch, as Apply's last call found it.
func (p *Pass) NeedsReplay() bool { return p.needReplay }

// ReplaysFrom says whether p's replay starts at or before q's, so that
// running p's replay after both batches are written covers q's too (a
// zero anchor is all history).
func (p *Pass) ReplaysFrom(q *Pass) bool {
	return p.anchor.IsZero() || (!q.anchor.IsZero() && !p.anchor.After(q.anchor))
}

// Finish completes the update after Apply's transaction was committed: it
// replays the drone's history from the detector's checkpoint before the
// earliest late report, when there was one.
func (p *Pass) Finish(ctx context.Context, st Store, tenantID, droneID string, now time.Time) (Result, error) {
	if !p.needReplay {
		return p.res, nil
	}
	p.res.Replaying = true
	res, s, anchor := p.res, p.s, p.anchor
	from := time.Unix(0, 0).UTC() // no checkpoint: all history (both stores' earliest time)
	if !anchor.IsZero() {
		from = anchor.Add(-time.Duration(s.MaxGapSecs * float64(time.Second)))
	}
	for read := 1; ; read++ {
		history, err := readHistory(ctx, st, tenantID, droneID, from, now.Add(events.MaxFutureSkew+time.Minute))
		if err != nil {
			return res, err
		}
		res.Replayed, res.Points = true, len(history)
		stale := false
		_, err = st.UpdateFlights(ctx, tenantID, droneID, func(prev flights.Detector) (flights.Detector, flights.Changes, bool) {
			if stale = unread(prev, anchor, history); stale {
				return prev, flights.Changes{}, false
			}
			d := prev.Clone()
			ch := d.Replay(s, anchor, history)
			res.Changed = len(ch.Upsert)
			return d, ch, true
		})
		if err != nil || !stale {
			return res, err
		}
		if read == replayReads {
			return res, fmt.Errorf("replay flights of drone %s: its history changed under each of %d reads", droneID, read)
		}
	}
}

// replayReads is how many times Finish reads history for a replay while
// reports keep being applied between its read and its write.
const replayReads = 3

// unread says whether the detector prev has applied a report, from anchor
// on, that history (what a replay read) does not hold: a batch committed
// after the read. Replaying over it would drop that report from the
// flights (a newer report's step, or another late report's replay that
// committed first); the replay reads history again instead. Every applied
// report is in history by the time it is applied (written in the same
// commit, or before), so a read after it holds it.
func unread(prev flights.Detector, anchor time.Time, history []events.Report) bool {
	for i := len(prev.Applied) - 1; i >= 0; i-- {
		ts := prev.Applied[i]
		if ts.Before(anchor) {
			break
		}
		if _, found := slices.BinarySearchFunc(history, ts, func(r events.Report, t time.Time) int { return r.TS.Compare(t) }); !found {
			return true
		}
	}
	return false
}

// readHistory reads the drone's reports in [from, to), oldest first.
func readHistory(ctx context.Context, st Store, tenantID, droneID string, from, to time.Time) ([]events.Report, error) {
	var out []events.Report
	var after time.Time
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
