package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/events"
)

// Input is what a notification is made of: the alert transition (with the
// battery readings of the state that caused it), the drone's name and last
// known position (nil when unknown), and the website's base URL for the
// link.
type Input struct {
	Alert     events.Alert
	Resolved  bool
	DroneName string
	Position  *[2]float64 // lat, lon of the drone's newest state
	SiteURL   string      // e.g. https://track.example.com; empty: no link
}

// droneName is how messages name the drone: its name, else its id.
func (in Input) droneName() string {
	if in.DroneName == "" {
		return in.Alert.DroneID
	}
	return in.DroneName
}

// Message is one notification, ready for any channel kind.
type Message struct {
	Subject string
	Text    string // plain-text body
	HTML    string // HTML body
	Link    string // the drone on the website's map; empty without SiteURL
	Input   Input
}

// DroneLink is the website's map focused on the drone (the page reads the
// drone query parameter).
func DroneLink(siteURL, droneID string) string {
	if siteURL == "" {
		return ""
	}
	return strings.TrimRight(siteURL, "/") + "/?drone=" + url.QueryEscape(droneID)
}

// Compose builds the message. The subject is short and leads with the
// drone: "demo-007: battery 14 %, predicted empty in 4 min".
func Compose(in Input) Message {
	a := in.Alert
	name := in.droneName()
	m := Message{Link: DroneLink(in.SiteURL, a.DroneID), Input: in}
	what := summary(a)
	if in.Resolved {
		m.Subject = name + ": resolved: " + a.Message
		if b := battery(a); b != "" && isBattery(a.Kind) {
			m.Subject += " (now " + b + ")"
		}
	} else {
		m.Subject = name + ": " + what
	}
	// Names and messages come from tenants: no line breaks or other
	// control characters in a header line.
	m.Subject = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, m.Subject)
	m.Text = textBody(m, name)
	m.HTML = htmlBody(m, name)
	return m
}

func isBattery(kind string) bool {
	return kind == alerting.KindBatteryLow || kind == alerting.KindBatteryExhaustion
}

// summary is the raised subject after the drone's name: for battery alerts
// the charge and the predicted time to empty when known, else the alert's
// own message.
func summary(a events.Alert) string {
	b := battery(a)
	if !isBattery(a.Kind) || b == "" {
		return a.Message
	}
	s := "battery " + b
	if a.TimeToEmptySecs != nil && *a.TimeToEmptySecs >= 0 {
		s += ", predicted empty in " + duration(*a.TimeToEmptySecs)
	}
	return s
}

func battery(a events.Alert) string {
	if a.Battery == nil {
		return ""
	}
	return fmt.Sprintf("%.0f %%", *a.Battery)
}

// duration says a time to empty the way a person would: "45 s", "4 min",
// "2 h 5 min".
func duration(secs float64) string {
	switch {
	case secs < 60:
		return fmt.Sprintf("%.0f s", secs)
	case secs < 3600:
		return fmt.Sprintf("%.0f min", math.Round(secs/60))
	default:
		h := math.Floor(secs / 3600)
		return fmt.Sprintf("%.0f h %.0f min", h, math.Round((secs-h*3600)/60))
	}
}

// kindLabel names an alert kind for people.
func kindLabel(kind string) string {
	switch kind {
	case alerting.KindBatteryLow:
		return "Low battery"
	case alerting.KindBatteryExhaustion:
		return "Battery nearly empty"
	case alerting.KindGeofence:
		return "Geofence breach"
	case alerting.KindLinkLost:
		return "Link lost"
	}
	return kind
}

// facts are the label/value lines every body shows, in order.
func facts(m Message, name string) [][2]string {
	a := m.Input.Alert
	status := "raised"
	if m.Input.Resolved {
		status = "resolved"
	}
	out := [][2]string{
		{"Alert", kindLabel(a.Kind) + " (" + a.Kind + "), " + status},
		{"Drone", name + " (" + a.DroneID + ")"},
		{"Condition", a.Message},
		{"Opened", a.OpenedAt.UTC().Format(time.RFC1123)},
	}
	if a.ResolvedAt != nil {
		out = append(out, [2]string{"Resolved", a.ResolvedAt.UTC().Format(time.RFC1123)})
	}
	if b := battery(a); b != "" {
		out = append(out, [2]string{"Battery", b})
	}
	if a.TimeToEmptySecs != nil && *a.TimeToEmptySecs >= 0 {
		out = append(out, [2]string{"Predicted empty in", duration(*a.TimeToEmptySecs)})
	}
	if p := m.Input.Position; p != nil {
		out = append(out, [2]string{"Last position", fmt.Sprintf("%.5f, %.5f", p[0], p[1])})
	}
	return out
}

