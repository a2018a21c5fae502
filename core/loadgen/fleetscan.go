package loadgen

import (
	"bytes"
	"errors"
	"time"
)

// fleetState is one drone of a fleet list: its id and its state's ts (raw
// RFC 3339 text; empty when the drone has no state).
type fleetState struct {
	id, ts []byte
}

var errFleetSyntax = errors.New("fleet list: not the expected JSON")

// scanFleet calls fn for each drone of a fleet API body
// ({"drones":[{"id":…,"state":{"ts":…,…},…},…]}) without decoding the rest:
// the generator reads a list of every drone several times a second, and
// encoding/json spent most of the generator's CPU on fields it drops. It
// tracks nesting and skips strings (escapes included), so only the drone
// object's own "id" and its state's own "ts" are taken, wherever they sit
// in the object. The slices passed to fn point into body.
func scanFleet(body []byte, fn func(fleetState)) error { return scanDrones(body, 3, fn) }

// scanDrone is scanFleet for one drone object (a live stream event's data).
func scanDrone(body []byte, fn func(fleetState)) error { return scanDrones(body, 1, fn) }

// scanDrones calls fn for each drone object at depth dd: 3 in a fleet list
// (1 the top object, 2 its "drones" array), 1 for a lone drone. The
// drone's state is at depth dd+1 when the key that opened it was "state".
func scanDrones(body []byte, dd int, fn func(fleetState)) error {
	depth := 0
	inDrones := dd == 1 // the depth-2 array is "drones" (or no array)
	inState := false    // the depth-4 object is the drone's state
	var key []byte      // the last key read at the current depth
	var cur fleetState  // the drone being read
	expectKey := false  // the next string at this depth is a key
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch c {
		case ' ', '\t', '\r', '\n', ':':
		case ',':
			if depth != 2 || dd != 3 {
				expectKey = true
			}
		case '{':
			depth++
			expectKey = true
			if depth == dd && inDrones {
				cur = fleetState{}
			}
			if depth == dd+1 {
				inState = inDrones && string(key) == "state"
			}
			key = nil
		case '[':
			depth++
			if depth == 2 && dd == 3 {
				inDrones = string(key) == "drones"
			}
			expectKey = false
			key = nil
		case '}', ']':
			if depth == dd && inDrones && c == '}' && cur.id != nil {
				fn(cur)
			}
			if depth == dd+1 {
				inState = false
			}
			depth--
			if depth < 0 {
				return errFleetSyntax
			}
			expectKey = false
		case '"':
			j := stringEnd(body, i+1)
			if j < 0 {
				return errFleetSyntax
			}
			s := body[i+1 : j]
			i = j
			if expectKey {
				key, expectKey = s, false
				continue
			}
			switch {
			case depth == dd && inDrones && string(key) == "id":
				cur.id = s
			case depth == dd+1 && inState && string(key) == "ts":
				cur.ts = s
			}
		default:
			// A number, true, false or null: nothing to take.
		}
	}
	if depth != 0 {
		return errFleetSyntax
	}
	return nil
}

// stringEnd is the index of the quote closing the string that starts at
// from (just after its opening quote), or -1. It jumps from quote to quote:
// most of a fleet list is inside strings.
func stringEnd(body []byte, from int) int {
	for {
		k := bytes.IndexByte(body[from:], '"')
		if k < 0 {
			return -1
		}
		j := from + k
		// Escaped when preceded by an odd run of backslashes.
		n := 0
		for b := j - 1; b >= 0 && body[b] == '\\'; b-- {
			n++
		}
		if n%2 == 0 {
			return j
		}
		from = j + 1
	}
}

// parseTS parses a state ts as the server writes it (RFC 3339).
func parseTS(b []byte) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, string(b))
}
