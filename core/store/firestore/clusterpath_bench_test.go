package firestore

import (
	"context"
	"fmt"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/flights"
	"github.com/dronetrack/dronetrack/core/flights/flightupdate"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/telemetry"
	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/events"
)

// rpcCounter counts a client's Firestore RPCs by method and the documents
// its commits write by collection.
type rpcCounter struct {
	mu     sync.Mutex
	rpcs   map[string]int
	writes map[string]int
}

func newRPCCounter() *rpcCounter {
	return &rpcCounter{rpcs: map[string]int{}, writes: map[string]int{}}
}

// emulatorCreds is the emulator's owner credential, as the client sends it.
type emulatorCreds struct{}

func (emulatorCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}
func (emulatorCreds) RequireTransportSecurity() bool { return false }

// options dial the emulator at host with the counting interceptors (the
// client ignores dial options when it dials the emulator itself).
func (c *rpcCounter) options(tb testing.TB, host string) []option.ClientOption {
	conn, err := grpc.NewClient(host, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(emulatorCreds{}),
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any,
			cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			c.count(method, req)
			return invoker(ctx, method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc,
			cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			c.count(method, nil)
			return streamer(ctx, desc, cc, method, opts...)
		}))
	if err != nil {
		tb.Fatal(err)
	}
	return []option.ClientOption{option.WithGRPCConn(conn)}
}

func (c *rpcCounter) count(method string, req any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rpcs[path.Base(method)]++
	if cr, ok := req.(*firestorepb.CommitRequest); ok {
		for _, w := range cr.Writes {
			name := w.GetUpdate().GetName()
			if name == "" {
				name = w.GetDelete()
			}
			parts := strings.Split(name, "/")
			if len(parts) >= 2 {
				c.writes[parts[len(parts)-2]]++
			}
		}
	}
}

func (c *rpcCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.rpcs)
	clear(c.writes)
}

