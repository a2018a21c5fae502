package function

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/dronetrack/dronetrack/core/cache"
)

// hub fans a tenant's cache notices out to that tenant's SSE clients and
// keeps the last ringSize of them, so a client that reconnects with
// Last-Event-ID gets what it missed. Event ids are the cache's per-tenant
// version, which every replica agrees on, so a reconnect may land on any
// replica.
type hub struct {
	c        *cache.Cache
	log      *slog.Logger
	ringSize int
	gauge    func(delta float64)

	mu      sync.Mutex
	tenants map[string]*tenantHub
	closed  bool
}

type tenantHub struct {
	mu sync.Mutex
	// ring holds the newest notices, oldest first, in version order. It
	// holds every notice with a version above since (when known is true); a
	// client asking to resume from before that must refetch the fleet
	// instead.
	ring    []cache.Notice
	since   uint64
	known   bool
	clients map[*sseClient]struct{}
	sub     *cache.Subscription
}

// sseClient is one stream's position in its tenant's ring. The hub never
// blocks on, or drops, a slow client: it only wakes it, and the client's
// writer takes every notice after sent from the ring. A client that falls
// further behind than the ring reaches gets a resync (refetch the fleet)
// and goes on from the newest notice, without reconnecting.
type sseClient struct {
	wake chan struct{} // capacity 1: notices arrived since the last take
	sent uint64        // newest version handed to the writer (under the tenant's mu)
}

func newHub(c *cache.Cache, log *slog.Logger, ringSize int, gauge func(float64)) *hub {
	return &hub{c: c, log: log, ringSize: ringSize, gauge: gauge, tenants: map[string]*tenantHub{}}
}

// tenant returns the tenant's hub, subscribing to its notices on first use.
// The subscription stays for the life of the process so the ring keeps
// filling between a client's disconnect and its reconnect.
func (h *hub) tenant(ctx context.Context, tenantID string) (*tenantHub, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, fmt.Errorf("stream hub closed")
	}
	if th := h.tenants[tenantID]; th != nil {
		return th, nil
	}
	sub, err := h.c.Subscribe(context.WithoutCancel(ctx), tenantID)
	if err != nil {
		return nil, fmt.Errorf("subscribe tenant %s: %w", tenantID, err)
	}
	th := &tenantHub{clients: map[*sseClient]struct{}{}, sub: sub}
	// Notices after this version reach the subscription (it was set up
	// first); if the cache cannot say, coverage starts at the first notice.
	if v, err := h.c.Version(ctx, tenantID); err == nil {
		th.since, th.known = v, true
	}
	h.tenants[tenantID] = th
	go th.run(h.ringSize)
	return th, nil
}

func (th *tenantHub) run(ringSize int) {
	// The ring may grow a quarter past ringSize before the oldest notices
	// are dropped in one copy, so trimming costs O(1) per notice.
	slack := max(ringSize/4, 1)
	for n := range th.sub.C {
		th.mu.Lock()
		if !th.known {
			th.since, th.known = n.Version-1, true
		}
		// One Redis channel (or the local notifier's lock) keeps notices
		// in version order. Versions may skip (a cache fill on a read miss
		// moves the version without a notice), so a gap is not taken for
		// notices the subscription dropped; the backend marks the notice
		// after a drop (Lost), and the ring then starts again from it:
		// every client behind it gets a resync (refetch the fleet) instead
		// of going on without the lost states.
		if n.Lost {
			th.since = n.Version - 1
			th.ring = th.ring[:0]
		}
		th.ring = append(th.ring, n)
		if over := len(th.ring) - ringSize; over >= slack {
			th.since = th.ring[over-1].Version
			th.ring = append(th.ring[:0], th.ring[over:]...)
		}
		for cl := range th.clients {
			select {
			case cl.wake <- struct{}{}:
			default: // already woken; it takes everything when it runs
			}
		}
		th.mu.Unlock()
	}
}

// newest is the version of the newest notice the hub knows of.
func (th *tenantHub) newest() uint64 {
	if len(th.ring) > 0 {
		return th.ring[len(th.ring)-1].Version
	}
	return th.since
}

// join registers a client and returns what it missed after lastID; resync
// is true when the ring no longer reaches back that far.
func (th *tenantHub) join(lastID uint64, resume bool) (cl *sseClient, replay []cache.Notice, resync bool) {
	th.mu.Lock()
	defer th.mu.Unlock()
	cl = &sseClient{wake: make(chan struct{}, 1)}
	th.clients[cl] = struct{}{}
	if !resume || !th.known || lastID < th.since {
		cl.sent = th.newest()
		return cl, nil, resume
	}
	cl.sent = lastID
	replay, _ = th.take(cl, nil)
	return cl, replay, false
}

