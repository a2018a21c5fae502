package function

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/core/publish"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/tracing"
	"github.com/dronetrack/dronetrack/events"
)

// PathWebhooks is where the alerts-webhooks-raised and
// alerts-webhooks-resolved Triggers (infra/base/triggers.yaml) deliver the
// alert events this function published, for delivery to the tenant's
// webhooks. The Trigger's delivery spec is the retry policy: a 503 here is
// retried by the broker with exponential backoff, a 400 goes to the
// dead-letter sink.
const PathWebhooks = "/webhooks"

// SignatureHeader carries a delivery's signature: "t=<unix seconds>,v1=<hex
// HMAC-SHA256 of "<t>.<body>" keyed by the webhook secret>". Receivers
// recompute it, compare in constant time and reject old t (replays).
const SignatureHeader = "X-Dronetrack-Signature"

// Sign returns the SignatureHeader value for body at time t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// serveWebhooks handles one broker delivery of an alert event: each of the
// tenant's webhooks whose delivery log has no successful attempt for the
// event gets one signed POST, logged with its attempt number (attempts
// logged so far + 1). A redelivery therefore never re-posts to a webhook
// that already has the event, and the broker's retries are the webhook
// retries: 2xx when every webhook has the event, 503 when one still fails
// (the broker retries with backoff, then dead-letters), 400 for an event
// that is not an alert (dead-letter at once).
//
// Webhooks are posted in parallel, so one delivery lasts at most the
// webhook client's timeout (10 s) however many webhooks a tenant has.
//
// Exactly once per webhook holds as long as the log write after a 2xx
// succeeds: when it fails, the webhook counts as delivered for this
// delivery (no 503, which would re-post at once), but a later redelivery
// caused by another webhook's failure posts again. Receivers should dedupe
// by the CloudEvent id.
func (h *Handler) serveWebhooks(w http.ResponseWriter, r *http.Request) {
	ev, err := publish.EventFromRequest(r) // in process: the broker's event itself
	if err != nil {
		h.reject(w, "not a CloudEvent: "+err.Error())
		return
	}
	if ev.Type() != events.TypeAlertRaised && ev.Type() != events.TypeAlertResolved {
		h.reject(w, "unexpected event type "+ev.Type()+" for webhooks")
		return
	}
	a, err := events.Decode[events.Alert](*ev, ev.Type())
	if err != nil || a.ID == "" || a.TenantID == "" || extension(*ev, events.ExtTenantID) != a.TenantID {
		h.reject(w, "invalid alert event "+ev.ID())
		return
	}
	// The webhook POSTs are this span's children: the receiver's trace
	// continues the one of the state.updated that raised the alert.
	tc, _ := tracing.FromEvent(*ev)
	log := h.log.With(append([]any{"event_id", ev.ID(), "tenant_id", a.TenantID, "alert_id", a.ID}, tc.LogAttrs()...)...)
	ctx := r.Context()
	hooks, err := h.st.Webhooks(ctx, a.TenantID)
	if err != nil {
		h.transient(w, log, "list webhooks", err)
		return
	}
	// Notification channels are delivery targets too (notify.go).
	chans, err := h.st.Channels(ctx, a.TenantID)
	if err != nil {
		h.transient(w, log, "list notification channels", err)
		return
	}
	if len(hooks) == 0 && len(chans) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	body, err := webhookBody(*ev)
	if err != nil {
		h.reject(w, "encode webhook body of "+ev.ID()+": "+err.Error())
		return
	}
	errs := make([]error, len(hooks)+len(chans))
	var wg sync.WaitGroup
	for i, hook := range hooks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = h.deliver(ctx, log.With("webhook_id", hook.ID), hook, a, *ev, body, tc)
		}()
	}
	for i, ch := range chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[len(hooks)+i] = h.notifyChannel(ctx, log.With("channel_id", ch.ID), ch, a, *ev)
		}()
	}
	wg.Wait()
	var failed []string
	for i, err := range errs {
		if err == nil {
			continue
		}
		if i < len(hooks) {
			failed = append(failed, hooks[i].ID)
		} else {
			failed = append(failed, chans[i-len(hooks)].ID)
		}
	}
	if len(failed) > 0 {
		log.Warn("webhook delivery incomplete; the broker retries", "failed_targets", failed)
		w.Header().Set("Retry-After", "1")
		problem.Write(w, http.StatusServiceUnavailable, "", fmt.Sprintf("%d of %d webhooks and channels failed; retry",
			len(failed), len(hooks)+len(chans)))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deliver posts the event to one webhook unless its log shows it delivered,
// and logs the attempt. nil means the webhook has the event.
//
// A resolved event waits until the webhook has the alert's raised event:
// the two travel on separate Triggers, and a raised one still being retried
// must not be overtaken, or a receiver would see an alert close before it
// opened. A webhook created after the alert opened may never get the raised
// event, so it does not wait.
func (h *Handler) deliver(ctx context.Context, log *slog.Logger, hook store.Webhook, a events.Alert, ev cloudevents.Event,
	body []byte, tc tracing.Context) error {
	prev, err := h.st.EventDeliveries(ctx, hook.TenantID, hook.ID, ev.ID())
	if err != nil {
		log.Error("read delivery log", "err", err)
		return fmt.Errorf("read delivery log: %w", err)
	}
	if delivered(prev) {
		log.Debug("webhook already has the event")
		return nil
	}
	if ev.Type() == events.TypeAlertResolved && !hook.CreatedAt.After(a.OpenedAt) {
		raised, err := h.st.EventDeliveries(ctx, hook.TenantID, hook.ID, events.AlertEventID(a.ID, false))
		if err != nil {
			log.Error("read delivery log", "err", err)
			return fmt.Errorf("read delivery log: %w", err)
		}
		if !delivered(raised) {
			log.Info("resolved event waits for the raised one to reach the webhook")
			return fmt.Errorf("webhook %s does not have %s yet", hook.ID, events.AlertEventID(a.ID, false))
		}
	}
	attempt := len(prev) + 1
	code, postErr := h.post(ctx, hook, ev.ID(), body, tc)
	rec := store.Delivery{ID: newID(), TenantID: hook.TenantID, WebhookID: hook.ID, EventID: ev.ID(),
		EventType: ev.Type(), Attempt: attempt, At: h.opts.Now().UTC(), StatusCode: code,
		OK: postErr == nil && code >= 200 && code < 300}
	switch {
	case postErr != nil:
		rec.Error = postErr.Error()
	case !rec.OK:
		rec.Error = fmt.Sprintf("receiver answered %d", code)
	}
	// The log write outlives a cancelled request: the POST happened.
	if err := h.st.AddDelivery(context.WithoutCancel(ctx), rec); err != nil {
		log.Error("write delivery log", "attempt", attempt, "ok", rec.OK, "err", err)
		if !rec.OK {
			return fmt.Errorf("write delivery log: %w", err)
		}
	}
	if !rec.OK {
		log.Warn("webhook delivery failed", "attempt", attempt, "status", code, "err", postErr)
		return fmt.Errorf("webhook %s attempt %d: %s", hook.ID, attempt, rec.Error)
	}
	log.Info("webhook delivered", "attempt", attempt, "status", code)
	return nil
}

// delivered reports whether a delivery log holds a successful attempt.
func delivered(log []store.Delivery) bool {
	for _, d := range log {
		if d.OK {
			return true
		}
	}
	return false
}

func (h *Handler) post(ctx context.Context, hook store.Webhook, eventID string, body []byte, tc tracing.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("User-Agent", "Dronetrack-Webhook/1")
	req.Header.Set("X-Dronetrack-Event-Id", eventID)
	req.Header.Set(SignatureHeader, Sign(hook.Secret, h.opts.Now(), body))
	tc.SetHeader(req.Header)
	resp, err := h.opts.WebhookClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// webhookBody is the event in structured-mode JSON as alerts published it:
// extensions a Knative broker adds on the way (knativearrivaltime and the
// like) are the cluster's business, not the receiver's.
func webhookBody(ev cloudevents.Event) ([]byte, error) {
	ev = ev.Clone()
	for name := range ev.Extensions() {
		if strings.HasPrefix(name, "knative") {
			ev.SetExtension(name, nil)
		}
	}
	return json.Marshal(ev)
}

// webhookClient is the HTTP client for deliveries. Unless allowPrivate, its
// dialer refuses loopback, private, link-local and unspecified addresses
// after DNS resolution (so a name that resolves inside the cluster is
// refused too), and it follows no redirects.
func webhookClient(allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if !allowPrivate {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(host)
			if err != nil {
				return err
			}
			if !publicAddr(ip) {
				return fmt.Errorf("webhook address %s is not public", ip.Unmap())
			}
			return nil
		}
	}
	return &http.Client{
		Timeout:       10 * time.Second,
		Transport:     &http.Transport{DialContext: d.DialContext, Proxy: nil, MaxIdleConnsPerHost: 4},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// publicAddr reports whether ip may receive a webhook or chat post: not
// loopback, private, link-local, multicast or unspecified, none of the
// special ranges that reach a cluster's or cloud's own network, and no
// IPv6 address that carries one of those as an embedded IPv4 (NAT64, 6to4).
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || !ip.IsGlobalUnicast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip): // the IPv4 in the last 32 bits
			return publicAddr(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(ip): // the IPv4 in bits 16-47
			return publicAddr(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	return true
}

var (
	// nonPublic are special-purpose ranges (RFC 6890 and after) that
	// netip's predicates do not cover.
	nonPublic = []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),      // "this network"
		netip.MustParsePrefix("100.64.0.0/10"),  // shared address space (CGNAT; pod and node ranges of some clusters)
		netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
		netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
		netip.MustParsePrefix("240.0.0.0/4"),    // reserved
		netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64 (RFC 8215)
		netip.MustParsePrefix("2001::/32"),      // Teredo: the client's IPv4 is obfuscated, refuse it whole
		netip.MustParsePrefix("2001:db8::/32"),  // documentation
		netip.MustParsePrefix("100::/64"),       // discard-only
		netip.MustParsePrefix("fec0::/10"),      // deprecated site-local
	}
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
