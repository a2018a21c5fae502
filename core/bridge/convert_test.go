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

func ptr[T any](v T) *T { return &v }

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
		RelativeAlt: 20000,     // mm above home -> height 20 m
		Vx:          300,       // cm/s north
		Vy:          400,       // cm/s east -> 5 m/s ground speed
		Vz:          -150,      // cm/s positive down: climbing at 1.5 m/s
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
		Height:  fp(20),
		VSpeed:  fp(1.5),
		Armed:   ptr(true), // a generic autopilot: armed, but no mode name
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

func TestFlightModes(t *testing.T) {
	const custom = common.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
	px4 := func(main, sub uint32) uint32 { return main<<16 | sub<<24 }
	for _, tc := range []struct {
		name string
		hb   common.MessageHeartbeat
		want string // "" = no mode
	}{
		{"PX4 mission", common.MessageHeartbeat{Autopilot: common.MAV_AUTOPILOT_PX4, Type: common.MAV_TYPE_QUADROTOR, BaseMode: custom, CustomMode: px4(4, 4)}, "AUTO.MISSION"},
		{"PX4 return", common.MessageHeartbeat{Autopilot: common.MAV_AUTOPILOT_PX4, Type: common.MAV_TYPE_FIXED_WING, BaseMode: custom, CustomMode: px4(4, 5)}, "AUTO.RTL"},
		{"PX4 hold", common.MessageHeartbeat{Autopilot: common.MAV_AUTOPILOT_PX4, BaseMode: custom, CustomMode: px4(4, 3)}, "AUTO.LOITER"},
		{"PX4 position", common.MessageHeartbeat{Autopilot: common.MAV_AUTOPILOT_PX4, BaseMode: custom, CustomMode: px4(3, 0)}, "POSCTL"},
		{"PX4 orbit", common.MessageHeartbeat{Autopilot: common.MAV_AUTOPILOT_PX4, BaseMode: custom, CustomMode: px4(3, 1)}, "POSCTL.ORBIT"},
		{"PX4 offboard", common.MessageHeartbeat{Autopilot: common.MAV_AUTOPILOT_PX4, BaseMode: custom, CustomMode: px4(6, 0)}, "OFFBOARD"},
		{"PX4 unknown sub mode", common.MessageHeartbeat{Autopilot: common.MAV_AUTOPILOT_PX4, BaseMode: custom, CustomMode: px4(4, 99)}, ""},
		{"ArduCopter RTL", common.MessageHeartbeat{Autopilot: common.MAV_AUTOPILOT_ARDUPILOTMEGA, Type: common.MAV_TYPE_QUADROTOR, BaseMode: custom, CustomMode: 6}, "RTL"},
		{"ArduCopter loiter (hexa)", common.MessageHeartbeat{Autopilot: common.MAV_AUTOPILOT_ARDUPILOTMEGA, Type: common.MAV_TYPE_HEXAROTOR, BaseMode: custom, CustomMode: 5}, "LOITER"},
		{"ArduCopter smart RTL", common.MessageHeartbeat{Autopilot: common.MAV_AUTOPILOT_ARDUPILOTMEGA, Type: common.MAV_TYPE_HELICOPTER, BaseMode: custom, CustomMode: 21}, "SMART_RTL"},
		{"ArduPlane RTL", common.MessageHeartbeat{Autopilot: common.MAV_AUTOPILOT_ARDUPILOTMEGA, Type: common.MAV_TYPE_FIXED_WING, BaseMode: custom, CustomMode: 11}, "RTL"},
		{"ArduPlane 5 is FBWA, not copter LOITER", common.MessageHeartbeat{Autopilot: common.MAV_AUTOPILOT_ARDUPILOTMEGA, Type: common.MAV_TYPE_FIXED_WING, BaseMode: custom, CustomMode: 5}, "FBWA"},
		{"QuadPlane QHOVER", common.MessageHeartbeat{Autopilot: common.MAV_AUTOPILOT_ARDUPILOTMEGA, Type: common.MAV_TYPE_VTOL_TILTROTOR, BaseMode: custom, CustomMode: 18}, "QHOVER"},
		{"ArduPilot rover: not mapped", common.MessageHeartbeat{Autopilot: common.MAV_AUTOPILOT_ARDUPILOTMEGA, Type: common.MAV_TYPE_GROUND_ROVER, BaseMode: custom, CustomMode: 3}, ""},
		{"no custom mode flag", common.MessageHeartbeat{Autopilot: common.MAV_AUTOPILOT_PX4, CustomMode: px4(4, 4)}, ""},
		{"generic autopilot", common.MessageHeartbeat{Autopilot: common.MAV_AUTOPILOT_GENERIC, BaseMode: custom, CustomMode: 3}, ""},
	} {
		got, ok := bridge.FlightMode(&tc.hb)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%s: mode %q ok=%v, want %q", tc.name, got, ok, tc.want)
		}
	}
}

