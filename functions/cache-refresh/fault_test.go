package function

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/testenv"
)

// Redis is stopped under traffic and comes back empty on the same address.
// cache-refresh answers 503 while it is down (never a false 204), the
// "broker" below redelivers each event until it is taken, and at the end
// every drone's cached state is the newest one sent: the adapter reconnects
// by itself and nothing is stuck.
func TestFaultRedisRestart(t *testing.T) {
	addr, stop := testenv.StartRedis(t)
	url := "redis://" + addr + "/0"
	srv := start(t, url)

	const drones, perDrone = 20, 60
	var mu sync.Mutex
	var unavailable, other int
	var wg sync.WaitGroup
	for d := range drones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			drone := fmt.Sprintf("d%02d", d)
			for i := 1; i <= perDrone; i++ {
				e := stateEvent(t, "fault", drone, i, float64(i)/1000)
				for attempt := 0; ; attempt++ { // the broker's retry loop
					code := send(t, srv.URL, e)
					if code == http.StatusNoContent {
						break
					}
					mu.Lock()
					if code == http.StatusServiceUnavailable {
						unavailable++
					} else {
						other++
					}
					mu.Unlock()
					if code != http.StatusServiceUnavailable || attempt > 2000 {
						t.Errorf("%s event %d: status %d after %d attempts", drone, i, code, attempt+1)
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	stop()
	time.Sleep(time.Second)
	testenv.RestartRedis(t, addr)
	wg.Wait()

	t.Logf("503 answers while Redis was down: %d; other errors: %d", unavailable, other)
	if unavailable == 0 {
		t.Error("no 503 seen: Redis was not down under traffic")
	}
	for d := range drones {
		drone := fmt.Sprintf("d%02d", d)
		if got, want := cachedLat(t, url, "fault", drone), float64(perDrone)/1000; got != want {
			t.Errorf("%s: cached lat %g, want the newest %g", drone, got, want)
		}
	}
}

// Redis hangs (SIGSTOP: connections open, no answer): a delivery gets 503
// with Retry-After, so the broker redelivers, rather than waiting as long
// as Redis does. cache-refresh needs no deadline of its own for this: the
// cache's Redis client bounds every command (core/cache: 300 ms dial, 2 s
// read and write, one retry) and then fails fast for a moment. After the
// thaw the redelivered event is taken.
func TestFaultRedisFrozenAnswers503(t *testing.T) {
	addr, _ := testenv.StartRedis(t)
	url := "redis://" + addr + "/0"
	srv := start(t, url)
	if code := send(t, srv.URL, stateEvent(t, "frozen", "d1", 1, 0.001)); code != http.StatusNoContent {
		t.Fatalf("event 1 with Redis up: %d, want 204", code)
	}
	thaw := testenv.FreezeRedis(t, addr)
	e2 := stateEvent(t, "frozen", "d1", 2, 0.002)
	// The client waits as long as it takes: the test sees what
	// cache-refresh answered, never a client-side timeout.
	resp := testenv.PostEvent(t, srv.URL, e2)
	thaw()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("event 2 with Redis frozen: %d, Retry-After %q; want 503 with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	for attempt := 0; ; attempt++ { // the broker's redelivery
		code := send(t, srv.URL, e2)
		if code == http.StatusNoContent {
			break
		}
		if code != http.StatusServiceUnavailable || attempt > 500 {
			t.Fatalf("event 2 after the thaw: %d after %d attempts", code, attempt+1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := cachedLat(t, url, "frozen", "d1"); got != 0.002 {
		t.Errorf("cached lat %g, want event 2's 0.002", got)
	}
}
