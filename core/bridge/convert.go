package bridge

import (
	"math"
	"time"

	"github.com/bluenviron/gomavlib/v3/pkg/dialects/common"
	"github.com/bluenviron/gomavlib/v3/pkg/message"

	"github.com/dronetrack/dronetrack/events"
)

// Converter turns a vehicle's MAVLink stream into reports. It is pure (no
// I/O, no clock): the caller passes each message with the time it was
// received. One report comes out per GLOBAL_POSITION_INT; the other messages
// update state the next report carries (battery, fallback heading) or the
// clock (SYSTEM_TIME).
//
// Units, as the MAVLink common dialect defines them:
//   - GLOBAL_POSITION_INT: lat/lon degE7 -> degrees; alt mm above mean sea
//     level -> metres (relative_alt, above home, is not what Report.Alt
//     means and is ignored); vx/vy cm/s north/east -> ground speed m/s (vz,
//     positive DOWN, is vertical and ignored); hdg cdeg -> degrees, 65535 =
//     unknown.
//   - VFR_HUD: heading in whole degrees, used only when hdg is unknown.
//   - SYS_STATUS / BATTERY_STATUS: battery_remaining percent, -1 = unknown;
//     voltage in mV (kept in Converter.VoltageV for logs, not in the
//     contract).
//
// Timestamps: a flight controller stamps messages with milliseconds since
// ITS boot, not UTC. When the vehicle sends SYSTEM_TIME with a non-zero
// time_unix_usec (it has GPS time), the report time is that UTC epoch plus
// the position's time_boot_ms, so buffering and link jitter do not skew it.
// Otherwise the report time is the system UTC clock at receipt. A reboot
// (time_boot_ms going backwards) drops the epoch until the next SYSTEM_TIME.
// Report times are made strictly increasing (+1 ms when two positions would
// share a millisecond) because downstream deduplicates by (drone, ts).
type Converter struct {
	// SystemID is the vehicle to follow; 0 follows the first vehicle that
	// sends a position or a non-GCS heartbeat.
	SystemID byte

	battery    *float64
	VoltageV   *float64 // last battery voltage in volts, for logs
	hudHeading *float64
	bootEpoch  time.Time // UTC at time_boot_ms = 0; zero when unknown
	lastBoot   uint32
	lastTS     time.Time
	// Armed and Status mirror the last HEARTBEAT, for logs.
	Armed  bool
	Status string
}

// UnknownHeading is GLOBAL_POSITION_INT.hdg's "unknown" value (UINT16_MAX).
const UnknownHeading = math.MaxUint16

const gcsType = 6 // MAV_TYPE_GCS: heartbeats from ground stations are not the vehicle

// Handle feeds one message from system sysID received at recvAt. It
// returns a report when msg is a usable position of the followed vehicle.
func (c *Converter) Handle(sysID byte, msg message.Message, recvAt time.Time) (events.Report, bool) {
	if c.SystemID != 0 && sysID != c.SystemID {
		return events.Report{}, false
	}
	switch m := msg.(type) {
	case *common.MessageHeartbeat:
		if int(m.Type) == gcsType {
			return events.Report{}, false
		}
		if c.SystemID == 0 {
			c.SystemID = sysID
		}
		c.Armed = m.BaseMode&common.MAV_MODE_FLAG_SAFETY_ARMED != 0
		c.Status = m.SystemStatus.String()
	case *common.MessageSysStatus:
		if m.BatteryRemaining >= 0 && m.BatteryRemaining <= 100 {
			b := float64(m.BatteryRemaining)
			c.battery = &b
		}
		if m.VoltageBattery != math.MaxUint16 {
			v := float64(m.VoltageBattery) / 1000
			c.VoltageV = &v
		}
	case *common.MessageBatteryStatus:
		if m.Id != 0 { // battery 0 is the main pack; others are extras
			return events.Report{}, false
		}
		if m.BatteryRemaining >= 0 && m.BatteryRemaining <= 100 {
			b := float64(m.BatteryRemaining)
			c.battery = &b
		}
	case *common.MessageVfrHud:
		if m.Heading >= 0 && m.Heading <= 360 {
			h := math.Mod(float64(m.Heading), 360)
			c.hudHeading = &h
		}
	case *common.MessageSystemTime:
		if m.TimeUnixUsec != 0 {
			c.bootEpoch = time.UnixMicro(int64(m.TimeUnixUsec)).Add(-time.Duration(m.TimeBootMs) * time.Millisecond).UTC()
			c.lastBoot = m.TimeBootMs
		}
	case *common.MessageGlobalPositionInt:
		if c.SystemID == 0 {
			c.SystemID = sysID
		}
		return c.position(m, recvAt)
	}
	return events.Report{}, false
}

func (c *Converter) position(m *common.MessageGlobalPositionInt, recvAt time.Time) (events.Report, bool) {
	if m.TimeBootMs < c.lastBoot { // the autopilot rebooted: its boot epoch is stale
		c.bootEpoch = time.Time{}
	}
	c.lastBoot = m.TimeBootMs
	if m.Lat == 0 && m.Lon == 0 { // no fix yet: autopilots send zeros
		return events.Report{}, false
	}
	ts := recvAt.UTC()
	if !c.bootEpoch.IsZero() {
		ts = c.bootEpoch.Add(time.Duration(m.TimeBootMs) * time.Millisecond)
	}
	ts = ts.Truncate(time.Millisecond)
	if !c.lastTS.IsZero() && !ts.After(c.lastTS) {
		ts = c.lastTS.Add(time.Millisecond)
	}
	c.lastTS = ts

	r := events.Report{
		TS:  ts,
		Lat: float64(m.Lat) / 1e7,
		Lon: float64(m.Lon) / 1e7,
	}
	alt := float64(m.Alt) / 1000
	r.Alt = &alt
	speed := math.Hypot(float64(m.Vx), float64(m.Vy)) / 100
	r.Speed = &speed
	switch {
	case m.Hdg != UnknownHeading:
		h := math.Mod(float64(m.Hdg)/100, 360)
		r.Heading = &h
	case c.hudHeading != nil:
		h := *c.hudHeading
		r.Heading = &h
	}
	if c.battery != nil {
		b := *c.battery
		r.Battery = &b
	}
	return r, true
}
