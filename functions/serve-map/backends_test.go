package function

import (
	_ "github.com/dronetrack/dronetrack/core/cache/local"
	"github.com/dronetrack/dronetrack/core/store/bolt"
	"github.com/dronetrack/dronetrack/core/store/firestore"
)

// Tests open one-machine stores (bolt://) and caches (local://), which
// importing bolt and core/cache/local registers; the deployable build links
// neither (backends.go).
//
// Both backends satisfy the store serve-map declares (store.go). The check
// sits in a test file so that the serve-map binary does not link bbolt.
var (
	_ openedStore = (*bolt.Store)(nil)
	_ openedStore = (*firestore.Store)(nil)
)
