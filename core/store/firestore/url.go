package firestore

import (
	"context"
	"fmt"
	"net/url"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/storeurl"
)

// Scheme is the store URL scheme this package registers with storeurl:
// firestore://PROJECT[?database=NAME] (the emulator when
// FIRESTORE_EMULATOR_HOST is set).
const Scheme = "firestore"

func init() { storeurl.Register(Scheme, storeurl.OpenerFunc(openURL)) }

func openURL(ctx context.Context, u *url.URL) (store.Store, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("store url %q: want firestore://PROJECT[?database=NAME]", u.Redacted())
	}
	st, err := Open(ctx, u.Host, u.Query().Get("database"))
	if err != nil {
		return nil, err
	}
	return st, nil
}
