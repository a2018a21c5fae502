package bridge_test

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gomavlib/v3"
	"github.com/bluenviron/gomavlib/v3/pkg/dialects/common"
	"github.com/bluenviron/gomavlib/v3/pkg/message"

	"github.com/dronetrack/dronetrack/core/bridge"
	"github.com/dronetrack/dronetrack/events"
)

// newNode is a gomavlib node sending MAVLink 2 over UDP to addr as system
// sysID, with no automatic heartbeat (the test sends its own).
func newNode(t *testing.T, addr string, sysID byte) *gomavlib.Node {
	t.Helper()
	n := &gomavlib.Node{
		Endpoints:        []gomavlib.EndpointConf{gomavlib.EndpointUDPClient{Address: addr}},
		Dialect:          common.Dialect,
		OutVersion:       gomavlib.V2,
		OutSystemID:      sysID,
		HeartbeatDisable: true,
	}
	if err := n.Initialize(); err != nil {
		t.Fatalf("node %d: %v", sysID, err)
	}
	t.Cleanup(n.Close)
	open := make(chan struct{})
	var once sync.Once
	go func() {
		for e := range n.Events() {
			if _, ok := e.(*gomavlib.EventChannelOpen); ok {
				once.Do(func() { close(open) })
			}
		}
	}()
	select {
	case <-open:
	case <-time.After(30 * time.Second):
		t.Fatalf("node %d: channel never opened", sysID)
	}
	return n
}

// TestBridgeDroneTelemetry: a PX4 vehicle (system 1) and its SiK radio
// (system 51) send, through gomavlib over UDP, every message the bridge
// maps; the report ingest receives carries each field in the contract's
// unit and sign.
func TestBridgeDroneTelemetry(t *testing.T) {
	ing := newIngestStandIn(t)
	udp := freeUDPAddr(t)
	runBridge(t, bridge.Config{UDPAddr: udp, IngestURL: ing.url(), Key: testKey, DataDir: t.TempDir(),
		BatchSize: 10, FlushInterval: 50 * time.Millisecond, MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	vehicle, radio := newNode(t, udp, 1), newNode(t, udp, 51)

	state := []message.Message{
		// Armed (base_mode bit 128), PX4 AUTO.MISSION (main 4, sub 4).
		&common.MessageHeartbeat{Type: common.MAV_TYPE_QUADROTOR, Autopilot: common.MAV_AUTOPILOT_PX4,
			BaseMode:   common.MAV_MODE_FLAG_SAFETY_ARMED | common.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED,
			CustomMode: 4<<16 | 4<<24, SystemStatus: common.MAV_STATE_ACTIVE},
		// RTK fixed, 17 satellites; ellipsoid 535.25 m, accuracies 0.25 / 0.5 m (all mm).
		&common.MessageGpsRawInt{FixType: common.GPS_FIX_TYPE_RTK_FIXED, SatellitesVisible: 17, Lat: 473977418, Lon: 85455939,
			Alt: 488123, AltEllipsoid: 535250, HAcc: 250, VAcc: 500, Eph: 65535, Epv: 65535, Vel: 65535, Cog: 65535},
		// Home 47.3970000, 8.5450000 at 470.5 m above mean sea level (mm).
		&common.MessageHomePosition{Latitude: 473970000, Longitude: 85450000, Altitude: 470500},
		&common.MessageExtendedSysState{LandedState: common.MAV_LANDED_STATE_IN_AIR},
	}
	var got events.Report
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no report with every field arrived; last %+v", got)
		}
		for _, m := range state {
			if err := vehicle.WriteMessageAll(m); err != nil {
				t.Fatal(err)
			}
		}
		// SiK: rssi 190 here, remrssi 127 at the vehicle: the weaker is 50 %.
		if err := radio.WriteMessageAll(&common.MessageRadioStatus{Rssi: 190, Remrssi: 127, Txbuf: 100}); err != nil {
			t.Fatal(err)
		}
		// 17.5 m above home, climbing 2.5 m/s (vz is down-positive: -250 cm/s).
		if err := vehicle.WriteMessageAll(&common.MessageGlobalPositionInt{TimeBootMs: uint32(1000 + i*100),
			Lat: 473977418 + int32(i), Lon: 85455939, Alt: 488123, RelativeAlt: 17500, Vx: 300, Vy: -400, Vz: -250, Hdg: 9000}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if reps := ing.got(); len(reps) > 0 {
			got = reps[len(reps)-1]
			if got.Link != nil && got.Home != nil && got.Fix != nil && got.Armed != nil && got.Mode != nil {
				break
			}
		}
	}
	near := func(what string, p *float64, want float64) {
		t.Helper()
		switch {
		case p == nil:
			t.Errorf("%s missing, want %v", what, want)
		case math.Abs(*p-want) > 1e-9:
			t.Errorf("%s = %v, want %v", what, *p, want)
		}
	}
	if *got.Armed != true || *got.Mode != "AUTO.MISSION" {
		t.Errorf("armed %v mode %q, want true AUTO.MISSION", *got.Armed, *got.Mode)
	}
	if *got.Fix != events.FixRTKFix || got.Satellites == nil || *got.Satellites != 17 {
		t.Errorf("fix %v satellites %v, want 6 and 17", *got.Fix, got.Satellites)
	}
	near("alt (MSL, m)", got.Alt, 488.123)
	near("hae (m)", got.HAE, 535.25)
	near("height (m above home)", got.Height, 17.5)
	near("vspeed (m/s, up positive)", got.VSpeed, 2.5)
	near("speed (m/s)", got.Speed, 5)
	near("heading (deg)", got.Heading, 90)
	near("hAcc (m)", got.HAcc, 0.25)
	near("vAcc (m)", got.VAcc, 0.5)
	near("link (%)", got.Link, 50)
	if h := got.Home; h.Lat != 47.397 || h.Lon != 8.545 || h.Alt == nil || *h.Alt != 470.5 {
		t.Errorf("home %+v (alt %v), want 47.397, 8.545 at 470.5 m", h, h.Alt)
	}
}
