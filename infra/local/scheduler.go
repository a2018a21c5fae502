package local

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/dronetrack/dronetrack/core/publish"
	"github.com/dronetrack/dronetrack/events"
	alertsfn "github.com/dronetrack/dronetrack/functions/alerts"
)

// DefaultLinkCheckEvery matches infra/base/pingsource.yaml's schedule.
const DefaultLinkCheckEvery = 30 * time.Second

// scheduler plays the Knative PingSource of infra/base/pingsource.yaml on
// one machine: every period it publishes the same CloudEvent (type
// dev.knative.sources.ping, extension dronetracktype =
// dev.dronetrack.link.check.v1, data {"reason":"periodic"}) to the broker,
// whose alerts-link-check Trigger routes it like in the cluster.
type scheduler struct {
	cancel context.CancelFunc
	done   sync.WaitGroup
}

func startScheduler(sink string, every time.Duration, log *slog.Logger) (*scheduler, error) {
	pub, err := publish.New(sink, nil)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &scheduler{cancel: cancel}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case at := <-tick.C:
				if err := pub.Publish(ctx, linkCheckEvent(at)); err != nil && ctx.Err() == nil {
					log.Warn("link check not published", "err", err)
				}
			}
		}
	}()
	return s, nil
}

func linkCheckEvent(at time.Time) cloudevents.Event {
	e := cloudevents.New()
	e.SetID("link-check-" + strconv.FormatInt(at.UnixNano(), 10))
	e.SetType(alertsfn.TypePing)
	e.SetSource("/dronetrack/up/link-check")
	e.SetTime(at)
	e.SetExtension(alertsfn.ExtDronetrackType, events.TypeLinkCheck)
	_ = e.SetData(cloudevents.ApplicationJSON, map[string]string{"reason": "periodic"})
	return e
}

// stop ends the ticks and waits for a publish in flight.
func (s *scheduler) stop() {
	if s == nil {
		return
	}
	s.cancel()
	s.done.Wait()
}
