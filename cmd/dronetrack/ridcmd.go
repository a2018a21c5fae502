package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

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

// ridAuthorityConfig reads --rid-test-authority: "auto" runs it exactly when
// the listener is loopback; "on" insists (refused on a non-loopback
// listener); "off" never.
func ridAuthorityConfig(mode, dataDir, httpAddr string) (map[string]string, error) {
	loop := loopbackAddr(httpAddr)
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

// loopbackAddr reports whether a listen address binds only loopback
// interfaces ("" host and 0.0.0.0 bind all).
func loopbackAddr(addr string) bool {
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

// ridCmd is `dronetrack rid token --scope S [--audience H] [--ttl D] [--data DIR]`.
func ridCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "token" {
		fmt.Fprintln(stderr, "usage: dronetrack rid token --scope SCOPE [--audience HOST] [--ttl 1h] [--data DIR]")
		return errors.New("rid: want the token subcommand")
	}
	fs := flag.NewFlagSet("rid token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", defaultDataDir(), "data dir of the local system (holds the test authority's key)")
	scope := fs.String("scope", "", "space-separated scopes: rid.display_provider, rid.inject_test_data (required)")
	aud := fs.String("audience", "localhost", "the SP host the token is for (the URL's host without port)")
	sub := fs.String("subject", "dronetrack-cli", "the client the token names")
	ttl := fs.Duration("ttl", time.Hour, "lifetime (InterUSS tokens live at most an hour)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if strings.TrimSpace(*scope) == "" {
		return errors.New("rid token: --scope is required (rid.display_provider or rid.inject_test_data)")
	}
	if *ttl <= 0 || *ttl > 24*time.Hour {
		return errors.New("rid token: --ttl must be within (0, 24h]")
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	a, err := ridauth.LoadAuthority(dir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rid token: no local test authority in %s: run `dronetrack up --data %s` on a loopback address first", dir, dir)
	}
	if err != nil {
		return err
	}
	tok, err := a.Token(*scope, *aud, *sub, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
