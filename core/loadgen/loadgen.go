// Package loadgen drives a running Dronetrack system with the simulator at a
// ramp of target rates and measures what capacity work asks for: sustained
// reports/s, loss (acked minus stored), latency from ingest to the store, to
// the fleet API and to the map's live stream (ingest→browser), and the
// system process's RSS and CPU, and the generator's own CPU.
//
// The system is reached over HTTP at Target.URL, logged in as Target.Login
// like a browser. When it runs in this process, Target.Store lets the
// generator read the store directly; otherwise a report counts as stored
// when the live stream carries its drone's state (announced only after the
// store write commits) and loss is counted through the track API.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sync"
	"time"

	"github.com/dronetrack/dronetrack/core/sim"
	"github.com/dronetrack/dronetrack/core/store"
)

// Config is the ramp and how closely it is watched.
type Config struct {
	Rates       []float64     // total target reports/s, one per step
	Step        time.Duration // duration of each step
	Batch       int           // reports per request
	Concurrency int           // max requests in flight (0: the simulator's default)
	Tick        time.Duration // sim.Config.Tick: send what is due once a tick (0: each on time)
	// Poll is how often the store and the fleet API are read: the
	// resolution of the stored and visible latencies.
	Poll time.Duration
	// Drain is how long to wait after the ramp for the backlog to be
	// stored, visible and streamed before counting loss.
	Drain time.Duration
	// Log, when set, gets one line per step and one per second.
	Log io.Writer
}

// Drone is a drone the simulator reports as.
type Drone struct {
	TenantID, DroneID, Key string
}

// Login is a user of the drones' tenant: the fleet API and the live stream
// are read as that user.
type Login struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// Store is the part of a store.Store the generator reads when the system
// runs in this process.
type Store interface {
	Drones(ctx context.Context, tenantID string) ([]store.Drone, error)
	Track(ctx context.Context, q store.TrackQuery) ([]store.TrackPoint, error)
}

// Target is the system under load.
type Target struct {
	URL    string // base URL of ingest and serve-map
	Drones []Drone
	Login  Login
	// Store, when set, is the system's store (it runs in this process);
	// nil reads everything through the APIs.
	Store Store
	// PID is the system's process, whose RSS and CPU are measured; 0 is
	// this process.
	PID int
}

