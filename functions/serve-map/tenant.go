package function

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

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
func (s *server) configureAccounts(cfg map[string]string, st accounts.Store) error {
	ac := accounts.Config{Pepper: []byte(cfg["DRONE_KEY_PEPPER"]), Now: s.now}
	if v := cfg["SESSION_TTL"]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("serve-map: SESSION_TTL=%q: want a duration such as 12h", v)
		}
		ac.SessionTTL = d
	}
	s.sessionTTL = ac.SessionTTL
	if s.sessionTTL == 0 {
		s.sessionTTL = 12 * time.Hour
	}
	s.sessionRecheck = 30 * time.Second
	if v := cfg["SESSION_RECHECK"]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("serve-map: SESSION_RECHECK=%q: want a duration such as 30s", v)
		}
		s.sessionRecheck = d
	}
	switch v := cfg["COOKIE_SECURE"]; v {
	case "", "auto":
	case "always":
		s.cookieSecure = true
	default:
		return fmt.Errorf("serve-map: COOKIE_SECURE=%q: want auto or always", v)
	}
	if v := cfg["RATE_LIMIT_IP_HOPS"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("serve-map: RATE_LIMIT_IP_HOPS=%q: want a non-negative integer", v)
		}
		s.ipHops = n
	}
	if v := cfg["ARGON2_MEMORY_KIB"]; v != "" { // tests lower the cost
		n, err := strconv.Atoi(v)
		if err != nil || n < 8 {
			return fmt.Errorf("serve-map: ARGON2_MEMORY_KIB=%q: want an integer >= 8", v)
		}
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
