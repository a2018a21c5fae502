package function

// The store backend this function links: Firestore, the cluster's. The
// deployable binary is knative func's generated main (cmd/*/main.go is a
// byte-for-byte copy of it, see test/knative TestHostBuild), which imports
// only this package, so the backend's registration lives here. One-machine
// mode (infra/local) imports core/store/bolt itself; tests that open
// bolt:// URLs import it in their own files.
import _ "github.com/dronetrack/dronetrack/core/store/firestore"
