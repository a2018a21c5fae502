package cache

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dronetrack/dronetrack/core/cache/driver"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// DroneView is the JSON shape of one drone in the API and in notices. The
// cache stores it rendered; this type exists for readers that decode it.
type DroneView struct {
	ID    string             `json:"id"`
	Name  string             `json:"name"`
	State *events.DroneState `json:"state,omitempty"`
}

// BBox is a viewport: west, south, east, north edges in degrees. Boxes that
// cross the antimeridian are not supported (MinLon must not exceed MaxLon).
type BBox = driver.BBox

// ParseBBox reads "minLon,minLat,maxLon,maxLat" and checks ranges so callers
// can turn the error into a problem naming the bbox parameter.
func ParseBBox(s string) (BBox, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 4 {
		return BBox{}, fmt.Errorf("want minLon,minLat,maxLon,maxLat, got %d values", len(parts))
	}
	var v [4]float64
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return BBox{}, fmt.Errorf("value %d (%q) is not a number", i+1, p)
		}
		v[i] = f
	}
	b := BBox{MinLon: v[0], MinLat: v[1], MaxLon: v[2], MaxLat: v[3]}
	return b, b.Validate()
}

// member is one store drone being rendered into a list: pre-encoded JSON fragments, so
// rendering a list is concatenation, not encoding.
type member struct {
	id    string
	name  string // JSON string literal
	state string // JSON object, "" when the drone never reported
}

// sortableTS renders a timestamp so that string order equals time order
// (fixed-width nanoseconds since 1970; valid until 2262).
func sortableTS(t time.Time) string {
	return fmt.Sprintf("%020d", t.UnixNano())
}

// newEntry encodes a drone for Put: the stale guard compares TS, and the
// fragments are what the backends concatenate into rendered entries.
func newEntry(id string, name *string, st *events.DroneState) (driver.Entry, error) {
	e := driver.Entry{ID: id, IDJSON: jsonString(id)}
	if name != nil {
		e.Name = jsonString(*name)
	}
	if st != nil {
		if st.TS.IsZero() || st.TS.Year() < 1970 || st.TS.Year() > 2260 {
			return e, fmt.Errorf("drone %s: state timestamp %v out of range", id, st.TS)
		}
		if st.Lat < -90 || st.Lat > 90 || st.Lon < -180 || st.Lon > 180 ||
			math.IsNaN(st.Lat) || math.IsNaN(st.Lon) {
			return e, fmt.Errorf("drone %s: position %v,%v out of range", id, st.Lat, st.Lon)
		}
		// AppendJSON is json.Marshal's bytes without its copy and re-scan.
		b, err := st.AppendJSON(nil)
		if err != nil {
			return e, fmt.Errorf("drone %s: encode state: %w", id, err)
		}
		e.TS, e.State, e.Lon, e.Lat = sortableTS(st.TS), string(b), st.Lon, st.Lat
	}
	return e, nil
}

func entryFromDrone(d store.Drone) (driver.Entry, error) {
	return newEntry(d.ID, &d.Name, d.State)
}

// renderList joins rendered documents into a JSON array in id order.
func renderList(ms []member) []byte {
	slices.SortFunc(ms, func(a, b member) int { return strings.Compare(a.id, b.id) })
	n := 2
	for _, m := range ms {
		n += len(m.id) + len(m.name) + len(m.state) + 40
	}
	out := make([]byte, 0, n)
	out = append(out, '[')
	for i, m := range ms {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"id":`...)
		out = appendJSONString(out, m.id)
		out = append(out, `,"name":`...)
		if m.name == "" {
			out = append(out, `""`...)
		} else {
			out = append(out, m.name...)
		}
		if m.state != "" {
			out = append(out, `,"state":`...)
			out = append(out, m.state...)
		}
		out = append(out, '}')
	}
	return append(out, ']')
}

// renderDocs joins already rendered documents into a JSON array.
func renderDocs(docs []string) []byte {
	n := 2
	for _, d := range docs {
		n += len(d) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, '[')
	for i, d := range docs {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, d...)
	}
	return append(out, ']')
}

// RenderDrones renders store drones exactly as the cache does; serve-map uses
// it when it answers from the store because the cache is unavailable.
func RenderDrones(ds []store.Drone) ([]byte, error) {
	ms := make([]member, 0, len(ds))
	for _, d := range ds {
		e, err := entryFromDrone(d)
		if err != nil {
			return nil, err
		}
		ms = append(ms, member{id: d.ID, name: e.Name, state: e.State})
	}
	return renderList(ms), nil
}

// RenderDrone renders one store drone as the cache does.
func RenderDrone(d store.Drone) ([]byte, error) {
	e, err := entryFromDrone(d)
	if err != nil {
		return nil, err
	}
	return []byte(driver.RenderDoc(e.IDJSON, e.Name, e.State)), nil
}

func jsonString(s string) string { return string(appendJSONString(nil, s)) }

// appendJSONString quotes s as a JSON string, fast for the plain ids and
// names drones usually have.
func appendJSONString(dst []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			plain = false
			break
		}
	}
	if plain {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	b, _ := json.Marshal(s) // a string always encodes
	return append(dst, b...)
}

// Fleet is a rendered list of DroneView, as a JSON array sorted by drone id.
// Version is the tenant's change counter when the list was read; the content
// is at least that new, so it serves as an ETag. JSON is shared: do not
// modify it.
type Fleet struct {
	Version uint64
	JSON    []byte
	at      time.Time // when rendered
}
