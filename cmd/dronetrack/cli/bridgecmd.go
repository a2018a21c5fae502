package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dronetrack/dronetrack/core/bridge"

	"github.com/dronetrack/dronetrack/infra/local"
)

// KeyEnv is where `dronetrack bridge` reads the drone key when no
// --key-file is given. Not a flag: flags show in the process list.
const KeyEnv = "DRONETRACK_KEY"

// bridgeCmd runs the MAVLink bridge on a companion computer or ground
// station: MAVLink 2 in (UDP and/or serial), batches of reports out to
// ingest, spooled on disk while the link is down (see core/bridge).
func bridgeCmd(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("bridge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	udp := fs.String("udp", ":14550", "UDP address to receive MAVLink on (empty: none)")
	serial := fs.String("serial", "", "serial device of a telemetry port, e.g. /dev/ttyAMA0 (empty: none)")
	baud := fs.Int("baud", 57600, "serial baud rate")
	sysID := fs.Uint("system-id", 0, "MAVLink system id of the vehicle to follow (0: the first one seen)")
	streams := fs.Bool("request-streams", false, "ask an ArduPilot autopilot to stream telemetry (needed on a bare serial link)")
	ingest := fs.String("ingest", "http://127.0.0.1:8080", "ingest base URL or full /v1/telemetry URL")
	keyFile := fs.String("key-file", "", "file holding the drone key (default: $"+KeyEnv+")")
	dataDir := fs.String("data", filepath.Join(local.DefaultDataDir(), "bridge"), "directory of the on-disk spool")
	batch := fs.Int("batch", 50, "reports per request (1-500)")
	flush := fs.Duration("flush", time.Second, "longest a report waits for a full batch")
	maxBackoff := fs.Duration("max-backoff", 10*time.Second, "longest wait between resends while ingest is unreachable")
	statsEvery := fs.Duration("stats", 30*time.Second, "log counters this often (0: never)")
	verbose := fs.Bool("v", false, "debug logging")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: dronetrack bridge [--udp :14550] [--serial DEV --baud N] --ingest URL [--key-file FILE] [--data DIR]")
		fmt.Fprintln(stderr, "The drone key comes from --key-file or $"+KeyEnv+". Reports wait in the spool under --data until ingest takes them.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bridge: unexpected arguments %q", fs.Args())
	}
	if *sysID > 255 {
		return fmt.Errorf("bridge: --system-id %d: want 0-255", *sysID)
	}
	if *batch < 1 || *batch > 500 {
		return fmt.Errorf("bridge: --batch %d: want 1-500 (ingest takes at most 500 reports per request)", *batch)
	}
	key := os.Getenv(KeyEnv)
	if *keyFile != "" {
		b, err := os.ReadFile(*keyFile)
		if err != nil {
			return fmt.Errorf("bridge: read key file: %w", err)
		}
		key = strings.TrimSpace(string(b))
	}
	if key == "" {
		return errors.New("bridge: no drone key: use --key-file or set " + KeyEnv)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	b, err := bridge.New(bridge.Config{
		UDPAddr: *udp, SerialDevice: *serial, SerialBaud: *baud, SystemID: byte(*sysID), RequestStreams: *streams,
		IngestURL: *ingest, Key: key, DataDir: *dataDir,
		BatchSize: *batch, FlushInterval: *flush, MaxBackoff: *maxBackoff, Logger: log,
	})
	if err != nil {
		return err
	}
	pending, _ := b.Pending()
	log.Info("bridge running", "udp", *udp, "serial", *serial, "ingest", *ingest, "spool", *dataDir, "pending", pending)
	if *statsEvery > 0 {
		go func() {
			t := time.NewTicker(*statsEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					s := b.Stats()
					p, _ := b.Pending()
					log.Info("bridge stats", "positions", s.Positions, "sent", s.Sent, "pending", p,
						"failed_sends", s.Failures, "rejected", s.Rejected, "dropped", s.Dropped)
				}
			}
		}()
	}
	err = b.Run(ctx)
	s := b.Stats()
	log.Info("bridge stopped", "positions", s.Positions, "sent", s.Sent, "failed_sends", s.Failures,
		"rejected", s.Rejected, "dropped", s.Dropped)
	return err
}
