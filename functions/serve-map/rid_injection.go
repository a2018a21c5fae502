package function

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dronetrack/dronetrack/core/remoteid"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/events"
)

// Injection limits. A test is stored as one document (Firestore's limit is
// 1 MiB), packed with gzip; uss_qualifier's tests are far smaller.
const (
	maxInjectionBody   = 16 << 20
	maxPackedInjection = 900 << 10
	// ridTestKeep is how long a test is kept after its last telemetry when
	// the test driver never deletes it.
	ridTestKeep = time.Hour
)

// ridCreateTest is PUT /rid/injection/tests/{test_id} (InterUSS injection
// interface): the flights are checked, stored as one test record, and from
// then on every replica reports them through the SP endpoints as simulated
// flights of the injection's test tenant, each state at its own time.
func (s *server) ridCreateTest(w http.ResponseWriter, r *http.Request) {
	if !s.ridInjectionOn(w) {
		return
	}
	ctx := r.Context()
	testID := chi.URLParam(r, "test_id")
	if !validFlightID(testID) || len(testID) > 200 {
		ridProblem(w, http.StatusBadRequest, "bad test_id", events.FieldError{Field: "test_id", Pointer: "/test_id",
			Detail: "want 1-200 characters without \\0 \\t \\r \\n # % / : ? @ [ \\ ]"})
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxInjectionBody))
	if err != nil {
		ridProblem(w, http.StatusRequestEntityTooLarge, "the test is larger than 16 MiB")
		return
	}
	var p remoteid.CreateTestParameters
	if err := json.Unmarshal(raw, &p); err != nil {
		ridProblem(w, http.StatusBadRequest, "want CreateTestParameters JSON: "+err.Error(),
			events.FieldError{Field: "body", Pointer: "", Detail: err.Error()})
		return
	}
	flights, errs := remoteid.PrepareTest(testID, p)
	if len(errs) > 0 {
		ridProblem(w, http.StatusBadRequest, "fix the named fields", errs...)
		return
	}
	packed, err := remoteid.PackFlights(flights)
	if err != nil {
		ridProblem(w, http.StatusInternalServerError, "could not store the test")
		return
	}
	if len(packed) > maxPackedInjection {
		ridProblem(w, http.StatusRequestEntityTooLarge, "the test's telemetry is too large to store; split it into several tests")
		return
	}
	now := s.now()
	expire := now
	for _, f := range flights {
		if n := len(f.Telemetry); n > 0 {
			if ts, err := time.Parse(time.RFC3339Nano, f.Telemetry[n-1].Timestamp); err == nil && ts.After(expire) {
				expire = ts
			}
		}
	}
	var vb [8]byte
	_, _ = rand.Read(vb[:])
	t := store.RIDTest{ID: testID, Version: hex.EncodeToString(vb[:]), Flights: packed, CreatedAt: now,
		ExpireAt: expire.Add(ridTestKeep)}
	if err := s.store.CreateRIDTest(ctx, t); err != nil {
		if errors.Is(err, store.ErrAlreadyExists) {
			ridProblem(w, http.StatusConflict, "test "+testID+" already exists; delete it first")
			return
		}
		s.ridStoreFailed(w, r, err)
		return
	}
	s.rid.invalidate()
	s.log.InfoContext(ctx, "remote id test injected", "test", testID, "flights", len(flights))
	writeJSON(w, http.StatusOK, remoteid.ChangeTestResponse{InjectedFlights: flights, Version: t.Version})
}

// ridDeleteTest is DELETE /rid/injection/tests/{test_id}/{version}.
func (s *server) ridDeleteTest(w http.ResponseWriter, r *http.Request) {
	if !s.ridInjectionOn(w) {
		return
	}
	ctx := r.Context()
	testID, version := chi.URLParam(r, "test_id"), chi.URLParam(r, "version")
	t, err := s.store.DeleteRIDTest(ctx, testID, version)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			ridProblem(w, http.StatusNotFound, "no test "+testID+" at version "+version)
			return
		}
		s.ridStoreFailed(w, r, err)
		return
	}
	s.rid.invalidate()
	flights, err := remoteid.UnpackFlights(t.ID, t.Flights)
	if err != nil {
		s.log.ErrorContext(ctx, "deleted remote id test was unreadable", "test", testID, "err", err)
		flights = nil
	}
	if flights == nil {
		flights = []remoteid.TestFlight{}
	}
	s.log.InfoContext(ctx, "remote id test deleted", "test", testID)
	writeJSON(w, http.StatusOK, remoteid.DeleteTestResponse{InjectedFlights: flights})
}

// ridInjectionOn answers 404 when test injection is off (RID_INJECTION).
func (s *server) ridInjectionOn(w http.ResponseWriter) bool {
	if !s.rid.injection {
		ridProblem(w, http.StatusNotFound, "test injection is off on this service provider (RID_INJECTION)")
		return false
	}
	return true
}
