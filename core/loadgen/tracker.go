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
	ts      time.Time // the report's own timestamp: its identity per drone
	sentAt  time.Time // first attempt to ingest
	ackedAt time.Time // the 202
	step    int       // the ramp step it was sent in
	seen    [nKinds]bool
}

const nKinds = 3

// sighting is the newest state ts seen of a drone in one place and when it
// was first seen there.
type sighting struct{ ts, at time.Time }

type droneTrack struct {
	mu      sync.Mutex
	pending []pendingReport // in ts order (a drone sends in order)
	acked   []time.Time     // every acked ts, for the final loss count
	// newest is, per kind, the newest state ts seen and when: a state can
	// be seen before its report's 202 is recorded (an event is not seen
	// again, and a fleet read answered 304 or showing an unchanged state
	// is not applied again), so acked matches a report against it.
	newest [nKinds]sighting
}

// stepLatencies are the latencies (ms) of the reports sent in one ramp step.
type stepLatencies struct {
	acked, stored, visible, streamed []float64
	late                             []float64 // per request: how late it went out
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
	// windows are the ramp steps' wall-clock spans and what was sent and
	// stored within each; cur is the step running (-1: none). A step's
	// rates divide by its own span: its whole seconds since start number
	// one more than its length whenever it starts inside a second.
	windows []window
	cur     int
	steps   []stepLatencies
	nSent   atomic.Int64
	nAcked  atomic.Int64
	nStored atomic.Int64
	nVis    atomic.Int64
	nStream atomic.Int64
}

func newTracker(droneIDs []string, stream bool, start time.Time) *tracker {
	t := &tracker{byID: map[string]*droneTrack{}, index: map[string]int{}, start: start, stream: stream, cur: -1}
	for i, id := range droneIDs {
		d := &droneTrack{}
		t.list = append(t.list, d)
		t.byID[id] = d
		t.index[id] = i
	}
	return t
}

// window is one ramp step's span and counts.
type window struct {
	from, to     time.Time
	sent, stored int
}

// setStep starts ramp step i at rate r reports/s; r = 0 after the ramp.
func (t *tracker) setStep(i int, r float64) { t.setStepAt(i, r, time.Now()) }

