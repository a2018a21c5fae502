package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/dronetrack/dronetrack/core/workers"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrNoSink is what a Resolve function returns for a dead-letter sink that
// does not exist in this environment (one-machine mode has no dead-letter
// Service): dead letters are then only recorded in the deadletter stream.
var ErrNoSink = errors.New("broker: no such sink here")

// ErrUnavailable is returned while the broker is shutting down or its store
// cannot take writes; the ingress answers it with 503.
var ErrUnavailable = errors.New("broker: unavailable")

// ErrNotFound is returned by Replay for an unknown dead-letter id.
var ErrNotFound = errors.New("broker: dead letter not found")

// Config configures Open.
type Config struct {
	// DataDir holds the JetStream store; events survive restarts there.
	DataDir string
	// Name is the Broker the Triggers must name in spec.broker ("default"
	// when empty). Triggers for other brokers are ignored.
	Name string
	// Files are YAML manifests (multi-document) holding the Broker and its
	// Triggers, typically infra/base/broker.yaml and triggers.yaml.
	Files []string
	// Triggers are added to those found in Files (tests, generated routes).
	Triggers []Trigger
	// Delivery overrides the Broker manifest's spec.delivery defaults.
	Delivery *Delivery
	// Resolve turns a subscriber or dead-letter reference into a URL. It is
	// called once per reference at Open.
	Resolve func(Reference) (string, error)
	// Logger receives delivery and dead-letter logs; slog.Default if nil.
	Logger *slog.Logger
	// SubscriberTimeout bounds one delivery attempt (default 30 s).
	SubscriberTimeout time.Duration
	// AckWait is how long JetStream waits for word from a delivery before
	// it hands the event out again (default 5 s). While the broker works on
	// an event (subscriber calls, backoff between retries, a held reply or
	// dead letter) it reports progress every AckWait/4, so a slow
	// subscriber is never raced by a redelivery; it is what bounds how soon
	// events that were in flight when the process died are delivered
	// after the next Open. Consumers on an existing data dir take the new
	// value at Open.
	AckWait time.Duration
	// MaxInFlight bounds concurrent deliveries of events per Trigger
	// (default 64).
	MaxInFlight int
	// MinInFlight, when above zero and below MaxInFlight, makes each
	// Trigger's bound adapt between the two to what its subscriber takes
	// (limit.go): a backlog then waits in JetStream rather than as
	// deliveries parked in the subscriber. Zero: MaxInFlight, fixed.
	MinInFlight int
	// MaxHeld bounds the deliveries per Trigger that its subscriber in
	// this process holds on purpose (publish.Hold) and that therefore no
	// longer count against MaxInFlight; beyond it a held delivery keeps
	// its slot. Zero: held deliveries keep their slots.
	MaxHeld int
	// MaxAckPending bounds the stored messages a Trigger holds
	// unacknowledged, that is in delivery or waiting for a slot of
	// MaxInFlight (default MaxInFlight). Each message may hold a batch of
	// events (up to MaxBatch, batchMaxBytes), so this is what bounds the
	// memory a backlog takes in the process: everything beyond it waits in
	// JetStream's files.
	MaxAckPending int
	// BatchLinger is how long a published event waits for others of its
	// subject to be stored with it in one message (batch.go; default
	// 5 ms). Negative stores every batch as soon as it is formed (pure group
	// commit: what arrived during the previous store).
	BatchLinger time.Duration
	// MaxBatch bounds the events stored in one message (default 256).
	MaxBatch int
	// SyncAlways fsyncs every stored event before the ingress answers 202.
	// Off, an accepted event survives a process crash (written to the OS
	// before the ack; test/system TestKillUpMidStream kills a whole up)
	// but not a power loss within JetStream's sync interval.
	SyncAlways bool
	// HTTPClient sends deliveries; a pooled client when nil.
	HTTPClient *http.Client
}

