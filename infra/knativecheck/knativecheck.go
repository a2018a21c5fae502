// Package knativecheck decodes Kubernetes manifests into Knative's own Go API
// types and runs the defaulting and validation Knative's admission webhooks
// run, so a manifest that the cluster would reject fails a Go test instead of
// a deploy. Decoding is strict: an unknown or misspelt field, a duplicate key
// or a field in the wrong case is an error, as `kubectl apply
// --validate=strict` would report it.
//
// Knative objects (serving.knative.dev/v1 Service, eventing.knative.dev/v1
// Broker and Trigger, sources.knative.dev/v1 PingSource and SinkBinding) get
// SetDefaults then Validate in a create context. The plain Kubernetes
// objects the manifests carry (Namespace, ConfigMap, Secret, Service,
// Deployment) are decoded strictly into k8s.io/api types and get the
// structural checks Knative's webhooks do not cover (names, keys,
// selectors). References between objects (Trigger subscribers, dead-letter
// sinks, sinks, envFrom) are checked by References.
package knativecheck

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Object is one decoded manifest document.
type Object struct {
	// Source says where the document came from ("base/triggers.yaml#2",
	// "kustomize overlays/us-central1#7") so an error can be traced.
	Source     string
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	// Value is a pointer to the typed object, e.g. *eventingv1.Trigger.
	Value any
}

// ID names an object the way error messages do: "Kind/name" plus its source.
func (o Object) ID() string {
	return fmt.Sprintf("%s %s/%s (%s)", o.APIVersion, o.Kind, o.Name, o.Source)
}

// knative is what Knative's webhooks call on every object they admit.
type knative interface {
	apis.Defaultable
	apis.Validatable
}

// newObject returns an empty typed value for apiVersion/kind, or nil for a
// kind this package does not know (which Decode reports, so a new kind in
// the manifests forces a decision about how to check it).
func newObject(apiVersion, kind string) any {
	switch apiVersion + " " + kind {
	case "serving.knative.dev/v1 Service":
		return &servingv1.Service{}
	case "eventing.knative.dev/v1 Broker":
		return &eventingv1.Broker{}
	case "eventing.knative.dev/v1 Trigger":
		return &eventingv1.Trigger{}
	case "sources.knative.dev/v1 PingSource":
		return &sourcesv1.PingSource{}
	case "sources.knative.dev/v1 SinkBinding":
		return &sourcesv1.SinkBinding{}
	case "v1 Namespace":
		return &corev1.Namespace{}
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}
	case "v1 Secret":
		return &corev1.Secret{}
	case "v1 Service":
		return &corev1.Service{}
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}
	}
	return nil
}

// Decode splits a multi-document YAML stream and decodes every document
// strictly into its Go type. Empty documents (comments only) are skipped.
// source prefixes each Object's Source.
func Decode(source string, raw []byte) ([]Object, error) {
	return decodeStream(source, raw, DecodeDocument)
}

// DecodePatches is Decode for kustomize strategic-merge patch files: the
// top-level "$patch" directive (e.g. "$patch: delete") is not a field of
// the object, so it is removed before strict decoding. A patch is partial;
// validate it as part of its kustomize output, not alone.
func DecodePatches(source string, raw []byte) ([]Object, error) {
	return decodeStream(source, raw, func(src string, doc []byte) (*Object, error) {
		js, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		if t := bytes.TrimSpace(js); len(t) == 0 || bytes.Equal(t, []byte("null")) {
			return nil, nil
		}
		var m map[string]any
		if err := json.Unmarshal(js, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		switch m["$patch"] {
		case nil, "delete", "replace", "merge":
		default:
			return nil, fmt.Errorf("%s: $patch %q: want delete, replace or merge", src, m["$patch"])
		}
		delete(m, "$patch")
		if js, err = json.Marshal(m); err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		return decodeJSON(src, js)
	})
}

func decodeStream(source string, raw []byte, decode func(string, []byte) (*Object, error)) ([]Object, error) {
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	var out []Object
	var errs []error
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, i, err)
		}
		o, err := decode(fmt.Sprintf("%s#%d", source, i), doc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if o != nil {
			out = append(out, *o)
		}
	}
	return out, errors.Join(errs...)
}

// DecodeDocument strictly decodes one YAML document; it returns nil, nil for
// a document holding only comments.
func DecodeDocument(source string, doc []byte) (*Object, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if t := bytes.TrimSpace(js); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil, nil
	}
	return decodeJSON(source, js)
}

func decodeJSON(source string, js []byte) (*Object, error) {
	var head metav1.TypeMeta
	var meta struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &head); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &meta); err != nil {
		return nil, fmt.Errorf("%s: metadata: %w", source, err)
	}
	o := &Object{Source: source, APIVersion: head.APIVersion, Kind: head.Kind,
		Name: meta.Metadata.Name, Namespace: meta.Metadata.Namespace}
	o.Value = newObject(head.APIVersion, head.Kind)
	if o.Value == nil {
		return nil, fmt.Errorf("%s: no checks known for apiVersion %q kind %q", o.ID(), head.APIVersion, head.Kind)
	}
	strict, err := kjson.UnmarshalStrict(js, o.Value)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.ID(), err)
	}
	if len(strict) > 0 {
		return nil, fmt.Errorf("%s: strict decoding: %w", o.ID(), errors.Join(strict...))
	}
	return o, nil
}