// descendantsCPU is the user+system CPU time of this process's descendants
// (the emulator's java process).
func descendantsCPU(tb testing.TB) time.Duration {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		tb.Fatal(err)
	}
	type proc struct {
		ppid int
		cpu  int64
	}
	procs := map[int]proc{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(raw)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		procs[pid] = proc{ppid, ut + st}
	}
	me := os.Getpid()
	var ticks int64
	for pid, p := range procs {
		for q, hops := p.ppid, 0; q > 1 && hops < 10; q, hops = procs[q].ppid, hops+1 {
			if q == me {
				ticks += p.cpu
				break
			}
		}
		_ = pid
	}
	return time.Duration(ticks) * (time.Second / 100) // USER_HZ
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkClusterPath is the store's share of the cluster path at
// TestFaultSoakCluster's shape: 100 drones, each sending 10 reports per
// event, every drone one event per round. Per event it does what process
// and alerts do: the history points (group-committed, up to 500 a call),
// the state and flights (one transaction when the store is a
// store.DroneWriter, else UpdateState then flightupdate.Update), then the
// alert evaluation. It reports Firestore RPCs and document writes per
// report by kind, and the CPU of the emulator and of this process per
// report. Run with -benchtime=Nx (N rounds of 1,000 reports).
func BenchmarkClusterPath(b *testing.B) {
	const drones, perEvent = 100, 10
	em := testenv.StartFirestore(b, "cluster-path")
	b.Setenv("FIRESTORE_EMULATOR_HOST", em.Host())
	ctx := context.Background()
	ctr := newRPCCounter()
	s, err := openWith(ctx, "cluster-path", "", ctr.options(b, em.Host())...)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateTenant(ctx, store.Tenant{ID: "t"}); err != nil {
		b.Fatal(err)
	}
	for d := range drones {
		id := fmt.Sprint("d", d)
		if err := s.CreateDrone(ctx, store.Drone{ID: id, TenantID: "t", KeyHash: "h" + id}); err != nil {
			b.Fatal(err)
		}
	}
	fs := flights.DefaultSettings()
	as := alerting.DefaultSettings()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	armed, h, v, batt, alt := true, 40.0, 8.0, 80.0, 520.0
	phaseCPU := map[string]time.Duration{}
	round := func(r int) {
		evs := make([][]events.Report, drones)
		var pts []store.TrackPoint
		for d := range drones {
			for i := range perEvent {
				n := r*perEvent + i
				rep := events.Report{TS: t0.Add(time.Duration(n) * 200 * time.Millisecond), Lat: 47 + float64(n)*1e-5,
					Lon: 8 + float64(d)*1e-3, Armed: &armed, Height: &h, Speed: &v, Battery: &batt, Alt: &alt}
				evs[d] = append(evs[d], rep)
				pts = append(pts, store.TrackPoint{TenantID: "t", DroneID: fmt.Sprint("d", d), Report: rep,
					ExpireAt: rep.TS.Add(24 * time.Hour)})
			}
		}
		dw, together := store.Store(s).(store.DroneWriter)
		if !together {
			t0 := descendantsCPU(b)
			var wg sync.WaitGroup
			for i := 0; i < len(pts); i += 500 {
				wg.Go(func() {
					if err := s.AppendTrack(ctx, pts[i:min(i+500, len(pts))]); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
			phaseCPU["history"] += descendantsCPU(b) - t0
		}
		// Each phase runs over every drone before the next, so the
		// emulator's CPU can be told apart by phase.
		each := func(phase string, f func(d int) error) {
			t0 := descendantsCPU(b)
			sem := make(chan struct{}, 16)
			var wg sync.WaitGroup
			for d := range drones {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					if err := f(d); err != nil {
						b.Errorf("%s of d%d: %v", phase, d, err)
					}
				})
			}
			wg.Wait()
			phaseCPU[phase] += descendantsCPU(b) - t0
		}
		states := make([]events.DroneState, drones)
		now := time.Now()
		if together {
			each("drone write", func(d int) error {
				id, reps := fmt.Sprint("d", d), evs[d]
				fold := func(prev *events.DroneState) (events.DroneState, bool) { return telemetry.Fold(prev, reps, now) }
				pass := flightupdate.NewPass(fs, reps, time.Now())
				var err error
				states[d], _, err = dw.WriteDrone(ctx, store.DroneWrite{TenantID: "t", DroneID: id,
					Points: pts[d*perEvent : (d+1)*perEvent], State: fold, Flights: pass.Apply})
				if err == nil {
					_, err = pass.Finish(ctx, s, "t", id, now)
				}
				return err
			})
		} else {
			each("state", func(d int) error {
				reps := evs[d]
				fold := func(prev *events.DroneState) (events.DroneState, bool) { return telemetry.Fold(prev, reps, now) }
				var err error
				states[d], _, err = s.UpdateState(ctx, "t", fmt.Sprint("d", d), fold)
				return err
			})
			each("flights", func(d int) error {
				_, err := flightupdate.Update(ctx, s, fs, "t", fmt.Sprint("d", d), evs[d], now)
				return err
			})
		}
		each("alerts", func(d int) error {
			_, err := s.EvaluateAlerts(ctx, "t", fmt.Sprint("d", d), func(prev alerting.Tracker) (alerting.Tracker, []alerting.Transition, bool) {
				next, ts, changed := alerting.EvaluateState(prev, states[d], as, nil, now)
				next, _, claimed := alerting.Claim(next, now, time.Minute)
				return next, ts, changed || claimed
			})
			return err
		})
	}
	round(0) // first state, tracker and detector of every drone
	ctr.reset()
	clear(phaseCPU)
	em0, me0 := descendantsCPU(b), selfCPU()
	b.ResetTimer()
	for r := 1; r <= b.N; r++ {
		round(r)
	}
	b.StopTimer()
	reports := float64(b.N * drones * perEvent)
	emCPU, meCPU := descendantsCPU(b)-em0, selfCPU()-me0
	b.ReportMetric(float64(emCPU.Microseconds())/reports, "emulator-µs/report")
	b.ReportMetric(float64(meCPU.Microseconds())/reports, "client-µs/report")
	var rpcs, writes int
	var lines []string
	for m, n := range ctr.rpcs {
		rpcs += n
		lines = append(lines, fmt.Sprintf("rpc %s %.3f/report", m, float64(n)/reports))
	}
	for c, n := range ctr.writes {
		writes += n
		lines = append(lines, fmt.Sprintf("write %s %.3f/report", c, float64(n)/reports))
	}
	for p, c := range phaseCPU {
		lines = append(lines, fmt.Sprintf("emulator %s %.0f µs/report", p, float64(c.Microseconds())/reports))
	}
	sort.Strings(lines)
	if b.N > 1 { // not the probe run of one round
		for _, l := range lines {
			b.Log(l)
		}
	}
	b.ReportMetric(float64(rpcs)/reports, "rpcs/report")
	b.ReportMetric(float64(writes)/reports, "writes/report")
}
