package ridauth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Files of the local test authority in its directory (the data dir of
// `dronetrack up`). The private key never leaves the machine.
const (
	AuthorityKeyFile    = "rid-authority-key.pem"
	AuthorityPubKeyFile = "rid-authority-pub.pem"
)

// Authority is a local test authority: an RSA key pair that signs RS256
// access tokens for any scope, like InterUSS's dummy OAuth server. It is
// for tests and one-machine trials only; a deployment trusts a real
// authority's JWKS instead.
type Authority struct {
	key *rsa.PrivateKey
	kid string
}

// NewAuthority makes an authority with a fresh 2048-bit key (not stored).
func NewAuthority() (*Authority, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("ridauth: generate key: %w", err)
	}
	return newAuthority(k)
}

func newAuthority(k *rsa.PrivateKey) (*Authority, error) {
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("ridauth: encode public key: %w", err)
	}
	h := sha256.Sum256(der)
	return &Authority{key: k, kid: base64.RawURLEncoding.EncodeToString(h[:12])}, nil
}

// LoadOrCreateAuthority reads the authority of dir, creating its key pair
// (private key mode 0600) on first use.
func LoadOrCreateAuthority(dir string) (*Authority, error) {
	a, err := LoadAuthority(dir)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return a, err
	}
	if a, err = NewAuthority(); err != nil {
		return nil, err
	}
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(a.key)})
	der, _ := x509.MarshalPKIXPublicKey(&a.key.PublicKey) // encoded once in newAuthority already
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, AuthorityPubKeyFile), pub, 0o644); err != nil {
		return nil, fmt.Errorf("ridauth: write public key: %w", err)
	}
	// The private key last: its presence means the pair is complete.
	tmp := filepath.Join(dir, AuthorityKeyFile+".tmp")
	if err := os.WriteFile(tmp, priv, 0o600); err != nil {
		return nil, fmt.Errorf("ridauth: write private key: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, AuthorityKeyFile)); err != nil {
		return nil, fmt.Errorf("ridauth: write private key: %w", err)
	}
	return a, nil
}

// LoadAuthority reads dir's authority; a missing key is os.ErrNotExist.
func LoadAuthority(dir string) (*Authority, error) {
	raw, err := os.ReadFile(filepath.Join(dir, AuthorityKeyFile))
	if err != nil {
		return nil, fmt.Errorf("ridauth: local authority key: %w", err)
	}
	k, err := jwt.ParseRSAPrivateKeyFromPEM(raw)
	if err != nil {
		return nil, fmt.Errorf("ridauth: local authority key %s: %w", filepath.Join(dir, AuthorityKeyFile), err)
	}
	return newAuthority(k)
}

// PublicKey is the key a Verifier trusts for this authority.
func (a *Authority) PublicKey() *rsa.PublicKey { return &a.key.PublicKey }

// PublicKeyPEM is PublicKey in PEM (what PublicKeyFile holds).
func (a *Authority) PublicKeyPEM() []byte {
	der, _ := x509.MarshalPKIXPublicKey(&a.key.PublicKey)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// Token signs an access token for audience with the space-separated scope,
// valid for ttl (InterUSS tokens live at most an hour).
func (a *Authority) Token(scope, audience, subject string, ttl time.Duration) (string, error) {
	return a.sign(jwt.SigningMethodRS256, scope, audience, subject, time.Now(), ttl)
}

func (a *Authority) sign(m jwt.SigningMethod, scope, audience, subject string, now time.Time, ttl time.Duration) (string, error) {
	c := Claims{Scope: scope, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: "dronetrack-local-test-authority", Subject: subject, Audience: jwt.ClaimStrings{audience},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Second)),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	t := jwt.NewWithClaims(m, c)
	t.Header["kid"] = a.kid
	s, err := t.SignedString(a.key)
	if err != nil {
		return "", fmt.Errorf("ridauth: sign: %w", err)
	}
	return s, nil
}
