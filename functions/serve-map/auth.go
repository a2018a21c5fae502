package function

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dronetrack/dronetrack/core/accounts"
	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/core/ratelimit"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// Cookies. Over HTTPS the session cookie is __Host-dt_session: the prefix
// makes the browser insist on Secure, Path=/ and no Domain, so no sibling
// host or plain-HTTP page can plant or read it. Browsers refuse __Host-
// (and Secure) cookies from plain http://, so one-machine mode on
// http://127.0.0.1 falls back to dt_session (HttpOnly, SameSite=Lax,
// Path=/, no Secure): loopback traffic never leaves the machine. A request
// counts as HTTPS when it arrived over TLS, says X-Forwarded-Proto: https
// (Knative's ingress terminates TLS), or COOKIE_SECURE=always.
//
// The CSRF token travels in a second, script-readable cookie
// (__Host-dt_csrf / dt_csrf): the page echoes it in the X-CSRF-Token header
// of every state-changing request, and the server compares its hash with
// the session's (double submit bound to the session). Requests whose Origin
// names another host, or whose Sec-Fetch-Site is cross-site or same-site,
// are refused before that.
const (
	sessionCookieSecure   = "__Host-dt_session"
	sessionCookieLoopback = "dt_session"
	csrfCookieSecure      = "__Host-dt_csrf"
	csrfCookieLoopback    = "dt_csrf"
	// CSRFHeader carries the CSRF token on POST, PATCH and DELETE.
	CSRFHeader = "X-CSRF-Token"
)

type principalKey struct{}

func principalFrom(ctx context.Context) (accounts.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(accounts.Principal)
	return p, ok
}

func (s *server) secure(r *http.Request) bool {
	return s.cookieSecure || r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (s *server) cookieNames(r *http.Request) (session, csrf string) {
	if s.secure(r) {
		return sessionCookieSecure, csrfCookieSecure
	}
	return sessionCookieLoopback, csrfCookieLoopback
}

// authenticate attributes the request to the session's user and tenant;
// without a valid session the request stays anonymous (requireTenant
// answers 401).
func (s *server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, _ := s.cookieNames(r)
		if c, err := r.Cookie(name); err == nil && c.Value != "" {
			p, err := s.accounts.Authenticate(r.Context(), c.Value)
			switch {
			case err == nil:
				ctx := context.WithValue(WithTenant(r.Context(), p.User.TenantID), principalKey{}, p)
				r = r.WithContext(ctx)
			case !errors.Is(err, accounts.ErrUnauthenticated):
				s.log.WarnContext(r.Context(), "session lookup failed", "err", err)
				unavailable(w, "sessions are unavailable")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// sameOrigin reports whether a browser sent the request from our own pages.
// Non-browser clients send neither header and pass; they still need the
// CSRF token for session routes.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return false
		}
	}
	return true
}

// originCheck guards state-changing routes that have no session yet
// (sign-up, log-in, invite acceptance) against cross-site forms.
func originCheck(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !safeMethod(r.Method) && !sameOrigin(r) {
			problem.Write(w, http.StatusForbidden, "", "cross-origin request refused")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// csrf requires, on state-changing requests, a same-origin browser and the
// session's CSRF token in X-CSRF-Token.
func (s *server) csrf(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !safeMethod(r.Method) {
			p, _ := principalFrom(r.Context())
			if !sameOrigin(r) || !accounts.CheckCSRF(p.Session, r.Header.Get(CSRFHeader)) {
				problem.Write(w, http.StatusForbidden, "", "missing or wrong CSRF token (send the dt_csrf cookie's value in "+CSRFHeader+")")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// requireManager refuses viewers: changes to the fleet (drones, keys,
// invites) and to its alerting (settings, geofences, webhooks) are for
// owners and admins.
func requireManager(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, _ := principalFrom(r.Context()); !p.User.Role.CanManage() {
			problem.Write(w, http.StatusForbidden, "", "your role may not change the fleet or its alerting; ask an owner or admin")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// accountRoutes are the public (no session) account endpoints.
func (s *server) publicAccountRoutes(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(originCheck)
		r.Post("/api/v1/auth/signup", s.signUp)
		r.Post("/api/v1/auth/login", s.logIn)
		r.Post("/api/v1/invites/{token}/accept", s.acceptInvite)
	})
}

// sessionAccountRoutes need a session (and CSRF for changes).
func (s *server) sessionAccountRoutes(r chi.Router) {
	r.Post("/api/v1/auth/logout", s.logOut)
	r.Get("/api/v1/me", s.me)
	r.Post("/api/v1/me/password", s.changePassword)
	r.Group(func(r chi.Router) {
		r.Use(requireManager)
		r.Post("/api/v1/invites", s.createInvite)
		r.Post("/api/v1/drones", s.addDrone)
		r.Patch("/api/v1/drones/{id}", s.renameDrone)
		r.Delete("/api/v1/drones/{id}", s.retireDrone)
		r.Post("/api/v1/drones/{id}/key", s.rotateKey)
		r.Delete("/api/v1/drones/{id}/key", s.revokeKey)
	})
}

// readJSON decodes a small JSON body into v; false after answering 400.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		badBody(w, events.FieldError{Field: "body", Pointer: "", Detail: "want a JSON object: " + err.Error()})
		return false
	}
	return true
}

func (s *server) clientIP(r *http.Request) string { return ratelimit.ClientIP(r, s.ipHops) }

// setLogin sets the session and CSRF cookies and answers with the user.
func (s *server) setLogin(w http.ResponseWriter, r *http.Request, l accounts.Login, status int) {
	sessName, csrfName := s.cookieNames(r)
	secure := s.secure(r)
	maxAge := int(s.sessionTTL / time.Second)
	http.SetCookie(w, &http.Cookie{Name: sessName, Value: l.Token, Path: "/", HttpOnly: true, Secure: secure,
		SameSite: http.SameSiteLaxMode, MaxAge: maxAge})
	http.SetCookie(w, &http.Cookie{Name: csrfName, Value: l.CSRF, Path: "/", Secure: secure,
		SameSite: http.SameSiteStrictMode, MaxAge: maxAge})
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]any{"user": userView(l.User), "csrfToken": l.CSRF})
}

func (s *server) clearCookies(w http.ResponseWriter, r *http.Request) {
	sessName, csrfName := s.cookieNames(r)
	for _, n := range []string{sessName, csrfName} {
		http.SetCookie(w, &http.Cookie{Name: n, Value: "", Path: "/", Secure: s.secure(r), MaxAge: -1,
			HttpOnly: n == sessName, SameSite: http.SameSiteLaxMode})
	}
}

type userJSON struct {
	ID       string `json:"id"`
	TenantID string `json:"tenantId"`
	Email    string `json:"email"`
	Role     string `json:"role"`
}

func userView(u store.User) userJSON {
	return userJSON{ID: u.ID, TenantID: u.TenantID, Email: u.Email, Role: string(u.Role)}
}

// accountError answers a core/accounts error.
func (s *server) accountError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		rl  *accounts.RateLimitedError
		inv *accounts.InvalidError
	)
	switch {
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", strconv.Itoa(int(max(1, (rl.RetryAfter+time.Second-1)/time.Second))))
		problem.Write(w, http.StatusTooManyRequests, "", "too many attempts; try again later")
	case errors.As(err, &inv):
		var fe []events.FieldError
		for f, d := range inv.Fields {
			fe = append(fe, events.FieldError{Field: f, Pointer: "/" + f, Detail: d})
		}
		badBody(w, fe...)
	case errors.Is(err, accounts.ErrInvalidCredentials):
		problem.Write(w, http.StatusUnauthorized, "", "wrong email or password")
	case errors.Is(err, accounts.ErrEmailTaken):
		problem.Write(w, http.StatusConflict, "", "that email is already registered; log in instead")
	case errors.Is(err, accounts.ErrForbidden):
		problem.Write(w, http.StatusForbidden, "", "your role may not do that")
	case errors.Is(err, accounts.ErrNotFound):
		problem.Write(w, http.StatusNotFound, "", "no such resource", problem.WithInstance(r.URL.Path))
	default:
		s.storeFailed(w, r, err)
	}
}