// take appends to dst the notices after the client's position and moves
// it to the newest; resync is true (and nothing is appended) when the ring
// no longer holds the notice right after its position. Callers hold mu.
func (th *tenantHub) take(cl *sseClient, dst []cache.Notice) (_ []cache.Notice, resync bool) {
	if th.known && cl.sent < th.since {
		cl.sent = th.newest()
		return dst, true
	}
	i := sort.Search(len(th.ring), func(i int) bool { return th.ring[i].Version > cl.sent })
	dst = append(dst, th.ring[i:]...)
	if len(dst) > 0 {
		cl.sent = dst[len(dst)-1].Version
	}
	return dst, false
}

// next is take under the tenant's lock, for the client's writer.
func (th *tenantHub) next(cl *sseClient, dst []cache.Notice) ([]cache.Notice, bool) {
	th.mu.Lock()
	defer th.mu.Unlock()
	return th.take(cl, dst)
}

func (th *tenantHub) leave(cl *sseClient) {
	th.mu.Lock()
	defer th.mu.Unlock()
	delete(th.clients, cl)
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, th := range h.tenants {
		th.sub.Close()
	}
}

// serveStream is GET /api/v1/stream: Server-Sent Events of the caller's
// fleet. Events: "drone" (data: the DroneView, id: the tenant's version),
// "alert" (data: the alert after a change: raised, updated, acknowledged,
// closed; no id, read from the store every alertPoll) and
// "resync" (the client missed more than the ring holds and should refetch
// the list). Comments are heartbeats that keep proxies from closing the
// connection.
func (s *server) serveStream(w http.ResponseWriter, r *http.Request) {
	tenantID := TenantFrom(r.Context())
	th, err := s.hub.tenant(r.Context(), tenantID)
	if err != nil {
		s.log.WarnContext(r.Context(), "stream unavailable", "tenant", tenantID, "err", err)
		unavailable(w, "live updates are unavailable")
		return
	}
	var lastID uint64
	// Last-Event-ID on reconnects; since= on the first connection, which
	// browsers' EventSource cannot give headers.
	raw := r.Header.Get("Last-Event-ID")
	if raw == "" {
		raw = r.URL.Query().Get("since")
	}
	resume := raw != ""
	if resume {
		if lastID, err = strconv.ParseUint(raw, 10, 64); err != nil {
			resume, lastID = true, 0 // unknown id: start over with a resync
		}
	}
	// Fleet updates come from the cache; a store outage only delays alerts.
	alerts, err := s.newAlertCursor(r)
	if err != nil {
		s.log.WarnContext(r.Context(), "stream alert cursor", "tenant", tenantID, "err", err)
	}
	cl, replay, resync := th.join(lastID, resume)
	defer th.leave(cl)
	s.hub.gauge(1)
	defer s.hub.gauge(-1)

	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives any server write timeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	buf := make([]byte, 0, 1024)
	buf = append(buf, "retry: 2000\n: connected\n\n"...)
	if resync {
		buf = append(buf, "event: resync\ndata: {}\n\n"...)
	}
	for _, n := range replay {
		buf = appendEvent(buf, n)
	}
	if !s.write(w, rc, buf) {
		return
	}
	var pending []cache.Notice
	tick := time.NewTicker(s.heartbeat)
	defer tick.Stop()
	alertTick := time.NewTicker(alertPoll)
	defer alertTick.Stop()
	for {
		buf = buf[:0]
		select {
		case <-r.Context().Done():
			return
		case <-cl.wake:
			// Everything after the last write goes in this one.
			var resync bool
			if pending, resync = th.next(cl, pending[:0]); resync {
				buf = append(buf, "event: resync\ndata: {}\n\n"...)
			}
			for _, n := range pending {
				buf = appendEvent(buf, n)
			}
			clear(pending) // drop references to the ring's views
			if len(buf) == 0 {
				continue
			}
		case <-tick.C:
			buf = append(buf, ": heartbeat\n\n"...)
		case <-alertTick.C:
			// Alerts come from the store, not the cache's notices: a failed
			// read skips this poll and the next one catches up (alertLag).
			if buf, err = s.pollAlerts(r, alerts, buf, true); err != nil {
				s.log.WarnContext(r.Context(), "stream alert poll failed", "tenant", tenantID, "err", err)
			}
			if len(buf) == 0 {
				continue
			}
		}
		if !s.write(w, rc, buf) {
			return
		}
	}
}

func (s *server) write(w http.ResponseWriter, rc *http.ResponseController, b []byte) bool {
	if _, err := w.Write(b); err != nil {
		return false
	}
	return rc.Flush() == nil
}

func appendEvent(b []byte, n cache.Notice) []byte {
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, n.Version, 10)
	b = append(b, "\nevent: drone\ndata: "...)
	b = append(b, n.Drone...)
	return append(b, "\n\n"...)
}
