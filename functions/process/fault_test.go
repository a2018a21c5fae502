package function

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/storeurl"
)

const emulatorJar = "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"

// privateFirestore starts a Firestore emulator for this test alone (so it
// can be frozen without touching other tests) and returns its address and
// the java process.
func privateFirestore(t *testing.T) (string, *os.Process) {
	t.Helper()
	if _, err := os.Stat(emulatorJar); err != nil {
		t.Fatalf("Firestore emulator jar missing: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()
	cmd := exec.Command("java", "-cp", emulatorJar, "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
		"--host", "127.0.0.1", "--port", port)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Firestore emulator: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGCONT)
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr, cmd.Process
			}
		}
		if i > 240 {
			t.Fatalf("private Firestore emulator at %s not ready after 60 s", addr)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// The Firestore emulator freezes (SIGSTOP: a partition, data kept) under
// traffic and thaws: process answers 503 or waits, the "broker" below
// redelivers until 2xx, and in the end every report is stored exactly once
// and each drone's state is its newest report.
func TestFaultFirestoreOutage(t *testing.T) {
	addr, proc := privateFirestore(t)
	t.Setenv("FIRESTORE_EMULATOR_HOST", addr)
	ctx := context.Background()
	st, err := storeurl.Open(ctx, "firestore://fault-"+fmt.Sprint(time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	const drones, perDrone = 5, 40
	if err := st.CreateTenant(ctx, store.Tenant{ID: "t1", Name: "T1"}); err != nil {
		t.Fatal(err)
	}
	for d := range drones {
		id := fmt.Sprintf("d%d", d)
		if err := st.CreateDrone(ctx, store.Drone{ID: id, TenantID: "t1", Name: id, KeyHash: "h-" + id}); err != nil {
			t.Fatal(err)
		}
	}
	h := NewHandler(st, Options{StateInterval: 20 * time.Millisecond})
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); h.Close() })
	e := &env{h: h, srv: srv} // post only; the store is the Firestore one

	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for d := range drones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			drone := fmt.Sprintf("d%d", d)
			for i := 1; i <= perDrone; i++ {
				data := received(drone, rep(i, 47+float64(i)/1000, 8.5, 80))
				for attempt := 0; ; attempt++ { // the broker's retry loop
					resp, _ := e.post(t, data)
					mu.Lock()
					codes[resp.StatusCode]++
					mu.Unlock()
					if resp.StatusCode/100 == 2 {
						break
					}
					if resp.StatusCode != http.StatusServiceUnavailable || attempt > 500 {
						t.Errorf("%s report %d: status %d after %d attempts", drone, i, resp.StatusCode, attempt+1)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	if err := syscall.Kill(-proc.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := syscall.Kill(-proc.Pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	h.Close() // flush coalesced state
	t.Logf("answers by status: %v", codes)

	for d := range drones {
		drone := fmt.Sprintf("d%d", d)
		pts, err := st.Track(ctx, store.TrackQuery{TenantID: "t1", DroneID: drone})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[time.Time]int{}
		for _, p := range pts {
			seen[p.Report.TS.UTC()]++
		}
		for i := 1; i <= perDrone; i++ {
			ts := base.Add(time.Duration(i) * time.Second).UTC()
			if seen[ts] != 1 {
				t.Errorf("%s report %d stored %d times, want once", drone, i, seen[ts])
			}
		}
		dr, err := st.Drone(ctx, "t1", drone)
		if err != nil || dr.State == nil || !dr.State.TS.Equal(base.Add(perDrone*time.Second)) {
			t.Errorf("%s: state %+v, %v; want the newest report", drone, dr.State, err)
		}
	}
}
