package bolt

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// History points are stored in one of two forms, told apart by their first
// byte:
//
//   - '{': encoding/json's bytes of the store.TrackPoint, the only form of
//     data dirs of format 3 and older, and still what a point that the
//     compact form cannot hold exactly is written as (a time encoding/json
//     would write differently, a non-finite number, a string that is not
//     valid UTF-8);
//   - trackPointV1: the compact form below, about a quarter of the size.
//     A point decodes from it exactly as from its JSON form
//     (TestTrackPointFormsDecodeAlike), so readers cannot tell them apart.
//
// The compact form leaves out the drone id (the name of the drone's bucket
// says it) and the report's time's instant is kept whole (the key has it
// too, but not its zone, and only within UnixNano's range). Layout, varints
// as encoding/binary's:
//
//	0x01
//	uvarint   fields present: bit i for the optional field i of
//	          optionalFields, bit 31 when ExpireAt is set
//	varint    TS: seconds since 1970; uvarint nanoseconds; varint zone
//	          offset in minutes (0: UTC)
//	varint    ExpireAt, when set: seconds after TS's; uvarint nanoseconds;
//	          varint zone offset in minutes
//	uvarint   length of TenantID, then its bytes
//	float     Lat, Lon: a byte k up to 9 and a varint m for m/10^k, or a
//	          byte 0xff and the IEEE 754 bits, little endian (appendFloat)
//	...       the optional fields present, in order: floats as above,
//	          Seq uvarint, Armed one byte, Mode uvarint length and bytes,
//	          Fix and Satellites varints, Home's Lat, Lon and (bit 30 of the
//	          fields) its Alt.
//
// A previous release reads only the JSON form: the data dir format records
// that (infra/local DataDirFormat 4).
const trackPointV1 = 0x01

// The optional fields of events.Report in the compact form's order; the
// bit of each in the fields word is its index.
const (
	fAlt = iota
	fSpeed
	fHeading
	fBattery
	fSeq
	fArmed
	fMode
	fFix
	fSatellites
	fHAE
	fHeight
	fVSpeed
	fHAcc
	fVAcc
	fLink
	fHome
	fHomeAlt = 30
	fExpire  = 31
)

// encodeTrackPoint is the bytes a history point is stored as (compact when
// it can be, JSON otherwise), which a redelivery compares with what is
// there: the same point always encodes to the same bytes.
func encodeTrackPoint(p store.TrackPoint) ([]byte, error) {
	if raw, ok := appendTrackPointV1(make([]byte, 0, 96), p); ok {
		return raw, nil
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode track point: %w", err)
	}
	return raw, nil
}

