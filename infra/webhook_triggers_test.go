package infra_test

import (
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/infra"
)

// Alert events reach tenants' webhooks only through the broker: each type
// alerts publishes must have exactly one Trigger, filtering on that type
// alone, to alerts' /webhooks path (functions/alerts PathWebhooks), whose
// retries with exponential backoff are the webhook retries and whose
// dead-letter sink keeps what still fails. Read with Knative's types, so a
// retry schedule Knative would run differently fails here too.
func TestAlertEventsReachWebhooksThroughTheBroker(t *testing.T) {
	embedded, err := infra.BrokerManifests()
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string][]byte{"embedded base": embedded}
	for _, dir := range kustomizeDirs(t) {
		inputs["kustomize "+dir] = kustomize(t, dir)
	}
	alerts := ref{APIVersion: "serving.knative.dev/v1", Kind: "Service", Name: "alerts", URI: "/webhooks"}
	deadLetter := ref{APIVersion: "serving.knative.dev/v1", Kind: "Service", Name: "dead-letter"}
	for name, raw := range inputs {
		t.Run(name, func(t *testing.T) {
			routes := knativeRoutes(t, name, raw)
			for _, typ := range []string{"dev.dronetrack.drone.alert.raised.v1", "dev.dronetrack.drone.alert.resolved.v1"} {
				var found []string
				for trigger, r := range routes {
					if r.Filter["type"] != typ {
						continue
					}
					found = append(found, trigger)
					if len(r.Filter) != 1 || r.Subscriber != alerts {
						t.Errorf("Trigger %s: filter %v to %+v; want type %s alone to %+v", trigger, r.Filter, r.Subscriber, typ, alerts)
					}
					// The first retry within a couple of seconds (a receiver's
					// blip), the schedule spanning minutes (a receiver's
					// restart), every failure ending in the dead-letter sink.
					var window time.Duration
					for n := 1; n <= r.Retry; n++ {
						window += r.BackoffDelay << n
					}
					if r.BackoffPolicy != "exponential" || r.BackoffDelay<<1 > 2*time.Second || window < 2*time.Minute ||
						r.DeadLetterSink != deadLetter {
						t.Errorf("Trigger %s: %d retries, %s backoff from %v (%v in all), dead letters to %+v; "+
							"want exponential from at most 2 s over at least 2 min, dead letters to %+v",
							trigger, r.Retry, r.BackoffPolicy, r.BackoffDelay<<1, window, r.DeadLetterSink, deadLetter)
					}
				}
				if len(found) != 1 {
					t.Errorf("%s: Triggers %v route it to webhooks; want exactly one", typ, found)
				}
			}
		})
	}
}
