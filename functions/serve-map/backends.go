package function

// The store and cache backends this function links: Firestore and Redis, the
// cluster's. The deployable binary is knative func's generated main
// (cmd/*/main.go is a byte-for-byte copy of it, see test/knative
// TestHostBuild), which imports only this package, so the backends'
// registrations live here. One-machine mode (infra/local) imports
// core/store/bolt and core/cache/local itself; tests that open bolt:// or
// local:// URLs import them in their own files.
import (
	_ "github.com/dronetrack/dronetrack/core/cache/redis"
	_ "github.com/dronetrack/dronetrack/core/store/firestore"
)
