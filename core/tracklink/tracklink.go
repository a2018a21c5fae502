// Package tracklink holds the rules of public tracking links: a link shows
// one drone's flight to someone without an account (the customer awaiting
// a delivery), for a limited time, through an unguessable URL /t/TOKEN.
//
// Decisions, in one place:
//   - Token: 256 bits from crypto/rand in unpadded base64url (43
//     characters). The store keeps only its SHA-256 (accounts.HashToken, as
//     for sessions and invites): a leaked table of links opens no page. A
//     slow hash buys nothing against 256 random bits.
//   - Lifetime: ModeDuration lasts the chosen number of minutes (at most
//     MaxDuration). ModeFlight lasts "until the current flight ends": there
//     is no flight record, so the rule is one that the position history
//     alone decides. A flight link ends once it is at least Idle old and the
//     drone has stayed within StillRadiusM of its newest position for the
//     last Idle (or sent nothing in that time): landed, parked, or switched
//     off. It ends at MaxDuration after creation at the latest. Create it
//     when the drone is about to leave: a drone that stays put for Idle
//     after the link was made ends the link. The first replica to see the
//     flight end stores EndedAt, so a later take-off does not revive it.
//   - Revoked, expired and ended links say so (with the reason), unknown
//     tokens are 404: a token is unguessable, so naming the state of a known
//     one tells a guesser nothing.
//   - What the page may show is View and PublicState: the drone's name, its
//     position, altitude, ground speed and course, the track since the link
//     began, the destination and the ETA. Nothing else of the tenant.
package tracklink

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dronetrack/dronetrack/core/accounts"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/telemetry"
	"github.com/dronetrack/dronetrack/events"
)

// Modes of a link's lifetime.
const (
	ModeFlight   = "flight"
	ModeDuration = "duration"
)

// MaxDuration caps every link: a duration link's length and a flight
// link's lifetime.
const MaxDuration = 24 * time.Hour

// DefaultIdle is how long a drone must stay put before its flight counts as
// ended (LINK_FLIGHT_IDLE in serve-map).
const DefaultIdle = 5 * time.Minute

// StillRadiusM is how far a drone may drift (GPS noise, hovering) and
// still count as staying put.
const StillRadiusM = 30.0

// MinMovingSpeed is the ground speed (m/s) below which no ETA is given: a
// hovering drone's ETA would be meaningless.
const MinMovingSpeed = 0.5

// TokenLen is the length of a token: 32 bytes in unpadded base64url.
const TokenLen = 43

// MaxLabelLen bounds a destination label (runes).
const MaxLabelLen = 200

