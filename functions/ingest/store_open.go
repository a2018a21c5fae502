package function

import (
	"context"
	"io"

	"github.com/dronetrack/dronetrack/core/store/storeurl"
)

// openStore is the default StoreOpener: STORE_URL through core/store/storeurl
// (bolt:// shares one handle per file in-process, firestore:// the cluster).
func openStore(ctx context.Context, storeURL string) (DroneFinder, io.Closer, error) {
	s, err := storeurl.Open(ctx, storeURL)
	if err != nil {
		return nil, nil, err
	}
	return s, s, nil
}
