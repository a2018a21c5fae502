module github.com/dronetrack/dronetrack/functions/process

go 1.26

require (
	github.com/dronetrack/dronetrack/core v0.0.0
	github.com/dronetrack/dronetrack/events v0.0.0
)

replace (
	github.com/dronetrack/dronetrack/core => ../../core
	github.com/dronetrack/dronetrack/events => ../../events
)
