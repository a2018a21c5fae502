package system

import (
	"context"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gomavlib/v3/pkg/dialects/common"

	"github.com/dronetrack/dronetrack/core/bridge"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/testenv/mavtest"

	"github.com/dronetrack/dronetrack/infra/local"
)

// TestBridgeThroughUpStoresEveryPositionOnce is the acceptance test
// on the real system: a gomavlib vehicle -> UDP loopback -> the bridge ->
// a cuttable uplink -> `up` (ingest, broker, process, bolt store). The
// uplink answers 503 for 3 s (30 s with DRONETRACK_SOAK=1) mid-flight; in
// the end the drone's track must hold every position exactly once, in order.
// It also sends one OsmAnd request through up's public listener.
func TestBridgeThroughUpStoresEveryPositionOnce(t *testing.T) {
	cut := 3 * time.Second
	if os.Getenv("DRONETRACK_SOAK") != "" {
		cut = 30 * time.Second
	}
	ctx := context.Background()
	sys, demo := startTestSystem(t, local.Options{DemoDrones: 2, StopTimeout: 60 * time.Second})
	if len(demo) < 2 {
		t.Fatalf("demo keys: %d, want 2", len(demo))
	}
	drone, tracker := demo[0], demo[1]

	// The uplink: a reverse proxy to up that can be cut.
	target, _ := url.Parse(sys.URL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	var down atomic.Bool
	uplink := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "uplink down", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go uplink.Serve(ln)
	defer uplink.Close()

	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udp := pc.LocalAddr().String()
	pc.Close()
	b, err := bridge.New(bridge.Config{
		UDPAddr: udp, IngestURL: "http://" + ln.Addr().String(), Key: drone.Key, DataDir: t.TempDir(),
		BatchSize: 50, FlushInterval: 200 * time.Millisecond, MinBackoff: 100 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	bctx, stopBridge := context.WithCancel(ctx)
	bdone := make(chan error, 1)
	go func() { bdone <- b.Run(bctx) }()
	defer func() {
		stopBridge()
		if err := <-bdone; err != nil {
			t.Errorf("bridge: %v", err)
		}
	}()

	v := mavtest.Vehicle(t, udp, common.MAV_TYPE_QUADROTOR)
	const every = 20 * time.Millisecond
	sent := 0
	send := func(n int) {
		for range n {
			if err := v.WriteMessageAll(&common.MessageGlobalPositionInt{
				Lat: 473000000 + int32(sent*10), Lon: 85000000, Alt: 450000, Vx: 500, Hdg: 0,
			}); err != nil {
				t.Fatal(err)
			}
			sent++
			time.Sleep(every)
		}
	}
	send(50)
	down.Store(true)
	send(int(cut / every))
	down.Store(false)
	send(50)

	q := store.TrackQuery{TenantID: drone.TenantID, DroneID: drone.DroneID,
		From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour), Limit: 10000}
	var pts []store.TrackPoint
	deadline := time.Now().Add(90 * time.Second)
	for {
		if pts, err = sys.Store().Track(ctx, q); err != nil {
			t.Fatal(err)
		}
		if len(pts) >= sent || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(pts) != sent {
		t.Fatalf("store holds %d track points, want %d (bridge %+v)", len(pts), sent, b.Stats())
	}
	for i, p := range pts {
		if got := int(math.Round(p.Report.Lat*1e7)-473000000) / 10; got != i {
			t.Fatalf("track point %d is position %d: lost, duplicated or out of order", i, got)
		}
	}
	if b.Stats().Failures == 0 {
		t.Error("the uplink cut went unnoticed")
	}
	t.Logf("%d positions stored once in order across a %s uplink cut; bridge %+v", sent, cut, b.Stats())

	// OsmAnd through up's public listener, the drone key as device id.
	resp, err := http.Get(sys.URL() + "/v1/osmand?id=" + tracker.Key + "&lat=47.5&lon=8.6&speed=10")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("osmand through up: status %d", resp.StatusCode)
	}
	tq := q
	tq.TenantID, tq.DroneID = tracker.TenantID, tracker.DroneID
	deadline = time.Now().Add(30 * time.Second)
	for {
		tp, err := sys.Store().Track(ctx, tq)
		if err != nil {
			t.Fatal(err)
		}
		if len(tp) == 1 {
			if s := tp[0].Report.Speed; s == nil || math.Abs(*s-10*1852.0/3600) > 1e-9 {
				t.Errorf("osmand speed stored as %v m/s, want 5.144", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("osmand report not stored (%d points)", len(tp))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
