package infra_test

import (
	"context"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dronetrack/dronetrack/infra/knativecheck"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"
)

// kustomizeDirs are the directories `kubectl kustomize` must build: the base
// and every region overlay (each folder under overlays/ is one region).
func kustomizeDirs(t *testing.T) []string {
	t.Helper()
	return append([]string{"base"}, regions(t)...)
}

// regions are the overlay folders, one per region.
func regions(t *testing.T) []string {
	t.Helper()
	overlays, err := filepath.Glob("overlays/*/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, k := range overlays {
		dirs = append(dirs, filepath.Dir(k))
	}
	return dirs
}

// kustomized caches `kubectl kustomize` output per directory: several
// tests read the same rendering.
var kustomized sync.Map // dir -> []byte

// kustomize runs `kubectl kustomize dir` (once per test binary) and returns
// the rendered stream.
func kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	if out, ok := kustomized.Load(dir); ok {
		return out.([]byte)
	}
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl is needed to render the kustomizations (install kubectl >= 1.27): %v", err)
	}
	out, err := exec.Command(kubectl, "kustomize", dir).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg += ": " + string(ee.Stderr)
		}
		t.Fatalf("kubectl kustomize %s: %s", dir, msg)
	}
	kustomized.Store(dir, out)
	return out
}

// external are the objects the manifests use but deliberately do not hold
// (created per namespace by the operator, docs/deploy.md).
var external = []string{"Secret/dronetrack-secrets"}

// validate runs Knative's defaulting and validation; warnings fail too,
// because each one is a setting the manifests should make explicit.
func validate(t *testing.T, objs []knativecheck.Object) {
	t.Helper()
	warnings, err := knativecheck.Validate(knativecheck.Context(context.Background()), objs)
	if err != nil {
		t.Fatalf("Knative validation:\n%v", err)
	}
	for _, w := range warnings {
		t.Errorf("Knative warning: %s", w)
	}
}

// rendered decodes and validates the kustomize output of dir with Knative's
// own types, then checks references between the objects.
func rendered(t *testing.T, dir string) []knativecheck.Object {
	t.Helper()
	objs, err := knativecheck.Decode("kustomize "+dir, kustomize(t, dir))
	if err != nil {
		t.Fatalf("strict decode:\n%v", err)
	}
	validate(t, objs)
	if err := knativecheck.References(objs, external...); err != nil {
		t.Fatalf("references:\n%v", err)
	}
	return objs
}

func TestKustomizeOutputValidates(t *testing.T) {
	for _, dir := range kustomizeDirs(t) {
		t.Run(dir, func(t *testing.T) {
			objs := rendered(t, dir)
			kinds := map[string]int{}
			for _, o := range objs {
				kinds[o.Kind]++
			}
			for _, k := range []string{"Broker", "Trigger", "PingSource", "SinkBinding", "ConfigMap"} {
				if kinds[k] == 0 {
					t.Errorf("no %s in the output", k)
				}
			}
		})
	}
}

// kustomization is the part of a kustomization.yaml (Kustomization or
// Component) that says which files are whole resources and which are
// patches.
type kustomization struct {
	Resources []string `json:"resources"`
	Patches   []struct {
		Path string `json:"path"`
	} `json:"patches"`
}

// Every YAML file under infra/ is either a whole resource of some
// kustomization (decoded strictly and validated with Knative's types) or a
// patch (decoded strictly: a misspelt field in a patch would otherwise be
// merged silently). A file no kustomization names is an error: it would
// never be deployed.
func TestEveryManifestFileValidates(t *testing.T) {
	resources := map[string]bool{}
	patches := map[string]bool{}
	var files []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != "." && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if d.IsDir() || !(strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			return nil
		}
		if d.Name() != "kustomization.yaml" {
			files = append(files, p)
			return nil
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var k kustomization
		if err := yaml.Unmarshal(raw, &k); err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		dir := filepath.Dir(p)
		for _, r := range k.Resources {
			resources[filepath.Join(dir, r)] = true
		}
		for _, pt := range k.Patches {
			if pt.Path != "" {
				patches[filepath.Join(dir, pt.Path)] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			decode := knativecheck.Decode
			if patches[f] {
				decode = knativecheck.DecodePatches
			}
			objs, err := decode(f, raw)
			if err != nil {
				t.Fatalf("strict decode:\n%v", err)
			}
			if len(objs) == 0 {
				t.Fatal("no Kubernetes object in the file")
			}
			switch {
			case resources[f]:
				validate(t, objs)
			case patches[f]:
				// Decoded strictly above; a patch is partial, so it is
				// validated as part of its overlay's kustomize output.
			default:
				t.Fatalf("no kustomization.yaml lists %s as a resource or patch", f)
			}
		})
	}
	if !slices.Contains(files, filepath.Join("base", "triggers.yaml")) {
		t.Error("base/triggers.yaml not found")
	}
}

