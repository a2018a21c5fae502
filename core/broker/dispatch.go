package broker

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dronetrack/dronetrack/core/publish"
)

// Extensions Knative sets on an event it sends to a dead-letter sink.
const (
	ExtErrorDest = "knativeerrordest"
	ExtErrorCode = "knativeerrorcode"
	ExtErrorData = "knativeerrordata"
	// errorDataMax is Knative's KnativeErrorDataExtensionMaxLength: the
	// response body is truncated to this many bytes before base64.
	errorDataMax = 1024
	maxReply     = 4 << 20
	// ExtTTL is Knative's broker hop counter: set on ingress when absent,
	// removed before delivery, decremented on each reply.
	ExtTTL     = "knativebrokerttl"
	defaultTTL = 255
)

func brokerTTL(e event.Event) int {
	v, ok := extension(e, ExtTTL)
	if !ok {
		return defaultTTL
	}
	// Stored events carry it as a string: parsed here directly, since
	// types.ToInteger's validation by reflection cost as much as the
	// rest of the hop counter's handling.
	if s, ok := v.(string); ok {
		if n, err := strconv.ParseInt(s, 10, 32); err == nil {
			return int(n)
		}
	}
	n, err := types.ToInteger(v)
	if err != nil {
		return defaultTTL
	}
	return int(n)
}

// extension is e.Extensions()[name] without the copy of the whole map that
// Extensions makes for a CloudEvents 1.0 event (once per publish and per
// delivery it showed in up's allocation profile). The value must not be
// modified.
func extension(e event.Event, name string) (any, bool) {
	if ec, ok := e.Context.(*event.EventContextV1); ok {
		v, ok := ec.Extensions[name]
		return v, ok
	}
	v, ok := e.Extensions()[name]
	return v, ok
}

// dropExtension is e.SetExtension(name, nil) for a lower-case name:
// without its checks of the name, which cost as much as the rest of a
// delivery's handling of the hop counter. The map is the event's own
// (each delivery decodes its event).
func dropExtension(e *event.Event, name string) {
	if ec, ok := e.Context.(*event.EventContextV1); ok {
		delete(ec.Extensions, name)
		if len(ec.Extensions) == 0 {
			ec.Extensions = nil
		}
		return
	}
	e.SetExtension(name, nil)
}

// outcome is one delivery attempt's result.
type outcome struct {
	code  int    // HTTP status; 0 when no response
	body  []byte // response body (for knativeerrordata)
	err   error  // transport error or bad reply
	reply *event.Event
}

func (o outcome) ok() bool { return o.err == nil && o.code >= 200 && o.code < 300 }

// retryable follows Knative's dispatcher: network errors, 404, 408, 409,
// 429 and 5xx are retried; any other status is final. A 2xx whose reply
// could not be decoded or stored is retried too.
func (o outcome) retryable() bool {
	if o.code == 0 || o.err != nil && o.code >= 200 && o.code < 300 {
		return true // no answer, or a reply that was invalid or not stored
	}
	switch o.code {
	case http.StatusNotFound, http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests:
		return true
	}
	return o.code >= 500
}

func (o outcome) String() string {
	if o.err != nil {
		return o.err.Error()
	}
	return strconv.Itoa(o.code)
}