// Run logs in, opens the live stream, runs the ramp, waits for the backlog
// to drain and counts what was stored. The error is about the run itself;
// loss is in Result.Lost.
func Run(ctx context.Context, cfg Config, target Target) (Result, error) {
	if len(cfg.Rates) == 0 || len(target.Drones) == 0 {
		return Result{}, fmt.Errorf("loadgen: no rates or no drones")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 100 * time.Millisecond
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1
	}
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	api, err := login(target.URL, target.Login)
	if err != nil {
		return Result{}, err
	}
	ids := make([]string, len(target.Drones))
	keys := make([]string, len(target.Drones))
	for i, d := range target.Drones {
		ids[i], keys[i] = d.DroneID, d.Key
	}
	t := newTracker(ids, true, time.Now())

	watchCtx, stopWatch := context.WithCancel(ctx)
	var watchers sync.WaitGroup
	defer func() {
		stopWatch()
		watchers.Wait()
	}()
	sse := newStreamer(target.URL, api, t)
	// Without the store to read, a report counts as stored when the live
	// stream carries its drone's state (see Result.StoredFrom).
	sse.alsoStored = target.Store == nil
	resp, err := sse.connect(watchCtx, "")
	if err != nil {
		return Result{}, fmt.Errorf("loadgen: %w", err)
	}
	watchers.Go(func() { sse.run(watchCtx, resp) })
	if target.Store != nil {
		watchers.Go(func() { t.pollStore(watchCtx, target.Store, tenants(target.Drones), cfg.Poll) })
	}
	watchers.Go(func() { t.pollAPI(watchCtx, api, target.URL, cfg.Poll) })
	p := procOf(target.PID)
	watchers.Go(func() { t.live(watchCtx, p, logw) })

	var sums []sim.Summary
	var gens []genCost
	self := procOf(0)
	var notBefore time.Time // a step's reports come after the previous step's
	for i, r := range cfg.Rates {
		fmt.Fprintf(logw, "load: step %d/%d: %g reports/s for %s\n", i+1, len(cfg.Rates), r, cfg.Step)
		t.setStep(i, r)
		cpu0, at0 := self.cpuSeconds(), time.Now()
		s, err := sim.Run(ctx, sim.Config{
			URL: target.URL, Keys: keys, Rate: r / float64(len(keys)), Batch: cfg.Batch, Duration: cfg.Step,
			SilentFraction: 0, Seed: uint64(i + 1), Concurrency: cfg.Concurrency, Tick: cfg.Tick,
			NotBefore: notBefore, OnSend: t.sent, OnAck: t.acked,
		})
		notBefore = time.Now()
		if err != nil {
			return Result{}, err
		}
		sums = append(sums, s)
		gens = append(gens, genCost{cpu: self.cpuSeconds() - cpu0, wall: time.Since(at0).Seconds(), requests: s.Requests})
		if ctx.Err() != nil {
			break
		}
	}
	t.setStep(len(sums)-1, 0)
	// Let the pipeline drain: wait until everything acked is stored,
	// visible and streamed, or cfg.Drain.
	drainStart := time.Now()
	drained := false
	for time.Since(drainStart) < cfg.Drain && ctx.Err() == nil {
		if t.settled() {
			drained = true
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	drainTime := time.Since(drainStart)
	stopWatch()
	watchers.Wait()

	var stored int
	if target.Store != nil {
		stored, err = t.countStored(context.WithoutCancel(ctx), target.Store, target.Drones)
	} else {
		stored, err = t.countStoredAPI(context.WithoutCancel(ctx), api, target.URL, target.Drones)
	}
	if err != nil {
		return Result{}, err
	}
	res := t.result(sums, stored, cfg.Rates, len(target.Drones), cfg.Batch, cfg.Poll)
	res.StoredFrom = "store"
	if target.Store == nil {
		res.StoredFrom = "stream"
	}
	if target.PID > 0 {
		// The generator is a process of its own: its cost is apart from
		// the system's.
		for i := range res.Steps {
			g := gens[i]
			res.Steps[i].GenCPU = g.cpu / g.wall
			if g.requests > 0 {
				res.Steps[i].GenUSPerRequest = g.cpu / float64(g.requests) * 1e6
			}
		}
	}
	res.Drained, res.DrainSeconds = drained, drainTime.Seconds()
	res.StreamReconnects, res.StreamResyncs = int(sse.reconnects.Load()), int(sse.resyncs.Load())
	return res, nil
}

// genCost is the generator's own CPU time over one ramp step (its
// senders, the fleet polling and the live stream) and the requests it made.
type genCost struct {
	cpu, wall float64
	requests  int
}

func tenants(ds []Drone) []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range ds {
		if !seen[d.TenantID] {
			seen[d.TenantID] = true
			out = append(out, d.TenantID)
		}
	}
	return out
}

// login signs in so the fleet API and the stream can be read as a browser
// would.
func login(baseURL string, l Login) (*http.Client, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	body, _ := json.Marshal(l)
	resp, err := c.Post(baseURL+"/api/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("loadgen: log in: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("loadgen: log in as %s: status %d", l.Email, resp.StatusCode)
	}
	return c, nil
}

// readFleet reads the fleet API into buf and calls fn for each drone with
// a state, with the time the read started. With etag, the read is
// conditional on the list having changed since the one *etag names, as a
// browser's revalidation is: unchanged (304), fn is not called; *etag
// becomes the answer's.
func readFleet(ctx context.Context, c *http.Client, baseURL string, etag *string, buf *bytes.Buffer, fn func(at time.Time, d fleetState)) error {
	at := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/api/v1/drones", nil)
	if err != nil {
		return err
	}
	if etag != nil && *etag != "" {
		req.Header.Set("If-None-Match", *etag)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if etag != nil {
		if resp.StatusCode == http.StatusNotModified {
			return nil
		}
		*etag = resp.Header.Get("ETag")
	}
	buf.Reset()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fleet API: status %d", resp.StatusCode)
	}
	return scanFleet(buf.Bytes(), func(d fleetState) {
		if len(d.ts) > 0 {
			fn(at, d)
		}
	})
}

func (t *tracker) pollStore(ctx context.Context, st Store, tenantIDs []string, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, tenant := range tenantIDs {
			at := time.Now()
			ds, err := st.Drones(ctx, tenant)
			if err != nil {
				continue
			}
			for _, d := range ds {
				if d.State != nil {
					t.seen(d.ID, d.State.TS, at, kindStored)
				}
			}
		}
	}
}

