package local

import (
	"os"
	"runtime/debug"
)

// GC settings of `up` when the environment sets none (GOGC, GOMEMLIMIT
// win). The pipeline allocates per event (HTTP messages, CloudEvents,
// JSON) while its live heap stays small (tens of MB at thousands of
// drones), so with Go's default GOGC=100 the collector ran very often:
// GC workers and allocation assists were 15-20% of the CPU per report in
// BenchmarkPipeline. A higher GOGC trades heap for CPU; the soft memory
// limit makes the collector work harder again before the heap grows past
// it, keeping RSS within the 400 MB asked of 10,000 drones at 1 Hz. With
// GOGC at 400 the heap grows to the limit whatever the live heap, so the
// limit is the anonymous part of RSS (~30 MB under it); the rest is the
// binary's text (~45 MB) and the store file's pages bolt mapped in the last
// second (bolt trims them). 256 MiB leaves the live heap of 10,000 drones
// with a backlog (~110-140 MB) room at a higher GC share than 320 MiB
// (docs/performance.md, "Round 4: 10 per request and RSS").
const (
	upGCPercent   = 400
	upMemoryLimit = 256 << 20
)

// tuneGC applies the settings above unless GOGC or GOMEMLIMIT is set.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(upGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(upMemoryLimit)
	}
}
