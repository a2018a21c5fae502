// Package accounts is sign-up, log-in, sessions, invites, passwords and
// fleet management for the website, on top of store.Accounts.
//
// Security decisions, in one place:
//   - Passwords: argon2id (Params), constant-time compare. Log-in answers
//     ErrInvalidCredentials alike for an unknown email, a wrong password and
//     a disabled user, and hashes against a dummy hash when the email is
//     unknown, so neither the answer nor its timing tells which emails exist.
//     Sign-up necessarily reports a taken email (ErrEmailTaken); it is rate
//     limited like log-in.
//   - Sessions: a random 256-bit token in the cookie; the store keeps only
//     its SHA-256 (a leaked table is no set of cookies). Expiry is server
//     side: SessionTTL after the last use (sliding, renewed at most once per
//     RenewAfter to spare writes). Each session has a random CSRF token whose
//     hash is stored; state-changing requests must echo the token.
//   - Invites: a random 256-bit one-time token (hash stored), InviteTTL.
//   - Rate limit: token bucket per email + client IP (LoginBurst attempts,
//     one more every LoginRefill), answered with ErrRateLimited.
//   - Roles: owners and admins manage drones and invite; viewers only read;
//     only owners may invite owners.
//   - Drone keys: core/keys (shown once, stored as a peppered HMAC).
package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dronetrack/dronetrack/core/keys"
	"github.com/dronetrack/dronetrack/core/ratelimit"
	"github.com/dronetrack/dronetrack/core/store"
)

// Errors the web layer maps to answers.
var (
	// ErrInvalidCredentials is the one answer to every failed log-in.
	ErrInvalidCredentials = errors.New("invalid email or password")
	ErrEmailTaken         = errors.New("email already registered")
	// ErrUnauthenticated: no session, or an expired or unknown one.
	ErrUnauthenticated = errors.New("not logged in")
	ErrForbidden       = errors.New("not allowed for your role")
	ErrNotFound        = errors.New("not found")
)

// RateLimitedError says how long to wait before trying again.
type RateLimitedError struct{ RetryAfter time.Duration }

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("too many attempts; retry after %s", e.RetryAfter.Round(time.Second))
}

// InvalidError names the input fields that were refused.
type InvalidError struct{ Fields map[string]string }

func (e *InvalidError) Error() string {
	var b strings.Builder
	b.WriteString("invalid input:")
	for k, v := range e.Fields {
		fmt.Fprintf(&b, " %s: %s;", k, v)
	}
	return b.String()
}

// Config tunes the service; zero fields take the defaults noted.
type Config struct {
	Params      Params        // DefaultParams
	SessionTTL  time.Duration // 12h since last use
	RenewAfter  time.Duration // 1m
	InviteTTL   time.Duration // 72h
	LoginBurst  int           // 5
	LoginRefill time.Duration // 1m
	// Pepper hashes drone keys (DRONE_KEY_PEPPER); needed for drone keys.
	Pepper []byte
	Now    func() time.Time
}

// MinPasswordLen is the shortest password accepted (NIST SP 800-63B).
const MinPasswordLen = 10

// Store is the part of the store the account service uses: users,
// sessions, invites and drone management (store.Accounts), and the tenants
// and drones that signup and drone registration create and read.
type Store interface {
	store.Accounts
	CreateTenant(ctx context.Context, t store.Tenant) error
	Tenant(ctx context.Context, id string) (store.Tenant, error)
	CreateDrone(ctx context.Context, d store.Drone) error
	Drone(ctx context.Context, tenantID, droneID string) (store.Drone, error)
}

var _ Store = store.Store(nil)

// Service implements the account use cases.
type Service struct {
	st  Store
	cfg Config
	// limit (per email + client IP) and signups (per client IP) are token
	// buckets held in memory. Each replica limits on its own, so N replicas
	// allow N times the rate: still a hard cap on online guessing, and no
	// shared state on the login path.
	limit   *ratelimit.Limiter
	dummy   string
	signups *ratelimit.Limiter
}

