package function

// Tests open one-machine stores (bolt://); the deployable build does not
// link bbolt (backends.go).
import _ "github.com/dronetrack/dronetrack/core/store/bolt"
