// Package osmand parses the OsmAnd live-tracking protocol as Traccar's
// OsmAndProtocolDecoder reads it, so trackers and phones running Traccar
// Client can report to Dronetrack without a firmware change.
//
// Two request shapes exist:
//
//   - Query/form style (OsmAnd, Traccar Client classic, countless trackers):
//     any HTTP method, parameters in the URL query or, when the query is
//     empty, in a form-encoded body. Parameters: id or deviceid (required),
//     timestamp (epoch seconds or milliseconds, ISO-8601, or
//     "yyyy-MM-dd HH:mm:ss" taken as UTC), lat+lon or location=lat,lon, speed
//     in KNOTS, bearing or heading (degrees), altitude (metres), accuracy
//     (metres, horizontal: the report's hAcc), hdop, batt (percent), charge,
//     valid; any other parameter is kept as an attribute.
//   - JSON style (Traccar Client 9+, built on a background-geolocation
//     library): {"device_id": "...", "location": {"timestamp": ISO,
//     "coords": {"latitude", "longitude", "speed" (m/s), "heading",
//     "altitude", "accuracy" (-> hAcc), "altitude_accuracy" (-> vAcc),
//     "ellipsoidal_altitude" (iOS; -> hae)}, "battery": {"level" 0..1,
//     "is_charging"}, "is_moving", ...}}; "location" may also be an array
//     (batched sync). -1 means "unknown" for speed, heading, the accuracies
//     and battery level. is_moving false with an unknown speed is speed 0:
//     the library has put the device in its stationary state.
//
// The package is pure: no I/O, no clock (callers pass now). It returns the
// device id and events.Report values in SI units, or events.FieldError
// values naming the offending parameter, so the ingest handler can answer
// with an RFC 9457 problem. Ranges are checked by Message.Validate, which
// runs events.Report.Validate and renames each error to the parameter the
// client actually sent ("bearing", not "heading").
package osmand

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dronetrack/dronetrack/events"
)

// KnotsToMPS converts knots, the unit of the OsmAnd "speed" parameter, to
// metres per second (1 kn = 1852 m / 3600 s).
const KnotsToMPS = 1852.0 / 3600.0

// MaxDeviceIDLen bounds the device id: it becomes a credential lookup, and a
// megabyte-long id is an attack, not a tracker.
const MaxDeviceIDLen = 256

// MaxPositions bounds a batched JSON body (the same limit as ingest's JSON API).
const MaxPositions = 500

// Message is one parsed request: the device that sent it and its positions
// (one for the query style, one or more for the JSON style).
type Message struct {
	DeviceID  string
	Positions []Position
}

// Position is one fix. Report carries what the Dronetrack contract knows;
// the rest of what OsmAnd clients send is kept beside it so nothing the
// device said is silently lost (ingest logs attributes, it does not store
// them: the contract has no place for them yet).
type Position struct {
	// Report carries what the contract has a field for, including the
	// horizontal accuracy ("accuracy") as Report.HAcc.
	Report events.Report
	// HDOP is the horizontal dilution of precision, when sent.
	HDOP *float64
	// Charging is the charge / battery.is_charging flag, when sent.
	Charging *bool
	// Valid is false when the device flagged the fix as invalid (valid=false
	// or valid=0); such a fix should not move the drone on the map.
	Valid bool
	// Attributes are the parameters this package does not interpret, by
	// name, as sent (JSON values as their JSON text, strings unquoted).
	Attributes map[string]string

	// names maps a Report JSON field (lat, lon, ts, alt, speed, heading,
	// battery) to the parameter name / JSON pointer it came from.
	names map[string]source
}

type source struct{ field, pointer string }

func (p *Position) from(reportField, param, pointer string) {
	if p.names == nil {
		p.names = map[string]source{}
	}
	p.names[reportField] = source{param, pointer}
}

// Validate checks every position's report against the contract at now and
// returns the errors named by the parameters the client sent.
func (m Message) Validate(now time.Time) []events.FieldError {
	var errs []events.FieldError
	for i, p := range m.Positions {
		for _, fe := range p.Report.Validate(now, "") {
			if s, ok := p.names[fe.Field]; ok {
				fe.Field, fe.Pointer = s.field, s.pointer
			} else if len(m.Positions) > 1 {
				fe.Pointer = "/location/" + strconv.Itoa(i) + fe.Pointer
			}
			errs = append(errs, fe)
		}
	}
	return errs
}

