package broker

import (
	"bufio"
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

const slowRetry = `  delivery:
    retry: 10000
    backoffPolicy: linear
    backoffDelay: PT0.01S`

// TestCrashChild is the broker process TestKillMidStream kills; it does
// nothing unless started by that test.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("BROKER_CRASH_DIR")
	if dir == "" {
		return
	}
	b, err := Open(context.Background(), Config{
		DataDir:           dir,
		Files:             []string{os.Getenv("BROKER_CRASH_MANIFEST")},
		Resolve:           resolver(map[string]string{"sub": os.Getenv("BROKER_CRASH_SUB")}),
		Logger:            testLogger(t),
		SubscriberTimeout: 500 * time.Millisecond,
		AckWait:           time.Second,
	})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	fmt.Printf("ADDR http://%s\n", ln.Addr())
	_ = http.Serve(ln, b.Ingress())
}

// TestKillMidStream: a broker process is SIGKILLed while senders publish
// and its subscriber fails half the deliveries; a broker reopened on the
// same data dir delivers every event the dead one had accepted (202).
func TestKillMidStream(t *testing.T) {
	var mu sync.Mutex
	healthy := false
	sub := newSink(t, func(e event.Event, _ int, w http.ResponseWriter) {
		mu.Lock()
		h := healthy
		mu.Unlock()
		f := fnv.New32a()
		f.Write([]byte(e.ID()))
		if !h && f.Sum32()%2 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	dir := t.TempDir()
	manifest := writeManifest(t, triggerYAML("t", "test.a", "sub", slowRetry))

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "BROKER_CRASH_DIR="+dir, "BROKER_CRASH_MANIFEST="+manifest, "BROKER_CRASH_SUB="+sub.srv.URL)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var addr string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
			addr = a
			break
		}
		if strings.HasPrefix(sc.Text(), "ERR") {
			t.Fatalf("child broker: %s", sc.Text())
		}
	}
	if addr == "" {
		t.Fatal("child broker printed no address")
	}
	go func() {
		for sc.Scan() {
		}
	}()

	const killAfter = 400
	var (
		amu      sync.Mutex
		accepted = map[string]bool{}
		killOnce sync.Once
		wg       sync.WaitGroup
	)
	kill := func() { killOnce.Do(func() { _ = cmd.Process.Kill() }) }
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("k%d-%d", g, i)
				code, err := send(addr, newEvent(id, "test.a"))
				if err != nil || code != http.StatusAccepted {
					return // the broker is gone
				}
				amu.Lock()
				accepted[id] = true
				n := len(accepted)
				amu.Unlock()
				if n >= killAfter {
					kill()
				}
			}
		}()
	}
	wg.Wait()
	_ = cmd.Wait()
	before := len(sub.delivered())
	t.Logf("accepted %d events before the kill; %d delivered by then", len(accepted), before)

	mu.Lock()
	healthy = true
	mu.Unlock()
	openBroker(t, Config{
		DataDir:           dir,
		Files:             []string{manifest},
		Resolve:           resolver(map[string]string{"sub": sub.srv.URL}),
		SubscriberTimeout: 500 * time.Millisecond,
		AckWait:           time.Second,
	})
	eventually(t, "every accepted event delivered after restart", func() bool {
		d := sub.delivered()
		for id := range accepted {
			if d[id] == 0 {
				return false
			}
		}
		return true
	})
	dups := 0
	for _, n := range sub.delivered() {
		if n > 1 {
			dups++
		}
	}
	t.Logf("all %d accepted events delivered; %d delivered more than once (at-least-once)", len(accepted), dups)
}
