package cache_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/cache"
	_ "github.com/dronetrack/dronetrack/core/cache/local"
	_ "github.com/dronetrack/dronetrack/core/cache/redis"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/events"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// redisAddr is the Redis the tests use (started for the test binary when
// none answers); a test that cannot get one fails, never skips.
func redisAddr(t testing.TB) string { return testenv.Redis(t) }

func uniq(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// fakeLoader is the in-test store: drones by tenant, with counted reads.
type fakeLoader struct {
	mu          sync.Mutex
	drones      map[string]map[string]store.Drone
	dronesCalls atomic.Int64
	droneCalls  atomic.Int64
	delay       time.Duration
}

func newFakeLoader() *fakeLoader { return &fakeLoader{drones: map[string]map[string]store.Drone{}} }

func (f *fakeLoader) add(d store.Drone) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.drones[d.TenantID] == nil {
		f.drones[d.TenantID] = map[string]store.Drone{}
	}
	f.drones[d.TenantID][d.ID] = d
}

func (f *fakeLoader) Drones(_ context.Context, tenant string) ([]store.Drone, error) {
	f.dronesCalls.Add(1)
	time.Sleep(f.delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Drone
	for _, d := range f.drones[tenant] {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (f *fakeLoader) Drone(_ context.Context, tenant, id string) (store.Drone, error) {
	f.droneCalls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.drones[tenant][id]
	if !ok {
		return store.Drone{}, fmt.Errorf("drone %s: %w", id, store.ErrNotFound)
	}
	return d, nil
}

// backends runs a test of the cache's contract against every backend,
// opened by URL through the mux the backend packages register with: Redis
// (testenv.Redis: REDIS_ADDR, or one started for the test binary; a test
// that gets none fails, never skips) and local mode.
func backends(t *testing.T, fn func(t *testing.T, url string)) {
	t.Run("redis", func(t *testing.T) { fn(t, "redis://"+redisAddr(t)+"/0") })
	t.Run("local", func(t *testing.T) { fn(t, "local://"+uniq("test")) })
}

func open(t testing.TB, url string, l cache.Loader) *cache.Cache {
	t.Helper()
	c, err := cache.Open(context.Background(), url, cache.Options{Loader: l})
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var t0 = time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)

func state(sec int, lon, lat float64) events.DroneState {
	return events.DroneState{TS: t0.Add(time.Duration(sec) * time.Second), Lon: lon, Lat: lat,
		Battery: new(80.0), DistanceM: float64(sec), UpdatedAt: t0.Add(time.Duration(sec) * time.Second)}
}

func decodeList(t testing.TB, b []byte) []cache.DroneView {
	t.Helper()
	var vs []cache.DroneView
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatalf("decode list %q: %v", b, err)
	}
	return vs
}

func TestFleetMergesStoreAndUpdates(t *testing.T) {
	backends(t, func(t *testing.T, url string) {
		ctx := context.Background()
		tenant := uniq("tenant")
		l := newFakeLoader()
		l.add(store.Drone{ID: "a", TenantID: tenant, Name: "Alpha", State: new(state(1, 10, 50))})
		l.add(store.Drone{ID: "b", TenantID: tenant, Name: "Bravo \"quoted\""}) // never reported
		l.add(store.Drone{ID: "x", TenantID: "other-" + tenant, Name: "Xray", State: new(state(1, 10, 50))})
		c := open(t, url, l)

		// An update arriving before the first read: the fill must keep it.
		if ok, err := c.Put(ctx, tenant, "a", state(5, 11, 51)); err != nil || !ok {
			t.Fatalf("put: applied=%v err=%v", ok, err)
		}
		f, err := c.Fleet(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		want := []cache.DroneView{
			{ID: "a", Name: "Alpha", State: new(state(5, 11, 51))},
			{ID: "b", Name: "Bravo \"quoted\""},
		}
		if diff := cmp.Diff(want, decodeList(t, f.JSON)); diff != "" {
			t.Errorf("fleet (-want +got):\n%s", diff)
		}
		// A drone that is not in the store but reported (registered after
		// the fill) shows up with an empty name.
		if _, err := c.Put(ctx, tenant, "c", state(6, 12, 52)); err != nil {
			t.Fatal(err)
		}
		f2, err := c.Fleet(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		if f2.Version <= f.Version {
			t.Errorf("version did not advance: %d -> %d", f.Version, f2.Version)
		}
		want = append(want, cache.DroneView{ID: "c", State: new(state(6, 12, 52))})
		if diff := cmp.Diff(want, decodeList(t, f2.JSON)); diff != "" {
			t.Errorf("fleet after put (-want +got):\n%s", diff)
		}
		// Detail and tenant isolation.
		b, err := c.Drone(ctx, tenant, "a")
		if err != nil {
			t.Fatal(err)
		}
		var got cache.DroneView
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want[0], got); diff != "" {
			t.Errorf("detail (-want +got):\n%s", diff)
		}
		if _, err := c.Drone(ctx, tenant, "x"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("other tenant's drone: err = %v, want store.ErrNotFound", err)
		}
		if l.dronesCalls.Load() != 1 {
			t.Errorf("store fleet reads = %d, want 1", l.dronesCalls.Load())
		}
	})
}

func TestDetailMissReadsStoreOnce(t *testing.T) {
	backends(t, func(t *testing.T, url string) {
		ctx := context.Background()
		tenant := uniq("tenant")
		l := newFakeLoader()
		l.add(store.Drone{ID: "a", TenantID: tenant, Name: "Alpha", State: new(state(1, 10, 50))})
		c := open(t, url, l)
		for range 3 {
			if _, err := c.Drone(ctx, tenant, "a"); err != nil {
				t.Fatal(err)
			}
		}
		if n := l.droneCalls.Load(); n != 1 {
			t.Errorf("store drone reads = %d, want 1", n)
		}
	})
}

func TestStaleStateNeverOverwrites(t *testing.T) {
	backends(t, func(t *testing.T, url string) {
		ctx := context.Background()
		tenant := uniq("tenant")
		c := open(t, url, newFakeLoader())
		if ok, err := c.Put(ctx, tenant, "d", state(10, 1, 1)); err != nil || !ok {
			t.Fatalf("first put: applied=%v err=%v", ok, err)
		}
		for _, sec := range []int{9, 10} { // older, then a replay
			if ok, err := c.Put(ctx, tenant, "d", state(sec, 2, 2)); err != nil || ok {
				t.Errorf("put ts+%ds over ts+10s: applied=%v err=%v, want not applied", sec, ok, err)
			}
		}
		// Many writers in random order: the newest state wins.
		secs := mrand.Perm(200)
		var wg sync.WaitGroup
		for _, s := range secs {
			wg.Go(func() {
				if _, err := c.Put(ctx, tenant, "d", state(100+s, float64(s%90), 1)); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		b, err := c.Drone(ctx, tenant, "d")
		if err != nil {
			t.Fatal(err)
		}
		var got cache.DroneView
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(new(state(299, float64(199%90), 1)), got.State); diff != "" {
			t.Errorf("state after concurrent puts (-want +got):\n%s", diff)
		}
		// The geo index moved with the state.
		f, err := c.FleetInBox(ctx, tenant, cache.BBox{MinLon: 18, MinLat: 0, MaxLon: 20, MaxLat: 2})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(decodeList(t, f.JSON)); n != 1 {
			t.Errorf("bbox around the newest position holds %d drones, want 1", n)
		}
	})
}

func TestStampedeMakesOneStoreRead(t *testing.T) {
	backends(t, func(t *testing.T, url string) {
		ctx := context.Background()
		tenant := uniq("tenant")
		l := newFakeLoader()
		l.delay = 50 * time.Millisecond // keep the fill in flight while the others arrive
		for i := range 100 {
			l.add(store.Drone{ID: fmt.Sprintf("d%03d", i), TenantID: tenant, State: new(state(i, 1, 1))})
		}
		c := open(t, url, l)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 100 {
			wg.Go(func() {
				<-start
				f, err := c.Fleet(ctx, tenant)
				if err != nil {
					t.Error(err)
					return
				}
				if n := len(decodeList(t, f.JSON)); n != 100 {
					t.Errorf("fleet has %d drones, want 100", n)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := l.dronesCalls.Load(); n != 1 {
			t.Errorf("store reads for 100 concurrent misses = %d, want 1", n)
		}
	})
}

func TestBBoxMatchesBruteForce(t *testing.T) {
	backends(t, func(t *testing.T, url string) {
		ctx := context.Background()
		tenant := uniq("tenant")
		c := open(t, url, newFakeLoader())
		rng := mrand.New(mrand.NewPCG(1, 2))
		type pt struct{ lon, lat float64 }
		pts := map[string]pt{}
		for i := range 500 {
			id := fmt.Sprintf("d%03d", i)
			p := pt{rng.Float64()*360 - 180, rng.Float64()*170 - 85}
			if i < 200 { // dense cluster so small boxes hit something
				p = pt{8 + rng.Float64(), 47 + rng.Float64()}
			}
			pts[id] = p
			if _, err := c.Put(ctx, tenant, id, state(1, p.lon, p.lat)); err != nil {
				t.Fatal(err)
			}
		}
		boxes := []cache.BBox{
			{MinLon: 8.2, MinLat: 47.1, MaxLon: 8.7, MaxLat: 47.6},
			{MinLon: -180, MinLat: -90, MaxLon: 180, MaxLat: 90},
			{MinLon: -10, MinLat: -60, MaxLon: 60, MaxLat: 10},
			{MinLon: 100, MinLat: 60, MaxLon: 179, MaxLat: 85},
			{MinLon: 0, MinLat: 0, MaxLon: 0, MaxLat: 0},
		}
		for _, b := range boxes {
			var want []string
			for id, p := range pts {
				if b.Contains(p.lon, p.lat) {
					want = append(want, id)
				}
			}
			sort.Strings(want)
			// The fleet was never loaded: the empty fake store fills it.
			f, err := c.FleetInBox(ctx, tenant, b)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range decodeList(t, f.JSON) {
				got = append(got, v.ID)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("bbox %+v (-want +got):\n%s", b, diff)
			}
		}
	})
}

func TestNoticesReachSubscribers(t *testing.T) {
	backends(t, func(t *testing.T, url string) {
		ctx := context.Background()
		tenant := uniq("tenant")
		writer := open(t, url, nil)
		reader := open(t, url, newFakeLoader()) // another replica (or function) on the same cache
		sub, err := reader.Subscribe(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		other, err := reader.Subscribe(ctx, "other-"+tenant)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		time.Sleep(100 * time.Millisecond) // Redis SUBSCRIBE is asynchronous
		if _, err := writer.Put(ctx, tenant, "d", state(1, 5, 6)); err != nil {
			t.Fatal(err)
		}
		if _, err := writer.Put(ctx, tenant, "d", state(0, 5, 6)); err != nil { // stale: no notice
			t.Fatal(err)
		}
		if _, err := writer.Put(ctx, tenant, "d", state(2, 5, 7)); err != nil {
			t.Fatal(err)
		}
		var got []cache.Notice
		for len(got) < 2 {
			select {
			case n := <-sub.C:
				got = append(got, n)
			case <-time.After(10 * time.Second):
				t.Fatalf("got %d notices, want 2", len(got))
			}
		}
		if got[0].DroneID != "d" || got[1].Version != got[0].Version+1 || got[0].TenantID != tenant {
			t.Errorf("notices = %+v", got)
		}
		var v cache.DroneView
		if err := json.Unmarshal(got[1].Drone, &v); err != nil || v.State == nil || v.State.Lat != 7 {
			t.Errorf("second notice drone = %s (%v)", got[1].Drone, err)
		}
		select {
		case n := <-other.C:
			t.Errorf("other tenant got a notice: %+v", n)
		case <-time.After(100 * time.Millisecond):
		}
	})
}

// A subscriber that falls further behind than its backend buffers loses
// notices, and the first notice after each gap says so (Lost), so its
// reader can refetch instead of going on from a fleet with stale drones;
// no other notice is marked. (One drone's puts move the version by one
// each, so a gap in versions is exactly the notices lost.)
func TestDroppedNoticesMarkTheNextLost(t *testing.T) {
	backends(t, func(t *testing.T, url string) {
		ctx := context.Background()
		tenant := uniq("tenant")
		c := open(t, url, nil)
		sub, err := c.Subscribe(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		time.Sleep(100 * time.Millisecond) // Redis SUBSCRIBE is asynchronous
		sec := 0
		put := func(n int) {
			t.Helper()
			for range n {
				sec++
				if _, err := c.Put(ctx, tenant, "d", state(sec, 5, 6)); err != nil {
					t.Fatal(err)
				}
			}
		}
		put(1)
		var first cache.Notice
		select {
		case first = <-sub.C:
		case <-time.After(10 * time.Second):
			t.Fatal("no notice")
		}
		const burst = 10_000 // more than the backends buffer (4,096; twice that for Redis)
		put(burst)
		prev, got, gaps := first.Version, 0, 0
		read := func(wait time.Duration) bool {
			select {
			case n := <-sub.C:
				gap := n.Version != prev+1
				if gap {
					gaps++
				}
				if n.Lost != gap {
					t.Fatalf("notice of version %d after %d: Lost %v", n.Version, prev, n.Lost)
				}
				prev = n.Version
				got++
				return true
			case <-time.After(wait):
				return false
			}
		}
		for read(time.Second) {
		}
		// The backends mark the notice after a drop, so the last gap may
		// only show with the next put.
		put(2)
		for read(2 * time.Second) {
		}
		if gaps == 0 || got >= burst+2 {
			t.Fatalf("%d notices with %d gaps for %d puts; the test needs some dropped", got, gaps, burst+2)
		}
		if want := first.Version + burst + 2; prev != want {
			t.Fatalf("last notice has version %d, want %d (the puts after the drop arrive)", prev, want)
		}
	})
}

func TestUnreachableRedisIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c := open(t, "redis://"+addr+"/0", newFakeLoader())
	ctx := context.Background()
	if _, err := c.Put(ctx, "t", "d", state(1, 1, 1)); !errors.Is(err, cache.ErrUnavailable) {
		t.Errorf("put: err = %v, want ErrUnavailable", err)
	}
	if _, err := c.Fleet(ctx, "t"); !errors.Is(err, cache.ErrUnavailable) {
		t.Errorf("fleet: err = %v, want ErrUnavailable", err)
	}
}

func TestParseBBox(t *testing.T) {
	for _, tc := range []struct {
		in    string
		want  cache.BBox
		valid bool
	}{
		{"8.1,47.2,8.9,47.7", cache.BBox{MinLon: 8.1, MinLat: 47.2, MaxLon: 8.9, MaxLat: 47.7}, true},
		{"-180,-90,180,90", cache.BBox{MinLon: -180, MinLat: -90, MaxLon: 180, MaxLat: 90}, true},
		{"1,2,3", cache.BBox{}, false},
		{"a,2,3,4", cache.BBox{}, false},
		{"170,0,-170,10", cache.BBox{}, false}, // antimeridian
		{"0,10,1,5", cache.BBox{}, false},
		{"0,-91,1,5", cache.BBox{}, false},
		{"NaN,0,1,1", cache.BBox{}, false},
	} {
		got, err := cache.ParseBBox(tc.in)
		if (err == nil) != tc.valid {
			t.Errorf("ParseBBox(%q) err = %v, want valid=%v", tc.in, err, tc.valid)
		}
		if tc.valid && got != tc.want {
			t.Errorf("ParseBBox(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestLocalSharedByName(t *testing.T) {
	ctx := context.Background()
	url := "local://" + uniq("shared")
	a := open(t, url, nil)
	b := open(t, url, newFakeLoader())
	if _, err := a.Put(ctx, "t", "d", state(1, 1, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Drone(ctx, "t", "d"); err != nil {
		t.Errorf("second Cache of the same name does not see the put: %v", err)
	}
}

// TestFleetFollowsManyChanges interleaves updates, new drones and reads so
// incremental list maintenance is checked against a plain model, across an
// Invalidate.
func TestFleetFollowsManyChanges(t *testing.T) {
	backends(t, func(t *testing.T, url string) {
		ctx := context.Background()
		tenant := uniq("tenant")
		l := newFakeLoader()
		for i := range 50 {
			l.add(store.Drone{ID: fmt.Sprintf("d%03d", i), TenantID: tenant, Name: fmt.Sprint(i), State: new(state(0, 1, 1))})
		}
		c := open(t, url, l)
		model := map[string]float64{} // id -> lon of its newest state
		newest := map[string]int{}    // id -> newest ts (seconds after t0)
		reset := func() {
			model, newest = map[string]float64{}, map[string]int{}
			for i := range 50 {
				model[fmt.Sprintf("d%03d", i)], newest[fmt.Sprintf("d%03d", i)] = 1, 0
			}
		}
		reset()
		rng := mrand.New(mrand.NewPCG(5, 6))
		check := func(step int) {
			t.Helper()
			f, err := c.Fleet(ctx, tenant)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{}
			for _, v := range decodeList(t, f.JSON) {
				if v.State != nil {
					got[v.ID] = v.State.Lon
				}
			}
			if diff := cmp.Diff(model, got); diff != "" {
				t.Fatalf("step %d: fleet (-want +got):\n%s", step, diff)
			}
		}
		check(0)
		for step := 1; step <= 300; step++ {
			n := 1 + rng.IntN(20)
			if step%50 == 0 {
				n = 100 // more than the incremental limit
			}
			for range n {
				id := fmt.Sprintf("d%03d", rng.IntN(70)) // some are new drones
				lon := float64(rng.IntN(170))
				sec := step*1000 + rng.IntN(999) // sometimes older than the last one
				if _, err := c.Put(ctx, tenant, id, state(sec, lon, 1)); err != nil {
					t.Fatal(err)
				}
				if cur, ok := newest[id]; !ok || sec > cur {
					model[id], newest[id] = lon, sec
				}
			}
			check(step)
			if step == 150 {
				if err := c.Invalidate(ctx, tenant); err != nil {
					t.Fatal(err)
				}
				// The store still has its old states; the fill takes them
				// where the cache forgot newer ones.
				reset()
				check(step)
			}
		}
	})
}

// A drone's rendered entry read after each put is that put's state, never
// an entry from before it (the local backend keeps one copy of the entry,
// which reads fall through to).
func TestDroneReadFollowsEachPut(t *testing.T) {
	backends(t, func(t *testing.T, url string) {
		ctx := context.Background()
		tenant := uniq("tenant")
		c := open(t, url, newFakeLoader())
		for sec := range 5 {
			if ok, err := c.Put(ctx, tenant, "d", state(sec, float64(sec), 1)); err != nil || !ok {
				t.Fatalf("put %d: applied=%v err=%v", sec, ok, err)
			}
			b, err := c.Drone(ctx, tenant, "d")
			if err != nil {
				t.Fatal(err)
			}
			var got cache.DroneView
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if got.State == nil || got.State.Lon != float64(sec) {
				t.Fatalf("after put %d: read %s", sec, b)
			}
		}
	})
}

// A full list superseded by a newer version leaves the LFU (nothing reads
// it again, and each is megabytes with thousands of drones), while readers
// polling during updates always get a list, never an error, and never one
// older than a list they already read.
func TestSupersededFleetListsAreDropped(t *testing.T) {
	backends(t, func(t *testing.T, url string) {
		ctx := context.Background()
		tenant := uniq("tenant")
		l := newFakeLoader()
		for i := range 20 {
			l.add(store.Drone{ID: fmt.Sprintf("d%03d", i), TenantID: tenant, Name: fmt.Sprint(i), State: new(state(0, 1, 1))})
		}
		c := open(t, url, l)
		var vers []uint64
		for step := 1; step <= 5; step++ {
			f, err := c.Fleet(ctx, tenant)
			if err != nil {
				t.Fatal(err)
			}
			vers = append(vers, f.Version)
			if _, err := c.Put(ctx, tenant, "d000", state(step*1000, float64(step), 1)); err != nil {
				t.Fatal(err)
			}
		}
		f, err := c.Fleet(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vers {
			if v != f.Version && cache.ListCached(c, tenant, v) {
				t.Errorf("superseded list version %d still cached (newest %d)", v, f.Version)
			}
		}

		// Readers and a writer at once.
		var wg sync.WaitGroup
		stop := make(chan struct{})
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				var last uint64
				for {
					select {
					case <-stop:
						return
					default:
					}
					f, err := c.Fleet(ctx, tenant)
					if err != nil {
						errs <- err
						return
					}
					if f.Version < last {
						errs <- fmt.Errorf("fleet went back from version %d to %d", last, f.Version)
						return
					}
					last = f.Version
					if len(decodeList(t, f.JSON)) != 20 {
						errs <- fmt.Errorf("version %d: list of %d drones", f.Version, len(decodeList(t, f.JSON)))
						return
					}
				}
			})
		}
		for i := range 300 {
			if _, err := c.Put(ctx, tenant, fmt.Sprintf("d%03d", i%20), state(10000+i, float64(i%170), 1)); err != nil {
				t.Fatal(err)
			}
		}
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}
