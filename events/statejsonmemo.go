package events

import (
	"math"
	"sync"
)

// encodedStates remembers the JSON of the states encoded last in this
// process. On one machine a report's new state is encoded three times
// over: into the bolt store's drone document, into process's
// state.updated reply, and again by cache-refresh for the fleet list
// (from the reply, decoded: an equal state). Each encoding formats some
// twenty numbers; the second and third now copy the first's bytes, found
// by the state's values (sameState), never by where it came from.
var encodedStates stateJSONMemo

// stateJSONSlots is a power of two: about 0.4 s of states at 5,000
// reports/s, the span of one report's encodings.
const stateJSONSlots = 2048

// stateJSONMemo is a direct-mapped table: a state's slot is picked by a
// hash of its values, and a newer state taking the slot evicts the older.
type stateJSONMemo struct {
	mu    sync.Mutex
	slots [stateJSONSlots]stateJSONSlot
}

type stateJSONSlot struct {
	key  stateValues // the values json encodes, copied: no pointer is shared
	json []byte
}

func (m *stateJSONMemo) get(s *DroneState) ([]byte, bool) {
	k := valuesOf(s)
	i := k.slot()
	m.mu.Lock()
	slot := &m.slots[i]
	j := slot.json
	hit := j != nil && slot.key == k
	m.mu.Unlock()
	return j, hit
}

// put records j as s's JSON; j is copied.
func (m *stateJSONMemo) put(s *DroneState, j []byte) {
	k := valuesOf(s)
	i := k.slot()
	j = append([]byte(nil), j...)
	m.mu.Lock()
	m.slots[i] = stateJSONSlot{key: k, json: j}
	m.mu.Unlock()
}

// stateValues is every value of a DroneState that AppendJSON writes, by
// value: numbers bit for bit, times as the instant and the offset from
// UTC, and which optional fields are present. Two states with equal
// stateValues encode to the same bytes. TestSameStateComparesEveryField
// fails for a field added to DroneState and not taken here.
type stateValues struct {
	ts, updated       int64 // Unix seconds (whole range, unlike UnixNano)
	tsNS, updatedNS   int
	tsOff, updatedOff int
	present           uint32
	floats            [22]uint64
	seq               uint64
	armed             bool
	mode              string
	fix, satellites   int
}

func valuesOf(s *DroneState) stateValues {
	var v stateValues
	v.ts, v.tsNS = s.TS.Unix(), s.TS.Nanosecond()
	v.updated, v.updatedNS = s.UpdatedAt.Unix(), s.UpdatedAt.Nanosecond()
	_, v.tsOff = s.TS.Zone()
	_, v.updatedOff = s.UpdatedAt.Zone()
	v.floats[0] = math.Float64bits(s.Lat)
	v.floats[1] = math.Float64bits(s.Lon)
	v.floats[2] = math.Float64bits(s.DistanceM)
	for i, p := range [...]*float64{s.Alt, s.Speed, s.Heading, s.Battery, s.HAE, s.Height, s.VSpeed,
		s.HAcc, s.VAcc, s.Link, s.GroundSpeed, s.Course, s.BatteryDrain, s.TimeToEmptySecs} {
		if p != nil {
			v.present |= 1 << i
			v.floats[3+i] = math.Float64bits(*p)
		}
	}
	if h := s.Home; h != nil {
		v.present |= 1 << 14
		v.floats[17], v.floats[18] = math.Float64bits(h.Lat), math.Float64bits(h.Lon)
		if h.Alt != nil {
			v.present |= 1 << 15
			v.floats[19] = math.Float64bits(*h.Alt)
		}
	}
	opt(&v, 16, s.Seq, &v.seq)
	opt(&v, 17, s.Armed, &v.armed)
	opt(&v, 18, s.Mode, &v.mode)
	opt(&v, 19, s.Fix, &v.fix)
	opt(&v, 20, s.Satellites, &v.satellites)
	return v
}

// opt takes an optional value: present bit, and the value into dst.
func opt[T any](v *stateValues, bit uint, p *T, dst *T) {
	if p != nil {
		v.present |= 1 << bit
		*dst = *p
	}
}

func (v *stateValues) slot() int {
	h := uint64(v.ts)*1e9 + uint64(v.tsNS)
	h = h*0x9E3779B97F4A7C15 ^ (uint64(v.updated)*1e9 + uint64(v.updatedNS))
	h = h*0x9E3779B97F4A7C15 ^ v.floats[0]
	h = h*0x9E3779B97F4A7C15 ^ v.floats[1]
	h ^= h >> 29
	return int(h & (stateJSONSlots - 1))
}

// sameState reports whether AppendJSON writes the same bytes for a and b.
func sameState(a, b *DroneState) bool { return valuesOf(a) == valuesOf(b) }
