package knativecheck_test

import (
	"context"
	"strings"
	"testing"

	"github.com/dronetrack/dronetrack/infra/knativecheck"
)

const trigger = `apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: process
spec:
  broker: default
  filter:
    attributes:
      type: dev.dronetrack.telemetry.received.v1
  subscriber:
    ref:
      apiVersion: serving.knative.dev/v1
      kind: Service
      name: process
  delivery:
    retry: 5
    backoffPolicy: exponential
    backoffDelay: PT0.2S
`

const service = `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: process
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/min-scale: "0"
        autoscaling.knative.dev/max-scale: "10"
    spec:
      containers:
        - image: process
          securityContext:
            runAsNonRoot: true
            allowPrivilegeEscalation: false
            capabilities:
              drop: [ALL]
            seccompProfile:
              type: RuntimeDefault
`

const broker = `apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
  annotations:
    eventing.knative.dev/broker.class: MTChannelBasedBroker
`

// check decodes and validates one manifest stream and returns the first
// failure: decode, then validation, then references.
func check(t *testing.T, raw string) error {
	t.Helper()
	objs, err := knativecheck.Decode("test.yaml", []byte(raw))
	if err != nil {
		return err
	}
	if _, err := knativecheck.Validate(knativecheck.Context(context.Background()), objs); err != nil {
		return err
	}
	return knativecheck.References(objs)
}

func TestValidManifestsPass(t *testing.T) {
	if err := check(t, broker+"---\n"+trigger+"---\n"+service); err != nil {
		t.Fatalf("valid manifests rejected:\n%v", err)
	}
}

// Each case breaks a valid manifest in one way Knative's webhook (or strict
// decoding) rejects; the error must name the object and the field.
func TestBadManifestsAreRejected(t *testing.T) {
	tests := []struct {
		name      string
		manifests string
		want      []string // substrings of the error
	}{
		{
			name: "trigger without subscriber",
			manifests: broker + "---\n" + strings.Replace(trigger, `  subscriber:
    ref:
      apiVersion: serving.knative.dev/v1
      kind: Service
      name: process
`, "", 1),
			want: []string{"Trigger/process", "spec.subscriber"},
		},
		{
			name:      "min-scale above max-scale",
			manifests: strings.Replace(service, `min-scale: "0"`, `min-scale: "20"`, 1),
			want:      []string{"Service/process", "min-scale", "max-scale"},
		},
		{
			name:      "bad backoffDelay",
			manifests: strings.Replace(trigger, "PT0.2S", "200ms", 1),
			want:      []string{"Trigger/process", "spec.delivery.backoffDelay"},
		},
		{
			name:      "bad backoffPolicy",
			manifests: strings.Replace(trigger, "backoffPolicy: exponential", "backoffPolicy: fibonacci", 1),
			want:      []string{"Trigger/process", "spec.delivery.backoffPolicy"},
		},
		{
			name:      "negative retry",
			manifests: strings.Replace(trigger, "retry: 5", "retry: -1", 1),
			want:      []string{"Trigger/process", "spec.delivery.retry"},
		},
		{
			name:      "unknown field",
			manifests: strings.Replace(trigger, "    retry: 5", "    retries: 5", 1),
			want:      []string{"Trigger/process", `unknown field "spec.delivery.retries"`},
		},
		{
			name:      "field in the wrong case",
			manifests: strings.Replace(trigger, "backoffDelay", "BackoffDelay", 1),
			want:      []string{"Trigger/process", "BackoffDelay"},
		},
		{
			name:      "duplicate key",
			manifests: strings.Replace(trigger, "    retry: 5\n", "    retry: 5\n    retry: 6\n", 1),
			want:      []string{"test.yaml#1", `"retry"`},
		},
		{
			name:      "bad filter attribute name",
			manifests: strings.Replace(trigger, "      type: dev", "      Type-X: dev", 1),
			want:      []string{"Trigger/process", "spec.filter.attributes"},
		},
		{
			name:      "unsupported PingSource schedule",
			manifests: broker + "---\napiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata:\n  name: tick\nspec:\n  schedule: \"@every 30s\"\n  sink:\n    ref:\n      apiVersion: eventing.knative.dev/v1\n      kind: Broker\n      name: default\n",
			want:      []string{"PingSource/tick", "spec.schedule"},
		},
		{
			name:      "broker without class",
			manifests: "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\n",
			want:      []string{"Broker/default", "broker.class"},
		},
		{
			name:      "service without image",
			manifests: strings.Replace(service, "        - image: process\n", "        - name: user\n", 1),
			want:      []string{"Service/process", "image"},
		},
		{
			name:      "unknown kind",
			manifests: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n",
			want:      []string{"Pod", "no checks known"},
		},
		{
			name:      "subscriber that does not exist",
			manifests: broker + "---\n" + strings.Replace(trigger, "      name: process\n", "      name: proces\n", 1) + "---\n" + service,
			want:      []string{"Trigger/process", "spec.subscriber.ref", "proces"},
		},
		{
			name:      "trigger on a missing broker",
			manifests: trigger + "---\n" + service,
			want:      []string{"Trigger/process", `no Broker "default"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := check(t, tt.manifests)
			if err == nil {
				t.Fatal("accepted; want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

// Knative's insecure-default notices are warnings: reported, not fatal.
func TestWarningsAreSeparate(t *testing.T) {
	insecure := strings.Split(service, "          securityContext:")[0]
	objs, err := knativecheck.Decode("test.yaml", []byte(insecure))
	if err != nil {
		t.Fatal(err)
	}
	warnings, err := knativecheck.Validate(knativecheck.Context(context.Background()), objs)
	if err != nil {
		t.Fatalf("a warning became an error: %v", err)
	}
	if len(warnings) == 0 || !strings.Contains(warnings[0], "Service/process") || !strings.Contains(warnings[0], "securityContext") {
		t.Errorf("warnings = %q; want the insecure securityContext notice naming Service/process", warnings)
	}
}

func TestDecodePatches(t *testing.T) {
	del := "$patch: delete\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: redis\n"
	objs, err := knativecheck.DecodePatches("p.yaml", []byte(del))
	if err != nil || len(objs) != 1 || objs[0].Name != "redis" {
		t.Fatalf("delete patch: %v, %v", objs, err)
	}
	for name, raw := range map[string]string{
		"unknown directive": strings.Replace(del, "delete", "remove", 1),
		"unknown field":     "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndate:\n  A: b\n",
	} {
		if _, err := knativecheck.DecodePatches("p.yaml", []byte(raw)); err == nil {
			t.Errorf("%s: accepted; want an error", name)
		}
	}
	if _, err := knativecheck.Decode("p.yaml", []byte(del)); err == nil {
		t.Error("Decode accepted $patch; only DecodePatches may")
	}
}
