package function

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/accounts"
	"github.com/dronetrack/dronetrack/core/store"
)

// fixtureAnonymous in a fixture's config makes its server send no session.
const fixtureAnonymous = "TEST_FIXTURE_ANONYMOUS"

// sessionCookie makes a user of tenant with role and a live session in st,
// and returns the plain-HTTP session cookie for it.
func sessionCookie(t testing.TB, st store.Accounts, tenant string, role store.Role) *http.Cookie {
	t.Helper()
	ctx := context.Background()
	uid := uniq("user")
	if err := st.CreateUser(ctx, store.User{ID: uid, TenantID: tenant, Email: uid + "@example.test", Role: role,
		PasswordHash: "unusable", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	tok := uniq("token")
	if err := st.CreateSession(ctx, store.Session{ID: accounts.HashToken(tok), UserID: uid, TenantID: tenant,
		CSRFHash: accounts.HashToken("csrf-" + tok), CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return &http.Cookie{Name: sessionCookieLoopback, Value: tok}
}

// withSession adds c to requests that carry no cookie, so tests written
// before sessions act as a logged-in user of the fixture's tenant.
func withSession(c *http.Cookie, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Cookie") == "" {
			r.AddCookie(c)
		}
		h.ServeHTTP(w, r)
	})
}