// Broker is a local Knative-style Broker: an ingress that stores CloudEvents
// durably and one dispatcher per Trigger delivering them over HTTP.
type Broker struct {
	cfg      Config
	log      *slog.Logger
	ns       *server.Server
	nc       *nats.Conn
	js       jetstream.JetStream
	subject  string // events of older versions, published without their type; still consumed
	prefix   string
	stream   string
	dlStream string
	dlSubj   string
	triggers []*route
	client   *http.Client
	targets  sync.Map // subscriber and sink URL -> *url.URL (targetURL)

	closing   atomic.Bool
	draining  atomic.Bool // Shutdown began: consumers stop, in-flight deliveries finish
	mu        sync.Mutex  // orders inflight.Add against Shutdown's Wait
	stopped   bool
	inflight  sync.WaitGroup
	delivery  context.Context // cancelled to abandon deliveries
	abandon   context.CancelFunc
	consumers []jetstream.ConsumeContext // guarded by mu: the store watch replaces them
	subConns  []*nats.Conn               // one per Trigger (route.js)
	health    storeHealth
	workers   *workers.Pool          // runs deliveries on goroutines reused across events
	jsConfig  server.JetStreamConfig // as started; restartJetStream reuses it
	gate      deliveryGate           // held shut by Snapshot (backup.go)
	snapMu    sync.Mutex             // one Snapshot at a time
	shutOnce  sync.Once
	shutErr   error
	batchers  sync.Map     // subject -> *batcher (batch.go)
	subjects  memo[string] // event type -> its subject (typeSubject)
	stats     batchStats
}

// route is a Trigger ready to dispatch: its resolved addresses and policy.
type route struct {
	trigger    Trigger
	name       string // durable consumer name
	subscriber string
	policy     retryPolicy
	deadLetter string // "" when the policy has none or it resolves to ErrNoSink
	// js carries the Trigger's fetches and acks on a connection of its
	// own, so they do not queue behind the ingress's publishes (the server
	// reads each connection in one loop).
	js jetstream.JetStream
	// slots bounds the Trigger's events in delivery (Config.MaxInFlight,
	// MinInFlight): MaxAckPending counts stored messages, each of which
	// may hold a batch of events.
	slots *limiter
	// lastTurn is closed once the last message handed to dispatch has
	// taken its slots (turn); guarded by Broker.mu.
	lastTurn <-chan struct{}
	// sharesBatches: another route reads the messages this one does (the
	// same type, or either without a type filter), so a body it
	// decompresses is kept for the others (bodies).
	sharesBatches bool
}

// Open starts the embedded NATS server on cfg.DataDir, creates the event and
// deadletter streams and one durable consumer per Trigger, and starts
// delivering. Events stored before a crash and not yet delivered are
// delivered again.
func Open(ctx context.Context, cfg Config) (*Broker, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("broker: Config.DataDir is required")
	}
	if cfg.Resolve == nil {
		return nil, errors.New("broker: Config.Resolve is required")
	}
	if cfg.Name == "" {
		cfg.Name = "default"
	}
	if cfg.SubscriberTimeout <= 0 {
		cfg.SubscriberTimeout = 30 * time.Second
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = defaultAckWait
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 64
	}
	if cfg.MaxAckPending <= 0 {
		cfg.MaxAckPending = cfg.MaxInFlight
	}
	if cfg.BatchLinger == 0 {
		cfg.BatchLinger = defaultBatchLinger
	}
	cfg.BatchLinger = max(cfg.BatchLinger, 0)
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = defaultMaxBatch
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("broker", cfg.Name)
	client := cfg.HTTPClient
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// As many idle connections as deliveries in flight: fewer, and
		// under load connections are closed and dialled again.
		tr.MaxIdleConnsPerHost = cfg.MaxInFlight
		client = &http.Client{Transport: tr}
	}

	routes, err := buildRoutes(cfg)
	if err != nil {
		return nil, err
	}

	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("broker: data dir: %w", err)
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "dronetrack-broker",
		DontListen: true,
		JetStream:  true,
		StoreDir:   cfg.DataDir,
		SyncAlways: cfg.SyncAlways,
		NoSigs:     true,
		// Room for the ingress's 4 MiB limit once encoded as structured
		// JSON (base64 data grows by a third).
		MaxPayload: 8 << 20,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("broker: embedded nats: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("broker: embedded nats not ready after 30 s")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name("broker"), nats.MaxReconnects(-1))
	if err != nil {
		ns.Shutdown()
		return nil, fmt.Errorf("broker: connect embedded nats: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		ns.Shutdown()
		return nil, fmt.Errorf("broker: jetstream: %w", err)
	}

	token := natsToken(cfg.Name)
	b := &Broker{
		cfg: cfg, log: log, ns: ns, nc: nc, js: js, client: client, triggers: routes,
		prefix:   "broker." + token,
		stream:   "BROKER_" + token,
		dlStream: "DEADLETTER_" + token,
	}
	b.subject = b.prefix + ".events"
	b.dlSubj = b.prefix + ".deadletter"
	b.delivery, b.abandon = context.WithCancel(context.Background())
	b.workers = workers.New(time.Second)
	b.health.init()

	for _, r := range b.triggers {
		nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name("broker-"+r.name), nats.MaxReconnects(-1))
		if err != nil {
			b.stopNATS()
			return nil, fmt.Errorf("broker: connect for trigger %q: %w", r.trigger.Metadata.Name, err)
		}
		b.subConns = append(b.subConns, nc)
		if r.js, err = jetstream.New(nc); err != nil {
			b.stopNATS()
			return nil, fmt.Errorf("broker: jetstream for trigger %q: %w", r.trigger.Metadata.Name, err)
		}
	}
	if err := b.setup(ctx); err != nil {
		b.stopNATS()
		return nil, err
	}
	if c := ns.JetStreamConfig(); c != nil {
		b.jsConfig = *c
	}
	go b.watchStore()
	return b, nil
}

