package events

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits a report must respect. They are part of the contract: ingest rejects
// what breaks them and process re-checks, so a bad event from any producer
// never reaches the store.
const (
	// MaxFutureSkew is how far ahead of the receiver's clock a report's ts may
	// be. Drone clocks drift; GPS time is good but not every drone has it.
	MaxFutureSkew = 5 * time.Minute
	// MaxAge is how old a report may be. Companion computers buffer while
	// offline and resend later; older than this is almost surely a broken clock.
	MaxAge = 30 * 24 * time.Hour

	// TimePrecision is how finely report times are kept. Firestore stores
	// timestamps to the microsecond, so ingest truncates every report's ts
	// to it (TruncateTimes) before publishing: the event, the history point,
	// the latest state and the cache then all hold the same instant, and
	// newer-wins comparisons never flip on nanoseconds one copy lost.
	TimePrecision = time.Microsecond

	MinAlt, MaxAlt = -500.0, 20000.0 // metres above mean sea level
	MaxSpeed       = 300.0           // m/s; faster than any multirotor or small fixed wing

	// MaxHeight bounds height above take-off either way: the span between
	// the lowest and highest altitude allowed.
	MaxHeight = MaxAlt - MinAlt
	// MaxAccuracy bounds hAcc and vAcc in metres. A phone's network fix
	// can be kilometres off; beyond this it is no position at all.
	MaxAccuracy = 100000.0
	// MaxFix is the highest MAVLink GPS_FIX_TYPE (FixPPP).
	MaxFix = FixPPP
	// MaxSatellites is the most satellites a report may count: wire
	// formats (MAVLink, NMEA) carry the count in one byte.
	MaxSatellites = 255
	// MaxModeLen is the longest flight mode name, in characters.
	MaxModeLen = 32
)

// FieldError names one bad field of a report and why it is bad. Field is the
// JSON name; Pointer is an RFC 6901 pointer into the request body.
type FieldError struct {
	Field   string `json:"field"`
	Pointer string `json:"pointer"`
	Detail  string `json:"detail"`
}

func (e FieldError) Error() string { return e.Pointer + ": " + e.Detail }

// ValidationError lists every bad field found, so a client fixes them all in
// one round trip instead of one per request.
type ValidationError []FieldError

func (v ValidationError) Error() string {
	parts := make([]string, len(v))
	for i, fe := range v {
		parts[i] = fe.Error()
	}
	return "invalid report: " + strings.Join(parts, "; ")
}

// Validate checks one report against the contract's ranges at time now.
// prefix is the JSON pointer of the report within its document ("" or "/3").
// It returns nil when the report is valid.
func (r Report) Validate(now time.Time, prefix string) []FieldError {
	var errs []FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Pointer: prefix + "/" + field, Detail: fmt.Sprintf(format, args...)})
	}
	switch {
	case r.TS.IsZero():
		bad("ts", "required: an RFC 3339 timestamp")
	case r.TS.After(now.Add(MaxFutureSkew)):
		bad("ts", "%s is more than %s in the future", r.TS.Format(time.RFC3339), MaxFutureSkew)
	case r.TS.Before(now.Add(-MaxAge)):
		bad("ts", "%s is older than %s", r.TS.Format(time.RFC3339), MaxAge)
	}
	checkRange := func(field string, v float64, lo, hi float64, hiOpen bool) {
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0):
			bad(field, "must be a finite number")
		case v < lo || v > hi || (hiOpen && v == hi):
			closing := "]"
			if hiOpen {
				closing = ")"
			}
			bad(field, "%g is outside [%g, %g%s", v, lo, hi, closing)
		}
	}
	checkRange("lat", r.Lat, -90, 90, false)
	checkRange("lon", r.Lon, -180, 180, false)
	if r.Alt != nil {
		checkRange("alt", *r.Alt, MinAlt, MaxAlt, false)
	}
	if r.Speed != nil {
		checkRange("speed", *r.Speed, 0, MaxSpeed, false)
	}
	if r.Heading != nil {
		checkRange("heading", *r.Heading, 0, 360, true)
	}
	if r.Battery != nil {
		checkRange("battery", *r.Battery, 0, 100, false)
	}
	if r.Mode != nil {
		switch m := *r.Mode; {
		case m == "":
			bad("mode", "must not be empty: leave the field out when the mode is unknown")
		case !utf8.ValidString(m):
			bad("mode", "must be valid UTF-8")
		case utf8.RuneCountInString(m) > MaxModeLen:
			bad("mode", "is %d characters long, at most %d allowed", utf8.RuneCountInString(m), MaxModeLen)
		case strings.IndexFunc(m, unicode.IsControl) >= 0:
			bad("mode", "must not contain control characters")
		}
	}
	if r.Fix != nil && (*r.Fix < 0 || *r.Fix > MaxFix) {
		bad("fix", "%d is outside [0, %d] (MAVLink GPS_FIX_TYPE)", *r.Fix, MaxFix)
	}
	if r.Satellites != nil && (*r.Satellites < 0 || *r.Satellites > MaxSatellites) {
		bad("satellites", "%d is outside [0, %d]", *r.Satellites, MaxSatellites)
	}
	if r.HAE != nil {
		checkRange("hae", *r.HAE, MinAlt, MaxAlt, false)
	}
	if r.Height != nil {
		checkRange("height", *r.Height, -MaxHeight, MaxHeight, false)
	}
	if r.VSpeed != nil {
		checkRange("vspeed", *r.VSpeed, -MaxSpeed, MaxSpeed, false)
	}
	if r.HAcc != nil {
		checkRange("hAcc", *r.HAcc, 0, MaxAccuracy, false)
	}
	if r.VAcc != nil {
		checkRange("vAcc", *r.VAcc, 0, MaxAccuracy, false)
	}
	if r.Link != nil {
		checkRange("link", *r.Link, 0, 100, false)
	}
	if h := r.Home; h != nil {
		// Field stays "home" so a client (and ingest's decoder) can tell
		// which report field is wrong; the pointer names the member.
		sub := func(member string, v, lo, hi float64) {
			switch {
			case math.IsNaN(v) || math.IsInf(v, 0):
				errs = append(errs, FieldError{Field: "home", Pointer: prefix + "/home/" + member, Detail: "must be a finite number"})
			case v < lo || v > hi:
				errs = append(errs, FieldError{Field: "home", Pointer: prefix + "/home/" + member,
					Detail: fmt.Sprintf("%g is outside [%g, %g]", v, lo, hi)})
			}
		}
		sub("lat", h.Lat, -90, 90)
		sub("lon", h.Lon, -180, 180)
		if h.Alt != nil {
			sub("alt", *h.Alt, MinAlt, MaxAlt)
		}
	}
	return errs
}

// Validate checks the event data as a consumer receives it.
func (t TelemetryReceived) Validate(now time.Time) error {
	var errs ValidationError
	if t.TenantID == "" {
		errs = append(errs, FieldError{Field: "tenantId", Pointer: "/tenantId", Detail: "required"})
	}
	if t.DroneID == "" {
		errs = append(errs, FieldError{Field: "droneId", Pointer: "/droneId", Detail: "required"})
	}
	if len(t.Reports) == 0 {
		errs = append(errs, FieldError{Field: "reports", Pointer: "/reports", Detail: "at least one report required"})
	}
	for i, r := range t.Reports {
		errs = append(errs, r.Validate(now, fmt.Sprintf("/reports/%d", i))...)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// TruncateTimes truncates each report's ts to TimePrecision, in place.
func TruncateTimes(reports []Report) {
	for i := range reports {
		reports[i].TS = reports[i].TS.Truncate(TimePrecision)
	}
}
