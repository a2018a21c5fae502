package storeurl

import (
	"context"
	"errors"

	"github.com/dronetrack/dronetrack/core/store"
)

// openFirestore is replaced when the Firestore adapter lands.
func openFirestore(context.Context, string, string) (store.Store, error) {
	return nil, errors.New("firestore adapter not built yet")
}
