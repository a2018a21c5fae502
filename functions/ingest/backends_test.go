package function

import (
	"github.com/dronetrack/dronetrack/core/store/bolt"
	"github.com/dronetrack/dronetrack/core/store/firestore"
)

// Both backends satisfy DroneFinder, the store ingest declares. The check
// sits in a test file so that the ingest binary does not link bbolt.
var (
	_ DroneFinder = (*bolt.Store)(nil)
	_ DroneFinder = (*firestore.Store)(nil)
)
