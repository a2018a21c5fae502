package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/dronetrack/dronetrack/core/accounts"
	"github.com/dronetrack/dronetrack/core/keys"
	"github.com/dronetrack/dronetrack/core/store"
)

// Account admin subcommands: `user add`, `drone rotate-key`, `drone
// revoke-key`. Like the others they go through a running up's admin
// endpoint when there is one, else open the store themselves.

// accountAdmin is what both admins (local and remote) do for accounts.
type accountAdmin interface {
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

var accountCommands = map[string]bool{"user add": true, "drone rotate-key": true, "drone revoke-key": true}

func accountAdminCmd(ctx context.Context, cmd string, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", defaultDataDir(), "data dir of the local system")
	storeOverride := fs.String("store", "", "store URL (bolt:///abs/path.db or firestore://PROJECT) instead of the data dir's")
	tenant := fs.String("tenant", "", "tenant id (required)")
	var email, role, drone string
	var pwStdin bool
	switch cmd {
	case "user add":
		fs.StringVar(&email, "email", "", "email (required)")
		fs.StringVar(&role, "role", "viewer", "owner, admin or viewer")
		fs.BoolVar(&pwStdin, "password-stdin", false, "read the password from the first line of stdin (default: generate one and print it once)")
	default:
		fs.StringVar(&drone, "drone", "", "drone id (required)")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tenant == "" {
		return fmt.Errorf("%s: --tenant is required", cmd)
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	adm, err := openAdmin(ctx, dir, *storeOverride)
	if err != nil {
		return err
	}
	defer adm.Close()
	aa, ok := adm.(accountAdmin)
	if !ok {
		return fmt.Errorf("%s: not supported by this admin", cmd)
	}
	switch cmd {
	case "user add":
		if email == "" {
			return errors.New("user add: --email is required")
		}
		password := ""
		if pwStdin {
			line, err := bufio.NewReader(stdin).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read password: %w", err)
			}
			password = strings.TrimRight(line, "\r\n")
			if password == "" {
				return errors.New("user add: empty password on stdin")
			}
		}
		u, err := aa.AddUser(ctx, *tenant, email, role, password)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s (%s, %s) added to tenant %s\n", u.Email, u.ID, u.Role, u.TenantID)
		if u.Password != "" {
			fmt.Fprintf(stdout, "password (shown once, store it now): %s\n", u.Password)
		}
	case "drone rotate-key":
		d, err := aa.RotateKey(ctx, *tenant, drone)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "drone %s of tenant %s has a new key; the old one stops working within ingest's KEY_CACHE_TTL (30 s by default)\n", d.DroneID, d.TenantID)
		fmt.Fprintf(stdout, "key (shown once, store it now): %s\n", d.Key)
	case "drone revoke-key":
		if err := aa.RevokeKey(ctx, *tenant, drone); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "drone %s of tenant %s has no key; the old one stops working within ingest's KEY_CACHE_TTL (30 s by default)\n", drone, *tenant)
	}
	return nil
}

// AddUser implements accountAdmin.
func (a *localAdmin) AddUser(ctx context.Context, tenantID, email, role, password string) (newUser, error) {
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
func (a *localAdmin) RotateKey(ctx context.Context, tenantID, droneID string) (newDrone, error) {
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
func (a *localAdmin) RevokeKey(ctx context.Context, tenantID, droneID string) error {
	if err := a.store.SetDroneKey(ctx, tenantID, droneID, ""); err != nil {
		return fmt.Errorf("revoke key: %w", err)
	}
	return nil
}

// AddUser implements accountAdmin through the running up.
func (r *remoteAdmin) AddUser(ctx context.Context, tenantID, email, role, password string) (newUser, error) {
	var u newUser
	err := r.do(ctx, http.MethodPost, "/admin/v1/users",
		map[string]string{"tenantId": tenantID, "email": email, "role": role, "password": password}, &u)
	return u, err
}

// RotateKey implements accountAdmin through the running up.
func (r *remoteAdmin) RotateKey(ctx context.Context, tenantID, droneID string) (newDrone, error) {
	var d newDrone
	err := r.do(ctx, http.MethodPost, "/admin/v1/drone-keys/rotate", map[string]string{"tenantId": tenantID, "droneId": droneID}, &d)
	return d, err
}

// RevokeKey implements accountAdmin through the running up.
func (r *remoteAdmin) RevokeKey(ctx context.Context, tenantID, droneID string) error {
	return r.do(ctx, http.MethodPost, "/admin/v1/drone-keys/revoke", map[string]string{"tenantId": tenantID, "droneId": droneID}, nil)
}

// accountAdminRoutes serves accountAdmin on the admin endpoint.
func accountAdminRoutes(mux *http.ServeMux, a admin) {
	aa, ok := a.(accountAdmin)
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
