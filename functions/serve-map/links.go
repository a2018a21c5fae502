package function

// Tracking links (core/tracklink): owners and admins make a link for one
// drone; whoever holds it sees that drone's flight on /t/TOKEN without an
// account.
//
//	GET    /api/v1/drones/{id}/links            the drone's links (session)
//	POST   /api/v1/drones/{id}/links            new link, token shown once (manager, CSRF)
//	DELETE /api/v1/drones/{id}/links/{linkId}   revoke (manager, CSRF)
//	GET    /t/{token}                           the public page
//	GET    /api/v1/t/{token}                    the page's data: label, destination, state, track
//	GET    /api/v1/t/{token}/stream             SSE: position events, then end
//
// The public routes never look at or set a cookie: the tenant comes from the
// link alone, and what they answer is tracklink.View, nothing else of the
// tenant. They are rate limited per client address (before any store
// lookup, so guessing tokens is slow) and per link.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dronetrack/dronetrack/core/accounts"
	"github.com/dronetrack/dronetrack/core/cache"
	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/core/ratelimit"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/tracklink"
	"github.com/dronetrack/dronetrack/events"
)

// linkSettings configure the public tracking links (LINK_* settings).
type linkSettings struct {
	// perIP limits every public link request by client address, before
	// the token is looked up (LINK_RATE_IP, default 1/s:20).
	perIP *ratelimit.Limiter
	// perLink limits the requests for one link, from everywhere
	// (LINK_RATE_LINK, default 10/s:60).
	perLink *ratelimit.Limiter
	// recheck is how often an open link stream re-reads its link, so a
	// revoked or expired link's stream closes within it (LINK_RECHECK,
	// default 2s).
	recheck time.Duration
	// idle ends a flight link (LINK_FLIGHT_IDLE, default
	// tracklink.DefaultIdle).
	idle time.Duration
	// maxStreams bounds the open streams of one link on this replica
	// (LINK_MAX_STREAMS, default 20): a stream lasts up to a day and costs
	// a hub client fed every update of the tenant plus a link read per
	// recheck, so the per-link request rate alone would let a link's
	// holder pile them up.
	maxStreams int
	open       *linkStreams
}

// linkStreams counts each link's open streams.
type linkStreams struct {
	mu sync.Mutex
	n  map[string]int
}

// acquire takes a place for a stream of link id; false when all max are
// taken.
func (o *linkStreams) acquire(id string, max int) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n[id] >= max {
		return false
	}
	o.n[id]++
	return true
}

func (o *linkStreams) release(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n[id]--; o.n[id] <= 0 {
		delete(o.n, id)
	}
}

func (s *server) configureLinks(cfg Config) {
	s.links = linkSettings{recheck: cfg.LinkRecheck, idle: cfg.LinkFlightIdle,
		perIP: ratelimit.New(cfg.LinkRateIP.Limit()), perLink: ratelimit.New(cfg.LinkRateLink.Limit()),
		maxStreams: cfg.LinkMaxStreams, open: &linkStreams{n: map[string]int{}}}
}

// publicLinkRoutes are the routes a link's holder uses: no session.
func (s *server) publicLinkRoutes(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(s.limitLinkClients)
		r.Get("/t/{token}", s.serveLinkPage)
		r.Get("/api/v1/t/{token}", s.getLinkView)
		r.Get("/api/v1/t/{token}/stream", s.serveLinkStream)
	})
}

// sessionLinkRoutes manage a drone's links; they sit behind the session
// and CSRF checks.
func (s *server) sessionLinkRoutes(r chi.Router) {
	r.Get("/api/v1/drones/{id}/links", s.listLinks)
	r.With(requireManager).Post("/api/v1/drones/{id}/links", s.createLink)
	r.With(requireManager).Delete("/api/v1/drones/{id}/links/{linkId}", s.revokeLink)
}

func tooMany(w http.ResponseWriter, wait time.Duration, detail string) {
	w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
	problem.Write(w, http.StatusTooManyRequests, "", detail)
}