type credentials struct {
	Organisation string `json:"organisation,omitempty"`
	Email        string `json:"email"`
	Password     string `json:"password"`
}

func (s *server) signUp(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if !readJSON(w, r, &c) {
		return
	}
	l, err := s.accounts.SignUp(r.Context(), c.Organisation, c.Email, c.Password, s.clientIP(r))
	if err != nil {
		s.accountError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "signed up", "tenant", l.User.TenantID, "user", l.User.ID)
	s.setLogin(w, r, l, http.StatusCreated)
}

func (s *server) logIn(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if !readJSON(w, r, &c) {
		return
	}
	l, err := s.accounts.LogIn(r.Context(), c.Email, c.Password, s.clientIP(r))
	if err != nil {
		s.accountError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "logged in", "tenant", l.User.TenantID, "user", l.User.ID)
	s.setLogin(w, r, l, http.StatusOK)
}

func (s *server) logOut(w http.ResponseWriter, r *http.Request) {
	name, _ := s.cookieNames(r)
	if c, err := r.Cookie(name); err == nil {
		if err := s.accounts.LogOut(r.Context(), c.Value); err != nil {
			s.storeFailed(w, r, err)
			return
		}
	}
	s.clearCookies(w, r)
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) me(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	body := map[string]any{"user": userView(p.User)}
	if t, err := s.store.Tenant(r.Context(), p.User.TenantID); err == nil {
		body["tenant"] = map[string]string{"id": t.ID, "name": t.Name}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, body)
}

