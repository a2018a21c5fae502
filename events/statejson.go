package events

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// A drone's state is encoded or decoded as JSON several times per report
// in the one-machine pipeline: process's state.updated reply, alerts' and
// cache-refresh's decoding of it, the cache's rendering, and the bolt
// store's drone document, read and written by every state write. With
// encoding/json's reflection over its 25 fields (most of them pointers)
// that was a large share of the pipeline's CPU; MarshalJSON and
// UnmarshalJSON below do the common case by hand and hand everything else
// to encoding/json (droneStateJSON, the same type without the methods), so
// the bytes written and the values read are encoding/json's exactly
// (TestStateJSONMatchesEncodingJSON, FuzzStateJSON).

// droneStateJSON is DroneState without its JSON methods: encoding/json's
// reflection over the same fields and tags.
type droneStateJSON DroneState

// MarshalJSON writes what encoding/json writes for the struct.
func (s DroneState) MarshalJSON() ([]byte, error) {
	return s.AppendJSON(make([]byte, 0, 384))
}

// AppendJSON appends s's JSON (MarshalJSON's bytes) to b.
func (s DroneState) AppendJSON(b []byte) ([]byte, error) {
	// A state with the values of one encoded before is plain as that one
	// was (plain reads only values): the memo is asked first.
	if j, ok := encodedStates.get(&s); ok {
		return append(b, j...), nil
	}
	if !s.plain() {
		return appendMarshal(b, (*droneStateJSON)(new(s)))
	}
	start := len(b)
	b = s.appendPlain(b)
	encodedStates.put(&s, b[start:])
	return b, nil
}

// appendPlain is AppendJSON's hand encoder, for a plain state.
func (s *DroneState) appendPlain(b []byte) []byte {
	b = append(b, `{"ts":`...)
	b = appendTime(b, s.TS)
	b = append(b, `,"lat":`...)
	b = appendFloat(b, s.Lat)
	b = append(b, `,"lon":`...)
	b = appendFloat(b, s.Lon)
	b = appendOptFloat(b, `,"alt":`, s.Alt)
	b = appendOptFloat(b, `,"speed":`, s.Speed)
	b = appendOptFloat(b, `,"heading":`, s.Heading)
	b = appendOptFloat(b, `,"battery":`, s.Battery)
	if s.Seq != nil {
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, *s.Seq, 10)
	}
	if s.Armed != nil {
		b = append(b, `,"armed":`...)
		b = strconv.AppendBool(b, *s.Armed)
	}
	if s.Mode != nil {
		b = append(b, `,"mode":`...)
		b = appendString(b, *s.Mode)
	}
	if s.Fix != nil {
		b = append(b, `,"fix":`...)
		b = strconv.AppendInt(b, int64(*s.Fix), 10)
	}
	if s.Satellites != nil {
		b = append(b, `,"satellites":`...)
		b = strconv.AppendInt(b, int64(*s.Satellites), 10)
	}
	b = appendOptFloat(b, `,"hae":`, s.HAE)
	b = appendOptFloat(b, `,"height":`, s.Height)
	b = appendOptFloat(b, `,"vspeed":`, s.VSpeed)
	b = appendOptFloat(b, `,"hAcc":`, s.HAcc)
	b = appendOptFloat(b, `,"vAcc":`, s.VAcc)
	b = appendOptFloat(b, `,"link":`, s.Link)
	if h := s.Home; h != nil {
		b = append(b, `,"home":{"lat":`...)
		b = appendFloat(b, h.Lat)
		b = append(b, `,"lon":`...)
		b = appendFloat(b, h.Lon)
		b = appendOptFloat(b, `,"alt":`, h.Alt)
		b = append(b, '}')
	}
	b = appendOptFloat(b, `,"groundSpeed":`, s.GroundSpeed)
	b = appendOptFloat(b, `,"course":`, s.Course)
	b = append(b, `,"distanceM":`...)
	b = appendFloat(b, s.DistanceM)
	b = appendOptFloat(b, `,"batteryDrain":`, s.BatteryDrain)
	b = appendOptFloat(b, `,"timeToEmptySecs":`, s.TimeToEmptySecs)
	b = append(b, `,"updatedAt":`...)
	b = appendTime(b, s.UpdatedAt)
	return append(b, '}')
}

