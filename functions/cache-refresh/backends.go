package function

// The cache backend this function links: Redis, the cluster's. The
// deployable binary is knative func's generated main (cmd/*/main.go is a
// byte-for-byte copy of it, see test/knative TestHostBuild), which imports
// only this package, so the backend's registration lives here. One-machine
// mode (infra/local) imports core/cache/local itself; tests that open
// local:// URLs import it in their own files (backends_test.go).
import _ "github.com/dronetrack/dronetrack/core/cache/redis"
