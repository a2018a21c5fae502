// Package alerting holds Dronetrack's alert rules and the per-drone alert
// state machine. It is pure: no I/O, no clocks except the one passed in.
//
// Rules, evaluated on a drone's newer-wins state (core/telemetry) only,
// never on a late report:
//   - battery.low: opens when battery < Settings.LowBatteryPct, closes only
//     above LowBatteryPct+HysteresisPct, so a drone hovering at the threshold
//     raises one alert, not a storm.
//   - battery.exhaustion: opens when the predicted time to empty is under
//     Settings.MinTimeToEmptySecs; closes when it is back above 1.2 times that
//     or unknown (charging or a swapped battery resets the drain estimate).
//   - geofence.breach (one per fence): a keep-in fence is breached while the
//     drone is outside it, a keep-out fence while it is inside. Polygons are
//     tested in longitude/latitude after unwrapping longitudes around the
//     first vertex (so a fence across the antimeridian works) and a ring that
//     winds around a pole is closed over that pole; circles use great-circle
//     distance.
//   - link.lost: evaluated at a check time (a scheduled CloudEvent) against
//     the server time the drone's newest state was accepted (UpdatedAt), not
//     the drone's own clock, so a drone whose clock is skewed neither loses
//     its link nor keeps it by lying about the time. Any newer state closes it.
//
// Each (drone, kind, fence) is an episode: it opens once, may update its
// message, and closes when the condition clears. Tracker is the per-drone
// memory a store keeps in one transaction with the alerts, so a redelivered
// event cannot open a second alert.
package alerting