// New returns a service on st.
func New(st Store, cfg Config) (*Service, error) {
	if cfg.Params == (Params{}) {
		cfg.Params = DefaultParams
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.SessionTTL, 12*time.Hour)
	def(&cfg.RenewAfter, time.Minute)
	def(&cfg.InviteTTL, 72*time.Hour)
	def(&cfg.LoginRefill, time.Minute)
	if cfg.LoginBurst <= 0 {
		cfg.LoginBurst = 5
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	dummy, err := hashPassword(cfg.Params, "dummy password for unknown emails")
	if err != nil {
		return nil, err
	}
	// One token refills per LoginRefill.
	login := ratelimit.Limit{Rate: float64(time.Second) / float64(cfg.LoginRefill), Burst: cfg.LoginBurst}
	return &Service{st: st, cfg: cfg, dummy: dummy,
		limit:   ratelimit.New(login),
		signups: ratelimit.New(login)}, nil
}

// NormaliseEmail trims and lower-cases an email address.
func NormaliseEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

// Login is a new session: Token goes in the cookie, CSRF to the page. Both
// are shown only here.
type Login struct {
	Token   string
	CSRF    string
	Session store.Session
	User    store.User
}

// Principal is who a request acts for, from its session only.
type Principal struct {
	User    store.User
	Session store.Session
}

func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// HashToken is how session, CSRF and invite tokens are stored.
func HashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

func randomID(prefix string) (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return prefix + hex.EncodeToString(b[:]), nil
}

func checkCredentials(email, password string) error {
	f := map[string]string{}
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || len(email) > 254 {
		f["email"] = "must be an email address"
	}
	if utf8.RuneCountInString(password) < MinPasswordLen {
		f["password"] = fmt.Sprintf("must have at least %d characters", MinPasswordLen)
	} else if len(password) > 1024 {
		f["password"] = "must have at most 1024 bytes"
	}
	if len(f) > 0 {
		return &InvalidError{Fields: f}
	}
	return nil
}

// SignUp creates a tenant named tenantName and its owner, and logs in.
func (s *Service) SignUp(ctx context.Context, tenantName, email, password, clientIP string) (Login, error) {
	email = NormaliseEmail(email)
	tenantName = strings.TrimSpace(tenantName)
	if ok, wait := s.signups.Allow(clientIP, s.cfg.Now()); !ok {
		return Login{}, &RateLimitedError{RetryAfter: wait}
	}
	err := checkCredentials(email, password)
	if tenantName == "" || len(tenantName) > 200 {
		var ie *InvalidError
		if !errors.As(err, &ie) {
			ie = &InvalidError{Fields: map[string]string{}}
		}
		ie.Fields["organisation"] = "must have 1 to 200 characters"
		err = ie
	}
	if err != nil {
		return Login{}, err
	}
	if _, err := s.st.UserByEmail(ctx, email); err == nil {
		return Login{}, ErrEmailTaken
	} else if !errors.Is(err, store.ErrNotFound) {
		return Login{}, fmt.Errorf("sign up: %w", err)
	}
	tid, err := randomID("t")
	if err != nil {
		return Login{}, err
	}
	now := s.cfg.Now().UTC()
	if err := s.st.CreateTenant(ctx, store.Tenant{ID: tid, Name: tenantName, CreatedAt: now}); err != nil {
		return Login{}, fmt.Errorf("sign up: %w", err)
	}
	u, err := s.createUser(ctx, tid, email, password, store.RoleOwner)
	if err != nil {
		// The tenant stays without users: harmless and invisible.
		return Login{}, err
	}
	return s.newSession(ctx, u)
}

// CreateUser adds a user to an existing tenant (admin command).
func (s *Service) CreateUser(ctx context.Context, tenantID, email, password string, role store.Role) (store.User, error) {
	email = NormaliseEmail(email)
	if err := checkCredentials(email, password); err != nil {
		return store.User{}, err
	}
	if !role.Valid() {
		return store.User{}, &InvalidError{Fields: map[string]string{"role": "must be owner, admin or viewer"}}
	}
	if _, err := s.st.Tenant(ctx, tenantID); err != nil {
		return store.User{}, fmt.Errorf("create user: %w", err)
	}
	return s.createUser(ctx, tenantID, email, password, role)
}

func (s *Service) createUser(ctx context.Context, tenantID, email, password string, role store.Role) (store.User, error) {
	hash, err := hashPassword(s.cfg.Params, password)
	if err != nil {
		return store.User{}, err
	}
	uid, err := randomID("u")
	if err != nil {
		return store.User{}, err
	}
	u := store.User{ID: uid, TenantID: tenantID, Email: email, Role: role, PasswordHash: hash,
		CreatedAt: s.cfg.Now().UTC()}
	if err := s.st.CreateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrAlreadyExists) {
			return store.User{}, ErrEmailTaken
		}
		return store.User{}, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// LogIn checks a password and opens a session. Every failure that depends
// on the account is ErrInvalidCredentials, after the same amount of work.
func (s *Service) LogIn(ctx context.Context, email, password, clientIP string) (Login, error) {
	email = NormaliseEmail(email)
	if ok, wait := s.limit.Allow(email+"|"+clientIP, s.cfg.Now()); !ok {
		return Login{}, &RateLimitedError{RetryAfter: wait}
	}
	u, err := s.st.UserByEmail(ctx, email)
	hash := u.PasswordHash
	switch {
	case errors.Is(err, store.ErrNotFound):
		hash = s.dummy
	case err != nil:
		return Login{}, fmt.Errorf("log in: %w", err)
	}
	ok, verr := verifyPassword(hash, password)
	if err != nil || verr != nil || !ok || u.Disabled {
		return Login{}, ErrInvalidCredentials
	}
	return s.newSession(ctx, u)
}

func (s *Service) newSession(ctx context.Context, u store.User) (Login, error) {
	tok, err := randomToken()
	if err != nil {
		return Login{}, err
	}
	csrf, err := randomToken()
	if err != nil {
		return Login{}, err
	}
	now := s.cfg.Now().UTC()
	se := store.Session{ID: HashToken(tok), UserID: u.ID, TenantID: u.TenantID, CSRFHash: HashToken(csrf),
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}
	if err := s.st.CreateSession(ctx, se); err != nil {
		return Login{}, fmt.Errorf("create session: %w", err)
	}
	return Login{Token: tok, CSRF: csrf, Session: se, User: u}, nil
}

// Authenticate resolves a session token to its user, renewing the expiry
// (sliding). Unknown, expired and disabled are ErrUnauthenticated.
func (s *Service) Authenticate(ctx context.Context, token string) (Principal, error) {
	if token == "" || len(token) > 100 {
		return Principal{}, ErrUnauthenticated
	}
	se, err := s.st.Session(ctx, HashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	now := s.cfg.Now()
	if !se.ExpiresAt.After(now) {
		_ = s.st.DeleteSession(ctx, se.ID)
		return Principal{}, ErrUnauthenticated
	}
	u, err := s.st.User(ctx, se.UserID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (u.Disabled || u.TenantID != se.TenantID)) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	if want := now.Add(s.cfg.SessionTTL); want.Sub(se.ExpiresAt) >= s.cfg.RenewAfter {
		if err := s.st.ExtendSession(ctx, se.ID, want.UTC()); err == nil {
			se.ExpiresAt = want.UTC()
		}
	}
	return Principal{User: u, Session: se}, nil
}

// CheckCSRF reports whether token is the session's CSRF token.
func CheckCSRF(se store.Session, token string) bool {
	if token == "" || se.CSRFHash == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(HashToken(token)), []byte(se.CSRFHash)) == 1
}

// LogOut ends the session of token.
func (s *Service) LogOut(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	return s.st.DeleteSession(ctx, HashToken(token))
}

// ChangePassword replaces the user's password after checking the current
// one, ends every session of the user and opens a new one.
func (s *Service) ChangePassword(ctx context.Context, p Principal, current, next, clientIP string) (Login, error) {
	if ok, wait := s.limit.Allow(p.User.Email+"|"+clientIP, s.cfg.Now()); !ok {
		return Login{}, &RateLimitedError{RetryAfter: wait}
	}
	u, err := s.st.User(ctx, p.User.ID)
	if err != nil {
		return Login{}, fmt.Errorf("change password: %w", err)
	}
	if ok, err := verifyPassword(u.PasswordHash, current); err != nil || !ok {
		return Login{}, &InvalidError{Fields: map[string]string{"current": "is not your current password"}}
	}
	if err := checkCredentials(u.Email, next); err != nil {
		return Login{}, &InvalidError{Fields: map[string]string{"password": (err.(*InvalidError)).Fields["password"]}}
	}
	hash, err := hashPassword(s.cfg.Params, next)
	if err != nil {
		return Login{}, err
	}
	if err := s.st.SetPasswordHash(ctx, u.ID, hash); err != nil {
		return Login{}, fmt.Errorf("change password: %w", err)
	}
	if err := s.st.DeleteUserSessions(ctx, u.ID); err != nil {
		return Login{}, fmt.Errorf("change password: end sessions: %w", err)
	}
	u.PasswordHash = hash
	return s.newSession(ctx, u)
}

// NewInvite is an invite and its one-time token (shown once).
type NewInvite struct {
	Token  string
	Invite store.Invite
}

// CreateInvite makes a one-time link to join the caller's tenant.
func (s *Service) CreateInvite(ctx context.Context, p Principal, role store.Role) (NewInvite, error) {
	if !p.User.Role.CanManage() {
		return NewInvite{}, ErrForbidden
	}
	if !role.Valid() {
		return NewInvite{}, &InvalidError{Fields: map[string]string{"role": "must be owner, admin or viewer"}}
	}
	if role == store.RoleOwner && p.User.Role != store.RoleOwner {
		return NewInvite{}, ErrForbidden
	}
	tok, err := randomToken()
	if err != nil {
		return NewInvite{}, err
	}
	now := s.cfg.Now().UTC()
	inv := store.Invite{ID: HashToken(tok), TenantID: p.User.TenantID, Role: role, CreatedBy: p.User.ID,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.InviteTTL)}
	if err := s.st.CreateInvite(ctx, inv); err != nil {
		return NewInvite{}, fmt.Errorf("create invite: %w", err)
	}
	return NewInvite{Token: tok, Invite: inv}, nil
}

