package alerting

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/dronetrack/dronetrack/events"
)

// Alert kinds.
const (
	KindBatteryLow        = "battery.low"
	KindBatteryExhaustion = "battery.exhaustion"
	KindGeofence          = "geofence.breach"
	KindLinkLost          = "link.lost"
)

// exhaustionRelease is the factor above MinTimeToEmptySecs at which an open
// exhaustion alert closes: drain estimates wobble, and a wobble must not
// flap the alert.
const exhaustionRelease = 1.2

// Settings are a tenant's alert thresholds.
type Settings struct {
	LowBatteryPct      float64 `json:"lowBatteryPct"`
	HysteresisPct      float64 `json:"hysteresisPct"`
	MinTimeToEmptySecs float64 `json:"minTimeToEmptySecs"` // 0 disables battery.exhaustion
	LostLinkSecs       float64 `json:"lostLinkSecs"`       // 0 disables link.lost
	// NotifyStaleSecs is the staleness limit of notifications (core/notify):
	// a transition older than this is not emailed or posted to chat. 0 is
	// notify.DefaultStaleAfter (15 min).
	NotifyStaleSecs float64 `json:"notifyStaleSecs,omitempty"`
}

// DefaultSettings apply to a tenant that saved none.
func DefaultSettings() Settings {
	return Settings{LowBatteryPct: 20, HysteresisPct: 5, MinTimeToEmptySecs: 300, LostLinkSecs: 60}
}

