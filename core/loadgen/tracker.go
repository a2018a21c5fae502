package loadgen

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dronetrack/dronetrack/events"
)

// seenKind is where a report was seen: in the store, in the fleet API, or
// in an event of the map's live stream (SSE).
type seenKind int

const (
	kindStored seenKind = iota
	kindVisible
	kindStreamed
)

// pendingReport is one acked report waiting to be seen stored, visible and
// streamed.
type pendingReport struct {
	ts       time.Time // the report's own timestamp: its identity per drone
	sentAt   time.Time // first attempt to ingest
	ackedAt  time.Time // the 202
	step     int       // the ramp step it was sent in
	stored   bool
	visible  bool
	streamed bool
}

type droneTrack struct {
	mu      sync.Mutex
	pending []pendingReport // in ts order (a drone sends in order)
	acked   []time.Time     // every acked ts, for the final loss count
	// streamTS is the newest state ts the live stream carried for this
	// drone and streamAt when: an event can arrive before the 202 is
	// recorded, and unlike a poll it is not seen again.
	streamTS, streamAt time.Time
}

// stepLatencies are the latencies (ms) of the reports sent in one ramp step.
type stepLatencies struct {
	acked, stored, visible, streamed []float64
}

// tracker matches acked reports against what the store, the fleet API and
// the live stream show. A report counts as stored (visible, streamed) at the
// first read or stream event whose drone state has ts >= the report's ts:
// newer-wins makes that state cover it, and the history is written before
// the state. Poll latencies are an overestimate of at most one poll period;
// stream latencies are timed when the event is read.
//
// Stored and visible latencies run from the first attempt to ingest;
// streamed latencies from the 202 (ingest→browser). Each latency counts
// towards the ramp step the report was sent in, and towards the second it
// was seen in (for the chart and the live line).
type tracker struct {
	byID   map[string]*droneTrack
	index  map[string]int // drone id -> index in list
	list   []*droneTrack
	start  time.Time
	stream bool // whether streamed is measured (a report waits for it)
	target atomic.Uint64
	step   atomic.Int64

	mu      sync.Mutex
	seconds []Second // per second since start
	steps   []stepLatencies
	nAcked  atomic.Int64
	nStored atomic.Int64
	nVis    atomic.Int64
	nStream atomic.Int64
}

func newTracker(droneIDs []string, stream bool, start time.Time) *tracker {
	t := &tracker{byID: map[string]*droneTrack{}, index: map[string]int{}, start: start, stream: stream}
	for i, id := range droneIDs {
		d := &droneTrack{}
		t.list = append(t.list, d)
		t.byID[id] = d
		t.index[id] = i
	}
	return t
}

// setStep starts ramp step i at rate r reports/s; r = 0 after the ramp.
func (t *tracker) setStep(i int, r float64) {
	t.target.Store(uint64(r * 1000))
	t.step.Store(int64(i))
}

func (t *tracker) targetRate() float64 { return float64(t.target.Load()) / 1000 }

// sec is the second at falls in; t.mu held.
func (t *tracker) sec(at time.Time) *Second {
	i := max(0, int(at.Sub(t.start)/time.Second))
	for len(t.seconds) <= i {
		t.seconds = append(t.seconds, Second{T: len(t.seconds), Target: t.targetRate()})
	}
	return &t.seconds[i]
}

// stepLat is step i's latencies; t.mu held.
func (t *tracker) stepLat(i int) *stepLatencies {
	for len(t.steps) <= i {
		t.steps = append(t.steps, stepLatencies{})
	}
	return &t.steps[i]
}

