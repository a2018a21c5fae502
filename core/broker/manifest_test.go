package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/events"
)

var infraFiles = []string{"../../infra/base/broker.yaml", "../../infra/base/triggers.yaml"}

// TestInfraTriggers checks the manifests infra/ deploys parse into the
// routes and delivery policy the system relies on.
func TestInfraTriggers(t *testing.T) {
	m, err := LoadManifests(infraFiles...)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Name, Broker, Subscriber string
		Retries                  int
		Linear                   bool
		Delay                    time.Duration
		DeadLetter               string
	}
	var got []row
	for _, tr := range m.Triggers {
		p, err := tr.Spec.Delivery.policy()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, row{tr.Metadata.Name, tr.Spec.Broker, tr.Spec.Subscriber.Ref.Name, p.retries, p.linear, p.delay, p.deadLetters.Ref.Name})
	}
	want := []row{
		{"process", "default", "process", 7, false, 200 * time.Millisecond, "dead-letter"},
		{"cache-refresh", "default", "cache-refresh", 5, false, 200 * time.Millisecond, "dead-letter"},
		{"alerts-state", "default", "alerts", 7, false, 200 * time.Millisecond, "dead-letter"},
		{"alerts-link-check", "default", "alerts", 4, false, 500 * time.Millisecond, "dead-letter"},
		{"alerts-webhooks-raised", "default", "alerts", 8, false, 500 * time.Millisecond, "dead-letter"},
		{"alerts-webhooks-resolved", "default", "alerts", 8, false, 500 * time.Millisecond, "dead-letter"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("infra triggers (-want +got):\n%s", diff)
	}
	if len(m.Brokers) != 1 || m.Brokers[0].Metadata.Name != "default" || m.Brokers[0].Spec.Delivery == nil {
		t.Errorf("brokers = %+v, want one named default with delivery defaults", m.Brokers)
	}
}

const edgeTriggers = `# comment-only document first
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: tenant-a-telemetry}
spec:
  broker: default
  filter:
    attributes:
      type: dev.dronetrack.telemetry.received.v1
      tenantid: tenant-a
  subscriber: {uri: "http://127.0.0.1:1/a"}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: any-type-from-ingest}
spec:
  broker: default
  filter:
    attributes:
      type: ""
      source: /dronetrack/ingest
  subscriber: {uri: "http://127.0.0.1:1/b"}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: everything}
spec:
  broker: default
  subscriber: {uri: "http://127.0.0.1:1/c"}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: by-subject}
spec:
  broker: default
  filter: {attributes: {subject: drone-7}}
  subscriber: {uri: "http://127.0.0.1:1/d"}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: ignored}
spec: {}
`

