package infra_test

import (
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// firestoreSpec is the part of firestore.indexes.json (Firebase CLI format)
// that setup.sh applies.
type firestoreSpec struct {
	Indexes []struct {
		CollectionGroup string `json:"collectionGroup"`
		QueryScope      string `json:"queryScope"`
		Fields          []struct {
			FieldPath   string `json:"fieldPath"`
			Order       string `json:"order,omitempty"`
			ArrayConfig string `json:"arrayConfig,omitempty"`
		} `json:"fields"`
	} `json:"indexes"`
	FieldOverrides []struct {
		CollectionGroup string            `json:"collectionGroup"`
		FieldPath       string            `json:"fieldPath"`
		TTL             bool              `json:"ttl"`
		Indexes         []json.RawMessage `json:"indexes"`
	} `json:"fieldOverrides"`
}

// The Firestore config is deployable as written: the JSON holds the TTL
// policy on track.expireAt, and setup.sh turns it into the gcloud commands
// for each region's database, the one its overlay's STORE_URL names.
func TestFirestoreConfig(t *testing.T) {
	raw, err := os.ReadFile("firestore/firestore.indexes.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	var spec firestoreSpec
	if err := dec.Decode(&spec); err != nil {
		t.Fatalf("firestore.indexes.json: %v", err)
	}
	ttl := 0
	for _, o := range spec.FieldOverrides {
		if o.TTL {
			ttl++
			if o.CollectionGroup != "track" || o.FieldPath != "expireAt" {
				t.Errorf("TTL on %s.%s, want track.expireAt", o.CollectionGroup, o.FieldPath)
			}
		}
	}
	if ttl != 1 {
		t.Errorf("%d TTL policies, want exactly one (track.expireAt)", ttl)
	}

	for _, tool := range []string{"bash", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to run infra/firestore/setup.sh: %v", tool, err)
		}
	}
	for _, dir := range regions(t) {
		region := filepath.Base(dir)
		t.Run(region, func(t *testing.T) {
			cm := configMap(t, rendered(t, dir), "dronetrack-config")
			u, err := url.Parse(cm["STORE_URL"])
			if err != nil {
				t.Fatal(err)
			}
			project, database := u.Host, u.Query().Get("database")
			out, err := exec.Command("bash", "firestore/setup.sh", "--dry-run", project, database, region).CombinedOutput()
			if err != nil {
				t.Fatalf("setup.sh: %v\n%s", err, out)
			}
			for _, want := range []string{
				"gcloud firestore databases create --database=" + database + " --location=" + region,
				"gcloud firestore fields ttls update expireAt --collection-group=track --enable-ttl --database=" + database,
				"gcloud firestore indexes fields update ts --collection-group=track --disable-indexes --database=" + database,
			} {
				if !strings.Contains(string(out), want) {
					t.Errorf("setup.sh does not run %q; it printed:\n%s", want, out)
				}
			}
			if n := strings.Count(string(out), "--project="+project); n != 1+ttl+len(spec.FieldOverrides)+len(spec.Indexes)-countIndexed(spec) {
				t.Errorf("setup.sh printed %d commands for project %s; want one per database, TTL, exemption and index:\n%s", n, project, out)
			}
		})
	}
}

// countIndexed is the number of overrides that keep some index (no
// exemption command for them).
func countIndexed(spec firestoreSpec) int {
	n := 0
	for _, o := range spec.FieldOverrides {
		if len(o.Indexes) > 0 {
			n++
		}
	}
	return n
}
