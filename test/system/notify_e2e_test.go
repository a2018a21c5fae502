package system

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/notify"
	"github.com/dronetrack/dronetrack/core/store"

	"github.com/dronetrack/dronetrack/infra/local"
)

// TestAlertNotifyThroughBroker: a Slack channel is a delivery target on
// the webhook Triggers of `up`'s broker. A low battery raised and resolved
// reach a Slack-shaped receiver once each, though it fails the first POST
// of each (the broker's redelivery is the retry); the channel's status and
// log in the API show the failure and the success; the channel's URL is in
// no API reply.
func TestAlertNotifyThroughBroker(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sys, demo := startTestSystem(t, local.Options{DemoDrones: 1})
	api := newAlertsAPI(t, ctx, sys)
	api.call("PUT", "/api/v1/alert-settings", alerting.Settings{LowBatteryPct: 20, HysteresisPct: 5, LostLinkSecs: 3600}, 200)

	var (
		mu       sync.Mutex
		posts    = map[string]int{} // by message text
		accepted []string
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Text   string
			Blocks []map[string]any
		}
		raw, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(raw, &body); err != nil || body.Text == "" || len(body.Blocks) == 0 {
			t.Errorf("not a Slack payload: %s", raw)
		}
		mu.Lock()
		defer mu.Unlock()
		posts[body.Text]++
		if posts[body.Text] == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		accepted = append(accepted, body.Text)
		_, _ = io.WriteString(w, "ok")
	}))
	defer recv.Close()
	secretURL := recv.URL + "/services/T9/B9/e2e-chat-secret"
	// Straight into the store: the API takes https URLs only, the receiver
	// is plain http on loopback (up lets alerts reach it).
	if err := sys.Store().CreateChannel(ctx, store.Channel{ID: "ch_e2e", TenantID: demo[0].TenantID, Name: "ops chat",
		Kind: notify.KindSlack, URL: secretURL, Rules: notify.Rules{AlertKinds: []string{alerting.KindBatteryLow}},
		CreatedAt: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	waitAccepted := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); ; {
			mu.Lock()
			got := len(accepted)
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the receiver accepted %d messages; want %d (posts %v)", got, n, posts)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	rep := newReporter(t, ctx, sys, demo[0])
	rep.post(47.0, 90)
	rep.post(47.0, 10)
	waitAccepted(1)
	rep.post(47.0, 100)
	waitAccepted(2)
	rep.post(47.0, 100)
	time.Sleep(2 * time.Second) // any stray redelivery would land now

	mu.Lock()
	got, perText := append([]string(nil), accepted...), map[string]int{}
	for k, v := range posts {
		perText[k] = v
	}
	mu.Unlock()
	name := demo[0].Name
	if len(got) != 2 || !strings.HasPrefix(got[0], name+": battery 10 %") || !strings.HasPrefix(got[1], name+": resolved: battery below 20%") {
		t.Errorf("accepted %q; want the raised then the resolved battery.low of %s", got, name)
	}
	if diff := cmp.Diff(map[string]int{got[0]: 2, got[1]: 2}, perText); diff != "" {
		t.Errorf("POSTs per message: one failure, then the accepted one (-want +got):\n%s", diff)
	}

	raw := api.call("GET", "/api/v1/channels", nil, 200)
	var list struct {
		Channels []struct {
			ID     string
			Status store.ChannelStatus
		}
	}
	_ = json.Unmarshal(raw, &list)
	if len(list.Channels) != 1 || list.Channels[0].Status.LastSuccessAt == nil || !strings.Contains(list.Channels[0].Status.LastError, "answered 500") {
		t.Errorf("channels %s; want the last success and the 500 as last error", raw)
	}
	dl := api.call("GET", "/api/v1/channels/ch_e2e/deliveries", nil, 200)
	var ds struct{ Deliveries []store.Delivery }
	_ = json.Unmarshal(dl, &ds)
	attempts := map[string]int{}
	for _, d := range ds.Deliveries {
		attempts[d.EventID]++
	}
	if len(ds.Deliveries) != 4 || len(attempts) != 2 {
		t.Errorf("delivery log %s; want 2 attempts for each of 2 events", dl)
	}
	for _, body := range [][]byte{raw, dl} {
		if strings.Contains(string(body), "e2e-chat-secret") {
			t.Errorf("the API shows the chat URL: %s", body)
		}
	}
}
