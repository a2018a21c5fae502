package function

import (
	"context"
	"errors"
	"fmt"
	"io"
)

var errNoStore = errors.New("no store adapter")

// openStore is the default StoreOpener.
func openStore(ctx context.Context, storeURL string) (DroneFinder, io.Closer, error) {
	return nil, nil, fmt.Errorf("%w for %q: core/store/storeurl is not wired in yet", errNoStore, storeURL)
}