// pollAPI reads the fleet API: what it shows counts as visible. Reads are
// conditional (If-None-Match): serve-map renders its list at most every
// FLEET_LIST_MAX_AGE, so most reads are answered 304 and read nothing. A
// drone whose state ts text is the one the previous read showed is not
// matched again: a report whose 202 was recorded after the read that
// showed it is matched when it is acked (tracker.acked).
func (t *tracker) pollAPI(ctx context.Context, c *http.Client, baseURL string, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var buf bytes.Buffer
	var etag string
	lastText := make([][]byte, len(t.list)) // per drone, the ts text last read
	lastTS := make([]time.Time, len(t.list))
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		_ = readFleet(ctx, c, baseURL, &etag, &buf, func(at time.Time, d fleetState) {
			i, ok := t.index[string(d.id)]
			if !ok || bytes.Equal(lastText[i], d.ts) {
				return
			}
			ts, err := parseTS(d.ts)
			if err != nil {
				return
			}
			lastText[i], lastTS[i] = append(lastText[i][:0], d.ts...), ts
			t.seenAt(t.list[i], lastTS[i], at, kindVisible)
		})
	}
}

// live prints one line a second and records the system's RSS and CPU per
// second.
func (t *tracker) live(ctx context.Context, p proc, w io.Writer) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastCPU, lastAt := p.cpuSeconds(), time.Now()
	var lse, la, ls, lv, lst int64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			cpu := p.cpuSeconds()
			cores := (cpu - lastCPU) / now.Sub(lastAt).Seconds()
			lastCPU, lastAt = cpu, now
			rss := p.rssMB()
			se, a, s, v, st := t.countsSent()
			p99s, p99v, p99st, p99late := t.sample(now, rss, cores)
			// sent is what the generator put on the wire (first attempts),
			// late how far behind schedule its requests went out: a
			// target the generator did not reach shows there, not only as
			// fewer acks.
			fmt.Fprintf(w, "%4ds target %6.0f/s  sent %6d/s (late p99 %5.0fms)  acked %6d/s  stored %6d/s  visible %6d/s  sse %6d/s  backlog %6d  p99 stored %6.0fms visible %6.0fms sse %6.0fms  rss %5.0fMB cpu %.2f\n",
				int(now.Sub(t.start).Seconds()), t.targetRate(), se-lse, p99late, a-la, s-ls, v-lv, st-lst, a-v, p99s, p99v, p99st, rss, cores)
			lse, la, ls, lv, lst = se, a, s, v, st
		}
	}
}

// countStored counts, per drone, the acked report timestamps present in the
// stored history: the loss figure is acked minus this.
func (t *tracker) countStored(ctx context.Context, st Store, drones []Drone) (int, error) {
	n := 0
	for i, d := range drones {
		dt := t.list[i]
		if len(dt.acked) == 0 {
			continue
		}
		want, lo, hi := ackedSpan(dt.acked)
		pts, err := st.Track(ctx, store.TrackQuery{TenantID: d.TenantID, DroneID: d.DroneID, From: lo, To: hi.Add(time.Microsecond)})
		if err != nil {
			return 0, fmt.Errorf("loadgen: read track of %s: %w", d.DroneID, err)
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

// countStoredAPI is countStored through serve-map's track API, for a
// system in another process.
func (t *tracker) countStoredAPI(ctx context.Context, c *http.Client, baseURL string, drones []Drone) (int, error) {
	n := 0
	for i, d := range drones {
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
				return 0, fmt.Errorf("loadgen: read track of %s: %w", d.DroneID, err)
			}
			var page struct {
				Points []struct {
					TS time.Time `json:"ts"`
				} `json:"points"`
				Next *string `json:"next"`
			}
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				return 0, fmt.Errorf("loadgen: read track of %s: status %d: %v", d.DroneID, resp.StatusCode, err)
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

// ackedSpan is the set of acked report timestamps (Unix µs) that the loss
// count looks for in the stored history, and the earliest and latest of
// them; acked is not empty.
func ackedSpan(acked []time.Time) (want map[int64]bool, lo, hi time.Time) {
	want = map[int64]bool{}
	lo, hi = acked[0], acked[0]
	for _, ts := range acked {
		want[ts.UnixMicro()] = true
		if ts.Before(lo) {
			lo = ts
		}
		if ts.After(hi) {
			hi = ts
		}
	}
	return want, lo, hi
}
