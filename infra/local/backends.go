package local

// The store backends `dronetrack` opens by URL (core/store/storeurl): bbolt
// in the data dir for one machine, Firestore when STORE_URL names a cluster
// store; likewise the cache's local:// and redis:// (core/cache). Each
// registers its scheme when imported.
import (
	_ "github.com/dronetrack/dronetrack/core/cache/local"
	_ "github.com/dronetrack/dronetrack/core/cache/redis"
	_ "github.com/dronetrack/dronetrack/core/store/bolt"
	_ "github.com/dronetrack/dronetrack/core/store/firestore"
)
