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