// AcceptInvite creates the invited user and logs them in. The link is
// spent even when the user cannot be created (taken email): ask for a new
// one.
func (s *Service) AcceptInvite(ctx context.Context, token, email, password, clientIP string) (Login, error) {
	email = NormaliseEmail(email)
	if ok, wait := s.signups.Allow(clientIP, s.cfg.Now()); !ok {
		return Login{}, &RateLimitedError{RetryAfter: wait}
	}
	if err := checkCredentials(email, password); err != nil {
		return Login{}, err
	}
	if _, err := s.st.UserByEmail(ctx, email); err == nil {
		return Login{}, ErrEmailTaken
	}
	inv, err := s.st.ConsumeInvite(ctx, HashToken(token), s.cfg.Now())
	if errors.Is(err, store.ErrNotFound) {
		return Login{}, ErrNotFound
	}
	if err != nil {
		return Login{}, fmt.Errorf("accept invite: %w", err)
	}
	u, err := s.createUser(ctx, inv.TenantID, email, password, inv.Role)
	if err != nil {
		return Login{}, err
	}
	return s.newSession(ctx, u)
}

// NewKey is a drone and its key, shown once.
type NewKey struct {
	Drone store.Drone
	Key   string
}

func (s *Service) manage(p Principal) error {
	if !p.User.Role.CanManage() {
		return ErrForbidden
	}
	if len(s.cfg.Pepper) < keys.MinPepperLen {
		return fmt.Errorf("drone keys: pepper shorter than %d bytes (set DRONE_KEY_PEPPER)", keys.MinPepperLen)
	}
	return nil
}

