package bridge_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/bridge"
)

// TestBridgeCrashChild is the bridge process TestBridgeKillMidStream kills;
// it does nothing unless started by that test. It prints READY once its UDP
// socket is bound, then "SPOOLED n" as positions are committed to the spool.
func TestBridgeCrashChild(t *testing.T) {
	dir := os.Getenv("BRIDGE_CRASH_DIR")
	if dir == "" {
		return
	}
	b, err := bridge.New(bridge.Config{
		UDPAddr: os.Getenv("BRIDGE_CRASH_UDP"), IngestURL: os.Getenv("BRIDGE_CRASH_INGEST"), Key: testKey, DataDir: dir,
		BatchSize: 20, FlushInterval: 50 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	go b.Run(context.Background())
	fmt.Println("READY")
	for last := int64(-1); ; time.Sleep(2 * time.Millisecond) {
		if n := b.Stats().Positions; n != last {
			fmt.Println("SPOOLED", n)
			last = n
		}
	}
}

// TestBridgeKillMidStream: a bridge process is SIGKILLed while positions
// stream in and its uplink flaps; a bridge restarted on the same spool
// delivers every position the dead one had committed, in order. (A batch
// ingest took just before the kill may arrive twice: harmless downstream,
// which deduplicates by (drone, ts).)
func TestBridgeKillMidStream(t *testing.T) {
	ing := newIngestStandIn(t)
	stopFlap := make(chan struct{})
	flapDone := make(chan struct{})
	go func() { // the uplink flaps: 150 ms up, 150 ms down
		defer close(flapDone)
		for down := false; ; down = !down {
			ing.setDown(down)
			select {
			case <-stopFlap:
				ing.setDown(false)
				return
			case <-time.After(150 * time.Millisecond):
			}
		}
	}()
	dir, udp := t.TempDir(), freeUDPAddr(t)
	cmd := exec.Command(os.Args[0], "-test.run", "^TestBridgeCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "BRIDGE_CRASH_DIR="+dir, "BRIDGE_CRASH_UDP="+udp, "BRIDGE_CRASH_INGEST="+ing.url())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var spooled atomic.Int64
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "READY":
				close(ready)
			case strings.HasPrefix(line, "SPOOLED "):
				n, _ := strconv.ParseInt(strings.TrimPrefix(line, "SPOOLED "), 10, 64)
				spooled.Store(n)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		t.Fatal("child bridge never became ready")
	}

	v := newSender(t, udp)
	for spooled.Load() < 300 {
		v.send(t, 10, 3*time.Millisecond)
		if v.n > 5000 {
			t.Fatalf("sent %d positions, child spooled only %d", v.n, spooled.Load())
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no shutdown path runs
		t.Fatal(err)
	}
	_ = cmd.Wait()
	time.Sleep(50 * time.Millisecond) // let the reader see the last lines the child wrote
	committed := int(spooled.Load())
	close(stopFlap)
	<-flapDone
	before := len(ing.got())

	b, _ := runBridge(t, bridge.Config{UDPAddr: freeUDPAddr(t), IngestURL: ing.url(), Key: testKey, DataDir: dir,
		BatchSize: 50, FlushInterval: 50 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	waitFor(t, "an empty spool after the restart", func() bool { n, err := b.Pending(); return err == nil && n == 0 })

	got := ing.got()
	seen := map[int]bool{}
	last, dups := -1, 0
	for _, r := range got {
		i := index(r)
		if seen[i] {
			dups++
			continue
		}
		if i < last {
			t.Fatalf("position %d arrived after %d: out of order", i, last)
		}
		seen[i], last = true, i
	}
	if len(seen) < committed {
		t.Fatalf("%d distinct positions delivered, but the killed bridge had committed %d", len(seen), committed)
	}
	t.Logf("killed after %d committed (%d delivered before the kill); %d distinct delivered after restart, %d duplicates",
		committed, before, len(seen), dups)
}