// limitLinkClients answers 429 to an address (an IPv6 /64) over
// LINK_RATE_IP, and marks
// every public link reply as private to its holder: not cached, no
// Referer carrying the token to anyone.
func (s *server) limitLinkClients(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		if ok, wait := s.links.perIP.Allow("ip|"+ratelimit.Network(s.clientIP(r)), s.now()); !ok {
			if strings.HasPrefix(r.URL.Path, "/t/") { // a person at the page: say it there
				w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
				s.writeLinkPage(w, http.StatusTooManyRequests, "Too many requests", "Please wait a moment and reload.")
				return
			}
			tooMany(w, wait, "too many tracking-link requests from your address; try again later")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// noLink is every unknown token's answer, whatever its shape.
func noLink(w http.ResponseWriter) {
	problem.Write(w, http.StatusNotFound, "", "no such tracking link")
}

// liveLink is resolveLink for a link that still shows its drone: 410 with
// the reason (linkGone) once its status is not Live; false after
// answering.
func (s *server) liveLink(w http.ResponseWriter, r *http.Request) (store.TrackLink, bool) {
	l, ok := s.resolveLink(w, r)
	if !ok {
		return l, false
	}
	if st := tracklink.StatusOf(l, s.now()); st != tracklink.Live {
		linkGone(w, st)
		return l, false
	}
	return l, true
}

// resolveLink finds the link of the request's token and applies the
// per-link limit; false after answering.
func (s *server) resolveLink(w http.ResponseWriter, r *http.Request) (store.TrackLink, bool) {
	tok := chi.URLParam(r, "token")
	if !tracklink.WellFormed(tok) {
		noLink(w)
		return store.TrackLink{}, false
	}
	l, err := s.store.LinkByTokenHash(r.Context(), accounts.HashToken(tok))
	switch {
	case errors.Is(err, store.ErrNotFound):
		noLink(w)
		return store.TrackLink{}, false
	case err != nil:
		s.log.WarnContext(r.Context(), "tracking link lookup failed", "err", err)
		unavailable(w, "tracking links are unavailable")
		return store.TrackLink{}, false
	}
	if ok, wait := s.links.perLink.Allow("link|"+l.ID, s.now()); !ok {
		tooMany(w, wait, "this tracking link is busy; try again later")
		return store.TrackLink{}, false
	}
	return l, true
}

// linkGone answers a link that no longer shows anything: 410 with the
// reason in the problem type.
func linkGone(w http.ResponseWriter, status string) {
	problem.Write(w, http.StatusGone, goneText[status].title, goneText[status].detail, problem.WithType("urn:dronetrack:link:"+status))
}

var goneText = map[string]struct{ title, detail string }{
	tracklink.Revoked: {"This tracking link was revoked", "The sender has withdrawn this link. Ask them for a new one if you still need it."},
	tracklink.Expired: {"This tracking link has expired", "The time this link was shared for is over."},
	tracklink.Ended:   {"This flight has ended", "The drone has arrived or landed, so there is nothing more to follow."},
}

// linkNow is a link's status at now, ending a flight link whose flight is
// over (stored once, so the answer stays ended). recent are the drone's
// positions of the last idle period.
func (s *server) linkNow(ctx context.Context, l store.TrackLink, recent []tracklink.Point) (store.TrackLink, string) {
	now := s.now()
	st := tracklink.StatusOf(l, now)
	if st != tracklink.Live {
		return l, st
	}
	if at, over := tracklink.FlightOver(l, recent, now, s.links.idle); over {
		ended, err := s.store.EndLink(ctx, l.TenantID, l.ID, at)
		if err != nil {
			s.log.WarnContext(ctx, "end tracking link", "tenant", l.TenantID, "link", l.ID, "err", err)
			ended = l
			ended.EndedAt = &at
		} else {
			s.log.InfoContext(ctx, "tracking link ended: flight over", "tenant", l.TenantID, "drone", l.DroneID, "link", l.ID)
		}
		return ended, tracklink.StatusOf(ended, now)
	}
	return l, tracklink.Live
}

// linkDroneGone reports whether the link's drone has been retired: its
// links then show nothing more (status ended), whatever their expiry.
func (s *server) linkDroneGone(ctx context.Context, l store.TrackLink) (bool, error) {
	_, err := s.store.Drone(ctx, l.TenantID, l.DroneID)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	return false, err
}

// linkState is the drone's latest state if it was reported since the link
// began (nothing before it is shown), else nil.
func (s *server) linkState(ctx context.Context, l store.TrackLink) (*events.DroneState, error) {
	var st *events.DroneState
	body, err := s.cache.Drone(ctx, l.TenantID, l.DroneID)
	switch {
	case err == nil:
		var v cache.DroneView
		if err := json.Unmarshal(body, &v); err != nil {
			return nil, fmt.Errorf("decode cached drone: %w", err)
		}
		st = v.State
	case errors.Is(err, cache.ErrUnavailable):
		d, err := s.store.LatestState(ctx, l.TenantID, l.DroneID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		st = &d
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	default:
		return nil, err
	}
	if st == nil || st.TS.Before(l.CreatedAt) {
		return nil, nil
	}
	return st, nil
}

// linkTrackState is linkTrack from from, then linkState: what a link's
// page and stream start with.
func (s *server) linkTrackState(ctx context.Context, l store.TrackLink, from time.Time) ([]tracklink.TrackPoint, *events.DroneState, error) {
	track, err := s.linkTrack(ctx, l, from)
	if err != nil {
		return nil, nil, err
	}
	st, err := s.linkState(ctx, l)
	if err != nil {
		return nil, nil, err
	}
	return track, st, nil
}

// linkTrack reads the drone's history in [from, now], oldest first, at most
// maxLinkTrackRead points.
func (s *server) linkTrack(ctx context.Context, l store.TrackLink, from time.Time) ([]tracklink.TrackPoint, error) {
	var out []tracklink.TrackPoint
	q := store.TrackQuery{TenantID: l.TenantID, DroneID: l.DroneID, From: from, To: s.now().Add(time.Minute), Limit: MaxTrackLimit}
	for len(out) < maxLinkTrackRead {
		pts, err := s.store.Track(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, p := range pts {
			out = append(out, tracklink.TrackPoint{TS: p.Report.TS, Lat: p.Report.Lat, Lon: p.Report.Lon})
		}
		if len(pts) < q.Limit {
			break
		}
		q.After = pts[len(pts)-1].Report.TS
	}
	return out, nil
}

// maxLinkTrackRead bounds the history one page load reads (a day at about
// one report every 4 s); the page gets it thinned to MaxViewPoints.
const maxLinkTrackRead = 20_000

func recentPoints(track []tracklink.TrackPoint, st *events.DroneState) []tracklink.Point {
	out := make([]tracklink.Point, 0, len(track)+1)
	for _, p := range track {
		out = append(out, tracklink.Point{TS: p.TS, Lat: p.Lat, Lon: p.Lon})
	}
	if st != nil {
		out = append(out, tracklink.Point{TS: st.TS, Lat: st.Lat, Lon: st.Lon})
	}
	return out
}

// getLinkView is GET /api/v1/t/{token}: what the page shows, or 410 with
// the reason once the link shows nothing.
func (s *server) getLinkView(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	l, ok := s.liveLink(w, r)
	if !ok {
		return
	}
	d, err := s.store.Drone(ctx, l.TenantID, l.DroneID)
	if errors.Is(err, store.ErrNotFound) { // retired: nothing left to follow
		linkGone(w, tracklink.Ended)
		return
	}
	if err != nil {
		s.linkReadFailed(w, r, l, err)
		return
	}
	track, st, err := s.linkTrackState(ctx, l, l.CreatedAt)
	if err != nil {
		s.linkReadFailed(w, r, l, err)
		return
	}
	l, status := s.linkNow(ctx, l, recentPoints(track, st))
	if status != tracklink.Live {
		linkGone(w, status)
		return
	}
	v := tracklink.View{Label: d.Name, Status: status, Mode: l.Mode, StartedAt: l.CreatedAt, ExpiresAt: l.ExpiresAt,
		Destination: l.Destination, Track: tracklink.Thin(track, tracklink.MaxViewPoints)}
	if v.Track == nil {
		v.Track = []tracklink.TrackPoint{}
	}
	if st != nil {
		p := tracklink.Public(*st, l.Destination)
		v.State = &p
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *server) linkReadFailed(w http.ResponseWriter, r *http.Request, l store.TrackLink, err error) {
	s.log.WarnContext(r.Context(), "tracking link read failed", "tenant", l.TenantID, "link", l.ID, "err", err)
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, cache.ErrUnavailable) {
		unavailable(w, "tracking is unavailable for a moment")
		return
	}
	problem.Write(w, http.StatusInternalServerError, "", "could not read the flight")
}

// serveLinkStream is GET /api/v1/t/{token}/stream: Server-Sent Events of
// the link's drone only. Events: "position" (data: tracklink.PublicState),
// and "end" (data: {"status": revoked|expired|ended}) after which the
// server closes the stream. The link is re-read every LINK_RECHECK, so a
// revoked link's stream ends within it. A link that shows nothing any more
// is 410 (EventSource then stops; the page asks GET /api/v1/t/{token} why).
func (s *server) serveLinkStream(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	l, ok := s.liveLink(w, r)
	if !ok {
		return
	}
	if gone, err := s.linkDroneGone(ctx, l); err != nil {
		s.linkReadFailed(w, r, l, err)
		return
	} else if gone {
		linkGone(w, tracklink.Ended)
		return
	}
	if !s.links.open.acquire(l.ID, s.links.maxStreams) {
		tooMany(w, s.links.recheck, "this tracking link has too many open streams; close one or try again later")
		return
	}
	defer s.links.open.release(l.ID)
	from := s.now().Add(-s.links.idle)
	if from.Before(l.CreatedAt) {
		from = l.CreatedAt
	}
	window, st, err := s.linkTrackState(ctx, l, from)
	if err != nil {
		s.linkReadFailed(w, r, l, err)
		return
	}
	recent := recentPoints(window, st)
	th, err := s.hub.tenant(ctx, l.TenantID)
	if err != nil {
		s.log.WarnContext(ctx, "link stream unavailable", "tenant", l.TenantID, "err", err)
		unavailable(w, "live updates are unavailable")
		return
	}
	cl, _, _ := th.join(0, false)
	defer th.leave(cl)
	s.hub.gauge(1)
	defer s.hub.gauge(-1)

	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	buf := append(make([]byte, 0, 512), "retry: 2000\n: connected\n\n"...)
	if st != nil {
		buf = appendLinkEvent(buf, "position", tracklink.Public(*st, l.Destination))
	}
	if !s.write(w, rc, buf) {
		return
	}
	heartbeat := time.NewTicker(s.heartbeat)
	defer heartbeat.Stop()
	recheck := time.NewTicker(s.links.recheck)
	defer recheck.Stop()
	expiry := time.NewTimer(max(0, l.ExpiresAt.Sub(s.now())))
	defer expiry.Stop()
	var last time.Time
	if st != nil {
		last = st.TS
	}
	// heard: a position came since the last recheck, so the drone still
	// exists; a quiet drone's existence is read at the recheck instead (a
	// retired drone reports nothing, and its stream must not idle on).
	heard := false
	var pending []cache.Notice
	for {
		buf = buf[:0]
		status := tracklink.Live
		select {
		case <-ctx.Done():
			return
		case <-cl.wake:
			// A client too far behind skips to the newest notices (resync):
			// the page shows the newest position, and the next one follows.
			pending, _ = th.next(cl, pending[:0])
			for _, n := range pending {
				if n.DroneID != l.DroneID {
					continue
				}
				var v cache.DroneView
				if err := json.Unmarshal(n.Drone, &v); err == nil && v.State != nil &&
					!v.State.TS.Before(l.CreatedAt) && v.State.TS.After(last) {
					last = v.State.TS
					recent = append(recent, tracklink.Point{TS: v.State.TS, Lat: v.State.Lat, Lon: v.State.Lon})
					buf = appendLinkEvent(buf, "position", tracklink.Public(*v.State, l.Destination))
					heard = true
				}
			}
			clear(pending)
			if len(buf) == 0 {
				continue
			}
		case <-heartbeat.C:
			buf = append(buf, ": heartbeat\n\n"...)
		case <-expiry.C:
			status = tracklink.Expired
		case <-recheck.C:
			fresh, err := s.store.LinkByTokenHash(ctx, l.TokenHash)
			switch {
			case errors.Is(err, store.ErrNotFound):
				status = tracklink.Revoked
			case err != nil:
				// The store is away: keep streaming, check again next time.
				s.log.WarnContext(ctx, "link stream recheck failed", "tenant", l.TenantID, "link", l.ID, "err", err)
				continue
			default:
				recent = trimBefore(recent, s.now().Add(-s.links.idle))
				l, status = s.linkNow(ctx, fresh, recent)
				if status == tracklink.Live && !heard {
					gone, err := s.linkDroneGone(ctx, l)
					if err != nil {
						s.log.WarnContext(ctx, "link stream recheck failed", "tenant", l.TenantID, "link", l.ID, "err", err)
						continue
					}
					if gone {
						status = tracklink.Ended
					}
				}
				heard = false
			}
			if status == tracklink.Live {
				continue
			}
		}
		if status != tracklink.Live {
			buf = appendLinkEvent(buf, "end", map[string]string{"status": status})
			s.write(w, rc, buf)
			s.log.InfoContext(ctx, "link stream closed", "tenant", l.TenantID, "link", l.ID, "status", status)
			return
		}
		if !s.write(w, rc, buf) {
			return
		}
	}
}

// trimBefore drops points at or before t (the flight rule looks at the last
// idle period only), keeping the slice from growing for a day.
func trimBefore(pts []tracklink.Point, t time.Time) []tracklink.Point {
	out := pts[:0]
	for _, p := range pts {
		if p.TS.After(t) {
			out = append(out, p)
		}
	}
	return out
}

func appendLinkEvent(b []byte, event string, v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		return b
	}
	b = append(b, "event: "...)
	b = append(b, event...)
	b = append(b, "\ndata: "...)
	b = append(b, raw...)
	return append(b, "\n\n"...)
}

// serveLinkPage is GET /t/{token}: the public page (web/track.html, its own
// small bundle). A link that shows nothing gets the same page with the
// reason written in, and the status 404 or 410, so it reads clearly without
// a script.
func (s *server) serveLinkPage(w http.ResponseWriter, r *http.Request) {
	tok := chi.URLParam(r, "token")
	if !tracklink.WellFormed(tok) {
		s.writeLinkPage(w, http.StatusNotFound, "", "")
		return
	}
	l, err := s.store.LinkByTokenHash(r.Context(), accounts.HashToken(tok))
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.writeLinkPage(w, http.StatusNotFound, "", "")
	case err != nil:
		s.log.WarnContext(r.Context(), "tracking link lookup failed", "err", err)
		w.Header().Set("Retry-After", "2")
		s.writeLinkPage(w, http.StatusServiceUnavailable, "Tracking is unavailable", "Please reload in a moment.")
	default:
		if ok, wait := s.links.perLink.Allow("link|"+l.ID, s.now()); !ok {
			w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
			s.writeLinkPage(w, http.StatusTooManyRequests, "This tracking link is busy", "Please reload in a moment.")
		} else if st := tracklink.StatusOf(l, s.now()); st != tracklink.Live {
			s.writeLinkPage(w, http.StatusGone, goneText[st].title, goneText[st].detail)
		} else if gone, err := s.linkDroneGone(r.Context(), l); err != nil {
			s.log.WarnContext(r.Context(), "tracking link drone lookup failed", "err", err)
			w.Header().Set("Retry-After", "2")
			s.writeLinkPage(w, http.StatusServiceUnavailable, "Tracking is unavailable", "Please reload in a moment.")
		} else if gone { // retired: nothing left to follow
			s.writeLinkPage(w, http.StatusGone, goneText[tracklink.Ended].title, goneText[tracklink.Ended].detail)
		} else {
			s.writeLinkPage(w, http.StatusOK, "", "")
		}
	}
}

// writeLinkPage answers web/track.html: with status 200 the live page, else
// the page showing title and text (404 has its own) and running no map.
func (s *server) writeLinkPage(w http.ResponseWriter, status int, title, text string) {
	b, err := fs.ReadFile(webFS, "web/track.html")
	if err != nil {
		problem.Write(w, http.StatusInternalServerError, "", "tracking page missing from the build")
		return
	}
	if status == http.StatusNotFound {
		title, text = "No such tracking link", "Check that you copied the whole link, or ask the sender for a new one."
	}
	hidden, linkStatus := "", "gone"
	if status == http.StatusOK {
		hidden, linkStatus = " hidden", "live"
	}
	page := strings.NewReplacer(builtTilesMeta, `<meta name="dronetrack:tiles" content="`+html.EscapeString(s.tiles)+`">`,
		"%GONE_HIDDEN%", hidden, "%GONE_TITLE%", html.EscapeString(title), "%GONE_TEXT%", html.EscapeString(text),
		"%LINK_STATUS%", linkStatus).Replace(string(b))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(page))
}

// linkJSON is a link as its tenant sees it: never the token or its hash.
type linkJSON struct {
	ID          string                 `json:"id"`
	DroneID     string                 `json:"droneId"`
	Mode        string                 `json:"mode"`
	Status      string                 `json:"status"`
	CreatedBy   string                 `json:"createdBy"`
	CreatedAt   time.Time              `json:"createdAt"`
	ExpiresAt   time.Time              `json:"expiresAt"`
	Destination *store.LinkDestination `json:"destination,omitempty"`
	RevokedAt   *time.Time             `json:"revokedAt,omitempty"`
	EndedAt     *time.Time             `json:"endedAt,omitempty"`
}

func (s *server) linkView(l store.TrackLink) linkJSON {
	return linkJSON{ID: l.ID, DroneID: l.DroneID, Mode: l.Mode, Status: tracklink.StatusOf(l, s.now()),
		CreatedBy: l.CreatedBy, CreatedAt: l.CreatedAt, ExpiresAt: l.ExpiresAt, Destination: l.Destination,
		RevokedAt: l.RevokedAt, EndedAt: l.EndedAt}
}

// callerDrone checks the path's drone is the caller's; false after 404.
func (s *server) callerDrone(w http.ResponseWriter, r *http.Request) (store.Drone, bool) {
	d, err := s.store.Drone(r.Context(), TenantFrom(r.Context()), chi.URLParam(r, "id"))
	if err != nil {
		s.storeFailed(w, r, err)
		return store.Drone{}, false
	}
	return d, true
}

// listLinks is GET /api/v1/drones/{id}/links, newest first.
func (s *server) listLinks(w http.ResponseWriter, r *http.Request) {
	d, ok := s.callerDrone(w, r)
	if !ok {
		return
	}
	ls, err := s.store.Links(r.Context(), d.TenantID, d.ID)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	out := make([]linkJSON, 0, len(ls))
	for _, l := range ls {
		out = append(out, s.linkView(l))
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"links": out})
}

