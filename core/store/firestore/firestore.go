// Package firestore is the cluster store: store.Store on Cloud Firestore.
//
// Model: tenants/{tenantId}; drones/{droneId} with tenantId, name, keyHash,
// createdAt and the latest state as a map; droneKeys/{keyHash} -> {droneId,
// tenantId}, created in the drone's transaction so a key maps to one drone;
// drones/{droneId}/track/{tsNanos} history points with expireAt for the TTL
// policy. Timestamps are kept to the microsecond.
//
// Production config this code relies on (the emulator enforces none of it):
//   - TTL policy on collection group "track", field "expireAt"; points
//     without expireAt never expire. Track filters expired points itself
//     because TTL deletion lags by up to a day.
//   - Single-field index exemptions for track.ts and track.expireAt: Track
//     ranges over document ids, so these sequential fields need no index
//     (an indexed sequential field caps a collection at ~500 writes/s).
//   - Drones queries tenantId == X ordered by document id: served by the
//     automatic single-field index, no composite index.
//
// AppendTrack commits WriteBatches of up to 500 writes concurrently: faster
// than a fresh BulkWriter per call, which also ramps up from 500 ops/s
// (BenchmarkAppendTrack; figures in docs/performance.md).
//
// Each call to Firestore costs more than the documents it carries
// (BenchmarkClusterPath), so the hot paths save calls: WriteDrone writes a
// batch's points, state and flights in one commit, and it and
// EvaluateAlerts read, then commit with update-time preconditions instead
// of a transaction's begin, read and commit, falling back to the
// transaction when a precondition refuses.
//
// With FIRESTORE_EMULATOR_HOST set the client talks to the emulator and needs
// no credentials.
package firestore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	fs "cloud.google.com/go/firestore"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// maxBatchWrites is Firestore's limit of writes per commit.
const maxBatchWrites = 500

// txAttempts bounds UpdateState's transaction retries. The client default
// (5) gave up under 20 concurrent updates of one drone on the emulator;
// process coalesces per drone, so contention in production is far lower.
const txAttempts = 30

// appendMode selects how AppendTrack writes.
type appendMode int

const (
	// appendBatches commits WriteBatches of <= 500 writes, concurrently:
	// measured faster than a BulkWriter per call (see BenchmarkAppendTrack).
	appendBatches appendMode = iota
	// appendBulkWriter uses a fresh BulkWriter per call (a BulkWriter
	// refuses a second write to a path for its whole life).
	appendBulkWriter
)

// Store is a store.Store on one Firestore database.
type Store struct {
	client *fs.Client
	now    func() time.Time
	mode   appendMode
}

var _ store.Store = (*Store)(nil)

// Open connects to the database (databaseID "" is the default database) of
// projectID.
func Open(ctx context.Context, projectID, databaseID string) (*Store, error) {
	return openWith(ctx, projectID, databaseID)
}

// openWith is Open with client options (tests count RPCs with them).
func openWith(ctx context.Context, projectID, databaseID string, opts ...option.ClientOption) (*Store, error) {
	if databaseID == "" {
		databaseID = fs.DefaultDatabaseID
	}
	c, err := fs.NewClientWithDatabase(ctx, projectID, databaseID, opts...)
	if err != nil {
		return nil, mapErr(fmt.Sprintf("open firestore project %s database %s", projectID, databaseID), err)
	}
	return &Store{client: c, now: time.Now, mode: appendBatches}, nil
}

// Close releases the client's connections.
func (s *Store) Close() error { return s.client.Close() }

func (s *Store) tenants() *fs.CollectionRef   { return s.client.Collection("tenants") }
func (s *Store) drones() *fs.CollectionRef    { return s.client.Collection("drones") }
func (s *Store) droneKeys() *fs.CollectionRef { return s.client.Collection("droneKeys") }
func (s *Store) track(droneID string) *fs.CollectionRef {
	return s.drones().Doc(droneID).Collection("track")
}

