package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/core/store"
)

// Admin is what the admin subcommands do. Two implementations: localAdmin
// opens the data dir's store (and broker) itself; remoteAdmin asks a running
// `up` through its loopback admin endpoint, because bbolt and the broker's
// JetStream directory are locked by the process that opened them.
type Admin interface {
	CreateTenant(ctx context.Context, id, name string) (store.Tenant, error)
	AddDrone(ctx context.Context, tenantID, name string) (newDrone, error)
	DeadLetters(ctx context.Context) ([]deadLetter, error)
	Replay(ctx context.Context, id string) error
	Close() error
}

// newDrone is a registered drone with its key, which exists in clear only here.
type newDrone struct {
	TenantID string `json:"tenantId"`
	DroneID  string `json:"droneId"`
	Name     string `json:"name"`
	Key      string `json:"key"`
}

// deadLetter is one event the broker gave up delivering.
type deadLetter struct {
	ID       string    `json:"id"`
	Type     string    `json:"type"`
	Trigger  string    `json:"trigger"`
	EventID  string    `json:"eventId"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
	Attempts int       `json:"attempts"`
}

// AdminInfo is DIR/admin.json: where a running up's admin endpoint listens
// and the bearer token it wants. The file is 0600, so only the user who ran
// up (or root) can drive it.
type AdminInfo struct {
	URL   string `json:"url"`
	Token string `json:"token"`
	PID   int    `json:"pid"`
}

// OpenAdmin talks to the running up of dir when there is one, and otherwise
// opens the data dir (or the store URL given) directly.
func OpenAdmin(ctx context.Context, dir, storeOverride string) (Admin, error) {
	if storeOverride == "" {
		if ra, ok := DialAdmin(ctx, dir); ok {
			return ra, nil
		}
	}
	return OpenStoreAdmin(ctx, dir, storeOverride)
}

// DialAdmin finds a running up through DIR/admin.json and checks it answers.
func DialAdmin(ctx context.Context, dir string) (*RemoteAdmin, bool) {
	b, err := os.ReadFile(filepath.Join(dir, AdminFile))
	if err != nil {
		return nil, false
	}
	var info AdminInfo
	if json.Unmarshal(b, &info) != nil || info.URL == "" {
		return nil, false
	}
	ra := &RemoteAdmin{info: info, client: &http.Client{Timeout: 30 * time.Second}}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := ra.do(pctx, http.MethodGet, "/admin/v1/ping", nil, nil); err != nil {
		return nil, false // stale file of an up that is gone
	}
	return ra, true
}

// RemoteAdmin drives a running up through its loopback admin endpoint.
type RemoteAdmin struct {
	info   AdminInfo
	client *http.Client
}

func (r *RemoteAdmin) CreateTenant(ctx context.Context, id, name string) (store.Tenant, error) {
	var t store.Tenant
	err := r.do(ctx, http.MethodPost, "/admin/v1/tenants", map[string]string{"id": id, "name": name}, &t)
	return t, err
}

func (r *RemoteAdmin) AddDrone(ctx context.Context, tenantID, name string) (newDrone, error) {
	var d newDrone
	err := r.do(ctx, http.MethodPost, "/admin/v1/drones", map[string]string{"tenantId": tenantID, "name": name}, &d)
	return d, err
}

func (r *RemoteAdmin) DeadLetters(ctx context.Context) ([]deadLetter, error) {
	var dls []deadLetter
	err := r.do(ctx, http.MethodGet, "/admin/v1/dlq", nil, &dls)
	return dls, err
}

func (r *RemoteAdmin) Replay(ctx context.Context, id string) error {
	return r.do(ctx, http.MethodPost, "/admin/v1/dlq/"+id+"/replay", nil, nil)
}

func (r *RemoteAdmin) Close() error { r.client.CloseIdleConnections(); return nil }

func (r *RemoteAdmin) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.info.URL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.info.Token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("admin endpoint of the running up: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var p struct {
			Title, Detail string
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &p) == nil && p.Detail != "" {
			return errors.New(p.Detail)
		}
		return fmt.Errorf("admin endpoint: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// adminHandler serves a local admin to the admin subcommands of other
// processes; only loopback, only with the token of DIR/admin.json.
func adminHandler(a Admin, token string, routes ...func(*http.ServeMux)) http.Handler {
	mux := http.NewServeMux()
	for _, add := range routes {
		add(mux)
	}
	mux.HandleFunc("GET /admin/v1/ping", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /admin/v1/tenants", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ ID, Name string }
		if !decodeJSON(w, r, &in) {
			return
		}
		t, err := a.CreateTenant(r.Context(), in.ID, in.Name)
		reply(w, http.StatusCreated, t, err)
	})
	mux.HandleFunc("POST /admin/v1/drones", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			TenantID string `json:"tenantId"`
			Name     string `json:"name"`
		}
		if !decodeJSON(w, r, &in) {
			return
		}
		d, err := a.AddDrone(r.Context(), in.TenantID, in.Name)
		reply(w, http.StatusCreated, d, err)
	})
	accountAdminRoutes(mux, a)
	mux.HandleFunc("GET /admin/v1/dlq", func(w http.ResponseWriter, r *http.Request) {
		dls, err := a.DeadLetters(r.Context())
		if dls == nil {
			dls = []deadLetter{}
		}
		reply(w, http.StatusOK, dls, err)
	})
	mux.HandleFunc("POST /admin/v1/dlq/{id}/replay", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusNoContent, nil, a.Replay(r.Context(), r.PathValue("id")))
	})
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			problem.Write(w, http.StatusUnauthorized, "unauthorized", "the admin token of admin.json is required")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil {
		problem.Write(w, http.StatusBadRequest, "bad request", err.Error())
		return false
	}
	return true
}

func reply(w http.ResponseWriter, status int, v any, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		problem.Write(w, http.StatusNotFound, "not found", err.Error())
	case errors.Is(err, store.ErrAlreadyExists):
		problem.Write(w, http.StatusConflict, "already exists", err.Error())
	case err != nil:
		problem.Write(w, http.StatusInternalServerError, "admin failed", err.Error())
	case v == nil:
		w.WriteHeader(status)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
}

// serveAdmin starts the admin endpoint on loopback and writes DIR/admin.json;
// the returned func stops it and removes the file.
func serveAdmin(a Admin, dir string, routes ...func(*http.ServeMux)) (func(context.Context) error, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	token := hex.EncodeToString(raw)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	srv := &http.Server{Handler: adminHandler(a, token, routes...), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	info := AdminInfo{URL: "http://" + ln.Addr().String(), Token: token, PID: os.Getpid()}
	b, _ := json.Marshal(info)
	path := filepath.Join(dir, AdminFile)
	if err := writeFileAtomic(path, b, 0o600); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("write %s: %w", AdminFile, err)
	}
	return func(ctx context.Context) error {
		_ = os.Remove(path)
		return srv.Shutdown(ctx)
	}, nil
}
