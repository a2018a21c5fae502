package system

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/broker"
	"github.com/dronetrack/dronetrack/core/sim"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"

	"github.com/dronetrack/dronetrack/infra/local"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// BenchmarkPipeline runs the whole one-machine pipeline of `up` in this
// process (ingest -> broker -> process -> state.updated -> cache-refresh and
// alerts) and reports the CPU it spends per report: process CPU time
// (getrusage) from the first report to the moment the broker has nothing
// left to deliver, divided by the reports sent. That figure is stable on a
// shared machine, unlike a rate.
//
// The load is one report per request, drones at 1 Hz (each drone's reports
// are 1 s apart in time and sent 1 s apart, as a real fleet's), offered at
// DRONETRACK_BENCH_RATE reports/s (default 250) by as many drones. Requests
// go to the public listener's handler in memory (no loopback socket, no
// client), so the load generator's share is building an http.Request; the
// public listener's own request parsing is not counted (the hops behind it
// are, whatever their transport). Run it with a fixed count, e.g.
//
//	go test -run '^$' -bench BenchmarkPipeline -benchtime 5000x . (in test/system)
//
// DRONETRACK_BENCH_HISTORY=N seeds N points of history per drone first.
//
// DRONETRACK_BENCH_DRONES=N spreads the rate over N drones instead (each
// sends rate/N requests per second, its reports still 1 s apart in time):
// fewer drones than the rate make process hold deliveries for its
// STATE_INTERVAL, as a fleet reporting faster than 1 Hz or a backlog
// draining faster than the fleet reports does.
//
// DRONETRACK_BENCH_CPUPROFILE=FILE profiles the timed part only;
// test/pipeline-stages.py splits such a profile by stage.
//
// DRONETRACK_BENCH_MEMPROFILE=FILE writes the allocation profile at the end
// of the timed part to FILE and at its start to FILE.before, so that
// `go tool pprof -base FILE.before FILE` shows what the timed part
// allocated (seeding the history allocates far more).
//
// DRONETRACK_BENCH_BATCH=N (default 1) sends N reports of one drone per
// request, as a companion computer buffering its reports would (`dronetrack
// load --batch N`): the drones still report at 1 Hz, so each sends a request
// every N s, and the offered rate stays in reports/s (requests/s is that
// divided by N). b.N counts reports, rounded up to whole requests; CPU is
// reported per report and per request.
//
// Beside CPU it reports the rates, the cores used, 503s retried, context
// switches per report (threads put to sleep and woken: what a report costs
// more at low rates, where nothing queues up) and the process's peak RSS.
func BenchmarkPipeline(b *testing.B) {
	rate := 250
	if v, err := strconv.Atoi(os.Getenv("DRONETRACK_BENCH_RATE")); err == nil && v > 0 {
		rate = v
	}
	batch := 1
	if v, err := strconv.Atoi(os.Getenv("DRONETRACK_BENCH_BATCH")); err == nil && v > 0 {
		batch = v
	}
	drones := rate // 1 Hz each
	if v, err := strconv.Atoi(os.Getenv("DRONETRACK_BENCH_DRONES")); err == nil && v > 0 {
		drones = v // rate/drones Hz each
	}
	sys, demo := startTestSystem(b, local.Options{DemoDrones: drones})
	demo = demo[:drones]
	queue := sys.Broker()
	h := sys.Handler()
	ctx := context.Background()

	// Request i is drone i%drones's k-th (k = i/drones), carrying its
	// reports k*batch .. k*batch+batch-1; a drone's n-th report is at
	// base + n s, so the newest report of a drone is never in the future
	// however long the run.
	requests := (b.N + batch - 1) / batch
	reports := requests * batch
	perDrone := (reports + drones - 1) / drones
	base := time.Now().UTC().Truncate(time.Second).Add(-time.Duration(perDrone+batch+60) * time.Second)
	bodies := make([][]byte, requests)
	for i := range bodies {
		d, k := i%drones, i/drones
		var body []byte
		if batch > 1 {
			body = append(body, '[')
		}
		for j := range batch {
			n := k*batch + j
			if j > 0 {
				body = append(body, ',')
			}
			ts := base.Add(time.Duration(n) * time.Second).Format(time.RFC3339)
			body = fmt.Appendf(body, `{"ts":%q,"lat":%.6f,"lon":%.6f,"alt":120,"speed":12.5,"heading":90,"battery":80}`,
				ts, 47.0+float64(d)*1e-3+float64(n)*1e-5, 8.5+float64(n)*1e-5)
		}
		if batch > 1 {
			body = append(body, ']')
		}
		bodies[i] = body
	}

	// DRONETRACK_BENCH_HISTORY=N gives every drone N points of history
	// before the timed part (1 s apart, ending before its first report),
	// written straight to the store: the store of a system that has run a
	// while, whose drones' history buckets are no longer inline or one leaf.
	if n, err := strconv.Atoi(os.Getenv("DRONETRACK_BENCH_HISTORY")); err == nil && n > 0 {
		for r := range n {
			pts := make([]store.TrackPoint, drones)
			for d := range pts {
				ts := base.Add(-time.Duration(n-r) * time.Second)
				pts[d] = store.TrackPoint{TenantID: demo[d].TenantID, DroneID: demo[d].DroneID, ExpireAt: ts.Add(24 * time.Hour),
					Report: events.Report{TS: ts, Lat: 47.0 + float64(d)*1e-3, Lon: 8.5}}
			}
			if err := sys.Store().AppendTrack(ctx, pts); err != nil {
				b.Fatal(err)
			}
		}
	}

	const workers = 512 // requests in flight at most, as a fleet's clients would keep
	work := make(chan int, workers)
	var failed, retries atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				d := i % drones
				// A 503 (a busy shared machine) is retried as a drone
				// does after Retry-After; the retries are reported.
				for try := 1; ; try++ {
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, sim.IngestPath, bytes.NewReader(bodies[i]))
					req.RequestURI = sim.IngestPath
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Authorization", "Bearer "+demo[d].Key)
					// One address per drone, as a fleet has: the per-address
					// rate limit is ingest's business, not this benchmark's.
					req.RemoteAddr = fmt.Sprintf("10.%d.%d.1:40000", d/250, d%250)
					var rw discardWriter
					h.ServeHTTP(&rw, req)
					if rw.code == http.StatusAccepted {
						break
					}
					if rw.code != http.StatusServiceUnavailable || try == 20 {
						if failed.Add(1) == 1 {
							b.Errorf("request %d: status %d after %d tries", i, rw.code, try)
						}
						break
					}
					retries.Add(1)
					time.Sleep(500 * time.Millisecond)
				}
			}
		}()
	}

	waitDrained := func() {
		for {
			n, err := queue.Pending(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if n == 0 {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitDrained() // the demo seeding's own events
	// Events per stored JetStream message (the broker's group commit),
	// when the broker reports it.
	type batchStats interface{ BatchStats() broker.BatchStats }
	var statsBefore broker.BatchStats
	if bs, ok := queue.(batchStats); ok {
		statsBefore = bs.BatchStats()
	}
	if path := os.Getenv("DRONETRACK_BENCH_CPUPROFILE"); path != "" {
		// The timed part only: -cpuprofile would include seeding (argon2
		// key hashing) and start-up.
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	memProfile := func(path string) {
		runtime.GC() // the profile is as of the last collection
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			b.Fatal(err)
		}
	}
	memPath := os.Getenv("DRONETRACK_BENCH_MEMPROFILE")
	if memPath != "" {
		memProfile(memPath + ".before")
	}
	replaysBefore, writesBefore := processCounter(b, sys, "dronetrack_process_flight_replays_total"),
		processCounter(b, sys, "dronetrack_process_state_writes_total")
	gcBefore := gcCPU()
	before, switchesBefore := cpuTime(), contextSwitches()
	// Goroutines, sampled through the timed part: deliveries parked in the
	// pipeline are goroutines, and their stacks are what the collector scans.
	sampling := make(chan struct{})
	var maxG, sumG, nG int
	var sampled sync.WaitGroup
	sampled.Go(func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-sampling:
				return
			case <-t.C:
				g := runtime.NumGoroutine()
				maxG, sumG, nG = max(maxG, g), sumG+g, nG+1
			}
		}
	})
	b.ResetTimer()
	start := time.Now()
	interval := time.Second * time.Duration(batch) / time.Duration(rate) // between requests
	for i := 0; i < requests; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > time.Millisecond {
			time.Sleep(d)
		}
		work <- i
		if i == requests/2 && os.Getenv("DRONETRACK_BENCH_GOROUTINES") != "" {
			// Where deliveries wait, half-way through.
			if f, err := os.Create(os.Getenv("DRONETRACK_BENCH_GOROUTINES")); err == nil {
				_ = pprof.Lookup("goroutine").WriteTo(f, 1)
				f.Close()
			}
		}
	}
	close(work)
	wg.Wait()
	acked := time.Since(start)
	waitDrained()
	b.StopTimer()
	if memPath != "" {
		memProfile(memPath)
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - before
	switches := contextSwitches() - switchesBefore
	gc := gcCPU() - gcBefore
	close(sampling)
	sampled.Wait()
	if nG > 0 {
		b.ReportMetric(float64(maxG), "goroutines-max")
		b.ReportMetric(float64(sumG)/float64(nG), "goroutines-mean")
	}
	// The collector's share of the CPU (runtime/metrics' estimate of GC
	// CPU time, mark assists included, over the process's CPU time).
	b.ReportMetric(gc.Seconds()/cpu.Seconds(), "gc-frac")
	// Batches whose flights were rebuilt from history because a report
	// reached the detector after a newer one of its drone, and state writes
	// (one per coalesced batch), per 1,000 reports.
	b.ReportMetric(1000*(processCounter(b, sys, "dronetrack_process_flight_replays_total")-replaysBefore)/float64(reports), "replays/1k")
	b.ReportMetric(1000*(processCounter(b, sys, "dronetrack_process_state_writes_total")-writesBefore)/float64(reports), "statewrites/1k")
	b.ReportMetric(float64(cpu.Microseconds())/float64(reports), "cpu-us/report")
	if batch > 1 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(requests), "cpu-us/request")
	}
	b.ReportMetric(float64(reports)/acked.Seconds(), "acked/s")
	b.ReportMetric(float64(reports)/elapsed.Seconds(), "stored/s")
	b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "cores")
	b.ReportMetric(float64(retries.Load()), "retries")
	if bs, ok := queue.(batchStats); ok {
		s := bs.BatchStats()
		if m := s.Messages - statsBefore.Messages; m > 0 {
			b.ReportMetric(float64(s.Events-statsBefore.Events)/float64(m), "events/msg")
		}
	}
	// Threads going to sleep and being woken: each is a futex pair and a
	// scheduler pass, paid per hand-off between goroutines when the other
	// core is idle, and fewer per report when work queues up.
	b.ReportMetric(float64(switches)/float64(reports), "ctxsw/report")
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "maxrss-MB") // the process's peak, seeding included
	}
	b.ReportMetric(0, "ns/op")
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d requests not accepted", n, requests)
	}
}