// FieldError names the field of an input that is wrong, for problem replies.
type FieldError struct {
	Field, Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Validate reports the first field out of range.
func (s Settings) Validate() error {
	switch {
	case s.LowBatteryPct < 0 || s.LowBatteryPct > 100:
		return &FieldError{"lowBatteryPct", "must be within [0, 100]"}
	case s.HysteresisPct < 0 || s.HysteresisPct > 50:
		return &FieldError{"hysteresisPct", "must be within [0, 50]"}
	case s.MinTimeToEmptySecs < 0:
		return &FieldError{"minTimeToEmptySecs", "must not be negative"}
	case s.LostLinkSecs != 0 && s.LostLinkSecs < 1:
		return &FieldError{"lostLinkSecs", "must be 0 (off) or at least 1"}
	case s.NotifyStaleSecs != 0 && (s.NotifyStaleSecs < 10 || s.NotifyStaleSecs > 86400):
		return &FieldError{"notifyStaleSecs", "must be 0 (default, 15 min) or within [10, 86400]"}
	}
	return nil
}

// Alert is one episode of a condition on a drone, as stored and listed.
type Alert struct {
	ID             string     `json:"id"`
	TenantID       string     `json:"tenantId"`
	DroneID        string     `json:"droneId"`
	Kind           string     `json:"kind"`
	FenceID        string     `json:"fenceId,omitempty"`
	Message        string     `json:"message"`
	OpenedAt       time.Time  `json:"openedAt"`
	UpdatedAt      time.Time  `json:"updatedAt"`
	ClosedAt       *time.Time `json:"closedAt,omitempty"`
	AcknowledgedBy string     `json:"acknowledgedBy,omitempty"`
	AcknowledgedAt *time.Time `json:"acknowledgedAt,omitempty"`
	// Battery and TimeToEmptySecs are the drone's readings in the state
	// that opened or, once closed, closed the episode (absent when it had
	// none, and for link checks): notifications quote them as they were,
	// however late they are sent.
	Battery         *float64 `json:"battery,omitempty"`
	TimeToEmptySecs *float64 `json:"timeToEmptySecs,omitempty"`
}

// Open reports whether the episode is still going on.
func (a Alert) Open() bool { return a.ClosedAt == nil }

// Event is the CloudEvent data of the alert's raised or resolved event.
func (a Alert) Event() events.Alert {
	return events.Alert{ID: a.ID, TenantID: a.TenantID, DroneID: a.DroneID, Kind: a.Kind, FenceID: a.FenceID,
		Message: a.Message, OpenedAt: a.OpenedAt, ResolvedAt: a.ClosedAt, Battery: a.Battery,
		TimeToEmptySecs: a.TimeToEmptySecs}
}

// Transition is a change to one alert. Type is events.TypeAlertRaised or
// events.TypeAlertResolved, or empty for an update that emits no event.
type Transition struct {
	Type  string `json:"type,omitempty"`
	Alert Alert  `json:"alert"`
}

// EventID is the CloudEvent id of a raised or resolved transition
// (events.NewAlert derives the same).
func (t Transition) EventID() string {
	return events.AlertEventID(t.Alert.ID, t.Alert.ClosedAt != nil)
}

// Tracker is a drone's alert memory: the newest state evaluated, when it was
// seen, and the open episodes. Outbox holds raised/resolved transitions not
// yet published; the evaluator removes them once the events are out, so a
// crash between the store write and the publish re-sends instead of losing.
type Tracker struct {
	TenantID string           `json:"tenantId"`
	DroneID  string           `json:"droneId"`
	LastTS   time.Time        `json:"lastTs"`   // drone clock of the newest state evaluated
	LastSeen time.Time        `json:"lastSeen"` // server time that state was accepted
	LinkLost bool             `json:"linkLost"` // a link.lost episode is open (the link check skips it)
	Open     map[string]Alert `json:"open,omitempty"`
	Outbox   []Transition     `json:"outbox,omitempty"`
	// Claims lease outbox entries (by event id) to the one evaluator
	// publishing them, so concurrent deliveries for the drone do not send
	// (and call webhooks for) the same transition twice. A lease that
	// expires (its holder crashed) lets the next evaluator take it over.
	Claims map[string]time.Time `json:"claims,omitempty"`
}

// Key identifies an episode's condition within a drone.
func Key(kind, fenceID string) string {
	if fenceID == "" {
		return kind
	}
	return kind + "/" + fenceID
}

// AlertID is deterministic in (tenant, drone, kind, fence, opening time), so
// rewriting an episode after a retried transaction lands on the same record.
func AlertID(tenantID, droneID, kind, fenceID string, openedAt time.Time) string {
	h := sha256.New()
	for _, s := range []string{tenantID, droneID, kind, fenceID, openedAt.UTC().Format(time.RFC3339Nano)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

type condition struct {
	kind, fenceID, message string
}

// EvaluateState applies a drone's newest state to its tracker. It returns
// false (and no transitions) when the state is not newer than the last one
// evaluated: a late or redelivered state.updated changes nothing. Transition
// times are the state's UpdatedAt (server clock), or now when it has none.
func EvaluateState(tr Tracker, st events.DroneState, s Settings, fences []Fence, now time.Time) (Tracker, []Transition, bool) {
	if !tr.LastTS.IsZero() && !st.TS.After(tr.LastTS) {
		return tr, nil, false
	}
	tr = clone(tr)
	at := st.UpdatedAt
	if at.IsZero() {
		at = now
	}
	at = at.UTC()
	tr.LastTS = st.TS.UTC()
	if at.After(tr.LastSeen) {
		tr.LastSeen = at
	}

	var conds []condition
	if st.Battery != nil {
		_, open := tr.Open[Key(KindBatteryLow, "")]
		b := *st.Battery
		if b < s.LowBatteryPct || (open && b <= s.LowBatteryPct+s.HysteresisPct) {
			conds = append(conds, condition{KindBatteryLow, "", fmt.Sprintf("battery below %g%%", s.LowBatteryPct)})
		}
	}
	if s.MinTimeToEmptySecs > 0 && st.TimeToEmptySecs != nil {
		_, open := tr.Open[Key(KindBatteryExhaustion, "")]
		tte := *st.TimeToEmptySecs
		if tte < s.MinTimeToEmptySecs || (open && tte <= s.MinTimeToEmptySecs*exhaustionRelease) {
			conds = append(conds, condition{KindBatteryExhaustion, "",
				fmt.Sprintf("battery predicted empty within %g s", s.MinTimeToEmptySecs)})
		}
	}
	for _, f := range fences {
		if f.Breached(st.Lat, st.Lon) {
			conds = append(conds, condition{KindGeofence, f.ID, f.breachMessage()})
		}
	}
	// A newer state is a sign of life: any lost-link episode ends here.
	ts := apply(&tr, conds, func(string) bool { return true }, at, &st)
	return tr, ts, true
}

// EvaluateLink is the lost-link check at time now: a drone whose newest
// state was accepted more than LostLinkSecs ago gets a link.lost alert. A
// drone never seen is not checked. It returns false when nothing changed.
func EvaluateLink(tr Tracker, s Settings, now time.Time) (Tracker, []Transition, bool) {
	if tr.LastSeen.IsZero() || s.LostLinkSecs <= 0 {
		return tr, nil, false
	}
	lost := now.Sub(tr.LastSeen) > time.Duration(s.LostLinkSecs*float64(time.Second))
	if lost == tr.LinkLost {
		return tr, nil, false
	}
	tr = clone(tr)
	var conds []condition
	if lost {
		conds = append(conds, condition{KindLinkLost, "", fmt.Sprintf("no report for more than %g s", s.LostLinkSecs)})
	}
	ts := apply(&tr, conds, func(kind string) bool { return kind == KindLinkLost }, now.UTC(), nil)
	return tr, ts, len(ts) > 0
}

// apply opens, updates and closes episodes so the open set matches conds
// for the kinds in scope. Episodes opened or closed carry st's readings
// (nil: none).
func apply(tr *Tracker, conds []condition, inScope func(kind string) bool, at time.Time, st *events.DroneState) []Transition {
	reading := func(a *Alert) {
		a.Battery, a.TimeToEmptySecs = nil, nil
		if st == nil {
			return
		}
		if st.Battery != nil {
			v := *st.Battery
			a.Battery = &v
		}
		if st.TimeToEmptySecs != nil {
			v := *st.TimeToEmptySecs
			a.TimeToEmptySecs = &v
		}
	}
	var out []Transition
	seen := map[string]bool{}
	for _, c := range conds {
		k := Key(c.kind, c.fenceID)
		seen[k] = true
		if a, ok := tr.Open[k]; ok {
			if a.Message != c.message {
				a.Message, a.UpdatedAt = c.message, at
				tr.Open[k] = a
				out = append(out, Transition{Alert: a})
			}
			continue
		}
		a := Alert{ID: AlertID(tr.TenantID, tr.DroneID, c.kind, c.fenceID, at), TenantID: tr.TenantID,
			DroneID: tr.DroneID, Kind: c.kind, FenceID: c.fenceID, Message: c.message, OpenedAt: at, UpdatedAt: at}
		reading(&a)
		tr.Open[k] = a
		out = append(out, Transition{Type: events.TypeAlertRaised, Alert: a})
	}
	for _, k := range slices.Sorted(maps.Keys(tr.Open)) {
		a := tr.Open[k]
		if seen[k] || !inScope(a.Kind) {
			continue
		}
		closed := at
		a.ClosedAt, a.UpdatedAt = &closed, at
		reading(&a)
		delete(tr.Open, k)
		out = append(out, Transition{Type: events.TypeAlertResolved, Alert: a})
	}
	_, tr.LinkLost = tr.Open[Key(KindLinkLost, "")]
	for _, t := range out {
		if t.Type != "" {
			tr.Outbox = append(tr.Outbox, t)
		}
	}
	return out
}

// Claim leases the outbox entries nobody holds (or whose lease ended) to
// the caller until now+lease and returns them in outbox order; false when
// there was nothing to claim.
func Claim(tr Tracker, now time.Time, lease time.Duration) (Tracker, []Transition, bool) {
	var free []Transition
	for _, t := range tr.Outbox {
		if until, held := tr.Claims[t.EventID()]; !held || !now.Before(until) {
			free = append(free, t)
		}
	}
	if len(free) == 0 {
		return tr, nil, false
	}
	tr = clone(tr)
	for _, t := range free {
		tr.Claims[t.EventID()] = now.Add(lease).UTC()
	}
	return tr, free, true
}

// Published removes the transitions whose events are out from the outbox
// and releases the claims on those that failed (failed may be nil), so the
// next evaluator retries them. It returns false when nothing changed.
func Published(tr Tracker, eventIDs, failed []string) (Tracker, bool) {
	tr = clone(tr)
	n, c := len(tr.Outbox), len(tr.Claims)
	tr.Outbox = slices.DeleteFunc(tr.Outbox, func(t Transition) bool { return slices.Contains(eventIDs, t.EventID()) })
	for _, id := range append(slices.Clone(eventIDs), failed...) {
		delete(tr.Claims, id)
	}
	return tr, len(tr.Outbox) != n || len(tr.Claims) != c
}

func clone(tr Tracker) Tracker {
	tr.Open = maps.Clone(tr.Open)
	if tr.Open == nil {
		tr.Open = map[string]Alert{}
	}
	tr.Outbox = slices.Clone(tr.Outbox)
	tr.Claims = maps.Clone(tr.Claims)
	if tr.Claims == nil {
		tr.Claims = map[string]time.Time{}
	}
	return tr
}

// LivenessOnly reports whether next differs from prev in nothing but LastTS
// and LastSeen: a state evaluated that opened, closed, updated, claimed or
// published nothing, only moved the drone's signs of life on. A store may
// keep such a change for a while before writing it (see core/store/bolt).
func LivenessOnly(prev, next Tracker) bool {
	return prev.TenantID == next.TenantID && prev.DroneID == next.DroneID && prev.LinkLost == next.LinkLost &&
		maps.EqualFunc(prev.Open, next.Open, func(a, b Alert) bool { return reflect.DeepEqual(a, b) }) &&
		slices.EqualFunc(prev.Outbox, next.Outbox, func(a, b Transition) bool { return reflect.DeepEqual(a, b) }) &&
		maps.EqualFunc(prev.Claims, next.Claims, time.Time.Equal)
}
