package function

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dronetrack/dronetrack/core/cache"
	"github.com/dronetrack/dronetrack/core/remoteid"
	"github.com/dronetrack/dronetrack/core/ridauth"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// ridRoutes are the Remote ID endpoints: the F3411-22a SP interface under
// /rid/v2 (the base URL a deployment registers with the DSS is
// https://HOST/rid/v2) and InterUSS's injection interface under
// /rid/injection.
func (s *server) ridRoutes(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(s.requireRIDScope(ridauth.ScopeDisplayProvider))
		r.Get("/rid/v2/uss/flights", s.ridFlights)
		r.Get("/rid/v2/uss/flights/{id}/details", s.ridDetails)
	})
	r.Group(func(r chi.Router) {
		r.Use(s.requireRIDScope(ridauth.ScopeInjectTestData))
		r.Put("/rid/injection/tests/{test_id}", s.ridCreateTest)
		r.Delete("/rid/injection/tests/{test_id}/{version}", s.ridDeleteTest)
	})
}

// ridRecentConcurrency bounds the history reads of one /flights request
// that asks for recent positions.
const ridRecentConcurrency = 8

// ridFlights is GET /rid/v2/uss/flights?view=lat1,lng1,lat2,lng2
// [&recent_positions_duration=S]: the flights of Remote ID tenants (and
// injected test flights) with a position in the view within the last 60 s.
func (s *server) ridFlights(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	view, err := remoteid.ParseView(q.Get("view"))
	if err != nil {
		ridProblem(w, http.StatusBadRequest, "bad view: "+err.Error(),
			events.FieldError{Field: "view", Pointer: "/view", Detail: err.Error()})
		return
	}
	if err := remoteid.CheckView(view); err != nil {
		ridProblem(w, http.StatusRequestEntityTooLarge, err.Error(),
			events.FieldError{Field: "view", Pointer: "/view", Detail: err.Error()})
		return
	}
	var recent time.Duration
	if v := q.Get("recent_positions_duration"); v != "" {
		sec, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(sec) || sec < 0 || sec > remoteid.NearRealTimeWindow.Seconds() {
			d := "want seconds from 0 to 60"
			ridProblem(w, http.StatusBadRequest, "bad recent_positions_duration: "+d,
				events.FieldError{Field: "recent_positions_duration", Pointer: "/recent_positions_duration", Detail: d})
			return
		}
		recent = time.Duration(sec * float64(time.Second))
	}
	now := s.now()
	snap, err := s.rid.snapshot(ctx, now)
	if err != nil {
		s.ridStoreFailed(w, r, err)
		return
	}
	flights := []remoteid.Flight{}
	for _, tenantID := range snap.tenants {
		fs, err := s.ridTenantFlights(ctx, snap, tenantID, view, now, recent)
		if err != nil {
			s.ridStoreFailed(w, r, err)
			return
		}
		flights = append(flights, fs...)
	}
	for _, t := range snap.tests {
		for i := range t.flights {
			if f, ok := t.flights[i].Flight(now, view, recent); ok {
				flights = append(flights, f)
			}
		}
	}
	slices.SortFunc(flights, func(a, b remoteid.Flight) int { return strings.Compare(a.ID, b.ID) })
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, remoteid.FlightsResponse{Timestamp: remoteid.NewTime(now), Flights: flights})
}

