package flights

import (
	"encoding/json"
	"fmt"
	"time"
)

// Instants are instants as Unix nanoseconds, oldest first: a detector's
// memory of the reports it applied (Detector.Applied). The store decodes,
// copies and encodes that memory with every write of a drone, so it is
// kept as plain integers (8 bytes each, nothing for the collector to scan)
// rather than time.Time (24 bytes with a Location pointer, and a calendar
// computation per time to encode). Only the instant matters: a report is
// found again by Equal, whatever its zone. The JSON form is unchanged, an
// array of RFC 3339 times (UTC when written).
type Instants []int64

// At is the i-th instant, in UTC.
func (s Instants) At(i int) time.Time { return time.Unix(0, s[i]).UTC() }

// MarshalJSON writes the instants as RFC 3339 times.
func (s Instants) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+len(s)*len(`"2006-01-02T15:04:05.999999999Z",`))
	b = append(b, '[')
	for i := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = s.At(i).AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	return append(b, ']'), nil
}

// UnmarshalJSON reads an array of RFC 3339 times (the form Detector had as
// []time.Time, with any offset). A time UnixNano cannot hold (outside years
// 1678-2262) is an error: no report is accepted that far from now.
func (s *Instants) UnmarshalJSON(b []byte) error {
	var ts []time.Time
	if err := json.Unmarshal(b, &ts); err != nil {
		return err
	}
	if ts == nil {
		*s = nil
		return nil
	}
	out := make(Instants, len(ts))
	for i, t := range ts {
		if !inNanoRange(t) {
			return fmt.Errorf("flights: applied time %s out of range", t.Format(time.RFC3339))
		}
		out[i] = t.UnixNano()
	}
	*s = out
	return nil
}

// inNanoRange reports whether t.UnixNano is t (years 1678-2262, less the
// range's outermost second).
func inNanoRange(t time.Time) bool {
	const limit = (1<<63 - 1) / int64(time.Second)
	s := t.Unix()
	return s > -limit && s < limit
}
