package local

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/dronetrack/dronetrack/core/ridauth"
)

// Remote ID test authority on one machine. `dronetrack up` on a loopback
// listener keeps a key pair in the data dir and configures serve-map to
// trust it (RID_PUBLIC_KEY_FILE, RID_AUDIENCE of the loopback names);
// `dronetrack rid token --scope S` signs a token with it, as InterUSS's
// dummy OAuth server does, so the Remote ID endpoints can be tried and
// tested offline. It never runs for a listener other processes or hosts can
// reach: whoever can read the data dir could mint tokens.

// ridLoopbackAudiences are the host names a loopback SP answers to (the
// aud InterUSS's clients put in a token is the URL's host without port).
var ridLoopbackAudiences = []string{"localhost", "127.0.0.1", "::1"}

// RIDAuthorityConfig reads --rid-test-authority: "auto" runs it exactly when
// the listener is loopback; "on" insists (refused on a non-loopback
// listener); "off" never.
func RIDAuthorityConfig(mode, dataDir, httpAddr string) (map[string]string, error) {
	loop := LoopbackAddr(httpAddr)
	switch mode {
	case "off":
		return nil, nil
	case "", "auto":
		if !loop {
			return nil, nil
		}
	case "on":
		if !loop {
			return nil, fmt.Errorf("--rid-test-authority=on needs a loopback --http address (got %s): "+
				"a test authority mints tokens for anyone who can read the data dir; trust a real authority with RID_JWKS_URL instead", httpAddr)
		}
	default:
		return nil, fmt.Errorf("--rid-test-authority=%q: want auto, on or off", mode)
	}
	if _, err := ridauth.LoadOrCreateAuthority(dataDir); err != nil {
		return nil, err
	}
	return map[string]string{
		"RID_PUBLIC_KEY_FILE": filepath.Join(dataDir, ridauth.AuthorityPubKeyFile),
		"RID_AUDIENCE":        strings.Join(ridLoopbackAudiences, ","),
		// Test flights are what a test authority is for.
		"RID_INJECTION": "true",
	}, nil
}

// LoopbackAddr reports whether a listen address binds only loopback
// interfaces ("" host and 0.0.0.0 bind all).
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