// Each region is self-contained: everything in its own namespace, its own
// Firestore database and Redis, and images pinned to a registry and tag
// (no ko:// reference that only `ko resolve` understands).
func TestRegionOverlaysAreSeparate(t *testing.T) {
	dirs := regions(t)
	if len(dirs) < 2 {
		t.Fatalf("want at least two region overlays under infra/overlays, found %d", len(dirs))
	}
	seen := map[string]string{} // value -> region, for namespace, database, redis
	unique := func(kind, value, region string) {
		if prev, ok := seen[kind+"="+value]; ok {
			t.Errorf("%s and %s share %s %q", prev, region, kind, value)
		}
		seen[kind+"="+value] = region
	}
	for _, dir := range dirs {
		region := filepath.Base(dir)
		t.Run(region, func(t *testing.T) {
			objs := rendered(t, dir)
			var ns string
			for _, o := range objs {
				if o.Kind == "Namespace" {
					ns = o.Name
				}
			}
			if ns == "" {
				t.Fatal("the overlay creates no Namespace")
			}
			unique("namespace", ns, region)
			for _, o := range objs {
				if o.Kind != "Namespace" && o.Namespace != ns {
					t.Errorf("%s is in namespace %q, want %q", o.ID(), o.Namespace, ns)
				}
				if m, ok := o.Value.(metav1.Object); ok && m.GetLabels()["dronetrack.dev/region"] != region {
					t.Errorf("%s lacks label dronetrack.dev/region=%s", o.ID(), region)
				}
				for _, img := range images(o) {
					if strings.HasPrefix(img, "ko://") || !(strings.Contains(img, "@sha256:") || strings.Contains(img[strings.LastIndex(img, "/")+1:], ":")) {
						t.Errorf("%s: image %q is not pinned to a registry tag or digest", o.ID(), img)
					}
				}
			}
			cm := configMap(t, objs, "dronetrack-config")
			store, err := url.Parse(cm["STORE_URL"])
			if err != nil || store.Scheme != "firestore" || store.Host == "" || store.Query().Get("database") == "" {
				t.Errorf("STORE_URL = %q, want firestore://PROJECT?database=NAME", cm["STORE_URL"])
			} else {
				unique("Firestore database", store.Host+"/"+store.Query().Get("database"), region)
			}
			cache, err := url.Parse(cm["CACHE_URL"])
			if err != nil || cache.Scheme != "redis" || cache.Host == "" {
				t.Errorf("CACHE_URL = %q, want redis://HOST:PORT/DB", cm["CACHE_URL"])
			} else {
				unique("Redis", cache.Host+cache.Path, region)
				if h := cache.Hostname(); strings.HasPrefix(h, "redis.") && !strings.HasPrefix(h, "redis."+ns+".") {
					t.Errorf("CACHE_URL host %q is the in-cluster Redis of another namespace (want redis.%s.svc...)", h, ns)
				}
			}
		})
	}
}

func configMap(t *testing.T, objs []knativecheck.Object, name string) map[string]string {
	t.Helper()
	for _, o := range objs {
		if cm, ok := o.Value.(*corev1.ConfigMap); ok && o.Name == name {
			return cm.Data
		}
	}
	t.Fatalf("no ConfigMap %s", name)
	return nil
}

// images lists the container images of a Knative Service or Deployment.
func images(o knativecheck.Object) []string {
	var cs []corev1.Container
	switch v := o.Value.(type) {
	case *servingv1.Service:
		cs = v.Spec.Template.Spec.Containers
	case *appsv1.Deployment:
		cs = v.Spec.Template.Spec.Containers
	}
	var out []string
	for _, c := range cs {
		out = append(out, c.Image)
	}
	return out
}

// The optional components (infra/components) render and validate on top of
// a region: the Kafka Broker class and the managed-Redis switch. kustomize
// only loads relative paths, so the trial overlay lives in a hidden folder
// inside infra/ for the duration of the test.
func TestComponentsValidate(t *testing.T) {
	dir, err := os.MkdirTemp(".", ".components-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	k := "resources: [../overlays/europe-west1]\ncomponents: [../components/kafka-broker, ../components/managed-redis]\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	objs := rendered(t, dir)
	for _, o := range objs {
		if o.Kind == "Deployment" && o.Name == "redis" {
			t.Error("managed-redis left the redis Deployment in place")
		}
		if b, ok := o.Value.(*eventingv1.Broker); ok {
			if got := b.Annotations["eventing.knative.dev/broker.class"]; got != "Kafka" {
				t.Errorf("broker class %q, want Kafka", got)
			}
		}
	}
}

// Only the entry points are public. Everything a Trigger or dead-letter sink
// calls is cluster-local: a public process would accept events that never
// went through ingest's drone authentication.
func TestOnlyEntryPointsArePublic(t *testing.T) {
	public := map[string]bool{"ingest": true, "serve-map": true}
	for _, dir := range kustomizeDirs(t) {
		for _, o := range rendered(t, dir) {
			svc, ok := o.Value.(*servingv1.Service)
			if !ok {
				continue
			}
			local := svc.Labels["networking.knative.dev/visibility"] == "cluster-local"
			if public[o.Name] == local {
				t.Errorf("%s: cluster-local=%v, want %v", o.ID(), local, !public[o.Name])
			}
		}
	}
}

// The real base files, each broken in one way, are rejected: the checks
// that pass above are not vacuous.
func TestBrokenBaseIsRejected(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("base", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	triggers, services := read("triggers.yaml"), read("services.yaml")
	tests := []struct {
		name, file, from, to, want string
	}{
		{"trigger without subscriber", triggers, "  subscriber:\n    ref:\n      apiVersion: serving.knative.dev/v1\n      kind: Service\n      name: process\n", "", "spec.subscriber"},
		{"min-scale above max-scale", services, `autoscaling.knative.dev/min-scale: "1"`, `autoscaling.knative.dev/min-scale: "30"`, "min-scale"},
		{"bad backoffDelay", triggers, "backoffDelay: PT0.2S", "backoffDelay: 200ms", "spec.delivery.backoffDelay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broken := strings.Replace(tt.file, tt.from, tt.to, 1)
			if broken == tt.file {
				t.Fatalf("the base no longer contains %q; update this test", tt.from)
			}
			objs, err := knativecheck.Decode(tt.name, []byte(broken))
			if err == nil {
				_, err = knativecheck.Validate(knativecheck.Context(context.Background()), objs)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error about %s", err, tt.want)
			}
		})
	}
}
