package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"strconv"
)

// writeChart draws the load run over time with the standard library only:
// top panel reports/s (grey target, blue acked, green visible in the API),
// bottom panel p99 latency per second (orange stored, red visible) with the
// 500 ms goal as a dashed line. Axis maxima are printed in a tiny font.
func writeChart(path string, secs []secondStats) error {
	const W, H, pad, gap = 900, 560, 40, 30
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	fill(img, img.Bounds(), color.RGBA{255, 255, 255, 255})
	ph := (H - 2*pad - gap) / 2
	top := image.Rect(pad+20, pad, W-pad, pad+ph)
	bot := image.Rect(pad+20, pad+ph+gap, W-pad, pad+2*ph+gap)
	n := max(len(secs), 2)

	var maxRate, maxLat float64 = 1, 500
	for _, s := range secs {
		maxRate = max(maxRate, s.Target, float64(s.Acked), float64(s.Visible))
		maxLat = max(maxLat, s.P99Stored, s.P99Visible)
	}
	maxRate, maxLat = niceCeil(maxRate), niceCeil(maxLat)
	series := func(r image.Rectangle, ymax float64, c color.RGBA, v func(secondStats) float64) {
		var px, py int
		for i, s := range secs {
			x := r.Min.X + i*(r.Dx()-1)/(n-1)
			y := r.Max.Y - 1 - int(v(s)/ymax*float64(r.Dy()-1))
			if i > 0 {
				line(img, px, py, x, y, c)
				line(img, px, py+1, x, y+1, c)
			}
			px, py = x, y
		}
	}
	grey := color.RGBA{220, 220, 220, 255}
	black := color.RGBA{0, 0, 0, 255}
	for _, r := range []image.Rectangle{top, bot} {
		for k := 1; k < 4; k++ {
			y := r.Min.Y + k*r.Dy()/4
			line(img, r.Min.X, y, r.Max.X, y, grey)
		}
		for t := 10; t < n; t += 10 {
			x := r.Min.X + t*(r.Dx()-1)/(n-1)
			line(img, x, r.Min.Y, x, r.Max.Y, grey)
		}
		rectOutline(img, r, black)
	}
	series(top, maxRate, color.RGBA{150, 150, 150, 255}, func(s secondStats) float64 { return s.Target })
	series(top, maxRate, color.RGBA{30, 90, 220, 255}, func(s secondStats) float64 { return float64(s.Acked) })
	series(top, maxRate, color.RGBA{20, 160, 60, 255}, func(s secondStats) float64 { return float64(s.Visible) })
	goal := bot.Max.Y - 1 - int(500/maxLat*float64(bot.Dy()-1))
	for x := bot.Min.X; x < bot.Max.X; x += 8 {
		line(img, x, goal, x+4, goal, color.RGBA{200, 0, 0, 255})
	}
	series(bot, maxLat, color.RGBA{240, 140, 0, 255}, func(s secondStats) float64 { return s.P99Stored })
	series(bot, maxLat, color.RGBA{220, 30, 30, 255}, func(s secondStats) float64 { return s.P99Visible })

	text(img, top.Min.X, top.Min.Y-14, "REPORTS/S  MAX "+strconv.Itoa(int(maxRate))+"  GREY TARGET  BLUE ACKED  GREEN VISIBLE", black)
	text(img, bot.Min.X, bot.Min.Y-14, "P99 MS  MAX "+strconv.Itoa(int(maxLat))+"  ORANGE STORED  RED VISIBLE  DASHED 500", black)
	text(img, bot.Min.X, bot.Max.Y+8, "T S  0 TO "+strconv.Itoa(len(secs))+"  GRID 10 S", black)

	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("chart: %w", err)
	}
	return f.Close()
}

func niceCeil(v float64) float64 {
	m := 1.0
	for m*10 <= v {
		m *= 10
	}
	for _, k := range []float64{1, 2, 5, 10} {
		if k*m >= v {
			return k * m
		}
	}
	return 10 * m
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

func rectOutline(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	line(img, r.Min.X, r.Min.Y, r.Max.X, r.Min.Y, c)
	line(img, r.Min.X, r.Max.Y, r.Max.X, r.Max.Y, c)
	line(img, r.Min.X, r.Min.Y, r.Min.X, r.Max.Y, c)
	line(img, r.Max.X, r.Min.Y, r.Max.X, r.Max.Y, c)
}

// line draws with Bresenham's algorithm, clipped to the image.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		if (image.Point{x0, y0}).In(img.Bounds()) {
			img.SetRGBA(x0, y0, c)
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}

// glyphs is a 3x5 pixel font for the chart's labels (rows top to bottom,
// three bits each, high bit left).
var glyphs = map[rune][5]uint8{
	'0': {7, 5, 5, 5, 7}, '1': {2, 6, 2, 2, 7}, '2': {7, 1, 7, 4, 7}, '3': {7, 1, 7, 1, 7}, '4': {5, 5, 7, 1, 1},
	'5': {7, 4, 7, 1, 7}, '6': {7, 4, 7, 5, 7}, '7': {7, 1, 1, 1, 1}, '8': {7, 5, 7, 5, 7}, '9': {7, 5, 7, 1, 7},
	'/': {1, 1, 2, 4, 4}, '.': {0, 0, 0, 0, 2}, ' ': {},
	'A': {2, 5, 7, 5, 5}, 'B': {6, 5, 6, 5, 6}, 'C': {7, 4, 4, 4, 7}, 'D': {6, 5, 5, 5, 6}, 'E': {7, 4, 6, 4, 7},
	'G': {7, 4, 5, 5, 7}, 'H': {5, 5, 7, 5, 5}, 'I': {7, 2, 2, 2, 7}, 'K': {5, 5, 6, 5, 5}, 'L': {4, 4, 4, 4, 7},
	'M': {5, 7, 7, 5, 5}, 'N': {6, 5, 5, 5, 5}, 'O': {7, 5, 5, 5, 7}, 'P': {7, 5, 7, 4, 4}, 'R': {6, 5, 6, 5, 5},
	'S': {7, 4, 7, 1, 7}, 'T': {7, 2, 2, 2, 2}, 'U': {5, 5, 5, 5, 7}, 'V': {5, 5, 5, 5, 2}, 'W': {5, 5, 7, 7, 5},
	'X': {5, 5, 2, 5, 5}, 'Y': {5, 5, 2, 2, 2}, 'F': {7, 4, 6, 4, 4},
}

// text draws s at (x, y) at scale 2 (each glyph 6x10 pixels plus spacing).
func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	for _, r := range s {
		g := glyphs[r]
		for row := 0; row < 5; row++ {
			for col := 0; col < 3; col++ {
				if g[row]&(4>>col) != 0 {
					fill(img, image.Rect(x+col*2, y+row*2, x+col*2+2, y+row*2+2), c)
				}
			}
		}
		x += 8
	}
}
