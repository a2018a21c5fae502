package local

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/dronetrack/dronetrack/core/accounts"
	"github.com/dronetrack/dronetrack/core/keys"
	"github.com/dronetrack/dronetrack/core/store"
)

// Account admin subcommands: `user add`, `drone rotate-key`, `drone
// revoke-key`. Like the others they go through a running up's admin
// endpoint when there is one, else open the store themselves.

// AccountAdmin is what both admins (local and remote) do for accounts.
type AccountAdmin interface {
	AddUser(ctx context.Context, tenantID, email, role, password string) (newUser, error)
	RotateKey(ctx context.Context, tenantID, droneID string) (newDrone, error)
	RevokeKey(ctx context.Context, tenantID, droneID string) error
}

// newUser is a created user; Password is set only when it was generated.
type newUser struct {
	ID       string `json:"id"`
	TenantID string `json:"tenantId"`
	Email    string `json:"email"`
	Role     string `json:"role"`
	Password string `json:"password,omitempty"`
}

// AddUser implements accountAdmin.
func (a *StoreAdmin) AddUser(ctx context.Context, tenantID, email, role, password string) (newUser, error) {
	generated := password == ""
	if generated {
		var err error
		if password, err = generatePassword(); err != nil {
			return newUser{}, err
		}
	}
	svc, err := accounts.New(a.store, accounts.Config{})
	if err != nil {
		return newUser{}, err
	}
	u, err := svc.CreateUser(ctx, tenantID, email, password, store.Role(role))
	if err != nil {
		return newUser{}, fmt.Errorf("add user: %w", err)
	}
	out := newUser{ID: u.ID, TenantID: u.TenantID, Email: u.Email, Role: string(u.Role)}
	if generated {
		out.Password = password
	}
	return out, nil
}

// RotateKey implements accountAdmin.
func (a *StoreAdmin) RotateKey(ctx context.Context, tenantID, droneID string) (newDrone, error) {
	key, err := keys.Generate()
	if err != nil {
		return newDrone{}, err
	}
	if err := a.store.SetDroneKey(ctx, tenantID, droneID, keys.Hash([]byte(a.pepper), key)); err != nil {
		return newDrone{}, fmt.Errorf("rotate key: %w", err)
	}
	d, err := a.store.Drone(ctx, tenantID, droneID)
	if err != nil {
		return newDrone{}, fmt.Errorf("rotate key: %w", err)
	}
	return newDrone{TenantID: tenantID, DroneID: droneID, Name: d.Name, Key: key}, nil
}

// RevokeKey implements accountAdmin.
func (a *StoreAdmin) RevokeKey(ctx context.Context, tenantID, droneID string) error {
	if err := a.store.SetDroneKey(ctx, tenantID, droneID, ""); err != nil {
		return fmt.Errorf("revoke key: %w", err)
	}
	return nil
}

// AddUser implements accountAdmin through the running up.
func (r *RemoteAdmin) AddUser(ctx context.Context, tenantID, email, role, password string) (newUser, error) {
	var u newUser
	err := r.do(ctx, http.MethodPost, "/admin/v1/users",
		map[string]string{"tenantId": tenantID, "email": email, "role": role, "password": password}, &u)
	return u, err
}

// RotateKey implements accountAdmin through the running up.
func (r *RemoteAdmin) RotateKey(ctx context.Context, tenantID, droneID string) (newDrone, error) {
	var d newDrone
	err := r.do(ctx, http.MethodPost, "/admin/v1/drone-keys/rotate", map[string]string{"tenantId": tenantID, "droneId": droneID}, &d)
	return d, err
}

// RevokeKey implements accountAdmin through the running up.
func (r *RemoteAdmin) RevokeKey(ctx context.Context, tenantID, droneID string) error {
	return r.do(ctx, http.MethodPost, "/admin/v1/drone-keys/revoke", map[string]string{"tenantId": tenantID, "droneId": droneID}, nil)
}

// accountAdminRoutes serves accountAdmin on the admin endpoint.
func accountAdminRoutes(mux *http.ServeMux, a Admin) {
	aa, ok := a.(AccountAdmin)
	if !ok {
		return
	}
	mux.HandleFunc("POST /admin/v1/users", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			TenantID string `json:"tenantId"`
			Email    string `json:"email"`
			Role     string `json:"role"`
			Password string `json:"password"`
		}
		if !decodeJSON(w, r, &in) {
			return
		}
		u, err := aa.AddUser(r.Context(), in.TenantID, in.Email, in.Role, in.Password)
		reply(w, http.StatusCreated, u, adminAccountErr(err))
	})
	keyReq := func(w http.ResponseWriter, r *http.Request) (string, string, bool) {
		var in struct {
			TenantID string `json:"tenantId"`
			DroneID  string `json:"droneId"`
		}
		ok := decodeJSON(w, r, &in)
		return in.TenantID, in.DroneID, ok
	}
	mux.HandleFunc("POST /admin/v1/drone-keys/rotate", func(w http.ResponseWriter, r *http.Request) {
		if t, d, ok := keyReq(w, r); ok {
			nd, err := aa.RotateKey(r.Context(), t, d)
			reply(w, http.StatusOK, nd, err)
		}
	})
	mux.HandleFunc("POST /admin/v1/drone-keys/revoke", func(w http.ResponseWriter, r *http.Request) {
		if t, d, ok := keyReq(w, r); ok {
			reply(w, http.StatusNoContent, nil, aa.RevokeKey(r.Context(), t, d))
		}
	})
}

// adminAccountErr maps account errors to the store sentinels reply knows.
func adminAccountErr(err error) error {
	if errors.Is(err, accounts.ErrEmailTaken) {
		return fmt.Errorf("%w: %w", store.ErrAlreadyExists, err)
	}
	return err
}
