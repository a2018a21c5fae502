package infra_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dronetrack/dronetrack/infra/local"
	"github.com/google/go-cmp/cmp"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// The one-machine runtime hosts exactly what the cluster deploys: every
// function of local.Registry embeds functions/<name>/func.yaml, is the
// Knative Service <name> of `kubectl kustomize infra/base`, and is the
// subscriber of exactly the Triggers the registry lists for it; every
// Trigger delivers to a registered function and every functions/* folder
// is registered.
func TestRegistryMatchesManifests(t *testing.T) {
	services := map[string]bool{}
	subscribed := map[string][]string{} // Service name -> Trigger names
	for _, o := range rendered(t, "base") {
		switch v := o.Value.(type) {
		case *servingv1.Service:
			services[o.Name] = true
		case *eventingv1.Trigger:
			if ref := v.Spec.Subscriber.Ref; ref != nil && ref.Kind == "Service" {
				subscribed[ref.Name] = append(subscribed[ref.Name], v.Name)
			} else {
				t.Errorf("Trigger %s: subscriber is not a Service by name", v.Name)
			}
		}
	}
	registered := map[string]bool{}
	for _, f := range local.Registry {
		if registered[f.Name] {
			t.Errorf("%s is registered twice", f.Name)
		}
		registered[f.Name] = true
		raw, err := os.ReadFile(filepath.Join("..", "functions", f.Name, "func.yaml"))
		if err != nil {
			t.Errorf("%s: %v", f.Name, err)
		} else if !bytes.Equal(raw, f.FuncYAML) {
			t.Errorf("%s: the registered FuncYAML is not functions/%s/func.yaml", f.Name, f.Name)
		}
		if f.New == nil || f.Config == nil {
			t.Errorf("%s: registered without New or Config", f.Name)
		}
		if !services[f.Name] {
			t.Errorf("%s: no Knative Service %q in infra/base", f.Name, f.Name)
		}
		want := slices.Sorted(slices.Values(f.Triggers))
		got := slices.Sorted(slices.Values(subscribed[f.Name]))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: Triggers of the registry (-) and of infra/base (+) differ:\n%s", f.Name, diff)
		}
	}
	for name, triggers := range subscribed {
		if !registered[name] {
			t.Errorf("Triggers %v deliver to %s, which local.Registry does not host", triggers, name)
		}
	}
	files, err := filepath.Glob("../functions/*/func.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		if name := filepath.Base(filepath.Dir(file)); !registered[name] {
			t.Errorf("functions/%s is not in local.Registry", name)
		}
	}
}
