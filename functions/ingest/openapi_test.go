package function_test

import (
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	function "github.com/dronetrack/dronetrack/functions/ingest"
)

// openAPIPath is the one OpenAPI document of the origin ingest shares with
// serve-map; serve-map's own test checks its routes against it.
const openAPIPath = "../serve-map/openapi.json"

// TestOpenAPIListsIngestRoutes: the document lists every path drones use
// on ingest, with the methods ingest takes, and every operation it says
// ingest serves gets an answer from the real handler other than 404.
func TestOpenAPIListsIngestRoutes(t *testing.T) {
	raw, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Servers []struct {
				Description string `json:"description"`
			} `json:"servers"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", openAPIPath, err)
	}
	var documented []string
	for p, ops := range doc.Paths {
		for m, op := range ops {
			if len(op.Servers) == 1 && op.Servers[0].Description == "ingest" {
				documented = append(documented, strings.ToUpper(m)+" "+p)
			}
		}
	}
	slices.Sort(documented)
	served := []string{
		"GET " + function.PathOsmAnd, // OsmAnd trackers use any method; GET and POST are what they send
		"POST " + function.PathEvents,
		"POST " + function.PathOsmAnd,
		"POST " + function.PathTelemetry,
	}
	if diff := cmp.Diff(served, documented); diff != "" {
		t.Errorf("ingest's routes vs the OpenAPI operations on server ingest (-served +documented):\n%s", diff)
	}

	e := newEnv(t)
	for _, op := range documented {
		method, path, _ := strings.Cut(op, " ")
		resp := e.do(t, method, path, "", "", nil)
		if resp.status == http.StatusNotFound {
			t.Errorf("%s: 404 from ingest, which the document says serves it", op)
		}
	}
}