// NewToken returns a random token and the hash the store keeps.
func NewToken() (token, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("tracking link token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, accounts.HashToken(token), nil
}

// WellFormed reports whether s has the shape of a token, so garbage is
// answered 404 without a store lookup.
func WellFormed(s string) bool {
	if len(s) != TokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Request is what an owner or admin asks for.
type Request struct {
	// Mode is ModeFlight (the default when empty) or ModeDuration.
	Mode string `json:"mode,omitempty"`
	// Minutes is the length of a duration link, 1 to 1440.
	Minutes int `json:"minutes,omitempty"`
	// Destination is an optional pin with an optional label.
	Destination *store.LinkDestination `json:"destination,omitempty"`
}

// Validate returns the refused fields (JSON pointer names, without the
// slash) and why; nil when the request is good.
func (r Request) Validate() map[string]string {
	f := map[string]string{}
	switch r.Mode {
	case "", ModeFlight:
		if r.Minutes != 0 {
			f["minutes"] = "only a duration link takes minutes"
		}
	case ModeDuration:
		if r.Minutes < 1 || r.Minutes > int(MaxDuration/time.Minute) {
			f["minutes"] = fmt.Sprintf("must be from 1 to %d", int(MaxDuration/time.Minute))
		}
	default:
		f["mode"] = "must be flight or duration"
	}
	if d := r.Destination; d != nil {
		if math.IsNaN(d.Lat) || d.Lat < -90 || d.Lat > 90 {
			f["destination/lat"] = "must be from -90 to 90"
		}
		if math.IsNaN(d.Lon) || d.Lon < -180 || d.Lon > 180 {
			f["destination/lon"] = "must be from -180 to 180"
		}
		if utf8.RuneCountInString(d.Label) > MaxLabelLen || strings.ContainsFunc(d.Label, func(r rune) bool { return r < 0x20 }) {
			f["destination/label"] = fmt.Sprintf("must have at most %d characters and no control characters", MaxLabelLen)
		}
	}
	if len(f) == 0 {
		return nil
	}
	return f
}

// New makes a link for the request (which must be valid) and its token,
// shown once.
func New(r Request, id, tenantID, droneID, createdBy string, now time.Time) (store.TrackLink, string, error) {
	tok, hash, err := NewToken()
	if err != nil {
		return store.TrackLink{}, "", err
	}
	now = now.UTC().Truncate(time.Microsecond)
	l := store.TrackLink{ID: id, TokenHash: hash, TenantID: tenantID, DroneID: droneID, Mode: r.Mode,
		CreatedBy: createdBy, CreatedAt: now, ExpiresAt: now.Add(MaxDuration)}
	if l.Mode == "" {
		l.Mode = ModeFlight
	}
	if l.Mode == ModeDuration {
		l.ExpiresAt = now.Add(time.Duration(r.Minutes) * time.Minute)
	}
	if d := r.Destination; d != nil {
		l.Destination = &store.LinkDestination{Lat: d.Lat, Lon: d.Lon, Label: strings.TrimSpace(d.Label)}
	}
	return l, tok, nil
}

// Status of a link.
const (
	Live    = "live"
	Revoked = "revoked"
	Expired = "expired"
	// Ended: a flight link whose flight is over.
	Ended = "ended"
)

// StatusOf is the link's stored status at now: revoked before ended before
// expired. A live flight link may still have ended by FlightOver, which
// needs the track.
func StatusOf(l store.TrackLink, now time.Time) string {
	switch {
	case l.RevokedAt != nil:
		return Revoked
	case l.EndedAt != nil:
		return Ended
	case !now.Before(l.ExpiresAt):
		return Expired
	}
	return Live
}

// Point is a timed position.
type Point struct {
	TS       time.Time
	Lat, Lon float64
}

// FlightOver applies ModeFlight's rule: the link is at least idle old and
// every position reported in (now-idle, now] lies within StillRadiusM of
// the newest of them (none at all counts as staying put). recent must hold
// the drone's positions of that window at least, in any order; older ones
// are ignored. It returns the instant the flight counts as over from.
func FlightOver(l store.TrackLink, recent []Point, now time.Time, idle time.Duration) (time.Time, bool) {
	if l.Mode != ModeFlight || now.Sub(l.CreatedAt) < idle {
		return time.Time{}, false
	}
	from := now.Add(-idle)
	var newest *Point
	for i := range recent {
		p := &recent[i]
		if p.TS.After(from) && (newest == nil || p.TS.After(newest.TS)) {
			newest = p
		}
	}
	if newest == nil {
		return now, true
	}
	for _, p := range recent {
		if p.TS.After(from) && telemetry.Distance(p.Lat, p.Lon, newest.Lat, newest.Lon) > StillRadiusM {
			return time.Time{}, false
		}
	}
	return now, true
}

// PublicState is the part of a drone's state the public page shows: no
// battery, sequence numbers or derived fleet figures.
type PublicState struct {
	TS          time.Time `json:"ts"`
	Lat         float64   `json:"lat"`
	Lon         float64   `json:"lon"`
	Alt         *float64  `json:"alt,omitempty"`
	GroundSpeed *float64  `json:"groundSpeed,omitempty"` // m/s
	Course      *float64  `json:"course,omitempty"`      // degrees true
	// DistanceM and ETASecs are to the destination, when the link has one;
	// ETASecs also needs a ground speed of at least MinMovingSpeed.
	DistanceM *float64 `json:"distanceM,omitempty"`
	ETASecs   *float64 `json:"etaSecs,omitempty"`
}

// Public renders a state for the page, with distance and ETA to dest.
// Ground speed is the one process derived from successive positions, else
// the drone's own speed; course likewise falls back to the heading.
func Public(st events.DroneState, dest *store.LinkDestination) PublicState {
	p := PublicState{TS: st.TS, Lat: st.Lat, Lon: st.Lon, Alt: st.Alt, GroundSpeed: st.GroundSpeed, Course: st.Course}
	if p.GroundSpeed == nil {
		p.GroundSpeed = st.Speed
	}
	if p.Course == nil {
		p.Course = st.Heading
	}
	if dest != nil {
		d := telemetry.Distance(st.Lat, st.Lon, dest.Lat, dest.Lon)
		p.DistanceM = &d
		p.ETASecs = ETA(d, p.GroundSpeed)
	}
	return p
}

// ETA is the time to cover distanceM at the current ground speed, nil when
// the speed is unknown or below MinMovingSpeed. It is a straight-line
// estimate: the drone's route is not known.
func ETA(distanceM float64, groundSpeed *float64) *float64 {
	if groundSpeed == nil || *groundSpeed < MinMovingSpeed || math.IsNaN(*groundSpeed) {
		return nil
	}
	s := math.Round(distanceM / *groundSpeed)
	return &s
}

// View is the public page's whole knowledge of a link.
type View struct {
	// Label is the drone's name: the only thing of the fleet shown.
	Label       string                 `json:"label"`
	Status      string                 `json:"status"`
	Mode        string                 `json:"mode"`
	StartedAt   time.Time              `json:"startedAt"`
	ExpiresAt   time.Time              `json:"expiresAt"`
	Destination *store.LinkDestination `json:"destination,omitempty"`
	// State is the latest position reported since the link began.
	State *PublicState `json:"state,omitempty"`
	// Track is the positions since the link began, oldest first, thinned
	// to at most MaxViewPoints.
	Track []TrackPoint `json:"track"`
}

// TrackPoint is one point of the public track.
type TrackPoint struct {
	TS  time.Time `json:"ts"`
	Lat float64   `json:"lat"`
	Lon float64   `json:"lon"`
}

// MaxViewPoints bounds the track a page receives (a phone draws it).
const MaxViewPoints = 2000

// Thin keeps at most max points spread evenly, always the first and the
// last.
func Thin(pts []TrackPoint, max int) []TrackPoint {
	if len(pts) <= max || max < 2 {
		return pts
	}
	out := make([]TrackPoint, 0, max)
	step := float64(len(pts)-1) / float64(max-1)
	for i := 0; i < max; i++ {
		out = append(out, pts[int(math.Round(float64(i)*step))])
	}
	return out
}
