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

	"github.com/dronetrack/dronetrack/infra/local"
)

func adminCmd(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	if accountCommands[cmd] {
		return accountAdminCmd(ctx, cmd, args, os.Stdin, stdout, stderr)
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", local.DefaultDataDir(), "data dir of the local system")
	storeOverride := fs.String("store", "", "store URL (bolt:///abs/path.db or firestore://PROJECT) instead of the data dir's")
	var name, tenant, id string
	switch cmd {
	case "tenant create":
		fs.StringVar(&name, "name", "", "tenant name (required)")
		fs.StringVar(&id, "id", "", "tenant id (default: derived from the name)")
	case "drone add":
		fs.StringVar(&tenant, "tenant", "", "tenant id (required)")
		fs.StringVar(&name, "name", "", "drone name (required)")
	case "dlq list", "dlq replay":
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
	if err := fs.Parse(args); err != nil {
		return err
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

	switch cmd {
	case "tenant create":
		if name == "" {
			return errors.New("tenant create: --name is required")
		}
		if id == "" {
			id = slug(name)
		}
		t, err := adm.CreateTenant(ctx, id, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "tenant %s (%s) created\n", t.ID, t.Name)
	case "drone add":
		if tenant == "" || name == "" {
			return errors.New("drone add: --tenant and --name are required")
		}
		d, err := adm.AddDrone(ctx, tenant, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "drone %s (%s) added to tenant %s\n", d.DroneID, d.Name, d.TenantID)
		fmt.Fprintf(stdout, "key (shown once, store it now): %s\n", d.Key)
	case "dlq list":
		dls, err := adm.DeadLetters(ctx)
		if err != nil {
			return err
		}
		if len(dls) == 0 {
			fmt.Fprintln(stdout, "no dead letters")
			return nil
		}
		for _, d := range dls {
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\tattempts=%d\t%s\t%s\n", d.ID, d.At.Format(time.RFC3339), d.Trigger, d.Type, d.Attempts, d.EventID, d.Reason)
		}
	case "dlq replay":
		if fs.NArg() != 1 {
			return errors.New("usage: dronetrack dlq replay [--data DIR] ID")
		}
		if err := adm.Replay(ctx, fs.Arg(0)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "dead letter %s replayed\n", fs.Arg(0))
	}
	return nil
}

// slug turns a name into an id: lower case letters, digits and dashes.
func slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}
