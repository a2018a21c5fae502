package loadgen

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dronetrack/dronetrack/core/sim"
)

// Result is what a load run measured, per ramp step and per second.
type Result struct {
	Start  time.Time `json:"start"`
	Drones int       `json:"drones"`
	Batch  int       `json:"batch"`
	PollMS float64   `json:"pollMs"`
	// StoredFrom is what a report counts as stored at: "store", a poll of
	// the store (the system runs in the generator's process), or "stream",
	// the live stream's event carrying the drone's state, which process
	// announces only after the store write commits (an upper bound of the
	// store write that is not behind the fleet list's cache).
	StoredFrom string `json:"storedFrom"`
	Steps      []Step `json:"steps"`
	Acked      int    `json:"acked"`
	Stored     int    `json:"stored"`
	Lost       int    `json:"lost"`
	// Streamed counts acked reports whose drone state reached the live
	// stream; StreamReconnects and StreamResyncs count how often the stream
	// was dropped (resumed with Last-Event-ID) and how often it missed more
	// than the server keeps (the fleet was read again, as the page does).
	Streamed         int `json:"streamed"`
	StreamReconnects int `json:"streamReconnects"`
	StreamResyncs    int `json:"streamResyncs"`
	// Drained reports whether everything acked was stored, visible and
	// streamed within the drain time; when not, Lost counts the backlog too.
	Drained      bool    `json:"drained"`
	DrainSeconds float64 `json:"drainSeconds"`
	Failed       int     `json:"failed"`
	// Errors counts the run's failed attempts by kind, retries included
	// (sim.Summary.Errors: status_503, timeout, ...).
	Errors  map[string]int `json:"errors,omitempty"`
	Seconds []Second       `json:"seconds"`
}

// Step is one ramp step. Latencies are of the reports sent during the step,
// whenever they were seen; rates, RSS and CPU are of the seconds the step
// ran (the last step also takes the drain's RSS).
type Step struct {
	Target float64 `json:"target"`
	// SentPerSec is the reports the generator sent (first attempts) per
	// second of the step, and LateP99 how late (ms) its requests went out
	// against their schedule (p99): a generator that cannot keep to the
	// target shows here.
	SentPerSec   float64 `json:"sentPerSec"`
	LateP99      float64 `json:"lateP99Ms"`
	AckedPerSec  float64 `json:"ackedPerSec"`
	StoredPerSec float64 `json:"storedPerSec"`
	Failed       int     `json:"failed"`
	// Ack* is the front door: from the first attempt to ingest to its 202.
	AckP50     float64 `json:"ackP50Ms"`
	AckP95     float64 `json:"ackP95Ms"`
	AckP99     float64 `json:"ackP99Ms"`
	StoredP50  float64 `json:"storedP50Ms"`
	StoredP95  float64 `json:"storedP95Ms"`
	StoredP99  float64 `json:"storedP99Ms"`
	VisibleP50 float64 `json:"visibleP50Ms"`
	VisibleP95 float64 `json:"visibleP95Ms"`
	VisibleP99 float64 `json:"visibleP99Ms"`
	// Stream* is ingest→browser: from the 202 to the SSE event carrying
	// the drone's new state.
	StreamP50 float64 `json:"streamP50Ms"`
	StreamP95 float64 `json:"streamP95Ms"`
	StreamP99 float64 `json:"streamP99Ms"`
	MaxRSSMB  float64 `json:"maxRssMB"`
	MeanCPU   float64 `json:"meanCpuCores"`
	// GenCPU is the generator's own CPU (cores) over the step and
	// GenUSPerRequest its CPU µs per HTTP request (fleet polling and the
	// live stream included); 0 when the system runs in its process.
	GenCPU          float64 `json:"genCpuCores"`
	GenUSPerRequest float64 `json:"genUsPerRequest"`
}

