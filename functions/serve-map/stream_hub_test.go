package function

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/cache"
)

// A stream that falls behind is not dropped (a dropped browser waits the
// stream's retry time before it reconnects): it takes everything it missed
// from the ring on its next write; only a client further behind than the
// ring reaches is told to resync, and it goes on from the newest notice.
func TestHubSlowClientCatchesUp(t *testing.T) {
	ctx := context.Background()
	c, err := cache.Open(ctx, "local://"+uniq("hub"), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const ring = 1000
	h := newHub(c, slog.New(slog.NewTextHandler(io.Discard, nil)), ring, func(float64) {})
	defer h.close()
	th, err := h.tenant(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	cl, replay, resync := th.join(0, false)
	defer th.leave(cl)
	if len(replay) != 0 || resync {
		t.Fatalf("a new client got replay %d, resync %v", len(replay), resync)
	}
	// put writes n states in chunks the hub keeps up with (a subscription
	// drops notices its reader is too slow for; that case is
	// TestHubLostNoticesResync), and returns the newest version.
	put := func(n, from int) uint64 {
		t.Helper()
		var v uint64
		for done := 0; done < n; {
			chunk := min(100, n-done)
			for i := range chunk {
				if _, err := c.Put(ctx, "t1", "d1", state(from+done+i, 8.5, 47.4)); err != nil {
					t.Fatal(err)
				}
			}
			done += chunk
			if v, err = c.Version(ctx, "t1"); err != nil {
				t.Fatal(err)
			}
			// The hub reads the notices asynchronously.
			deadline := time.Now().Add(10 * time.Second)
			for {
				th.mu.Lock()
				got := th.newest()
				th.mu.Unlock()
				if got >= v {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("hub at version %d, cache at %d", got, v)
				}
				time.Sleep(time.Millisecond)
			}
		}
		return v
	}

	// 200 notices while the client writes nothing: more than a per-client
	// queue of 64 held, fewer than the ring (and than the subscription's
	// buffer, so none is dropped before the hub).
	v := put(200, 1)
	select {
	case <-cl.wake:
	default:
		t.Fatal("the client was not woken")
	}
	got, resync := th.next(cl, nil)
	if resync || len(got) != 200 {
		t.Fatalf("slow client took %d notices, resync %v; want all 200", len(got), resync)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Version <= got[i-1].Version {
			t.Fatalf("notices out of order at %d: %d after %d", i, got[i].Version, got[i-1].Version)
		}
	}
	if got[len(got)-1].Version != v {
		t.Fatalf("last notice %d, want version %d", got[len(got)-1].Version, v)
	}
	if more, _ := th.next(cl, nil); len(more) != 0 {
		t.Fatalf("%d notices taken twice", len(more))
	}

	// Further behind than the ring: a resync, then the stream goes on.
	put(2*ring, 1000)
	if got, resync := th.next(cl, nil); !resync || len(got) != 0 {
		t.Fatalf("client behind the ring: resync %v with %d notices, want a resync alone", resync, len(got))
	}
	v = put(3, 5000)
	got, resync = th.next(cl, nil)
	if resync || len(got) != 3 || got[2].Version != v {
		t.Fatalf("after the resync: %d notices (resync %v), want the 3 new ones up to %d", len(got), resync, v)
	}

	// The ring keeps at least its size for resuming clients.
	th.mu.Lock()
	n := len(th.ring)
	th.mu.Unlock()
	if n < ring || n > ring+ring/4 {
		t.Errorf("ring holds %d notices, want %d to %d", n, ring, ring+ring/4)
	}
}

// Notices the cache's subscription drops while the hub is behind (a burst
// of states larger than its buffer) are not silently skipped: the next
// notice is marked Lost and every client behind it gets a resync (refetch
// the fleet), then goes on from the new notices.
func TestHubLostNoticesResync(t *testing.T) {
	ctx := context.Background()
	c, err := cache.Open(ctx, "local://"+uniq("hub"), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := newHub(c, slog.New(slog.NewTextHandler(io.Discard, nil)), 100_000, func(float64) {})
	defer h.close()
	th, err := h.tenant(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	cl, _, _ := th.join(0, false)
	defer th.leave(cl)
	sec := 0
	put := func(n int) uint64 {
		t.Helper()
		for range n {
			sec++
			if _, err := c.Put(ctx, "t1", "d1", state(sec, 8.5, 47.4)); err != nil {
				t.Fatal(err)
			}
		}
		v, err := c.Version(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// waitHub waits until the hub has read every notice it will get: its
	// newest is v, or it stopped moving.
	waitHub := func(v uint64) uint64 {
		t.Helper()
		last, still := uint64(0), 0
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			th.mu.Lock()
			got := th.newest()
			th.mu.Unlock()
			if got >= v {
				return got
			}
			if got == last {
				if still++; still > 40 {
					return got
				}
			} else {
				last, still = got, 0
			}
		}
		t.Fatalf("hub stuck below version %d", v)
		return 0
	}

	waitHub(put(10))
	if got, resync := th.next(cl, nil); len(got) != 10 || resync {
		t.Fatalf("before the burst: %d notices, resync %v; want 10, false", len(got), resync)
	}

	// The hub's reader is held (it takes the tenant's lock per notice)
	// while more states are written than the subscription buffers.
	th.mu.Lock()
	burst := put(10_000)
	th.mu.Unlock()
	if got := waitHub(burst); got >= burst {
		t.Fatalf("the hub read all %d notices of the burst; the test needs some dropped", burst)
	}
	after := put(1) // the first notice after the drop: marked Lost
	waitHub(after)
	if got, resync := th.next(cl, nil); !resync {
		t.Fatalf("after lost notices the client got %d notices and no resync", len(got))
	}
	next := put(1)
	waitHub(next)
	got, resync := th.next(cl, nil)
	if resync || len(got) != 1 || got[0].Version != next {
		t.Fatalf("after the resync: %d notices (resync %v), want the one of version %d", len(got), resync, next)
	}
}
