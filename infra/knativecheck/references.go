package knativecheck

import (
	"errors"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// References checks what no single object's validation can: that every
// reference inside the set resolves to an object of the set. Knative
// accepts a Trigger whose subscriber does not exist (the Trigger just never
// becomes Ready); in our manifests that is always a typo, so it fails here.
// Checked: Trigger broker, subscriber and dead-letter sink; Broker
// dead-letter sink and config; PingSource and SinkBinding sinks; that a
// SinkBinding's subject selector matches at least one Service; Services'
// envFrom, env valueFrom ConfigMap and Secret keys; and that each
// Kubernetes Service selects a Deployment's pods.
//
// external names objects that exist in the cluster but not in the manifests
// on purpose, as "Kind/name" (e.g. "Secret/dronetrack-secrets"); references
// to them pass.
func References(objs []Object, external ...string) error {
	idx := map[string]Object{}
	key := func(apiVersion, kind, ns, name string) string {
		return apiVersion + "|" + kind + "|" + ns + "|" + name
	}
	for _, o := range objs {
		idx[key(o.APIVersion, o.Kind, nsOf(o), o.Name)] = o
	}
	var errs []error
	fail := func(o Object, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", o.ID(), fmt.Sprintf(format, args...)))
	}
	has := func(o Object, apiVersion, kind, ns, name string) bool {
		if slices.Contains(external, kind+"/"+name) {
			return true
		}
		if ns == "" {
			ns = nsOf(o)
		}
		_, ok := idx[key(apiVersion, kind, ns, name)]
		return ok
	}
	dest := func(o Object, field string, d *duckv1.Destination) {
		if d == nil || d.Ref == nil {
			return
		}
		if !has(o, d.Ref.APIVersion, d.Ref.Kind, d.Ref.Namespace, d.Ref.Name) {
			fail(o, "%s.ref: no %s %s/%s in the manifests", field, d.Ref.APIVersion, d.Ref.Kind, d.Ref.Name)
		}
	}
	delivery := func(o Object, field string, d *eventingduckv1.DeliverySpec) {
		if d != nil {
			dest(o, field+".deadLetterSink", d.DeadLetterSink)
		}
	}
	for _, o := range objs {
		switch v := o.Value.(type) {
		case *eventingv1.Trigger:
			if v.Spec.Broker != "" && !has(o, "eventing.knative.dev/v1", "Broker", "", v.Spec.Broker) {
				fail(o, "spec.broker: no Broker %q in the manifests", v.Spec.Broker)
			}
			dest(o, "spec.subscriber", &v.Spec.Subscriber)
			delivery(o, "spec.delivery", v.Spec.Delivery)
		case *eventingv1.Broker:
			delivery(o, "spec.delivery", v.Spec.Delivery)
			// A config in another namespace is the class's cluster-wide
			// setting (e.g. knative-eventing/kafka-broker-config).
			if c := v.Spec.Config; c != nil && c.Kind == "ConfigMap" && (c.Namespace == "" || c.Namespace == nsOf(o)) &&
				!has(o, "v1", "ConfigMap", c.Namespace, c.Name) {
				fail(o, "spec.config: no ConfigMap %q in the manifests", c.Name)
			}
		case *sourcesv1.PingSource:
			dest(o, "spec.sink", &v.Spec.Sink)
		case *sourcesv1.SinkBinding:
			dest(o, "spec.sink", &v.Spec.Sink)
			sinkBindingSubject(o, v, objs, fail)
		case *servingv1.Service:
			for _, c := range v.Spec.Template.Spec.Containers {
				envRefs(o, c, has, fail)
			}
		case *appsv1.Deployment:
			for _, c := range v.Spec.Template.Spec.Containers {
				envRefs(o, c, has, fail)
			}
		case *corev1.Service:
			if len(v.Spec.Selector) > 0 && !selectsDeployment(o, v, objs) {
				fail(o, "spec.selector %v selects no Deployment's pods", v.Spec.Selector)
			}
		}
	}
	return errors.Join(errs...)
}

func sinkBindingSubject(o Object, sb *sourcesv1.SinkBinding, objs []Object, fail func(Object, string, ...any)) {
	s := sb.Spec.Subject
	if s.Selector == nil {
		return
	}
	sel, err := metav1.LabelSelectorAsSelector(s.Selector)
	if err != nil {
		fail(o, "spec.subject.selector: %v", err)
		return
	}
	for _, c := range objs {
		if c.APIVersion == s.APIVersion && c.Kind == s.Kind && nsOf(c) == nsOf(o) {
			if m, ok := c.Value.(metav1.Object); ok && sel.Matches(labels.Set(m.GetLabels())) {
				return
			}
		}
	}
	fail(o, "spec.subject.selector matches no %s %s", s.APIVersion, s.Kind)
}

func envRefs(o Object, c corev1.Container, has func(Object, string, string, string, string) bool, fail func(Object, string, ...any)) {
	for _, ef := range c.EnvFrom {
		if r := ef.ConfigMapRef; r != nil && !has(o, "v1", "ConfigMap", "", r.Name) && (r.Optional == nil || !*r.Optional) {
			fail(o, "container %q envFrom: no ConfigMap %q", c.Name, r.Name)
		}
		if r := ef.SecretRef; r != nil && !has(o, "v1", "Secret", "", r.Name) && (r.Optional == nil || !*r.Optional) {
			fail(o, "container %q envFrom: no Secret %q", c.Name, r.Name)
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			continue
		}
		if r := e.ValueFrom.ConfigMapKeyRef; r != nil && !has(o, "v1", "ConfigMap", "", r.Name) {
			fail(o, "container %q env %s: no ConfigMap %q", c.Name, e.Name, r.Name)
		}
		if r := e.ValueFrom.SecretKeyRef; r != nil && !has(o, "v1", "Secret", "", r.Name) {
			fail(o, "container %q env %s: no Secret %q", c.Name, e.Name, r.Name)
		}
	}
}

func selectsDeployment(o Object, svc *corev1.Service, objs []Object) bool {
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	for _, c := range objs {
		d, ok := c.Value.(*appsv1.Deployment)
		if ok && nsOf(c) == nsOf(o) && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			return true
		}
	}
	return false
}

// nsOf is the object's namespace after Validate has defaulted it.
func nsOf(o Object) string {
	if m, ok := o.Value.(metav1.Object); ok && m.GetNamespace() != "" {
		return m.GetNamespace()
	}
	return o.Namespace
}
