package function

import (
	"context"
	"fmt"
	"net/http"

	"github.com/dronetrack/dronetrack/core/accounts"
	"github.com/dronetrack/dronetrack/core/problem"
)

type tenantKey struct{}

// WithTenant returns ctx carrying the caller's tenant. Only authentication
// middleware sets it; handlers never take a tenant from the request itself.
func WithTenant(ctx context.Context, tenantID string) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenantID)
}

// TenantFrom returns the caller's tenant, "" when the request is anonymous.
func TenantFrom(ctx context.Context) string {
	s, _ := ctx.Value(tenantKey{}).(string)
	return s
}

// requireTenant answers 401 for requests no session attributed to a tenant.
func requireTenant(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if TenantFrom(r.Context()) == "" {
			problem.Write(w, http.StatusUnauthorized, "", "log in to see your fleet")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// configureAccounts builds the account service from config.
func (s *server) configureAccounts(cfg Config, st accounts.Store) error {
	ac := accounts.Config{Pepper: []byte(cfg.Pepper), Now: s.now, SessionTTL: cfg.SessionTTL}
	s.sessionTTL = cfg.SessionTTL
	s.sessionRecheck = cfg.SessionRecheck
	s.cookieSecure = cfg.CookieSecure == "always"
	s.ipHops = cfg.RateLimitIPHops
	if n := cfg.Argon2MemoryKiB; n != 0 { // tests lower the cost
		ac.Params = accounts.DefaultParams
		ac.Params.Memory, ac.Params.Time = uint32(n), 1
	}
	svc, err := accounts.New(st, ac)
	if err != nil {
		return fmt.Errorf("serve-map: %w", err)
	}
	s.accounts = svc
	return nil
}
