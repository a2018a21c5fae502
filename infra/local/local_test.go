package local

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/problem"
)

func TestPepperIsMadeOnceAndPrivate(t *testing.T) {
	dir := t.TempDir()
	p1, err := LoadPepper(dir)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := LoadPepper(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p1 != p2 || len(p1) != 64 {
		t.Errorf("pepper changed or is short: %q then %q", p1, p2)
	}
	fi, err := os.Stat(filepath.Join(dir, PepperFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("pepper file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestDemoKeysRoundTripPrivately(t *testing.T) {
	path := filepath.Join(t.TempDir(), DemoKeysFile)
	want := []DemoKey{{TenantID: "demo", DroneID: "d1", Name: "demo-001", Key: "dtk_x"}}
	if err := writeDemoKeys(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadDemoKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("demo keys (-want +got):\n%s", diff)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("demo keys mode %v, want 0600", fi.Mode().Perm())
	}
}

// The admin endpoint answers a missing token and a bad body with RFC 9457
// problem JSON from core/problem, as the functions do.
func TestAdminHandlerProblems(t *testing.T) {
	h := adminHandler(nil, "tok") // neither request reaches the admin
	for _, tc := range []struct {
		name, auth, body string
		want             int
	}{
		{"no token", "", `{}`, http.StatusUnauthorized},
		{"bad JSON", "Bearer tok", `{"id":`, http.StatusBadRequest},
	} {
		req := httptest.NewRequest(http.MethodPost, "/admin/v1/tenants", strings.NewReader(tc.body))
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var p problem.Details
		err := json.Unmarshal(rec.Body.Bytes(), &p)
		if rec.Code != tc.want || rec.Header().Get("Content-Type") != problem.ContentType || err != nil || p.Status != tc.want || p.Detail == "" {
			t.Errorf("%s: %d %q %s (decode err %v); want %d problem JSON with a detail", tc.name, rec.Code, rec.Header().Get("Content-Type"), rec.Body, err, tc.want)
		}
	}
}
