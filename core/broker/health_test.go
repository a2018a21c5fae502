package broker

import (
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// A failed readiness check alone (its 1 ms budget missed on a busy
// machine) is asked again, not taken for a store that cannot take writes;
// a JetStream or stream error is a down store, reported with its message.
func TestHealthReportReadinessAloneIsNotAStoreProblem(t *testing.T) {
	readiness := server.HealthzError{Type: server.HealthzErrorConn, Error: "failed to be ready for connections after 1ms: startup did not complete"}
	stream := server.HealthzError{Type: server.HealthzErrorStream, Stream: "BROKER_default", Error: "JetStream stream 'BROKER_default' write error: no space left on device"}
	for _, tc := range []struct {
		name          string
		report        server.HealthStatus
		onlyReadiness bool
		down          string // "" when healthy
	}{
		{"healthy", server.HealthStatus{Status: "ok", StatusCode: 200}, false, ""},
		{"readiness only", server.HealthStatus{StatusCode: 500, Errors: []server.HealthzError{readiness}}, true, "startup did not complete"},
		{"stream write error", server.HealthStatus{StatusCode: 503, Errors: []server.HealthzError{stream}}, false, "no space left on device"},
		{"readiness and stream", server.HealthStatus{StatusCode: 503, Errors: []server.HealthzError{readiness, stream}}, false, "no space left on device"},
		{"error without details", server.HealthStatus{StatusCode: 503, Error: "JetStream not enabled"}, false, "JetStream not enabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := onlyReadiness(&tc.report); got != tc.onlyReadiness {
				t.Errorf("onlyReadiness = %v, want %v", got, tc.onlyReadiness)
			}
			err := healthErr(&tc.report)
			switch {
			case tc.down == "" && err != nil:
				t.Errorf("healthErr = %v, want nil", err)
			case tc.down != "" && (!errors.Is(err, errStoreDown) || !strings.Contains(err.Error(), tc.down)):
				t.Errorf("healthErr = %v, want errStoreDown saying %q", err, tc.down)
			}
		})
	}
}

// A running broker's store is healthy however often it is checked.
func TestStoreProblemHealthyBroker(t *testing.T) {
	sub := newSink(t, status(200))
	b, _ := openBroker(t, Config{
		Files:   []string{writeManifest(t, triggerYAML("t", "test.a", "sub", ""))},
		Resolve: resolver(map[string]string{"sub": sub.srv.URL}),
	})
	for range 200 {
		if err := b.storeProblem(); err != nil {
			t.Fatalf("storeProblem on a healthy broker: %v", err)
		}
	}
}
