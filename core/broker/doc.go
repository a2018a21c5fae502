// Package broker is the one-machine stand-in for a Knative Broker: it reads
// the same Broker and Trigger manifests infra/ deploys and gives their
// routing, retry and dead-letter behaviour, backed by an embedded NATS
// JetStream store so no accepted event is lost to a crash.
//
// Use:
//
//	b, err := broker.Open(ctx, broker.Config{
//		DataDir: dir,
//		Files:   []string{"infra/base/broker.yaml", "infra/base/triggers.yaml"},
//		Resolve: func(ref broker.Reference) (string, error) { ... name -> loopback URL ... },
//	})
//	http.Handle("/", b.Ingress())   // K_SINK for every function
//	...
//	b.Shutdown(ctx)                 // stop ingress, drain deliveries, stop NATS
//
// Knative semantics honoured:
//   - Trigger filter: spec.filter.attributes, exact match on any context
//     attribute or extension; "" matches anything; Triggers naming another
//     broker are ignored.
//   - Delivery: spec.delivery of the Trigger, else the Broker's, as a whole.
//     retry is the number of retries after the first attempt; the wait before
//     retry n is backoffDelay*n (linear) or backoffDelay*2^n (exponential,
//     the default); backoffDelay is ISO-8601 (PT0.2S), 200 ms when unset.
//     Network errors, timeouts, 404, 408, 409, 429 and 5xx are retried; other
//     non-2xx answers are dead-lettered at once.
//   - Replies: deliveries carry "Prefer: reply"; a CloudEvent in a 2xx answer
//     other than 202 is published back into the broker (and routed like any
//     event). A reply that cannot be stored is held and stored again (with
//     the Trigger's backoff, or once the store takes writes again) before the
//     event is acked; the subscriber is not asked again, as Knative would,
//     since it did its work and may answer a repeat as a duplicate without
//     the reply.
//     The knativebrokerttl hop counter (255 when the ingress sees none) is
//     removed before delivery and decremented on each reply; a reply with no
//     hops left is dropped, so reply loops end.
//   - Dead letters: the event, with knativeerrordest (subscriber URL),
//     knativeerrorcode (HTTP status) and knativeerrordata (base64 of the first
//     1024 bytes of the response body), goes to deadLetterSink when set and
//     resolvable (Resolve may answer ErrNoSink), and is always recorded in the
//     deadletter stream, one record per event: ListDeadLetters shows it,
//     Replay(id) redelivers that event to its Trigger only.
//
// Storage: one JetStream stream per broker with interest retention and one
// durable, explicitly acked consumer per Trigger. Events are stored in
// batches (batch.go, storage.go): Publish (the ingress, in-process
// publishers, replies) adds the event to the open batch of its subject
// (one subject per event type), which is stored as one JetStream message
// once it has waited Config.BatchLinger (5 ms) for more events or holds
// Config.MaxBatch events or 1 MiB; every caller returns once that message
// is acked, so an event is acknowledged to its sender (202) only once it is
// stored, as before, and a store that fails fails every caller in it. A
// Trigger's consumer is handed whole messages: the dispatcher decodes the
// batch, applies the Trigger's filter to each event, delivers the selected
// ones concurrently (Config.MaxInFlight bounds the events in delivery per
// Trigger, adapting down to MinInFlight when set; MaxAckPending bounds its
// unacked messages; events start delivery in stream order), each with the
// Trigger's retry, backoff and dead letter as if it had been stored alone,
// and acks the message once every event is delivered, filtered out or
// dead-lettered. After a crash every unacked message is delivered again,
// with all its events, those its Trigger had finished included: delivery is
// at least once, and subscribers must be idempotent (Knative promises no
// more). Messages stored by older versions (one event, binary or JSON) are
// read as batches of one. Pending counts messages, not events: zero still
// means drained.
//
// Crash recovery: the consumers' ack wait is short (Config.AckWait, 5 s),
// and the dispatcher holds a lease on each message it works on, reporting
// progress to JetStream every quarter ack wait until every event of it is
// done, through subscriber calls, retries and their backoff (slept in
// process, so retry counts and backoff are the Trigger's exactly) and held
// replies (lease.go). A slow subscriber is therefore never raced by a
// redelivery while the broker runs, and the messages that were in flight
// when the process died are delivered again about one ack wait after their
// last progress report, i.e. seconds after the next Open. Open updates the
// consumers of an existing data dir to the configured ack wait. A dead
// letter that cannot be recorded (not for a full disk, which is waited
// out) naks its message, so its siblings are delivered again too.
//
// Disk full: nats-server keeps a stream's write error (ENOSPC) and from then
// on neither stores nor answers publishes. The broker watches the server's
// health report, answers 503 at once while the store cannot take writes
// (the ingress says so; one error log), holds replies and dead letters of
// deliveries in flight, and once a probe file fits under DataDir again
// restarts JetStream on the same directory and resumes: no restart of the
// process, nothing acknowledged lost (health.go, TestDiskFullRecovers).
package broker
