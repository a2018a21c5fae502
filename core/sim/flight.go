package sim

import (
	"math"
	"math/rand/v2"
	"time"
)

// Point is a position on the WGS84 sphere approximation, in degrees.
type Point struct {
	Lat, Lon float64
}

// Phase is where a flight is in its cycle. A drone waits on the ground,
// climbs vertically, cruises through waypoints, returns home and descends,
// then waits again (its battery swapped) and repeats.
type Phase int

// Flight phases in the order a drone goes through them.
const (
	Grounded Phase = iota
	Climbing
	Cruising
	Landing
)

func (p Phase) String() string {
	switch p {
	case Grounded:
		return "grounded"
	case Climbing:
		return "climbing"
	case Cruising:
		return "cruising"
	case Landing:
		return "landing"
	}
	return "unknown"
}

// Movement model constants. They describe a small delivery multirotor:
// 3 m/s climb, 2 m/s descent, 8-18 m/s cruise, about 15 minutes on a battery.
const (
	earthRadius   = 6371008.8 // metres, mean radius
	climbRate     = 3.0       // m/s
	descentRate   = 2.0       // m/s
	minCruise     = 8.0       // m/s
	maxCruise     = 18.0      // m/s
	minAGL        = 60.0      // metres above ground
	maxAGL        = 120.0     // metres above ground
	groundElev    = 400.0     // metres above mean sea level at home
	returnBattery = 30.0      // percent: below this a cruising drone heads home
	reserve       = 5.0       // percent the model never drains below

	// Battery drain in percent per second: hovering costs drainHover, each
	// m/s of horizontal speed adds drainPerSpeed, each m/s of climb adds
	// drainPerClimb (descent costs only the hover share).
	drainHover    = 0.05
	drainPerSpeed = 0.004
	drainPerClimb = 0.03

	// armLead and disarmDelay: a pilot (or mission) arms this long before
	// take-off and the autopilot disarms this long after touching down.
	armLead     = 3.0 // seconds
	disarmDelay = 3.0 // seconds
)

// Flight modes reported per phase, named as PX4 names them.
const (
	ModeReady   = "AUTO.READY"
	ModeTakeoff = "AUTO.TAKEOFF"
	ModeMission = "AUTO.MISSION"
	ModeRTL     = "AUTO.RTL"
	ModeLand    = "AUTO.LAND"
)

// Sample is the drone's state after a step: what a drone would report.
// Speed and Heading describe the horizontal movement of the last step
// (Heading is kept from the last horizontal move when the drone moves only
// vertically or not at all).
type Sample struct {
	Pos     Point
	Alt     float64 // metres above mean sea level
	Speed   float64 // m/s over ground
	Heading float64 // degrees true, [0, 360)
	Battery float64 // percent
	Phase   Phase

	Armed      bool    // armed armLead before take-off until disarmDelay after landing
	Mode       string  // Mode* by phase (RTL when a low battery cut the route short)
	Height     float64 // metres above the take-off point (home)
	VSpeed     float64 // m/s, up positive
	Satellites int     // GPS satellites in use (per drone, steady)
	Link       float64 // link quality, percent: falls with the distance from home
}

// Flight is one drone's movement model. It is pure: all randomness comes
// from the generator it was given, so a seed reproduces the route.
type Flight struct {
	rng    *rand.Rand
	home   Point
	spread float64 // metres: waypoints are drawn within this radius of home

	s         Sample
	cruiseAGL float64
	cruiseSpd float64
	waypoints []Point // remaining, the last one is home
	wait      float64 // seconds left on the ground
	landedFor float64 // seconds on the ground since the last landing
	rtl       bool    // heading home early on a low battery
}

// NewFlight starts a flight around home, waypoints within spread metres.
// Most drones start airborne somewhere along a route, so a fleet looks alive
// from the first second; the rest wait on the ground for a few seconds.
func NewFlight(rng *rand.Rand, home Point, spread float64) *Flight {
	if spread <= 0 {
		spread = 1
	}
	f := &Flight{rng: rng, home: home, spread: spread}
	f.s = Sample{Pos: home, Alt: groundElev, Heading: rng.Float64() * 360, Battery: 100, Phase: Grounded,
		Satellites: 10 + rng.IntN(10)}
	f.landedFor = disarmDelay
	if rng.Float64() < 0.8 {
		f.plan()
		f.s.Phase = Cruising
		f.s.Pos = randomPoint(rng, home, spread)
		f.s.Alt = groundElev + f.cruiseAGL
		f.s.Battery = 55 + 45*rng.Float64()
	} else {
		f.wait = 1 + 9*rng.Float64()
	}
	f.derive(0)
	return f
}

// derive sets the sample's armed state, mode, height, climb rate and link
// from the phase and position; vspeed is the last step's climb rate.
func (f *Flight) derive(vspeed float64) {
	s := &f.s
	s.Height = s.Alt - groundElev
	s.VSpeed = vspeed
	switch s.Phase {
	case Grounded:
		s.Armed = f.wait <= armLead || f.landedFor < disarmDelay
		s.Mode = ModeReady
	case Climbing:
		s.Armed, s.Mode = true, ModeTakeoff
	case Cruising:
		s.Armed, s.Mode = true, ModeMission
		if f.rtl {
			s.Mode = ModeRTL
		}
	case Landing:
		s.Armed, s.Mode = true, ModeLand
	}
	s.Link = math.Round(100 - 40*math.Min(1, distance(s.Pos, f.home)/(2*f.spread))) // a weaker signal far out
}

