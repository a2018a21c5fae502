package infra

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The embedded copies are the files on disk: go:embed reads them at build
// time, so this guards only against a renamed or missing file.
func TestBrokerManifestsEmbedTheBase(t *testing.T) {
	got, err := BrokerManifests()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range BrokerFiles {
		want, err := os.ReadFile(filepath.Join("base", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(got, want) {
			t.Errorf("BrokerManifests does not contain base/%s", name)
		}
	}
	if !bytes.Contains(got, []byte("kind: Trigger")) || !bytes.Contains(got, []byte("kind: Broker")) {
		t.Error("BrokerManifests holds no Broker or no Trigger")
	}
}
