package local

import (
	alerts "github.com/dronetrack/dronetrack/functions/alerts"
	cacherefresh "github.com/dronetrack/dronetrack/functions/cache-refresh"
	ingest "github.com/dronetrack/dronetrack/functions/ingest"
	process "github.com/dronetrack/dronetrack/functions/process"
	servemap "github.com/dronetrack/dronetrack/functions/serve-map"
)

// Names of the functions; they are the Knative Service names the Trigger
// manifests refer to, so the broker resolves subscribers by them.
const (
	FnIngest       = "ingest"
	FnProcess      = "process"
	FnCacheRefresh = "cache-refresh"
	FnServeMap     = "serve-map"
	FnAlerts       = "alerts"
)

// Function is one Dronetrack function as the runtime hosts it: what the
// cluster deploys as the Knative Service Name, built from functions/Name.
type Function struct {
	// Name is the Knative Service name, and the folder under functions/.
	Name string
	// New returns a fresh instance, built with the function package's New
	// exactly as func-go would.
	New func() Instance
	// FuncYAML is the function's func.yaml, embedded by its package: the
	// runtime gives the function the literal settings it names.
	FuncYAML []byte
	// Config points to a zero value of the function's typed Config, whose
	// env names are the settings --set may override.
	Config any
	// Triggers are the names of the Triggers of infra/base/triggers.yaml
	// whose subscriber is this function (none for a function only the
	// public listener calls).
	Triggers []string
}

// Registry is every function the runtime hosts, in the order it starts
// them: the consumers of events before ingest, their producer, so nothing
// published waits on a function that is not there yet (the broker would
// retry it anyway). Adding a function means adding it here; `up`, the
// system tests and infra's checks against func.yaml and the manifests all
// iterate this list.
var Registry = []Function{
	{Name: FnProcess, New: func() Instance { return process.New() }, FuncYAML: process.FuncYAML, Config: &process.Config{},
		Triggers: []string{"process"}},
	{Name: FnCacheRefresh, New: func() Instance { return cacherefresh.New() }, FuncYAML: cacherefresh.FuncYAML, Config: &cacherefresh.Config{},
		Triggers: []string{"cache-refresh"}},
	{Name: FnAlerts, New: func() Instance { return alerts.New() }, FuncYAML: alerts.FuncYAML, Config: &alerts.Config{},
		Triggers: []string{"alerts-state", "alerts-link-check", "alerts-webhooks-raised", "alerts-webhooks-resolved"}},
	{Name: FnServeMap, New: func() Instance { return servemap.New() }, FuncYAML: servemap.FuncYAML, Config: &servemap.Config{}},
	{Name: FnIngest, New: func() Instance { return ingest.New() }, FuncYAML: ingest.FuncYAML, Config: &ingest.Config{}},
}

// Lookup returns the registered function of that name.
func Lookup(name string) (Function, bool) {
	for _, f := range Registry {
		if f.Name == name {
			return f, true
		}
	}
	return Function{}, false
}

// Names lists the registered functions' names in Registry order.
func Names() []string {
	out := make([]string, len(Registry))
	for i, f := range Registry {
		out[i] = f.Name
	}
	return out
}
