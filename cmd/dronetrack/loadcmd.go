package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dronetrack/dronetrack/core/sim"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"

	"github.com/dronetrack/dronetrack/infra/local"
)

// loadCmd drives a one-machine system (started in this process, as `up`
// does) with the simulator at a ramp of target rates and measures what the
// issue asks for: sustained reports/s, loss (acked minus stored), latency
// from ingest to the store and to the fleet API, and this process's RSS and
// CPU. By default the load generator runs in the same process, so its cost
// is in the CPU figure too; with --url it drives an `up` running in another
// process (started with --demo-drones N), reads RSS and CPU of that process,
// and sees reports stored through the API (the store is that process's).
func loadCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", "", "data dir for the system under load (default: a fresh temp dir, removed after)")
	drones := fs.Int("drones", 2000, "simulated drones (seeded as demo drones)")
	ratesFlag := fs.String("rates", "500,1000,2000,4000", "ramp: total target reports/s per step")
	step := fs.Duration("step", 10*time.Second, "duration of each ramp step")
	batch := fs.Int("batch", 1, "reports per request")
	poll := fs.Duration("poll", 100*time.Millisecond, "how often the store and the fleet API are read (latency resolution)")
	out := fs.String("out", "test/results", "directory for load.md, load.json and load.png")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this loopback address during the run")
	concurrency := fs.Int("concurrency", 0, "max requests in flight (0: the simulator's default)")
	drain := fs.Duration("drain", 2*time.Minute, "after the ramp, how long to wait for the backlog to be stored before counting loss")
	target := fs.String("url", "", "drive an `up` already running at this base URL instead of starting one in this process; "+
		"--data is then its data dir (demo keys and login; default: up's default), which needs --drones demo drones (up --demo-drones N)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var rates []float64
	for _, s := range strings.Split(*ratesFlag, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || r <= 0 {
			return fmt.Errorf("--rates %q: want positive numbers separated by commas", *ratesFlag)
		}
		rates = append(rates, r)
	}
	var (
		baseURL string
		demo    []local.DemoKey
		login   local.DemoLogin
		st      store.Store // nil with --url: the store belongs to the other process
	)
	if *target != "" {
		dir := *dataDir
		if dir == "" {
			dir = local.DefaultDataDir()
		}
		var err error
		if baseURL, demo, login, err = remoteTarget(*target, dir, *drones); err != nil {
			return err
		}
		if info, err := os.ReadFile(filepath.Join(dir, local.AdminFile)); err == nil {
			var ai local.AdminInfo
			if json.Unmarshal(info, &ai) == nil && ai.PID > 0 {
				loadProc = strconv.Itoa(ai.PID) // RSS and CPU of the system, not of this generator
			}
		}
		fmt.Fprintf(stderr, "load: driving %s (data dir %s) with %d drones; RSS and CPU are of process %s\n", baseURL, dir, *drones, loadProc)
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
		sys, err := local.Start(ctx, local.Options{
			DataDir: dir, HTTPAddr: "127.0.0.1:0", LogLevel: slog.LevelWarn, Log: logf, Out: io.Discard,
			DemoDrones: *drones, PprofAddr: *pprofAddr,
		})
		if err != nil {
			return err
		}
		defer sys.Shutdown()
		if demo, err = local.ReadDemoKeys(filepath.Join(sys.DataDir(), local.DemoKeysFile)); err != nil {
			return err
		}
		demo = demo[:*drones]
		baseURL, login, st = sys.URL(), sys.DemoLogin(), sys.Store()
	}
	api, err := apiClient(baseURL, login)
	if err != nil {
		return err
	}

	t := newLoadTracker(demo)
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	var pollers sync.WaitGroup
	if st != nil {
		pollers.Add(1)
		go func() { defer pollers.Done(); t.pollStore(pollCtx, st, *poll) }()
	}
	pollers.Add(1)
	go func() { defer pollers.Done(); t.pollAPI(pollCtx, api, baseURL+"/api/v1/drones", *poll, st == nil) }()
	liveDone := make(chan struct{})
	go func() { defer close(liveDone); t.live(pollCtx, stderr) }()

	keys := make([]string, len(demo))
	for i, d := range demo {
		keys[i] = d.Key
	}
	var sums []sim.Summary
	for i, r := range rates {
		fmt.Fprintf(stderr, "load: step %d/%d: %g reports/s for %s\n", i+1, len(rates), r, *step)
		t.setTarget(r)
		s, err := sim.Run(ctx, sim.Config{
			URL: baseURL, Keys: keys, Rate: r / float64(len(keys)), Batch: *batch, Duration: *step,
			SilentFraction: 0, Seed: uint64(i + 1), Concurrency: *concurrency,
			OnAck: t.acked,
		})
		if err != nil {
			return err
		}
		sums = append(sums, s)
		if ctx.Err() != nil {
			break
		}
	}
	t.setTarget(0)
	// Let the pipeline drain: wait until everything acked is stored and
	// visible, or 60 s.
	drainStart := time.Now()
	deadline := drainStart.Add(*drain)
	drained := false
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if a, s, v := t.counts(); s >= a && v >= a {
			drained = true
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	stopPoll()
	pollers.Wait()
	<-liveDone

	var stored int
	if st != nil {
		stored, err = countStored(context.WithoutCancel(ctx), st, demo, t)
	} else {
		stored, err = countStoredAPI(context.WithoutCancel(ctx), api, baseURL, demo, t)
	}
	if err != nil {
		return err
	}
	res := t.result(sums, stored, rates, *step, *drones, *batch, *poll)
	res.Drained, res.DrainSeconds = drained, time.Since(drainStart).Seconds()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	md := res.markdown()
	fmt.Fprint(stdout, md)
	if err := os.WriteFile(filepath.Join(*out, "load.md"), []byte(md), 0o644); err != nil {
		return err
	}
	js, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(filepath.Join(*out, "load.json"), js, 0o644); err != nil {
		return err
	}
	if err := writeChart(filepath.Join(*out, "load.png"), res.Seconds); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "load: wrote %s/load.md, load.json, load.png\n", *out)
	if res.Lost != 0 {
		return fmt.Errorf("load: %d acked reports not stored", res.Lost)
	}
	return nil
}