// dispatch works on one stored message for one Trigger: it decodes the
// events the message holds (one, or a batch: storage.go; each event once
// it has a delivery slot, taken after the previous message's events have
// theirs (t); one that cannot be read is dropped), delivers those
// the Trigger's filter selects, concurrently and each with the Trigger's
// retry policy (deliver), and acks the message once every one of them is
// done: delivered, filtered out, or dead-lettered. One event failing is
// retried or dead-lettered on its own; its siblings are not delivered
// again while the broker runs. The message's lease is held while any of
// its events is in flight. It returns without ack when the broker abandons
// deliveries (Shutdown, a Snapshot's gate at Shutdown), so the whole
// message is delivered again after restart: at least once, for the
// siblings that were done too.
func (b *Broker) dispatch(r *route, msg jetstream.Msg, t *turn) {
	defer t.pass()
	l := b.hold(msg)
	defer l.release() // abandoned: no more progress, redelivered one ack wait later
	ctx := b.delivery
	// A batch's events are decoded one at a time, each once it has its
	// delivery slot: when deliveries lag, up to MaxAckPending messages per
	// Trigger wait here, and holding their events decoded as well as raw
	// was a third of up's live heap, which under the soft memory limit made
	// the collector run almost without pause while the backlog lasted.
	recs, isBatch, err := splitBatch(msg.Headers(), msg.Data(), r.sharesBatches)
	var single event.Event
	if err == nil && !isBatch {
		single, err = decodeStored(msg.Headers(), msg.Data())
	}
	if err != nil {
		b.log.Error("undecodable stored event; dropping", "trigger", r.trigger.Metadata.Name, "subject", msg.Subject(), "err", err)
		t.wait(ctx) // pass the turn in order: the next message's slots come after the previous one's
		l.release()
		_ = msg.Term()
		return
	}
	count := 1
	if isBatch {
		count = len(recs)
	}
	var (
		wg        sync.WaitGroup
		abandoned atomic.Bool
		redeliver atomic.Bool
		matched   int
		undecoded int
	)
	run := func(e event.Event) {
		s := &slot{l: r.slots}
		defer s.release()
		switch b.deliver(ctx, r, e, s) {
		case abandonedResult:
			abandoned.Store(true)
		case redeliverResult:
			redeliver.Store(true)
		}
	}
	// Slots are taken in the order the consumer handed out the messages
	// (turn), so the Trigger's events start delivery in stream order.
	if !t.wait(ctx) {
		abandoned.Store(true)
		count = 0
	}
	for i := range count {
		// A slot of the Trigger's limit: waiting here holds this worker,
		// never the NATS client's callback.
		got := r.slots.acquire(ctx)
		if !got || ctx.Err() != nil {
			if got {
				r.slots.release(false)
			}
			abandoned.Store(true)
			break
		}
		e := single
		if isBatch {
			ec := new(event.EventContextV1)
			if e, err = decodeRecord(recs[i], ec); err != nil {
				r.slots.release(false)
				undecoded++
				b.log.Error("undecodable event in a stored batch; dropping it", "trigger", r.trigger.Metadata.Name,
					"subject", msg.Subject(), "record", i, "err", err)
				continue
			}
		}
		if !r.trigger.Matches(e) {
			r.slots.release(false)
			continue
		}
		matched++
		if i == count-1 {
			t.pass()
			run(e) // the last (or only) event on this goroutine
			break
		}
		wg.Add(1)
		b.workers.Go(func() {
			defer wg.Done()
			run(e)
		})
	}
	t.pass()
	wg.Wait()
	if abandoned.Load() {
		return // left unacked for redelivery
	}
	l.release()
	if undecoded > 0 && undecoded == count {
		_ = msg.Term()
		return
	}
	if redeliver.Load() {
		_ = msg.NakWithDelay(r.policy.backoff(1))
		return
	}
	if err := msg.Ack(); err != nil && matched > 0 {
		b.log.Warn("ack after delivery failed; events may be delivered again", "trigger", r.trigger.Metadata.Name, "events", matched, "err", err)
	}
}

// result is how deliver left an event.
type result int

const (
	doneResult      result = iota // delivered or dead-lettered
	abandonedResult               // the broker gave up on it: deliver it after restart
	redeliverResult               // its dead letter was not recorded: deliver it again
)

// deliveryLog is a delivery's logger, built only when something is
// logged: a logger With attributes per delivery was 3.6% of the pipeline's
// CPU. Used by the delivery's goroutine only.
type deliveryLog struct {
	b *Broker
	r *route
	e *event.Event
	l *slog.Logger
}

func (d *deliveryLog) get() *slog.Logger {
	if d.l == nil {
		d.l = d.b.log.With("trigger", d.r.trigger.Metadata.Name, "event_id", d.e.ID(), "event_type", d.e.Type())
		if t, ok := extension(*d.e, "tenantid"); ok {
			d.l = d.l.With("tenant_id", t)
		}
	}
	return d.l
}

