package sim

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// recorder counts outcomes for the live line and the summary. One mutex is
// plenty: it is taken a few times per request, and requests cost far more.
type recorder struct {
	mu sync.Mutex
	Summary
	lat    []time.Duration // every ack latency, for the summary
	window []time.Duration // ack latencies since the last live line
	// counters since the last live line
	winSent, winReports, winRequests int
	winErrors                        map[string]int
}

func newRecorder() *recorder {
	return &recorder{Summary: Summary{Errors: map[string]int{}}, winErrors: map[string]int{}}
}

func (r *recorder) sent(n int) {
	r.mu.Lock()
	r.Sent += n
	r.winSent += n
	r.mu.Unlock()
}

func (r *recorder) request() {
	r.mu.Lock()
	r.Requests++
	r.winRequests++
	r.mu.Unlock()
}

func (r *recorder) retry() {
	r.mu.Lock()
	r.Retried++
	r.mu.Unlock()
}

func (r *recorder) acked(n int, lat time.Duration) {
	r.mu.Lock()
	r.Acked += n
	r.winReports += n
	r.lat = append(r.lat, lat)
	r.window = append(r.window, lat)
	r.mu.Unlock()
}

func (r *recorder) errorKind(kind string) {
	r.mu.Lock()
	r.Errors[kind]++
	r.winErrors[kind]++
	r.mu.Unlock()
}

func (r *recorder) rejected(n int, kind string) {
	r.mu.Lock()
	r.Rejected += n
	r.Errors[kind]++
	r.winErrors[kind]++
	r.mu.Unlock()
}

func (r *recorder) failed(n int, kind string) {
	r.mu.Lock()
	r.Failed += n
	if kind != "" {
		r.Errors[kind]++
		r.winErrors[kind]++
	}
	r.mu.Unlock()
}

func (r *recorder) silenced(n int) {
	r.mu.Lock()
	r.Silenced += n
	r.mu.Unlock()
}

// live writes one line every LiveEvery until stop closes.
func (r *runner) live(start time.Time, stop <-chan struct{}) {
	if r.cfg.Live == nil {
		<-stop
		return
	}
	tick := time.NewTicker(r.cfg.LiveEvery)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			line := r.rec.liveLine(now.Sub(start), now.Sub(last), len(r.sem))
			last = now
			fmt.Fprintln(r.cfg.Live, line)
		}
	}
}

func (r *recorder) liveLine(elapsed, window time.Duration, inflight int) string {
	r.mu.Lock()
	lat := r.window
	sent, reports, requests, errs := r.winSent, r.winReports, r.winRequests, r.winErrors
	r.window = make([]time.Duration, 0, len(lat))
	r.winSent, r.winReports, r.winRequests, r.winErrors = 0, 0, 0, map[string]int{}
	r.mu.Unlock()

	secs := window.Seconds()
	slices.Sort(lat)
	line := fmt.Sprintf("%6.0fs  sent %8.1f reports/s  acked %8.1f reports/s  %8.1f req/s  ack p50 %-8s p99 %-8s in flight %d",
		elapsed.Seconds(), float64(sent)/secs, float64(reports)/secs, float64(requests)/secs,
		fmtDur(percentile(lat, 0.50)), fmtDur(percentile(lat, 0.99)), inflight)
	if len(errs) > 0 {
		line += "  errors " + FormatErrors(errs)
	}
	return line
}

func (r *recorder) summary(elapsed time.Duration) Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.Summary
	s.Errors = maps.Clone(r.Errors)
	s.Elapsed = elapsed
	lat := slices.Clone(r.lat)
	slices.Sort(lat)
	s.P50, s.P90, s.P99 = percentile(lat, 0.50), percentile(lat, 0.90), percentile(lat, 0.99)
	if len(lat) > 0 {
		s.Max = lat[len(lat)-1]
	}
	return s
}

// percentile of sorted values, nearest rank; zero for none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// FormatErrors writes failed attempts by kind (Summary.Errors) as
// "kind=n" pairs in the order of their kinds.
func FormatErrors(m map[string]int) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}