// appendTrackPointV1 appends p's compact form; false when p is not one it
// holds exactly (see trackPointV1).
func appendTrackPointV1(b []byte, p store.TrackPoint) ([]byte, bool) {
	r := &p.Report
	if !plainTime(r.TS) || !plainTime(p.ExpireAt) || !utf8.ValidString(p.TenantID) || !utf8.ValidString(p.DroneID) ||
		!finite(r.Lat) || !finite(r.Lon) {
		return b, false
	}
	var fields uint64
	floats := [...]struct {
		bit int
		v   *float64
	}{{fAlt, r.Alt}, {fSpeed, r.Speed}, {fHeading, r.Heading}, {fBattery, r.Battery}, {fHAE, r.HAE},
		{fHeight, r.Height}, {fVSpeed, r.VSpeed}, {fHAcc, r.HAcc}, {fVAcc, r.VAcc}, {fLink, r.Link}}
	for _, f := range floats {
		if f.v != nil {
			if !finite(*f.v) {
				return b, false
			}
			fields |= 1 << f.bit
		}
	}
	set := func(bit int, ok bool) {
		if ok {
			fields |= 1 << bit
		}
	}
	set(fSeq, r.Seq != nil)
	set(fArmed, r.Armed != nil)
	set(fMode, r.Mode != nil)
	set(fFix, r.Fix != nil)
	set(fSatellites, r.Satellites != nil)
	set(fHome, r.Home != nil)
	set(fExpire, !p.ExpireAt.IsZero())
	if r.Mode != nil && !utf8.ValidString(*r.Mode) {
		return b, false
	}
	if h := r.Home; h != nil {
		if !finite(h.Lat) || !finite(h.Lon) || (h.Alt != nil && !finite(*h.Alt)) {
			return b, false
		}
		set(fHomeAlt, h.Alt != nil)
	}

	b = append(b, trackPointV1)
	b = binary.AppendUvarint(b, fields)
	b = binary.AppendVarint(b, r.TS.Unix())
	b = binary.AppendUvarint(b, uint64(r.TS.Nanosecond()))
	b = binary.AppendVarint(b, int64(zoneMinutes(r.TS)))
	if !p.ExpireAt.IsZero() {
		b = binary.AppendVarint(b, p.ExpireAt.Unix()-r.TS.Unix())
		b = binary.AppendUvarint(b, uint64(p.ExpireAt.Nanosecond()))
		b = binary.AppendVarint(b, int64(zoneMinutes(p.ExpireAt)))
	}
	b = binary.AppendUvarint(b, uint64(len(p.TenantID)))
	b = append(b, p.TenantID...)
	b = appendFloat(b, r.Lat)
	b = appendFloat(b, r.Lon)
	for bit := fAlt; bit <= fHome; bit++ {
		if fields&(1<<bit) == 0 {
			continue
		}
		switch bit {
		case fSeq:
			b = binary.AppendUvarint(b, *r.Seq)
		case fArmed:
			v := byte(0)
			if *r.Armed {
				v = 1
			}
			b = append(b, v)
		case fMode:
			b = binary.AppendUvarint(b, uint64(len(*r.Mode)))
			b = append(b, *r.Mode...)
		case fFix:
			b = binary.AppendVarint(b, int64(*r.Fix))
		case fSatellites:
			b = binary.AppendVarint(b, int64(*r.Satellites))
		case fHome:
			b = appendFloat(b, r.Home.Lat)
			b = appendFloat(b, r.Home.Lon)
			if r.Home.Alt != nil {
				b = appendFloat(b, *r.Home.Alt)
			}
		default:
			b = appendFloat(b, **optionalFloat(r, bit))
		}
	}
	return b, true
}

// optionalFloat is the pointer field of r with the given bit (a float
// one), to read or set.
func optionalFloat(r *events.Report, bit int) **float64 {
	switch bit {
	case fAlt:
		return &r.Alt
	case fSpeed:
		return &r.Speed
	case fHeading:
		return &r.Heading
	case fBattery:
		return &r.Battery
	case fHAE:
		return &r.HAE
	case fHeight:
		return &r.Height
	case fVSpeed:
		return &r.VSpeed
	case fHAcc:
		return &r.HAcc
	case fVAcc:
		return &r.VAcc
	case fLink:
		return &r.Link
	}
	panic(fmt.Sprintf("bolt: field bit %d is not a float", bit))
}

// decodeTrackPoint decodes a stored history point of drone droneID (the
// name of the bucket it is in) in either form.
func decodeTrackPoint(raw []byte, droneID string, p *store.TrackPoint) error {
	if len(raw) > 0 && raw[0] == trackPointV1 {
		if err := readTrackPointV1(raw, droneID, p); err != nil {
			return fmt.Errorf("decode track point: %w", err)
		}
		return nil
	}
	if err := json.Unmarshal(raw, p); err != nil {
		return fmt.Errorf("decode track point: %w", err)
	}
	return nil
}

var errShortPoint = errors.New("truncated compact track point")

// pointReader reads the compact form; the first failure sticks in err.
type pointReader struct {
	b   []byte
	err error
}

func (r *pointReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *pointReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *pointReader) bytes(n uint64) []byte {
	if uint64(len(r.b)) < n {
		r.fail()
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *pointReader) float() float64 {
	k := r.bytes(1)
	switch {
	case k == nil:
		return 0
	case k[0] == rawFloat:
		b := r.bytes(8)
		if b == nil {
			return 0
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b))
	case k[0] <= maxDecimals:
		return float64(r.varint()) / pow10[k[0]]
	}
	r.fail()
	return 0
}

func (r *pointReader) fail() {
	if r.err == nil {
		r.err = errShortPoint
	}
	r.b = nil
}

