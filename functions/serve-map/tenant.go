package function

import (
	"context"
	"net/http"

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

// demoTenant is the stand-in for session authentication until accounts
// exist: every request acts for the configured demo tenant. It replaces
// itself with nothing when no demo tenant is configured.
func demoTenant(tenantID string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tenantID != "" {
				r = r.WithContext(WithTenant(r.Context(), tenantID))
			}
			next.ServeHTTP(w, r)
		})
	}
}

// requireTenant answers 401 for requests no middleware attributed to a tenant.
func requireTenant(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if TenantFrom(r.Context()) == "" {
			problem.Write(w, http.StatusUnauthorized, "", "log in to see your fleet")
			return
		}
		next.ServeHTTP(w, r)
	})
}