// createLink is POST /api/v1/drones/{id}/links: the token is in this reply
// only.
func (s *server) createLink(w http.ResponseWriter, r *http.Request) {
	var req tracklink.Request
	if !readJSON(w, r, &req) {
		return
	}
	if bad := req.Validate(); bad != nil {
		var fe []events.FieldError
		for f, d := range bad {
			fe = append(fe, events.FieldError{Field: f, Pointer: "/" + f, Detail: d})
		}
		badBody(w, fe...)
		return
	}
	d, ok := s.callerDrone(w, r)
	if !ok {
		return
	}
	p, _ := principalFrom(r.Context())
	id, err := newLinkID()
	if err != nil {
		problem.Write(w, http.StatusInternalServerError, "", "could not make a link")
		return
	}
	l, tok, err := tracklink.New(req, id, d.TenantID, d.ID, p.User.ID, s.now())
	if err != nil {
		problem.Write(w, http.StatusInternalServerError, "", "could not make a link")
		return
	}
	if err := s.store.CreateLink(r.Context(), l); err != nil {
		s.storeFailed(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "tracking link created", "tenant", d.TenantID, "drone", d.ID, "link", l.ID, "user", p.User.ID, "mode", l.Mode)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, map[string]any{"link": s.linkView(l), "token": tok, "path": "/t/" + tok})
}

// revokeLink is DELETE /api/v1/drones/{id}/links/{linkId}; revoking twice
// is fine.
func (s *server) revokeLink(w http.ResponseWriter, r *http.Request) {
	d, ok := s.callerDrone(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "linkId")
	ls, err := s.store.Links(r.Context(), d.TenantID, d.ID)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	found := false
	for _, l := range ls {
		found = found || l.ID == id
	}
	if !found {
		problem.Write(w, http.StatusNotFound, "", "no such link for this drone", problem.WithInstance(r.URL.Path))
		return
	}
	if _, err := s.store.RevokeLink(r.Context(), d.TenantID, id, s.now()); err != nil {
		s.storeFailed(w, r, err)
		return
	}
	p, _ := principalFrom(r.Context())
	s.log.InfoContext(r.Context(), "tracking link revoked", "tenant", d.TenantID, "drone", d.ID, "link", id, "user", p.User.ID)
	w.WriteHeader(http.StatusNoContent)
}

func newLinkID() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("link id: %w", err)
	}
	return "l" + hex.EncodeToString(b[:]), nil
}