// mapErr wraps err with what failed and the store sentinel for its gRPC
// code, so callers branch with errors.Is: capacity and reachability problems
// (including transactions that stayed contended after retries) are
// ErrUnavailable, which ingest and process turn into a retry.
func mapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	var sentinel error
	switch status.Code(err) {
	case codes.NotFound:
		sentinel = store.ErrNotFound
	case codes.AlreadyExists:
		sentinel = store.ErrAlreadyExists
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
		sentinel = store.ErrUnavailable
	default:
		if errors.Is(err, context.DeadlineExceeded) {
			sentinel = store.ErrUnavailable
		}
	}
	if sentinel == nil || errors.Is(err, sentinel) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w: %w", what, sentinel, err)
}

// CreateTenant implements store.Store.
func (s *Store) CreateTenant(ctx context.Context, t store.Tenant) error {
	what := "create tenant " + t.ID
	if !validID(t.ID) {
		return fmt.Errorf("%s: invalid id", what)
	}
	_, err := s.tenants().Doc(t.ID).Create(ctx, tenantDoc{Name: t.Name, CreatedAt: t.CreatedAt,
		RemoteID: t.RemoteID, RemoteIDVersion: t.RemoteIDVersion})
	return mapErr(what, err)
}

// Tenant implements store.Store.
func (s *Store) Tenant(ctx context.Context, id string) (store.Tenant, error) {
	what := "get tenant " + id
	if !validID(id) {
		return store.Tenant{}, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	snap, err := s.tenants().Doc(id).Get(ctx)
	if err != nil {
		return store.Tenant{}, mapErr(what, err)
	}
	var d tenantDoc
	if err := snap.DataTo(&d); err != nil {
		return store.Tenant{}, fmt.Errorf("%s: decode: %w", what, err)
	}
	return d.tenant(id), nil
}

// CreateDrone implements store.Store: the drone and its key index entry are
// created in one transaction, so neither exists without the other.
func (s *Store) CreateDrone(ctx context.Context, d store.Drone) error {
	what := "create drone " + d.ID
	if !validID(d.ID) {
		return fmt.Errorf("%s: invalid id", what)
	}
	if d.KeyHash != "" && !validID(d.KeyHash) {
		return fmt.Errorf("%s: invalid key hash", what)
	}
	droneRef := s.drones().Doc(d.ID)
	err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *fs.Transaction) error {
		refs := []*fs.DocumentRef{droneRef}
		var keyRef *fs.DocumentRef
		if d.KeyHash != "" {
			keyRef = s.droneKeys().Doc(d.KeyHash)
			refs = append(refs, keyRef)
		}
		snaps, err := tx.GetAll(refs)
		if err != nil {
			return err
		}
		if snaps[0].Exists() {
			return fmt.Errorf("drone id taken: %w", store.ErrAlreadyExists)
		}
		if keyRef != nil {
			if snaps[1].Exists() {
				return fmt.Errorf("drone key taken: %w", store.ErrAlreadyExists)
			}
			if err := tx.Create(keyRef, keyDoc{DroneID: d.ID, TenantID: d.TenantID}); err != nil {
				return err
			}
		}
		return tx.Create(droneRef, toDroneDoc(d))
	}, fs.MaxAttempts(txAttempts))
	return mapErr(what, err)
}

// getDrone reads a drone of the tenant; another tenant's is not found.
func getDrone(snap *fs.DocumentSnapshot, err error, tenantID string) (droneDoc, error) {
	if err != nil {
		return droneDoc{}, err
	}
	var d droneDoc
	if err := snap.DataTo(&d); err != nil {
		return droneDoc{}, fmt.Errorf("decode: %w", err)
	}
	if d.TenantID != tenantID {
		// Indistinguishable from a missing drone, by design.
		return droneDoc{}, store.ErrNotFound
	}
	return d, nil
}

