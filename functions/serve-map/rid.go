package function

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/core/remoteid"
	"github.com/dronetrack/dronetrack/core/ridauth"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// Network Remote ID (ASTM F3411-22a) Service Provider. serve-map answers
// display providers because it already holds what they ask for: the cache's
// per-tenant geo index of every drone's latest position (FleetInBox), the
// store behind it, and the website where owners declare identities. A
// separate function would duplicate the cache reader and its store
// fallback. The endpoints are machine-to-machine: bearer tokens of the
// configured authority, no sessions, no CSRF.
//
// Config (environment): RID_AUDIENCE (this SP's host names, comma
// separated; required to serve Remote ID), RID_JWKS_URL or
// RID_PUBLIC_KEY_FILE (the authority's keys), RID_SECRET (key of the
// operator-location obfuscation and utm_id; DRONE_KEY_PEPPER when unset),
// RID_REFRESH (how stale the list of Remote ID tenants, identities and test
// injections may be on a replica, default 1s), RID_INJECTION (true enables
// InterUSS test injection; default false).

// ridService is the Remote ID state of one serve-map replica.
type ridService struct {
	verifier *ridauth.Verifier // nil: Remote ID not configured, endpoints answer 503
	secret   []byte
	refresh  time.Duration
	// injection enables InterUSS test injection (RID_INJECTION): off, the
	// injection routes answer 404 and stored tests are not reported, so a
	// production SP shows no test flights whatever scopes its authority
	// grants.
	injection bool
	store     Store
	log       *slog.Logger

	mu   sync.Mutex // held while a snapshot loads: one load per replica at a time
	snap *ridSnapshot
}

// ridSnapshot is what the SP endpoints read besides the cache: the tenants
// publishing Remote ID, their drones' identities, and live test injections.
type ridSnapshot struct {
	at      time.Time
	tenants []string
	idents  map[string]*tenantIdents // by tenant
	owner   map[string]string        // drone -> tenant, for /details
	tests   []*ridTest
}

type tenantIdents struct {
	version int64
	byDrone map[string]*remoteid.Identity
}

type ridTest struct {
	id, version string
	flights     []remoteid.TestFlight
}

// configureRemoteID reads the RID_* settings. Without an audience and a key
// source Remote ID stays off (endpoints answer 503) and serve-map starts as
// before; a half-done configuration is an error.
func (s *server) configureRemoteID(ctx context.Context, cfg Config) error {
	rs := &ridService{store: s.store, log: s.log, refresh: cfg.RIDRefresh}
	s.rid = rs
	rs.injection = cfg.RIDInjection == "true" || cfg.RIDInjection == "on"
	switch {
	case cfg.RIDSecret != "":
		rs.secret = []byte(cfg.RIDSecret)
	case cfg.Pepper != "":
		rs.secret = []byte("remote-id\x00" + cfg.Pepper)
	default:
		// Replicas then obfuscate differently; say so.
		rs.secret = make([]byte, 32)
		_, _ = rand.Read(rs.secret)
		s.log.WarnContext(ctx, "RID_SECRET and DRONE_KEY_PEPPER unset: operator-location obfuscation is keyed per replica")
	}
	var auds []string
	for _, a := range strings.Split(cfg.RIDAudience, ",") {
		if a = strings.TrimSpace(a); a != "" {
			auds = append(auds, a)
		}
	}
	jwks, keyFile := cfg.RIDJWKSURL, cfg.RIDPublicKeyFile
	if len(auds) == 0 && jwks == "" && keyFile == "" {
		return nil
	}
	if len(auds) == 0 || (jwks == "" && keyFile == "") {
		return errors.New("serve-map: Remote ID needs RID_AUDIENCE and one of RID_JWKS_URL or RID_PUBLIC_KEY_FILE")
	}
	v, err := ridauth.New(ctx, ridauth.Config{JWKSURL: jwks, PublicKeyFile: keyFile, Audiences: auds, Now: s.now})
	if err != nil {
		return fmt.Errorf("serve-map: %w", err)
	}
	rs.verifier = v
	return nil
}

func (rs *ridService) close() {
	if rs != nil && rs.verifier != nil {
		rs.verifier.Close()
	}
}

// invalidate makes the next request reload the snapshot (after this
// replica changed what it holds).
func (rs *ridService) invalidate() {
	rs.mu.Lock()
	rs.snap = nil
	rs.mu.Unlock()
}

