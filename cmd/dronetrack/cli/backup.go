package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/dronetrack/dronetrack/infra/local"
)

// backupCmd is `dronetrack backup --out FILE [--data DIR]`.
func backupCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", local.DefaultDataDir(), "data dir of the running up to back up")
	out := fs.String("out", "", "file to write the backup to (required; written whole or not at all)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: dronetrack backup --out FILE [--data DIR]   (while `dronetrack up --data DIR` runs)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("backup: --out FILE is required")
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	ra, ok := local.DialAdmin(ctx, dir)
	if !ok {
		return fmt.Errorf("backup: no running up answers for data dir %s: backup takes a hot snapshot of a running `dronetrack up --data %s` "+
			"(for a stopped one, copy the whole data dir)", dir, dir)
	}
	defer ra.Close()
	info, err := ra.Backup(ctx, *out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup %s: store %d bytes, %d pending events, %d dead letters, %d files; deliveries held %s\n",
		*out, info.StoreBytes, info.PendingEvents, info.DeadLetters, len(info.Files), info.DeliveriesHeld)
	return nil
}

// restoreCmd is `dronetrack restore FILE --data DIR`.
func restoreCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", "", "new data dir to restore into (required; must not exist or be empty)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: dronetrack restore FILE --data DIR")
		fs.PrintDefaults()
	}
	// The file may come before or after the flags.
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fs.Usage()
		return errors.New("restore: one backup FILE")
	}
	if file == "" || *dataDir == "" {
		fs.Usage()
		return errors.New("restore: FILE and --data DIR are required")
	}
	info, dir, err := local.RestoreBackup(file, *dataDir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s (taken %s) into %s: store %d bytes, %d pending events to deliver and %d dead letters to record on the next start\n",
		file, info.CreatedAt.Format(time.RFC3339), dir, info.StoreBytes, info.PendingEvents, info.DeadLetters)
	fmt.Fprintf(stdout, "start it with: dronetrack up --data %s\n", dir)
	return nil
}
