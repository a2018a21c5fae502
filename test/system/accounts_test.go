package system

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dronetrack/dronetrack/core/keys"

	"github.com/dronetrack/dronetrack/cmd/dronetrack/cli"
	"github.com/dronetrack/dronetrack/infra/local"
)

// loginClient logs in to a running system and returns a client carrying
// the session cookie, plus the CSRF token for state-changing requests.
func loginClient(t testing.TB, baseURL, email, password string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	resp, err := c.Post(baseURL+"/api/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		CSRFToken string `json:"csrfToken"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("log in as %s: %d %v", email, resp.StatusCode, err)
	}
	return c, out.CSRFToken
}

// demoClient is loginClient for the demo owner of a running up.
func demoClient(t testing.TB, sys *local.System) *http.Client {
	t.Helper()
	c, _ := loginClient(t, sys.URL(), sys.DemoLogin().Email, sys.DemoLogin().Password)
	return c
}

// TestUpSeedsDemoLogin: up makes the demo owner once, keeps the login 0600
// in the data dir, prints it, and it works; a second up keeps it.
func TestUpSeedsDemoLogin(t *testing.T) {
	dir := t.TempDir()
	for i := range 2 {
		var out bytes.Buffer
		sys, err := local.Start(t.Context(), local.Options{DataDir: dir, HTTPAddr: "127.0.0.1:0", Out: &out})
		if err != nil {
			t.Fatal(err)
		}
		l := sys.DemoLogin()
		if !bytes.Contains(out.Bytes(), []byte("demo login: "+l.Email+" / "+l.Password)) {
			t.Errorf("run %d: output does not print the demo login:\n%s", i, out.String())
		}
		fi, err := os.Stat(filepath.Join(dir, local.DemoLoginFile))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("run %d: %s: %v %v; want mode 0600", i, local.DemoLoginFile, fi, err)
		}
		c := demoClient(t, sys)
		resp, err := c.Get(sys.URL() + "/api/v1/drones")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("run %d: fleet as the demo owner: %d", i, resp.StatusCode)
		}
		resp, err = http.Get(sys.URL() + "/api/v1/drones")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("run %d: fleet without a session: %d; want 401", i, resp.StatusCode)
		}
		if err := sys.Shutdown(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAccountAdminCommands runs user add, drone rotate-key and drone
// revoke-key against a running up (through its admin endpoint).
func TestAccountAdminCommands(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	sys, err := local.Start(ctx, local.Options{DataDir: dir, HTTPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Shutdown()
	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := cli.Run(ctx, append(args, "--data", dir), &out, &errOut); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, errOut.String())
		}
		return out.String()
	}
	out := run("user", "add", "--tenant", local.DemoTenantID, "--email", "Viewer@Example.test", "--role", "viewer")
	_, pw, ok := strings.Cut(out, "password (shown once, store it now): ")
	pw = strings.TrimSpace(pw)
	if !ok || len(pw) < 16 {
		t.Fatalf("user add printed no password: %q", out)
	}
	c, csrf := loginClient(t, sys.URL(), "viewer@example.test", pw)
	req, _ := http.NewRequest(http.MethodPost, sys.URL()+"/api/v1/drones", strings.NewReader(`{"name":"x"}`))
	req.Header.Set("X-CSRF-Token", csrf)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer added a drone: %d", resp.StatusCode)
	}

	demo, err := local.ReadDemoKeys(filepath.Join(dir, local.DemoKeysFile))
	if err != nil || len(demo) == 0 {
		t.Fatalf("demo keys: %v", err)
	}
	pepper, _ := local.LoadPepper(dir)
	out = run("drone", "rotate-key", "--tenant", local.DemoTenantID, "--drone", demo[0].DroneID)
	_, key, ok := strings.Cut(out, "key (shown once, store it now): ")
	key = strings.TrimSpace(key)
	if !ok || !keys.WellFormed(key) {
		t.Fatalf("rotate-key printed no key: %q", out)
	}
	if _, err := sys.Store().DroneByKeyHash(ctx, keys.Hash([]byte(pepper), demo[0].Key)); err == nil {
		t.Error("the old key still resolves after rotate-key")
	}
	if d, err := sys.Store().DroneByKeyHash(ctx, keys.Hash([]byte(pepper), key)); err != nil || d.ID != demo[0].DroneID {
		t.Errorf("the new key: %+v %v", d, err)
	}
	run("drone", "revoke-key", "--tenant", local.DemoTenantID, "--drone", demo[0].DroneID)
	if _, err := sys.Store().DroneByKeyHash(ctx, keys.Hash([]byte(pepper), key)); err == nil {
		t.Error("the key still resolves after revoke-key")
	}
	var errOut bytes.Buffer
	if err := cli.Run(ctx, []string{"drone", "revoke-key", "--data", dir, "--tenant", "other", "--drone", demo[1].DroneID}, io.Discard, &errOut); err == nil {
		t.Error("revoke-key with the wrong tenant succeeded")
	}
}