// Second is one second of the run, counted by when reports were acked or
// seen.
type Second struct {
	T          int       `json:"t"`
	Target     float64   `json:"target"`
	Sent       int       `json:"sent"`
	Acked      int       `json:"acked"`
	Stored     int       `json:"stored"`
	Visible    int       `json:"visible"`
	Streamed   int       `json:"streamed"`
	StoredMS   []float64 `json:"-"`
	VisibleMS  []float64 `json:"-"`
	StreamMS   []float64 `json:"-"`
	LateMS     []float64 `json:"-"`
	P99Stored  float64   `json:"p99StoredMs"`
	P99Visible float64   `json:"p99VisibleMs"`
	P99Stream  float64   `json:"p99StreamMs"`
	RSSMB      float64   `json:"rssMB"`
	CPU        float64   `json:"cpuCores"`
}

// result sums the run up; sums are the steps that ran (a cancelled run has
// fewer than rates).
func (t *tracker) result(sums []sim.Summary, stored int, rates []float64, drones, batch int, poll time.Duration) Result {
	t.mu.Lock()
	defer t.mu.Unlock()
	res := Result{Start: t.start, Drones: drones, Batch: batch, PollMS: float64(poll) / 1e6, Stored: stored, Streamed: int(t.nStream.Load())}
	for _, s := range sums {
		res.Acked += s.Acked
		res.Failed += s.Failed + s.Rejected
		for k, n := range s.Errors {
			if res.Errors == nil {
				res.Errors = map[string]int{}
			}
			res.Errors[k] += n
		}
	}
	res.Lost = res.Acked - stored
	for i, r := range rates[:len(sums)] {
		sr := Step{Target: r, Failed: sums[i].Failed + sums[i].Rejected, AckedPerSec: sums[i].ReportsPerSecond()}
		var nSent, nStored, nSec, cpu float64
		for _, s := range t.seconds {
			if s.Target == r {
				nSent += float64(s.Sent)
				nStored += float64(s.Stored)
				nSec++
				cpu += s.CPU
			}
			if s.Target == r || (i == len(sums)-1 && s.Target == 0) {
				sr.MaxRSSMB = max(sr.MaxRSSMB, s.RSSMB)
			}
		}
		if nSec > 0 {
			sr.SentPerSec, sr.StoredPerSec, sr.MeanCPU = nSent/nSec, nStored/nSec, cpu/nSec
		}
		if i < len(t.windows) && !t.windows[i].to.IsZero() {
			// The step's own span: its whole seconds overcount it by
			// up to one (a 40 s step that starts inside a second
			// touches 41 of them).
			w := t.windows[i]
			if d := w.to.Sub(w.from).Seconds(); d > 0 {
				sr.SentPerSec, sr.StoredPerSec = float64(w.sent)/d, float64(w.stored)/d
			}
		}
		var lat stepLatencies
		if i < len(t.steps) {
			lat = t.steps[i]
		}
		_, _, sr.LateP99 = percentiles(lat.late)
		sr.AckP50, sr.AckP95, sr.AckP99 = percentiles(lat.acked)
		sr.StoredP50, sr.StoredP95, sr.StoredP99 = percentiles(lat.stored)
		sr.VisibleP50, sr.VisibleP95, sr.VisibleP99 = percentiles(lat.visible)
		sr.StreamP50, sr.StreamP95, sr.StreamP99 = percentiles(lat.streamed)
		res.Steps = append(res.Steps, sr)
	}
	for i := range t.seconds {
		s := &t.seconds[i]
		s.P99Stored, s.P99Visible, s.P99Stream = percentile(s.StoredMS, .99), percentile(s.VisibleMS, .99), percentile(s.StreamMS, .99)
	}
	res.Seconds = slices.Clone(t.seconds)
	return res
}

func percentiles(v []float64) (p50, p95, p99 float64) {
	s := slices.Clone(v)
	slices.Sort(s)
	return percentileSorted(s, .5), percentileSorted(s, .95), percentileSorted(s, .99)
}

