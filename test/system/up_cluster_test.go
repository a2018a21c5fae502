package system

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/cache"
	"github.com/dronetrack/dronetrack/core/store/storeurl"
	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/events"

	"github.com/dronetrack/dronetrack/cmd/dronetrack/cli"
	"github.com/dronetrack/dronetrack/infra/local"
)

// TestUpFirestoreRedis runs `dronetrack up --store firestore://PROJECT
// --cache redis://HOST:PORT/0` (the cluster's adapters: the Firestore
// emulator and a Redis of its own) through the command line, posts a report
// to ingest and finds it in the API, in the emulator (read with a client of
// its own) and in Redis. The admin commands reach that store too: through
// the running up, and after it stopped through the store the data dir
// recorded; and the data dir refuses to be paired with another store.
func TestUpFirestoreRedis(t *testing.T) {
	testenv.Firestore(t) // sets FIRESTORE_EMULATOR_HOST for the functions' clients
	project := testenv.NewProjectID(t)
	redisAddr, _ := testenv.StartRedis(t)
	storeURL, cacheURL := "firestore://"+project, "redis://"+redisAddr+"/0"
	dir := t.TempDir()

	ctx, cancel := context.WithCancel(context.Background())
	out, logs := &testenv.LogBuffer{}, &testenv.LogBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- cli.Run(ctx, []string{"up", "--data", dir, "--http", "127.0.0.1:0", "--store", storeURL,
			"--cache", cacheURL, "--link-check", "1h"}, out, logs)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("up: %v", err)
		}
	}
	defer func() {
		stop()
		if t.Failed() {
			t.Logf("up output:\n%s\nlogs:\n%s", out.String(), logs.String())
		}
	}()
	base := waitForUp(t, out, done)
	if want := "store " + storeURL + ", cache " + cacheURL; !strings.Contains(out.String(), want) {
		t.Errorf("up does not say %q:\n%s", want, out.String())
	}

	demo, err := local.ReadDemoKeys(filepath.Join(dir, local.DemoKeysFile))
	if err != nil || len(demo) == 0 {
		t.Fatalf("demo keys: %d, %v", len(demo), err)
	}
	drone := demo[0]
	ts := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
	body := fmt.Sprintf(`{"ts":%q,"lat":47.3769,"lon":8.5417,"alt":120,"battery":88}`, ts.Format(time.RFC3339))
	mustPostReport(t, base, drone.Key, body)

	// The API (serve-map, reading Redis) shows the report as the state.
	var login local.DemoLogin
	if raw, err := os.ReadFile(filepath.Join(dir, local.DemoLoginFile)); err != nil || json.Unmarshal(raw, &login) != nil {
		t.Fatalf("demo login: %v", err)
	}
	api, _ := loginClient(t, base, login.Email, login.Password)
	var view struct {
		State events.DroneState `json:"state"`
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := api.Get(base + "/api/v1/drones/" + drone.DroneID)
		if err != nil {
			t.Fatal(err)
		}
		_ = json.NewDecoder(resp.Body).Decode(&view)
		resp.Body.Close()
		if view.State.TS.Equal(ts) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !view.State.TS.Equal(ts) || view.State.Lat != 47.3769 {
		t.Fatalf("API shows state %+v, want the report of %s", view.State, ts)
	}

	// The emulator holds it, read by a client of our own.
	st, err := storeurl.Open(context.Background(), storeURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if pts := readTrack(t, st, drone.TenantID, drone.DroneID); len(pts) != 1 || !pts[0].Report.TS.Equal(ts) {
		t.Errorf("Firestore history of %s: %+v, want the one report", drone.DroneID, pts)
	}
	// Redis holds it, read without a store behind the cache (no read-through).
	rc, err := cache.Open(context.Background(), cacheURL, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got := cachedTS(context.Background(), rc, drone.TenantID, drone.DroneID); !got.Equal(ts) {
		t.Errorf("Redis has state %s for %s, want %s", got, drone.DroneID, ts)
	}

	// Admin commands: through the running up, then (stopped) through the
	// store the data dir recorded; both drones land in Firestore.
	adminAdd := func(name string) string {
		t.Helper()
		var o bytes.Buffer
		if err := cli.Run(context.Background(), []string{"drone", "add", "--data", dir, "--tenant", local.DemoTenantID, "--name", name}, &o, io.Discard); err != nil {
			t.Fatalf("drone add %s: %v", name, err)
		}
		m := regexp.MustCompile(`drone (\S+) \(`).FindStringSubmatch(o.String())
		if m == nil {
			t.Fatalf("drone add %s printed %q", name, o.String())
		}
		return m[1]
	}
	viaUp := adminAdd("via-up")
	stop()
	viaStore := adminAdd("via-recorded-store")
	for _, id := range []string{viaUp, viaStore} {
		if _, err := st.Drone(context.Background(), local.DemoTenantID, id); err != nil {
			t.Errorf("drone %s added by the admin command is not in Firestore: %v", id, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, local.StoreFile)); err == nil {
		t.Errorf("a bolt file appeared in the data dir of a Firestore up")
	}

	// The data dir's keys and login are that project's: up with its
	// default store refuses it.
	err = cli.Run(context.Background(), []string{"up", "--data", dir, "--http", "127.0.0.1:0"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), storeURL) {
		t.Errorf("up with another store on this data dir: %v, want a refusal naming %s", err, storeURL)
	}
	// A store URL that does not open leaves a fresh data dir unbound.
	fresh := t.TempDir()
	if err := cli.Run(context.Background(), []string{"up", "--data", fresh, "--http", "127.0.0.1:0", "--store", "firestor://typo"}, io.Discard, io.Discard); err == nil {
		t.Error("up with an invalid store URL started")
	}
	if rec, err := local.RecordedStore(fresh); rec != "" || err != nil {
		t.Errorf("an invalid store URL was recorded for the data dir: %q, %v", rec, err)
	}
}

// waitForUp waits until a running `up` printed its URL and returns it.
// An up that ended is put back on done for the caller's cleanup.
func waitForUp(t *testing.T, out *testenv.LogBuffer, done chan error) string {
	t.Helper()
	re := regexp.MustCompile(`Dronetrack is up: open (http://\S+)`)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("up ended before serving: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("up did not print its URL within 60 s")
		}
	}
}
