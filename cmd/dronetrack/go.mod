module github.com/dronetrack/dronetrack/cmd/dronetrack

go 1.26.0

toolchain go1.26.10

require (
	github.com/dronetrack/dronetrack/core v0.0.0
	github.com/dronetrack/dronetrack/events v0.0.0
	github.com/dronetrack/dronetrack/functions/alerts v0.0.0
	github.com/dronetrack/dronetrack/functions/cache-refresh v0.0.0
	github.com/dronetrack/dronetrack/functions/ingest v0.0.0
	github.com/dronetrack/dronetrack/functions/process v0.0.0
	github.com/dronetrack/dronetrack/functions/serve-map v0.0.0
	github.com/dronetrack/dronetrack/infra v0.0.0
)

require (
	github.com/chromedp/cdproto v0.159.0
	github.com/chromedp/chromedp v0.23.0
	golang.org/x/crypto v0.59.0
)

require (
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
	github.com/sethvargo/go-envconfig v1.4.3 // indirect
)

replace (
	github.com/dronetrack/dronetrack/core => ../../core
	github.com/dronetrack/dronetrack/events => ../../events
	github.com/dronetrack/dronetrack/functions/alerts => ../../functions/alerts
	github.com/dronetrack/dronetrack/functions/cache-refresh => ../../functions/cache-refresh
	github.com/dronetrack/dronetrack/functions/ingest => ../../functions/ingest
	github.com/dronetrack/dronetrack/functions/process => ../../functions/process
	github.com/dronetrack/dronetrack/functions/serve-map => ../../functions/serve-map
	github.com/dronetrack/dronetrack/infra => ../../infra
)