func (t *tracker) setStepAt(i int, r float64, at time.Time) {
	t.target.Store(uint64(r * 1000))
	t.step.Store(int64(i))
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cur >= 0 && t.windows[t.cur].to.IsZero() {
		t.windows[t.cur].to = at
	}
	t.cur = -1
	if r > 0 {
		for len(t.windows) <= i {
			t.windows = append(t.windows, window{})
		}
		t.windows[i] = window{from: at}
		t.cur = i
	}
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

// kindLat is a latency to record: its kind, the step of its report and ms.
type kindLat struct {
	kind seenKind
	step int
	ms   float64
}

// from is when kind's latency of p starts: the 202 for the stream
// (ingest→browser), the first attempt otherwise.
func (p *pendingReport) from(kind seenKind) time.Time {
	if kind == kindStreamed {
		return p.ackedAt
	}
	return p.sentAt
}

// done reports whether p has been seen everywhere it is looked for.
func (t *tracker) done(p *pendingReport) bool {
	return p.seen[kindStored] && p.seen[kindVisible] && (p.seen[kindStreamed] || !t.stream)
}

// sent records a request's first attempt (sim.Config.OnSend): the reports
// it carries and how late it went out, in the second and the step it was
// sent in. The live line and the table show what the generator offered,
// not only what it meant to.
func (t *tracker) sent(reports int, late time.Duration) { t.sentAt(time.Now(), reports, late) }

func (t *tracker) sentAt(now time.Time, reports int, late time.Duration) {
	t.nSent.Add(int64(reports))
	step := int(t.step.Load())
	t.mu.Lock()
	s := t.sec(now)
	s.Sent += reports
	if t.cur >= 0 {
		t.windows[t.cur].sent += reports
	}
	ms := float64(late) / 1e6
	s.LateMS = append(s.LateMS, ms)
	lat := t.stepLat(step)
	lat.late = append(lat.late, ms)
	t.mu.Unlock()
}

// acked records a request's 202 (sim.Config.OnAck). A report whose drone
// was already seen with a state at least as new counts as seen there when
// that state was first seen (the 202 was read after it; the stream's
// latency is then 0).
func (t *tracker) acked(drone int, reports []events.Report, sentAt, ackedAt time.Time) {
	d := t.list[drone]
	step := int(t.step.Load())
	var early [8]kindLat
	lats := early[:0]
	d.mu.Lock()
	for _, r := range reports {
		p := pendingReport{ts: r.TS, sentAt: sentAt, ackedAt: ackedAt, step: step}
		for k := range seenKind(nKinds) {
			if k == kindStreamed && !t.stream {
				continue
			}
			if n := d.newest[k]; !n.ts.IsZero() && !n.ts.Before(r.TS) {
				p.seen[k] = true
				lats = append(lats, kindLat{k, step, float64(max(0, n.at.Sub(p.from(k)))) / 1e6})
			}
		}
		if !t.done(&p) {
			d.pending = append(d.pending, p)
		}
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
	t.record(s, lats)
	t.mu.Unlock()
}

// record counts latencies seen in second s; t.mu held.
func (t *tracker) record(s *Second, lats []kindLat) {
	for _, l := range lats {
		sl := t.stepLat(l.step)
		switch l.kind {
		case kindStored:
			s.StoredMS = append(s.StoredMS, l.ms)
			sl.stored = append(sl.stored, l.ms)
			s.Stored++
			t.nStored.Add(1)
			if t.cur >= 0 {
				t.windows[t.cur].stored++
			}
		case kindVisible:
			s.VisibleMS = append(s.VisibleMS, l.ms)
			sl.visible = append(sl.visible, l.ms)
			s.Visible++
			t.nVis.Add(1)
		case kindStreamed:
			s.StreamMS = append(s.StreamMS, l.ms)
			sl.streamed = append(sl.streamed, l.ms)
			s.Streamed++
			t.nStream.Add(1)
		}
	}
}

// seen marks a drone's reports up to ts as seen (kind) at time at.
func (t *tracker) seen(droneID string, ts, at time.Time, kind seenKind) {
	if d := t.byID[droneID]; d != nil {
		t.seenAt(d, ts, at, kind)
	}
}

// seenAt is seen for a drone already looked up.
func (t *tracker) seenAt(d *droneTrack, ts, at time.Time, kinds ...seenKind) {
	var buf [16]kindLat
	lats := buf[:0]
	d.mu.Lock()
	for _, kind := range kinds {
		if ts.After(d.newest[kind].ts) {
			d.newest[kind] = sighting{ts, at}
		}
		for i := range d.pending {
			p := &d.pending[i]
			if p.ts.After(ts) {
				break
			}
			if !p.seen[kind] {
				p.seen[kind] = true
				lats = append(lats, kindLat{kind, p.step, float64(max(0, at.Sub(p.from(kind)))) / 1e6})
			}
		}
	}
	// Drop reports seen everywhere from the front.
	n := 0
	for n < len(d.pending) && t.done(&d.pending[n]) {
		n++
	}
	d.pending = d.pending[n:]
	d.mu.Unlock()
	if len(lats) == 0 {
		return
	}
	t.mu.Lock()
	t.record(t.sec(at), lats)
	t.mu.Unlock()
}

func (t *tracker) counts() (acked, stored, visible, streamed int64) {
	_, acked, stored, visible, streamed = t.countsSent()
	return
}

func (t *tracker) countsSent() (sent, acked, stored, visible, streamed int64) {
	return t.nSent.Load(), t.nAcked.Load(), t.nStored.Load(), t.nVis.Load(), t.nStream.Load()
}

// settled reports whether every acked report has been seen everywhere it
// is looked for.
func (t *tracker) settled() bool {
	a, s, v, st := t.counts()
	return s >= a && v >= a && (!t.stream || st >= a)
}

// sample records the system's RSS and CPU for the second before now and
// returns that second's p99 latencies.
func (t *tracker) sample(now time.Time, rssMB, cores float64) (p99Stored, p99Visible, p99Stream, p99Late float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := t.sec(now.Add(-time.Second))
	cur.RSSMB, cur.CPU = rssMB, cores
	return percentile(cur.StoredMS, .99), percentile(cur.VisibleMS, .99), percentile(cur.StreamMS, .99), percentile(cur.LateMS, .99)
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
