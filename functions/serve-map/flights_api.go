package function

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/flights"
	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// Flight API limits.
const (
	DefaultFlightWindow = 7 * 24 * time.Hour // lists without from= look back a week
	MaxFlightWindow     = 366 * 24 * time.Hour
	DefaultFlightLimit  = 200
	MaxFlightLimit      = 1000
	// MaxExportPoints bounds one export (a day at 1 Hz is 86,400 points).
	MaxExportPoints = 200_000
	// MaxExportWindow bounds a drone's time-range export.
	MaxExportWindow = 31 * 24 * time.Hour
	// maxFlightAlerts bounds the alerts read to find a flight's.
	maxFlightAlerts = 1000
)

// flightRoutes are the tenant-scoped flight endpoints. Every member reads
// flights and exports; changing the detection settings needs a manager.
func (s *server) flightRoutes(r chi.Router) {
	r.Get("/api/v1/flights", s.listFleetFlights)
	r.Get("/api/v1/drones/{id}/flights", s.listDroneFlights)
	r.Get("/api/v1/flights/{id}", s.getFlight)
	r.Get("/api/v1/flights/{id}/export", s.exportFlight)
	r.Get("/api/v1/drones/{id}/export", s.exportDroneRange)
	r.Get("/api/v1/flight-settings", s.getFlightSettings)
	r.With(requireManager).Put("/api/v1/flight-settings", s.putFlightSettings)
}

// rangeParams reads from=, to= (RFC 3339; to defaults to now, from to
// to - def) and checks from < to and the span.
func (s *server) rangeParams(r *http.Request, def, maxSpan time.Duration) (from, to time.Time, bad []events.FieldError) {
	q := r.URL.Query()
	to = timeParam(q, "to", s.now(), &bad)
	from = timeParam(q, "from", to.Add(-def), &bad)
	if len(bad) == 0 {
		switch {
		case !from.Before(to):
			bad = append(bad, events.FieldError{Field: "from", Pointer: "/from", Detail: "must be before to"})
		case to.Sub(from) > maxSpan:
			bad = append(bad, events.FieldError{Field: "from", Pointer: "/from",
				Detail: "the range may span at most " + strconv.Itoa(int(maxSpan/time.Hour)) + " h"})
		}
	}
	return from, to, bad
}

// timeParam reads the RFC 3339 query parameter name, def when absent; a
// malformed one is added to bad.
func timeParam(q url.Values, name string, def time.Time, bad *[]events.FieldError) time.Time {
	v := q.Get(name)
	if v == "" {
		return def
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		*bad = append(*bad, events.FieldError{Field: name, Pointer: "/" + name, Detail: "want an RFC 3339 timestamp"})
	}
	return t
}

func limitParam(r *http.Request, def, max int) (int, []events.FieldError) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, []events.FieldError{{Field: "limit", Pointer: "/limit", Detail: "want an integer from 1 to " + strconv.Itoa(max)}}
	}
	return n, nil
}

type flightList struct {
	Flights []flights.Flight `json:"flights"`
	// ReplayOwed is set on a drone's list while late reports of the drone
	// wait for its flights to be replayed (docs/flights.md): its flights
	// from ReplayOwed.From on may still change.
	ReplayOwed *replayOwed `json:"replayOwed,omitempty"`
}

// replayOwed is a drone's flights replay owed (flights.Owed), as the API
// shows it.
type replayOwed struct {
	From  time.Time `json:"from"`  // flights starting from here may change
	Since time.Time `json:"since"` // when the first late report was written
}

