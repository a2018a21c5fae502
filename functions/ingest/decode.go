package function

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dronetrack/dronetrack/events"
)

// errSyntax marks a body that is not JSON at all; no field can be named.
var errSyntax = errors.New("malformed JSON")

// decodeReports parses a request body that is one report object or an array
// of 1..max report objects, strictly: field names match exactly (no case
// folding), unknown and duplicate fields are errors, ts/lat/lon are required
// and non-null, ts is RFC 3339, and nothing but whitespace may follow the
// value. Every bad field of every report is returned, named by its JSON
// pointer, then each well-typed report is checked with events.Report.Validate.
//
// A hand-written scanner instead of encoding/json because encoding/json stops
// at the first type error (a client would fix one field per round trip),
// matches field names case-insensitively, cannot tell a missing lat from 0,
// and is the dominant cost of a request; this parser does one pass with no
// reflection.
//
// err is non-nil (wrapping errSyntax) only when the body is not valid JSON.
func decodeReports(body []byte, now time.Time, max int) (reps []events.Report, bad []events.FieldError, err error) {
	p := parser{buf: body}
	p.ws()
	switch p.peek() {
	case '{':
		var r events.Report
		var opt optional
		bad = p.report(&r, &opt, "", now, bad)
		if p.err == nil {
			reps = []events.Report{r}
		}
	case '[':
		p.pos++
		p.ws()
		if p.peek() == ']' {
			p.pos++
			bad = append(bad, events.FieldError{Pointer: "", Detail: "empty array: send at least one report"})
			break
		}
		reps = make([]events.Report, 0, 8)
		var opts []optional
		for i := 0; p.err == nil; i++ {
			if i == max {
				bad = append(bad, events.FieldError{Pointer: "",
					Detail: fmt.Sprintf("too many reports: at most %d per request", max)})
				return nil, bad, nil
			}
			p.ws()
			if p.peek() != '{' {
				if p.skipValue(); p.err == nil && len(bad) < maxFieldErrors {
					bad = append(bad, events.FieldError{Pointer: "/" + strconv.Itoa(i), Detail: "must be a report object"})
				} else if p.err == nil {
					p.dropped++
				}
			} else {
				reps = append(reps, events.Report{})
				opts = append(opts, optional{})
				bad = p.report(&reps[len(reps)-1], &opts[len(opts)-1], "/"+strconv.Itoa(i), now, bad)
			}
			p.ws()
			if p.peek() == ',' {
				p.pos++
				continue
			}
			p.expect(']')
			break
		}
		// The optional fields point into opts; repoint after append grew it.
		for i := range reps {
			opts[i].attach(&reps[i])
		}
	default:
		if p.pos >= len(p.buf) {
			p.fail("empty body")
		} else if p.skipValue(); p.err == nil {
			bad = append(bad, events.FieldError{Pointer: "", Detail: "must be a report object or an array of report objects"})
		}
	}
	if p.err == nil {
		p.ws()
		if p.pos < len(p.buf) {
			p.fail("unexpected data after the JSON value")
		}
	}
	if p.err != nil {
		return nil, nil, p.err
	}
	if p.dropped > 0 {
		bad = append(bad, events.FieldError{Pointer: "",
			Detail: fmt.Sprintf("%d more problems not listed; fix the ones above and resend", p.dropped)})
	}
	if len(bad) > 0 {
		return nil, bad, nil
	}
	return reps, nil, nil
}

// optional holds the values of a report's optional fields, so a report costs
// no allocation per field; attach points the report's fields at it.
type optional struct {
	alt, speed, heading, battery float64
	seq                          uint64
	has                          uint8 // bit set of the fields present
}

const (
	hasAlt = 1 << iota
	hasSpeed
	hasHeading
	hasBattery
	hasSeq
)

func (o *optional) attach(r *events.Report) {
	r.Alt, r.Speed, r.Heading, r.Battery, r.Seq = nil, nil, nil, nil, nil
	if o.has&hasAlt != 0 {
		r.Alt = &o.alt
	}
	if o.has&hasSpeed != 0 {
		r.Speed = &o.speed
	}
	if o.has&hasHeading != 0 {
		r.Heading = &o.heading
	}
	if o.has&hasBattery != 0 {
		r.Battery = &o.battery
	}
	if o.has&hasSeq != 0 {
		r.Seq = &o.seq
	}
}

// maxFieldErrors bounds the bad fields listed in one reply, so a body of
// thousands of unknown fields cannot make a reply (and its memory) huge.
const maxFieldErrors = 100

type parser struct {
	buf     []byte
	pos     int
	err     error
	dropped int // bad fields beyond maxFieldErrors
}

func (p *parser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("%w at byte %d: %s", errSyntax, p.pos, fmt.Sprintf(format, args...))
	}
	p.pos = len(p.buf)
}