// Drone implements store.Store.
func (s *Store) Drone(ctx context.Context, tenantID, droneID string) (store.Drone, error) {
	what := "get drone " + droneID
	if !validID(droneID) {
		return store.Drone{}, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	snap, err := s.drones().Doc(droneID).Get(ctx)
	d, err := getDrone(snap, err, tenantID)
	if err != nil {
		return store.Drone{}, mapErr(what, err)
	}
	return d.drone(droneID), nil
}

// DroneByKeyHash implements store.Store.
func (s *Store) DroneByKeyHash(ctx context.Context, keyHash string) (store.Drone, error) {
	const what = "find drone by key"
	if !validID(keyHash) {
		return store.Drone{}, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	snap, err := s.droneKeys().Doc(keyHash).Get(ctx)
	if err != nil {
		return store.Drone{}, mapErr(what, err)
	}
	var k keyDoc
	if err := snap.DataTo(&k); err != nil {
		return store.Drone{}, fmt.Errorf("%s: decode: %w", what, err)
	}
	snap, err = s.drones().Doc(k.DroneID).Get(ctx)
	d, err := getDrone(snap, err, k.TenantID)
	if err != nil {
		return store.Drone{}, mapErr(what+": drone "+k.DroneID, err)
	}
	return d.drone(k.DroneID), nil
}

// Drones implements store.Store. Equality on tenantId ordered by document id
// needs no composite index.
func (s *Store) Drones(ctx context.Context, tenantID string) ([]store.Drone, error) {
	what := "list drones of tenant " + tenantID
	return listDocs(ctx, s.drones().Where("tenantId", "==", tenantID).OrderBy(fs.DocumentID, fs.Asc), what, droneDoc.drone)
}

// LatestState implements store.Store.
func (s *Store) LatestState(ctx context.Context, tenantID, droneID string) (events.DroneState, error) {
	d, err := s.Drone(ctx, tenantID, droneID)
	if err != nil {
		return events.DroneState{}, fmt.Errorf("latest state: %w", err)
	}
	if d.State == nil {
		return events.DroneState{}, fmt.Errorf("latest state of drone %s: %w", droneID, store.ErrNotFound)
	}
	return *d.State, nil
}

// UpdateState implements store.Store with a transaction: read the drone,
// check its tenant, ask next, update only the state field.
func (s *Store) UpdateState(ctx context.Context, tenantID, droneID string,
	next func(prev *events.DroneState) (events.DroneState, bool)) (events.DroneState, bool, error) {
	what := "update state of drone " + droneID
	if !validID(droneID) {
		return events.DroneState{}, false, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	ref := s.drones().Doc(droneID)
	var (
		cur   events.DroneState
		wrote bool
	)
	err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *fs.Transaction) error {
		cur, wrote = events.DroneState{}, false
		snap, err := tx.Get(ref)
		d, err := getDrone(snap, err, tenantID)
		if err != nil {
			return err
		}
		prev := d.State.state()
		st, ok := next(prev)
		if !ok {
			if prev != nil {
				cur = *prev
			}
			return nil
		}
		cur, wrote = st, true
		return tx.Update(ref, []fs.Update{{Path: "state", Value: toStateDoc(st)}})
	}, fs.MaxAttempts(txAttempts))
	if err != nil {
		return events.DroneState{}, false, mapErr(what, err)
	}
	return cur, wrote, nil
}

// trackWrite is one history point's document.
type trackWrite struct {
	ref *fs.DocumentRef
	doc trackDoc
}

// trackWrites checks points and makes their documents, deduplicated by
// document (last wins): a commit or BulkWriter must not write a path twice.
func (s *Store) trackWrites(what string, points []store.TrackPoint) ([]trackWrite, error) {
	var writes []trackWrite
	index := make(map[string]int, len(points))
	for _, p := range points {
		if !validID(p.DroneID) {
			return nil, fmt.Errorf("%s: invalid drone id %q", what, p.DroneID)
		}
		if !validTrackTime(p.Report.TS) {
			return nil, fmt.Errorf("%s: drone %s: ts %s outside 1970..2262", what, p.DroneID, p.Report.TS)
		}
		ref := s.track(p.DroneID).Doc(trackID(p.Report.TS))
		w := trackWrite{ref: ref, doc: toTrackDoc(p)}
		if i, dup := index[ref.Path]; dup {
			writes[i] = w
			continue
		}
		index[ref.Path] = len(writes)
		writes = append(writes, w)
	}
	return writes, nil
}

// AppendTrack implements store.Store. Points are deduplicated by document
// (last wins) first: a commit or BulkWriter must not write a path twice.
func (s *Store) AppendTrack(ctx context.Context, points []store.TrackPoint) error {
	what := fmt.Sprintf("append %d track points", len(points))
	writes, err := s.trackWrites(what, points)
	if err != nil {
		return err
	}
	if len(writes) == 0 {
		return nil
	}

	if s.mode == appendBulkWriter {
		bw := s.client.BulkWriter(ctx)
		jobs := make([]*fs.BulkWriterJob, 0, len(writes))
		for _, w := range writes {
			j, err := bw.Set(w.ref, w.doc)
			if err != nil {
				bw.End()
				return mapErr(what, err)
			}
			jobs = append(jobs, j)
		}
		bw.End()
		for _, j := range jobs {
			if _, err := j.Results(); err != nil {
				return mapErr(what, err)
			}
		}
		return nil
	}

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for start := 0; start < len(writes); start += maxBatchWrites {
		chunk := writes[start:min(start+maxBatchWrites, len(writes))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := s.client.Batch() //nolint:staticcheck // measured faster than BulkWriter; see BenchmarkAppendTrack
			for _, w := range chunk {
				b.Set(w.ref, w.doc)
			}
			if _, err := b.Commit(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return mapErr(what, errors.Join(errs...))
	}
	return nil
}

// Track implements store.Store. The range runs on document ids (time
// order); expired points are skipped here because TTL deletion lags, and
// pages are refilled so they do not come back short.
func (s *Store) Track(ctx context.Context, q store.TrackQuery) ([]store.TrackPoint, error) {
	what := "read track of drone " + q.DroneID
	if _, err := s.Drone(ctx, q.TenantID, q.DroneID); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	coll := s.track(q.DroneID)
	base := coll.OrderBy(fs.DocumentID, fs.Asc)
	if !q.To.IsZero() {
		if !q.To.After(minTrackTime) {
			return nil, nil
		}
		if q.To.Before(maxTrackTime) {
			base = base.Where(fs.DocumentID, "<", coll.Doc(trackID(q.To)))
		}
	}
	lower, inclusive := q.From, true
	if !q.After.IsZero() && !q.After.Before(q.From) {
		lower, inclusive = q.After, false
	}
	if lower.After(maxTrackTime) {
		return nil, nil
	}
	if lower.After(minTrackTime) || (lower.Equal(minTrackTime) && !inclusive) {
		op := ">="
		if !inclusive {
			op = ">"
		}
		base = base.Where(fs.DocumentID, op, coll.Doc(trackID(lower)))
	}

	now := s.now()
	var out []store.TrackPoint
	var last *fs.DocumentSnapshot
	for {
		page := base
		if last != nil {
			page = page.StartAfter(last)
		}
		want := q.Limit - len(out)
		if q.Limit > 0 {
			page = page.Limit(want)
		}
		snaps, err := page.Documents(ctx).GetAll()
		if err != nil {
			return nil, mapErr(what, err)
		}
		for _, snap := range snaps {
			var d trackDoc
			if err := snap.DataTo(&d); err != nil {
				return nil, fmt.Errorf("%s: decode %s: %w", what, snap.Ref.ID, err)
			}
			if d.TenantID != q.TenantID || (d.ExpireAt != nil && !d.ExpireAt.After(now)) {
				continue
			}
			out = append(out, d.point())
		}
		// Done without a limit (one query read everything), when the page
		// is full, or when the query came back short (no more points).
		if q.Limit <= 0 || len(out) >= q.Limit || len(snaps) < want {
			return out, nil
		}
		last = snaps[len(snaps)-1]
	}
}

// listDocs reads every document q selects, decoding each into a D and
// converting it with conv (which gets the document id), in query order.
func listDocs[D, T any](ctx context.Context, q fs.Query, what string, conv func(D, string) T) ([]T, error) {
	it := q.Documents(ctx)
	defer it.Stop()
	var out []T
	for {
		snap, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, mapErr(what, err)
		}
		var d D
		if err := snap.DataTo(&d); err != nil {
			return nil, fmt.Errorf("%s: decode %s: %w", what, snap.Ref.ID, err)
		}
		out = append(out, conv(d, snap.Ref.ID))
	}
}
