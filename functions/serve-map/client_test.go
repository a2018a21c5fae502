package function

import (
	"net/http"
	"time"
)

// testClient bounds every plain API request a test makes, so a handler that
// hangs fails its test with a clear error instead of stalling the suite.
var testClient = &http.Client{Timeout: 30 * time.Second}
