package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/dronetrack/dronetrack/core/loadgen"
	"github.com/dronetrack/dronetrack/infra/local"
)

// loadCmd is `dronetrack load`: core/loadgen's ramp against a one-machine
// system, either started in this process (as `up` does; the generator's
// cost is then in the CPU figure too) or, with --url, an `up` running in
// another process, whose RSS and CPU are measured and whose store is read
// through the API.
func loadCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", "", "data dir for the system under load (default: a fresh temp dir, removed after)")
	drones := fs.Int("drones", 2000, "simulated drones (seeded as demo drones)")
	ratesFlag := fs.String("rates", "500,1000,2000,4000", "ramp: total target reports/s per step")
	cfg := loadgen.Config{Log: stderr}
	fs.DurationVar(&cfg.Step, "step", 10*time.Second, "duration of each ramp step")
	fs.IntVar(&cfg.Batch, "batch", 1, "reports per request")
	fs.DurationVar(&cfg.Poll, "poll", 100*time.Millisecond, "how often the store and the fleet API are read (latency resolution)")
	out := fs.String("out", "test/results", "directory for load.md, load.json and load.png")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this loopback address during the run")
	cpuProfile := fs.String("cpuprofile", "", "write this process's CPU profile (the generator's, with --url) to this file")
	fs.IntVar(&cfg.Concurrency, "concurrency", 0, "max requests in flight (0: the simulator's default)")
	fs.DurationVar(&cfg.Tick, "tick", 0, "send the reports due within each tick together (e.g. 10ms): the generator wakes once a tick, "+
		"not once a request, which halves its CPU at 1,000-2,500 requests/s, but up then gets bursts (0: each report on time)")
	fs.DurationVar(&cfg.Drain, "drain", 2*time.Minute, "after the ramp, how long to wait for the backlog to be stored before counting loss")
	url := fs.String("url", "", "drive an `up` already running at this base URL instead of starting one in this process; "+
		"--data is then its data dir (demo keys and login; default: up's default), which needs --drones demo drones (up --demo-drones N)")
	procs := fs.Int("procs", 0, "with --url, run the generator on this many cores at most (GOMAXPROCS; 0: 1, which leaves the other cores to up "+
		"and spares the runtime waking idle threads for every request; the generator needs a fraction of one core)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, s := range strings.Split(*ratesFlag, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || r <= 0 {
			return fmt.Errorf("--rates %q: want positive numbers separated by commas", *ratesFlag)
		}
		cfg.Rates = append(cfg.Rates, r)
	}
	var target loadgen.Target
	if *url != "" {
		dir := *dataDir
		if dir == "" {
			dir = local.DefaultDataDir()
		}
		var err error
		if target, err = remoteTarget(*url, dir, *drones); err != nil {
			return err
		}
		proc := "this one (no pid in " + local.AdminFile + ")"
		if target.PID > 0 {
			proc = strconv.Itoa(target.PID)
		}
		fmt.Fprintf(stderr, "load: driving %s (data dir %s) with %d drones; RSS and CPU are of process %s\n", target.URL, dir, *drones, proc)
		if *procs <= 0 {
			*procs = 1
		}
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(*procs))
	} else {
		dir := *dataDir
		if dir == "" {
			d, err := os.MkdirTemp("", "dronetrack-load-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(d)
			dir = d
		}
		fmt.Fprintf(stderr, "load: starting the system in %s with %d drones (seeding may take a while)\n", dir, *drones)
		logf, err := os.Create(filepath.Join(dir, "load-system.log"))
		if err != nil {
			return err
		}
		defer logf.Close()
		// Every simulated drone sends from the loopback address, where a
		// real fleet's come from many: ingest's per-address limit would
		// cap the run at its rate (RATE_LIMIT_IP) and answer the rest 429,
		// so it is off unless the environment sets it (test/load.sh does
		// the same for up). The per-drone limit stays.
		var set local.SetFlags
		if os.Getenv("RATE_LIMIT_IP") == "" {
			if err := set.Set("ingest.RATE_LIMIT_IP=off"); err != nil {
				return err
			}
		}
		sys, err := local.Start(ctx, local.Options{
			DataDir: dir, HTTPAddr: "127.0.0.1:0", LogLevel: slog.LevelWarn, Log: logf, Out: io.Discard,
			DemoDrones: *drones, PprofAddr: *pprofAddr, Set: set,
		})
		if err != nil {
			return err
		}
		defer sys.Shutdown()
		demo, err := local.ReadDemoKeys(filepath.Join(sys.DataDir(), local.DemoKeysFile))
		if err != nil {
			return err
		}
		target = loadgen.Target{URL: sys.URL(), Drones: loadDrones(demo[:*drones]), Login: loadgen.Login(sys.DemoLogin()), Store: sys.Store()}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	res, err := loadgen.Run(ctx, cfg, target)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, res.Markdown())
	if err := res.WriteFiles(*out); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "load: wrote %s/load.md, load.json, load.png\n", *out)
	if res.Lost != 0 {
		return fmt.Errorf("load: %d acked reports not stored", res.Lost)
	}
	return nil
}

// remoteTarget reads what driving a running up needs from its data dir: the
// demo drones' keys (at least drones of them), the demo owner's login and
// the process id (for RSS and CPU of the system, not of this generator).
func remoteTarget(rawURL, dir string, drones int) (loadgen.Target, error) {
	demo, err := local.ReadDemoKeys(filepath.Join(dir, local.DemoKeysFile))
	if err != nil {
		return loadgen.Target{}, err
	}
	if len(demo) < drones {
		return loadgen.Target{}, fmt.Errorf("load: %s has %d demo drones, --drones wants %d: start up with --demo-drones %d",
			dir, len(demo), drones, drones)
	}
	t := loadgen.Target{URL: strings.TrimRight(rawURL, "/"), Drones: loadDrones(demo[:drones])}
	raw, err := os.ReadFile(filepath.Join(dir, local.DemoLoginFile))
	if err != nil {
		return loadgen.Target{}, fmt.Errorf("load: demo login: %w", err)
	}
	if err := json.Unmarshal(raw, &t.Login); err != nil {
		return loadgen.Target{}, fmt.Errorf("load: demo login %s: %w", local.DemoLoginFile, err)
	}
	if info, err := os.ReadFile(filepath.Join(dir, local.AdminFile)); err == nil {
		var ai local.AdminInfo
		if json.Unmarshal(info, &ai) == nil {
			t.PID = ai.PID
		}
	}
	return t, nil
}

func loadDrones(demo []local.DemoKey) []loadgen.Drone {
	ds := make([]loadgen.Drone, len(demo))
	for i, d := range demo {
		ds[i] = loadgen.Drone{TenantID: d.TenantID, DroneID: d.DroneID, Key: d.Key}
	}
	return ds
}