func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	}
	return err
}

func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 100 {
		return "", &InvalidError{Fields: map[string]string{"name": "must have 1 to 100 characters"}}
	}
	return name, nil
}

// AddDrone registers a drone in the caller's tenant with a new key.
func (s *Service) AddDrone(ctx context.Context, p Principal, name string) (NewKey, error) {
	if err := s.manage(p); err != nil {
		return NewKey{}, err
	}
	name, err := checkName(name)
	if err != nil {
		return NewKey{}, err
	}
	key, err := keys.Generate()
	if err != nil {
		return NewKey{}, err
	}
	id, err := randomID("d")
	if err != nil {
		return NewKey{}, err
	}
	d := store.Drone{ID: id, TenantID: p.User.TenantID, Name: name, KeyHash: keys.Hash(s.cfg.Pepper, key),
		CreatedAt: s.cfg.Now().UTC()}
	if err := s.st.CreateDrone(ctx, d); err != nil {
		return NewKey{}, fmt.Errorf("add drone: %w", err)
	}
	return NewKey{Drone: d, Key: key}, nil
}

// RenameDrone renames a drone of the caller's tenant.
func (s *Service) RenameDrone(ctx context.Context, p Principal, droneID, name string) (store.Drone, error) {
	if !p.User.Role.CanManage() {
		return store.Drone{}, ErrForbidden
	}
	name, err := checkName(name)
	if err != nil {
		return store.Drone{}, err
	}
	if err := s.st.RenameDrone(ctx, p.User.TenantID, droneID, name); err != nil {
		return store.Drone{}, notFound(err)
	}
	d, err := s.st.Drone(ctx, p.User.TenantID, droneID)
	return d, notFound(err)
}

// RetireDrone removes a drone of the caller's tenant; its key stops working.
func (s *Service) RetireDrone(ctx context.Context, p Principal, droneID string) error {
	if !p.User.Role.CanManage() {
		return ErrForbidden
	}
	return notFound(s.st.RetireDrone(ctx, p.User.TenantID, droneID))
}

// RotateKey gives a drone a new key; the old one stops working (ingest
// caches keys for its KEY_CACHE_TTL, 30 s by default).
func (s *Service) RotateKey(ctx context.Context, p Principal, droneID string) (NewKey, error) {
	if err := s.manage(p); err != nil {
		return NewKey{}, err
	}
	key, err := keys.Generate()
	if err != nil {
		return NewKey{}, err
	}
	if err := s.st.SetDroneKey(ctx, p.User.TenantID, droneID, keys.Hash(s.cfg.Pepper, key)); err != nil {
		return NewKey{}, notFound(err)
	}
	d, err := s.st.Drone(ctx, p.User.TenantID, droneID)
	if err != nil {
		return NewKey{}, notFound(err)
	}
	return NewKey{Drone: d, Key: key}, nil
}

// RevokeKey removes a drone's key; the drone cannot report until rotated.
func (s *Service) RevokeKey(ctx context.Context, p Principal, droneID string) error {
	if !p.User.Role.CanManage() {
		return ErrForbidden
	}
	return notFound(s.st.SetDroneKey(ctx, p.User.TenantID, droneID, ""))
}
