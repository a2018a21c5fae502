package accounts_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/accounts"
	"github.com/dronetrack/dronetrack/core/keys"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/bolt"
)

// cheap keeps tests fast; the production parameters are DefaultParams.
var cheap = accounts.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newService(t *testing.T) (*accounts.Service, store.Store, *clock) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &clock{t: time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC)}
	s, err := accounts.New(st, accounts.Config{Params: cheap, Now: c.now, Pepper: []byte("0123456789abcdef-pepper"),
		SessionTTL: time.Hour, RenewAfter: time.Minute, LoginBurst: 3, LoginRefill: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return s, st, c
}

const pw = "correct horse battery"

func TestSignUpLogInLogOut(t *testing.T) {
	s, st, c := newService(t)
	ctx := context.Background()
	l, err := s.SignUp(ctx, "Acme", " Ann@Example.TEST ", pw, "1.2.3.4")
	if err != nil {
		t.Fatalf("SignUp: %v", err)
	}
	if l.User.Email != "ann@example.test" || l.User.Role != store.RoleOwner {
		t.Errorf("user = %+v; want normalised email and owner", l.User)
	}
	if strings.Contains(l.User.PasswordHash, pw) || !strings.HasPrefix(l.User.PasswordHash, "$argon2id$v=19$") {
		t.Errorf("password hash %q is not an argon2id encoding", l.User.PasswordHash)
	}
	if l.Session.ID == l.Token || l.Session.CSRFHash == l.CSRF {
		t.Errorf("session stores tokens in the clear")
	}
	if _, err := st.Tenant(ctx, l.User.TenantID); err != nil {
		t.Errorf("tenant not created: %v", err)
	}
	if _, err := s.SignUp(ctx, "Other", "ann@example.test", pw, "5.6.7.8"); !errors.Is(err, accounts.ErrEmailTaken) {
		t.Errorf("second sign-up with the email: %v; want ErrEmailTaken", err)
	}
	p, err := s.Authenticate(ctx, l.Token)
	if err != nil || p.User.ID != l.User.ID {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	if !accounts.CheckCSRF(p.Session, l.CSRF) || accounts.CheckCSRF(p.Session, "x") || accounts.CheckCSRF(p.Session, "") {
		t.Errorf("CheckCSRF wrong")
	}
	// Sliding expiry: used after 50 min, still valid at 100 min; idle
	// for an hour after that, gone.
	c.t = c.t.Add(50 * time.Minute)
	if _, err := s.Authenticate(ctx, l.Token); err != nil {
		t.Fatalf("Authenticate at 50m: %v", err)
	}
	c.t = c.t.Add(50 * time.Minute)
	if _, err := s.Authenticate(ctx, l.Token); err != nil {
		t.Fatalf("Authenticate at 100m (renewed): %v", err)
	}
	c.t = c.t.Add(61 * time.Minute)
	if _, err := s.Authenticate(ctx, l.Token); !errors.Is(err, accounts.ErrUnauthenticated) {
		t.Fatalf("Authenticate after idle TTL: %v; want ErrUnauthenticated", err)
	}
	l2, err := s.LogIn(ctx, "ANN@example.test", pw, "1.2.3.4")
	if err != nil {
		t.Fatalf("LogIn: %v", err)
	}
	if err := s.LogOut(ctx, l2.Token); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, l2.Token); !errors.Is(err, accounts.ErrUnauthenticated) {
		t.Errorf("Authenticate after logout: %v", err)
	}
}

func TestLogInErrorsAreUniformAndRateLimited(t *testing.T) {
	s, _, _ := newService(t)
	ctx := context.Background()
	if _, err := s.SignUp(ctx, "Acme", "ann@example.test", pw, "ip0"); err != nil {
		t.Fatal(err)
	}
	_, errUnknown := s.LogIn(ctx, "nobody@example.test", pw, "ip1")
	_, errWrong := s.LogIn(ctx, "ann@example.test", "wrong password!", "ip1")
	if !errors.Is(errUnknown, accounts.ErrInvalidCredentials) || errUnknown.Error() != errWrong.Error() {
		t.Errorf("unknown email: %v; wrong password: %v; want the same ErrInvalidCredentials", errUnknown, errWrong)
	}
	// Burst 3 per email+IP: two more attempts, then limited; another IP
	// is not.
	for i := 0; i < 2; i++ {
		if _, err := s.LogIn(ctx, "ann@example.test", "wrong password!", "ip1"); !errors.Is(err, accounts.ErrInvalidCredentials) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	_, err := s.LogIn(ctx, "ann@example.test", pw, "ip1")
	var rl *accounts.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter <= 0 {
		t.Fatalf("4th attempt: %v; want RateLimitedError", err)
	}
	if _, err := s.LogIn(ctx, "ann@example.test", pw, "ip2"); err != nil {
		t.Errorf("other IP: %v", err)
	}
}

func TestInvitesAndRoles(t *testing.T) {
	s, _, _ := newService(t)
	ctx := context.Background()
	owner, err := s.SignUp(ctx, "Acme", "ann@example.test", pw, "ip")
	if err != nil {
		t.Fatal(err)
	}
	op, _ := s.Authenticate(ctx, owner.Token)
	inv, err := s.CreateInvite(ctx, op, store.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.AcceptInvite(ctx, inv.Token, "vic@example.test", pw, "ip")
	if err != nil {
		t.Fatalf("AcceptInvite: %v", err)
	}
	if v.User.TenantID != owner.User.TenantID || v.User.Role != store.RoleViewer {
		t.Errorf("invited user = %+v", v.User)
	}
	if _, err := s.AcceptInvite(ctx, inv.Token, "eve@example.test", pw, "ip"); !errors.Is(err, accounts.ErrNotFound) {
		t.Errorf("second accept: %v; want ErrNotFound", err)
	}
	vp, _ := s.Authenticate(ctx, v.Token)
	if _, err := s.AddDrone(ctx, vp, "x"); !errors.Is(err, accounts.ErrForbidden) {
		t.Errorf("viewer AddDrone: %v; want ErrForbidden", err)
	}
	if _, err := s.CreateInvite(ctx, vp, store.RoleViewer); !errors.Is(err, accounts.ErrForbidden) {
		t.Errorf("viewer CreateInvite: %v; want ErrForbidden", err)
	}
}

func TestDroneKeysAndPassword(t *testing.T) {
	s, st, _ := newService(t)
	ctx := context.Background()
	a, _ := s.SignUp(ctx, "A", "a@example.test", pw, "ip")
	b, _ := s.SignUp(ctx, "B", "b@example.test", pw, "ip")
	ap, _ := s.Authenticate(ctx, a.Token)
	bp, _ := s.Authenticate(ctx, b.Token)
	nk, err := s.AddDrone(ctx, ap, "Hexa 1")
	if err != nil {
		t.Fatal(err)
	}
	if !keys.WellFormed(nk.Key) || nk.Drone.KeyHash == nk.Key {
		t.Fatalf("key %q hash %q", nk.Key, nk.Drone.KeyHash)
	}
	pepper := []byte("0123456789abcdef-pepper")
	if d, err := st.DroneByKeyHash(ctx, keys.Hash(pepper, nk.Key)); err != nil || d.ID != nk.Drone.ID {
		t.Fatalf("key lookup: %v %v", d, err)
	}
	for name, err := range map[string]error{
		"rename": func() error { _, err := s.RenameDrone(ctx, bp, nk.Drone.ID, "mine"); return err }(),
		"rotate": func() error { _, err := s.RotateKey(ctx, bp, nk.Drone.ID); return err }(),
		"revoke": s.RevokeKey(ctx, bp, nk.Drone.ID),
		"retire": s.RetireDrone(ctx, bp, nk.Drone.ID),
	} {
		if !errors.Is(err, accounts.ErrNotFound) {
			t.Errorf("tenant B %s on A's drone: %v; want ErrNotFound", name, err)
		}
	}
	rk, err := s.RotateKey(ctx, ap, nk.Drone.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.DroneByKeyHash(ctx, keys.Hash(pepper, nk.Key)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("old key still resolves: %v", err)
	}
	if _, err := st.DroneByKeyHash(ctx, keys.Hash(pepper, rk.Key)); err != nil {
		t.Errorf("new key: %v", err)
	}

	// Password change ends other sessions and needs the current password.
	other, _ := s.LogIn(ctx, "a@example.test", pw, "ip9")
	if _, err := s.ChangePassword(ctx, ap, "wrong", "another long password", "ip"); err == nil {
		t.Errorf("ChangePassword with a wrong current password succeeded")
	}
	nl, err := s.ChangePassword(ctx, ap, pw, "another long password", "ip")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, other.Token); !errors.Is(err, accounts.ErrUnauthenticated) {
		t.Errorf("old session after password change: %v", err)
	}
	if _, err := s.Authenticate(ctx, nl.Token); err != nil {
		t.Errorf("new session: %v", err)
	}
	if _, err := s.LogIn(ctx, "a@example.test", "another long password", "ip3"); err != nil {
		t.Errorf("log in with the new password: %v", err)
	}
}
