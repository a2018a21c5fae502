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
// update state the next report carries (battery, fallback heading, armed,
// mode, GPS, home, link) or the clock (SYSTEM_TIME).
//
// Units, as the MAVLink common dialect defines them:
//   - GLOBAL_POSITION_INT: lat/lon degE7 -> degrees; alt mm above mean sea
//     level -> alt in metres; relative_alt mm above home -> height in
//     metres; vx/vy cm/s north/east -> ground speed m/s; vz cm/s positive
//     DOWN -> vspeed m/s positive UP (sign flipped); hdg cdeg -> degrees,
//     65535 = unknown.
//   - HEARTBEAT: armed = base_mode bit 128 (MAV_MODE_FLAG_SAFETY_ARMED);
//     mode from custom_mode for PX4 and ArduPilot copter/plane (FlightMode),
//     left out for other autopilots.
//   - GPS_RAW_INT: fix_type -> fix (GPS_FIX_TYPE, 0..8); satellites_visible
//     -> satellites (255 = unknown); alt_ellipsoid mm -> hae m; h_acc/v_acc
//     mm -> hAcc/vAcc m. The three MAVLink 2 extension fields read 0 when
//     the sender does not fill them, so 0 is taken as unknown.
//   - HOME_POSITION: latitude/longitude degE7, altitude mm above mean sea
//     level -> home {lat, lon, alt}, carried in every report after it.
//   - RADIO_STATUS: rssi and remrssi, 0..254 in the radio's units (255 =
//     unknown) -> link = the weaker of the two as a percent of 254. Taken
//     from any system id: SiK radios send it as their own system (51).
//   - EXTENDED_SYS_STATE: landed_state is kept in Converter.Landed for logs;
//     the contract has no field for it (flights come from armed).
//   - VFR_HUD: heading in whole degrees, used only when hdg is unknown.
//   - SYS_STATUS / BATTERY_STATUS: battery_remaining percent, -1 = unknown;
//     voltage in mV (kept in Converter.VoltageV for logs, not in the
//     contract).
//
// Telemetry values outside the contract's ranges (a GPS without a fix
// reports h_acc of kilometres) are left out of the report, so one bad
// value costs that field, not the position.
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
	// Landed is the last EXTENDED_SYS_STATE landed_state, for logs.
	Landed common.MAV_LANDED_STATE

	// What the next report carries besides the position; nil = unknown.
	armed           *bool
	mode            *string
	fix, satellites *int
	hae, hAcc, vAcc *float64
	link            *float64
	home            *events.Position
}

// UnknownHeading is GLOBAL_POSITION_INT.hdg's "unknown" value (UINT16_MAX).
const UnknownHeading = math.MaxUint16

const gcsType = 6 // MAV_TYPE_GCS: heartbeats from ground stations are not the vehicle

// Handle feeds one message from system sysID received at recvAt. It
// returns a report when msg is a usable position of the followed vehicle.
func (c *Converter) Handle(sysID byte, msg message.Message, recvAt time.Time) (events.Report, bool) {
	if m, ok := msg.(*common.MessageRadioStatus); ok { // the radio's own system id
		c.radio(m)
		return events.Report{}, false
	}
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
		armed := c.Armed
		c.armed = &armed
		c.mode = nil
		if name, ok := FlightMode(m); ok {
			c.mode = &name
		}
	case *common.MessageGpsRawInt:
		fix := int(m.FixType)
		c.fix = &fix
		c.satellites = nil
		if m.SatellitesVisible != math.MaxUint8 {
			n := int(m.SatellitesVisible)
			c.satellites = &n
		}
		c.hae, c.hAcc, c.vAcc = mmOrUnknown(int64(m.AltEllipsoid)), mmOrUnknown(int64(m.HAcc)), mmOrUnknown(int64(m.VAcc))
	case *common.MessageHomePosition:
		alt := float64(m.Altitude) / 1000
		c.home = &events.Position{Lat: float64(m.Latitude) / 1e7, Lon: float64(m.Longitude) / 1e7, Alt: &alt}
	case *common.MessageExtendedSysState:
		c.Landed = m.LandedState
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
	height := float64(m.RelativeAlt) / 1000
	vspeed := -float64(m.Vz) / 100 // MAVLink is down-positive; the contract is up-positive
	r.Height, r.VSpeed = &height, &vspeed
	// The report gets its own copies: the converter's values change under
	// reports still waiting in the spool.
	r.Armed, r.Mode, r.Fix, r.Satellites = clone(c.armed), clone(c.mode), clone(c.fix), clone(c.satellites)
	r.HAE, r.HAcc, r.VAcc, r.Link = clone(c.hae), clone(c.hAcc), clone(c.vAcc), clone(c.link)
	if c.home != nil {
		h := *c.home
		h.Alt = clone(h.Alt)
		r.Home = &h
	}
	dropInvalidTelemetry(&r, recvAt)
	return r, true
}

// dropInvalidTelemetry leaves out the telemetry fields outside the
// contract's ranges (a GPS without a fix reports h_acc of kilometres, a
// glitching vz can exceed any drone's climb rate), so one bad value costs
// that field, not the whole position.
func dropInvalidTelemetry(r *events.Report, now time.Time) {
	for _, fe := range r.Validate(now, "") {
		switch fe.Field {
		case "height":
			r.Height = nil
		case "vspeed":
			r.VSpeed = nil
		case "fix":
			r.Fix = nil
		case "satellites":
			r.Satellites = nil
		case "hae":
			r.HAE = nil
		case "hAcc":
			r.HAcc = nil
		case "vAcc":
			r.VAcc = nil
		case "link":
			r.Link = nil
		case "mode":
			r.Mode = nil
		case "home":
			r.Home = nil
		}
	}
}

// radio takes the link quality from RADIO_STATUS: the weaker direction.
func (c *Converter) radio(m *common.MessageRadioStatus) {
	q := -1.0
	for _, v := range [...]uint8{m.Rssi, m.Remrssi} {
		if v == math.MaxUint8 {
			continue
		}
		if pct := float64(v) / 254 * 100; q < 0 || pct < q {
			q = pct
		}
	}
	if q < 0 {
		c.link = nil
		return
	}
	q = math.Round(q*10) / 10
	c.link = &q
}

// mmOrUnknown converts millimetres to metres; 0 is unknown (an unfilled
// MAVLink 2 extension field).
func mmOrUnknown(mm int64) *float64 {
	if mm == 0 {
		return nil
	}
	v := float64(mm) / 1000
	return &v
}

func clone[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
