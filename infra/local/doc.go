// Package local is Dronetrack on one machine, the runtime `dronetrack up`
// starts: the Knative-style broker of core/broker on a loopback listener,
// every function of Registry on its own loopback server served the way
// func-go serves it (host.go), a scheduler standing in for the PingSource,
// the public listener (plain HTTP or HTTPS, tls.go) that plays the ingress
// gateway, and the loopback admin endpoint the admin commands of another
// process use (admin.go). It also owns the data dir: its files and format
// (datadir.go, format.go), the demo tenant, drones and login it seeds, and
// backups of a running system and their restore (backup.go).
//
// Start opens a System from Options and returns once the public listener
// serves; System.URL is where, System.Functions what runs, and
// System.Shutdown stops it in reverse order. Registry is the one ordered
// list of functions (name, constructor, func.yaml, Config, Triggers) that
// Start, the system tests (test/system) and infra's checks against the
// manifests iterate. The command line lives in cmd/dronetrack/cli.
package local
