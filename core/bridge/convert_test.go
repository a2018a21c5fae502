package bridge_test

import (
	"testing"
	"time"

	"github.com/bluenviron/gomavlib/v3/pkg/dialects/common"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/dronetrack/dronetrack/core/bridge"
	"github.com/dronetrack/dronetrack/events"
)

func fp(v float64) *float64 { return &v }

var t0 = time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)

func TestConverterUnits(t *testing.T) {
	var c bridge.Converter
	c.Handle(1, &common.MessageHeartbeat{Type: common.MAV_TYPE_QUADROTOR, BaseMode: common.MAV_MODE_FLAG_SAFETY_ARMED,
		SystemStatus: common.MAV_STATE_ACTIVE}, t0)
	c.Handle(1, &common.MessageSysStatus{BatteryRemaining: 87, VoltageBattery: 15234}, t0)
	got, ok := c.Handle(1, &common.MessageGlobalPositionInt{
		TimeBootMs:  60000,
		Lat:         473977418, // 47.3977418 degE7
		Lon:         -85455939, // -8.5455939 degE7
		Alt:         488123,    // mm AMSL -> 488.123 m
		RelativeAlt: 20000,     // above home: ignored
		Vx:          300,       // cm/s north
		Vy:          400,       // cm/s east -> 5 m/s ground speed
		Vz:          -150,      // positive down: climbing, ignored
		Hdg:         35999,     // cdeg -> 359.99
	}, t0.Add(123456789*time.Nanosecond))
	if !ok {
		t.Fatal("no report from GLOBAL_POSITION_INT")
	}
	want := events.Report{
		TS:      t0.Add(123 * time.Millisecond), // receipt time, truncated to ms
		Lat:     47.3977418,
		Lon:     -8.5455939,
		Alt:     fp(488.123),
		Speed:   fp(5),
		Heading: fp(359.99),
		Battery: fp(87),
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("report mismatch (-want +got):\n%s", diff)
	}
	if !c.Armed || c.Status != "MAV_STATE_ACTIVE" || c.VoltageV == nil || *c.VoltageV != 15.234 {
		t.Errorf("heartbeat/sys_status state: armed=%v status=%q voltage=%v", c.Armed, c.Status, c.VoltageV)
	}
}

func TestConverterUnknowns(t *testing.T) {
	var c bridge.Converter
	// battery_remaining -1 is unknown; BATTERY_STATUS of another pack is ignored.
	c.Handle(1, &common.MessageSysStatus{BatteryRemaining: -1, VoltageBattery: 65535}, t0)
	c.Handle(1, &common.MessageBatteryStatus{Id: 1, BatteryRemaining: 10}, t0)
	r, ok := c.Handle(1, &common.MessageGlobalPositionInt{Lat: 10000000, Lon: 20000000, Hdg: bridge.UnknownHeading}, t0)
	if !ok {
		t.Fatal("no report")
	}
	if r.Battery != nil || r.Heading != nil || c.VoltageV != nil {
		t.Errorf("unknowns leaked: battery=%v heading=%v voltage=%v", r.Battery, r.Heading, c.VoltageV)
	}
	// VFR_HUD heading fills in an unknown hdg; BATTERY_STATUS pack 0 sets battery.
	c.Handle(1, &common.MessageVfrHud{Heading: 271, Groundspeed: 3}, t0)
	c.Handle(1, &common.MessageBatteryStatus{Id: 0, BatteryRemaining: 42}, t0)
	r, _ = c.Handle(1, &common.MessageGlobalPositionInt{Lat: 10000000, Lon: 20000000, Hdg: bridge.UnknownHeading}, t0.Add(time.Second))
	if r.Heading == nil || *r.Heading != 271 || r.Battery == nil || *r.Battery != 42 {
		t.Errorf("fallbacks: heading=%v battery=%v, want 271 and 42", r.Heading, r.Battery)
	}
	// No fix: zeros are not a position.
	if _, ok := c.Handle(1, &common.MessageGlobalPositionInt{Lat: 0, Lon: 0}, t0.Add(2*time.Second)); ok {
		t.Error("a 0,0 position (no GPS fix) produced a report")
	}
	// Another system is ignored once one vehicle is followed.
	if _, ok := c.Handle(2, &common.MessageGlobalPositionInt{Lat: 1, Lon: 1}, t0.Add(3*time.Second)); ok {
		t.Error("a second vehicle's position was taken")
	}
}

func TestConverterClock(t *testing.T) {
	var c bridge.Converter
	// GCS heartbeats do not select the vehicle.
	c.Handle(255, &common.MessageHeartbeat{Type: common.MAV_TYPE_GCS}, t0)
	gps := time.Date(2026, 11, 29, 3, 59, 0, 0, time.UTC)
	c.Handle(1, &common.MessageSystemTime{TimeUnixUsec: uint64(gps.UnixMicro()), TimeBootMs: 10000}, t0)
	// Received late (buffered): the time comes from boot time + GPS epoch, not receipt.
	r, _ := c.Handle(1, &common.MessageGlobalPositionInt{TimeBootMs: 12500, Lat: 1e7, Lon: 1e7}, t0.Add(time.Minute))
	if want := gps.Add(2500 * time.Millisecond); !r.TS.Equal(want) {
		t.Errorf("ts = %s, want %s (SYSTEM_TIME epoch + time_boot_ms)", r.TS, want)
	}
	// Same millisecond twice: the second is pushed 1 ms later so (drone, ts) stays unique.
	r2, _ := c.Handle(1, &common.MessageGlobalPositionInt{TimeBootMs: 12500, Lat: 1e7, Lon: 1e7}, t0.Add(time.Minute))
	if want := r.TS.Add(time.Millisecond); !r2.TS.Equal(want) {
		t.Errorf("duplicate ms: ts = %s, want %s", r2.TS, want)
	}
	// Reboot (time_boot_ms goes back): the epoch is dropped, receipt time is used.
	recv := t0.Add(2 * time.Minute)
	r3, _ := c.Handle(1, &common.MessageGlobalPositionInt{TimeBootMs: 500, Lat: 1e7, Lon: 1e7}, recv)
	if !r3.TS.Equal(recv) {
		t.Errorf("after reboot ts = %s, want receipt time %s", r3.TS, recv)
	}
}