// apiClient logs in as the demo owner so the fleet API can be read as a
// browser would.
func apiClient(baseURL string, login local.DemoLogin) (*http.Client, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	body, _ := json.Marshal(map[string]string{"email": login.Email, "password": login.Password})
	resp, err := c.Post(baseURL+"/api/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("load: log in: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("load: log in as the demo owner: status %d", resp.StatusCode)
	}
	return c, nil
}

// pendingReport is one acked report waiting to be seen stored and visible.
type pendingReport struct {
	ts      time.Time // the report's own timestamp: its identity per drone
	sentAt  time.Time // first attempt to ingest
	stored  bool
	visible bool
}

type droneTrack struct {
	mu      sync.Mutex
	pending []pendingReport // in ts order (a drone sends in order)
	acked   []time.Time     // every acked ts, for the final loss count
}

// loadTracker matches acked reports against what the store and the API show.
// A report counts as stored (visible) at the start of the first read whose
// drone state has ts >= the report's ts: newer-wins makes that state cover
// it, and the history is written before the state. Latency resolution is
// the poll period (an overestimate of at most one period).
type loadTracker struct {
	byID   map[string]*droneTrack
	list   []*droneTrack
	start  time.Time
	target atomic.Uint64 // float64 bits

	mu      sync.Mutex
	seconds []secondStats // per second since start
	nAcked  atomic.Int64
	nStored atomic.Int64
	nVis    atomic.Int64
	cpu0    float64
}

