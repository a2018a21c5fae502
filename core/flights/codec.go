package flights

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/dronetrack/dronetrack/events"
)

// DetectorCodec is the first byte of a detector in its binary form
// (AppendBinary). JSON, the other stored form, starts with '{', so a store
// tells the two apart by that byte and reads detectors written by either.
const DetectorCodec byte = 0x01

// The binary form exists because the store reads and writes a drone's
// detector on every batch of its reports: as JSON it is 1-5 KB, most of it
// the RecentApplied report times as RFC 3339 strings, and decoding and
// encoding it was the largest single cost of a report in the one-machine
// pipeline. In binary a time is a varint.

// errTimeRange is returned for a time the binary form cannot hold (outside
// what UnixNano represents, years 1678-2262): the caller stores JSON.
var errTimeRange = errors.New("flights: time out of the binary form's range")

// AppendBinary appends d's binary form to b. It fails only for a time
// outside years 1678-2262; store the JSON form then.
func (d Detector) AppendBinary(b []byte) ([]byte, error) {
	e := encoder{b: append(b, DetectorCodec)}
	e.str(d.TenantID)
	e.str(d.DroneID)
	e.time(d.Head)
	if d.Last == nil {
		e.b = append(e.b, 0)
	} else {
		e.b = append(e.b, 1)
		e.time(d.Last.TS)
		e.f64(d.Last.Lat)
		e.f64(d.Last.Lon)
	}
	e.flight(d.Open)
	e.flight(d.Candidate)
	e.flight(d.Landing)
	e.times(d.Checkpoints)
	e.instants(d.Applied)
	if d.Owed != nil || d.LateSeq != 0 {
		// Optional and last: a detector that never had a late batch is
		// stored as before replays could be owed, and those decode as
		// before.
		e.b = binary.AppendUvarint(e.b, d.LateSeq)
		if d.Owed == nil {
			e.b = append(e.b, 0)
		} else {
			e.b = append(e.b, 1)
			e.time(d.Owed.From)
			e.time(d.Owed.Since)
		}
	}
	return e.b, e.err
}

// UnmarshalBinary decodes what AppendBinary wrote.
func (d *Detector) UnmarshalBinary(b []byte) error {
	if len(b) == 0 || b[0] != DetectorCodec {
		return errors.New("flights: not a binary detector")
	}
	r := decoder{b: b[1:]}
	var out Detector
	out.TenantID = r.str()
	out.DroneID = r.str()
	out.Head = r.time()
	if r.byte() == 1 {
		out.Last = &Fix{TS: r.time(), Lat: r.f64(), Lon: r.f64()}
	}
	out.Open = r.flight()
	out.Candidate = r.flight()
	out.Landing = r.flight()
	out.Checkpoints = r.times()
	out.Applied = r.instants()
	if len(r.b) > 0 && r.err == nil {
		out.LateSeq = r.uvarint()
		switch r.byte() {
		case 0:
		case 1:
			out.Owed = &Owed{From: r.time(), Since: r.time()}
		default:
			r.fail(errors.New("bad owed replay tag"))
		}
	}
	if r.err != nil {
		return fmt.Errorf("flights: decode binary detector: %w", r.err)
	}
	if len(r.b) != 0 {
		return fmt.Errorf("flights: decode binary detector: %d bytes left over", len(r.b))
	}
	*d = out
	return nil
}

type encoder struct {
	b   []byte
	err error
}

func (e *encoder) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) f64(v float64) { e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(v)) }

func (e *encoder) optF64(v *float64) {
	if v == nil {
		e.b = append(e.b, 0)
		return
	}
	e.b = append(e.b, 1)
	e.f64(*v)
}

// Time tags: zero, UTC, or a fixed offset (what JSON decoding gives).
const (
	timeZero  = 0
	timeUTC   = 1
	timeFixed = 2
)

func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.b = append(e.b, timeZero)
		return
	}
	if y := t.Year(); y < 1678 || y > 2261 {
		e.err = errTimeRange
	}
	_, off := t.Zone()
	if t.Location() == time.UTC {
		e.b = append(e.b, timeUTC)
	} else {
		e.b = append(e.b, timeFixed)
		e.b = binary.AppendVarint(e.b, int64(off))
	}
	e.b = binary.AppendVarint(e.b, t.UnixNano())
}

