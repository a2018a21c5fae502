module github.com/dronetrack/dronetrack/infra

go 1.26
