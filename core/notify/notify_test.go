package notify

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/events"
)

func TestQuietHoursContains(t *testing.T) {
	berlin := QuietHours{Start: "22:00", End: "07:00", TimeZone: "Europe/Berlin"}
	day := QuietHours{Start: "12:00", End: "13:30", TimeZone: "UTC"}
	all := QuietHours{Start: "08:00", End: "08:00", TimeZone: "UTC"}
	for _, tc := range []struct {
		q    QuietHours
		at   string
		want bool
	}{
		{berlin, "2026-07-01T19:59:00Z", false}, // 21:59 CEST
		{berlin, "2026-07-01T20:00:00Z", true},  // 22:00 CEST
		{berlin, "2026-07-02T04:59:00Z", true},  // 06:59 CEST
		{berlin, "2026-07-02T05:00:00Z", false}, // 07:00 CEST: the end is exclusive
		{berlin, "2026-01-15T21:30:00Z", true},  // 22:30 CET (winter: UTC+1)
		{berlin, "2026-01-15T20:30:00Z", false}, // 21:30 CET
		{day, "2026-01-15T12:00:00Z", true},
		{day, "2026-01-15T13:29:59Z", true},
		{day, "2026-01-15T13:30:00Z", false},
		{day, "2026-01-15T11:59:00Z", false},
		{all, "2026-01-15T03:00:00Z", true},
		{QuietHours{Start: "7:00", End: "08:00"}, "2026-01-15T07:30:00Z", false}, // invalid: silences nothing
	} {
		at, _ := time.Parse(time.RFC3339, tc.at)
		if got := tc.q.Contains(at); got != tc.want {
			t.Errorf("%+v.Contains(%s) = %v; want %v", tc.q, tc.at, got, tc.want)
		}
	}
}

func TestRulesValidate(t *testing.T) {
	for _, tc := range []struct {
		r     Rules
		field string // "" = valid
	}{
		{Rules{}, ""},
		{Rules{AlertKinds: []string{alerting.KindGeofence}, FenceIDs: []string{"gf_1"}, DroneIDs: []string{"d1"},
			QuietHours: &QuietHours{Start: "22:00", End: "06:30", TimeZone: "America/New_York"}}, ""},
		{Rules{AlertKinds: []string{"battery.low", "battery.empty"}}, "alertKinds[1]"},
		{Rules{DroneIDs: []string{""}}, "droneIds[0]"},
		{Rules{FenceIDs: make([]string, 101)}, "fenceIds"},
		{Rules{QuietHours: &QuietHours{Start: "24:00", End: "06:00"}}, "quietHours.start"},
		{Rules{QuietHours: &QuietHours{Start: "22:00", End: "6:00"}}, "quietHours.end"},
		{Rules{QuietHours: &QuietHours{Start: "22:00", End: "06:00", TimeZone: "Local"}}, "quietHours.timeZone"},
		{Rules{QuietHours: &QuietHours{Start: "22:00", End: "06:00", TimeZone: "Nowhere/City"}}, "quietHours.timeZone"},
	} {
		err := tc.r.Validate()
		var fe *alerting.FieldError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%+v: %v; want valid", tc.r, err)
		case tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field):
			t.Errorf("%+v: %v; want a field error on %s", tc.r, err, tc.field)
		}
	}
}

func TestWants(t *testing.T) {
	noon := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	geo := events.Alert{DroneID: "d1", Kind: alerting.KindGeofence, FenceID: "gf_yard"}
	low := events.Alert{DroneID: "d2", Kind: alerting.KindBatteryLow}
	for _, tc := range []struct {
		name string
		r    Rules
		a    events.Alert
		want bool
	}{
		{"no rules: everything", Rules{}, geo, true},
		{"kind picked", Rules{AlertKinds: []string{alerting.KindGeofence}}, geo, true},
		{"kind not picked", Rules{AlertKinds: []string{alerting.KindGeofence}}, low, false},
		{"fence picked", Rules{FenceIDs: []string{"gf_yard"}}, geo, true},
		{"other fence", Rules{FenceIDs: []string{"gf_pad"}}, geo, false},
		{"fence list leaves other kinds alone", Rules{FenceIDs: []string{"gf_pad"}}, low, true},
		{"drone picked", Rules{DroneIDs: []string{"d2"}}, low, true},
		{"other drone", Rules{DroneIDs: []string{"d2"}}, geo, false},
		{"quiet now", Rules{QuietHours: &QuietHours{Start: "11:00", End: "13:00", TimeZone: "UTC"}}, geo, false},
		{"quiet later", Rules{QuietHours: &QuietHours{Start: "13:00", End: "14:00", TimeZone: "UTC"}}, geo, true},
	} {
		if got := tc.r.Wants(tc.a, noon); got != tc.want {
			t.Errorf("%s: Wants = %v; want %v", tc.name, got, tc.want)
		}
	}
}