func buildRoutes(cfg Config) ([]*route, error) {
	m, err := LoadManifests(cfg.Files...)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	defaults := cfg.Delivery
	for _, bm := range m.Brokers {
		if bm.Metadata.Name == cfg.Name && defaults == nil {
			defaults = bm.Spec.Delivery
		}
	}
	all := append(m.Triggers, cfg.Triggers...)
	var routes []*route
	seen := map[string]bool{}
	for _, t := range all {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("broker: %w", err)
		}
		if t.Spec.Broker != cfg.Name {
			continue
		}
		if seen[t.Metadata.Name] {
			return nil, fmt.Errorf("broker: trigger %q defined twice", t.Metadata.Name)
		}
		seen[t.Metadata.Name] = true
		// As Knative does, a Trigger's own delivery replaces the Broker's
		// defaults as a whole.
		d := t.Spec.Delivery
		if d == nil {
			d = defaults
		}
		p, err := d.policy()
		if err != nil {
			return nil, fmt.Errorf("broker: trigger %q: %w", t.Metadata.Name, err)
		}
		sub, err := resolve(cfg.Resolve, t.Spec.Subscriber)
		if err != nil {
			return nil, fmt.Errorf("broker: trigger %q: subscriber: %w", t.Metadata.Name, err)
		}
		r := &route{trigger: t, name: "trigger_" + natsToken(t.Metadata.Name), subscriber: sub, policy: p,
			slots: newLimiter(cfg.MinInFlight, cfg.MaxInFlight)}
		r.slots.maxHeld = cfg.MaxHeld
		if p.deadLetters != nil {
			dl, err := resolve(cfg.Resolve, *p.deadLetters)
			switch {
			case errors.Is(err, ErrNoSink):
			case err != nil:
				return nil, fmt.Errorf("broker: trigger %q: deadLetterSink: %w", t.Metadata.Name, err)
			default:
				r.deadLetter = dl
			}
		}
		routes = append(routes, r)
	}
	for _, r := range routes {
		readers := 0
		for _, o := range routes {
			if rt, ot := triggerType(r.trigger), triggerType(o.trigger); rt == "" || ot == "" || rt == ot {
				readers++
			}
		}
		r.sharesBatches = readers > 1
	}
	return routes, nil
}

// triggerType is the event type t filters on ("": none, every type).
func triggerType(t Trigger) string {
	if f := t.Spec.Filter; f != nil {
		return f.Attributes["type"]
	}
	return ""
}

// resolve applies Knative's Destination rules: a ref's address, a URI, or a
// URI relative to the ref's address.
func resolve(fn func(Reference) (string, error), d Destination) (string, error) {
	if d.Ref == nil {
		u, err := url.Parse(d.URI)
		if err != nil || !u.IsAbs() {
			return "", fmt.Errorf("uri %q must be absolute", d.URI)
		}
		return d.URI, nil
	}
	base, err := fn(*d.Ref)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", d.Ref, err)
	}
	if d.URI == "" {
		return base, nil
	}
	bu, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", d.Ref, err)
	}
	ru, err := url.Parse(d.URI)
	if err != nil {
		return "", fmt.Errorf("uri %q: %w", d.URI, err)
	}
	return bu.ResolveReference(ru).String(), nil
}