// Sample returns the current state without moving.
func (f *Flight) Sample() Sample { return f.s }

// Home returns the point the drone takes off from and lands on.
func (f *Flight) Home() Point { return f.home }

// plan draws a new route: 2-5 waypoints then home, a cruise altitude and speed.
func (f *Flight) plan() {
	n := 2 + f.rng.IntN(4)
	f.waypoints = f.waypoints[:0]
	for range n {
		f.waypoints = append(f.waypoints, randomPoint(f.rng, f.home, f.spread))
	}
	f.waypoints = append(f.waypoints, f.home)
	f.cruiseAGL = minAGL + (maxAGL-minAGL)*f.rng.Float64()
	f.cruiseSpd = minCruise + (maxCruise-minCruise)*f.rng.Float64()
}

// Step advances the model by dt and returns the new state.
func (f *Flight) Step(dt time.Duration) Sample {
	secs := dt.Seconds()
	if secs <= 0 {
		return f.s
	}
	f.s.Speed = 0
	altBefore := f.s.Alt
	switch f.s.Phase {
	case Grounded:
		f.wait -= secs
		f.landedFor += secs
		if f.landedFor >= disarmDelay+2 {
			f.s.Battery = 100 // swapped on the pad, after disarming
		}
		if f.wait <= 0 {
			f.plan()
			f.rtl = false
			f.s.Phase = Climbing
		}
	case Climbing:
		target := groundElev + f.cruiseAGL
		climb := math.Min(climbRate*secs, target-f.s.Alt)
		f.s.Alt += climb
		f.drain(secs, 0, climb/secs)
		if f.s.Alt >= target {
			f.s.Phase = Cruising
		}
	case Cruising:
		if f.s.Battery < returnBattery && len(f.waypoints) > 1 {
			f.waypoints = append(f.waypoints[:0], f.home) // low battery: straight home
			f.rtl = true
		}
		from := f.s.Pos
		left := f.cruiseSpd * secs
		for left > 0 && len(f.waypoints) > 0 {
			wp := f.waypoints[0]
			d := distance(f.s.Pos, wp)
			if d <= left {
				left -= d
				f.s.Pos = wp
				f.waypoints = f.waypoints[1:]
				continue
			}
			f.s.Pos = destination(f.s.Pos, bearing(f.s.Pos, wp), left)
			left = 0
		}
		// A step that turns at a waypoint travels a bent path: report the
		// straight-line displacement, so speed and heading agree with the
		// positions a receiver sees.
		if d := distance(from, f.s.Pos); d > 0 {
			f.s.Speed = d / secs
			f.s.Heading = bearing(from, f.s.Pos)
		}
		f.drain(secs, f.s.Speed, 0)
		if len(f.waypoints) == 0 {
			f.s.Phase = Landing
		}
	case Landing:
		f.s.Alt = math.Max(groundElev, f.s.Alt-descentRate*secs)
		f.drain(secs, 0, 0)
		if f.s.Alt <= groundElev {
			f.s.Phase = Grounded
			f.wait = 5 + 10*f.rng.Float64() + disarmDelay
			f.landedFor = 0
		}
	}
	f.derive((f.s.Alt - altBefore) / secs)
	return f.s
}

func (f *Flight) drain(secs, speed, climb float64) {
	d := (drainHover + drainPerSpeed*speed + drainPerClimb*climb) * secs
	f.s.Battery = math.Max(reserve, f.s.Battery-d)
}

// randomPoint draws a point uniformly within radius metres of c.
func randomPoint(rng *rand.Rand, c Point, radius float64) Point {
	r := radius * math.Sqrt(rng.Float64())
	return destination(c, rng.Float64()*360, r)
}

func rad(d float64) float64 { return d * math.Pi / 180 }
func deg(r float64) float64 { return r * 180 / math.Pi }

// distance is the great-circle distance in metres (haversine).
func distance(a, b Point) float64 {
	dLat := rad(b.Lat - a.Lat)
	dLon := rad(b.Lon - a.Lon)
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(rad(a.Lat))*math.Cos(rad(b.Lat))*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadius * math.Asin(math.Min(1, math.Sqrt(h)))
}

// bearing is the initial great-circle bearing from a to b, degrees [0, 360).
func bearing(a, b Point) float64 {
	φ1, φ2 := rad(a.Lat), rad(b.Lat)
	dλ := rad(b.Lon - a.Lon)
	y := math.Sin(dλ) * math.Cos(φ2)
	x := math.Cos(φ1)*math.Sin(φ2) - math.Sin(φ1)*math.Cos(φ2)*math.Cos(dλ)
	return normDeg(deg(math.Atan2(y, x)))
}

// destination is the point d metres from p along initial bearing brg.
func destination(p Point, brg, d float64) Point {
	δ := d / earthRadius
	θ := rad(brg)
	φ1, λ1 := rad(p.Lat), rad(p.Lon)
	φ2 := math.Asin(math.Sin(φ1)*math.Cos(δ) + math.Cos(φ1)*math.Sin(δ)*math.Cos(θ))
	λ2 := λ1 + math.Atan2(math.Sin(θ)*math.Sin(δ)*math.Cos(φ1), math.Cos(δ)-math.Sin(φ1)*math.Sin(φ2))
	lon := math.Mod(deg(λ2)+540, 360) - 180
	return Point{Lat: deg(φ2), Lon: lon}
}

func normDeg(d float64) float64 {
	d = math.Mod(d, 360)
	if d < 0 {
		d += 360
	}
	if d >= 360 { // -0 .. rounding
		d = 0
	}
	return d
}
