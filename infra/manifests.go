// Package infra carries the Knative manifests of infra/base inside any
// binary that imports it, so `dronetrack up` routes events with exactly the
// Broker and Triggers the cluster deploys, wherever the binary runs (no
// checkout needed). The YAML files stay the source of truth; this package
// only embeds them.
package infra

import (
	"embed"
	"io/fs"
)

//go:embed base/*.yaml
var base embed.FS

// Base is the kustomize base directory (files at its root, e.g.
// "triggers.yaml").
func Base() fs.FS {
	sub, err := fs.Sub(base, "base")
	if err != nil {
		panic(err) // cannot happen: the directory is embedded above
	}
	return sub
}

// BrokerFiles names the base files that hold the eventing objects (Broker
// and Triggers) the local broker reads.
var BrokerFiles = []string{"broker.yaml", "triggers.yaml"}

// BrokerManifests returns the Broker and Trigger manifests as one
// multi-document YAML stream.
func BrokerManifests() ([]byte, error) {
	var out []byte
	for _, name := range BrokerFiles {
		b, err := fs.ReadFile(Base(), name)
		if err != nil {
			return nil, err
		}
		out = append(out, "\n---\n"...)
		out = append(out, b...)
	}
	return out, nil
}