// Parse reads a request the way Traccar does: parameters from the URL query;
// when there are none, a JSON body (by Content-Type, or a body that starts
// with '{') or else a form-encoded body. now is the receiver's clock, used
// as the timestamp of a position that carries none (as Traccar does).
func Parse(rawQuery, contentType string, body []byte, now time.Time) (Message, []events.FieldError) {
	if strings.TrimSpace(rawQuery) != "" {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return Message{}, []events.FieldError{{Field: "query", Pointer: "", Detail: "malformed query string: " + err.Error()}}
		}
		return ParseQuery(q, now)
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	trimmed := bytes.TrimSpace(body)
	if mt == "application/json" || strings.HasSuffix(mt, "+json") || (len(trimmed) > 0 && trimmed[0] == '{') {
		return ParseJSON(body, now)
	}
	q, err := url.ParseQuery(string(trimmed))
	if err != nil {
		return Message{}, []events.FieldError{{Field: "body", Pointer: "", Detail: "malformed form body: " + err.Error()}}
	}
	return ParseQuery(q, now)
}

// ParseQuery reads the query/form style. A parameter given several times
// takes its last value (as Traccar), except the device id, which must not
// disagree with itself. Errors name the parameter in Field and point at it
// as "/name" (the parameters seen as one flat object).
func ParseQuery(q url.Values, now time.Time) (Message, []events.FieldError) {
	var (
		m    Message
		p    = Position{Valid: true}
		errs []events.FieldError
	)
	bad := func(param, format string, args ...any) {
		errs = append(errs, events.FieldError{Field: param, Pointer: "/" + param, Detail: fmt.Sprintf(format, args...)})
	}
	num := func(param string) (float64, bool) {
		v := last(q[param])
		f, err := parseFloat(v)
		if err != nil {
			bad(param, "%q is not a number", clip(v))
			return 0, false
		}
		return f, true
	}

	// Keys in sorted order so errors come out deterministically.
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)

	idParam := ""
	var haveLat, haveLon bool
	for _, k := range names {
		vs := q[k]
		if len(vs) == 0 {
			continue
		}
		switch k {
		case "id", "deviceid":
			for _, v := range vs {
				switch {
				case v == "":
					bad(k, "must not be empty")
				case len(v) > MaxDeviceIDLen:
					bad(k, "longer than %d characters", MaxDeviceIDLen)
				case m.DeviceID == "":
					m.DeviceID, idParam = v, k
				case v != m.DeviceID:
					bad(k, "disagrees with %s given earlier in the request", idParam)
				}
			}
		case "valid":
			v := last(vs)
			p.Valid = strings.EqualFold(v, "true") || v == "1"
		case "timestamp":
			v := last(vs)
			ts, err := ParseTimestamp(v)
			if err != nil {
				bad(k, "%s", err.Error())
				continue
			}
			p.Report.TS = ts
			p.from("ts", k, "/"+k)
		case "lat":
			if f, ok := num(k); ok {
				p.Report.Lat, haveLat = f, true
				p.from("lat", k, "/"+k)
			}
		case "lon":
			if f, ok := num(k); ok {
				p.Report.Lon, haveLon = f, true
				p.from("lon", k, "/"+k)
			}
		case "location":
			v := last(vs)
			lat, lon, ok := strings.Cut(v, ",")
			if !ok {
				bad(k, "%q: want lat,lon", clip(v))
				continue
			}
			la, err1 := parseFloat(lat)
			lo, err2 := parseFloat(lon)
			if err1 != nil || err2 != nil {
				bad(k, "%q: want two numbers lat,lon", clip(v))
				continue
			}
			p.Report.Lat, p.Report.Lon, haveLat, haveLon = la, lo, true, true
			p.from("lat", k, "/"+k)
			p.from("lon", k, "/"+k)
		case "speed":
			if f, ok := num(k); ok && f >= 0 { // negative: "unknown", as phones report it
				s := f * KnotsToMPS
				p.Report.Speed = &s
				p.from("speed", k, "/"+k)
			}
		case "bearing", "heading":
			if f, ok := num(k); ok {
				if h, known := normHeading(f); known {
					p.Report.Heading = &h
					p.from("heading", k, "/"+k)
				}
			}
		case "altitude":
			if f, ok := num(k); ok {
				p.Report.Alt = &f
				p.from("alt", k, "/"+k)
			}
		case "accuracy":
			if f, ok := num(k); ok && f >= 0 { // negative: unknown
				p.Report.HAcc = &f
				p.from("hAcc", k, "/"+k)
			}
		case "hdop":
			if f, ok := num(k); ok {
				p.HDOP = &f
			}
		case "batt":
			if f, ok := num(k); ok && f >= 0 {
				p.Report.Battery = &f
				p.from("battery", k, "/"+k)
			}
		case "charge":
			v := last(vs)
			c := strings.EqualFold(v, "true") || v == "1"
			p.Charging = &c
		default:
			if p.Attributes == nil {
				p.Attributes = map[string]string{}
			}
			p.Attributes[k] = last(vs)
		}
	}
	if m.DeviceID == "" && !hasKey(q, "id") && !hasKey(q, "deviceid") {
		bad("id", "required: the device identifier (id or deviceid)")
	}
	if !haveLat && !q.Has("lat") && !q.Has("location") {
		bad("lat", "required: lat and lon, or location=lat,lon")
	}
	if !haveLon && !q.Has("lon") && !q.Has("location") {
		bad("lon", "required: lat and lon, or location=lat,lon")
	}
	if p.Report.TS.IsZero() && !q.Has("timestamp") {
		p.Report.TS = now.UTC()
	}
	if len(errs) > 0 {
		return Message{}, errs
	}
	m.Positions = []Position{p}
	return m, nil
}