func (s *server) listFlights(w http.ResponseWriter, r *http.Request, droneID string) {
	from, to, bad := s.rangeParams(r, DefaultFlightWindow, MaxFlightWindow)
	limit, lbad := limitParam(r, DefaultFlightLimit, MaxFlightLimit)
	if bad = append(bad, lbad...); len(bad) > 0 {
		badParams(w, bad...)
		return
	}
	var body flightList
	if droneID != "" {
		if _, ok := s.droneDoc(w, r); !ok { // 404 for another tenant's drone
			return
		}
		// Read before the flights: a replay paid in between leaves the
		// flag on flights already replayed (asked again, it is gone),
		// never off flights that may still change.
		owed, err := s.store.OwedReplay(r.Context(), TenantFrom(r.Context()), droneID)
		if err != nil {
			s.storeFailed(w, r, err)
			return
		}
		if owed != nil {
			body.ReplayOwed = &replayOwed{From: owed.From.UTC(), Since: owed.Since.UTC()}
		}
	}
	list, err := s.store.ListFlights(r.Context(), store.FlightQuery{TenantID: TenantFrom(r.Context()), DroneID: droneID,
		From: from, To: to, Limit: limit})
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	body.Flights = nonNil(list)
	w.Header().Set("Cache-Control", "private, no-cache")
	writeJSON(w, http.StatusOK, body)
}

// listFleetFlights is GET /api/v1/flights?from=&to=&limit=: the tenant's
// flights starting in [from, to), newest first.
func (s *server) listFleetFlights(w http.ResponseWriter, r *http.Request) { s.listFlights(w, r, "") }

// listDroneFlights is GET /api/v1/drones/{id}/flights?from=&to=&limit=.
func (s *server) listDroneFlights(w http.ResponseWriter, r *http.Request) {
	s.listFlights(w, r, chi.URLParam(r, "id"))
}

// flightDetail is the body of GET /api/v1/flights/{id}: the flight and the
// alerts of its drone opened during it.
type flightDetail struct {
	flights.Flight
	Alerts []alerting.Alert `json:"alerts"`
}

// flightOf finds the caller's flight, answering the error itself.
func (s *server) flightOf(w http.ResponseWriter, r *http.Request) (flights.Flight, bool) {
	f, err := s.store.Flight(r.Context(), TenantFrom(r.Context()), chi.URLParam(r, "id"))
	switch {
	case err == nil:
		return f, true
	case errors.Is(err, store.ErrNotFound):
		problem.Write(w, http.StatusNotFound, "", "no such flight in your fleet", problem.WithInstance(r.URL.Path))
	default:
		s.storeFailed(w, r, err)
	}
	return flights.Flight{}, false
}

// getFlight is GET /api/v1/flights/{id}; another tenant's flight is 404.
func (s *server) getFlight(w http.ResponseWriter, r *http.Request) {
	f, ok := s.flightOf(w, r)
	if !ok {
		return
	}
	all, err := s.store.ListAlerts(r.Context(), f.TenantID, f.Start, maxFlightAlerts)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	d := flightDetail{Flight: f, Alerts: []alerting.Alert{}}
	for _, a := range all {
		if a.DroneID == f.DroneID && !a.OpenedAt.Before(f.Start) && !a.OpenedAt.After(f.End) {
			d.Alerts = append(d.Alerts, a)
		}
	}
	w.Header().Set("Cache-Control", "private, no-cache")
	writeJSON(w, http.StatusOK, d)
}

// exportFlight is GET /api/v1/flights/{id}/export?format=gpx|kml|csv|geojson:
// the flight's track in that format, as a download.
func (s *server) exportFlight(w http.ResponseWriter, r *http.Request) {
	format, ok := exportFormat(w, r)
	if !ok {
		return
	}
	f, ok := s.flightOf(w, r)
	if !ok {
		return
	}
	name := s.droneName(r, f.DroneID)
	s.export(w, r, format, exportMeta{Title: name + " flight " + f.Start.UTC().Format(time.RFC3339), DroneID: f.DroneID,
		DroneName: name, FlightID: f.ID, File: f.DroneID + "-" + f.Start.UTC().Format("20060102T150405Z")},
		f.Start, f.End.Add(time.Microsecond))
}

