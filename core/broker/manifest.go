package broker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// The Knative API groups whose objects the broker reads. Other documents in a
// manifest file (Services, PingSources, ConfigMaps) are skipped.
const (
	eventingAPIVersion = "eventing.knative.dev/v1"
	kindTrigger        = "Trigger"
	kindBroker         = "Broker"
)

// Backoff policies of a Knative DeliverySpec.
const (
	BackoffLinear      = "linear"
	BackoffExponential = "exponential"
)

// Metadata is the part of a Kubernetes ObjectMeta the broker needs.
type Metadata struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// Trigger mirrors the fields of a Knative eventing.knative.dev/v1 Trigger
// that the local broker honours, so the manifests infra/ deploys are the
// local routing table too.
type Trigger struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   Metadata    `json:"metadata"`
	Spec       TriggerSpec `json:"spec"`
}

// TriggerSpec mirrors Knative's TriggerSpec.
type TriggerSpec struct {
	Broker string         `json:"broker"`
	Filter *TriggerFilter `json:"filter,omitempty"`
	// Filters (Knative's newer exact/prefix/suffix/CESQL filters) is not
	// honoured; a Trigger using it is rejected rather than matching all.
	Filters    json.RawMessage `json:"filters,omitempty"`
	Subscriber Destination     `json:"subscriber"`
	Delivery   *Delivery       `json:"delivery,omitempty"`
}

// TriggerFilter mirrors Knative's attributes filter: every listed CloudEvents
// attribute or extension must equal the given value; an empty value matches
// any event (Knative's TriggerAnyFilter).
type TriggerFilter struct {
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Destination mirrors Knative's duckv1.Destination: a reference resolved to
// an address, a URI, or a URI relative to the reference's address.
type Destination struct {
	Ref *Reference `json:"ref,omitempty"`
	URI string     `json:"uri,omitempty"`
}

// Reference mirrors Knative's duckv1.KReference. The caller's Resolve
// function turns it into a URL (locally: the loopback address of a function).
type Reference struct {
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	APIVersion string `json:"apiVersion,omitempty"`
	Namespace  string `json:"namespace,omitempty"`
}

func (r Reference) String() string {
	return fmt.Sprintf("%s/%s %s", r.APIVersion, r.Kind, r.Name)
}

// Delivery mirrors Knative's DeliverySpec.
type Delivery struct {
	DeadLetterSink *Destination `json:"deadLetterSink,omitempty"`
	Retry          *int32       `json:"retry,omitempty"`
	BackoffPolicy  string       `json:"backoffPolicy,omitempty"`
	BackoffDelay   string       `json:"backoffDelay,omitempty"`
}

// BrokerManifest mirrors the fields of a Knative Broker the local broker
// honours: its name and the delivery defaults for its Triggers.
type BrokerManifest struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       struct {
		Delivery *Delivery `json:"delivery,omitempty"`
	} `json:"spec"`
}

// Manifests is what LoadManifests found: Brokers and Triggers in file order.
type Manifests struct {
	Brokers  []BrokerManifest
	Triggers []Trigger
}

