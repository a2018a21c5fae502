package function

import (
	"context"

	"github.com/dronetrack/dronetrack/core/store/storeurl"
)

// openStore opens STORE_URL through storeurl; in one-machine mode the bolt
// backend hands every function of the process the same file handle.
func openStore(ctx context.Context, url string) (Store, func() error, error) {
	st, err := storeurl.Open(ctx, url)
	if err != nil {
		return nil, nil, err
	}
	return st, st.Close, nil
}
