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
	"sync"
	"syscall"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/dronetrack/dronetrack/core/store"
)

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

// deliverer sends alert events to the tenant's webhooks in the background:
// structured-mode CloudEvent JSON, signed, retried with exponential backoff
// (WebhookBackoff, doubling, WebhookAttempts in all) until a 2xx; each
// attempt is appended to the delivery log. Receivers should dedupe by the
// CloudEvent id: a crash between delivery and the outbox update resends.
type deliverer struct {
	st     store.Store
	opts   Options
	log    *slog.Logger
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

func newDeliverer(st store.Store, opts Options) *deliverer {
	ctx, cancel := context.WithCancel(context.Background())
	return &deliverer{st: st, opts: opts, log: opts.Logger, ctx: ctx, cancel: cancel}
}

func (d *deliverer) enqueue(ctx context.Context, ev cloudevents.Event) {
	tenantID, _ := ev.Extensions()["tenantid"].(string)
	hooks, err := d.st.Webhooks(ctx, tenantID)
	if err != nil {
		d.log.Error("list webhooks; event not delivered to them", "tenant_id", tenantID, "event_id", ev.ID(), "err", err)
		return
	}
	if len(hooks) == 0 {
		return
	}
	body, err := json.Marshal(ev)
	if err != nil {
		d.log.Error("encode webhook body", "event_id", ev.ID(), "err", err)
		return
	}
	for _, hook := range hooks {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.deliver(hook, ev, body)
		}()
	}
}

func (d *deliverer) deliver(hook store.Webhook, ev cloudevents.Event, body []byte) {
	log := d.log.With("tenant_id", hook.TenantID, "webhook_id", hook.ID, "event_id", ev.ID())
	wait := d.opts.WebhookBackoff
	for attempt := 1; attempt <= d.opts.WebhookAttempts; attempt++ {
		if attempt > 1 {
			select {
			case <-d.ctx.Done():
				log.Warn("webhook retries abandoned at shutdown", "attempt", attempt)
				return
			case <-time.After(wait):
			}
			wait *= 2
		}
		code, err := d.post(hook, ev, body)
		rec := store.Delivery{ID: newID(), TenantID: hook.TenantID, WebhookID: hook.ID, EventID: ev.ID(),
			EventType: ev.Type(), Attempt: attempt, At: d.opts.Now().UTC(), StatusCode: code,
			OK: err == nil && code >= 200 && code < 300}
		if err != nil {
			rec.Error = err.Error()
		} else if !rec.OK {
			rec.Error = fmt.Sprintf("receiver answered %d", code)
		}
		if lerr := d.st.AddDelivery(context.WithoutCancel(d.ctx), rec); lerr != nil {
			log.Error("write delivery log", "err", lerr)
		}
		if rec.OK {
			log.Info("webhook delivered", "attempt", attempt)
			return
		}
		log.Warn("webhook delivery failed", "attempt", attempt, "status", code, "err", err)
	}
}

func (d *deliverer) post(hook store.Webhook, ev cloudevents.Event, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(d.ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("User-Agent", "Dronetrack-Webhook/1")
	req.Header.Set("X-Dronetrack-Event-Id", ev.ID())
	req.Header.Set(SignatureHeader, Sign(hook.Secret, d.opts.Now(), body))
	resp, err := d.opts.WebhookClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

func (d *deliverer) close(ctx context.Context) {
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		d.cancel()
		<-done
	}
	d.cancel()
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
			ip = ip.Unmap()
			if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
				ip.IsUnspecified() || ip.IsMulticast() || !ip.IsGlobalUnicast() {
				return fmt.Errorf("webhook address %s is not public", ip)
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

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
