// Package sim is Dronetrack's drone simulator and load generator. It flies N
// drones on plausible routes (flight.go: climb, cruise through waypoints,
// return, land, battery draining with speed and climb) and posts their reports
// to any ingest URL exactly as a drone would: POST /v1/telemetry with the
// drone's key as a Bearer token and one report (or a batch) as JSON.
//
// A request that meets 503, 429, another 5xx or a transport error is retried
// with the same body, honouring Retry-After, so the pipeline can drop the
// duplicate by event id. Reports a drone generates while it is "silent" are
// never sent: that is what a lost link looks like to the server.
//
// Routes are deterministic in Config.Seed; report timestamps are the run's
// start time plus whole ticks, so two runs differ only by their start time.
package sim