// exportDroneRange is GET /api/v1/drones/{id}/export?from=&to=&format=: a
// drone's track in [from, to) (default the last hour) as a download.
func (s *server) exportDroneRange(w http.ResponseWriter, r *http.Request) {
	format, ok := exportFormat(w, r)
	if !ok {
		return
	}
	from, to, bad := s.rangeParams(r, DefaultTrackWindow, MaxExportWindow)
	if len(bad) > 0 {
		badParams(w, bad...)
		return
	}
	if _, ok := s.droneDoc(w, r); !ok { // 404 for another tenant's drone
		return
	}
	id := chi.URLParam(r, "id")
	name := s.droneName(r, id)
	s.export(w, r, format, exportMeta{Title: name + " " + from.UTC().Format(time.RFC3339) + " to " + to.UTC().Format(time.RFC3339),
		DroneID: id, DroneName: name, File: id + "-" + from.UTC().Format("20060102T150405Z")}, from, to)
}

func exportFormat(w http.ResponseWriter, r *http.Request) (string, bool) {
	f := r.URL.Query().Get("format")
	if _, ok := exporters[f]; !ok {
		badParams(w, events.FieldError{Field: "format", Pointer: "/format", Detail: "want one of gpx, kml, csv, geojson"})
		return "", false
	}
	return f, true
}

func (s *server) droneName(r *http.Request, id string) string {
	if d, err := s.store.Drone(r.Context(), TenantFrom(r.Context()), id); err == nil && d.Name != "" {
		return d.Name
	}
	return id
}

func (s *server) export(w http.ResponseWriter, r *http.Request, format string, meta exportMeta, from, to time.Time) {
	var pts []events.Report
	var after time.Time
	for {
		page, err := s.store.Track(r.Context(), store.TrackQuery{TenantID: TenantFrom(r.Context()), DroneID: meta.DroneID,
			From: from, To: to, After: after, Limit: MaxTrackLimit})
		if err != nil {
			s.storeFailed(w, r, err)
			return
		}
		for _, p := range page {
			pts = append(pts, p.Report)
		}
		if len(pts) > MaxExportPoints {
			badParams(w, events.FieldError{Field: "from", Pointer: "/from",
				Detail: "more than " + strconv.Itoa(MaxExportPoints) + " points; export a shorter range"})
			return
		}
		if len(page) < MaxTrackLimit {
			break
		}
		after = page[len(page)-1].Report.TS
	}
	ex := exporters[format]
	body, err := ex.write(meta, pts)
	if err != nil {
		s.log.ErrorContext(r.Context(), "export", "format", format, "err", err)
		problem.Write(w, http.StatusInternalServerError, "", "could not write the export")
		return
	}
	w.Header().Set("Content-Type", ex.contentType)
	w.Header().Set("Content-Disposition", `attachment; filename="`+safeFileName(meta.File)+"."+format+`"`)
	w.Header().Set("Cache-Control", "private, no-cache")
	_, _ = w.Write(body)
}

// safeFileName keeps a download name to characters every OS accepts.
func safeFileName(s string) string {
	return strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			return c
		}
		return '_'
	}, s)
}

// getFlightSettings is GET /api/v1/flight-settings.
func (s *server) getFlightSettings(w http.ResponseWriter, r *http.Request) {
	st, err := s.store.FlightSettings(r.Context(), TenantFrom(r.Context()))
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// putFlightSettings is PUT /api/v1/flight-settings (managers). New
// settings apply to reports processed from then on; flights already
// stored stay as they were found.
func (s *server) putFlightSettings(w http.ResponseWriter, r *http.Request) {
	var st flights.Settings
	if !decodeBody(w, r, &st) {
		return
	}
	if errs := st.Validate(); len(errs) > 0 {
		problem.Write(w, http.StatusBadRequest, "Invalid body", "fix the named fields", problem.WithErrors(errs))
		return
	}
	if err := s.store.PutFlightSettings(r.Context(), TenantFrom(r.Context()), st); err != nil {
		s.storeFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}
