package function

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"

	"github.com/dronetrack/dronetrack/core/alerting"
	"github.com/dronetrack/dronetrack/core/notify"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/events"
)

const (
	smtpUser = "alerts@example.test"
	smtpPass = "smtp-pass-do-not-log"
	siteURL  = "https://track.example.test"
)

// testCert is a self-signed certificate for 127.0.0.1, made per test, and
// a pool trusting it (the client's RootCAs).
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtp.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// mailbox is a real SMTP server (go-smtp) that demands TLS and AUTH PLAIN,
// refuses the first `refuse` transactions with 451, and keeps what it
// accepted.
type mailbox struct {
	t      *testing.T
	addr   string
	roots  *x509.CertPool
	mu     sync.Mutex
	refuse int
	tries  int
	msgs   []received
}

type received struct {
	from string
	to   []string
	tls  bool
	raw  []byte
}

// newMailbox starts the server; implicitTLS serves TLS from the first
// byte (SMTPS) instead of offering STARTTLS.
func newMailbox(t *testing.T, implicitTLS bool) *mailbox {
	t.Helper()
	cert, roots := testCert(t)
	mb := &mailbox{t: t, roots: roots}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &mailSession{mb: mb, c: c}, nil
	}))
	srv.Domain = "smtp.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if implicitTLS {
		ln = tls.NewListener(ln, tlsCfg)
	} else {
		srv.TLSConfig = tlsCfg // offers STARTTLS; AUTH only after it
	}
	mb.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return mb
}

// config is the alerts function's SMTP settings for this server.
func (mb *mailbox) config(mode string) SMTPConfig {
	host, port, _ := net.SplitHostPort(mb.addr)
	p, _ := strconv.Atoi(port)
	return SMTPConfig{Host: host, Port: p, TLS: mode, Username: smtpUser, Password: smtpPass,
		From: "Dronetrack <alerts@example.test>", TLSConfig: &tls.Config{RootCAs: mb.roots}, Timeout: 10 * time.Second}
}

func (mb *mailbox) got() []received {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return append([]received(nil), mb.msgs...)
}

type mailSession struct {
	mb     *mailbox
	c      *smtp.Conn
	authed bool
	from   string
	to     []string
}

func (s *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *mailSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != smtpUser || pass != smtpPass {
			return errors.New("bad credentials")
		}
		s.authed = true
		return nil
	}), nil
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	s.mb.mu.Lock()
	defer s.mb.mu.Unlock()
	s.mb.tries++
	if s.mb.tries <= s.mb.refuse {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	s.from = from
	return nil
}

func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.c.TLSConnectionState()
	s.mb.mu.Lock()
	defer s.mb.mu.Unlock()
	s.mb.msgs = append(s.mb.msgs, received{from: s.from, to: s.to, tls: isTLS, raw: raw})
	return nil
}

func (s *mailSession) Reset()        { s.from, s.to = "", nil }
func (s *mailSession) Logout() error { return nil }

// parsed is a received message's subject and its two bodies.
type parsed struct {
	subject, text, html string
	header              netmail.Header
}

func parseMail(t *testing.T, raw []byte) parsed {
	t.Helper()
	m, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse mail: %v\n%s", err, raw)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	p := parsed{subject: subject, header: m.Header}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q; want multipart/alternative", m.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextPart() // decodes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(part)
		switch ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type")); ct {
		case "text/plain":
			p.text = string(b)
		case "text/html":
			p.html = string(b)
		}
	}
	return p
}