func (s *server) changePassword(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Current  string `json:"current"`
		Password string `json:"password"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	p, _ := principalFrom(r.Context())
	l, err := s.accounts.ChangePassword(r.Context(), p, body.Current, body.Password, s.clientIP(r))
	if err != nil {
		s.accountError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "password changed", "tenant", p.User.TenantID, "user", p.User.ID)
	s.setLogin(w, r, l, http.StatusOK)
}

func (s *server) createInvite(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Role string `json:"role"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	p, _ := principalFrom(r.Context())
	inv, err := s.accounts.CreateInvite(r.Context(), p, store.Role(body.Role))
	if err != nil {
		s.accountError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, map[string]any{"token": inv.Token, "path": "/account/invite.html#" + inv.Token,
		"role": inv.Invite.Role, "expiresAt": inv.Invite.ExpiresAt})
}

func (s *server) acceptInvite(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if !readJSON(w, r, &c) {
		return
	}
	l, err := s.accounts.AcceptInvite(r.Context(), chi.URLParam(r, "token"), c.Email, c.Password, s.clientIP(r))
	if err != nil {
		s.accountError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "invite accepted", "tenant", l.User.TenantID, "user", l.User.ID)
	s.setLogin(w, r, l, http.StatusCreated)
}

type droneJSON struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	HasKey bool   `json:"hasKey"`
}

func (s *server) addDrone(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	p, _ := principalFrom(r.Context())
	nk, err := s.accounts.AddDrone(r.Context(), p, body.Name)
	if err != nil {
		s.accountError(w, r, err)
		return
	}
	s.fleetChanged(r, &nk.Drone)
	s.log.InfoContext(r.Context(), "drone added", "tenant", p.User.TenantID, "drone", nk.Drone.ID, "user", p.User.ID)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, map[string]any{"drone": droneJSON{ID: nk.Drone.ID, Name: nk.Drone.Name, HasKey: true}, "key": nk.Key})
}

func (s *server) renameDrone(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	p, _ := principalFrom(r.Context())
	d, err := s.accounts.RenameDrone(r.Context(), p, chi.URLParam(r, "id"), body.Name)
	if err != nil {
		s.accountError(w, r, err)
		return
	}
	s.fleetChanged(r, &d)
	writeJSON(w, http.StatusOK, droneJSON{ID: d.ID, Name: d.Name, HasKey: d.KeyHash != ""})
}

func (s *server) retireDrone(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	id := chi.URLParam(r, "id")
	if err := s.accounts.RetireDrone(r.Context(), p, id); err != nil {
		s.accountError(w, r, err)
		return
	}
	s.fleetChanged(r, nil)
	s.log.InfoContext(r.Context(), "drone retired", "tenant", p.User.TenantID, "drone", id, "user", p.User.ID)
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) rotateKey(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	nk, err := s.accounts.RotateKey(r.Context(), p, chi.URLParam(r, "id"))
	if err != nil {
		s.accountError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "drone key rotated", "tenant", p.User.TenantID, "drone", nk.Drone.ID, "user", p.User.ID)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"drone": droneJSON{ID: nk.Drone.ID, Name: nk.Drone.Name, HasKey: true}, "key": nk.Key})
}

func (s *server) revokeKey(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	id := chi.URLParam(r, "id")
	if err := s.accounts.RevokeKey(r.Context(), p, id); err != nil {
		s.accountError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "drone key revoked", "tenant", p.User.TenantID, "drone", id, "user", p.User.ID)
	w.WriteHeader(http.StatusNoContent)
}

// fleetChanged tells the cache: a new or renamed drone is registered, a
// retired one invalidates the tenant's fleet. A cache failure is logged
// only: the store is right, and the cache reloads on its own.
func (s *server) fleetChanged(r *http.Request, d *store.Drone) {
	ctx := r.Context()
	var err error
	if d != nil {
		err = s.cache.Register(ctx, *d)
	} else {
		err = s.cache.Invalidate(ctx, TenantFrom(ctx))
	}
	if err != nil {
		s.log.WarnContext(ctx, "cache update after fleet change failed", "tenant", TenantFrom(ctx), "err", err)
	}
}

func badBody(w http.ResponseWriter, fe ...events.FieldError) {
	problem.Write(w, http.StatusBadRequest, "Invalid input", "fix the named fields", problem.WithErrors(fe))
}

// sessionBound ends a long-lived request (the SSE stream) soon after its
// session does: every sessionRecheck (SESSION_RECHECK) the
// session is looked up again, and when it is gone (log-out, password
// change, expiry, disabled user) the request's context is cancelled, so the
// stream closes instead of serving a logged-out browser until it reconnects.
func (s *server) sessionBound(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, _ := s.cookieNames(r)
		c, err := r.Cookie(name)
		if err != nil || s.sessionRecheck <= 0 {
			next(w, r)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		go func() {
			t := time.NewTicker(s.sessionRecheck)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if _, err := s.accounts.Authenticate(ctx, c.Value); errors.Is(err, accounts.ErrUnauthenticated) {
						s.log.InfoContext(ctx, "stream closed: session ended", "tenant", TenantFrom(ctx))
						cancel()
						return
					}
				}
			}
		}()
		next(w, r.WithContext(ctx))
	}
}
