package events

import (
	"embed"
	"fmt"
)

//go:embed schema/*.json
var schemaFS embed.FS

// SchemaFiles maps each event type to the JSON Schema (draft 2020-12) of its
// data, relative to the embedded schema/ folder. Publish them with the API
// docs so third parties can produce and consume our events.
var SchemaFiles = map[string]string{
	TypeTelemetryReceived: "telemetry.received.v1.json",
	TypeStateUpdated:      "drone.state.updated.v1.json",
	TypeAlertRaised:       "drone.alert.v1.json",
	TypeAlertResolved:     "drone.alert.v1.json",
}

// Schema returns the raw JSON Schema document named file (see SchemaFiles;
// "report.v1.json" is the schema of one report as drones send it).
func Schema(file string) ([]byte, error) {
	b, err := schemaFS.ReadFile("schema/" + file)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", file, err)
	}
	return b, nil
}
