package broker

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// defaultAckWait is Config.AckWait when unset. It bounds how long events
// that were in flight when the process died wait, after the next Open,
// before they are delivered again (JetStream keeps each pending event's last
// progress time on disk), so it is short; what keeps it from expiring under
// a live delivery is the lease's heartbeat, not its length.
const defaultAckWait = 5 * time.Second

// leaseBeatsPerAckWait is how many progress reports a delivery sends per
// ack wait: three may be lost or late (a busy machine, a GC pause) before
// JetStream would hand the event out a second time.
const leaseBeatsPerAckWait = 4

// lease holds a stored message (one event or a batch) for the dispatcher
// working on it: until release, which follows the last of its events, it
// tells JetStream every AckWait/leaseBeatsPerAckWait that the message is
// still in progress, so however long a subscriber, the backoff between
// retries or a held reply take, the message is not redelivered while the
// broker runs. A dispatcher that is gone (crash, abandoned delivery) stops
// reporting, and the message is delivered again one ack wait after its last
// report.
type lease struct {
	msg   jetstream.Msg
	every time.Duration

	mu    sync.Mutex // held while a beat is sent, so release waits for it
	timer *time.Timer
	done  bool
}

// hold starts the lease's heartbeat for msg. It costs a timer, not a
// goroutine: deliveries that finish within one beat send no progress.
func (b *Broker) hold(msg jetstream.Msg) *lease {
	l := &lease{msg: msg, every: max(b.cfg.AckWait/leaseBeatsPerAckWait, time.Millisecond)}
	l.mu.Lock()
	l.timer = time.AfterFunc(l.every, l.beat)
	l.mu.Unlock()
	return l
}

func (l *lease) beat() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return
	}
	// Errors are left to the ack wait: a beat that did not reach the
	// server is followed by another, and a connection that is gone for
	// good means the event should be delivered again anyway.
	_ = l.msg.InProgress()
	l.timer.Reset(l.every)
}

// release stops the heartbeat; once it returns no more progress is sent,
// so an Ack or Nak that follows is the last word on the message (a progress
// report after a Nak would push its redelivery back to a full ack wait).
// It may be called more than once.
func (l *lease) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done = true
	l.timer.Stop()
}
