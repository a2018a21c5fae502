package function

import (
	"context"
	"fmt"

	"github.com/dronetrack/dronetrack/core/store"
)

// openStore opens STORE_URL. It switches to core/store/storeurl (shared bolt
// handles in one-machine mode) as soon as that package exists.
func openStore(_ context.Context, url string) (store.Store, func() error, error) {
	return nil, nil, fmt.Errorf("store url %q: no store opener linked yet", url)
}