// Markdown is the run as a table per ramp step and a summary of loss.
func (r Result) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# dronetrack load (%s)\n\n", r.Start.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "%d drones, %d report(s) per request, fleet API polled every %g ms (latency resolution of visible).\n", r.Drones, r.Batch, r.PollMS)
	b.WriteString("202 latency is from the first attempt to ingest to its 202 (the front door). ")
	if r.StoredFrom == "stream" {
		b.WriteString("Stored latency is from the first attempt to ingest to the live stream's event carrying the drone's state (or a newer one): " +
			"process replies state.updated only after the history and the state are committed, and the stream is fed from that event, " +
			"so this bounds the store write from above without reading the fleet API, whose list is cached for up to FLEET_LIST_MAX_AGE. ")
	} else {
		fmt.Fprintf(&b, "Stored latency is from the first attempt to ingest to the first read of the store (every %g ms) showing the report. ", r.PollMS)
	}
	b.WriteString("Visible latency is from the first attempt to ingest to the first fleet API read showing the report (the list is cached for up to FLEET_LIST_MAX_AGE); " +
		"SSE latency is from ingest's 202 to the live stream's event (GET /api/v1/stream, held open as a logged-in user of the tenant) carrying the drone's new state. " +
		"Latencies count towards the step the report was sent in. " +
		"sent/s is what the generator sent (first attempts) and late p99 how far behind their schedule its requests went out (a drone's previous request, or every connection, still busy). " +
		"up CPU is the system's process; gen CPU is the generator's own process (senders, fleet polling, live stream), per HTTP request in gen µs/req.\n\n")
	b.WriteString("| target/s | sent/s | acked/s | stored/s | failed | 202 p50/p95/p99 ms | stored p50/p95/p99 ms | visible p50/p95/p99 ms | 202→SSE p50/p95/p99 ms | max RSS MB | up CPU cores | up µs/report | gen CPU cores | gen µs/req | late p99 ms |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Steps {
		upUS := 0.0
		if s.AckedPerSec > 0 {
			upUS = s.MeanCPU / s.AckedPerSec * 1e6
		}
		gen, genUS := "in up", "in up"
		if s.GenCPU > 0 {
			gen, genUS = fmt.Sprintf("%.2f", s.GenCPU), fmt.Sprintf("%.0f", s.GenUSPerRequest)
		}
		fmt.Fprintf(&b, "| %.0f | %.0f | %.0f | %.0f | %d | %.0f / %.0f / %.0f | %.0f / %.0f / %.0f | %.0f / %.0f / %.0f | %.0f / %.0f / %.0f | %.0f | %.2f | %.0f | %s | %s | %.0f |\n",
			s.Target, s.SentPerSec, s.AckedPerSec, s.StoredPerSec, s.Failed, s.AckP50, s.AckP95, s.AckP99, s.StoredP50, s.StoredP95, s.StoredP99,
			s.VisibleP50, s.VisibleP95, s.VisibleP99, s.StreamP50, s.StreamP95, s.StreamP99, s.MaxRSSMB, s.MeanCPU, upUS, gen, genUS, s.LateP99)
	}
	fmt.Fprintf(&b, "\nacked %d, stored (in history) %d, lost %d, not acked (failed/rejected) %d\n", r.Acked, r.Stored, r.Lost, r.Failed)
	if len(r.Errors) > 0 {
		fmt.Fprintf(&b, "failed attempts by kind (retries included): %s\n", sim.FormatErrors(r.Errors))
	}
	fmt.Fprintf(&b, "seen on the live stream %d (stream dropped and resumed %d times, resynced %d times)\n", r.Streamed, r.StreamReconnects, r.StreamResyncs)
	if r.Drained {
		fmt.Fprintf(&b, "backlog drained %.1f s after the ramp ended\n", r.DrainSeconds)
	} else {
		fmt.Fprintf(&b, "backlog NOT drained within %.0f s: 'lost' includes reports still queued\n", r.DrainSeconds)
	}
	return b.String()
}

// WriteFiles writes load.md, load.json and load.png into dir.
func (r Result) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "load.md"), []byte(r.Markdown()), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "load.json"), js, 0o644); err != nil {
		return err
	}
	return WriteChart(filepath.Join(dir, "load.png"), r)
}