// snapshot returns a snapshot at most refresh old, loading it when older.
// Identities are reloaded only for tenants whose version changed, and
// injected flights only for tests not seen before.
func (rs *ridService) snapshot(ctx context.Context, now time.Time) (*ridSnapshot, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.snap != nil && now.Sub(rs.snap.at) < rs.refresh && !now.Before(rs.snap.at) {
		return rs.snap, nil
	}
	prev := rs.snap
	if prev == nil {
		prev = &ridSnapshot{}
	}
	tenants, err := rs.store.RemoteIDTenants(ctx)
	if err != nil {
		return nil, fmt.Errorf("remote id tenants: %w", err)
	}
	next := &ridSnapshot{at: now, idents: map[string]*tenantIdents{}, owner: map[string]string{}}
	for _, t := range tenants {
		next.tenants = append(next.tenants, t.ID)
		ti := prev.idents[t.ID]
		if ti == nil || ti.version != t.RemoteIDVersion {
			ds, err := rs.store.Drones(ctx, t.ID)
			if err != nil {
				return nil, fmt.Errorf("remote id identities of tenant %s: %w", t.ID, err)
			}
			ti = &tenantIdents{version: t.RemoteIDVersion, byDrone: map[string]*remoteid.Identity{}}
			for _, d := range ds {
				ti.byDrone[d.ID] = d.RemoteID
			}
		}
		next.idents[t.ID] = ti
		for id := range ti.byDrone {
			next.owner[id] = t.ID
		}
	}
	var tests []store.RIDTest
	if rs.injection {
		if tests, err = rs.store.RIDTests(ctx, now); err != nil {
			return nil, fmt.Errorf("remote id tests: %w", err)
		}
	}
	known := map[string]*ridTest{}
	for _, t := range prev.tests {
		known[t.id+"\x00"+t.version] = t
	}
	for _, t := range tests {
		if k := known[t.ID+"\x00"+t.Version]; k != nil {
			next.tests = append(next.tests, k)
			continue
		}
		fs, err := remoteid.UnpackFlights(t.ID, t.Flights)
		if err != nil {
			rs.log.ErrorContext(ctx, "remote id test unreadable; skipped", "test", t.ID, "err", err)
			continue
		}
		next.tests = append(next.tests, &ridTest{id: t.ID, version: t.Version, flights: fs})
	}
	rs.snap = next
	return next, nil
}

// ridProblem answers a Remote ID endpoint's error: RFC 9457 problem JSON
// that also carries the standard's ErrorResponse member "message", so both
// kinds of client read it.
func ridProblem(w http.ResponseWriter, status int, detail string, fe ...events.FieldError) {
	p := problem.New(status, "", detail)
	if len(fe) > 0 {
		p.Errors = fe
	}
	body, err := json.Marshal(struct {
		*problem.Details
		Message string `json:"message"`
	}{p, detail})
	if err != nil {
		problem.WriteDetails(w, p)
		return
	}
	w.Header().Set("Content-Type", problem.ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// requireRIDScope admits requests whose bearer token grants scope: 401 for
// no or a bad token (with RFC 6750's WWW-Authenticate), 403 for a token
// without the scope, 503 when Remote ID is not configured.
func (s *server) requireRIDScope(scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if s.rid == nil || s.rid.verifier == nil {
				w.Header().Set("Retry-After", "60")
				ridProblem(w, http.StatusServiceUnavailable, "Remote ID is not configured on this service provider")
				return
			}
			c, err := s.rid.verifier.Check(r.Header.Get("Authorization"), scope)
			switch {
			case err == nil:
				s.log.DebugContext(r.Context(), "remote id request", "sub", c.Subject, "scope", scope, "path", r.URL.Path)
				next.ServeHTTP(w, r)
			case errors.Is(err, ridauth.ErrNoToken):
				w.Header().Set("WWW-Authenticate", `Bearer scope="`+scope+`"`)
				ridProblem(w, http.StatusUnauthorized, "a bearer access token is required")
			case errors.Is(err, ridauth.ErrScope):
				w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+scope+`"`)
				ridProblem(w, http.StatusForbidden, "the access token does not grant scope "+scope)
			default:
				s.log.InfoContext(r.Context(), "remote id token refused", "path", r.URL.Path, "err", err)
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				ridProblem(w, http.StatusUnauthorized, "the access token is invalid or expired")
			}
		})
	}
}
