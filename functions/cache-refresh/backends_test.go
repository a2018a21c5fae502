package function

// Tests open in-process caches (local://), which importing core/cache/local
// registers; the deployable build does not link it (backends.go).
import _ "github.com/dronetrack/dronetrack/core/cache/local"