// times reads TS and, when fields says so, ExpireAt.
func (r *pointReader) times(fields uint64) (ts, exp time.Time) {
	sec := r.varint()
	ts = fromZone(sec, int64(r.uvarint()), r.varint())
	if fields&(1<<fExpire) != 0 {
		exp = fromZone(sec+r.varint(), int64(r.uvarint()), r.varint())
	}
	return ts, exp
}

// knownFields are the bits of the fields word this version writes.
const knownFields = 1<<(fHome+1) - 1 | 1<<fHomeAlt | 1<<fExpire

func readTrackPointV1(raw []byte, droneID string, p *store.TrackPoint) error {
	r := pointReader{b: raw[1:]}
	fields := r.uvarint()
	if fields&^knownFields != 0 {
		return fmt.Errorf("compact track point with unknown fields %#x", fields&^knownFields)
	}
	*p = store.TrackPoint{DroneID: droneID}
	rep := &p.Report
	rep.TS, p.ExpireAt = r.times(fields)
	p.TenantID = string(r.bytes(r.uvarint()))
	rep.Lat, rep.Lon = r.float(), r.float()
	for bit := fAlt; bit <= fHome; bit++ {
		if fields&(1<<bit) == 0 {
			continue
		}
		switch bit {
		case fSeq:
			v := r.uvarint()
			rep.Seq = &v
		case fArmed:
			v := r.bytes(1)
			armed := len(v) == 1 && v[0] == 1
			rep.Armed = &armed
		case fMode:
			v := string(r.bytes(r.uvarint()))
			rep.Mode = &v
		case fFix:
			v := int(r.varint())
			rep.Fix = &v
		case fSatellites:
			v := int(r.varint())
			rep.Satellites = &v
		case fHome:
			h := events.Position{Lat: r.float(), Lon: r.float()}
			if fields&(1<<fHomeAlt) != 0 {
				alt := r.float()
				h.Alt = &alt
			}
			rep.Home = &h
		default:
			v := r.float()
			*optionalFloat(rep, bit) = &v
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d bytes after a compact track point", len(r.b))
	}
	return r.err
}

// trackPointExpiry decodes just the expiry of a stored point in either form.
func trackPointExpiry(raw []byte) (time.Time, bool) {
	if len(raw) > 0 && raw[0] == trackPointV1 {
		r := pointReader{b: raw[1:]}
		fields := r.uvarint()
		_, exp := r.times(fields)
		return exp, r.err == nil
	}
	var p struct {
		ExpireAt time.Time `json:"expireAt"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return time.Time{}, false
	}
	return p.ExpireAt, true
}

// zoneMinutes is t's offset from UTC in minutes (plainTime: whole minutes).
func zoneMinutes(t time.Time) int {
	_, off := t.Zone()
	return off / 60
}

// fromZone is the time encoding/json decodes from the RFC 3339 text of the
// instant sec.nsec at an offset of off minutes: UTC for "Z" (offset 0),
// else the local zone when it has that offset then, else a fixed zone
// without a name (time.Parse's rule).
func fromZone(sec, nsec, off int64) time.Time {
	t := time.Unix(sec, nsec)
	if off == 0 {
		return t.UTC()
	}
	if _, lo := t.Zone(); lo == int(off)*60 {
		return t // time.Unix's location is Local
	}
	return t.In(time.FixedZone("", int(off)*60))
}

// appendFloat appends v as the decimal m/10^k with the least k up to
// maxDecimals that gives back v's very bits (a byte k, then varint m),
// which telemetry's numbers of a few decimals mostly are; otherwise as a
// byte rawFloat and its IEEE 754 bits, little endian.
func appendFloat(b []byte, v float64) []byte {
	if math.Abs(v) < 1<<53/pow10[maxDecimals] {
		for k := 0; k <= maxDecimals; k++ {
			m := int64(math.Round(v * pow10[k]))
			if math.Float64bits(float64(m)/pow10[k]) == math.Float64bits(v) { // as pointReader.float decodes it
				b = append(b, byte(k))
				return binary.AppendVarint(b, m)
			}
		}
	}
	b = append(b, rawFloat)
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}

const (
	maxDecimals = 9
	rawFloat    = 0xff
)

var pow10 = [maxDecimals + 1]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