// notifyFixture is the alerts handler with drone d1 named demo-007 (its
// stored state gives the last position), a debug log captured, links to
// siteURL.
func notifyFixture(t *testing.T, smtpCfg SMTPConfig) (*fixture, *testenv.LogBuffer) {
	t.Helper()
	fx := newFixture(t)
	ctx := context.Background()
	if err := fx.st.RenameDrone(ctx, "acme", "d1", "demo-007"); err != nil {
		t.Fatal(err)
	}
	batt, tte := 14.0, 240.0
	_, _, err := fx.st.UpdateState(ctx, "acme", "d1", func(*events.DroneState) (events.DroneState, bool) {
		return events.DroneState{TS: t0, UpdatedAt: t0, Lat: 47.4, Lon: 8.5, Battery: &batt, TimeToEmptySecs: &tte}, true
	})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.LogBuffer{}
	fx.h.log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fx.h.opts.SMTP, fx.h.opts.SiteURL = smtpCfg, siteURL
	return fx, logs
}

// alertEvents runs d1 below and back above the battery thresholds and
// returns the battery.exhaustion raised and resolved events alerts
// published.
func alertEvents(t *testing.T, fx *fixture) (raised, resolved cloudevents.Event) {
	t.Helper()
	for i, st := range []struct{ sec, batt, tte float64 }{{0, 14, 240}, {100, 90, 9000}} {
		ts := t0.Add(time.Duration(st.sec) * time.Second)
		fx.setNow(ts)
		batt, tte := st.batt, st.tte
		ev, err := events.NewStateUpdated(events.StateUpdated{TenantID: "acme", DroneID: "d1",
			State: events.DroneState{TS: ts, UpdatedAt: ts, Lat: 47.4, Lon: 8.5, Battery: &batt, TimeToEmptySecs: &tte}})
		if err != nil {
			t.Fatal(err)
		}
		if code := fx.send(t, ev); code != http.StatusAccepted {
			t.Fatalf("state.updated %d: %d", i, code)
		}
	}
	fx.sink.mu.Lock()
	evs := append([]cloudevents.Event(nil), fx.sink.evs...)
	fx.sink.mu.Unlock()
	// 14 % and 4 min to empty raise battery.low and battery.exhaustion.
	for _, ev := range evs {
		a, err := events.Decode[events.Alert](ev, ev.Type())
		if err != nil || a.Kind != alerting.KindBatteryExhaustion {
			continue
		}
		if ev.Type() == events.TypeAlertRaised {
			raised = ev
		} else {
			resolved = ev
		}
	}
	if raised.ID() == "" || resolved.ID() == "" {
		t.Fatalf("published %v; want battery.exhaustion raised and resolved", fx.sink.got())
	}
	return raised, resolved
}