// deliver delivers one event to one Trigger's subscriber with the Trigger's
// retry policy, and dead-letters it when that fails. Retries wait out
// their backoff here, in process, under the message's lease, so the
// Trigger's retry count and backoff are exact however short the ack wait.
// s is the delivery's slot of the Trigger's bound, which a subscriber in
// process may give back early (send).
func (b *Broker) deliver(ctx context.Context, r *route, e event.Event, s *slot) result {
	dl := deliveryLog{b: b, r: r, e: &e}
	// Like Knative's broker, strip the hop counter before delivery and
	// give a reply one hop less, so reply loops end.
	ttl := brokerTTL(e)
	dropExtension(&e, ExtTTL)
	if !b.gate.pass(ctx) { // a Snapshot is capturing (backup.go)
		return abandonedResult
	}
	var last outcome
	attempts := 0
	for n := 0; ; n++ {
		if n > 0 {
			if !b.wait(ctx, r.policy.backoff(n)) {
				return abandonedResult
			}
		}
		attempts++
		last = b.send(ctx, r.subscriber, &e, true, s)
		if ctx.Err() != nil {
			return abandonedResult
		}
		if last.ok() && last.reply != nil && ttl <= 1 {
			dl.get().Warn("reply dropped: broker TTL exhausted (reply loop?)", "reply_id", last.reply.ID(), "reply_type", last.reply.Type())
		} else if last.ok() && last.reply != nil {
			last.reply.SetExtension(ExtTTL, ttl-1)
			if !b.storeReply(ctx, r, *last.reply, &dl) {
				return abandonedResult
			}
		}
		if last.ok() {
			return doneResult
		}
		if !last.retryable() || n >= r.policy.retries {
			break
		}
		dl.get().Debug("delivery failed; retrying", "attempt", attempts, "result", last.String())
	}
	dl.get().Warn("delivery failed; dead-lettering", "attempts", attempts, "result", last.String())
	if err := b.deadLetter(ctx, r, e, last, attempts); err != nil {
		if ctx.Err() != nil {
			return abandonedResult
		}
		// Not recorded: leave it for redelivery rather than lose it.
		dl.get().Error("dead letter not recorded; event will be redelivered", "err", err)
		return redeliverResult
	}
	return doneResult
}

