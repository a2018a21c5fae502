// Command dronetrack runs Dronetrack on one machine (`up`), drives any
// ingest endpoint with simulated drones (`sim`), and administers tenants,
// drones and the local broker's dead letters. Run `dronetrack help`.
//
// The commands are in package cli; the runtime they start is
// infra/local.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/dronetrack/dronetrack/cmd/dronetrack/cli"
)

func main() {
	ctx, stop := cli.SignalContext()
	defer stop()
	if err := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "dronetrack:", err)
		}
		os.Exit(1)
	}
}

// realMain runs one command: `load` here, every other in cli.Run.
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "load" {
		return loadCmd(ctx, args[1:], stdout, stderr)
	}
	return cli.Run(ctx, args, stdout, stderr)
}