// cpuTime is this process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// gcCPU is the runtime's estimate of the CPU time spent in garbage
// collection so far: dedicated background marking, mark assists and
// pauses. Marking on idle processors is left out: the runtime counts it in
// wall time, which on a machine shared with other processes is far from the
// CPU it got.
func gcCPU() time.Duration {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/cpu/classes/gc/mark/idle:cpu-seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64 || s[1].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return time.Duration((s[0].Value.Float64() - s[1].Value.Float64()) * float64(time.Second))
}

// processCounter reads a counter from process's /metrics (0 when absent).
func processCounter(b *testing.B, sys *local.System, name string) float64 {
	fn := sys.Function("process")
	if fn == nil {
		return 0
	}
	resp, err := http.Get(fn.URL() + "/metrics")
	if err != nil {
		b.Fatalf("process metrics: %v", err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		b.Fatalf("process metrics: %v", err)
	}
	f := families[name]
	if f == nil || len(f.GetMetric()) != 1 || f.GetMetric()[0].GetCounter() == nil {
		b.Fatalf("process metrics: no counter %s", name)
	}
	return f.GetMetric()[0].GetCounter().GetValue()
}

// contextSwitches is how often this process's threads gave up the CPU
// before their time slice ended (mostly to sleep in futex or epoll) and were
// preempted, so far.
func contextSwitches() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return ru.Nvcsw + ru.Nivcsw
}

// discardWriter is the cheapest http.ResponseWriter: the benchmark needs
// only the status.
type discardWriter struct {
	hdr  http.Header
	code int
}

func (w *discardWriter) Header() http.Header {
	if w.hdr == nil {
		w.hdr = http.Header{}
	}
	return w.hdr
}

func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(p), nil
}
