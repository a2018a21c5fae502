package main

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
	"strconv"
	"strings"
	"time"

	"github.com/dronetrack/dronetrack/core/sim"
)

// simFlags are the simulator's flags, shared by `sim` and `up --simulate`.
type simFlags struct {
	rate         float64
	batch        int
	duration     time.Duration
	count        int
	silent       float64
	silentFor    time.Duration
	centre       string
	spread       float64
	seed         uint64
	concurrency  int
	positionOnly bool
}

func (f *simFlags) register(fs *flag.FlagSet, duration time.Duration) {
	fs.Float64Var(&f.rate, "rate", sim.DefaultRate, "reports per second per drone")
	fs.IntVar(&f.batch, "batch", 1, "reports per request (1-500)")
	fs.DurationVar(&f.duration, "duration", duration, "how long to fly (0: until --count or Ctrl-C)")
	fs.IntVar(&f.count, "count", 0, "stop after this many reports in total (0: no limit)")
	fs.Float64Var(&f.silent, "silent", 0.1, "fraction of drones that go silent for --silent-for at a random moment")
	fs.DurationVar(&f.silentFor, "silent-for", sim.DefaultSilentFor, "how long a silent drone sends nothing")
	fs.StringVar(&f.centre, "centre", fmt.Sprintf("%g,%g", sim.DefaultCentre.Lat, sim.DefaultCentre.Lon), "lat,lon the fleet flies around")
	fs.Float64Var(&f.spread, "spread", sim.DefaultSpread, "metres: homes within this of the centre, waypoints within this of home")
	fs.Uint64Var(&f.seed, "seed", 1, "seed for routes and silences")
	fs.IntVar(&f.concurrency, "concurrency", 0, "max requests in flight (0: min(drones, 512))")
	fs.BoolVar(&f.positionOnly, "position-only", false,
		"send position, altitude, speed, heading, battery and seq only, not armed, mode, GPS, hae, height, vspeed, accuracy, link and home")
}

func (f *simFlags) config(url string, keys []string, live io.Writer) (sim.Config, error) {
	var c sim.Point
	lat, lon, ok := strings.Cut(f.centre, ",")
	var err1, err2 error
	c.Lat, err1 = strconv.ParseFloat(strings.TrimSpace(lat), 64)
	c.Lon, err2 = strconv.ParseFloat(strings.TrimSpace(lon), 64)
	if !ok || err1 != nil || err2 != nil || c.Lat < -85 || c.Lat > 85 || c.Lon < -180 || c.Lon > 180 {
		return sim.Config{}, fmt.Errorf("--centre %q: want lat,lon in degrees", f.centre)
	}
	return sim.Config{
		URL: url, Keys: keys, Rate: f.rate, Batch: f.batch, Duration: f.duration, Count: f.count,
		SilentFraction: f.silent, SilentFor: f.silentFor, Centre: c, Spread: f.spread, Seed: f.seed,
		Concurrency: f.concurrency, Live: live, PositionOnly: f.positionOnly,
	}, nil
}

func simCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080", "ingest URL (base URL or full /v1/telemetry URL)")
	keysFile := fs.String("keys", "", "file of drone keys: JSON (demo-keys.json format or an array of strings) or one key per line")
	dataDir := fs.String("data", defaultDataDir(), "data dir of a local `up` whose demo drones to fly (when --keys is not given)")
	drones := fs.Int("drones", 0, "number of drones (0: every key); with --data, missing demo drones are registered")
	jsonOut := fs.Bool("json", false, "print the summary as JSON")
	var sf simFlags
	sf.register(fs, 10*time.Second)
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
	if sf.duration <= 0 && sf.count <= 0 {
		// Without a bound, fly until Ctrl-C: the context ends the run.
		sf.duration = 100 * 365 * 24 * time.Hour
	}
	cfg, err := sf.config(*url, keys, stderr)
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
		var objs []demoKey
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
	dk, err := readDemoKeys(filepath.Join(dir, demoKeysFile))
	if err != nil {
		return nil, err
	}
	if n > len(dk) {
		adm, err := openAdmin(ctx, dir, "")
		if err != nil {
			return nil, err
		}
		defer adm.Close()
		if dk, err = ensureDemoDrones(ctx, adm, dir, n); err != nil {
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
