package loadgen

import (
	"fmt"
	"image/color"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Goals drawn on the chart's latency panel: p99 ingest→stored and
// ingest→browser at the rates capacity work aims for (issue 14).
const (
	goalStoredMS = 1000
	goalStreamMS = 300
)

// WriteChart draws the run over time as a PNG: the top panel reports/s
// (target offered, acked, stored, visible in the fleet API; 3 s means), the
// bottom panel p99 latency per second (stored, visible, 202→SSE, for the
// seconds that saw such reports) with the goals as dashed lines.
func WriteChart(path string, r Result) error {
	rates := plot.New()
	rates.Title.Text = fmt.Sprintf("dronetrack load: %d drones, %d report(s) per request", r.Drones, r.Batch)
	rates.X.Label.Text = "time (s)"
	rates.Y.Label.Text = "reports/s (3 s mean)"
	rates.Y.Min = 0
	lat := plot.New()
	lat.X.Label.Text = "time (s)"
	lat.Y.Label.Text = "p99 latency per second (ms)"
	lat.Y.Min = 0
	for _, p := range []*plot.Plot{rates, lat} {
		p.Y.Tick.Marker = wholeTicks{}
		p.Add(plotter.NewGrid())
		p.Legend.Top = true
		p.Legend.Left = true
	}

	series := func(p *plot.Plot, name string, c color.Color, width float64, dashed bool, v func(Second) float64, has func(Second) bool) error {
		xys := make(plotter.XYs, 0, len(r.Seconds))
		for _, s := range r.Seconds {
			if has == nil || has(s) {
				xys = append(xys, plotter.XY{X: float64(s.T), Y: v(s)})
			}
		}
		if len(xys) == 0 {
			return nil
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return err
		}
		l.Color = c
		l.Width = vg.Points(width)
		if dashed {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		p.Add(l)
		p.Legend.Add(name, l)
		return nil
	}
	grey := color.RGBA{150, 150, 150, 255}
	blue := color.RGBA{30, 90, 220, 255}
	orange := color.RGBA{240, 140, 0, 255}
	green := color.RGBA{20, 160, 60, 255}
	purple := color.RGBA{140, 50, 200, 255}
	red := color.RGBA{220, 30, 30, 255}
	goal := func(ms float64) func(Second) float64 { return func(Second) float64 { return ms } }
	// Reports are seen stored or visible when a poll finds them (the fleet
	// API answers from a cache of up to a second), so per-second counts
	// come in bursts with empty seconds between: the rates are drawn as a
	// 3 s mean, and a latency only for the seconds that saw reports.
	mean3 := func(count func(Second) int) func(Second) float64 {
		at := map[int]int{}
		for _, s := range r.Seconds {
			at[s.T] = count(s)
		}
		return func(s Second) float64 { return float64(at[s.T-1]+at[s.T]+at[s.T+1]) / 3 }
	}
	sawStored := func(s Second) bool { return s.Stored > 0 }
	sawVisible := func(s Second) bool { return s.Visible > 0 }
	sawStream := func(s Second) bool { return s.Streamed > 0 }
	for _, s := range []struct {
		p      *plot.Plot
		name   string
		c      color.Color
		width  float64
		dashed bool
		v      func(Second) float64
		has    func(Second) bool
	}{
		// Visible is drawn wide and first: without a store to read (--url)
		// stored is what the API shows, and lies on it.
		{rates, "target (offered)", grey, 1.5, true, func(s Second) float64 { return s.Target }, nil},
		{rates, "visible (fleet API)", green, 3.5, false, mean3(func(s Second) int { return s.Visible }), nil},
		{rates, "acked", blue, 1.5, false, mean3(func(s Second) int { return s.Acked }), nil},
		{rates, "stored", orange, 1.5, false, mean3(func(s Second) int { return s.Stored }), nil},
		{lat, "visible (fleet API)", green, 3.5, false, func(s Second) float64 { return s.P99Visible }, sawVisible},
		{lat, "stored", orange, 1.5, false, func(s Second) float64 { return s.P99Stored }, sawStored},
		{lat, "202→SSE", purple, 1.5, false, func(s Second) float64 { return s.P99Stream }, sawStream},
		{lat, fmt.Sprintf("goal stored %d ms", goalStoredMS), red, 1, true, goal(goalStoredMS), nil},
		{lat, fmt.Sprintf("goal SSE %d ms", goalStreamMS), purple, 1, true, goal(goalStreamMS), nil},
	} {
		if err := series(s.p, s.name, s.c, s.width, s.dashed, s.v, s.has); err != nil {
			return fmt.Errorf("chart: %w", err)
		}
	}

	const w, h = 9 * vg.Inch, 7 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter, PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}
	rates.Draw(tiles.At(dc, 0, 0))
	lat.Draw(tiles.At(dc, 0, 1))

	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("chart: %w", err)
	}
	return f.Close()
}

// wholeTicks are plot's default ticks labelled without decimals.
type wholeTicks struct{}

func (wholeTicks) Ticks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'f', -1, 64)
		}
	}
	return ts
}