func textBody(m Message, name string) string {
	var b strings.Builder
	b.WriteString(m.Subject + "\n\n")
	for _, f := range facts(m, name) {
		fmt.Fprintf(&b, "%s: %s\n", f[0], f[1])
	}
	if m.Link != "" {
		fmt.Fprintf(&b, "\nOpen on the map: %s\n", m.Link)
	}
	fmt.Fprintf(&b, "\nAlert id %s. Sent by Dronetrack.\n", m.Input.Alert.ID)
	return b.String()
}

var htmlTmpl = template.Must(template.New("mail").Parse(`<!doctype html>
<html><body style="font-family: sans-serif">
<h2 style="margin: 0 0 .5em">{{.Subject}}</h2>
<table style="border-collapse: collapse">
{{range .Facts}}<tr><th style="text-align: left; padding-right: 1em">{{index . 0}}</th><td>{{index . 1}}</td></tr>
{{end}}</table>
{{if .Link}}<p><a href="{{.Link}}">Open {{.Name}} on the map</a></p>{{end}}
<p style="color: #666; font-size: small">Alert id {{.ID}}. Sent by Dronetrack.</p>
</body></html>
`))

func htmlBody(m Message, name string) string {
	var b bytes.Buffer
	_ = htmlTmpl.Execute(&b, map[string]any{"Subject": m.Subject, "Facts": facts(m, name), "Link": m.Link,
		"Name": name, "ID": m.Input.Alert.ID})
	return b.String()
}

// slackEscape escapes the three characters Slack's mrkdwn reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// SlackPayload is the JSON body for a Slack incoming webhook: text (the
// notification's fallback and preview) and blocks (header, facts, a button
// to the map).
func SlackPayload(m Message) ([]byte, error) {
	name := m.Input.droneName()
	var lines []string
	for _, f := range facts(m, name) {
		lines = append(lines, "*"+slackEscape(f[0])+":* "+slackEscape(f[1]))
	}
	blocks := []any{
		map[string]any{"type": "header", "text": map[string]any{"type": "plain_text", "text": clip(m.Subject, 150)}},
		map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": strings.Join(lines, "\n")}},
	}
	if m.Link != "" {
		blocks = append(blocks, map[string]any{"type": "actions", "elements": []any{map[string]any{
			"type": "button", "text": map[string]any{"type": "plain_text", "text": "Open on the map"}, "url": m.Link}}})
	}
	return json.Marshal(map[string]any{"text": slackEscape(m.Subject), "blocks": blocks})
}

// teamsEscape backslash-escapes the Markdown that Adaptive Cards render in
// TextBlock and FactSet text (emphasis, links, code), so a drone or fence
// name such as "[pay here](https://...)" shows as typed instead of becoming
// a link in the operator's channel. The card's own link is an action.
func teamsEscape(s string) string {
	return teamsReplacer.Replace(s)
}

var teamsReplacer = strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`,
	"(", `\(`, ")", `\)`, "`", "\\`", "~", `\~`, "<", `\<`, ">", `\>`)

// TeamsPayload is the JSON body for a Microsoft Teams incoming webhook (a
// Workflows "when a webhook request is received" flow, or a classic
// connector): a message with one Adaptive Card attachment.
func TeamsPayload(m Message) ([]byte, error) {
	name := m.Input.droneName()
	var fs []any
	for _, f := range facts(m, name) {
		fs = append(fs, map[string]any{"title": teamsEscape(f[0]), "value": teamsEscape(f[1])})
	}
	card := map[string]any{
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
		"type":    "AdaptiveCard",
		"version": "1.4",
		"body": []any{
			map[string]any{"type": "TextBlock", "text": teamsEscape(m.Subject), "weight": "Bolder", "size": "Medium", "wrap": true},
			map[string]any{"type": "FactSet", "facts": fs},
		},
	}
	if m.Link != "" {
		card["actions"] = []any{map[string]any{"type": "Action.OpenUrl", "title": "Open on the map", "url": m.Link}}
	}
	return json.Marshal(map[string]any{
		"type": "message",
		"attachments": []any{map[string]any{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"content":     card,
		}},
	})
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
