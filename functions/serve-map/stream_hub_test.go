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
	// TestHubVersionGapResyncs), and returns the newest version.
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

// Notices the subscription dropped (its reader fell behind) show as a
// version gap: no client can be given them, so every client that was
// before the gap resyncs, and a client resuming after it replays from the
// ring.
func TestHubVersionGapResyncs(t *testing.T) {
	ch := make(chan cache.Notice)
	th := &tenantHub{clients: map[*sseClient]struct{}{}, sub: &cache.Subscription{C: ch}, since: 10, known: true}
	done := make(chan struct{})
	go func() { th.run(100); close(done) }()
	notice := func(v uint64) cache.Notice {
		return cache.Notice{TenantID: "t1", Version: v, DroneID: "d1", Drone: []byte("{}")}
	}
	ch <- notice(11)
	ch <- notice(12)
	ch <- notice(13) // the channel is unbuffered: 12 is in the ring now
	behind, _, _ := th.join(11, true)
	ch <- notice(16) // 14 and 15 were dropped
	ch <- notice(17)
	close(ch)
	<-done
	if got, resync := th.next(behind, nil); !resync || len(got) != 0 {
		t.Errorf("client from before the gap: %d notices, resync %v; want a resync", len(got), resync)
	}
	if got, _ := th.next(behind, nil); len(got) != 0 {
		t.Errorf("after its resync the client is at the newest notice, got %d more", len(got))
	}
	if _, _, resync := th.join(14, true); !resync {
		t.Error("resuming inside the gap: want a resync")
	}
	_, replay, resync := th.join(16, true)
	if resync || len(replay) != 1 || replay[0].Version != 17 {
		t.Errorf("resuming after the gap: replay %v, resync %v; want 17", replay, resync)
	}
}
