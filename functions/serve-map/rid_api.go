package function

import (
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/core/remoteid"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// remoteIDRoutes are the tenant's Remote ID settings behind the session:
// every member reads them; owners and admins change them, as they change
// the fleet.
func (s *server) remoteIDRoutes(r chi.Router) {
	r.Get("/api/v1/remote-id", s.getRemoteID)
	r.Get("/api/v1/drones/{id}/remote-id", s.getDroneIdentity)
	r.Group(func(r chi.Router) {
		r.Use(requireManager)
		r.Put("/api/v1/remote-id", s.putRemoteID)
		r.Put("/api/v1/drones/{id}/remote-id", s.putDroneIdentity)
	})
}

// remoteIDSettings is the body of GET/PUT /api/v1/remote-id.
type remoteIDSettings struct {
	// Enabled publishes the tenant's fresh flights to Network Remote ID
	// display providers.
	Enabled *bool `json:"enabled"`
}

func (s *server) getRemoteID(w http.ResponseWriter, r *http.Request) {
	t, err := s.store.Tenant(r.Context(), TenantFrom(r.Context()))
	if err != nil {
		s.alertStoreFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, remoteIDSettings{Enabled: &t.RemoteID})
}

func (s *server) putRemoteID(w http.ResponseWriter, r *http.Request) {
	var in remoteIDSettings
	if !decodeBody(w, r, &in) {
		return
	}
	if in.Enabled == nil {
		problem.Write(w, http.StatusBadRequest, "Invalid body", "enabled is required",
			problem.WithErrors([]events.FieldError{{Field: "enabled", Pointer: "/enabled", Detail: "want true or false"}}))
		return
	}
	ctx := r.Context()
	if err := s.store.SetTenantRemoteID(ctx, TenantFrom(ctx), *in.Enabled); err != nil {
		s.alertStoreFailed(w, r, err)
		return
	}
	s.rid.invalidate()
	s.log.InfoContext(ctx, "remote id switched", "tenant", TenantFrom(ctx), "enabled", *in.Enabled, "by", actor(r))
	writeJSON(w, http.StatusOK, in)
}

func (s *server) getDroneIdentity(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	d, err := s.store.Drone(ctx, TenantFrom(ctx), chi.URLParam(r, "id"))
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	id := remoteid.Identity{}
	if d.RemoteID != nil {
		id = *d.RemoteID
	}
	writeJSON(w, http.StatusOK, id)
}

// putDroneIdentity is PUT /api/v1/drones/{id}/remote-id: the identity the
// drone is reported with (an empty object clears it).
func (s *server) putDroneIdentity(w http.ResponseWriter, r *http.Request) {
	var in remoteid.Identity
	if !decodeBody(w, r, &in) {
		return
	}
	in = in.Normalize()
	if errs := in.Validate(); len(errs) > 0 {
		problem.Write(w, http.StatusBadRequest, "Invalid body", "fix the named fields", problem.WithErrors(errs))
		return
	}
	ctx := r.Context()
	var stored *remoteid.Identity
	if in != (remoteid.Identity{}) {
		stored = &in
	}
	if err := s.store.SetDroneIdentity(ctx, TenantFrom(ctx), chi.URLParam(r, "id"), stored); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			notFound(w, r)
			return
		}
		s.storeFailed(w, r, err)
		return
	}
	s.rid.invalidate()
	writeJSON(w, http.StatusOK, in)
}