func (p *parser) peek() byte {
	if p.pos < len(p.buf) {
		return p.buf[p.pos]
	}
	return 0
}

func (p *parser) ws() {
	for p.pos < len(p.buf) {
		switch p.buf[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) expect(c byte) {
	if p.err != nil {
		return
	}
	p.ws()
	if p.peek() != c {
		if p.pos >= len(p.buf) {
			p.fail("unexpected end of input, want %q", c)
		} else {
			p.fail("unexpected %q, want %q", p.buf[p.pos], c)
		}
		return
	}
	p.pos++
}

// field bits for required-field and duplicate tracking.
const (
	fTS = 1 << iota
	fLat
	fLon
	fAlt
	fSpeed
	fHeading
	fBattery
	fSeq
)

var fieldBits = map[string]uint16{
	"ts": fTS, "lat": fLat, "lon": fLon, "alt": fAlt, "speed": fSpeed,
	"heading": fHeading, "battery": fBattery, "seq": fSeq,
}

// report parses one object at p.pos into r and o, appending every bad field
// to bad with pointers under prefix. It then validates r if every field had
// the right type, dropping range errors for fields already reported.
func (p *parser) report(r *events.Report, o *optional, prefix string, now time.Time, bad []events.FieldError) []events.FieldError {
	p.expect('{')
	var seen, badFields uint16
	addBad := func(bit uint16, field, detail string) {
		badFields |= bit
		if len(bad) >= maxFieldErrors {
			p.dropped++
			return
		}
		bad = append(bad, events.FieldError{Field: field, Pointer: prefix + "/" + escapePointer(field), Detail: detail})
	}
	p.ws()
	if p.peek() == '}' {
		p.pos++
	} else {
		for p.err == nil {
			key, ok := p.str()
			if !ok {
				if p.err == nil {
					p.fail("want a field name")
				}
				break
			}
			p.expect(':')
			if p.err != nil {
				break
			}
			p.ws()
			bit, known := fieldBits[string(key)]
			switch {
			case !known:
				name := string(key)
				if p.skipValue(); p.err == nil {
					addBad(0, name, "unknown field")
				}
			case seen&bit != 0:
				if p.skipValue(); p.err == nil {
					addBad(bit, string(key), "duplicate field")
				}
			default:
				seen |= bit
				if detail := p.value(bit, r, o); detail != "" && p.err == nil {
					addBad(bit, string(key), detail)
				}
			}
			p.ws()
			if p.peek() == ',' {
				p.pos++
				p.ws()
				continue
			}
			p.expect('}')
			break
		}
	}
	if p.err != nil {
		return bad
	}
	for _, req := range [...]struct {
		bit  uint16
		name string
	}{{fTS, "ts"}, {fLat, "lat"}, {fLon, "lon"}} {
		if seen&req.bit == 0 {
			addBad(req.bit, req.name, "required")
		}
	}
	o.attach(r)
	// Validate with an empty prefix and re-prefix only on error, so a valid
	// report costs no pointer strings.
	for _, fe := range r.Validate(now, "") {
		if badFields&fieldBits[fe.Field] != 0 {
			continue // already named with a more precise reason
		}
		if len(bad) >= maxFieldErrors {
			p.dropped++
			continue
		}
		fe.Pointer = prefix + fe.Pointer
		bad = append(bad, fe)
	}
	return bad
}

// value parses the value of a known field. It returns "" or why the value is
// bad; a syntax error sets p.err instead.
func (p *parser) value(bit uint16, r *events.Report, o *optional) string {
	if p.literal("null") {
		switch bit {
		case fTS, fLat, fLon:
			return "required: must not be null"
		}
		return "" // an explicit null optional field is absent
	}
	switch bit {
	case fTS:
		s, ok := p.str()
		if !ok {
			return p.typeMismatch("an RFC 3339 timestamp string")
		}
		if err := r.TS.UnmarshalText(s); err != nil {
			return fmt.Sprintf("%q is not an RFC 3339 timestamp", s)
		}
		return ""
	case fSeq:
		tok, ok := p.number()
		if !ok {
			return p.typeMismatch("a non-negative integer")
		}
		v, err := strconv.ParseUint(string(tok), 10, 64)
		if err != nil {
			return fmt.Sprintf("%s is not an integer in [0, %d]", tok, uint64(math.MaxUint64))
		}
		o.seq, o.has = v, o.has|hasSeq
		return ""
	}
	tok, ok := p.number()
	if !ok {
		return p.typeMismatch("a number")
	}
	v, err := strconv.ParseFloat(string(tok), 64)
	if err != nil {
		return fmt.Sprintf("%s is out of range", tok)
	}
	switch bit {
	case fLat:
		r.Lat = v
	case fLon:
		r.Lon = v
	case fAlt:
		o.alt, o.has = v, o.has|hasAlt
	case fSpeed:
		o.speed, o.has = v, o.has|hasSpeed
	case fHeading:
		o.heading, o.has = v, o.has|hasHeading
	case fBattery:
		o.battery, o.has = v, o.has|hasBattery
	}
	return ""
}

// typeMismatch skips a value of the wrong type and says what was wanted.
func (p *parser) typeMismatch(want string) string {
	got := "a value"
	switch p.peek() {
	case '"':
		got = "a string"
	case '{':
		got = "an object"
	case '[':
		got = "an array"
	case 't', 'f':
		got = "a boolean"
	default:
		if c := p.peek(); c == '-' || '0' <= c && c <= '9' {
			got = "a number"
		}
	}
	p.skipValue()
	return "must be " + want + ", got " + got
}

func (p *parser) literal(lit string) bool {
	if end := p.pos + len(lit); end <= len(p.buf) && string(p.buf[p.pos:end]) == lit {
		p.pos += len(lit)
		return true
	}
	return false
}

// number scans a JSON number and returns its text; ok is false (and nothing
// consumed) when the value is not a number.
func (p *parser) number() (tok []byte, ok bool) {
	start, i, b := p.pos, p.pos, p.buf
	digits := func() int {
		n := 0
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if digits() == 0 {
		if i > start { // a lone '-'
			p.pos = i
			p.fail("invalid number")
		}
		return nil, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			p.pos = i
			p.fail("invalid number")
			return nil, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			p.pos = i
			p.fail("invalid number")
			return nil, false
		}
	}
	p.pos = i
	return b[start:i], true
}

// str scans a JSON string and returns its decoded content; ok is false (and
// nothing consumed) when the value is not a string. The result aliases the
// body when it has no escapes.
func (p *parser) str() (s []byte, ok bool) {
	if p.peek() != '"' {
		return nil, false
	}
	b := p.buf
	i := p.pos + 1
	escaped := false
	for ; i < len(b); i++ {
		c := b[i]
		if c == '"' {
			break
		}
		if c < 0x20 {
			p.pos = i
			p.fail("control character in string")
			return nil, false
		}
		if c == '\\' {
			escaped = true
			i++
			if i >= len(b) {
				break
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) || !isHex4(b[i+1:i+5]) {
					p.pos = i
					p.fail("invalid \\u escape")
					return nil, false
				}
				i += 4
			default:
				p.pos = i
				p.fail("invalid escape")
				return nil, false
			}
		}
	}
	if i >= len(b) {
		p.pos = i
		p.fail("unterminated string")
		return nil, false
	}
	raw := b[p.pos : i+1]
	p.pos = i + 1
	if !escaped {
		return raw[1 : len(raw)-1], true
	}
	u, err := strconv.Unquote(string(raw))
	if err != nil || !utf8.ValidString(u) {
		// strconv is stricter than JSON only for lone surrogates; keep the
		// raw text, which names the field well enough in an error.
		return raw[1 : len(raw)-1], true
	}
	return []byte(u), true
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// skipValue consumes any JSON value, checking its syntax.
func (p *parser) skipValue() {
	p.skipDepth(0)
}

// maxDepth bounds nesting inside unknown fields so a hostile body cannot
// exhaust the stack.
const maxDepth = 64

func (p *parser) skipDepth(depth int) {
	if p.err != nil {
		return
	}
	if depth > maxDepth {
		p.fail("nested deeper than %d", maxDepth)
		return
	}
	p.ws()
	switch c := p.peek(); {
	case c == '"':
		p.str()
	case c == '{':
		p.pos++
		p.ws()
		if p.peek() == '}' {
			p.pos++
			return
		}
		for p.err == nil {
			p.ws()
			if _, ok := p.str(); !ok {
				p.fail("want a field name")
				return
			}
			p.expect(':')
			p.skipDepth(depth + 1)
			p.ws()
			if p.peek() == ',' {
				p.pos++
				continue
			}
			p.expect('}')
			return
		}
	case c == '[':
		p.pos++
		p.ws()
		if p.peek() == ']' {
			p.pos++
			return
		}
		for p.err == nil {
			p.skipDepth(depth + 1)
			p.ws()
			if p.peek() == ',' {
				p.pos++
				continue
			}
			p.expect(']')
			return
		}
	case c == 't':
		if !p.literal("true") {
			p.fail("invalid literal")
		}
	case c == 'f':
		if !p.literal("false") {
			p.fail("invalid literal")
		}
	case c == 'n':
		if !p.literal("null") {
			p.fail("invalid literal")
		}
	case c == '-' || '0' <= c && c <= '9':
		p.number()
	case p.pos >= len(p.buf):
		p.fail("unexpected end of input")
	default:
		p.fail("unexpected %q", c)
	}
}

// escapePointer escapes a field name as an RFC 6901 reference token.
func escapePointer(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}
