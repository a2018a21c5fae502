// Package ridauth checks the OAuth 2 bearer access tokens that Network
// Remote ID peers present (ASTM F3411-22a and InterUSS's test interfaces):
// JWTs signed with RS256 by an authority the deployment trusts, for this
// Service Provider's host (aud) and carrying the scope an endpoint needs.
// Keys come from the authority's JWKS URL or from a file (PEM public key or
// a JWKS document). It also runs a local test authority (authority.go) so
// one machine can mint tokens it accepts, as InterUSS's dummy OAuth does.
package ridauth

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// Scopes the SP checks.
const (
	// ScopeDisplayProvider lets a display provider query /uss/flights and
	// /uss/flights/{id}/details.
	ScopeDisplayProvider = "rid.display_provider"
	// ScopeInjectTestData lets a test driver (uss_qualifier) inject and
	// remove test flights.
	ScopeInjectTestData = "rid.inject_test_data"
)

// Errors Check returns; the SP maps the first two to 401 and ErrScope to 403.
var (
	ErrNoToken      = errors.New("no bearer access token")
	ErrInvalidToken = errors.New("invalid access token")
	ErrScope        = errors.New("access token lacks the required scope")
)

// Leeway is the clock skew tolerated on exp, nbf and iat.
const Leeway = 10 * time.Second

// Config says which tokens a Verifier accepts.
type Config struct {
	// JWKSURL is the authority's JWK Set; keys are refreshed hourly and when
	// a token names an unknown kid (rate limited).
	JWKSURL string
	// PublicKeyFile holds the authority's key: a PEM public key or a JWK Set
	// (JSON). Used when JWKSURL is empty.
	PublicKeyFile string
	// Audiences are the names this SP answers to (its host, as InterUSS
	// puts it in aud: the URL's host without port); a token must name one.
	Audiences []string
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Claims are the claims the SP reads.
type Claims struct {
	jwt.RegisteredClaims
	// Scope is the space-separated list of granted scopes (RFC 6749/8693).
	Scope string `json:"scope"`
}

// HasScope reports whether the token grants scope.
func (c Claims) HasScope(scope string) bool {
	return slices.Contains(strings.Fields(c.Scope), scope)
}

// Verifier checks access tokens against one authority.
type Verifier struct {
	keys   jwt.Keyfunc
	parser *jwt.Parser
	cancel context.CancelFunc
}

// New builds a Verifier. With a JWKS URL it fetches the set now (so a
// wrong URL fails at start) and keeps it fresh until Close.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if len(cfg.Audiences) == 0 {
		return nil, errors.New("ridauth: at least one audience (this SP's host name) is required")
	}
	v := &Verifier{cancel: func() {}}
	switch {
	case cfg.JWKSURL != "":
		kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		kf, err := keyfunc.NewDefaultCtx(kctx, []string{cfg.JWKSURL})
		if err != nil {
			cancel()
			return nil, fmt.Errorf("ridauth: JWKS %s: %w", cfg.JWKSURL, err)
		}
		v.keys, v.cancel = kf.Keyfunc, cancel
	case cfg.PublicKeyFile != "":
		raw, err := os.ReadFile(cfg.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("ridauth: public key file: %w", err)
		}
		if v.keys, err = keysFromFile(raw); err != nil {
			return nil, fmt.Errorf("ridauth: public key file %s: %w", cfg.PublicKeyFile, err)
		}
	default:
		return nil, errors.New("ridauth: set a JWKS URL or a public key file")
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithAudience(cfg.Audiences...),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(Leeway),
	}
	if cfg.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(cfg.Now))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// keysFromFile reads a PEM public key or a JWK Set.
func keysFromFile(raw []byte) (jwt.Keyfunc, error) {
	if s := strings.TrimSpace(string(raw)); strings.HasPrefix(s, "{") {
		if !json.Valid(raw) {
			return nil, errors.New("not valid JSON")
		}
		kf, err := keyfunc.NewJWKSetJSON(raw)
		if err != nil {
			return nil, err
		}
		return kf.Keyfunc, nil
	}
	pub, err := jwt.ParseRSAPublicKeyFromPEM(raw)
	if err != nil {
		return nil, err
	}
	return func(*jwt.Token) (any, error) { return pub, nil }, nil
}

// StaticKey is a Verifier option for tests and the local authority: accept
// tokens signed by pub.
func StaticKey(pub *rsa.PublicKey) jwt.Keyfunc {
	return func(*jwt.Token) (any, error) { return pub, nil }
}

// Close stops refreshing the JWK Set.
func (v *Verifier) Close() { v.cancel() }

// Check validates the Authorization header's bearer token and that it
// grants scope. The error wraps ErrNoToken, ErrInvalidToken or ErrScope and
// says why (never echoing the token).
func (v *Verifier) Check(authorization, scope string) (Claims, error) {
	kind, tok, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(kind, "Bearer") || strings.TrimSpace(tok) == "" {
		return Claims{}, ErrNoToken
	}
	var c Claims
	if _, err := v.parser.ParseWithClaims(strings.TrimSpace(tok), &c, v.keys); err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if !c.HasScope(scope) {
		return c, fmt.Errorf("%w %q", ErrScope, scope)
	}
	return c, nil
}