// acked records a request's 202 (sim.Config.OnAck).
func (t *tracker) acked(drone int, reports []events.Report, sentAt, ackedAt time.Time) {
	d := t.list[drone]
	step := int(t.step.Load())
	var early int // reports the stream already carried
	d.mu.Lock()
	for _, r := range reports {
		p := pendingReport{ts: r.TS, sentAt: sentAt, ackedAt: ackedAt, step: step}
		if t.stream && !d.streamTS.IsZero() && !d.streamTS.Before(r.TS) {
			p.streamed = true
			early++
		}
		d.pending = append(d.pending, p)
		d.acked = append(d.acked, r.TS)
	}
	d.mu.Unlock()
	t.nAcked.Add(int64(len(reports)))
	t.mu.Lock()
	s := t.sec(ackedAt)
	s.Acked += len(reports)
	lat := t.stepLat(step)
	ackMS := float64(max(0, ackedAt.Sub(sentAt))) / 1e6
	for range reports {
		lat.acked = append(lat.acked, ackMS)
	}
	if early > 0 {
		// The event came before the 202 was read: no measurable delay.
		for range early {
			lat.streamed = append(lat.streamed, 0)
			s.StreamMS = append(s.StreamMS, 0)
		}
		s.Streamed += early
		t.nStream.Add(int64(early))
	}
	t.mu.Unlock()
}

// seen marks a drone's reports up to ts as seen (kind) at time at.
func (t *tracker) seen(droneID string, ts, at time.Time, kind seenKind) {
	if d := t.byID[droneID]; d != nil {
		t.seenAt(d, ts, at, kind)
	}
}

// seenAt is seen for a drone already looked up.
func (t *tracker) seenAt(d *droneTrack, ts, at time.Time, kind seenKind) {
	type lat struct {
		step int
		ms   float64
	}
	var lats []lat
	d.mu.Lock()
	if kind == kindStreamed && ts.After(d.streamTS) {
		d.streamTS, d.streamAt = ts, at
	}
	for i := range d.pending {
		p := &d.pending[i]
		if p.ts.After(ts) {
			break
		}
		var flag *bool
		from := p.sentAt
		switch kind {
		case kindStored:
			flag = &p.stored
		case kindVisible:
			flag = &p.visible
		case kindStreamed:
			flag, from = &p.streamed, p.ackedAt
		}
		if !*flag {
			*flag = true
			lats = append(lats, lat{p.step, float64(max(0, at.Sub(from))) / 1e6})
		}
	}
	// Drop reports seen everywhere from the front.
	n := 0
	for n < len(d.pending) && d.pending[n].stored && d.pending[n].visible && (d.pending[n].streamed || !t.stream) {
		n++
	}
	d.pending = d.pending[n:]
	d.mu.Unlock()
	if len(lats) == 0 {
		return
	}
	t.mu.Lock()
	s := t.sec(at)
	for _, l := range lats {
		sl := t.stepLat(l.step)
		switch kind {
		case kindStored:
			s.StoredMS = append(s.StoredMS, l.ms)
			sl.stored = append(sl.stored, l.ms)
		case kindVisible:
			s.VisibleMS = append(s.VisibleMS, l.ms)
			sl.visible = append(sl.visible, l.ms)
		case kindStreamed:
			s.StreamMS = append(s.StreamMS, l.ms)
			sl.streamed = append(sl.streamed, l.ms)
		}
	}
	switch kind {
	case kindStored:
		s.Stored += len(lats)
		t.nStored.Add(int64(len(lats)))
	case kindVisible:
		s.Visible += len(lats)
		t.nVis.Add(int64(len(lats)))
	case kindStreamed:
		s.Streamed += len(lats)
		t.nStream.Add(int64(len(lats)))
	}
	t.mu.Unlock()
}

func (t *tracker) counts() (acked, stored, visible, streamed int64) {
	return t.nAcked.Load(), t.nStored.Load(), t.nVis.Load(), t.nStream.Load()
}

// settled reports whether every acked report has been seen everywhere it
// is looked for.
func (t *tracker) settled() bool {
	a, s, v, st := t.counts()
	return s >= a && v >= a && (!t.stream || st >= a)
}

// sample records the system's RSS and CPU for the second before now and
// returns that second's p99 latencies.
func (t *tracker) sample(now time.Time, rssMB, cores float64) (p99Stored, p99Visible, p99Stream float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := t.sec(now.Add(-time.Second))
	cur.RSSMB, cur.CPU = rssMB, cores
	return percentile(cur.StoredMS, .99), percentile(cur.VisibleMS, .99), percentile(cur.StreamMS, .99)
}

func percentile(v []float64, p float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return percentileSorted(s, p)
}

func percentileSorted(s []float64, p float64) float64 {
	if len(s) == 0 {
		return 0
	}
	i := int(p*float64(len(s)-1) + 0.5)
	return s[i]
}
