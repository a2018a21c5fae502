package infra_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/broker"
	"github.com/dronetrack/dronetrack/infra"
	"github.com/dronetrack/dronetrack/infra/knativecheck"
	"github.com/google/go-cmp/cmp"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/eventing/pkg/kncloudevents"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// route is what a Trigger means for delivery, read either by Knative's types
// or by the local broker: who gets which events, and what happens when the
// subscriber fails.
type route struct {
	Broker         string
	Filter         map[string]string
	Subscriber     ref
	Retry          int
	BackoffPolicy  string
	BackoffDelay   time.Duration
	DeadLetterSink ref
}

// ref is a destination without namespace (Knative defaults it from the
// Trigger; the local broker resolves names in its one process).
type ref struct{ APIVersion, Kind, Name, URI string }

// knativeRoutes reads Triggers with Knative's types; a Trigger without its
// own delivery inherits the Broker's, as Knative's Trigger reconciler does.
// The retry schedule comes from Knative's dispatcher code
// (kncloudevents.RetryConfigFromDeliverySpec), and each retry's wait is
// checked against the delay the local broker documents (backoffDelay * 2^n
// exponential, * n linear).
func knativeRoutes(t *testing.T, source string, raw []byte) map[string]route {
	t.Helper()
	objs, err := knativecheck.Decode(source, raw)
	if err != nil {
		t.Fatal(err)
	}
	brokers := map[string]*eventingduckv1.DeliverySpec{}
	for _, o := range objs {
		if b, ok := o.Value.(*eventingv1.Broker); ok {
			brokers[b.Name] = b.Spec.Delivery
		}
	}
	out := map[string]route{}
	for _, o := range objs {
		tr, ok := o.Value.(*eventingv1.Trigger)
		if !ok {
			continue
		}
		r := route{Broker: tr.Spec.Broker, Subscriber: destRef(&tr.Spec.Subscriber)}
		if tr.Spec.Filter != nil && len(tr.Spec.Filter.Attributes) > 0 {
			r.Filter = map[string]string(tr.Spec.Filter.Attributes)
		}
		d := tr.Spec.Delivery
		if d == nil {
			d = brokers[tr.Spec.Broker]
		}
		if d != nil {
			if d.BackoffPolicy == nil || d.BackoffDelay == nil {
				// Knative's dispatcher then retries without waiting while the
				// local broker waits 200 ms: keep both explicit.
				t.Errorf("Trigger %s: set both delivery.backoffPolicy and backoffDelay so Knative and the local broker wait alike", tr.Name)
				continue
			}
			cfg, err := kncloudevents.RetryConfigFromDeliverySpec(*d)
			if err != nil {
				t.Fatalf("Trigger %s: %v", tr.Name, err)
			}
			r.Retry = cfg.RetryMax
			r.BackoffPolicy = string(*d.BackoffPolicy)
			// Knative waits Backoff(n) before retry n.
			r.BackoffDelay = cfg.Backoff(1, &http.Response{}) / 2
			if r.BackoffPolicy == "linear" {
				r.BackoffDelay = cfg.Backoff(1, &http.Response{})
			}
			for n := 1; n <= cfg.RetryMax; n++ {
				want := r.BackoffDelay << n
				if r.BackoffPolicy == "linear" {
					want = r.BackoffDelay * time.Duration(n)
				}
				if got := cfg.Backoff(n, &http.Response{}); got != want {
					t.Errorf("Trigger %s: Knative waits %v before retry %d, the local broker %v", tr.Name, got, n, want)
				}
			}
			r.DeadLetterSink = destRef(d.DeadLetterSink)
		}
		out[tr.Name] = r
	}
	return out
}

func destRef(d *duckv1.Destination) ref {
	if d == nil {
		return ref{}
	}
	var r ref
	if d.URI != nil {
		r.URI = d.URI.String()
	}
	if d.Ref != nil {
		r.APIVersion, r.Kind, r.Name = d.Ref.APIVersion, d.Ref.Kind, d.Ref.Name
	}
	return r
}

