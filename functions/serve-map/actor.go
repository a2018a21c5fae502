package function

import "net/http"

// actor names the signed-in user for audit fields (an alert's
// acknowledgedBy): the user's email, or their id when it has none.
func actor(r *http.Request) string {
	p, ok := principalFrom(r.Context())
	if !ok {
		return ""
	}
	if p.User.Email != "" {
		return p.User.Email
	}
	return p.User.ID
}