type secondStats struct {
	T          int       `json:"t"`
	Target     float64   `json:"target"`
	Acked      int       `json:"acked"`
	Stored     int       `json:"stored"`
	Visible    int       `json:"visible"`
	StoredMS   []float64 `json:"-"`
	VisibleMS  []float64 `json:"-"`
	P99Stored  float64   `json:"p99StoredMs"`
	P99Visible float64   `json:"p99VisibleMs"`
	RSSMB      float64   `json:"rssMB"`
	CPU        float64   `json:"cpuCores"`
}

func newLoadTracker(demo []local.DemoKey) *loadTracker {
	t := &loadTracker{byID: map[string]*droneTrack{}, start: time.Now()}
	for range demo {
		t.list = append(t.list, &droneTrack{})
	}
	for i, d := range demo {
		t.byID[d.DroneID] = t.list[i]
	}
	t.cpu0 = cpuSeconds()
	return t
}

func (t *loadTracker) setTarget(r float64) { t.target.Store(uint64(r * 1000)) }

func (t *loadTracker) sec(at time.Time) *secondStats {
	i := int(at.Sub(t.start) / time.Second)
	for len(t.seconds) <= i {
		t.seconds = append(t.seconds, secondStats{T: len(t.seconds), Target: float64(t.target.Load()) / 1000})
	}
	return &t.seconds[i]
}

func (t *loadTracker) acked(drone int, reports []events.Report, sentAt, ackedAt time.Time) {
	d := t.list[drone]
	d.mu.Lock()
	for _, r := range reports {
		d.pending = append(d.pending, pendingReport{ts: r.TS, sentAt: sentAt})
		d.acked = append(d.acked, r.TS)
	}
	d.mu.Unlock()
	t.nAcked.Add(int64(len(reports)))
	t.mu.Lock()
	t.sec(ackedAt).Acked += len(reports)
	t.mu.Unlock()
}

// seen marks a drone's reports up to ts as stored or visible at time at.
func (t *loadTracker) seen(droneID string, ts, at time.Time, visible bool) {
	d := t.byID[droneID]
	if d == nil {
		return
	}
	var lats []float64
	d.mu.Lock()
	for i := range d.pending {
		p := &d.pending[i]
		if p.ts.After(ts) {
			break
		}
		if visible && !p.visible {
			p.visible = true
			lats = append(lats, float64(max(0, at.Sub(p.sentAt)))/1e6)
		} else if !visible && !p.stored {
			p.stored = true
			lats = append(lats, float64(max(0, at.Sub(p.sentAt)))/1e6)
		}
	}
	// Drop reports both stored and visible from the front.
	n := 0
	for n < len(d.pending) && d.pending[n].stored && d.pending[n].visible {
		n++
	}
	d.pending = d.pending[n:]
	d.mu.Unlock()
	if len(lats) == 0 {
		return
	}
	t.mu.Lock()
	s := t.sec(at)
	if visible {
		s.Visible += len(lats)
		s.VisibleMS = append(s.VisibleMS, lats...)
		t.nVis.Add(int64(len(lats)))
	} else {
		s.Stored += len(lats)
		s.StoredMS = append(s.StoredMS, lats...)
		t.nStored.Add(int64(len(lats)))
	}
	t.mu.Unlock()
}

func (t *loadTracker) counts() (acked, stored, visible int64) {
	return t.nAcked.Load(), t.nStored.Load(), t.nVis.Load()
}

func (t *loadTracker) pollStore(ctx context.Context, st store.Store, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		at := time.Now()
		ds, err := st.Drones(ctx, local.DemoTenantID)
		if err != nil {
			continue
		}
		for _, d := range ds {
			if d.State != nil {
				t.seen(d.ID, d.State.TS, at, false)
			}
		}
	}
}