// localRoutes reads the same bytes with the local broker's parser.
func localRoutes(t *testing.T, raw []byte) map[string]route {
	t.Helper()
	m, err := broker.ParseManifests(raw)
	if err != nil {
		t.Fatalf("local broker: %v", err)
	}
	brokers := map[string]*broker.Delivery{}
	for _, b := range m.Brokers {
		brokers[b.Metadata.Name] = b.Spec.Delivery
	}
	out := map[string]route{}
	for _, tr := range m.Triggers {
		r := route{Broker: tr.Spec.Broker, Subscriber: localRef(&tr.Spec.Subscriber)}
		if tr.Spec.Filter != nil && len(tr.Spec.Filter.Attributes) > 0 {
			r.Filter = tr.Spec.Filter.Attributes
		}
		d := tr.Spec.Delivery
		if d == nil {
			d = brokers[tr.Spec.Broker]
		}
		if d != nil {
			if d.Retry != nil {
				r.Retry = int(*d.Retry)
			}
			r.BackoffPolicy = d.BackoffPolicy
			if d.BackoffDelay != "" {
				delay, err := broker.ParseISODuration(d.BackoffDelay)
				if err != nil {
					t.Fatalf("local broker: Trigger %s: %v", tr.Metadata.Name, err)
				}
				r.BackoffDelay = delay
			}
			r.DeadLetterSink = localRef(d.DeadLetterSink)
		}
		out[tr.Metadata.Name] = r
	}
	return out
}

func localRef(d *broker.Destination) ref {
	if d == nil {
		return ref{}
	}
	r := ref{URI: d.URI}
	if d.Ref != nil {
		r.APIVersion, r.Kind, r.Name = d.Ref.APIVersion, d.Ref.Kind, d.Ref.Name
	}
	return r
}

// The local broker routes with exactly the Triggers Knative would run: same
// filters, subscribers, retry count, backoff policy and delay, dead-letter
// sink, for the embedded base (what `dronetrack up` reads) and for every
// kustomize output (what a cluster runs).
func TestLocalBrokerReadsTriggersAsKnative(t *testing.T) {
	embedded, err := infra.BrokerManifests()
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string][]byte{"embedded base": embedded}
	for _, dir := range kustomizeDirs(t) {
		inputs["kustomize "+dir] = kustomize(t, dir)
	}
	for name, raw := range inputs {
		t.Run(name, func(t *testing.T) {
			want := knativeRoutes(t, name, raw)
			if len(want) == 0 {
				t.Fatal("no Triggers")
			}
			got := localRoutes(t, raw)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Knative (-) and the local broker (+) read the Triggers differently:\n%s", diff)
			}
		})
	}
	// Knative's validation of the embedded copy, the one the binary carries.
	objs, err := knativecheck.Decode("embedded base", embedded)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := knativecheck.Validate(knativecheck.Context(context.Background()), objs); err != nil {
		t.Fatalf("embedded manifests: %v", err)
	}
}

// Knative's DeliverySpec validation and dispatcher (rickb777/date/period)
// and the local broker's ParseISODuration agree on the backoffDelay values a
// manifest should hold: accepted by both with the same duration, or
// rejected by both. Two known differences are pinned here so a change on
// either side shows: Knative accepts a negative delay, which the local
// broker refuses at startup (a negative wait means nothing); and Knative
// keeps only tenths of a second, so keep delays to multiples of 0.1 s.
func TestBackoffDelayParsersAgree(t *testing.T) {
	const (
		same          = "same"
		localStricter = "local broker rejects, Knative accepts"
		knativeTenths = "Knative truncates to 0.1 s"
	)
	policy := eventingduckv1.BackoffPolicyLinear
	for s, want := range map[string]string{
		"PT0.2S": same, "PT1S": same, "PT1.5S": same, "PT0S": same, "PT1M30S": same, "PT2H": same, "P1D": same,
		"PT10M0.5S": same, "200ms": same, "0.2": same, "PT": same, "P": same, "": same,
		"-PT1S": localStricter, "PT-1S": localStricter, "PT0.001S": knativeTenths,
	} {
		t.Run(s, func(t *testing.T) {
			d := eventingduckv1.DeliverySpec{BackoffPolicy: &policy, BackoffDelay: &s}
			knErr := d.Validate(context.Background())
			local, localErr := broker.ParseISODuration(s)
			if want == localStricter {
				if knErr != nil || localErr == nil {
					t.Fatalf("want Knative to accept and the local broker to reject; Knative error %v, local error %v", knErr, localErr)
				}
				return
			}
			if (knErr == nil) != (localErr == nil) {
				t.Fatalf("Knative validation error %v, local broker error %v", knErr, localErr)
			}
			if knErr != nil {
				return
			}
			cfg, err := kncloudevents.RetryConfigFromDeliverySpec(d)
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.Backoff(1, &http.Response{})
			if want == knativeTenths {
				if got != local.Truncate(100*time.Millisecond) {
					t.Errorf("Knative waits %v, want the local %v truncated to 0.1 s", got, local)
				}
				return
			}
			if got != local {
				t.Errorf("Knative waits %v, the local broker %v", got, local)
			}
		})
	}
}