// appendMarshal appends encoding/json's bytes for v. The fallbacks copy
// their receiver to the heap for it, so the plain path's receiver stays
// on the stack.
func appendMarshal(b []byte, v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, raw...), nil
}

func appendOptFloat(b []byte, name string, v *float64) []byte {
	if v == nil {
		return b
	}
	return appendFloat(append(b, name...), *v)
}

// plain reports whether the hand encoder writes s as encoding/json does:
// finite numbers and times that Time.MarshalJSON accepts (encoding/json
// fails on the others, and its error is the one to return).
func (s *DroneState) plain() bool {
	if !jsonTime(s.TS) || !jsonTime(s.UpdatedAt) {
		return false
	}
	for _, v := range [...]float64{s.Lat, s.Lon, s.DistanceM} {
		if !finite(v) {
			return false
		}
	}
	for _, p := range [...]*float64{s.Alt, s.Speed, s.Heading, s.Battery, s.HAE, s.Height, s.VSpeed, s.HAcc,
		s.VAcc, s.Link, s.GroundSpeed, s.Course, s.BatteryDrain, s.TimeToEmptySecs} {
		if p != nil && !finite(*p) {
			return false
		}
	}
	if h := s.Home; h != nil && (!finite(h.Lat) || !finite(h.Lon) || (h.Alt != nil && !finite(*h.Alt))) {
		return false
	}
	return true
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// jsonTime: a year of four digits and a whole-minute offset under 24 h,
// what Time.MarshalJSON writes without an error.
func jsonTime(t time.Time) bool {
	if y := t.Year(); y < 0 || y > 9999 {
		return false
	}
	_, off := t.Zone()
	return off%60 == 0 && off > -24*3600 && off < 24*3600
}

// UnmarshalJSON reads what encoding/json reads into the struct: the form
// MarshalJSON writes (any member order, absent members, whitespace) by
// hand, anything else (null, escapes in names, unknown or differently
// cased names, numbers a field cannot hold) through encoding/json.
func (s *DroneState) UnmarshalJSON(data []byte) error {
	out := *s
	p := stateParser{b: data, floats: new([16]float64)}
	if p.object(&out) && p.end() {
		*s = out
		return nil
	}
	return json.Unmarshal(data, (*droneStateJSON)(s))
}

// stateParser is the hand decoder's cursor. Each method returns false when
// the input is not in the form it handles (not necessarily invalid).
type stateParser struct {
	report bool // reading a Report: the state's derived members are not its
	b      []byte
	pos    int
	floats *[16]float64 // values of optional numbers, floats[:n] taken
	n      int
}

func (p *stateParser) ws() {
	for p.pos < len(p.b) {
		switch p.b[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *stateParser) end() bool {
	p.ws()
	return p.pos == len(p.b)
}

func (p *stateParser) byte(c byte) bool {
	p.ws()
	if p.pos < len(p.b) && p.b[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

// str returns a string's contents when it has no escapes.
func (p *stateParser) str() ([]byte, bool) {
	p.ws()
	if p.pos >= len(p.b) || p.b[p.pos] != '"' {
		return nil, false
	}
	for i := p.pos + 1; i < len(p.b); i++ {
		switch c := p.b[i]; {
		case c == '"':
			s := p.b[p.pos+1 : i]
			p.pos = i + 1
			return s, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false // escapes and non-ASCII: encoding/json's
		}
	}
	return nil, false
}

// number returns a JSON number's text.
func (p *stateParser) number() ([]byte, bool) {
	p.ws()
	start := p.pos
	if p.pos < len(p.b) && p.b[p.pos] == '-' {
		p.pos++
	}
	digits := func() int {
		n := 0
		for p.pos < len(p.b) && p.b[p.pos] >= '0' && p.b[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	intStart := p.pos
	if n := digits(); n == 0 || (n > 1 && p.b[intStart] == '0') {
		return nil, false
	}
	if p.pos < len(p.b) && p.b[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return nil, false
		}
	}
	if p.pos < len(p.b) && (p.b[p.pos] == 'e' || p.b[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.b) && (p.b[p.pos] == '+' || p.b[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	return p.b[start:p.pos], true
}

func (p *stateParser) float() (float64, bool) {
	n, ok := p.number()
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(n), 64)
	return v, err == nil
}

// optFloat points *dst at the number read. The values come from one block
// per state; a pointer the state held is not written through (its value
// may be shared), which is the one way the hand decoder differs from
// encoding/json, and none of the callers decode into a state holding one.
func (p *stateParser) optFloat(dst **float64) bool {
	v, ok := p.float()
	if !ok {
		return false
	}
	if p.n == len(p.floats) {
		p.floats, p.n = new([16]float64), 0
	}
	p.floats[p.n] = v
	*dst = &p.floats[p.n]
	p.n++
	return true
}

func (p *stateParser) optInt(dst **int) bool {
	n, ok := p.number()
	if !ok {
		return false
	}
	v, err := strconv.ParseInt(string(n), 10, strconv.IntSize)
	if err != nil {
		return false
	}
	*dst = new(int(v))
	return true
}

func (p *stateParser) time(dst *time.Time) bool {
	p.ws()
	start := p.pos
	if _, ok := p.str(); !ok {
		return false
	}
	var t time.Time
	if t.UnmarshalJSON(p.b[start:p.pos]) != nil {
		return false
	}
	*dst = t
	return true
}

// object reads a state object into s.
func (p *stateParser) object(s *DroneState) bool {
	return p.members(func(name []byte) bool { return p.member(s, name) })
}

// members reads a JSON object, handing each member's name to member, which
// reads the value; false from member (an unknown name, a bad value) fails
// the object.
func (p *stateParser) members(member func(name []byte) bool) bool {
	if !p.byte('{') {
		return false
	}
	if p.byte('}') {
		return true
	}
	for {
		name, ok := p.str()
		if !ok || !p.byte(':') || !member(name) {
			return false
		}
		if p.byte('}') {
			return true
		}
		if !p.byte(',') {
			return false
		}
	}
}

func (p *stateParser) member(s *DroneState, name []byte) bool {
	if p.report {
		switch string(name) {
		case "updatedAt", "distanceM", "groundSpeed", "course", "batteryDrain", "timeToEmptySecs":
			return false // not a Report member: encoding/json ignores it
		}
	}
	switch string(name) {
	case "ts":
		return p.time(&s.TS)
	case "updatedAt":
		return p.time(&s.UpdatedAt)
	case "lat":
		v, ok := p.float()
		s.Lat = v
		return ok
	case "lon":
		v, ok := p.float()
		s.Lon = v
		return ok
	case "distanceM":
		v, ok := p.float()
		s.DistanceM = v
		return ok
	case "alt":
		return p.optFloat(&s.Alt)
	case "speed":
		return p.optFloat(&s.Speed)
	case "heading":
		return p.optFloat(&s.Heading)
	case "battery":
		return p.optFloat(&s.Battery)
	case "hae":
		return p.optFloat(&s.HAE)
	case "height":
		return p.optFloat(&s.Height)
	case "vspeed":
		return p.optFloat(&s.VSpeed)
	case "hAcc":
		return p.optFloat(&s.HAcc)
	case "vAcc":
		return p.optFloat(&s.VAcc)
	case "link":
		return p.optFloat(&s.Link)
	case "groundSpeed":
		return p.optFloat(&s.GroundSpeed)
	case "course":
		return p.optFloat(&s.Course)
	case "batteryDrain":
		return p.optFloat(&s.BatteryDrain)
	case "timeToEmptySecs":
		return p.optFloat(&s.TimeToEmptySecs)
	case "fix":
		return p.optInt(&s.Fix)
	case "satellites":
		return p.optInt(&s.Satellites)
	case "seq":
		n, ok := p.number()
		if !ok {
			return false
		}
		v, err := strconv.ParseUint(string(n), 10, 64)
		if err != nil {
			return false
		}
		s.Seq = new(v)
		return true
	case "armed":
		p.ws()
		var v bool
		switch {
		case len(p.b)-p.pos >= 4 && string(p.b[p.pos:p.pos+4]) == "true":
			v, p.pos = true, p.pos+4
		case len(p.b)-p.pos >= 5 && string(p.b[p.pos:p.pos+5]) == "false":
			p.pos += 5
		default:
			return false
		}
		s.Armed = new(v)
		return true
	case "mode":
		v, ok := p.str()
		if !ok {
			return false
		}
		s.Mode = new(string(v))
		return true
	case "home":
		h := &Position{}
		if s.Home != nil {
			*h = *s.Home // encoding/json decodes into the Position held
		}
		s.Home = h
		return p.position(h)
	}
	return false
}

func (p *stateParser) position(h *Position) bool {
	return p.members(func(name []byte) (ok bool) {
		switch string(name) {
		case "lat":
			h.Lat, ok = p.float()
		case "lon":
			h.Lon, ok = p.float()
		case "alt":
			ok = p.optFloat(&h.Alt)
		}
		return ok
	})
}

// Report's JSON, as DroneState's: a report is the first members of a state
// (the same names, types and order), so the same hand encoder and decoder
// serve it. The bolt store writes every report of history as JSON, and
// process decodes every telemetry.received event's reports.

// reportJSON is Report without its JSON methods.
type reportJSON Report

// MarshalJSON writes what encoding/json writes for the struct.
func (r Report) MarshalJSON() ([]byte, error) {
	return r.AppendJSON(make([]byte, 0, 256))
}

// AppendJSON appends r's JSON (MarshalJSON's bytes) to b.
func (r Report) AppendJSON(b []byte) ([]byte, error) {
	if st := r.State(); !st.plain() {
		return appendMarshal(b, (*reportJSON)(new(r)))
	}
	return appendReport(b, &r), nil
}

// UnmarshalJSON reads what encoding/json reads into the struct (see
// DroneState.UnmarshalJSON).
func (r *Report) UnmarshalJSON(data []byte) error {
	st := r.State()
	p := stateParser{report: true, b: data, floats: new([16]float64)}
	if p.object(&st) && p.end() {
		*r = reportOf(&st)
		return nil
	}
	return json.Unmarshal(data, (*reportJSON)(r))
}

// The data of the two events every report produces, state.updated
// (encoded by process, decoded by cache-refresh and alerts) and
// telemetry.received (decoded by process), by hand as well: around the
// hand-coded state and reports encoding/json still scanned the whole
// object, reflected over the outer struct and scanned the state again
// after calling its method. Their members are read with the same parser;
// anything it does not take goes to encoding/json.

// stateUpdatedJSON is StateUpdated without its JSON methods.
type stateUpdatedJSON StateUpdated

// MarshalJSON writes what encoding/json writes for the struct.
func (u StateUpdated) MarshalJSON() ([]byte, error) {
	return u.AppendJSON(make([]byte, 0, 448))
}

// AppendJSON appends u's JSON (MarshalJSON's bytes) to b.
func (u StateUpdated) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"tenantId":`...)
	b = appendString(b, u.TenantID)
	b = append(b, `,"droneId":`...)
	b = appendString(b, u.DroneID)
	b = append(b, `,"state":`...)
	b, err := u.State.AppendJSON(b)
	if err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads what encoding/json reads into the struct (see
// DroneState.UnmarshalJSON).
func (u *StateUpdated) UnmarshalJSON(data []byte) error {
	if u.decodePlain(data) {
		return nil
	}
	return json.Unmarshal(data, (*stateUpdatedJSON)(u))
}

// decodeData is UnmarshalJSON for Decode: the form the hand parser takes is
// valid JSON, so encoding/json's validation pass runs only for the rest.
func (u *StateUpdated) decodeData(data []byte) error { return u.UnmarshalJSON(data) }

// decodePlain reads the form the parser takes into u and reports whether
// it did; u is unchanged when it did not.
func (u *StateUpdated) decodePlain(data []byte) bool {
	out := *u
	p := stateParser{b: data, floats: new([16]float64)}
	ok := p.members(func(name []byte) bool {
		switch string(name) {
		case "tenantId":
			return p.string(&out.TenantID)
		case "droneId":
			return p.string(&out.DroneID)
		case "state":
			return p.object(&out.State)
		}
		return false
	})
	if !ok || !p.end() {
		return false
	}
	*u = out
	return true
}

// telemetryReceivedJSON is TelemetryReceived without its JSON methods.
type telemetryReceivedJSON TelemetryReceived

// UnmarshalJSON reads what encoding/json reads into the struct (see
// DroneState.UnmarshalJSON). The reports of one event share the parser's
// blocks of optional values.
func (d *TelemetryReceived) UnmarshalJSON(data []byte) error {
	if d.decodePlain(data) {
		return nil
	}
	return json.Unmarshal(data, (*telemetryReceivedJSON)(d))
}

// decodeData is UnmarshalJSON for Decode (see StateUpdated.decodeData).
func (d *TelemetryReceived) decodeData(data []byte) error { return d.UnmarshalJSON(data) }

func (d *TelemetryReceived) decodePlain(data []byte) bool {
	out := *d
	p := stateParser{b: data, floats: new([16]float64)}
	ok := p.members(func(name []byte) bool {
		switch string(name) {
		case "tenantId":
			return p.string(&out.TenantID)
		case "droneId":
			return p.string(&out.DroneID)
		case "receivedAt":
			return p.time(&out.ReceivedAt)
		case "reports":
			return p.reports(&out.Reports)
		}
		return false
	})
	if !ok || !p.end() {
		return false
	}
	*d = out
	return true
}

// string reads a string without escapes into dst.
func (p *stateParser) string(dst *string) bool {
	v, ok := p.str()
	if ok {
		*dst = string(v)
	}
	return ok
}

// reports reads an array of reports into *dst (a new slice, as
// encoding/json makes for an array into a nil slice).
func (p *stateParser) reports(dst *[]Report) bool {
	if !p.byte('[') {
		return false
	}
	out := make([]Report, 0, 1)
	if p.byte(']') {
		*dst = out
		return true
	}
	p.report = true
	defer func() { p.report = false }()
	for {
		var st DroneState
		if !p.object(&st) {
			return false
		}
		out = append(out, reportOf(&st))
		if p.byte(']') {
			*dst = out
			return true
		}
		if !p.byte(',') {
			return false
		}
	}
}

// reportOf is the report a state parsed as a report holds.
func reportOf(st *DroneState) Report {
	return Report{TS: st.TS, Lat: st.Lat, Lon: st.Lon, Alt: st.Alt, Speed: st.Speed, Heading: st.Heading,
		Battery: st.Battery, Seq: st.Seq, Armed: st.Armed, Mode: st.Mode, Fix: st.Fix, Satellites: st.Satellites,
		HAE: st.HAE, Height: st.Height, VSpeed: st.VSpeed, HAcc: st.HAcc, VAcc: st.VAcc, Link: st.Link, Home: st.Home}
}