// natsToken makes a Kubernetes name usable in NATS stream, consumer and
// subject names.
func natsToken(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '/', '\\':
			return '_'
		}
		return r
	}, s)
}

func (b *Broker) replaySubject(trigger string) string {
	return b.prefix + ".replay." + natsToken(trigger)
}

func (b *Broker) setup(ctx context.Context) error {
	// Interest retention: an event is kept until every Trigger's consumer
	// has acknowledged it (delivered, filtered out or dead-lettered).
	_, err := b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        b.stream,
		Description: "Dronetrack broker " + b.cfg.Name + ": accepted CloudEvents",
		// Events are stored under their type (typeSubject), so a Trigger
		// that filters on type has JetStream hand it only those events;
		// b.subject holds events an older version stored before that.
		Subjects:  []string{b.subject, b.subject + ".>", b.prefix + ".replay.*"},
		Retention: jetstream.InterestPolicy,
		Storage:   jetstream.FileStorage,
		MaxAge:    7 * 24 * time.Hour,
		Discard:   jetstream.DiscardOld,
	})
	if err != nil {
		return fmt.Errorf("broker: events stream: %w", err)
	}
	_, err = b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        b.dlStream,
		Description: "Dronetrack broker " + b.cfg.Name + ": events whose delivery failed for good",
		Subjects:    []string{b.dlSubj},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      30 * 24 * time.Hour,
		MaxMsgs:     1_000_000,
		Discard:     jetstream.DiscardOld,
	})
	if err != nil {
		return fmt.Errorf("broker: deadletter stream: %w", err)
	}

	// Drop consumers of Triggers that no longer exist so they do not pin
	// events under interest retention.
	want := map[string]bool{}
	for _, r := range b.triggers {
		want[r.name] = true
	}
	st, err := b.js.Stream(ctx, b.stream)
	if err != nil {
		return fmt.Errorf("broker: events stream: %w", err)
	}
	names := st.ConsumerNames(ctx)
	for n := range names.Name() {
		if !want[n] {
			if err := st.DeleteConsumer(ctx, n); err != nil {
				return fmt.Errorf("broker: drop consumer %s: %w", n, err)
			}
			b.log.Info("dropped consumer of removed trigger", "consumer", n)
		}
	}
	if err := names.Err(); err != nil {
		return fmt.Errorf("broker: list consumers: %w", err)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	for _, cc := range b.consumers { // left by a store restart
		cc.Stop()
	}
	b.consumers = nil
	if b.stopped { // a store restart during Shutdown: fetch nothing more
		return nil
	}
	for _, r := range b.triggers {
		st, err := r.js.Stream(ctx, b.stream)
		if err != nil {
			return fmt.Errorf("broker: events stream: %w", err)
		}
		c, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:       r.name,
			Description:   "trigger " + r.trigger.Metadata.Name,
			DeliverPolicy: jetstream.DeliverNewPolicy, // as in Knative, a new Trigger sees only new events
			AckPolicy:     jetstream.AckExplicitPolicy,
			// Short, and kept from expiring by lease heartbeats while a
			// delivery runs: it is only ever reached by events whose
			// dispatcher is gone (a crash, an abandoned Shutdown). An
			// existing consumer (a data dir of an older version, whose ack
			// wait was twice the subscriber timeout) is updated to it here.
			AckWait:        b.cfg.AckWait,
			MaxDeliver:     -1,
			MaxAckPending:  b.cfg.MaxAckPending,
			FilterSubjects: b.consumerSubjects(r.trigger),
		})
		if err != nil {
			return fmt.Errorf("broker: consumer for trigger %q: %w", r.trigger.Metadata.Name, err)
		}
		r := r
		cc, err := c.Consume(func(msg jetstream.Msg) {
			b.mu.Lock()
			if b.stopped { // left unacked: delivered after the next Open
				b.mu.Unlock()
				return
			}
			b.inflight.Add(1)
			t := r.nextTurn()
			b.mu.Unlock()
			b.workers.Go(func() {
				defer b.inflight.Done()
				b.dispatch(r, msg, t)
			})
		}, jetstream.PullMaxMessages(b.cfg.MaxAckPending), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if !b.draining.Load() && b.health.err() == nil {
				b.log.Warn("consume", "trigger", r.trigger.Metadata.Name, "err", err)
			}
		}))
		if err != nil {
			return fmt.Errorf("broker: consume trigger %q: %w", r.trigger.Metadata.Name, err)
		}
		b.consumers = append(b.consumers, cc)
		b.log.Info("trigger ready", "trigger", r.trigger.Metadata.Name, "subscriber", r.subscriber,
			"retry", r.policy.retries, "linear", r.policy.linear, "backoffDelay", r.policy.delay, "deadLetterSink", r.deadLetter)
	}
	return nil
}

