package ridauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func newVerifier(t *testing.T, dir string) *Verifier {
	t.Helper()
	v, err := New(context.Background(), Config{PublicKeyFile: filepath.Join(dir, AuthorityPubKeyFile),
		Audiences: []string{"sp.example.test", "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

func TestLocalAuthorityTokens(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreateAuthority(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, AuthorityKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v; want mode 0600", fi, err)
	}
	again, err := LoadOrCreateAuthority(dir)
	if err != nil || again.kid != a.kid {
		t.Fatalf("reloaded authority differs: %v", err)
	}
	v := newVerifier(t, dir)
	bearer := func(s string) string { return "Bearer " + s }

	tok, err := a.Token(ScopeDisplayProvider+" other.scope", "sp.example.test", "dp-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Check(bearer(tok), ScopeDisplayProvider)
	if err != nil || c.Subject != "dp-1" {
		t.Fatalf("valid token: %+v, %v", c, err)
	}
	if _, err := v.Check(bearer(tok), ScopeInjectTestData); !errors.Is(err, ErrScope) {
		t.Errorf("wrong scope: %v, want ErrScope", err)
	}
	// Scopes are a space-separated list of whole names: a longer name that
	// starts with the scope, or a comma-joined list, grants nothing.
	for _, scope := range []string{ScopeDisplayProvider + ".all", "x" + ScopeDisplayProvider, ScopeDisplayProvider + "," + ScopeInjectTestData} {
		tok, err := a.Token(scope, "localhost", "dp-1", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Check(bearer(tok), ScopeDisplayProvider); !errors.Is(err, ErrScope) {
			t.Errorf("scope %q: %v, want ErrScope", scope, err)
		}
	}
	for name, h := range map[string]string{"empty": "", "basic": "Basic dXNlcjpwdw==", "bearer only": "Bearer "} {
		if _, err := v.Check(h, ScopeDisplayProvider); !errors.Is(err, ErrNoToken) {
			t.Errorf("%s header: %v, want ErrNoToken", name, err)
		}
	}

	other, _ := NewAuthority()
	now := time.Now()
	bad := map[string]func() (string, error){
		"wrong audience": func() (string, error) { return a.Token(ScopeDisplayProvider, "evil.test", "x", time.Hour) },
		"expired": func() (string, error) {
			return a.sign(jwt.SigningMethodRS256, ScopeDisplayProvider, "localhost", "x", now.Add(-2*time.Hour), time.Hour)
		},
		"not yet valid": func() (string, error) {
			return a.sign(jwt.SigningMethodRS256, ScopeDisplayProvider, "localhost", "x", now.Add(time.Hour), time.Hour)
		},
		"another key": func() (string, error) { return other.Token(ScopeDisplayProvider, "localhost", "x", time.Hour) },
		"RS512": func() (string, error) {
			return a.sign(jwt.SigningMethodRS512, ScopeDisplayProvider, "localhost", "x", now, time.Hour)
		},
		"HS256 keyed with the public key": func() (string, error) {
			t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"aud": "localhost", "scope": ScopeDisplayProvider,
				"exp": now.Add(time.Hour).Unix()})
			return t.SignedString(a.PublicKeyPEM())
		},
		"alg none": func() (string, error) {
			t := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"aud": "localhost", "scope": ScopeDisplayProvider,
				"exp": now.Add(time.Hour).Unix()})
			return t.SignedString(jwt.UnsafeAllowNoneSignatureType)
		},
		"no exp": func() (string, error) {
			t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"aud": "localhost", "scope": ScopeDisplayProvider})
			return t.SignedString(a.key)
		},
		"no aud": func() (string, error) {
			t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"scope": ScopeDisplayProvider,
				"exp": now.Add(time.Hour).Unix()})
			return t.SignedString(a.key)
		},
		"garbage": func() (string, error) { return "not.a.jwt", nil },
	}
	for name, mk := range bad {
		tok, err := mk()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := v.Check(bearer(tok), ScopeDisplayProvider); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: %v, want ErrInvalidToken", name, err)
		}
	}
}

// TestJWKSURL serves the authority's key as a JWK Set, as a real authority
// publishes it.
func TestJWKSURL(t *testing.T) {
	a, err := NewAuthority()
	if err != nil {
		t.Fatal(err)
	}
	pub := a.PublicKey()
	set := map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": a.kid, "alg": "RS256", "use": "sig",
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	defer srv.Close()
	v, err := New(context.Background(), Config{JWKSURL: srv.URL, Audiences: []string{"sp.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	tok, _ := a.Token(ScopeInjectTestData, "sp.example.test", "qualifier", time.Minute)
	if _, err := v.Check("Bearer "+tok, ScopeInjectTestData); err != nil {
		t.Errorf("token from the JWKS authority: %v", err)
	}
	other, _ := NewAuthority()
	tok, _ = other.Token(ScopeInjectTestData, "sp.example.test", "qualifier", time.Minute)
	if _, err := v.Check("Bearer "+tok, ScopeInjectTestData); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("token of a key not in the set: %v", err)
	}
	// The same set as a file.
	raw, _ := json.Marshal(set)
	f := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(f, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	vf, err := New(context.Background(), Config{PublicKeyFile: f, Audiences: []string{"sp.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ = a.Token(ScopeInjectTestData, "sp.example.test", "qualifier", time.Minute)
	if _, err := vf.Check("Bearer "+tok, ScopeInjectTestData); err != nil {
		t.Errorf("token checked against a JWKS file: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := New(context.Background(), Config{PublicKeyFile: "x"}); err == nil {
		t.Error("no audience accepted")
	}
	if _, err := New(context.Background(), Config{Audiences: []string{"a"}}); err == nil {
		t.Error("no key source accepted")
	}
	f := filepath.Join(t.TempDir(), "k.pem")
	_ = os.WriteFile(f, []byte("not a key"), 0o644)
	if _, err := New(context.Background(), Config{PublicKeyFile: f, Audiences: []string{"a"}}); err == nil {
		t.Error("garbage key file accepted")
	}
}