// ParseTimestamp reads an OsmAnd timestamp: integer epoch seconds, or
// milliseconds when the value is at least 2^31-1 (Traccar's rule: seconds
// would be after 2038), optionally with a fraction; ISO-8601 with or
// without a zone (no zone means UTC); or "yyyy-MM-dd HH:mm:ss" in UTC.
func ParseTimestamp(v string) (time.Time, error) {
	s := strings.TrimSpace(v)
	if s == "" {
		return time.Time{}, errors.New("empty: want epoch seconds or milliseconds, or an ISO-8601 time")
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && isDecimal(s) {
		if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e15 {
			return time.Time{}, fmt.Errorf("%q is out of range for an epoch time", clip(s))
		}
		ms := f * 1000
		if f >= math.MaxInt32 {
			ms = f
		}
		// Round to the millisecond: float64 seconds*1000 is not exact.
		return time.UnixMilli(int64(math.Round(ms))).UTC(), nil
	}
	for _, layout := range isoLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want epoch seconds or milliseconds, ISO-8601, or yyyy-MM-dd HH:mm:ss", clip(s))
}

var isoLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700", // +0000 without a colon
	"2006-01-02T15:04:05.999999999",      // no zone: UTC
	"2006-01-02T15:04Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04:05Z07:00",
}

// isDecimal accepts digits with at most one dot, nothing else (ParseFloat
// also takes "1e9", "Inf", hex and underscores, which no tracker sends).
func isDecimal(s string) bool {
	dot := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return s != "."
}

// parseFloat reads a decimal number, refusing NaN, Inf and hex forms.
func parseFloat(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E') {
			return 0, errors.New("not a decimal number")
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, errors.New("not a finite number")
	}
	return f, nil
}

// normHeading maps a course in degrees to [0, 360). Negative means unknown
// (Android and iOS report -1); 360 is north, as is 0.
func normHeading(h float64) (float64, bool) {
	if h < 0 {
		return 0, false
	}
	if h == 360 {
		return 0, true
	}
	return h, true // > 360 is left for Validate to reject by name
}

