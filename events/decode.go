package events

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrSyntax marks a body that is not JSON at all, so no field can be named:
// a receiver answers it with a plain "malformed JSON" problem instead of a
// list of bad fields.
var ErrSyntax = errors.New("malformed JSON")

// DecodeReports parses the body of a telemetry request (POST /v1/telemetry,
// or the data of a TypeTelemetryReport CloudEvent): one report object or an
// array of 1..max report objects, strictly: field names match exactly (no case
// folding), unknown and duplicate fields are errors, ts/lat/lon are required
// and non-null, ts is RFC 3339, and nothing but whitespace may follow the
// value. Every bad field of every report is returned, named by its JSON
// pointer, then each well-typed report is checked with Report.Validate at
// now. It lives here, beside Report, so a report field is declared, parsed,
// validated and encoded in one package.
//
// A hand-written scanner instead of encoding/json because encoding/json stops
// at the first type error (a client would fix one field per round trip),
// matches field names case-insensitively, cannot tell a missing lat from 0,
// and is the dominant cost of a request; this parser does one pass with no
// reflection.
//
// err is non-nil (wrapping ErrSyntax) only when the body is not valid JSON;
// bad is non-empty when it is JSON but not valid reports. At most
// MaxFieldErrors bad fields are listed, then one summary entry.
func DecodeReports(body []byte, now time.Time, max int) (reps []Report, bad []FieldError, err error) {
	p := parser{buf: body}
	p.ws()
	switch p.peek() {
	case '{':
		// The report, and the optional values it points at, in one allocation.
		one := new(struct {
			reps [1]Report
			opt  optional
		})
		bad = p.report(&one.reps[0], &one.opt, "", now, bad)
		if p.err == nil {
			reps = one.reps[:]
		}
	case '[':
		p.pos++
		p.ws()
		if p.peek() == ']' {
			p.pos++
			bad = append(bad, FieldError{Pointer: "", Detail: "empty array: send at least one report"})
			break
		}
		reps = make([]Report, 0, 8)
		var opts []optional
		for i := 0; p.err == nil; i++ {
			if i == max {
				bad = append(bad, FieldError{Pointer: "",
					Detail: fmt.Sprintf("too many reports: at most %d per request", max)})
				return nil, bad, nil
			}
			p.ws()
			if p.peek() != '{' {
				if p.skipValue(); p.err == nil && len(bad) < MaxFieldErrors {
					bad = append(bad, FieldError{Pointer: "/" + strconv.Itoa(i), Detail: "must be a report object"})
				} else if p.err == nil {
					p.dropped++
				}
			} else {
				reps = append(reps, Report{})
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
			bad = append(bad, FieldError{Pointer: "", Detail: "must be a report object or an array of report objects"})
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
		bad = append(bad, FieldError{Pointer: "",
			Detail: fmt.Sprintf("%d more problems not listed; fix the ones above and resend", p.dropped)})
	}
	if len(bad) > 0 {
		return nil, bad, nil
	}
	return reps, nil, nil
}

// numberFields and intFields are the report's optional number and integer
// fields: the JSON name and where the value goes. A new optional number or
// integer field of Report is one line here (and one in encode.go); other
// types need a case in parser.value.
var (
	numberFields = [...]struct {
		name string
		ptr  func(*Report) **float64
	}{
		{"alt", func(r *Report) **float64 { return &r.Alt }},
		{"speed", func(r *Report) **float64 { return &r.Speed }},
		{"heading", func(r *Report) **float64 { return &r.Heading }},
		{"battery", func(r *Report) **float64 { return &r.Battery }},
		{"hae", func(r *Report) **float64 { return &r.HAE }},
		{"height", func(r *Report) **float64 { return &r.Height }},
		{"vspeed", func(r *Report) **float64 { return &r.VSpeed }},
		{"hAcc", func(r *Report) **float64 { return &r.HAcc }},
		{"vAcc", func(r *Report) **float64 { return &r.VAcc }},
		{"link", func(r *Report) **float64 { return &r.Link }},
	}
	intFields = [...]struct {
		name string
		ptr  func(*Report) **int
	}{
		{"fix", func(r *Report) **int { return &r.Fix }},
		{"satellites", func(r *Report) **int { return &r.Satellites }},
	}
)

// Field bits, for required-field, duplicate and presence tracking: the
// fields with their own parsing first, then numberFields, then intFields.
const (
	fTS = 1 << iota
	fLat
	fLon
	fSeq
	fArmed
	fMode
	fHome
	firstNumberBit = iota
	firstIntBit    = firstNumberBit + len(numberFields)
	numFieldBits   = firstIntBit + len(intFields)
)

// The field bits fit fieldSet.
var _ = [64 - numFieldBits]struct{}{}

type fieldSet = uint64

// fieldBits maps each report field's JSON name to its bit.
var fieldBits = func() map[string]fieldSet {
	m := map[string]fieldSet{"ts": fTS, "lat": fLat, "lon": fLon, "seq": fSeq, "armed": fArmed, "mode": fMode, "home": fHome}
	for i, f := range numberFields {
		m[f.name] = 1 << (firstNumberBit + i)
	}
	for i, f := range intFields {
		m[f.name] = 1 << (firstIntBit + i)
	}
	return m
}()

// optional holds the values of a report's optional fields, so a report costs
// no allocation per field; attach points the report's fields at it.
type optional struct {
	numbers [len(numberFields)]float64
	ints    [len(intFields)]int
	seq     uint64
	armed   bool
	mode    string
	home    Position
	homeAlt float64
	hasAlt  bool     // home has alt
	has     fieldSet // the fields present
}

func (o *optional) attach(r *Report) {
	r.Seq, r.Armed, r.Mode, r.Home = nil, nil, nil, nil
	for i, f := range numberFields {
		p := f.ptr(r)
		*p = nil
		if o.has&(1<<(firstNumberBit+i)) != 0 {
			*p = &o.numbers[i]
		}
	}
	for i, f := range intFields {
		p := f.ptr(r)
		*p = nil
		if o.has&(1<<(firstIntBit+i)) != 0 {
			*p = &o.ints[i]
		}
	}
	if o.has&fSeq != 0 {
		r.Seq = &o.seq
	}
	if o.has&fArmed != 0 {
		r.Armed = &o.armed
	}
	if o.has&fMode != 0 {
		r.Mode = &o.mode
	}
	if o.has&fHome != 0 {
		r.Home = &o.home
		o.home.Alt = nil
		if o.hasAlt {
			o.home.Alt = &o.homeAlt
		}
	}
}

// MaxFieldErrors bounds the bad fields DecodeReports lists, so a body of
// thousands of unknown fields cannot make a reply (and its memory) huge.
const MaxFieldErrors = 100

type parser struct {
	buf     []byte
	pos     int
	err     error
	dropped int // bad fields beyond MaxFieldErrors
}

func (p *parser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("%w at byte %d: %s", ErrSyntax, p.pos, fmt.Sprintf(format, args...))
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

// members parses the members of an object whose '{' is consumed, through
// its '}': for each, value is called with the key and p.pos at the value,
// which it must consume. It stops at the first syntax error.
func (p *parser) members(value func(key []byte)) {
	p.ws()
	if p.peek() == '}' {
		p.pos++
		return
	}
	for p.err == nil {
		key, ok := p.str()
		if !ok {
			p.fail("want a field name")
			return
		}
		p.expect(':')
		if p.err != nil {
			return
		}
		p.ws()
		value(key)
		p.ws()
		if p.peek() == ',' {
			p.pos++
			p.ws()
			continue
		}
		p.expect('}')
		return
	}
}

// report parses one object at p.pos into r and o, appending every bad field
// to bad with pointers under prefix. It then validates r if every field had
// the right type, dropping range errors for fields already reported.
func (p *parser) report(r *Report, o *optional, prefix string, now time.Time, bad []FieldError) []FieldError {
	p.expect('{')
	var seen, badFields fieldSet
	addBadAt := func(bit fieldSet, field, pointer, detail string) {
		badFields |= bit
		if len(bad) >= MaxFieldErrors {
			p.dropped++
			return
		}
		bad = append(bad, FieldError{Field: field, Pointer: pointer, Detail: detail})
	}
	addBad := func(bit fieldSet, field, detail string) {
		addBadAt(bit, field, prefix+"/"+escapePointer(field), detail)
	}
	p.members(func(key []byte) {
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
		case bit == fHome:
			seen |= bit
			for _, hb := range p.home(o) {
				if p.err == nil {
					addBadAt(bit, "home", prefix+"/home"+hb.sub, hb.detail)
				}
			}
		default:
			seen |= bit
			if detail := p.value(bit, r, o); detail != "" && p.err == nil {
				addBad(bit, string(key), detail)
			}
		}
	})
	if p.err != nil {
		return bad
	}
	for _, req := range [...]struct {
		bit  fieldSet
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
		if len(bad) >= MaxFieldErrors {
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
func (p *parser) value(bit fieldSet, r *Report, o *optional) string {
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
		o.seq, o.has = v, o.has|fSeq
		return ""
	case fArmed:
		switch {
		case p.literal("true"):
			o.armed = true
		case p.literal("false"):
			o.armed = false
		default:
			return p.typeMismatch("a boolean")
		}
		o.has |= fArmed
		return ""
	case fMode:
		s, ok := p.str()
		if !ok {
			return p.typeMismatch("a string")
		}
		o.mode, o.has = string(s), o.has|fMode
		return ""
	}
	if bit >= 1<<firstIntBit {
		tok, ok := p.number()
		if !ok {
			return p.typeMismatch("an integer")
		}
		v, err := strconv.Atoi(string(tok))
		if err != nil {
			return fmt.Sprintf("%s is not an integer", tok)
		}
		o.ints[bits.TrailingZeros64(bit)-firstIntBit], o.has = v, o.has|bit
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
	default:
		o.numbers[bits.TrailingZeros64(bit)-firstNumberBit], o.has = v, o.has|bit
	}
	return ""
}

// homeProblem is one bad member of a report's home object: sub is the
// pointer below /home ("" for home itself).
type homeProblem struct{ sub, detail string }

// home parses the value of a report's home field into o: null (absent) or
// an object with lat and lon (required) and alt, strictly like a report.
func (p *parser) home(o *optional) []homeProblem {
	if p.literal("null") {
		return nil
	}
	if p.peek() != '{' {
		return []homeProblem{{"", p.typeMismatch("an object with lat, lon and optionally alt")}}
	}
	p.pos++
	var probs []homeProblem
	var seen uint8
	const hLat, hLon, hAlt = 1, 2, 4
	p.members(func(key []byte) {
		name := string(key)
		var bit uint8
		switch name {
		case "lat":
			bit = hLat
		case "lon":
			bit = hLon
		case "alt":
			bit = hAlt
		}
		switch {
		case bit == 0:
			p.skipValue()
			probs = append(probs, homeProblem{"/" + escapePointer(name), "unknown field"})
		case seen&bit != 0:
			p.skipValue()
			probs = append(probs, homeProblem{"/" + name, "duplicate field"})
		case p.literal("null"):
			seen |= bit
			if bit != hAlt {
				probs = append(probs, homeProblem{"/" + name, "required: must not be null"})
			}
		default:
			seen |= bit
			tok, ok := p.number()
			if !ok {
				probs = append(probs, homeProblem{"/" + name, p.typeMismatch("a number")})
				return
			}
			v, err := strconv.ParseFloat(string(tok), 64)
			if err != nil {
				probs = append(probs, homeProblem{"/" + name, fmt.Sprintf("%s is out of range", tok)})
				return
			}
			switch bit {
			case hLat:
				o.home.Lat = v
			case hLon:
				o.home.Lon = v
			default:
				o.homeAlt, o.hasAlt = v, true
			}
		}
	})
	if seen&hLat == 0 {
		probs = append(probs, homeProblem{"/lat", "required"})
	}
	if seen&hLon == 0 {
		probs = append(probs, homeProblem{"/lon", "required"})
	}
	o.has |= fHome
	return probs
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
		p.members(func([]byte) { p.skipDepth(depth + 1) })
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
