package infra_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/dronetrack/dronetrack/infra/funcyaml"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// Every functions/<name>/func.yaml parses strictly, repeats the root
// func.yaml's defaults, and describes the Knative Service <name> that
// `kubectl kustomize infra/base` deploys: scale bounds and autoscaling
// annotations, labels, health endpoints, resources and environment.
func TestFuncYAMLAgreesWithRootAndManifests(t *testing.T) {
	root, err := funcyaml.Load("../func.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs := rendered(t, "base")
	services := map[string]*servingv1.Service{}
	var bindings []*sourcesv1.SinkBinding
	for _, o := range objs {
		switch v := o.Value.(type) {
		case *servingv1.Service:
			services[o.Name] = v
		case *sourcesv1.SinkBinding:
			bindings = append(bindings, v)
		}
	}
	configMaps := map[string]map[string]string{}
	for _, o := range objs {
		if cm, ok := o.Value.(*corev1.ConfigMap); ok {
			configMaps[o.Name] = cm.Data
		}
	}

	// The Service <name> is built from functions/<name> when that folder
	// exists, and then needs its func.yaml.
	files, err := filepath.Glob("../functions/*/func.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name := range services {
		dir := filepath.Join("..", "functions", name)
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "func.yaml")); err != nil {
			t.Errorf("Service %s is built from %s, which has no func.yaml", name, dir)
		}
	}
	if len(files) == 0 {
		t.Fatal("no functions/*/func.yaml")
	}
	for _, file := range files {
		dir := filepath.Base(filepath.Dir(file))
		t.Run(dir, func(t *testing.T) {
			f, err := funcyaml.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			agreesWithRoot(t, root, f)
			if f.Name != dir {
				t.Errorf("name %q, want the folder name %q", f.Name, dir)
			}
			svc, ok := services[f.Name]
			if !ok {
				t.Fatalf("no Knative Service %q in kustomize infra/base", f.Name)
			}
			if f.Deploy.Namespace != "" || f.Namespace != "" {
				t.Errorf("namespace set (%q, %q); the region overlay chooses it", f.Namespace, f.Deploy.Namespace)
			}
			agreesWithService(t, f, svc, bindings, configMaps)
		})
	}
}

// agreesWithRoot: func has no inheritance, so each function repeats the
// shared defaults, and spells each shared variable as the root does.
func agreesWithRoot(t *testing.T, root, f funcyaml.Function) {
	t.Helper()
	type defaults struct {
		SpecVersion, Runtime, Registry, Invoke, Builder string
		Health                                          funcyaml.HealthEndpoints
	}
	pick := func(f funcyaml.Function) defaults {
		return defaults{f.SpecVersion, f.Runtime, f.Registry, f.Invoke, f.Build.Builder, f.Deploy.HealthEndpoints}
	}
	if diff := cmp.Diff(pick(root), pick(f)); diff != "" {
		t.Errorf("differs from the root func.yaml defaults (-root +function):\n%s", diff)
	}
	shared := map[string]string{}
	for _, e := range root.Run.Envs {
		shared[e.Name] = e.Value
	}
	for _, e := range f.Run.Envs {
		if want, ok := shared[e.Name]; ok && e.Value != want {
			t.Errorf("run.envs %s = %q, want the root's %q", e.Name, e.Value, want)
		}
	}
}

func agreesWithService(t *testing.T, f funcyaml.Function, svc *servingv1.Service, bindings []*sourcesv1.SinkBinding, configMaps map[string]map[string]string) {
	t.Helper()
	ann := svc.Spec.Template.Annotations
	s := f.Deploy.Options.Scale
	if s == nil || s.Min == nil || s.Max == nil {
		t.Fatal("deploy.options.scale.min and max are required (they are the Service's min-scale and max-scale)")
	}
	scale := map[string]string{
		"autoscaling.knative.dev/min-scale": strconv.FormatInt(*s.Min, 10),
		"autoscaling.knative.dev/max-scale": strconv.FormatInt(*s.Max, 10),
	}
	if s.Metric != "" {
		scale["autoscaling.knative.dev/metric"] = s.Metric
	}
	if s.Target != nil {
		scale["autoscaling.knative.dev/target"] = strconv.FormatFloat(*s.Target, 'f', -1, 64)
	}
	for k, v := range f.Deploy.Annotations {
		if _, dup := scale[k]; dup {
			t.Errorf("deploy.annotations %s duplicates deploy.options.scale; set it there only", k)
		}
		scale[k] = v
	}
	for k, want := range scale {
		if got := ann[k]; got != want {
			t.Errorf("Service annotation %s = %q, func.yaml says %q", k, got, want)
		}
	}
	for _, l := range f.Deploy.Labels {
		if got, ok := svc.Labels[l.Key]; !ok || got != l.Value {
			t.Errorf("Service label %s = %q, func.yaml says %q", l.Key, got, l.Value)
		}
	}
	if len(svc.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("Service has %d containers, want 1", len(svc.Spec.Template.Spec.Containers))
	}
	c := svc.Spec.Template.Spec.Containers[0]
	var probes funcyaml.HealthEndpoints
	if p := c.LivenessProbe; p != nil && p.HTTPGet != nil {
		probes.Liveness = p.HTTPGet.Path
	}
	if p := c.ReadinessProbe; p != nil && p.HTTPGet != nil {
		probes.Readiness = p.HTTPGet.Path
	}
	if diff := cmp.Diff(f.Deploy.HealthEndpoints, probes); diff != "" {
		t.Errorf("health endpoints (-func.yaml +Service probes):\n%s", diff)
	}
	if r := f.Deploy.Options.Resources; r != nil {
		check := func(what string, l *funcyaml.ResourceList, got corev1.ResourceList) {
			if l == nil {
				return
			}
			for name, want := range map[corev1.ResourceName]string{corev1.ResourceCPU: l.CPU, corev1.ResourceMemory: l.Memory} {
				if q, ok := got[name]; want != "" && (!ok || q.String() != want) {
					t.Errorf("Service %s.%s = %v, func.yaml says %s", what, name, q.String(), want)
				}
			}
		}
		check("requests", r.Requests, c.Resources.Requests)
		check("limits", r.Limits, c.Resources.Limits)
	}
	envAgrees(t, f, svc, c, bindings, configMaps)
}

