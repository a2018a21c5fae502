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
//     deadletter stream: ListDeadLetters shows it, Replay(id) redelivers it to
//     its Trigger only.
//
// Storage: one JetStream stream per broker with interest retention and one
// durable, explicitly acked consumer per Trigger (MaxAckPending bounds the
// concurrent deliveries per Trigger). An event is acked after a 2xx, a
// filter miss, or once its dead letter is recorded, so after a crash every
// unacked event is delivered again: delivery is at least once, and
// subscribers must be idempotent (Knative promises no more).
//
// Crash recovery: the consumers' ack wait is short (Config.AckWait, 5 s),
// and the dispatcher holds a lease on each event it works on, reporting
// progress to JetStream every quarter ack wait through subscriber calls,
// retries and their backoff (slept in process, so retry counts and backoff
// are the Trigger's exactly) and held replies (lease.go). A slow subscriber
// is therefore never raced by a redelivery while the broker runs, and the
// events that were in flight when the process died are delivered again
// about one ack wait after their last progress report, i.e. seconds after
// the next Open. Open updates the consumers of an existing data dir to the
// configured ack wait.
//
// Disk full: nats-server keeps a stream's write error (ENOSPC) and from then
// on neither stores nor answers publishes. The broker watches the server's
// health report, answers 503 at once while the store cannot take writes
// (the ingress says so; one error log), holds replies and dead letters of
// deliveries in flight, and once a probe file fits under DataDir again
// restarts JetStream on the same directory and resumes: no restart of the
// process, nothing acknowledged lost (health.go, TestDiskFullRecovers).
package broker