func TestStaleness(t *testing.T) {
	at := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	if StaleAfter(alerting.DefaultSettings()) != 15*time.Minute {
		t.Errorf("default staleness %v; want 15 min", StaleAfter(alerting.DefaultSettings()))
	}
	s := alerting.DefaultSettings()
	s.NotifyStaleSecs = 120
	if StaleAfter(s) != 2*time.Minute {
		t.Errorf("staleness %v; want 2 min", StaleAfter(s))
	}
	if Stale(at, at.Add(15*time.Minute), DefaultStaleAfter) || !Stale(at, at.Add(15*time.Minute+time.Second), DefaultStaleAfter) {
		t.Error("a transition is stale strictly after the limit")
	}
	resolved := at.Add(time.Hour)
	a := events.Alert{OpenedAt: at, ResolvedAt: &resolved}
	if !TransitionTime(a, true).Equal(resolved) || !TransitionTime(a, false).Equal(at) {
		t.Error("TransitionTime: opened for raised, resolved for resolved")
	}
}

func TestCompose(t *testing.T) {
	batt, tte := 14.0, 235.0
	opened := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	a := events.Alert{ID: "a1", DroneID: "d7", Kind: alerting.KindBatteryExhaustion, Message: "battery predicted empty within 300 s",
		OpenedAt: opened, Battery: &batt, TimeToEmptySecs: &tte}
	m := Compose(Input{Alert: a, DroneName: "demo-007", SiteURL: "https://track.example.com/", Position: &[2]float64{47.1, 8.5}})
	if m.Subject != "demo-007: battery 14 %, predicted empty in 4 min" {
		t.Errorf("subject %q", m.Subject)
	}
	if m.Link != "https://track.example.com/?drone=d7" || !strings.Contains(m.Text, m.Link) || !strings.Contains(m.HTML, `href="`+m.Link+`"`) {
		t.Errorf("link %q missing from the bodies:\n%s\n%s", m.Link, m.Text, m.HTML)
	}
	geo := events.Alert{ID: "a2", DroneID: "d7", Kind: alerting.KindGeofence, FenceID: "gf", Message: `inside keep-out zone "<Pad & Co>"`, OpenedAt: opened}
	g := Compose(Input{Alert: geo})
	if g.Subject != `d7: inside keep-out zone "<Pad & Co>"` || g.Link != "" {
		t.Errorf("geofence subject %q link %q", g.Subject, g.Link)
	}
	if strings.Contains(g.HTML, "<Pad") || !strings.Contains(g.HTML, "&lt;Pad &amp; Co&gt;") {
		t.Errorf("HTML body does not escape the fence name:\n%s", g.HTML)
	}
	closed := opened.Add(5 * time.Minute)
	up := 60.0
	r := a
	r.ResolvedAt, r.Battery, r.TimeToEmptySecs = &closed, &up, nil
	if s := Compose(Input{Alert: r, Resolved: true, DroneName: "demo-007"}).Subject; s != "demo-007: resolved: battery predicted empty within 300 s (now 60 %)" {
		t.Errorf("resolved subject %q", s)
	}

	if s := Compose(Input{Alert: geo, DroneName: "evil\r\nBcc: all@example.com"}).Subject; strings.ContainsAny(s, "\r\n") {
		t.Errorf("subject %q carries a line break from the drone's name", s)
	}

	var slack struct {
		Text   string
		Blocks []struct{ Type string }
	}
	b, _ := SlackPayload(g)
	if err := json.Unmarshal(b, &slack); err != nil || slack.Text != `d7: inside keep-out zone "&lt;Pad &amp; Co&gt;"` || len(slack.Blocks) != 2 {
		t.Errorf("slack payload %s (no link: no actions block; mrkdwn escaped)", b)
	}
	b, _ = TeamsPayload(m)
	if !strings.Contains(string(b), `"Action.OpenUrl"`) || !strings.Contains(string(b), `"AdaptiveCard"`) {
		t.Errorf("teams payload %s", b)
	}

	// A drone name written as Markdown must not become a link or emphasis
	// in the Teams card: the card's only link is its Open action.
	evil := Compose(Input{Alert: geo, DroneName: "[pay here](https://evil.example/x) *urgent*"})
	b, _ = TeamsPayload(evil)
	var card struct {
		Attachments []struct {
			Content struct {
				Body []struct {
					Text  string
					Facts []struct{ Title, Value string }
				}
			}
		}
	}
	if err := json.Unmarshal(b, &card); err != nil || len(card.Attachments) != 1 || len(card.Attachments[0].Content.Body) != 2 {
		t.Fatalf("teams payload %s: %v", b, err)
	}
	body := card.Attachments[0].Content.Body
	if want := `\[pay here\]\(https://evil.example/x\) \*urgent\*: inside keep-out zone "\<Pad & Co\>"`; body[0].Text != want {
		t.Errorf("teams title %q, want %q", body[0].Text, want)
	}
	for _, f := range body[1].Facts {
		if strings.Contains(f.Value, "](") {
			t.Errorf("teams fact %q=%q keeps a Markdown link", f.Title, f.Value)
		}
	}
}