// envAgrees: every func.yaml variable reaches the Service's container the
// same way, and every variable the Service sets explicitly is in func.yaml.
func envAgrees(t *testing.T, f funcyaml.Function, svc *servingv1.Service, c corev1.Container, bindings []*sourcesv1.SinkBinding, configMaps map[string]map[string]string) {
	t.Helper()
	explicit := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		explicit[e.Name] = e
	}
	fromConfigMap := func(name, key string) bool {
		for _, ef := range c.EnvFrom {
			if r := ef.ConfigMapRef; r != nil && r.Name == name {
				_, ok := configMaps[name][key]
				return ok || key == ""
			}
		}
		return false
	}
	fromSecret := func(name string) bool {
		for _, ef := range c.EnvFrom {
			if r := ef.SecretRef; r != nil && r.Name == name {
				return true
			}
		}
		return false
	}
	declared := map[string]bool{}
	for _, e := range f.Run.Envs {
		declared[e.Name] = true
		ex, hasExplicit := explicit[e.Name]
		ref, isRef := funcyaml.ParseRef(e.Value)
		switch {
		case !isRef:
			if !hasExplicit || ex.Value != e.Value {
				t.Errorf("env %s: func.yaml sets %q, the Service %q", e.Name, e.Value, ex.Value)
			}
		case ref.Source == "configMap":
			ok := fromConfigMap(ref.Name, ref.Key)
			if hasExplicit && ex.ValueFrom != nil && ex.ValueFrom.ConfigMapKeyRef != nil {
				ok = ex.ValueFrom.ConfigMapKeyRef.Name == ref.Name && ex.ValueFrom.ConfigMapKeyRef.Key == ref.Key
			}
			if !ok {
				t.Errorf("env %s: func.yaml takes it from ConfigMap %s key %q; the Service does not (envFrom or configMapKeyRef)", e.Name, ref.Name, ref.Key)
			}
		case ref.Source == "secret":
			ok := fromSecret(ref.Name)
			if hasExplicit && ex.ValueFrom != nil && ex.ValueFrom.SecretKeyRef != nil {
				ok = ex.ValueFrom.SecretKeyRef.Name == ref.Name && ex.ValueFrom.SecretKeyRef.Key == ref.Key
			}
			if !ok {
				t.Errorf("env %s: func.yaml takes it from Secret %s key %q; the Service does not (envFrom or secretKeyRef)", e.Name, ref.Name, ref.Key)
			}
		case ref.Source == "env" && e.Name == "K_SINK":
			if !boundToSink(svc, bindings) {
				t.Errorf("env K_SINK: no SinkBinding selects Service %s (label it dronetrack.dev/publishes=true)", svc.Name)
			}
		default:
			t.Errorf("env %s: %q only exists on the developer's machine; on the cluster take it from the ConfigMap or Secret", e.Name, e.Value)
		}
	}
	for name := range explicit {
		if !declared[name] {
			t.Errorf("the Service sets env %s, func.yaml does not (func deploy would drop it)", name)
		}
	}
}

func boundToSink(svc *servingv1.Service, bindings []*sourcesv1.SinkBinding) bool {
	for _, b := range bindings {
		s := b.Spec.Subject
		if s.Kind != "Service" || s.APIVersion != "serving.knative.dev/v1" {
			continue
		}
		if s.Name == svc.Name {
			return true
		}
		if s.Selector != nil {
			sel, err := metav1.LabelSelectorAsSelector(s.Selector)
			if err == nil && sel.Matches(labels.Set(svc.Labels)) {
				return true
			}
		}
	}
	return false
}

// The checks above must notice a func.yaml that disagrees.
func TestFuncYAMLStrict(t *testing.T) {
	for name, raw := range map[string]string{
		"unknown field":   "specVersion: 0.36.0\nname: x\nruntime: go\ncreated: 2026-11-29T04:00:00Z\ndeploy:\n  option: {}\n",
		"scale min > max": "specVersion: 0.36.0\nname: x\nruntime: go\ncreated: 2026-11-29T04:00:00Z\ndeploy:\n  options:\n    scale: {min: 3, max: 2}\n",
		"bad builder":     "specVersion: 0.36.0\nname: x\nruntime: go\ncreated: 2026-11-29T04:00:00Z\nbuild:\n  builder: docker\n",
		"bad template":    "specVersion: 0.36.0\nname: x\nruntime: go\ncreated: 2026-11-29T04:00:00Z\nrun:\n  envs:\n    - name: A\n      value: '{{ configmap:a:b }}'\n",
		"no created":      "specVersion: 0.36.0\nname: x\nruntime: go\n",
		"bad name":        "specVersion: 0.36.0\nname: X_1\nruntime: go\ncreated: 2026-11-29T04:00:00Z\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := funcyaml.Parse([]byte(raw)); err == nil {
				t.Error("accepted; want an error")
			}
		})
	}
	if _, err := funcyaml.Parse([]byte("specVersion: 0.36.0\nname: x\nruntime: go\ncreated: 2026-11-29T04:00:00Z\n")); err != nil {
		t.Errorf("minimal func.yaml rejected: %v", err)
	}
}