func createChannel(t *testing.T, st store.Store, c store.Channel) {
	t.Helper()
	c.TenantID = "acme"
	if c.CreatedAt.IsZero() {
		c.CreatedAt = t0.Add(-time.Hour)
	}
	if err := st.CreateChannel(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

// channelLog is the channel's attempts for one event as "attempt:ok".
func channelLog(t *testing.T, st store.Store, channelID, eventID string) []string {
	t.Helper()
	ds, err := st.ChannelEventDeliveries(context.Background(), "acme", channelID, eventID)
	if err != nil {
		t.Fatal(err)
	}
	return attemptLog(ds)
}

// TestEmailOncePerTransition: a raised and a resolved battery alert reach a
// real SMTP server over STARTTLS with AUTH, one message each, with the
// short subject, plain-text and HTML bodies and the link to the drone on
// the map, although the broker delivers each event twice; the channel's
// status shows the success; the SMTP password is in no log line.
func TestEmailOncePerTransition(t *testing.T) {
	mb := newMailbox(t, false)
	fx, logs := notifyFixture(t, mb.config(SMTPStartTLS))
	createChannel(t, fx.st, store.Channel{ID: "ch_mail", Name: "Ops", Kind: notify.KindEmail,
		Recipients: []string{"ops@example.test", "lead@example.test"},
		Rules:      notify.Rules{AlertKinds: []string{alerting.KindBatteryExhaustion, alerting.KindGeofence}}})
	raised, resolved := alertEvents(t, fx)
	fx.h.opts.Now = func() time.Time { return t0.Add(2 * time.Minute) }

	var took []time.Duration
	for _, ev := range []cloudevents.Event{raised, raised, resolved, resolved} {
		start := time.Now()
		if code := fx.sendTo(t, PathWebhooks, ev); code != http.StatusNoContent {
			t.Fatalf("%s: %d; want 204", ev.Type(), code)
		}
		took = append(took, time.Since(start))
	}
	// The figures docs/performance.md quotes: a delivery that sends (SMTP
	// connection, STARTTLS, AUTH, message, log write) and one that finds
	// the event in the channel's log.
	t.Logf("delivery with a send: %v, %v; redelivery (log hit): %v, %v", took[0], took[2], took[1], took[3])
	msgs := mb.got()
	if len(msgs) != 2 {
		t.Fatalf("SMTP server got %d messages; want 2 (one raised, one resolved)", len(msgs))
	}
	link := siteURL + "/?drone=d1"
	for i, want := range []string{
		"demo-007: battery 14 %, predicted empty in 4 min",
		"demo-007: resolved: battery predicted empty within 300 s (now 90 %)",
	} {
		m := msgs[i]
		if !m.tls {
			t.Errorf("message %d travelled without TLS; want STARTTLS", i)
		}
		if diff := cmp.Diff([]string{"ops@example.test", "lead@example.test"}, m.to); diff != "" {
			t.Errorf("message %d recipients (-want +got):\n%s", i, diff)
		}
		p := parseMail(t, m.raw)
		if p.subject != want {
			t.Errorf("message %d subject %q; want %q", i, p.subject, want)
		}
		if !strings.Contains(p.text, "Open on the map: "+link) {
			t.Errorf("message %d text lacks the link %s:\n%s", i, link, p.text)
		}
		if !strings.Contains(p.html, `<a href="`+link+`">`) {
			t.Errorf("message %d HTML lacks the link %s:\n%s", i, link, p.html)
		}
		if got := p.header.Get("X-Dronetrack-Event-Id"); got != []string{raised.ID(), resolved.ID()}[i] {
			t.Errorf("message %d event id %q", i, got)
		}
	}
	for _, ev := range []cloudevents.Event{raised, resolved} {
		if diff := cmp.Diff([]string{"1:true"}, channelLog(t, fx.st, "ch_mail", ev.ID())); diff != "" {
			t.Errorf("log of %s (-want +got):\n%s", ev.Type(), diff)
		}
	}
	ch, err := fx.st.Channel(context.Background(), "acme", "ch_mail")
	if err != nil {
		t.Fatal(err)
	}
	if ch.Status.LastSuccessAt == nil || ch.Status.LastErrorAt != nil || ch.Status.LastEventID != resolved.ID() {
		t.Errorf("status %+v; want a last success for the resolved event and no error", ch.Status)
	}
	if strings.Contains(logs.String(), smtpPass) {
		t.Errorf("the SMTP password is in the logs:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "notification sent") {
		t.Errorf("logs lack the sends:\n%s", logs.String())
	}
}

// TestEmailRefusedThenDelivered: an SMTP server refusing with 451 for a
// while makes each delivery answer 503 (the broker retries with backoff)
// and shows the error on the channel; the message arrives once when it
// accepts again, and the status then shows the success too.
func TestEmailRefusedThenDelivered(t *testing.T) {
	mb := newMailbox(t, false)
	mb.refuse = 3
	fx, _ := notifyFixture(t, mb.config(SMTPStartTLS))
	createChannel(t, fx.st, store.Channel{ID: "ch_mail", Kind: notify.KindEmail, Recipients: []string{"ops@example.test"}})
	raised, _ := alertEvents(t, fx)
	var now time.Time
	for i, want := range []int{503, 503, 503, 204, 204} {
		now = t0.Add(time.Duration(1<<i) * time.Second) // the Trigger's backoff: 1, 2, 4, ... s
		fx.h.opts.Now = func() time.Time { return now }
		if code := fx.sendTo(t, PathWebhooks, raised); code != want {
			t.Fatalf("delivery %d: %d; want %d", i+1, code, want)
		}
		if i == 0 {
			ch, _ := fx.st.Channel(context.Background(), "acme", "ch_mail")
			if ch.Status.LastErrorAt == nil || !strings.Contains(ch.Status.LastError, "451") || ch.Status.LastSuccessAt != nil {
				t.Errorf("status after a refusal %+v; want the 451 as last error", ch.Status)
			}
		}
	}
	if n := len(mb.got()); n != 1 {
		t.Errorf("SMTP server got %d messages; want 1", n)
	}
	if diff := cmp.Diff([]string{"1:false", "2:false", "3:false", "4:true"}, channelLog(t, fx.st, "ch_mail", raised.ID())); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
	ch, _ := fx.st.Channel(context.Background(), "acme", "ch_mail")
	if ch.Status.LastSuccessAt == nil || ch.Status.LastErrorAt == nil || !ch.Status.LastSuccessAt.After(*ch.Status.LastErrorAt) {
		t.Errorf("status %+v; want the success after the last error", ch.Status)
	}
}

// TestEmailImplicitTLS: SMTP_TLS=tls speaks TLS from the first byte (port
// 465 style).
func TestEmailImplicitTLS(t *testing.T) {
	mb := newMailbox(t, true)
	fx, _ := notifyFixture(t, mb.config(SMTPTLS))
	createChannel(t, fx.st, store.Channel{ID: "ch_mail", Kind: notify.KindEmail, Recipients: []string{"ops@example.test"}})
	raised, _ := alertEvents(t, fx)
	if code := fx.sendTo(t, PathWebhooks, raised); code != http.StatusNoContent {
		t.Fatalf("delivery: %d", code)
	}
	if msgs := mb.got(); len(msgs) != 1 || !msgs[0].tls {
		t.Errorf("got %d messages (%+v); want 1 over TLS", len(msgs), msgs)
	}
}

// TestNotifyStaleAndFiltered: a transition older than the tenant's
// staleness limit is not sent (and not retried: 204); channels get only
// the alert kinds they picked and nothing in their quiet hours; a
// deployment without SMTP records why on the channel and does not retry.
func TestNotifyStaleAndFiltered(t *testing.T) {
	mb := newMailbox(t, false)
	fx, _ := notifyFixture(t, mb.config(SMTPStartTLS))
	ctx := context.Background()
	createChannel(t, fx.st, store.Channel{ID: "ch_geo", Kind: notify.KindEmail, Recipients: []string{"geo@example.test"},
		Rules: notify.Rules{AlertKinds: []string{"geofence.breach"}}})
	// t0 is 12:00 UTC = 13:00 in Berlin: inside 12:30-14:00 there.
	createChannel(t, fx.st, store.Channel{ID: "ch_quiet", Kind: notify.KindEmail, Recipients: []string{"q@example.test"},
		Rules: notify.Rules{QuietHours: &notify.QuietHours{Start: "12:30", End: "14:00", TimeZone: "Europe/Berlin"}}})
	raised, resolved := alertEvents(t, fx)

	fx.h.opts.Now = func() time.Time { return t0.Add(time.Minute) }
	if code := fx.sendTo(t, PathWebhooks, raised); code != http.StatusNoContent {
		t.Fatalf("filtered: %d", code)
	}
	if n := len(mb.got()); n != 0 {
		t.Errorf("%d messages; want none (kind not picked, quiet hours)", n)
	}

	createChannel(t, fx.st, store.Channel{ID: "ch_all", Kind: notify.KindEmail, Recipients: []string{"all@example.test"}})
	settings := alerting.DefaultSettings()
	settings.NotifyStaleSecs = 60
	if err := fx.st.PutAlertSettings(ctx, "acme", settings); err != nil {
		t.Fatal(err)
	}
	fx.h.opts.Now = func() time.Time { return t0.Add(61 * time.Second) }
	if code := fx.sendTo(t, PathWebhooks, raised); code != http.StatusNoContent {
		t.Fatalf("stale: %d", code)
	}
	if n := len(mb.got()); n != 0 {
		t.Errorf("%d messages for a transition 61 s old with a 60 s limit; want none", n)
	}
	fx.h.opts.Now = func() time.Time { return t0.Add(59 * time.Second) }
	if code := fx.sendTo(t, PathWebhooks, raised); code != http.StatusNoContent {
		t.Fatalf("fresh: %d", code)
	}
	if msgs := mb.got(); len(msgs) != 1 || msgs[0].to[0] != "all@example.test" {
		t.Errorf("got %+v; want one message to the channel that wants everything", msgs)
	}

	fx.h.opts.SMTP = SMTPConfig{}
	createChannel(t, fx.st, store.Channel{ID: "ch_nosmtp", Kind: notify.KindEmail, Recipients: []string{"x@example.test"}})
	if code := fx.sendTo(t, PathWebhooks, raised); code != http.StatusNoContent {
		t.Fatalf("no SMTP: %d; want 204 (retrying cannot help)", code)
	}
	ch, _ := fx.st.Channel(ctx, "acme", "ch_nosmtp")
	if !strings.Contains(ch.Status.LastError, "SMTP_HOST") {
		t.Errorf("status %+v; want the missing mail server named", ch.Status)
	}
	// Its resolved event does not wait for a raised one it can never get.
	fx.h.opts.Now = func() time.Time { return t0.Add(101 * time.Second) }
	if code := fx.sendTo(t, PathWebhooks, resolved); code != http.StatusNoContent {
		t.Errorf("resolved without SMTP: %d; want 204", code)
	}
}

// chatReceiver is a local Slack or Teams incoming webhook: it records the
// JSON bodies posted to its secret path and fails the first failFirst.
type chatReceiver struct {
	srv       *httptest.Server
	failFirst int
	mu        sync.Mutex
	posts     int
	bodies    []map[string]any
}

const chatSecretPath = "/services/T0001/B0001/xoxsecrettoken"

func newChatReceiver(t *testing.T, failFirst int) *chatReceiver {
	cr := &chatReceiver{failFirst: failFirst}
	cr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != chatSecretPath || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("chat POST to %s as %q", r.URL.Path, r.Header.Get("Content-Type"))
		}
		var v map[string]any
		if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
			t.Errorf("chat body: %v", err)
		}
		cr.mu.Lock()
		defer cr.mu.Unlock()
		cr.posts++
		if cr.posts <= cr.failFirst {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		cr.bodies = append(cr.bodies, v)
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(cr.srv.Close)
	return cr
}

// TestChatPayloads: Slack gets text plus blocks (header with the subject,
// the facts, a button to the map), Teams a message with an Adaptive Card
// (the subject, a fact set, an Open URL action); a failing receiver is
// retried by the broker once, and neither the channel's status nor the
// logs show the secret URL.
func TestChatPayloads(t *testing.T) {
	slack, teams := newChatReceiver(t, 1), newChatReceiver(t, 0)
	fx, logs := notifyFixture(t, SMTPConfig{})
	createChannel(t, fx.st, store.Channel{ID: "ch_slack", Kind: notify.KindSlack, URL: slack.srv.URL + chatSecretPath})
	createChannel(t, fx.st, store.Channel{ID: "ch_teams", Kind: notify.KindTeams, URL: teams.srv.URL + chatSecretPath})
	raised, _ := alertEvents(t, fx)
	for i, want := range []int{503, 204, 204} {
		if code := fx.sendTo(t, PathWebhooks, raised); code != want {
			t.Fatalf("delivery %d: %d; want %d", i+1, code, want)
		}
	}
	if slack.posts != 2 || len(slack.bodies) != 1 || teams.posts != 1 || len(teams.bodies) != 1 {
		t.Fatalf("slack %d posts %d accepted, teams %d posts %d accepted; want 2/1 and 1/1",
			slack.posts, len(slack.bodies), teams.posts, len(teams.bodies))
	}
	subject, link := "demo-007: battery 14 %, predicted empty in 4 min", siteURL+"/?drone=d1"

	type slackBlock struct {
		Type string `json:"type"`
		Text *struct {
			Type, Text string
		} `json:"text"`
		Elements []struct {
			Type, URL string
		} `json:"elements"`
	}
	var s struct {
		Text   string       `json:"text"`
		Blocks []slackBlock `json:"blocks"`
	}
	remarshal(t, slack.bodies[0], &s)
	if s.Text != subject || len(s.Blocks) != 3 || s.Blocks[0].Type != "header" || s.Blocks[0].Text.Text != subject ||
		s.Blocks[1].Type != "section" || s.Blocks[1].Text.Type != "mrkdwn" || !strings.Contains(s.Blocks[1].Text.Text, "*Battery:* 14 %") ||
		s.Blocks[2].Type != "actions" || s.Blocks[2].Elements[0].Type != "button" || s.Blocks[2].Elements[0].URL != link {
		t.Errorf("slack payload %+v", slack.bodies[0])
	}

	var tm struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string `json:"contentType"`
			Content     struct {
				Type    string `json:"type"`
				Version string `json:"version"`
				Body    []struct {
					Type, Text string
					Facts      []struct{ Title, Value string }
				} `json:"body"`
				Actions []struct {
					Type, Title, URL string
				} `json:"actions"`
			} `json:"content"`
		} `json:"attachments"`
	}
	remarshal(t, teams.bodies[0], &tm)
	if tm.Type != "message" || len(tm.Attachments) != 1 {
		t.Fatalf("teams payload %+v", teams.bodies[0])
	}
	card := tm.Attachments[0]
	if card.ContentType != "application/vnd.microsoft.card.adaptive" || card.Content.Type != "AdaptiveCard" ||
		len(card.Content.Body) != 2 || card.Content.Body[0].Type != "TextBlock" || card.Content.Body[0].Text != subject ||
		card.Content.Body[1].Type != "FactSet" || len(card.Content.Body[1].Facts) < 4 ||
		len(card.Content.Actions) != 1 || card.Content.Actions[0].Type != "Action.OpenUrl" || card.Content.Actions[0].URL != link {
		t.Errorf("teams payload %+v", teams.bodies[0])
	}

	ch, _ := fx.st.Channel(context.Background(), "acme", "ch_slack")
	if ch.Status.LastError == "" || ch.Status.LastSuccessAt == nil {
		t.Errorf("slack status %+v; want the failure and the success", ch.Status)
	}
	for what, text := range map[string]string{"status": ch.Status.LastError, "logs": logs.String()} {
		if strings.Contains(text, "xoxsecrettoken") {
			t.Errorf("the chat URL's secret is in the %s:\n%s", what, text)
		}
	}
	if !strings.Contains(ch.Status.LastError, "answered 500") {
		t.Errorf("slack last error %q; want the receiver's 500", ch.Status.LastError)
	}
}

// An unreachable chat URL's error (Go's client prints the whole URL) is
// recorded without it.
func TestChatUnreachableRedacted(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL + chatSecretPath
	dead.Close()
	fx, logs := notifyFixture(t, SMTPConfig{})
	createChannel(t, fx.st, store.Channel{ID: "ch_teams", Kind: notify.KindTeams, URL: url})
	raised, _ := alertEvents(t, fx)
	if code := fx.sendTo(t, PathWebhooks, raised); code != http.StatusServiceUnavailable {
		t.Fatalf("delivery: %d; want 503", code)
	}
	ch, _ := fx.st.Channel(context.Background(), "acme", "ch_teams")
	if ch.Status.LastError == "" || strings.Contains(ch.Status.LastError, "xoxsecrettoken") ||
		strings.Contains(logs.String(), "xoxsecrettoken") {
		t.Errorf("last error %q / logs %s; want an error without the URL", ch.Status.LastError, logs.String())
	}
}

func remarshal(t *testing.T, in any, out any) {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
}
