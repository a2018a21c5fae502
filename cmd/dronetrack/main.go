// Command dronetrack runs Dronetrack on one machine (`up`), drives any
// ingest endpoint with simulated drones (`sim`), and administers tenants,
// drones and the local broker's dead letters. Run `dronetrack help`.
//
// The commands are in package cli; the runtime they start is
// infra/local.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/dronetrack/dronetrack/cmd/dronetrack/cli"
)

func main() {
	ctx, stop := cli.SignalContext()
	defer stop()
	if err := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "dronetrack:", err)
		}
		os.Exit(1)
	}
}
