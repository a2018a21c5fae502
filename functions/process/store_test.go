package function

import (
	"github.com/dronetrack/dronetrack/core/store/bolt"
	"github.com/dronetrack/dronetrack/core/store/firestore"
)

// Both backends satisfy the store process declares. The check sits in a
// test file so that the process binary does not link bbolt.
var (
	_ openedStore = (*bolt.Store)(nil)
	_ openedStore = (*firestore.Store)(nil)
)
