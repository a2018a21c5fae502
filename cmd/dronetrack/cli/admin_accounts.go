package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/dronetrack/dronetrack/infra/local"
)

var accountCommands = map[string]bool{"user add": true, "drone rotate-key": true, "drone revoke-key": true}

func accountAdminCmd(ctx context.Context, cmd string, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", local.DefaultDataDir(), "data dir of the local system")
	storeOverride := fs.String("store", "", "store URL (bolt:///abs/path.db or firestore://PROJECT) instead of the data dir's")
	tenant := fs.String("tenant", "", "tenant id (required)")
	var email, role, drone string
	var pwStdin bool
	switch cmd {
	case "user add":
		fs.StringVar(&email, "email", "", "email (required)")
		fs.StringVar(&role, "role", "viewer", "owner, admin or viewer")
		fs.BoolVar(&pwStdin, "password-stdin", false, "read the password from the first line of stdin (default: generate one and print it once)")
	default:
		fs.StringVar(&drone, "drone", "", "drone id (required)")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tenant == "" {
		return fmt.Errorf("%s: --tenant is required", cmd)
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	adm, err := local.OpenAdmin(ctx, dir, *storeOverride)
	if err != nil {
		return err
	}
	defer adm.Close()
	aa, ok := adm.(local.AccountAdmin)
	if !ok {
		return fmt.Errorf("%s: not supported by this admin", cmd)
	}
	switch cmd {
	case "user add":
		if email == "" {
			return errors.New("user add: --email is required")
		}
		password := ""
		if pwStdin {
			line, err := bufio.NewReader(stdin).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read password: %w", err)
			}
			password = strings.TrimRight(line, "\r\n")
			if password == "" {
				return errors.New("user add: empty password on stdin")
			}
		}
		u, err := aa.AddUser(ctx, *tenant, email, role, password)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s (%s, %s) added to tenant %s\n", u.Email, u.ID, u.Role, u.TenantID)
		if u.Password != "" {
			fmt.Fprintf(stdout, "password (shown once, store it now): %s\n", u.Password)
		}
	case "drone rotate-key":
		d, err := aa.RotateKey(ctx, *tenant, drone)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "drone %s of tenant %s has a new key; the old one stops working within ingest's KEY_CACHE_TTL (30 s by default)\n", d.DroneID, d.TenantID)
		fmt.Fprintf(stdout, "key (shown once, store it now): %s\n", d.Key)
	case "drone revoke-key":
		if err := aa.RevokeKey(ctx, *tenant, drone); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "drone %s of tenant %s has no key; the old one stops working within ingest's KEY_CACHE_TTL (30 s by default)\n", drone, *tenant)
	}
	return nil
}