// LoadManifests reads multi-document YAML files and keeps the
// eventing.knative.dev/v1 Brokers and Triggers. It fails on a document it
// cannot parse or a Trigger that is invalid, naming the file and document.
func LoadManifests(paths ...string) (Manifests, error) {
	var m Manifests
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return Manifests{}, fmt.Errorf("read manifest: %w", err)
		}
		got, err := ParseManifests(raw)
		if err != nil {
			return Manifests{}, fmt.Errorf("manifest %s: %w", p, err)
		}
		m.Brokers = append(m.Brokers, got.Brokers...)
		m.Triggers = append(m.Triggers, got.Triggers...)
	}
	return m, nil
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// ParseManifests is LoadManifests for bytes already in memory.
func ParseManifests(raw []byte) (Manifests, error) {
	var m Manifests
	for i, doc := range docSeparator.Split(string(raw), -1) {
		if len(bytes.TrimSpace([]byte(stripComments(doc)))) == 0 {
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			return Manifests{}, fmt.Errorf("document %d: %w", i+1, err)
		}
		if head.APIVersion != eventingAPIVersion {
			continue
		}
		switch head.Kind {
		case kindTrigger:
			var t Trigger
			// Unknown fields are allowed: Knative has more than we mirror.
			if err := yaml.Unmarshal([]byte(doc), &t); err != nil {
				return Manifests{}, fmt.Errorf("document %d: trigger: %w", i+1, err)
			}
			if err := t.Validate(); err != nil {
				return Manifests{}, fmt.Errorf("document %d: %w", i+1, err)
			}
			m.Triggers = append(m.Triggers, t)
		case kindBroker:
			var b BrokerManifest
			if err := yaml.Unmarshal([]byte(doc), &b); err != nil {
				return Manifests{}, fmt.Errorf("document %d: broker: %w", i+1, err)
			}
			if b.Spec.Delivery != nil {
				if _, err := b.Spec.Delivery.policy(); err != nil {
					return Manifests{}, fmt.Errorf("document %d: broker %s: spec.delivery: %w", i+1, b.Metadata.Name, err)
				}
			}
			m.Brokers = append(m.Brokers, b)
		}
	}
	return m, nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// Validate checks what the local broker needs from a Trigger; Knative's own
// webhook validation of the manifests is the deployment issue's test.
func (t Trigger) Validate() error {
	var errs []error
	if t.Metadata.Name == "" {
		errs = append(errs, errors.New("metadata.name is required"))
	}
	if t.Spec.Broker == "" {
		errs = append(errs, errors.New("spec.broker is required"))
	}
	if len(t.Spec.Filters) > 0 && string(t.Spec.Filters) != "null" {
		errs = append(errs, errors.New("spec.filters is not supported by the local broker; use spec.filter.attributes"))
	}
	if err := t.Spec.Subscriber.validate(); err != nil {
		errs = append(errs, fmt.Errorf("spec.subscriber: %w", err))
	}
	if d := t.Spec.Delivery; d != nil {
		if _, err := d.policy(); err != nil {
			errs = append(errs, fmt.Errorf("spec.delivery: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("trigger %q: %w", t.Metadata.Name, err)
	}
	return nil
}

func (d Destination) validate() error {
	if d.Ref == nil && d.URI == "" {
		return errors.New("ref or uri is required")
	}
	if d.Ref != nil && (d.Ref.Name == "" || d.Ref.Kind == "") {
		return errors.New("ref needs kind and name")
	}
	return nil
}

// retryPolicy is a DeliverySpec reduced to what the dispatcher uses.
type retryPolicy struct {
	retries     int
	linear      bool
	delay       time.Duration
	deadLetters *Destination
}

// defaultBackoffDelay applies when a DeliverySpec asks for retries without a
// backoffDelay. Knative leaves this to the broker implementation; 200 ms is
// the common broker default.
const defaultBackoffDelay = 200 * time.Millisecond

func (d *Delivery) policy() (retryPolicy, error) {
	p := retryPolicy{delay: defaultBackoffDelay}
	if d == nil {
		return p, nil
	}
	var errs []error
	if d.Retry != nil {
		if *d.Retry < 0 {
			errs = append(errs, errors.New("retry must be >= 0"))
		}
		p.retries = int(*d.Retry)
	}
	switch d.BackoffPolicy {
	case "", BackoffExponential:
	case BackoffLinear:
		p.linear = true
	default:
		errs = append(errs, fmt.Errorf("backoffPolicy %q: want linear or exponential", d.BackoffPolicy))
	}
	if d.BackoffDelay != "" {
		dur, err := ParseISODuration(d.BackoffDelay)
		if err != nil {
			errs = append(errs, fmt.Errorf("backoffDelay: %w", err))
		}
		p.delay = dur
	}
	if d.DeadLetterSink != nil {
		if err := d.DeadLetterSink.validate(); err != nil {
			errs = append(errs, fmt.Errorf("deadLetterSink: %w", err))
		}
		p.deadLetters = d.DeadLetterSink
	}
	return p, errors.Join(errs...)
}

// backoff is the wait before retry n (1-based), as Knative computes it:
// linear backoffDelay*n, exponential backoffDelay*2^n.
func (p retryPolicy) backoff(n int) time.Duration {
	if p.linear {
		return p.delay * time.Duration(n)
	}
	if n > 40 { // avoid overflow; 2^40 * 1ns is already 18 minutes
		n = 40
	}
	d := p.delay << n
	if d < 0 || d/time.Duration(int64(1)<<n) != p.delay {
		return time.Duration(1<<63 - 1)
	}
	return d
}

var isoDuration = regexp.MustCompile(`^P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// ParseISODuration parses the ISO-8601 durations Knative's delivery fields
// use (PT0.2S, PT1M30S, P1D). Years and months are rejected because their
// length is not fixed.
func ParseISODuration(s string) (time.Duration, error) {
	m := isoDuration.FindStringSubmatch(s)
	if m == nil || s == "P" || strings.HasSuffix(s, "T") {
		return 0, fmt.Errorf("%q is not an ISO-8601 duration like PT0.2S", s)
	}
	units := []time.Duration{7 * 24 * time.Hour, 24 * time.Hour, time.Hour, time.Minute, time.Second}
	var total time.Duration
	for i, u := range units {
		if m[i+1] == "" {
			continue
		}
		f, err := strconv.ParseFloat(m[i+1], 64)
		if err != nil {
			return 0, fmt.Errorf("%q: %w", s, err)
		}
		total += time.Duration(f * float64(u))
	}
	return total, nil
}
