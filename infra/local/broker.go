package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/dronetrack/dronetrack/core/broker"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/infra"
)

// Broker is what up and the admin commands need of the broker.
type Broker interface {
	// IngressURL is K_SINK for every function.
	IngressURL() string
	DeadLetters(ctx context.Context) ([]deadLetter, error)
	Replay(ctx context.Context, id string) error
	// Pending is how many events are queued and not yet delivered.
	Pending(ctx context.Context) (uint64, error)
	// Shutdown stops the ingress, drains deliveries and closes the queue.
	Shutdown(ctx context.Context) error
}

// brokerHost runs core/broker with its ingress on a loopback listener.
type brokerHost struct {
	b   *broker.Broker
	ln  net.Listener
	srv *http.Server
}

// openBroker opens the local broker on dir with the Broker and Triggers
// embedded from infra/base (package infra), resolving each Trigger's
// subscriber — a Knative Service name — to the loopback URL of the function
// of that name. The dead-letter Service does not exist on one machine: dead
// letters stay in the broker's deadletter stream (`dronetrack dlq`).
func openBroker(ctx context.Context, dir string, subscribers map[string]string, log *slog.Logger) (*brokerHost, error) {
	raw, err := infra.BrokerManifests()
	if err != nil {
		return nil, fmt.Errorf("embedded manifests: %w", err)
	}
	m, err := broker.ParseManifests(raw)
	if err != nil {
		return nil, fmt.Errorf("embedded manifests: %w", err)
	}
	cfg := broker.Config{
		DataDir:    dir,
		Triggers:   m.Triggers,
		Logger:     log,
		HTTPClient: deliveryClient(),
		// process holds a delivery up to its STATE_INTERVAL (1 s) when a
		// drone's reports come closer than that, which they do whenever a
		// backlog forms; counted against the bound, held deliveries capped
		// the pipeline at about the bound per second under load (figures
		// in docs/performance.md), so process tells the broker (publish.Hold)
		// and held deliveries (up to maxHeld) leave the bound to those
		// being worked on.
		MaxInFlight: maxInFlight(),
		MaxHeld:     maxHeld(),
		// Zero (the default): the bound is fixed at MaxInFlight;
		// DRONETRACK_BROKER_MININFLIGHT sets a floor it adapts from
		// (core/broker limit.go).
		MinInFlight: minInFlight(),
		// The messages (batches of events) each Trigger holds in memory:
		// with MaxInFlight's then 1024 as the bound too, a backlog of 10-report
		// events moved into the heap (1024 messages of up to a MiB per
		// Trigger), the soft memory limit bound, and the collector took
		// half the CPU (docs/performance.md, "Round 4: 10 per request and
		// RSS"). At one report per request a message holds ~7-30 events,
		// so this still keeps MaxInFlight's deliveries busy.
		MaxAckPending: maxAckPending(),
		BatchLinger:   batchLinger(),
		// A 202 survives a kill -9 of up without an fsync per event
		// (TestKillUpMidStream: every acknowledged report stored after
		// restart); fsync per event protects against power loss too but
		// multiplies the ingest->stored latency under load (figures in
		// docs/performance.md, "Figures moved from code comments"). DRONETRACK_BROKER_SYNC=1 turns it on.
		SyncAlways: os.Getenv("DRONETRACK_BROKER_SYNC") != "",
		Resolve: func(ref broker.Reference) (string, error) {
			if ref.Kind != "Service" {
				return "", fmt.Errorf("cannot resolve %s on one machine", ref)
			}
			if u, ok := subscribers[ref.Name]; ok {
				return u, nil
			}
			if ref.Name == "dead-letter" {
				return "", broker.ErrNoSink
			}
			return "", fmt.Errorf("no function named %q runs here", ref.Name)
		},
	}
	for _, bm := range m.Brokers {
		if bm.Metadata.Name == "default" {
			cfg.Delivery = bm.Spec.Delivery
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("broker ingress listener: %w", err)
	}
	b, err := broker.Open(ctx, cfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	h := &brokerHost{b: b, ln: ln, srv: &http.Server{Handler: b.Ingress(), ReadHeaderTimeout: 10 * time.Second}}
	inprocHandlers.Store(ln.Addr().String(), h.srv.Handler) // ingest publishes in process
	go func() { _ = h.srv.Serve(ln) }()
	return h, nil
}

func (h *brokerHost) Pending(ctx context.Context) (uint64, error) { return h.b.Pending(ctx) }

// BatchStats is how many events the broker stored in how many messages.
func (h *brokerHost) BatchStats() broker.BatchStats { return h.b.BatchStats() }

func (h *brokerHost) IngressURL() string { return "http://" + h.ln.Addr().String() }

func (h *brokerHost) DeadLetters(ctx context.Context) ([]deadLetter, error) {
	dls, err := h.b.ListDeadLetters(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]deadLetter, len(dls))
	for i, d := range dls {
		out[i] = deadLetter{ID: d.ID, Type: d.Event.Type(), Trigger: d.Trigger, EventID: d.Event.ID(), Reason: d.Reason, At: d.At, Attempts: d.Attempts}
	}
	return out, nil
}

func (h *brokerHost) Replay(ctx context.Context, id string) error {
	err := h.b.Replay(ctx, id)
	if errors.Is(err, broker.ErrNotFound) {
		return fmt.Errorf("dead letter %s: %w", id, store.ErrNotFound)
	}
	return err
}

// Shutdown drains deliveries (the ingress answers 503 from the start), then
// closes the ingress listener.
func (h *brokerHost) Shutdown(ctx context.Context) error {
	err := h.b.Shutdown(ctx)
	inprocHandlers.Delete(h.ln.Addr().String())
	_ = h.srv.Shutdown(ctx)
	return err
}