func TestConverterDroneTelemetry(t *testing.T) {
	var c bridge.Converter
	pos := func(at time.Duration) events.Report {
		t.Helper()
		r, ok := c.Handle(1, &common.MessageGlobalPositionInt{Lat: 1e7, Lon: 2e7, Alt: 100000, RelativeAlt: -2500, Vz: 250,
			Hdg: bridge.UnknownHeading}, t0.Add(at))
		if !ok {
			t.Fatal("no report")
		}
		return r
	}
	r := pos(0)
	if r.Armed != nil || r.Mode != nil || r.Fix != nil || r.Home != nil || r.Link != nil {
		t.Errorf("telemetry before any message: %+v", r)
	}
	if *r.Height != -2.5 || *r.VSpeed != -2.5 {
		t.Errorf("below home and sinking: height %v vspeed %v, want -2.5 and -2.5", *r.Height, *r.VSpeed)
	}
	c.Handle(1, &common.MessageHeartbeat{Autopilot: common.MAV_AUTOPILOT_ARDUPILOTMEGA, Type: common.MAV_TYPE_QUADROTOR,
		BaseMode: common.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, CustomMode: 5}, t0) // disarmed, LOITER
	c.Handle(1, &common.MessageGpsRawInt{FixType: common.GPS_FIX_TYPE_NO_FIX, SatellitesVisible: 255,
		HAcc: 4_000_000_000, VAcc: 0}, t0) // no fix: accuracy of 4000 km, unknown satellites
	c.Handle(1, &common.MessageExtendedSysState{LandedState: common.MAV_LANDED_STATE_ON_GROUND}, t0)
	c.Handle(51, &common.MessageRadioStatus{Rssi: 255, Remrssi: 255}, t0)
	r = pos(time.Second)
	if r.Armed == nil || *r.Armed || r.Mode == nil || *r.Mode != "LOITER" {
		t.Errorf("heartbeat: armed %v mode %v, want false LOITER", r.Armed, r.Mode)
	}
	if r.Fix == nil || *r.Fix != events.FixNone || r.Satellites != nil || r.HAcc != nil || r.VAcc != nil || r.Link != nil {
		t.Errorf("unknowns and out-of-range values must be left out: fix %v sats %v hAcc %v vAcc %v link %v",
			r.Fix, r.Satellites, r.HAcc, r.VAcc, r.Link)
	}
	if c.Landed != common.MAV_LANDED_STATE_ON_GROUND {
		t.Errorf("landed state %v", c.Landed)
	}
	if errs := r.Validate(t0, ""); len(errs) > 0 {
		t.Errorf("report fails the contract: %v", errs)
	}
	// The weaker radio direction is the link quality.
	c.Handle(51, &common.MessageRadioStatus{Rssi: 200, Remrssi: 127}, t0)
	if r = pos(2 * time.Second); r.Link == nil || *r.Link != 50 {
		t.Errorf("link %v, want 50 (remrssi 127 of 254)", r.Link)
	}
	// A report keeps its own values when the converter's change later.
	c.Handle(1, &common.MessageHomePosition{Latitude: 10000001, Longitude: 20000002, Altitude: 99500}, t0)
	r = pos(3 * time.Second)
	c.Handle(1, &common.MessageHomePosition{Latitude: 30000000, Longitude: 40000000, Altitude: 0}, t0)
	if r.Home == nil || r.Home.Lat != 1.0000001 || r.Home.Lon != 2.0000002 || *r.Home.Alt != 99.5 {
		t.Errorf("home %+v changed under an earlier report", r.Home)
	}
}
