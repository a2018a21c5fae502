package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dronetrack/dronetrack/core/sim"

	"github.com/dronetrack/dronetrack/infra/local"
)

func simCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080", "ingest URL (base URL or full /v1/telemetry URL)")
	keysFile := fs.String("keys", "", "file of drone keys: JSON (demo-keys.json format or an array of strings) or one key per line")
	dataDir := fs.String("data", local.DefaultDataDir(), "data dir of a local `up` whose demo drones to fly (when --keys is not given)")
	drones := fs.Int("drones", 0, "number of drones (0: every key); with --data, missing demo drones are registered")
	jsonOut := fs.Bool("json", false, "print the summary as JSON")
	var sf local.SimSettings
	RegisterSimFlags(fs, &sf, 10*time.Second)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: dronetrack sim [--url URL] [--keys FILE | --data DIR] [--drones N] [--duration 10s] [--rate 1] ...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	var keys []string
	var err error
	if *keysFile != "" {
		keys, err = readKeyFile(*keysFile)
	} else {
		keys, err = demoDroneKeys(ctx, *dataDir, *drones, stderr)
	}
	if err != nil {
		return err
	}
	if *drones > 0 {
		if *drones > len(keys) {
			return fmt.Errorf("--drones %d but only %d keys available", *drones, len(keys))
		}
		keys = keys[:*drones]
	}
	if len(keys) == 0 {
		return errors.New("no drone keys: pass --keys FILE, or --data DIR of a `dronetrack up` with --drones N")
	}
	if sf.Duration <= 0 && sf.Count <= 0 {
		// Without a bound, fly until Ctrl-C: the context ends the run.
		sf.Duration = 100 * 365 * 24 * time.Hour
	}
	cfg, err := sf.Config(*url, keys, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "flying %d drones at %g reports/s each against %s\n", len(keys), cfg.Rate, cfg.URL)
	s, err := sim.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s); err != nil {
			return err
		}
	} else {
		fmt.Fprint(stdout, s.String())
	}
	if lost := s.Rejected + s.Failed; lost > 0 {
		return fmt.Errorf("%d of %d reports were not acknowledged", lost, s.Sent)
	}
	return nil
}

// readKeyFile reads drone keys from a demo-keys.json style file, a JSON array
// of strings, or plain text with one key per line ('#' starts a comment).
func readKeyFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	trimmed := bytes.TrimSpace(b)
	if bytes.HasPrefix(trimmed, []byte("[")) {
		var objs []local.DemoKey
		if err := json.Unmarshal(trimmed, &objs); err == nil {
			keys := make([]string, 0, len(objs))
			for _, o := range objs {
				if o.Key != "" {
					keys = append(keys, o.Key)
				}
			}
			return keys, nil
		}
		var strs []string
		if err := json.Unmarshal(trimmed, &strs); err != nil {
			return nil, fmt.Errorf("keys file %s: want an array of strings or of {\"key\": ...}: %w", path, err)
		}
		return strs, nil
	}
	var keys []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			keys = append(keys, line)
		}
	}
	return keys, sc.Err()
}

// demoDroneKeys returns the demo drones' keys of a data dir, registering
// more demo drones (through the running up, or the store directly) when
// fewer than n exist.
func demoDroneKeys(ctx context.Context, dir string, n int, stderr io.Writer) ([]string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	dk, err := local.ReadDemoKeys(filepath.Join(dir, local.DemoKeysFile))
	if err != nil {
		return nil, err
	}
	if n > len(dk) {
		adm, err := local.OpenAdmin(ctx, dir, "")
		if err != nil {
			return nil, err
		}
		defer adm.Close()
		if dk, err = local.EnsureDemoDrones(ctx, adm, dir, n); err != nil {
			return nil, err
		}
		fmt.Fprintf(stderr, "registered demo drones up to %d\n", n)
	}
	keys := make([]string, len(dk))
	for i, k := range dk {
		keys[i] = k.Key
	}
	return keys, nil
}

// RegisterSimFlags adds the simulator's flags to fs, filling f, with the
// default --duration; `sim` and `up` share them.
func RegisterSimFlags(fs *flag.FlagSet, f *local.SimSettings, duration time.Duration) {
	fs.Float64Var(&f.Rate, "rate", sim.DefaultRate, "reports per second per drone")
	fs.IntVar(&f.Batch, "batch", 1, "reports per request (1-500)")
	fs.DurationVar(&f.Duration, "duration", duration, "how long to fly (0: until --count or Ctrl-C)")
	fs.IntVar(&f.Count, "count", 0, "stop after this many reports in total (0: no limit)")
	fs.Float64Var(&f.Silent, "silent", 0.1, "fraction of drones that go silent for --silent-for at a random moment")
	fs.DurationVar(&f.SilentFor, "silent-for", sim.DefaultSilentFor, "how long a silent drone sends nothing")
	fs.StringVar(&f.Centre, "centre", fmt.Sprintf("%g,%g", sim.DefaultCentre.Lat, sim.DefaultCentre.Lon), "lat,lon the fleet flies around")
	fs.Float64Var(&f.Spread, "spread", sim.DefaultSpread, "metres: homes within this of the centre, waypoints within this of home")
	fs.Uint64Var(&f.Seed, "seed", 1, "seed for routes and silences")
	fs.IntVar(&f.Concurrency, "concurrency", 0, "max requests in flight (0: min(drones, 512))")
	fs.BoolVar(&f.PositionOnly, "position-only", false,
		"send position, altitude, speed, heading, battery and seq only, not armed, mode, GPS, hae, height, vspeed, accuracy, link and home")
}