// ridTenantFlights reads one tenant's drones in the view from the cache's
// geo index (the store when the cache is down) and maps the fresh ones.
func (s *server) ridTenantFlights(ctx context.Context, snap *ridSnapshot, tenantID string, view remoteid.View,
	now time.Time, recent time.Duration) ([]remoteid.Flight, error) {
	var drones []cache.DroneView
	for _, b := range view.Boxes() {
		box := cache.BBox{MinLon: b.MinLng, MinLat: b.MinLat, MaxLon: b.MaxLng, MaxLat: b.MaxLat}
		f, err := s.cache.FleetInBox(ctx, tenantID, box)
		switch {
		case err == nil:
			var part []cache.DroneView
			if err := json.Unmarshal(f.JSON, &part); err != nil {
				return nil, err
			}
			drones = append(drones, part...)
		case errors.Is(err, cache.ErrUnavailable):
			ds, serr := s.store.Drones(ctx, tenantID)
			if serr != nil {
				return nil, serr
			}
			for _, d := range inBox(ds, box) {
				drones = append(drones, cache.DroneView{ID: d.ID, Name: d.Name, State: d.State})
			}
		default:
			return nil, err
		}
	}
	idents := snap.idents[tenantID]
	var out []remoteid.Flight
	for _, d := range drones {
		if d.State == nil || !remoteid.FreshState(*d.State, now) || !validFlightID(d.ID) {
			continue
		}
		var ident *remoteid.Identity
		if idents != nil {
			ident = idents.byDrone[d.ID]
		}
		out = append(out, remoteid.NewFlight(d.ID, ident, remoteid.FromState(*d.State)))
	}
	if recent > 0 && len(out) > 0 {
		if err := s.ridRecentPositions(ctx, tenantID, out, view, now, recent); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ridRecentPositions fills recent_positions from each flight's history:
// the samples within the duration that lie in the view, with their
// neighbours (entering and leaving), as the standard allows.
func (s *server) ridRecentPositions(ctx context.Context, tenantID string, fs []remoteid.Flight, view remoteid.View,
	now time.Time, recent time.Duration) error {
	sem := make(chan struct{}, ridRecentConcurrency)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for i := range fs {
		wg.Add(1)
		sem <- struct{}{}
		go func(f *remoteid.Flight) {
			defer func() { <-sem; wg.Done() }()
			pts, err := s.store.Track(ctx, store.TrackQuery{TenantID: tenantID, DroneID: f.ID,
				From: now.Add(-recent), To: now.Add(time.Nanosecond), Limit: 600})
			if err != nil {
				if !errors.Is(err, store.ErrNotFound) {
					mu.Lock()
					first = cmpErr(first, err)
					mu.Unlock()
				}
				return
			}
			in := func(i int) bool { return view.Contains(pts[i].Report.Lat, pts[i].Report.Lon) }
			for i := range pts {
				if in(i) || (i > 0 && in(i-1)) || (i+1 < len(pts) && in(i+1)) {
					t := remoteid.FromReport(pts[i].Report)
					f.RecentPositions = append(f.RecentPositions, remoteid.RecentPosition{
						Time: remoteid.NewTime(t.TS), Position: t.Position()})
				}
			}
		}(&fs[i])
	}
	wg.Wait()
	return first
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// validFlightID reports whether a drone id can be a RIDFlightID (1-255
// characters, none of \0 \t \r \n # % / : ? @ [ \ ]). Generated drone
// ids always can; an imported odd one is left out rather than broken.
func validFlightID(id string) bool {
	return id != "" && len(id) <= 255 && !strings.ContainsAny(id, "\x00\t\r\n#%/:?@[\\]")
}

// ridDetails is GET /rid/v2/uss/flights/{id}/details: the identity of a
// flight currently reported (404 otherwise, including every drone of a
// tenant without Remote ID).
func (s *server) ridDetails(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := chi.URLParam(r, "id")
	now := s.now()
	snap, err := s.rid.snapshot(ctx, now)
	if err != nil {
		s.ridStoreFailed(w, r, err)
		return
	}
	if strings.HasPrefix(id, "rid-test.") {
		for _, t := range snap.tests {
			for i := range t.flights {
				if f := &t.flights[i]; f.FlightID() == id && f.Active(now) {
					writeJSON(w, http.StatusOK, remoteid.DetailsResponse{Details: f.Details(now)})
					return
				}
			}
		}
		ridProblem(w, http.StatusNotFound, "no such flight")
		return
	}
	// The drone's tenant: known from the snapshot, else (a drone added
	// since) each Remote ID tenant is asked; other tenants never are.
	tenants := snap.tenants
	if t, ok := snap.owner[id]; ok {
		tenants = []string{t}
	}
	for _, tenantID := range tenants {
		st, found, err := s.ridDroneState(ctx, tenantID, id)
		if err != nil {
			s.ridStoreFailed(w, r, err)
			return
		}
		if !found {
			continue
		}
		if st == nil || !remoteid.FreshState(*st, now) {
			break
		}
		var ident *remoteid.Identity
		if ti := snap.idents[tenantID]; ti != nil {
			ident = ti.byDrone[id]
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, remoteid.DetailsResponse{Details: remoteid.Details(id, ident, remoteid.Home(*st), s.rid.secret)})
		return
	}
	ridProblem(w, http.StatusNotFound, "no such flight")
}

// ridDroneState reads a tenant's drone's latest state, cache first.
func (s *server) ridDroneState(ctx context.Context, tenantID, droneID string) (*events.DroneState, bool, error) {
	body, err := s.cache.Drone(ctx, tenantID, droneID)
	switch {
	case err == nil:
		var d cache.DroneView
		if err := json.Unmarshal(body, &d); err != nil {
			return nil, false, err
		}
		return d.State, true, nil
	case errors.Is(err, store.ErrNotFound):
		return nil, false, nil
	case errors.Is(err, cache.ErrUnavailable):
		d, err := s.store.Drone(ctx, tenantID, droneID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		return d.State, true, nil
	default:
		return nil, false, err
	}
}

func (s *server) ridStoreFailed(w http.ResponseWriter, r *http.Request, err error) {
	s.log.WarnContext(r.Context(), "remote id read failed", "path", r.URL.Path, "err", err)
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, cache.ErrUnavailable) {
		w.Header().Set("Retry-After", "2")
		ridProblem(w, http.StatusServiceUnavailable, "the fleet store is unavailable")
		return
	}
	ridProblem(w, http.StatusInternalServerError, "could not read the fleet")
}