// pollAPI reads the fleet API; with alsoStored (no store to read: --url) a
// state seen there counts as stored as well.
func (t *loadTracker) pollAPI(ctx context.Context, c *http.Client, url string, every time.Duration, alsoStored bool) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		at := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err != nil {
			continue
		}
		var body struct {
			Drones []struct {
				ID    string `json:"id"`
				State *struct {
					TS time.Time `json:"ts"`
				} `json:"state"`
			} `json:"drones"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			continue
		}
		for _, d := range body.Drones {
			if d.State != nil {
				if alsoStored {
					t.seen(d.ID, d.State.TS, at, false)
				}
				t.seen(d.ID, d.State.TS, at, true)
			}
		}
	}
}

// live prints one line a second and records RSS and CPU per second.
func (t *loadTracker) live(ctx context.Context, w io.Writer) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastCPU, lastAt := cpuSeconds(), time.Now()
	var la, ls, lv int64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			cpu := cpuSeconds()
			cores := (cpu - lastCPU) / now.Sub(lastAt).Seconds()
			lastCPU, lastAt = cpu, now
			rss := rssMB()
			a, s, v := t.counts()
			t.mu.Lock()
			cur := t.sec(now.Add(-time.Second))
			cur.RSSMB, cur.CPU = rss, cores
			p99s, p99v := loadPct(cur.StoredMS, 0.99), loadPct(cur.VisibleMS, 0.99)
			t.mu.Unlock()
			fmt.Fprintf(w, "%4ds target %6.0f/s  acked %6d/s  stored %6d/s  visible %6d/s  backlog %6d  p99 stored %6.0fms visible %6.0fms  rss %5.0fMB cpu %.2f\n",
				int(now.Sub(t.start).Seconds()), float64(t.target.Load())/1000, a-la, s-ls, v-lv, a-v, p99s, p99v, rss, cores)
			la, ls, lv = a, s, v
		}
	}
}

// countStored counts, per drone, the acked report timestamps present in the
// stored history: the loss figure is acked minus this.
func countStored(ctx context.Context, st store.Store, demo []local.DemoKey, t *loadTracker) (int, error) {
	n := 0
	for i, d := range demo {
		dt := t.list[i]
		if len(dt.acked) == 0 {
			continue
		}
		want, lo, hi := ackedSpan(dt.acked)
		pts, err := st.Track(ctx, store.TrackQuery{TenantID: d.TenantID, DroneID: d.DroneID, From: lo, To: hi.Add(time.Microsecond)})
		if err != nil {
			return 0, fmt.Errorf("load: read track of %s: %w", d.DroneID, err)
		}
		for _, p := range pts {
			if k := p.Report.TS.UnixMicro(); want[k] {
				delete(want, k)
				n++
			}
		}
	}
	return n, nil
}

// ackedSpan is the set of acked report timestamps (Unix µs) that the loss
// count looks for in the stored history, and the earliest and latest of
// them; acked is not empty.
func ackedSpan(acked []time.Time) (want map[int64]bool, lo, hi time.Time) {
	want = map[int64]bool{}
	lo, hi = acked[0], acked[0]
	for _, ts := range acked {
		want[ts.UnixMicro()] = true
		lo, hi = minTime(lo, ts), maxTime(hi, ts)
	}
	return want, lo, hi
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// loadResult is what a load run measured, per ramp step and per second.
type loadResult struct {
	Drones int          `json:"drones"`
	Batch  int          `json:"batch"`
	PollMS float64      `json:"pollMs"`
	Steps  []stepResult `json:"steps"`
	Acked  int          `json:"acked"`
	Stored int          `json:"stored"`
	Lost   int          `json:"lost"`
	// Drained reports whether everything acked was stored and visible
	// within the drain time; when not, Lost counts the backlog too.
	Drained      bool          `json:"drained"`
	DrainSeconds float64       `json:"drainSeconds"`
	Failed       int           `json:"failed"`
	Seconds      []secondStats `json:"seconds"`
}

type stepResult struct {
	Target       float64 `json:"target"`
	AckedPerSec  float64 `json:"ackedPerSec"`
	StoredPerSec float64 `json:"storedPerSec"`
	Failed       int     `json:"failed"`
	StoredP50    float64 `json:"storedP50Ms"`
	StoredP95    float64 `json:"storedP95Ms"`
	StoredP99    float64 `json:"storedP99Ms"`
	VisibleP50   float64 `json:"visibleP50Ms"`
	VisibleP95   float64 `json:"visibleP95Ms"`
	VisibleP99   float64 `json:"visibleP99Ms"`
	MaxRSSMB     float64 `json:"maxRssMB"`
	MeanCPU      float64 `json:"meanCpuCores"`
}

func (t *loadTracker) result(sums []sim.Summary, stored int, rates []float64, step time.Duration, drones, batch int, poll time.Duration) loadResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	res := loadResult{Drones: drones, Batch: batch, PollMS: float64(poll) / 1e6, Stored: stored}
	for _, s := range sums {
		res.Acked += s.Acked
		res.Failed += s.Failed + s.Rejected
	}
	res.Lost = res.Acked - stored
	// A step's latencies are those of the seconds whose target was its rate
	// (reports seen after the ramp ended go to the last step).
	for i, r := range rates[:len(sums)] {
		sr := stepResult{Target: r, Failed: sums[i].Failed + sums[i].Rejected, AckedPerSec: sums[i].ReportsPerSecond()}
		var st, vi []float64
		var nStored, nSec, cpu float64
		for _, s := range t.seconds {
			if s.Target != r && !(i == len(sums)-1 && s.Target == 0) {
				continue
			}
			st, vi = append(st, s.StoredMS...), append(vi, s.VisibleMS...)
			if s.Target == r {
				nStored += float64(s.Stored)
				nSec++
				cpu += s.CPU
			}
			sr.MaxRSSMB = max(sr.MaxRSSMB, s.RSSMB)
		}
		if nSec > 0 {
			sr.StoredPerSec, sr.MeanCPU = nStored/nSec, cpu/nSec
		}
		slices.Sort(st)
		slices.Sort(vi)
		sr.StoredP50, sr.StoredP95, sr.StoredP99 = loadPctSorted(st, .5), loadPctSorted(st, .95), loadPctSorted(st, .99)
		sr.VisibleP50, sr.VisibleP95, sr.VisibleP99 = loadPctSorted(vi, .5), loadPctSorted(vi, .95), loadPctSorted(vi, .99)
		res.Steps = append(res.Steps, sr)
	}
	for i := range t.seconds {
		s := &t.seconds[i]
		s.P99Stored, s.P99Visible = loadPct(s.StoredMS, .99), loadPct(s.VisibleMS, .99)
	}
	res.Seconds = slices.Clone(t.seconds)
	return res
}

func (r loadResult) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# dronetrack load (%s)\n\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "%d drones, %d report(s) per request, store/API polled every %g ms (latency resolution).\n", r.Drones, r.Batch, r.PollMS)
	fmt.Fprintf(&b, "Latency is from the first attempt to ingest to the first store read / fleet API read showing the report.\n\n")
	b.WriteString("| target/s | acked/s | stored/s | failed | stored p50/p95/p99 ms | visible p50/p95/p99 ms | max RSS MB | CPU cores |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "| %.0f | %.0f | %.0f | %d | %.0f / %.0f / %.0f | %.0f / %.0f / %.0f | %.0f | %.2f |\n",
			s.Target, s.AckedPerSec, s.StoredPerSec, s.Failed, s.StoredP50, s.StoredP95, s.StoredP99,
			s.VisibleP50, s.VisibleP95, s.VisibleP99, s.MaxRSSMB, s.MeanCPU)
	}
	fmt.Fprintf(&b, "\nacked %d, stored (in history) %d, lost %d, not acked (failed/rejected) %d\n", r.Acked, r.Stored, r.Lost, r.Failed)
	if r.Drained {
		fmt.Fprintf(&b, "backlog drained %.1f s after the ramp ended\n", r.DrainSeconds)
	} else {
		fmt.Fprintf(&b, "backlog NOT drained within %.0f s: 'lost' includes reports still queued\n", r.DrainSeconds)
	}
	return b.String()
}

func loadPct(v []float64, p float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return loadPctSorted(s, p)
}

func loadPctSorted(s []float64, p float64) float64 {
	if len(s) == 0 {
		return 0
	}
	i := int(p*float64(len(s)-1) + 0.5)
	return s[i]
}

// loadProc is the /proc entry RSS and CPU are read from: this process, or
// with --url the running up's (its pid from the data dir's admin.json).
var loadProc = "self"

// rssMB reads VmRSS from /proc/PID/status.
func rssMB() float64 {
	b, err := os.ReadFile("/proc/" + loadProc + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// cpuSeconds is user+system CPU time of the process from /proc/PID/stat.
func cpuSeconds() float64 {
	b, err := os.ReadFile("/proc/" + loadProc + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name (which is in parentheses).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if errors.Join(err1, err2) != nil {
		return 0
	}
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// remoteTarget reads what driving a running up needs from its data dir: the
// demo drones' keys (at least drones of them) and the demo owner's login.
func remoteTarget(rawURL, dir string, drones int) (string, []local.DemoKey, local.DemoLogin, error) {
	base := strings.TrimRight(rawURL, "/")
	demo, err := local.ReadDemoKeys(filepath.Join(dir, local.DemoKeysFile))
	if err != nil {
		return "", nil, local.DemoLogin{}, err
	}
	if len(demo) < drones {
		return "", nil, local.DemoLogin{}, fmt.Errorf("load: %s has %d demo drones, --drones wants %d: start up with --demo-drones %d",
			dir, len(demo), drones, drones)
	}
	var login local.DemoLogin
	raw, err := os.ReadFile(filepath.Join(dir, local.DemoLoginFile))
	if err != nil {
		return "", nil, local.DemoLogin{}, fmt.Errorf("load: demo login: %w", err)
	}
	if err := json.Unmarshal(raw, &login); err != nil {
		return "", nil, local.DemoLogin{}, fmt.Errorf("load: demo login %s: %w", local.DemoLoginFile, err)
	}
	return base, demo[:drones], login, nil
}

// countStoredAPI is countStored through the track API of serve-map, for a
// system in another process.
func countStoredAPI(ctx context.Context, c *http.Client, baseURL string, demo []local.DemoKey, t *loadTracker) (int, error) {
	n := 0
	for i, d := range demo {
		dt := t.list[i]
		if len(dt.acked) == 0 {
			continue
		}
		want, lo, hi := ackedSpan(dt.acked)
		after := ""
		for {
			q := url.Values{"from": {lo.UTC().Format(time.RFC3339Nano)}, "to": {hi.Add(time.Microsecond).UTC().Format(time.RFC3339Nano)}, "limit": {"1000"}}
			if after != "" {
				q.Set("after", after)
			}
			var resp *http.Response
			var err error
			// The system may still be busy with a backlog: a read that
			// times out is tried again before the count gives up.
			for try := 1; ; try++ {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/api/v1/drones/"+url.PathEscape(d.DroneID)+"/track?"+q.Encode(), nil)
				if resp, err = c.Do(req); err == nil || try == 5 || ctx.Err() != nil {
					break
				}
			}
			if err != nil {
				return 0, fmt.Errorf("load: read track of %s: %w", d.DroneID, err)
			}
			var page struct {
				Points []events.Report `json:"points"`
				Next   *string         `json:"next"`
			}
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				return 0, fmt.Errorf("load: read track of %s: status %d: %v", d.DroneID, resp.StatusCode, err)
			}
			for _, p := range page.Points {
				if k := p.TS.UnixMicro(); want[k] {
					delete(want, k)
					n++
				}
			}
			if page.Next == nil {
				break
			}
			after = *page.Next
		}
	}
	return n, nil
}
