package loadgen

import (
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/sim"
	"github.com/dronetrack/dronetrack/events"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func reports(ts ...time.Time) []events.Report {
	out := make([]events.Report, len(ts))
	for i, t := range ts {
		out[i] = events.Report{TS: t}
	}
	return out
}

// TestStreamLatencyPerStep feeds acks and stream events by hand: the 202→SSE
// latency runs from each report's ack to the first event whose state covers
// it, an event that comes before the ack counts as no delay, and each
// latency counts towards the step its report was sent in.
func TestStreamLatencyPerStep(t *testing.T) {
	tr := newTracker([]string{"a", "b"}, true, t0)
	tr.setStep(0, 100)
	// Drone a: two reports acked at +100 ms and +200 ms; one event carrying
	// the second report's state at +250 ms covers both (50 ms and 150 ms).
	tr.acked(0, reports(t0.Add(ms(90))), t0.Add(ms(95)), t0.Add(ms(100)))
	tr.acked(0, reports(t0.Add(ms(190))), t0.Add(ms(195)), t0.Add(ms(200)))
	tr.seen("a", t0.Add(ms(190)), t0.Add(ms(250)), kindStreamed)
	// Drone b: the event arrives before the 202 is recorded.
	tr.seen("b", t0.Add(ms(300)), t0.Add(ms(310)), kindStreamed)
	tr.acked(1, reports(t0.Add(ms(300))), t0.Add(ms(305)), t0.Add(ms(320)))
	// An older state (a stream replay) covers nothing new.
	tr.seen("a", t0.Add(ms(90)), t0.Add(ms(400)), kindStreamed)

	// Step 1: drone a's report acked at +1.5 s and streamed 1 s later, in
	// step 2's time; it still counts towards step 1.
	tr.setStep(1, 200)
	tr.acked(0, reports(t0.Add(ms(1490))), t0.Add(ms(1495)), t0.Add(ms(1500)))
	tr.setStep(2, 300)
	for i := range 100 {
		// 100 reports of drone b in step 2, streamed after i ms.
		ts := t0.Add(ms(2000 + 5*i))
		tr.acked(1, reports(ts), ts, ts)
		tr.seen("b", ts, ts.Add(ms(i)), kindStreamed)
	}
	tr.seen("a", t0.Add(ms(1490)), t0.Add(ms(2500)), kindStreamed)
	tr.setStep(2, 0)

	if _, _, _, st := tr.counts(); st != 104 {
		t.Errorf("streamed %d; want 104 (every acked report)", st)
	}
	sums := []sim.Summary{{Acked: 3}, {Acked: 1}, {Acked: 100}}
	res := tr.result(sums, 104, []float64{100, 200, 300}, 2, 1, ms(100))
	type p struct{ P50, P95, P99 float64 }
	var got []p
	for _, s := range res.Steps {
		got = append(got, p{s.StreamP50, s.StreamP95, s.StreamP99})
	}
	want := []p{
		{50, 150, 150}, // 0 (b, early), 50, 150: the nearest rank of 3
		{1000, 1000, 1000},
		{50, 94, 98}, // 0..99 ms
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("202→SSE p50/p95/p99 per step (-want +got):\n%s", diff)
	}
	if res.Streamed != 104 {
		t.Errorf("Result.Streamed %d; want 104", res.Streamed)
	}
	// Per second (by when seen): second 2 holds step 2's events and the
	// 1000 ms one.
	if s := res.Seconds[2]; s.Streamed != 101 || s.P99Stream != 99 {
		t.Errorf("second 2: streamed %d, p99 %g ms; want 101, 99", s.Streamed, s.P99Stream)
	}
}

// TestStoredLatencyCountsTowardsSendingStep: a report sent in one step and
// stored in the next counts towards the step it was sent in, from its first
// attempt (not its 202).
func TestStoredLatencyCountsTowardsSendingStep(t *testing.T) {
	tr := newTracker([]string{"a"}, false, t0)
	tr.setStep(0, 10)
	tr.acked(0, reports(t0.Add(ms(900))), t0.Add(ms(900)), t0.Add(ms(950)))
	tr.setStep(1, 20)
	tr.seen("a", t0.Add(ms(900)), t0.Add(ms(1300)), kindStored)
	tr.seen("a", t0.Add(ms(900)), t0.Add(ms(1400)), kindVisible)
	tr.acked(0, reports(t0.Add(ms(1900))), t0.Add(ms(1900)), t0.Add(ms(1910)))
	tr.seen("a", t0.Add(ms(1900)), t0.Add(ms(1920)), kindStored)
	tr.seen("a", t0.Add(ms(1900)), t0.Add(ms(1930)), kindVisible)
	if !tr.settled() {
		t.Error("not settled after every report was stored and visible (the stream is not measured)")
	}
	res := tr.result([]sim.Summary{{Acked: 1}, {Acked: 1}}, 2, []float64{10, 20}, 1, 1, ms(100))
	if s := res.Steps[0]; s.StoredP99 != 400 || s.VisibleP99 != 500 {
		t.Errorf("step 0: stored p99 %g, visible p99 %g; want 400, 500", s.StoredP99, s.VisibleP99)
	}
	if s := res.Steps[1]; s.StoredP99 != 20 || s.VisibleP99 != 30 {
		t.Errorf("step 1: stored p99 %g, visible p99 %g; want 20, 30", s.StoredP99, s.VisibleP99)
	}
	if a0, a1 := res.Steps[0].AckP99, res.Steps[1].AckP99; a0 != 50 || a1 != 10 {
		t.Errorf("202 p99 per step %g, %g; want 50, 10 (first attempt to 202)", a0, a1)
	}
	if res.Lost != 0 || res.Acked != 2 {
		t.Errorf("acked %d lost %d; want 2, 0", res.Acked, res.Lost)
	}
	if len(tr.list[0].pending) != 0 {
		t.Errorf("%d reports still pending after being seen everywhere", len(tr.list[0].pending))
	}
}

// TestSentPerStep: what the generator sent is counted per second and per
// step, beside what was acked, with how late its requests went out.
func TestSentPerStep(t *testing.T) {
	tr := newTracker([]string{"a"}, false, t0)
	tr.setStepAt(0, 20, t0)
	tr.sentAt(t0.Add(ms(100)), 10, 0)
	tr.sentAt(t0.Add(ms(1100)), 10, ms(300))
	tr.acked(0, reports(t0.Add(ms(100))), t0.Add(ms(100)), t0.Add(ms(150)))
	tr.setStepAt(1, 30, t0.Add(2*time.Second))
	tr.sentAt(t0.Add(ms(2100)), 10, ms(40))
	tr.setStepAt(1, 0, t0.Add(3*time.Second))
	res := tr.result([]sim.Summary{{Acked: 1}, {}}, 1, []float64{20, 30}, 1, 10, ms(100))
	if s := res.Steps[0]; s.SentPerSec != 10 || s.LateP99 != 300 {
		t.Errorf("step 0: sent %g/s, late p99 %g ms; want 10/s (20 reports in its 2 s), 300", s.SentPerSec, s.LateP99)
	}
	if s := res.Steps[1]; s.SentPerSec != 10 || s.LateP99 != 40 {
		t.Errorf("step 1: sent %g/s, late p99 %g ms; want 10/s, 40", s.SentPerSec, s.LateP99)
	}
	if got := []int{res.Seconds[0].Sent, res.Seconds[1].Sent, res.Seconds[2].Sent}; !slices.Equal(got, []int{10, 10, 10}) {
		t.Errorf("sent per second %v; want [10 10 10]", got)
	}
}

// TestStepRatesOverItsOwnSpan: a step that starts inside a second touches
// one more whole second than it lasts; its sent and stored rates divide by
// its span, so a generator and a pipeline that keep to the target show the
// target, not 40/41 of it.
func TestStepRatesOverItsOwnSpan(t *testing.T) {
	tr := newTracker([]string{"a"}, false, t0)
	from := t0.Add(ms(500))
	tr.setStepAt(0, 20, from)
	for i := range 800 { // 20/s for 40 s
		at := from.Add(time.Duration(i) * 50 * time.Millisecond)
		tr.sentAt(at, 1, 0)
		tr.acked(0, reports(at), at, at)
		tr.seenAt(tr.list[0], at, at.Add(ms(10)), kindStored, kindVisible)
	}
	tr.setStepAt(0, 0, from.Add(40*time.Second))
	res := tr.result([]sim.Summary{{Acked: 800}}, 800, []float64{20}, 1, 1, ms(100))
	if n := len(res.Seconds); n != 41 {
		t.Fatalf("%d seconds recorded; want 41 (the step starts half a second in)", n)
	}
	if s := res.Steps[0]; s.SentPerSec != 20 || s.StoredPerSec != 20 {
		t.Errorf("step 0: sent %g/s, stored %g/s; want 20/s and 20/s (800 reports in its 40 s)", s.SentPerSec, s.StoredPerSec)
	}
}

// TestSettledWaitsForStream: with the stream measured, a report stored and
// visible but not yet streamed keeps the run draining.
func TestSettledWaitsForStream(t *testing.T) {
	tr := newTracker([]string{"a"}, true, t0)
	tr.setStep(0, 10)
	tr.acked(0, reports(t0), t0, t0)
	tr.seen("a", t0, t0.Add(ms(10)), kindStored)
	tr.seen("a", t0, t0.Add(ms(10)), kindVisible)
	if tr.settled() {
		t.Error("settled before the report reached the stream")
	}
	tr.seen("a", t0, t0.Add(ms(20)), kindStreamed)
	if !tr.settled() {
		t.Error("not settled after the report reached the stream")
	}
	// Unknown drones are ignored.
	tr.seen("zz", t0, t0, kindStreamed)
}

func TestAckedSpan(t *testing.T) {
	want, lo, hi := ackedSpan([]time.Time{t0.Add(time.Second), t0, t0.Add(2 * time.Second)})
	if !lo.Equal(t0) || !hi.Equal(t0.Add(2*time.Second)) {
		t.Errorf("span %v..%v; want %v..%v", lo, hi, t0, t0.Add(2*time.Second))
	}
	if len(want) != 3 || !want[t0.UnixMicro()] {
		t.Errorf("want set %v", want)
	}
}

func TestPercentile(t *testing.T) {
	if got := percentile(nil, .99); got != 0 {
		t.Errorf("p99 of nothing = %g; want 0", got)
	}
	v := []float64{5, 1, 4, 2, 3}
	if p50, p95, p99 := percentiles(v); p50 != 3 || p95 != 5 || p99 != 5 {
		t.Errorf("p50/p95/p99 = %g/%g/%g; want 3/5/5", p50, p95, p99)
	}
	if v[0] != 5 {
		t.Error("percentiles sorted its input in place")
	}
}

func sampleResult() Result {
	return Result{
		Start: t0, Drones: 300, Batch: 1, PollMS: 100, Acked: 3000, Stored: 3000, Streamed: 3000,
		StreamReconnects: 1, Drained: true, DrainSeconds: 1.5,
		Steps: []Step{{Target: 200, SentPerSec: 200, LateP99: 7, AckedPerSec: 199, StoredPerSec: 198, AckP50: 3, AckP95: 5, AckP99: 9, StoredP50: 12, StoredP95: 40, StoredP99: 80,
			VisibleP50: 60, VisibleP95: 110, VisibleP99: 150, StreamP50: 21, StreamP95: 33, StreamP99: 47, MaxRSSMB: 150, MeanCPU: 0.4}},
		Seconds: []Second{{T: 0, Target: 200, Acked: 190, Stored: 180, Visible: 170, P99Stored: 80, P99Visible: 150, P99Stream: 47},
			{T: 1, Target: 200, Acked: 200, Stored: 200, Visible: 200, P99Stored: 70, P99Visible: 140, P99Stream: 40}},
	}
}

func TestMarkdown(t *testing.T) {
	md := sampleResult().Markdown()
	for _, want := range []string{
		"# dronetrack load (2026-12-03T12:00:00Z)",
		"| target/s | sent/s | acked/s | stored/s | failed | 202 p50/p95/p99 ms | stored p50/p95/p99 ms | visible p50/p95/p99 ms | 202→SSE p50/p95/p99 ms | max RSS MB | up CPU cores | up µs/report | gen CPU cores | gen µs/req | late p99 ms |",
		"| 200 | 200 | 199 | 198 | 0 | 3 / 5 / 9 | 12 / 40 / 80 | 60 / 110 / 150 | 21 / 33 / 47 | 150 | 0.40 | 2010 | in up | in up | 7 |",
		"first read of the store",
		"acked 3000, stored (in history) 3000, lost 0",
		"seen on the live stream 3000 (stream dropped and resumed 1 times, resynced 0 times)",
		"backlog drained 1.5 s after the ramp ended",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// TestMarkdownGeneratorApart: with the generator in a process of its own
// its CPU is in the table, and stored comes from the live stream.
func TestMarkdownGeneratorApart(t *testing.T) {
	r := sampleResult()
	r.StoredFrom = "stream"
	r.Steps[0].GenCPU, r.Steps[0].GenUSPerRequest = 0.25, 1250
	md := r.Markdown()
	for _, want := range []string{
		"| 150 | 0.40 | 2010 | 0.25 | 1250 | 7 |",
		"live stream's event carrying the drone's state",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	if err := sampleResult().WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "load.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("load.png: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 600 || b.Dy() < 400 {
		t.Errorf("chart is %v; want at least 600x400", b)
	}
	js, err := os.ReadFile(filepath.Join(dir, "load.json"))
	if err != nil || !strings.Contains(string(js), `"streamP99Ms": 47`) {
		t.Errorf("load.json lacks the step's streamP99Ms (err %v):\n%.400s", err, js)
	}
	if _, err := os.Stat(filepath.Join(dir, "load.md")); err != nil {
		t.Error(err)
	}
}

// TestSeenBeforeAck: a fleet read or a stream event can show a drone's
// state before its report's 202 is recorded, and neither is applied again
// (a 304 or an unchanged state is skipped; an event is read once), so the
// ack matches the report against what was already seen: stored and
// visible from its first attempt to when the state was first seen, the
// stream as no delay.
func TestSeenBeforeAck(t *testing.T) {
	tr := newTracker([]string{"a"}, true, t0)
	tr.setStep(0, 10)
	ts := t0.Add(ms(100))
	tr.seenAt(tr.list[0], ts, t0.Add(ms(250)), kindStored, kindStreamed)
	tr.seen("a", ts, t0.Add(ms(300)), kindVisible)
	tr.acked(0, reports(ts), t0.Add(ms(100)), t0.Add(ms(320)))
	if !tr.settled() {
		t.Fatal("not settled: a report seen before its ack still waits")
	}
	if n := len(tr.list[0].pending); n != 0 {
		t.Errorf("%d reports pending; want none", n)
	}
	res := tr.result([]sim.Summary{{Acked: 1}}, 1, []float64{10}, 1, 1, ms(100))
	s := res.Steps[0]
	if s.StoredP99 != 150 || s.VisibleP99 != 200 || s.StreamP99 != 0 {
		t.Errorf("stored %g visible %g stream %g ms; want 150, 200, 0", s.StoredP99, s.VisibleP99, s.StreamP99)
	}
	// An older state seen later changes nothing; a newer report waits.
	tr.seen("a", t0, t0.Add(ms(400)), kindVisible)
	tr.acked(0, reports(t0.Add(ms(1100))), t0.Add(ms(1100)), t0.Add(ms(1110)))
	if tr.settled() {
		t.Error("settled with a report nothing has shown")
	}
}

// TestResultCountsFailedAttemptsByKind: the run's failed attempts by kind
// (every step's, retries included) are in the result and its table, so a
// "not acked" count says whether up refused reports or the run ended.
func TestResultCountsFailedAttemptsByKind(t *testing.T) {
	tr := newTracker([]string{"a"}, false, t0)
	tr.setStep(0, 10)
	tr.acked(0, reports(t0.Add(ms(100))), t0.Add(ms(100)), t0.Add(ms(110)))
	tr.setStep(1, 20)
	tr.setStep(1, 0)
	sums := []sim.Summary{
		{Acked: 1, Errors: map[string]int{"status_503": 2}},
		{Failed: 3, Errors: map[string]int{"status_503": 1, "timeout": 4}},
	}
	res := tr.result(sums, 1, []float64{10, 20}, 1, 1, ms(100))
	if diff := cmp.Diff(map[string]int{"status_503": 3, "timeout": 4}, res.Errors); diff != "" {
		t.Errorf("Result.Errors (-want +got):\n%s", diff)
	}
	if md := res.Markdown(); !strings.Contains(md, "failed attempts by kind (retries included): status_503=3 timeout=4\n") {
		t.Errorf("load.md does not give the failed attempts by kind:\n%s", md)
	}
	if md := tr.result([]sim.Summary{{Acked: 1}}, 1, []float64{10}, 1, 1, ms(100)).Markdown(); strings.Contains(md, "failed attempts") {
		t.Errorf("a run without failed attempts lists them:\n%s", md)
	}
}
