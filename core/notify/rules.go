// Package notify holds the pure rules of alert notifications: which alert
// transitions a tenant's notification channel wants (alert kinds, fences,
// drones, a quiet-hours window in a time zone), when a transition is too old
// to send (the staleness limit), and what a notification says (an email's
// subject, plain-text and HTML bodies, the Slack and Microsoft Teams
// incoming-webhook payloads).
//
// Sending is not here: functions/alerts delivers notifications on the same
// broker Triggers and per-target delivery log as webhooks (a channel is a
// delivery target like a webhook), and serve-map validates channels with
// Rules.Validate.
package notify

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/events"
)

// Channel kinds.
const (
	KindEmail = "email"
	KindSlack = "slack"
	KindTeams = "teams"
)

// Kinds lists the channel kinds, in the order forms show them.
var Kinds = []string{KindEmail, KindSlack, KindTeams}

// AlertKinds lists the alert kinds a channel may pick.
var AlertKinds = []string{alerting.KindBatteryLow, alerting.KindBatteryExhaustion, alerting.KindGeofence,
	alerting.KindLinkLost}

// DefaultStaleAfter is the staleness limit of a tenant that set none: a
// transition older than this is not notified (stale news misleads).
const DefaultStaleAfter = 15 * time.Minute

// Rules say which alert transitions a channel wants. An empty list means
// every value: a channel with no rules gets every alert of its tenant.
type Rules struct {
	AlertKinds []string    `json:"alertKinds,omitempty"`
	FenceIDs   []string    `json:"fenceIds,omitempty"` // geofence.breach alerts of these fences only
	DroneIDs   []string    `json:"droneIds,omitempty"`
	QuietHours *QuietHours `json:"quietHours,omitempty"`
}

// QuietHours is a daily window, in a time zone, in which a channel gets no
// notification. Start after End wraps midnight (22:00 to 07:00); Start
// equal to End is the whole day.
type QuietHours struct {
	Start    string `json:"start"`    // "HH:MM"
	End      string `json:"end"`      // "HH:MM"
	TimeZone string `json:"timeZone"` // IANA name, e.g. Europe/Berlin; empty is UTC
}

// Limits on rule lists, so a channel record stays small.
const (
	maxListed = 100
	maxIDLen  = 200
)

// Validate reports the first wrong field (an *alerting.FieldError, so
// serve-map answers a problem naming it).
func (r Rules) Validate() error {
	for i, k := range r.AlertKinds {
		if !slices.Contains(AlertKinds, k) {
			return &alerting.FieldError{Field: fmt.Sprintf("alertKinds[%d]", i),
				Reason: "want one of " + strings.Join(AlertKinds, ", ")}
		}
	}
	for name, ids := range map[string][]string{"fenceIds": r.FenceIDs, "droneIds": r.DroneIDs, "alertKinds": r.AlertKinds} {
		if len(ids) > maxListed {
			return &alerting.FieldError{Field: name, Reason: fmt.Sprintf("at most %d entries", maxListed)}
		}
		for i, id := range ids {
			if id == "" || len(id) > maxIDLen {
				return &alerting.FieldError{Field: fmt.Sprintf("%s[%d]", name, i),
					Reason: fmt.Sprintf("want a non-empty id of at most %d bytes", maxIDLen)}
			}
		}
	}
	if q := r.QuietHours; q != nil {
		if _, err := clock(q.Start); err != nil {
			return &alerting.FieldError{Field: "quietHours.start", Reason: "want HH:MM (24-hour clock)"}
		}
		if _, err := clock(q.End); err != nil {
			return &alerting.FieldError{Field: "quietHours.end", Reason: "want HH:MM (24-hour clock)"}
		}
		if _, err := time.LoadLocation(q.TimeZone); err != nil || strings.EqualFold(q.TimeZone, "local") {
			return &alerting.FieldError{Field: "quietHours.timeZone", Reason: "want an IANA time zone such as Europe/Berlin"}
		}
	}
	return nil
}

// clock parses "HH:MM" into minutes after midnight.
func clock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) != 2 || len(m) != 2 {
		return 0, fmt.Errorf("clock %q: want HH:MM", s)
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return 0, fmt.Errorf("clock %q: want HH:MM", s)
	}
	return hh*60 + mm, nil
}

// Contains reports whether t falls in the window, on the wall clock of the
// window's time zone. An invalid window (Validate refuses it) contains
// nothing, so a bad record never silences a channel.
func (q QuietHours) Contains(t time.Time) bool {
	start, err1 := clock(q.Start)
	end, err2 := clock(q.End)
	loc, err3 := time.LoadLocation(q.TimeZone)
	if err1 != nil || err2 != nil || err3 != nil {
		return false
	}
	lt := t.In(loc)
	m := lt.Hour()*60 + lt.Minute()
	switch {
	case start == end:
		return true
	case start < end:
		return m >= start && m < end
	default: // wraps midnight
		return m >= start || m < end
	}
}

// Wants reports whether the channel wants the transition of a at time at
// (TransitionTime): its kind, fence and drone are picked, and at is outside
// the quiet hours.
func (r Rules) Wants(a events.Alert, at time.Time) bool {
	if len(r.AlertKinds) > 0 && !slices.Contains(r.AlertKinds, a.Kind) {
		return false
	}
	if len(r.FenceIDs) > 0 && a.Kind == alerting.KindGeofence && !slices.Contains(r.FenceIDs, a.FenceID) {
		return false
	}
	if len(r.DroneIDs) > 0 && !slices.Contains(r.DroneIDs, a.DroneID) {
		return false
	}
	return r.QuietHours == nil || !r.QuietHours.Contains(at)
}

// TransitionTime is when the alert opened or, for a resolved event, closed
// (server time: alerting stamps transitions with the time the state was
// accepted, or the link check's time).
func TransitionTime(a events.Alert, resolved bool) time.Time {
	if resolved && a.ResolvedAt != nil {
		return *a.ResolvedAt
	}
	return a.OpenedAt
}

// StaleAfter is a tenant's staleness limit from its alert settings: 0 (never
// set) is DefaultStaleAfter.
func StaleAfter(s alerting.Settings) time.Duration {
	if s.NotifyStaleSecs <= 0 {
		return DefaultStaleAfter
	}
	return time.Duration(s.NotifyStaleSecs * float64(time.Second))
}

// Stale reports whether a transition at at is too old to notify at now.
func Stale(at, now time.Time, limit time.Duration) bool {
	return now.Sub(at) > limit
}
