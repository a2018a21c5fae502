package problem_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/events"
)

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	errs := []events.FieldError{{Field: "lat", Pointer: "/0/lat", Detail: "must be a finite number"}}
	problem.Write(rec, http.StatusBadRequest, "Invalid telemetry", "1 bad field",
		problem.WithErrors(errs), problem.WithInstance("/v1/telemetry"))

	if got := rec.Code; got != http.StatusBadRequest {
		t.Errorf("status = %d, want 400", got)
	}
	if got := rec.Header().Get("Content-Type"); got != problem.ContentType {
		t.Errorf("Content-Type = %q, want %q", got, problem.ContentType)
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, rec.Body)
	}
	want := map[string]any{
		"type": "about:blank", "title": "Invalid telemetry", "status": float64(400),
		"detail": "1 bad field", "instance": "/v1/telemetry",
		"errors": []any{map[string]any{"field": "lat", "pointer": "/0/lat", "detail": "must be a finite number"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

func TestWriteDefaultsTitleAndOmitsEmpty(t *testing.T) {
	rec := httptest.NewRecorder()
	problem.Write(rec, http.StatusNotFound, "", "", problem.WithType("urn:dronetrack:problem:test"))
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"type": "urn:dronetrack:problem:test", "title": "Not Found", "status": float64(404)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}