func (e *encoder) times(ts []time.Time) {
	e.b = binary.AppendUvarint(e.b, uint64(len(ts)))
	for _, t := range ts {
		e.time(t)
	}
}

// instants writes s as times would be written: each a UTC time.
func (e *encoder) instants(s Instants) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	for _, n := range s {
		e.b = append(e.b, timeUTC)
		e.b = binary.AppendVarint(e.b, n)
	}
}

func (e *encoder) pos(p events.Position) {
	e.f64(p.Lat)
	e.f64(p.Lon)
	e.optF64(p.Alt)
}

func (e *encoder) flight(f *Flight) {
	if f == nil {
		e.b = append(e.b, 0)
		return
	}
	e.b = append(e.b, 1)
	e.str(f.ID)
	e.str(f.TenantID)
	e.str(f.DroneID)
	e.str(f.Rule)
	e.time(f.Start)
	e.time(f.End)
	if f.InProgress {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
	e.pos(f.StartPos)
	e.pos(f.EndPos)
	e.f64(f.DurationSecs)
	e.f64(f.DistanceM)
	e.optF64(f.MaxHeight)
	e.optF64(f.MaxAlt)
	e.optF64(f.MaxSpeed)
	e.optF64(f.BatteryStart)
	e.optF64(f.BatteryEnd)
	e.b = binary.AppendVarint(e.b, int64(f.Points))
}

type decoder struct {
	b   []byte
	err error
}

var errShort = errors.New("truncated")

func (r *decoder) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

func (r *decoder) byte() byte {
	if len(r.b) < 1 {
		r.fail(errShort)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errShort)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *decoder) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(errShort)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *decoder) str() string {
	n := r.uvarint()
	if uint64(len(r.b)) < n {
		r.fail(errShort)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *decoder) f64() float64 {
	if len(r.b) < 8 {
		r.fail(errShort)
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

func (r *decoder) optF64() *float64 {
	if r.byte() == 0 {
		return nil
	}
	return new(r.f64())
}

func (r *decoder) time() time.Time {
	switch r.byte() {
	case timeZero:
		return time.Time{}
	case timeUTC:
		return time.Unix(0, r.varint()).UTC()
	case timeFixed:
		off := r.varint()
		return time.Unix(0, r.varint()).In(time.FixedZone("", int(off)))
	default:
		r.fail(errors.New("bad time tag"))
		return time.Time{}
	}
}

func (r *decoder) times() []time.Time {
	n := r.uvarint()
	if n == 0 || n > uint64(len(r.b)) { // every time takes at least a byte
		if n != 0 {
			r.fail(errShort)
		}
		return nil
	}
	ts := make([]time.Time, n)
	for i := range ts {
		ts[i] = r.time()
	}
	return ts
}

// instants reads what times (or instants) wrote, keeping only the
// instants: a time's offset is skipped, a zero time (never written) too.
func (r *decoder) instants() Instants {
	n := r.uvarint()
	if n == 0 || n > uint64(len(r.b)) { // every time takes at least a byte
		if n != 0 {
			r.fail(errShort)
		}
		return nil
	}
	s := make(Instants, 0, n)
	for range n {
		switch r.byte() {
		case timeZero:
		case timeUTC:
			s = append(s, r.varint())
		case timeFixed:
			r.varint() // the offset
			s = append(s, r.varint())
		default:
			r.fail(errors.New("bad time tag"))
			return nil
		}
	}
	return s
}

func (r *decoder) pos() events.Position {
	return events.Position{Lat: r.f64(), Lon: r.f64(), Alt: r.optF64()}
}

func (r *decoder) flight() *Flight {
	if r.byte() == 0 {
		return nil
	}
	f := &Flight{}
	f.ID = r.str()
	f.TenantID = r.str()
	f.DroneID = r.str()
	f.Rule = r.str()
	f.Start = r.time()
	f.End = r.time()
	f.InProgress = r.byte() == 1
	f.StartPos = r.pos()
	f.EndPos = r.pos()
	f.DurationSecs = r.f64()
	f.DistanceM = r.f64()
	f.MaxHeight = r.optF64()
	f.MaxAlt = r.optF64()
	f.MaxSpeed = r.optF64()
	f.BatteryStart = r.optF64()
	f.BatteryEnd = r.optF64()
	f.Points = int(r.varint())
	return f
}
