package local

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/dronetrack/dronetrack/core/keys"
	"github.com/dronetrack/dronetrack/core/store"
)

// StoreAdmin administers a store (and broker) this process opened.
type StoreAdmin struct {
	store  store.Store
	pepper string
	broker Broker // nil when the command opened no broker
	// dir and owned are set when openLocalAdmin opened the handles itself,
	// so Close closes them; inside `up` the system owns them.
	dir   string
	owned bool
}

func (a *StoreAdmin) CreateTenant(ctx context.Context, id, name string) (store.Tenant, error) {
	if id == "" || name == "" {
		return store.Tenant{}, errors.New("a tenant needs an id and a name")
	}
	t := store.Tenant{ID: id, Name: name, CreatedAt: time.Now().UTC()}
	if err := a.store.CreateTenant(ctx, t); err != nil {
		return store.Tenant{}, fmt.Errorf("create tenant %s: %w", id, err)
	}
	return t, nil
}

func (a *StoreAdmin) AddDrone(ctx context.Context, tenantID, name string) (newDrone, error) {
	if tenantID == "" || name == "" {
		return newDrone{}, errors.New("a drone needs a tenant and a name")
	}
	if _, err := a.store.Tenant(ctx, tenantID); err != nil {
		return newDrone{}, err // names the tenant already
	}
	key, err := keys.Generate()
	if err != nil {
		return newDrone{}, err
	}
	raw := make([]byte, 8)
	if _, err := rand.Read(raw); err != nil {
		return newDrone{}, fmt.Errorf("drone id: %w", err)
	}
	d := store.Drone{
		ID: "d" + hex.EncodeToString(raw), TenantID: tenantID, Name: name,
		KeyHash: keys.Hash([]byte(a.pepper), key), CreatedAt: time.Now().UTC(),
	}
	if err := a.store.CreateDrone(ctx, d); err != nil {
		return newDrone{}, fmt.Errorf("create drone %s: %w", name, err)
	}
	return newDrone{TenantID: tenantID, DroneID: d.ID, Name: name, Key: key}, nil
}

func (a *StoreAdmin) DeadLetters(ctx context.Context) ([]deadLetter, error) {
	b, err := a.ensureBroker(ctx)
	if err != nil {
		return nil, err
	}
	return b.DeadLetters(ctx)
}

func (a *StoreAdmin) Replay(ctx context.Context, id string) error {
	b, err := a.ensureBroker(ctx)
	if err != nil {
		return err
	}
	return b.Replay(ctx, id)
}

func (a *StoreAdmin) ensureBroker(context.Context) (Broker, error) {
	if a.broker == nil {
		// Opening the broker starts delivering (and would drop the durable
		// consumers of Triggers it was not given), so the dead letters are
		// read only through the running up that owns the broker.
		return nil, fmt.Errorf("dead letters are served by a running `dronetrack up --data %s`; start it, then run this again", a.dir)
	}
	return a.broker, nil
}

func (a *StoreAdmin) Close() error {
	if !a.owned {
		return nil
	}
	var errs []error
	if a.broker != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		errs = append(errs, a.broker.Shutdown(ctx))
	}
	errs = append(errs, a.store.Close())
	return errors.Join(errs...)
}

// OpenStoreAdmin opens the data dir's store (the one `up --store` recorded
// there, else its bolt file; or the one storeOverride names) for an admin command run while no `up` serves this data dir.
func OpenStoreAdmin(ctx context.Context, dir, storeOverride string) (*StoreAdmin, error) {
	url := storeOverride
	a := &StoreAdmin{owned: true}
	if url == "" {
		a.dir = dir
		if _, err := absDataDir(dir); err != nil {
			return nil, err
		}
		if _, err := checkFormat(dir); err != nil {
			return nil, err
		}
		// The store `up --store` ran this data dir against, else its own.
		recorded, err := RecordedStore(dir)
		if err != nil {
			return nil, err
		}
		url = cmp.Or(recorded, StoreURL(dir))
	}
	// Drone keys must hash under the pepper ingest uses: the cluster's
	// DRONE_KEY_PEPPER when given, else the data dir's.
	a.pepper = os.Getenv("DRONE_KEY_PEPPER")
	if a.pepper == "" {
		pepper, err := LoadPepper(dir)
		if err != nil {
			return nil, err
		}
		a.pepper = pepper
	}
	st, err := OpenStore(ctx, url)
	if err != nil {
		return nil, err
	}
	a.store = st
	return a, nil
}