// Context is the context Knative's admission webhook hands to SetDefaults
// and Validate for a create request. Serving and eventing read their
// config-* ConfigMaps through FromContextOrDefaults, so leaving them out
// means the cluster defaults of a stock installation.
func Context(ctx context.Context) context.Context {
	return apis.WithinCreate(ctx)
}

// DefaultNamespace is the namespace Validate gives an object that names
// none, as the API server does with the namespace of the request
// (`kubectl apply -n`): Knative defaults references from it, and some
// validations (SinkBinding's subject) need it.
const DefaultNamespace = "default"

// Validate runs SetDefaults then Validate on every Knative object (in place:
// the Values hold the defaulted objects afterwards) and structural checks on
// the Kubernetes ones, the way an admission webhook does for a create.
// Knative reports two levels: errors, which reject the object (joined into
// err, one per field, each naming the object), and warnings, which the API
// server passes to the client (returned, each naming the object).
func Validate(ctx context.Context, objs []Object) (warnings []string, err error) {
	var errs []error
	for _, o := range objs {
		w, err := validateOne(ctx, o)
		for _, m := range w {
			warnings = append(warnings, fmt.Sprintf("%s: %s", o.ID(), m))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", o.ID(), err))
		}
	}
	return warnings, errors.Join(errs...)
}

func validateOne(ctx context.Context, o Object) ([]string, error) {
	if o.Name == "" {
		return nil, errors.New("metadata.name is required")
	}
	if msgs := validation.IsDNS1123Subdomain(o.Name); len(msgs) > 0 {
		return nil, fmt.Errorf("metadata.name: %s", strings.Join(msgs, "; "))
	}
	if _, cluster := o.Value.(*corev1.Namespace); cluster {
		if msgs := validation.IsDNS1123Label(o.Name); len(msgs) > 0 {
			return nil, fmt.Errorf("metadata.name: %s", strings.Join(msgs, "; "))
		}
		return nil, nil
	}
	if m, ok := o.Value.(metav1.Object); ok && m.GetNamespace() == "" {
		m.SetNamespace(DefaultNamespace)
	}
	switch v := o.Value.(type) {
	case knative:
		v.SetDefaults(ctx)
		fe := v.Validate(ctx)
		if fe == nil {
			return nil, nil
		}
		var warnings []string
		for _, w := range fe.Filter(apis.WarningLevel).WrappedErrors() {
			warnings = append(warnings, w.Error())
		}
		var errs []error
		for _, e := range fe.Filter(apis.ErrorLevel).WrappedErrors() {
			errs = append(errs, errors.New(e.Error()))
		}
		return warnings, errors.Join(errs...)
	case *corev1.ConfigMap:
		return nil, keysValid(v.Data)
	case *corev1.Secret:
		if err := keysValid(v.StringData); err != nil {
			return nil, fmt.Errorf("stringData: %w", err)
		}
		return nil, nil
	case *corev1.Service:
		if len(v.Spec.Ports) == 0 {
			return nil, errors.New("spec.ports: at least one port is required")
		}
		if len(v.Spec.Selector) == 0 {
			return nil, errors.New("spec.selector is required (the Service must select pods)")
		}
		return nil, nil
	case *appsv1.Deployment:
		return nil, deploymentValid(v)
	}
	return nil, fmt.Errorf("no checks for %T", o.Value)
}

func keysValid(m map[string]string) error {
	var errs []error
	for k := range m {
		if msgs := validation.IsConfigMapKey(k); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("key %q: %s", k, strings.Join(msgs, "; ")))
		}
	}
	return errors.Join(errs...)
}

func deploymentValid(d *appsv1.Deployment) error {
	var errs []error
	if d.Spec.Selector == nil || len(d.Spec.Selector.MatchLabels) == 0 {
		errs = append(errs, errors.New("spec.selector.matchLabels is required"))
	} else {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			errs = append(errs, fmt.Errorf("spec.selector: %w", err))
		} else if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			errs = append(errs, errors.New("spec.selector does not match spec.template.metadata.labels"))
		}
	}
	if len(d.Spec.Template.Spec.Containers) == 0 {
		errs = append(errs, errors.New("spec.template.spec.containers: at least one container is required"))
	}
	for i, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "" {
			errs = append(errs, fmt.Errorf("spec.template.spec.containers[%d].name is required", i))
		}
		if c.Image == "" {
			errs = append(errs, fmt.Errorf("spec.template.spec.containers[%d].image is required", i))
		}
	}
	return errors.Join(errs...)
}
