package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dronetrack/dronetrack/core/ridauth"

	"github.com/dronetrack/dronetrack/infra/local"
)

// ridCmd is `dronetrack rid token --scope S [--audience H] [--ttl D] [--data DIR]`.
func ridCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "token" {
		fmt.Fprintln(stderr, "usage: dronetrack rid token --scope SCOPE [--audience HOST] [--ttl 1h] [--data DIR]")
		return errors.New("rid: want the token subcommand")
	}
	fs := flag.NewFlagSet("rid token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", local.DefaultDataDir(), "data dir of the local system (holds the test authority's key)")
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
