package local

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/dronetrack/dronetrack/core/sim"
)

// SimFlags are the simulator's flags, shared by `sim` and `up --simulate`.
type SimFlags struct {
	rate         float64
	batch        int
	Duration     time.Duration
	Count        int
	silent       float64
	silentFor    time.Duration
	centre       string
	spread       float64
	seed         uint64
	concurrency  int
	positionOnly bool
}

// Register adds the simulator's flags to fs, with the default --duration.
func (f *SimFlags) Register(fs *flag.FlagSet, duration time.Duration) {
	fs.Float64Var(&f.rate, "rate", sim.DefaultRate, "reports per second per drone")
	fs.IntVar(&f.batch, "batch", 1, "reports per request (1-500)")
	fs.DurationVar(&f.Duration, "duration", duration, "how long to fly (0: until --count or Ctrl-C)")
	fs.IntVar(&f.Count, "count", 0, "stop after this many reports in total (0: no limit)")
	fs.Float64Var(&f.silent, "silent", 0.1, "fraction of drones that go silent for --silent-for at a random moment")
	fs.DurationVar(&f.silentFor, "silent-for", sim.DefaultSilentFor, "how long a silent drone sends nothing")
	fs.StringVar(&f.centre, "centre", fmt.Sprintf("%g,%g", sim.DefaultCentre.Lat, sim.DefaultCentre.Lon), "lat,lon the fleet flies around")
	fs.Float64Var(&f.spread, "spread", sim.DefaultSpread, "metres: homes within this of the centre, waypoints within this of home")
	fs.Uint64Var(&f.seed, "seed", 1, "seed for routes and silences")
	fs.IntVar(&f.concurrency, "concurrency", 0, "max requests in flight (0: min(drones, 512))")
	fs.BoolVar(&f.positionOnly, "position-only", false,
		"send position, altitude, speed, heading, battery and seq only, not armed, mode, GPS, hae, height, vspeed, accuracy, link and home")
}

// Config is the simulator's configuration for these flags.
func (f *SimFlags) Config(url string, keys []string, live io.Writer) (sim.Config, error) {
	var c sim.Point
	lat, lon, ok := strings.Cut(f.centre, ",")
	var err1, err2 error
	c.Lat, err1 = strconv.ParseFloat(strings.TrimSpace(lat), 64)
	c.Lon, err2 = strconv.ParseFloat(strings.TrimSpace(lon), 64)
	if !ok || err1 != nil || err2 != nil || c.Lat < -85 || c.Lat > 85 || c.Lon < -180 || c.Lon > 180 {
		return sim.Config{}, fmt.Errorf("--centre %q: want lat,lon in degrees", f.centre)
	}
	return sim.Config{
		URL: url, Keys: keys, Rate: f.rate, Batch: f.batch, Duration: f.Duration, Count: f.Count,
		SilentFraction: f.silent, SilentFor: f.silentFor, Centre: c, Spread: f.spread, Seed: f.seed,
		Concurrency: f.concurrency, Live: live, PositionOnly: f.positionOnly,
	}, nil
}
