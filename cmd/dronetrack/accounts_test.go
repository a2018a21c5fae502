package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"testing"
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
func demoClient(t testing.TB, sys *system) *http.Client {
	t.Helper()
	c, _ := loginClient(t, sys.URL(), sys.demoLogin.Email, sys.demoLogin.Password)
	return c
}

// TestUpSeedsDemoLogin: up makes the demo owner once, keeps the login 0600
// in the data dir, prints it, and it works; a second up keeps it.
func TestUpSeedsDemoLogin(t *testing.T) {
	dir := t.TempDir()
	for i := range 2 {
		var out bytes.Buffer
		sys, err := startSystem(t.Context(), upOptions{DataDir: dir, HTTPAddr: "127.0.0.1:0", Out: &out})
		if err != nil {
			t.Fatal(err)
		}
		l := sys.demoLogin
		if !bytes.Contains(out.Bytes(), []byte("demo login: "+l.Email+" / "+l.Password)) {
			t.Errorf("run %d: output does not print the demo login:\n%s", i, out.String())
		}
		fi, err := os.Stat(filepath.Join(dir, demoLoginFile))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("run %d: %s: %v %v; want mode 0600", i, demoLoginFile, fi, err)
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