// TestTriggerFilters is the filter table: the infra triggers and
// hand-written edge cases against a set of events.
func TestTriggerFilters(t *testing.T) {
	infra, err := LoadManifests(infraFiles...)
	if err != nil {
		t.Fatal(err)
	}
	edge, err := ParseManifests([]byte(edgeTriggers))
	if err != nil {
		t.Fatal(err)
	}
	all := append(infra.Triggers, edge.Triggers...)

	ev := func(typ, source, subject, tenant string) event.Event {
		e := event.New()
		e.SetID("x")
		e.SetType(typ)
		e.SetSource(source)
		if subject != "" {
			e.SetSubject(subject)
		}
		if tenant != "" {
			e.SetExtension(events.ExtTenantID, tenant)
		}
		return e
	}
	cases := []struct {
		name  string
		event event.Event
		want  []string
	}{
		{"telemetry tenant a", ev(events.TypeTelemetryReceived, events.SourceIngest, "", "tenant-a"),
			[]string{"process", "tenant-a-telemetry", "any-type-from-ingest", "everything"}},
		{"telemetry tenant b", ev(events.TypeTelemetryReceived, events.SourceIngest, "", "tenant-b"),
			[]string{"process", "any-type-from-ingest", "everything"}},
		{"telemetry without tenant extension", ev(events.TypeTelemetryReceived, "/elsewhere", "", ""),
			[]string{"process", "everything"}},
		{"state updated", ev(events.TypeStateUpdated, events.SourceProcess, "drone-7", "tenant-a"),
			[]string{"cache-refresh", "alerts-state", "everything", "by-subject"}},
		{"link check", ev(events.TypeLinkCheck, "/ping", "", ""),
			[]string{"everything"}},
		{"type differs only in version", ev("dev.dronetrack.telemetry.received.v2", events.SourceIngest, "", "tenant-a"),
			[]string{"any-type-from-ingest", "everything"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, tr := range all {
				if tr.Matches(tc.event) {
					got = append(got, tr.Metadata.Name)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("matching triggers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseManifestsRejects(t *testing.T) {
	base := `apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: t}
spec:
  broker: default
  subscriber: {uri: "http://127.0.0.1/"}
`
	cases := []struct{ name, doc, wantErr string }{
		{"no subscriber", strings.Replace(base, `  subscriber: {uri: "http://127.0.0.1/"}`, "", 1), "spec.subscriber: ref or uri is required"},
		{"no broker", strings.Replace(base, "broker: default", "broker: \"\"", 1), "spec.broker is required"},
		{"bad policy", base + "  delivery: {backoffPolicy: fibonacci}\n", `backoffPolicy "fibonacci"`},
		{"bad delay", base + "  delivery: {backoffDelay: 200ms}\n", "not an ISO-8601 duration"},
		{"negative retry", base + "  delivery: {retry: -1}\n", "retry must be >= 0"},
		{"dead letter without target", base + "  delivery: {deadLetterSink: {}}\n", "deadLetterSink: ref or uri is required"},
		{"new-style filters", base + "  filters: [{exact: {type: a}}]\n", "spec.filters is not supported"},
		{"not yaml", "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nspec: [", "document 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseManifests([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseISODuration(t *testing.T) {
	cases := map[string]time.Duration{
		"PT0.2S":   200 * time.Millisecond,
		"PT1S":     time.Second,
		"PT0.005S": 5 * time.Millisecond,
		"PT1M30S":  90 * time.Second,
		"PT2H":     2 * time.Hour,
		"P1D":      24 * time.Hour,
		"P1DT1H":   25 * time.Hour,
		"P1W":      7 * 24 * time.Hour,
	}
	for in, want := range cases {
		got, err := ParseISODuration(in)
		if err != nil || got != want {
			t.Errorf("ParseISODuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "P", "PT", "1s", "PT1", "P1M", "P1Y", "PT-1S", "pt1s"} {
		if _, err := ParseISODuration(bad); err == nil {
			t.Errorf("ParseISODuration(%q) succeeded, want error", bad)
		}
	}
}

// TestBackoff pins Knative's formulas: linear delay*n, exponential delay*2^n.
func TestBackoff(t *testing.T) {
	d := 200 * time.Millisecond
	lin := retryPolicy{delay: d, linear: true}
	exp := retryPolicy{delay: d}
	var gotLin, gotExp []time.Duration
	for n := 1; n <= 5; n++ {
		gotLin = append(gotLin, lin.backoff(n))
		gotExp = append(gotExp, exp.backoff(n))
	}
	if diff := cmp.Diff([]time.Duration{d, 2 * d, 3 * d, 4 * d, 5 * d}, gotLin); diff != "" {
		t.Errorf("linear (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]time.Duration{2 * d, 4 * d, 8 * d, 16 * d, 32 * d}, gotExp); diff != "" {
		t.Errorf("exponential (-want +got):\n%s", diff)
	}
	if got := exp.backoff(200); got <= 0 {
		t.Errorf("exponential backoff overflowed to %v", got)
	}
}

func TestRetryableStatuses(t *testing.T) {
	var got []int
	for _, c := range []int{0, 400, 401, 403, 404, 405, 408, 409, 410, 413, 422, 429, 500, 502, 503, 504} {
		if (outcome{code: c}).retryable() {
			got = append(got, c)
		}
	}
	if diff := cmp.Diff([]int{0, 404, 408, 409, 429, 500, 502, 503, 504}, got); diff != "" {
		t.Errorf("retryable statuses (-want +got):\n%s", diff)
	}
}
