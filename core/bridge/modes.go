package bridge

import "github.com/bluenviron/gomavlib/v3/pkg/dialects/common"

// FlightMode names the flight mode of a HEARTBEAT the way the autopilot's
// own ground software does (QGroundControl for PX4, MAVProxy / Mission
// Planner for ArduPilot): "AUTO.MISSION", "POSCTL", "RTL", "LOITER". ok is
// false when the autopilot or the mode number is not known, or the
// heartbeat carries no custom mode; a report then leaves mode out rather
// than guess.
//
// PX4 packs its mode into custom_mode as main mode (bits 16-23) and sub
// mode (bits 24-31), see PX4's px4_custom_mode.h. ArduPilot's custom_mode
// is the mode number of the vehicle's firmware, which differs between
// copters (multirotors, helicopters) and planes (fixed wing and
// QuadPlane VTOL).
func FlightMode(m *common.MessageHeartbeat) (string, bool) {
	if m.BaseMode&common.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED == 0 {
		return "", false
	}
	switch m.Autopilot {
	case common.MAV_AUTOPILOT_PX4:
		return px4Mode(m.CustomMode)
	case common.MAV_AUTOPILOT_ARDUPILOTMEGA:
		var names map[uint32]string
		switch {
		case isCopter(m.Type):
			names = arduCopterModes
		case isPlane(m.Type):
			names = arduPlaneModes
		default:
			return "", false
		}
		name, ok := names[m.CustomMode]
		return name, ok
	}
	return "", false
}

// PX4 main modes and sub modes (px4_custom_mode.h).
var (
	px4MainModes = map[uint8]string{1: "MANUAL", 2: "ALTCTL", 3: "POSCTL", 4: "AUTO", 5: "ACRO", 6: "OFFBOARD",
		7: "STABILIZED", 8: "RATTITUDE", 9: "SIMPLE", 10: "TERMINATION"}
	px4AutoSubModes = map[uint8]string{1: "AUTO.READY", 2: "AUTO.TAKEOFF", 3: "AUTO.LOITER", 4: "AUTO.MISSION",
		5: "AUTO.RTL", 6: "AUTO.LAND", 8: "AUTO.FOLLOW_TARGET", 9: "AUTO.PRECLAND", 10: "AUTO.VTOL_TAKEOFF"}
	px4PosctlSubModes = map[uint8]string{0: "POSCTL", 1: "POSCTL.ORBIT", 2: "POSCTL.SLOW"}
)

func px4Mode(custom uint32) (string, bool) {
	main, sub := uint8(custom>>16), uint8(custom>>24)
	switch main {
	case 4:
		name, ok := px4AutoSubModes[sub]
		return name, ok
	case 3:
		name, ok := px4PosctlSubModes[sub]
		return name, ok
	}
	name, ok := px4MainModes[main]
	return name, ok
}

// ArduPilot mode numbers (ArduCopter and ArduPlane mode.h).
var (
	arduCopterModes = map[uint32]string{0: "STABILIZE", 1: "ACRO", 2: "ALT_HOLD", 3: "AUTO", 4: "GUIDED", 5: "LOITER",
		6: "RTL", 7: "CIRCLE", 9: "LAND", 11: "DRIFT", 13: "SPORT", 14: "FLIP", 15: "AUTOTUNE", 16: "POSHOLD",
		17: "BRAKE", 18: "THROW", 19: "AVOID_ADSB", 20: "GUIDED_NOGPS", 21: "SMART_RTL", 22: "FLOWHOLD",
		23: "FOLLOW", 24: "ZIGZAG", 25: "SYSTEMID", 26: "AUTOROTATE", 27: "AUTO_RTL", 28: "TURTLE"}
	arduPlaneModes = map[uint32]string{0: "MANUAL", 1: "CIRCLE", 2: "STABILIZE", 3: "TRAINING", 4: "ACRO",
		5: "FBWA", 6: "FBWB", 7: "CRUISE", 8: "AUTOTUNE", 10: "AUTO", 11: "RTL", 12: "LOITER", 13: "TAKEOFF",
		14: "AVOID_ADSB", 15: "GUIDED", 16: "INITIALISING", 17: "QSTABILIZE", 18: "QHOVER", 19: "QLOITER",
		20: "QLAND", 21: "QRTL", 22: "QAUTOTUNE", 23: "QACRO", 24: "THERMAL", 25: "LOITER_ALT_QLAND", 26: "AUTOLAND"}
)

// isCopter: the MAV_TYPEs ArduCopter reports (multirotors and helicopters).
func isCopter(t common.MAV_TYPE) bool {
	switch t {
	case common.MAV_TYPE_QUADROTOR, common.MAV_TYPE_HEXAROTOR, common.MAV_TYPE_OCTOROTOR, common.MAV_TYPE_TRICOPTER,
		common.MAV_TYPE_COAXIAL, common.MAV_TYPE_HELICOPTER, common.MAV_TYPE_DODECAROTOR, common.MAV_TYPE_DECAROTOR:
		return true
	}
	return false
}

// isPlane: the MAV_TYPEs ArduPlane reports (fixed wing, and QuadPlane VTOLs).
func isPlane(t common.MAV_TYPE) bool {
	switch t {
	case common.MAV_TYPE_FIXED_WING, common.MAV_TYPE_VTOL_TAILSITTER_DUOROTOR, common.MAV_TYPE_VTOL_TAILSITTER_QUADROTOR,
		common.MAV_TYPE_VTOL_TILTROTOR, common.MAV_TYPE_VTOL_FIXEDROTOR, common.MAV_TYPE_VTOL_TAILSITTER,
		common.MAV_TYPE_VTOL_TILTWING:
		return true
	}
	return false
}
