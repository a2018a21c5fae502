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
	var sf local.SimFlags
	sf.Register(fs, 10*time.Second)
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
