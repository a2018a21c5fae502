// Package cli is the dronetrack command line: it parses each command's
// flags and runs it, through the one-machine runtime (infra/local) for `up`
// and the admin commands. cmd/dronetrack's main calls Run; the system tests
// (test/system) call it too.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// SignalContext ends the context on the first SIGINT or SIGTERM, which starts
// a graceful shutdown; a second signal exits at once.
func SignalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "\ndronetrack: shutting down (Ctrl-C again to force)")
		cancel()
		<-sigs
		fmt.Fprintln(os.Stderr, "dronetrack: forced exit")
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(sigs); cancel() }
}

const usage = `usage: dronetrack <command> [flags]

commands:
  up            run the whole system on this machine (broker, every function, store, cache)
  sim           fly simulated drones against an ingest URL and report rates and latency
  load          drive up (in this process, or a running one with --url) at a ramp of rates; measure loss, latency, RSS, CPU
  bridge        forward a drone's MAVLink (UDP/serial) to ingest, spooling on disk while offline
  backup        write a consistent backup of a running up (store, queued events, pepper) to --out FILE
  restore FILE  unpack a backup into a new data dir (--data DIR); up delivers its queued events
  tenant create create a tenant
  drone add     register a drone and print its key (once)
  drone rotate-key  give a drone a new key (printed once); the old one stops working
  drone revoke-key  remove a drone's key
  user add      add a website user to a tenant (--password-stdin, or a generated password printed once)
  dlq list      list the local broker's dead-lettered events
  dlq replay ID deliver a dead-lettered event again
  rid token     print a Remote ID access token from up's local test authority (--scope S)

Run 'dronetrack <command> -h' for a command's flags.
`

// Run runs one command; main only wires the process to it so tests can
// call it with their own arguments, output and context.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "up":
		return upCmd(ctx, rest, stdout, stderr)
	case "sim":
		return simCmd(ctx, rest, stdout, stderr)
	case "load":
		return loadCmd(ctx, rest, stdout, stderr)
	case "bridge":
		return bridgeCmd(ctx, rest, stdout, stderr)
	case "rid":
		return ridCmd(ctx, rest, stdout, stderr)
	case "backup":
		return backupCmd(ctx, rest, stdout, stderr)
	case "restore":
		return restoreCmd(ctx, rest, stdout, stderr)
	case "tenant", "drone", "dlq", "user":
		if len(rest) == 0 {
			fmt.Fprint(stderr, usage)
			return fmt.Errorf("%s: missing subcommand", cmd)
		}
		return adminCmd(ctx, cmd+" "+rest[0], rest[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