// Publish stores an event durably; it returns once JetStream has acked the
// message holding it. The ingress and reply events go through here, and
// are stored in batches (batch.go): many callers' events of one type in
// one message.
func (b *Broker) Publish(ctx context.Context, e event.Event) error {
	if b.closing.Load() {
		return ErrUnavailable
	}
	return b.publishBatched(ctx, b.typeSubject(e.Type()), e, false)
}

// publishIngress is Publish for an event the ingress took: it is given the
// hop counter at its start when it has none.
func (b *Broker) publishIngress(ctx context.Context, e event.Event) error {
	if b.closing.Load() {
		return ErrUnavailable
	}
	return b.publishBatched(ctx, b.typeSubject(e.Type()), e, true)
}

// typeSubject is where events of type typ are stored: one subject per
// type, so Triggers filtering on type consume only their events. Before,
// every Trigger's consumer received, decoded and acked every event and
// then applied its filter: six decodes and six acks per event, 15% of the
// pipeline's CPU in BenchmarkPipeline.
func (b *Broker) typeSubject(typ string) string {
	s, _ := b.subjects.get(typ, func(typ string) (string, error) {
		return b.subject + "." + subjectToken(typ), nil
	})
	return s
}

// triggerSubject is what a Trigger's consumer reads of the event subjects:
// its type's when its filter names a type, else every type's. The rest of
// the filter is applied to each event it receives (Trigger.Matches).
func (b *Broker) triggerSubject(t Trigger) string {
	if typ := triggerType(t); typ != "" {
		return b.typeSubject(typ)
	}
	return b.subject + ".>"
}

// consumerSubjects are the subjects Trigger t's consumer reads: events an
// older version stored on the single subject, its type's (or every type's)
// subject, and its own replays. A backup snapshot owes an event to the
// Triggers whose subjects match it (reads).
func (b *Broker) consumerSubjects(t Trigger) []string {
	return []string{b.subject, b.triggerSubject(t), b.replaySubject(t.Metadata.Name)}
}

// subjectToken turns any string into one NATS subject token, injectively:
// letters, digits, '-' and '_' stay, every other byte becomes ~XX (hex).
func subjectToken(s string) string {
	const hex = "0123456789ABCDEF"
	var out []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			out = append(out, c)
			continue
		}
		out = append(out, '~', hex[c>>4], hex[c&15])
	}
	if len(out) == 0 {
		return "~" // the empty type (never valid; Validate refuses it)
	}
	return string(out)
}

func (b *Broker) publishTo(ctx context.Context, subject string, e event.Event) error {
	m, err := encodeStored(subject, e)
	if err != nil {
		return fmt.Errorf("broker: encode event %s: %w", e.ID(), err)
	}
	if err := b.publishMsg(ctx, m); err != nil {
		return fmt.Errorf("%w: store event %s (%d bytes): %w", ErrUnavailable, e.ID(), len(m.Data), err)
	}
	return nil
}

// publishRaw stores one message and returns once JetStream has acked it. It
// fails at once while the store is down (see watchStore), and a publish
// waiting for its ack when the store goes down fails then: the server never
// answers a publish it could not write.
func (b *Broker) publishRaw(ctx context.Context, subject string, raw []byte) error {
	return b.publishMsg(ctx, &nats.Msg{Subject: subject, Data: raw})
}