// wait sleeps d (the event's lease keeps it from being redelivered
// meanwhile). It reports false when deliveries are abandoned.
func (b *Broker) wait(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// send POSTs the event in binary content mode. With wantReply it asks for a
// reply (Prefer: reply) and decodes a CloudEvent in a 2xx response other than
// 202, as the Knative data-plane contract says. A subscriber in process
// holding the delivery on purpose gives back s, its slot (nil: none).
func (b *Broker) send(ctx context.Context, target string, e *event.Event, wantReply bool, s *slot) outcome {
	u, err := b.targetURL(target)
	if err != nil {
		return outcome{err: fmt.Errorf("request to %s: %w", target, err)}
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.SubscriberTimeout)
	defer cancel()
	// A subscriber in this process (core/publish LocalTransport) reads the
	// event from the request's context and leaves its reply there, instead
	// of decoding the HTTP message and encoding its reply as one. Through a
	// LocalTransport the event is not even written into the request unless
	// it goes to the network or to a handler that reads the HTTP message
	// (the transport writes it then).
	var d *publish.Delivery
	_, lazy := b.client.Transport.(publish.LocalTransport)
	lazy = lazy && wantReply
	if lazy {
		ctx, d = publish.WithUnencodedDelivery(ctx, e, u.Host, u.Path)
	} else if wantReply {
		ctx, d = publish.WithDelivery(ctx, e, u.Host, u.Path)
	}
	if s != nil && d != nil {
		d.OnHold(s.hold) // a handler in process holding it on purpose frees its slot
	}
	req := deliveryRequest.WithContext(ctx)
	req.URL, req.Host = u, u.Host // shared by every delivery to target: read only
	req.Header = make(http.Header)
	if !lazy {
		if err := cehttp.WriteRequest(ctx, binding.ToMessage(e), req); err != nil {
			return outcome{err: fmt.Errorf("encode event: %w", err)}
		}
	}
	if wantReply && !lazy {
		// An unencoded delivery gets it with the event, when it is
		// written into the request (publish.WithUnencodedDelivery).
		req.Header.Set("Prefer", "reply")
	}
	resp, err := b.do(req)
	if err != nil {
		return outcome{err: fmt.Errorf("post %s: %w", target, err)}
	}
	defer resp.Body.Close()
	var body []byte
	if resp.Body != http.NoBody { // most answers are a bare status: no read buffer for them
		if body, err = io.ReadAll(io.LimitReader(resp.Body, maxReply)); err != nil {
			return outcome{code: resp.StatusCode, err: fmt.Errorf("read response from %s: %w", target, err)}
		}
	}
	o := outcome{code: resp.StatusCode, body: body}
	if !wantReply || !o.ok() || resp.StatusCode == http.StatusAccepted {
		return o
	}
	if reply := d.Reply(); reply != nil {
		if err := publish.Validate(reply); err != nil {
			o.err = fmt.Errorf("invalid reply from %s: %w", target, err)
			return o
		}
		o.reply = reply
		return o
	}
	if len(body) == 0 && resp.Header.Get("Ce-Id") == "" {
		return o
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	m := cehttp.NewMessageFromHttpResponse(resp)
	if m.ReadEncoding() == binding.EncodingUnknown {
		return o
	}
	reply, err := binding.ToEvent(ctx, m)
	if err != nil {
		o.err = fmt.Errorf("decode reply from %s: %w", target, err)
		return o
	}
	if err := publish.Validate(reply); err != nil {
		o.err = fmt.Errorf("invalid reply from %s: %w", target, err)
		return o
	}
	o.reply = reply
	return o
}

// deliveryRequest is what every delivery's request starts from: a copy
// with the delivery's context (WithContext) is one allocation, where
// http.NewRequestWithContext also parsed a URL that send replaces.
var deliveryRequest = &http.Request{Method: http.MethodPost, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}

// targetURL is target parsed, once per target: parsing the URL of every
// delivery request again was a fifth of building it.
func (b *Broker) targetURL(target string) (*url.URL, error) {
	if u, ok := b.targets.Load(target); ok {
		return u.(*url.URL), nil
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	if u.Path == "" && u.Opaque == "" {
		// The request a server reads for it ("POST / HTTP/1.1"): a
		// handler in process is handed the URL as it is, and
		// LocalTransport copied the URL of every delivery to set it.
		u.Path = "/"
	}
	b.targets.Store(target, u)
	return u, nil
}

// do sends req with the broker's client. A request to a handler in this
// process goes to the client's LocalTransport directly: http.Client's
// bookkeeping for redirects (a copy of the headers per request, the
// Referer) was a quarter of a delivery's cost in process, and a function
// hosted in process does not redirect its events. The request's context
// bounds it either way.
func (b *Broker) do(req *http.Request) (*http.Response, error) {
	if lt, ok := b.client.Transport.(publish.LocalTransport); ok && b.client.Timeout == 0 && publish.IsLocal(req.URL.Host) {
		return lt.RoundTrip(req)
	}
	return b.client.Do(req)
}

// storeReply stores a subscriber's reply, trying again (with the Trigger's
// backoff, or once a down store takes writes again) until it is stored: the
// subscriber has done its work, and asked again it may rightly answer the
// redelivery as a duplicate, without the reply (process does), which would
// lose the reply. It reports false when the delivery is abandoned.
func (b *Broker) storeReply(ctx context.Context, r *route, reply event.Event, dl *deliveryLog) bool {
	// A down store is logged once by the store watch, not per reply.
	level := slog.LevelWarn
	for n := 1; ; n++ {
		err := b.publishReply(ctx, reply)
		if err == nil {
			if n > 1 {
				dl.get().Log(ctx, level, "reply stored after retrying", "reply_id", reply.ID(), "tries", n)
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if n == 1 {
			if errors.Is(err, errStoreDown) {
				level = slog.LevelDebug
			}
			dl.get().Log(ctx, level, "reply not stored; holding it and trying again", "reply_id", reply.ID(), "err", err)
		}
		if b.health.err() != nil {
			if !b.awaitStore(ctx) {
				return false
			}
			continue
		}
		if !b.wait(ctx, min(r.policy.backoff(n), maxHoldBackoff)) {
			return false
		}
	}
}

// maxHoldBackoff bounds the wait between tries to store a held reply.
const maxHoldBackoff = 30 * time.Second

func (b *Broker) publishReply(ctx context.Context, e event.Event) error {
	// Replies are accepted during shutdown: the event that caused them is
	// being drained and must not be delivered twice for want of its reply.
	// The store of the batch holding it is bounded by publishTimeout.
	return b.publishBatched(ctx, b.typeSubject(e.Type()), e, false)
}

// DeadLetter is an event whose delivery to a Trigger's subscriber failed for
// good, kept in the deadletter stream so it can be listed and replayed.
type DeadLetter struct {
	// ID identifies the dead letter for Replay (the stream sequence).
	ID       string    `json:"id"`
	Trigger  string    `json:"trigger"`
	Attempts int       `json:"attempts"`
	Code     int       `json:"code,omitempty"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
	// Event carries the Knative error extensions (knativeerrordest, ...).
	Event event.Event `json:"event"`
	// SinkDelivered reports whether the Trigger's deadLetterSink took it.
	SinkDelivered bool `json:"sinkDelivered"`
}

// deadLetter sends the event, with Knative's error extensions, to the
// Trigger's dead-letter sink (retrying with the same policy) and records it
// in the deadletter stream either way.
func (b *Broker) deadLetter(ctx context.Context, r *route, e event.Event, last outcome, attempts int) error {
	dl := e.Clone()
	dl.SetExtension(ExtErrorDest, r.subscriber)
	if last.code != 0 {
		dl.SetExtension(ExtErrorCode, strconv.Itoa(last.code))
	}
	if len(last.body) > 0 {
		data := last.body
		if len(data) > errorDataMax {
			data = data[:errorDataMax]
		}
		dl.SetExtension(ExtErrorData, base64.StdEncoding.EncodeToString(data))
	}
	rec := DeadLetter{Trigger: r.trigger.Metadata.Name, Attempts: attempts, Code: last.code, Reason: last.String(), At: time.Now().UTC(), Event: dl}
	if r.deadLetter != "" {
		for n := 0; ; n++ {
			if n > 0 && !b.wait(ctx, r.policy.backoff(n)) {
				return ctx.Err()
			}
			o := b.send(ctx, r.deadLetter, &dl, false, nil)
			if o.ok() {
				rec.SinkDelivered = true
				break
			}
			if !o.retryable() || n >= r.policy.retries {
				b.log.Error("dead-letter sink refused event", "trigger", r.trigger.Metadata.Name, "event_id", e.ID(), "result", o.String())
				break
			}
		}
	}
	evRaw, err := encodeEvent(dl)
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	raw, err := json.Marshal(struct {
		DeadLetter
		Event json.RawMessage `json:"event"`
	}{rec, evRaw})
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	for {
		err := b.publishRaw(ctx, b.dlSubj, raw)
		if err == nil {
			return nil
		}
		// A store that is down is waited for: it is the broker's own
		// failure, not the event's, and the sink is not asked again.
		if b.health.err() == nil || !b.awaitStore(ctx) {
			return fmt.Errorf("record dead letter: %w", err)
		}
	}
}

// ListDeadLetters returns the recorded dead letters, oldest first.
func (b *Broker) ListDeadLetters(ctx context.Context) ([]DeadLetter, error) {
	st, err := b.js.Stream(ctx, b.dlStream)
	if err != nil {
		return nil, fmt.Errorf("broker: deadletter stream: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("broker: deadletter stream: %w", err)
	}
	var out []DeadLetter
	if info.State.Msgs == 0 {
		return out, nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		dl, err := b.getDeadLetter(ctx, st, seq)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, dl)
	}
	return out, nil
}

func (b *Broker) getDeadLetter(ctx context.Context, st jetstream.Stream, seq uint64) (DeadLetter, error) {
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetter{}, ErrNotFound
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("broker: dead letter %d: %w", seq, err)
	}
	var dl DeadLetter
	if err := json.Unmarshal(m.Data, &dl); err != nil {
		return DeadLetter{}, fmt.Errorf("broker: decode dead letter %d: %w", seq, err)
	}
	dl.ID = strconv.FormatUint(seq, 10)
	return dl, nil
}

// Replay sends a dead letter again to the Trigger it failed for (only that
// Trigger; the knativeerror* extensions are removed) and removes it from the
// dead letters once the event is stored. If it fails again it is
// dead-lettered anew.
func (b *Broker) Replay(ctx context.Context, id string) error {
	if b.closing.Load() {
		return ErrUnavailable
	}
	seq, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: id %q", ErrNotFound, id)
	}
	st, err := b.js.Stream(ctx, b.dlStream)
	if err != nil {
		return fmt.Errorf("broker: deadletter stream: %w", err)
	}
	dl, err := b.getDeadLetter(ctx, st, seq)
	if err != nil {
		return err
	}
	known := false
	for _, r := range b.triggers {
		known = known || r.trigger.Metadata.Name == dl.Trigger
	}
	if !known {
		return fmt.Errorf("broker: replay %s: trigger %q no longer exists", id, dl.Trigger)
	}
	e := dl.Event.Clone()
	for _, k := range []string{ExtErrorDest, ExtErrorCode, ExtErrorData} {
		e.SetExtension(k, nil)
	}
	if err := b.publishTo(ctx, b.replaySubject(dl.Trigger), e); err != nil {
		return fmt.Errorf("broker: replay %s: %w", id, err)
	}
	if err := st.DeleteMsg(ctx, seq); err != nil {
		return fmt.Errorf("broker: replay %s: stored, but dead letter not removed: %w", id, err)
	}
	b.log.Info("dead letter replayed", "id", id, "trigger", dl.Trigger, "event_id", e.ID())
	return nil
}
