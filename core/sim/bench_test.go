package sim

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchServerEnv makes the test binary a trivial ingest (every request
// answered 202 with ingest's body) instead of running tests: the sender
// benchmark runs it as a process of its own, so the benchmark's CPU time
// is the client side's alone.
const benchServerEnv = "DRONETRACK_SIM_BENCH_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(benchServerEnv) != "" {
		benchServer()
		return
	}
	os.Exit(m.Run())
}

func benchServer() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("listen:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	body := []byte(`{"accepted":1,"eventId":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}` + "\n")
	ct := []string{"application/json"}
	_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header()["Content-Type"] = ct
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write(body)
	}))
}

// BenchmarkSender is the generator's cost per request: b.N reports, one per
// request, from DRONETRACK_SIM_BENCH_DRONES drones (default 5,000) at
// DRONETRACK_SIM_BENCH_RATE reports/s in total (default 5,000) against a
// trivial server in another process. cpu-us/req is this process's user +
// system CPU time per request (pacing, encoding, the HTTP client, GC).
// DRONETRACK_SIM_BENCH_TICK_US sets Config.Tick.
//
//	go test -run '^$' -bench Sender -benchtime 40000x ./core/sim
func BenchmarkSender(b *testing.B) {
	drones, rate := envInt(b, "DRONETRACK_SIM_BENCH_DRONES", 5000), envInt(b, "DRONETRACK_SIM_BENCH_RATE", 5000)
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	srv := exec.Command(exe)
	srv.Env = append(os.Environ(), benchServerEnv+"=1")
	out, err := srv.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	ks := make([]string, drones)
	for i := range ks {
		ks[i] = fmt.Sprintf("dtk_bench_%06d_0123456789abcdef0123456789", i)
	}
	cfg := Config{
		URL: "http://" + strings.TrimSpace(addr), Keys: ks, Rate: float64(rate) / float64(drones),
		Tick:  time.Duration(envInt(b, "DRONETRACK_SIM_BENCH_TICK_US", 0)) * time.Microsecond,
		Count: b.N, Seed: 1,
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	s, err := Run(context.Background(), cfg)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if s.Acked != b.N || s.Requests != b.N {
		b.Fatalf("acked %d in %d requests, want %d", s.Acked, s.Requests, b.N)
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(s.Requests), "cpu-us/req")
	b.ReportMetric(float64(s.Acked)/s.Elapsed.Seconds(), "acked/s")
	b.ReportMetric(0, "ns/op")
}

func envInt(b *testing.B, name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a positive integer", name, v)
		}
		return n
	}
	return def
}

// cpuTime is this process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