// publishMsg is publishRaw for a message with headers.
func (b *Broker) publishMsg(ctx context.Context, m *nats.Msg) error {
	up, _ := b.health.state()
	if up.Err() != nil {
		return context.Cause(up)
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	defer context.AfterFunc(up, cancel)()
	if _, err := b.js.PublishMsg(ctx, m); err != nil {
		if up.Err() != nil {
			return context.Cause(up)
		}
		return err
	}
	return nil
}

// Shutdown stops the ingress (it answers 503), stops fetching, waits for
// in-flight deliveries (including their retries) until ctx ends, then
// abandons the rest unacknowledged — they are delivered again after the next
// Open — and stops NATS cleanly.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.shutOnce.Do(func() {
		b.draining.Store(true)
		close(b.health.quit) // deliveries waiting for a down store give up
		b.mu.Lock()
		b.stopped = true
		for _, cc := range b.consumers {
			cc.Stop()
		}
		b.consumers = nil
		b.mu.Unlock()
		// No new deliveries start; those in flight finish, and what their
		// handlers publish meanwhile (alerts' alert.raised for the state
		// it is handling, a reply) is stored as usual: the ingress closes
		// once they are done. Refusing it earlier held each such handler
		// in its publish retries until the stop timeout. Ingest, the
		// outside world's way in, is stopped before the broker.
		done := make(chan struct{})
		go func() { b.inflight.Wait(); close(done) }()
		select {
		case <-done:
			b.closing.Store(true)
		case <-ctx.Done():
			b.closing.Store(true)
			b.log.Warn("shutdown: abandoning in-flight deliveries; they are redelivered on the next start")
			b.abandon()
			<-done
			b.shutErr = fmt.Errorf("broker: shutdown: %w", ctx.Err())
		}
		b.abandon()
		close(b.health.stop) // the watch may still have restarted the store for the drain
		<-b.health.done
		for _, nc := range append([]*nats.Conn{b.nc}, b.subConns...) {
			if err := nc.Flush(); err != nil && b.shutErr == nil {
				b.shutErr = fmt.Errorf("broker: flush acks: %w", err)
			}
		}
		b.stopNATS()
	})
	return b.shutErr
}

func (b *Broker) stopNATS() {
	for _, nc := range b.subConns {
		nc.Close()
	}
	b.nc.Close()
	b.ns.Shutdown()
	b.ns.WaitForShutdown()
}

// encodeEvent stores an event as structured-mode JSON. Data that is not
// valid JSON goes in data_base64: sdk-go would otherwise write it as a JSON
// string, which inflates binary data six-fold and mangles invalid UTF-8.
func encodeEvent(e event.Event) ([]byte, error) {
	if d := e.Data(); len(d) > 0 && !(isJSONType(e.DataContentType()) && json.Valid(d)) {
		e = e.Clone()
		e.DataBase64 = true
	}
	return json.Marshal(e)
}

func isJSONType(ct string) bool {
	ct, _, _ = strings.Cut(ct, ";")
	ct = strings.TrimSpace(strings.ToLower(ct))
	return ct == "" || ct == "application/json" || ct == "text/json" || strings.HasSuffix(ct, "+json")
}

// Pending is how many stored messages the Triggers still have to finish:
// for each Trigger, the messages it has not been handed yet plus those in
// flight (handed out, not acked). A message holds one event or a batch of
// them (batch.go), so this is not a count of events; it is zero once every
// accepted event and every reply has been delivered, filtered out or
// dead-lettered, which is how a benchmark or a load run knows the pipeline
// has drained.
//
// nats-server counts a stored message into its consumers' pending from a
// goroutine of its own, after it has acknowledged the publish: right after
// a publish, consumer info can read zero. So a Trigger that reads zero is
// also asked whether its subjects hold a message past its ack floor (one
// not yet counted, counted here as one).
func (b *Broker) Pending(ctx context.Context) (uint64, error) {
	var n uint64
	for _, r := range b.triggers {
		c, err := b.js.Consumer(ctx, b.stream, r.name)
		if err != nil {
			return 0, fmt.Errorf("broker: consumer of trigger %q: %w", r.trigger.Metadata.Name, err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("broker: consumer of trigger %q: %w", r.trigger.Metadata.Name, err)
		}
		if k := info.NumPending + uint64(info.NumAckPending); k > 0 {
			n += k
			continue
		}
		uncounted, err := b.pastAckFloor(ctx, info.Config.FilterSubjects, info.AckFloor.Stream)
		if err != nil {
			return 0, fmt.Errorf("broker: consumer of trigger %q: %w", r.trigger.Metadata.Name, err)
		}
		if uncounted {
			n++
		}
	}
	return n, nil
}

// pastAckFloor reports whether the stream holds a message on one of
// subjects after stream sequence floor.
func (b *Broker) pastAckFloor(ctx context.Context, subjects []string, floor uint64) (bool, error) {
	st, err := b.js.Stream(ctx, b.stream)
	if err != nil {
		return false, err
	}
	for _, subj := range subjects {
		m, err := st.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		if m.Sequence > floor {
			return true, nil
		}
	}
	return false, nil
}