func last(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

func hasKey(q url.Values, k string) bool { _, ok := q[k]; return ok }

// clip shortens a client value quoted back in an error.
func clip(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// jsonBody is Traccar Client's JSON shape.
type jsonBody struct {
	DeviceID json.RawMessage `json:"device_id"`
	Location json.RawMessage `json:"location"`
}

type jsonLocation struct {
	Timestamp *string `json:"timestamp"`
	Coords    *struct {
		Latitude  *float64 `json:"latitude"`
		Longitude *float64 `json:"longitude"`
		Speed     *float64 `json:"speed"`
		Heading   *float64 `json:"heading"`
		Altitude  *float64 `json:"altitude"`
		Accuracy  *float64 `json:"accuracy"`
		// Traccar Client 9: vertical accuracy, and (iOS) the altitude
		// above the WGS84 ellipsoid beside the one above sea level.
		AltitudeAccuracy    *float64 `json:"altitude_accuracy"`
		EllipsoidalAltitude *float64 `json:"ellipsoidal_altitude"`
	} `json:"coords"`
	IsMoving *bool `json:"is_moving"`
	Battery  *struct {
		Level      *float64 `json:"level"`
		IsCharging *bool    `json:"is_charging"`
	} `json:"battery"`
}

// ParseJSON reads Traccar Client's JSON body. "location" is one object or an
// array of them (batched sync). Errors point into the body (RFC 6901).
func ParseJSON(body []byte, now time.Time) (Message, []events.FieldError) {
	var (
		m    Message
		errs []events.FieldError
	)
	bad := func(field, pointer, format string, args ...any) {
		errs = append(errs, events.FieldError{Field: field, Pointer: pointer, Detail: fmt.Sprintf(format, args...)})
	}
	var b jsonBody
	if err := json.Unmarshal(body, &b); err != nil {
		bad("body", "", "not a JSON object of the Traccar Client shape: %s", jsonErr(err))
		return Message{}, errs
	}
	switch id := bytes.TrimSpace(b.DeviceID); {
	case len(id) == 0 || string(id) == "null":
		bad("device_id", "/device_id", "required: the device identifier")
	default:
		var s string
		if err := json.Unmarshal(id, &s); err != nil {
			var n json.Number
			if err := json.Unmarshal(id, &n); err != nil {
				bad("device_id", "/device_id", "must be a string")
				break
			}
			s = n.String()
		}
		switch {
		case s == "":
			bad("device_id", "/device_id", "must not be empty")
		case len(s) > MaxDeviceIDLen:
			bad("device_id", "/device_id", "longer than %d characters", MaxDeviceIDLen)
		default:
			m.DeviceID = s
		}
	}

	var raws []json.RawMessage
	var prefixes []string
	loc := bytes.TrimSpace(b.Location)
	switch {
	case len(loc) == 0 || string(loc) == "null":
		bad("location", "/location", "required: the location object")
	case loc[0] == '[':
		if err := json.Unmarshal(loc, &raws); err != nil {
			bad("location", "/location", "must be an object or an array of objects")
			break
		}
		if len(raws) == 0 {
			bad("location", "/location", "empty array: send at least one location")
		}
		if len(raws) > MaxPositions {
			bad("location", "/location", "too many locations: at most %d per request", MaxPositions)
			raws = nil
		}
		for i := range raws {
			prefixes = append(prefixes, "/location/"+strconv.Itoa(i))
		}
	default:
		raws, prefixes = []json.RawMessage{loc}, []string{"/location"}
	}

	for i, raw := range raws {
		p, perrs := parseJSONLocation(raw, prefixes[i], now)
		errs = append(errs, perrs...)
		if len(perrs) == 0 {
			m.Positions = append(m.Positions, p)
		}
	}
	if len(errs) > 0 {
		return Message{}, errs
	}
	return m, nil
}

func parseJSONLocation(raw json.RawMessage, prefix string, now time.Time) (Position, []events.FieldError) {
	var errs []events.FieldError
	bad := func(field, pointer, format string, args ...any) {
		errs = append(errs, events.FieldError{Field: field, Pointer: pointer, Detail: fmt.Sprintf(format, args...)})
	}
	var l jsonLocation
	if err := json.Unmarshal(raw, &l); err != nil {
		field, pointer := "location", prefix
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			pointer = prefix + "/" + strings.ReplaceAll(te.Field, ".", "/")
			field = te.Field[strings.LastIndexByte(te.Field, '.')+1:]
		}
		bad(field, pointer, "%s", jsonErr(err))
		return Position{}, errs
	}
	var rest map[string]json.RawMessage
	_ = json.Unmarshal(raw, &rest) // raw already parsed as an object above

	p := Position{Valid: true}
	if l.Timestamp != nil {
		ts, err := ParseTimestamp(*l.Timestamp)
		if err != nil {
			bad("timestamp", prefix+"/timestamp", "%s", err.Error())
		} else {
			p.Report.TS = ts
			p.from("ts", "timestamp", prefix+"/timestamp")
		}
	} else {
		p.Report.TS = now.UTC()
	}
	c := l.Coords
	if c == nil {
		bad("coords", prefix+"/coords", "required: latitude and longitude")
	} else {
		cp := prefix + "/coords"
		if c.Latitude == nil {
			bad("latitude", cp+"/latitude", "required")
		} else {
			p.Report.Lat = *c.Latitude
			p.from("lat", "latitude", cp+"/latitude")
		}
		if c.Longitude == nil {
			bad("longitude", cp+"/longitude", "required")
		} else {
			p.Report.Lon = *c.Longitude
			p.from("lon", "longitude", cp+"/longitude")
		}
		if c.Speed != nil && *c.Speed >= 0 { // m/s already; -1 is unknown
			s := *c.Speed
			p.Report.Speed = &s
			p.from("speed", "speed", cp+"/speed")
		}
		if c.Heading != nil {
			if h, known := normHeading(*c.Heading); known {
				p.Report.Heading = &h
				p.from("heading", "heading", cp+"/heading")
			}
		}
		if c.Altitude != nil {
			a := *c.Altitude
			p.Report.Alt = &a
			p.from("alt", "altitude", cp+"/altitude")
		}
		if c.Accuracy != nil && *c.Accuracy >= 0 { // -1: unknown
			a := *c.Accuracy
			p.Report.HAcc = &a
			p.from("hAcc", "accuracy", cp+"/accuracy")
		}
		if c.AltitudeAccuracy != nil && *c.AltitudeAccuracy >= 0 {
			a := *c.AltitudeAccuracy
			p.Report.VAcc = &a
			p.from("vAcc", "altitude_accuracy", cp+"/altitude_accuracy")
		}
		if c.EllipsoidalAltitude != nil {
			a := *c.EllipsoidalAltitude
			p.Report.HAE = &a
			p.from("hae", "ellipsoidal_altitude", cp+"/ellipsoidal_altitude")
		}
		if cr, ok := rest["coords"]; ok {
			var cm map[string]json.RawMessage
			if json.Unmarshal(cr, &cm) == nil {
				for k, v := range cm {
					switch k {
					case "latitude", "longitude", "speed", "heading", "altitude", "accuracy",
						"altitude_accuracy", "ellipsoidal_altitude":
					default:
						p.attr("coords."+k, v)
					}
				}
			}
		}
	}
	if l.IsMoving != nil && !*l.IsMoving && p.Report.Speed == nil {
		// Stationary by the library's motion detection, and no speed of
		// its own: standing still is what the flight rules need to know.
		zero := 0.0
		p.Report.Speed = &zero
		p.from("speed", "is_moving", prefix+"/is_moving")
	}
	if bt := l.Battery; bt != nil {
		if bt.Level != nil && *bt.Level >= 0 { // -1: unknown (simulators, desktops)
			pct := math.Round(*bt.Level*100*1000) / 1000 // 0.79 -> 79, not 79.00000000000001
			p.Report.Battery = &pct
			p.from("battery", "level", prefix+"/battery/level")
		}
		if bt.IsCharging != nil {
			ch := *bt.IsCharging
			p.Charging = &ch
		}
	}
	for k, v := range rest {
		switch k {
		case "timestamp", "coords", "battery":
		case "extras":
			var em map[string]json.RawMessage
			if json.Unmarshal(v, &em) == nil {
				for ek, ev := range em {
					p.attr(ek, ev)
				}
			} else {
				p.attr(k, v)
			}
		case "activity":
			var a struct {
				Type *string `json:"type"`
			}
			if json.Unmarshal(v, &a) == nil && a.Type != nil {
				p.attr("activity", json.RawMessage(strconv.Quote(*a.Type)))
			} else {
				p.attr(k, v)
			}
		case "is_moving":
			p.attr("motion", v)
		default:
			p.attr(k, v)
		}
	}
	return p, errs
}

// attr stores a JSON value as an attribute: strings unquoted, the rest as
// their JSON text.
func (p *Position) attr(k string, v json.RawMessage) {
	if p.Attributes == nil {
		p.Attributes = map[string]string{}
	}
	v = bytes.TrimSpace(v)
	var s string
	if len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &s) == nil {
		p.Attributes[k] = s
		return
	}
	p.Attributes[k] = string(v)
}

// jsonErr turns an encoding/json error into a short client-facing message.
func jsonErr(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("%s: got a JSON %s, want a %s", te.Field, te.Value, jsonKind(te.Type.Kind().String()))
		}
		return fmt.Sprintf("got a JSON %s, want an object", te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, se.Error())
	}
	return err.Error()
}

func jsonKind(k string) string {
	switch k {
	case "float64":
		return "number"
	case "ptr", "struct", "map":
		return "object"
	case "slice":
		return "array"
	}
	return k
}
