package local

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/dronetrack/dronetrack/core/sim"
)

// SimSettings are the simulator's settings, the flags of `sim` and of `up
// --simulate` (cmd/dronetrack/cli.RegisterSimFlags); Centre is "lat,lon".
type SimSettings struct {
	Rate         float64
	Batch        int
	Duration     time.Duration
	Count        int
	Silent       float64
	SilentFor    time.Duration
	Centre       string
	Spread       float64
	Seed         uint64
	Concurrency  int
	PositionOnly bool
}

// Config is the simulator's configuration for these settings.
func (f *SimSettings) Config(url string, keys []string, live io.Writer) (sim.Config, error) {
	var c sim.Point
	lat, lon, ok := strings.Cut(f.Centre, ",")
	var err1, err2 error
	c.Lat, err1 = strconv.ParseFloat(strings.TrimSpace(lat), 64)
	c.Lon, err2 = strconv.ParseFloat(strings.TrimSpace(lon), 64)
	if !ok || err1 != nil || err2 != nil || c.Lat < -85 || c.Lat > 85 || c.Lon < -180 || c.Lon > 180 {
		return sim.Config{}, fmt.Errorf("--centre %q: want lat,lon in degrees", f.Centre)
	}
	return sim.Config{
		URL: url, Keys: keys, Rate: f.Rate, Batch: f.Batch, Duration: f.Duration, Count: f.Count,
		SilentFraction: f.Silent, SilentFor: f.SilentFor, Centre: c, Spread: f.Spread, Seed: f.Seed,
		Concurrency: f.Concurrency, Live: live, PositionOnly: f.PositionOnly,
	}, nil
}
