package local

import (
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/dronetrack/dronetrack/core/publish"
)

// EnvInprocDelivery set to 0 makes `up` send every event over loopback TCP
// (ingest to the broker's ingress, the broker to each function), as
// separate processes would; for comparisons. By default these hops are
// handed to the handlers in process (core/publish.LocalTransport): the
// same HTTP messages in binary CloudEvents mode, with request contexts and
// timeouts honoured, but no sockets; a function that reads its events from
// the delivery (publish.EventReader: process, cache-refresh, alerts) gets
// the broker's deliveries without the HTTP encoding. BenchmarkPipeline measured loopback
// HTTP at a third of the pipeline's CPU per report (docs/performance.md).
// A function cut by the fault tests (restartListener) is unregistered, so
// deliveries to it fail exactly as with TCP.
const EnvInprocDelivery = "DRONETRACK_INPROC_DELIVERY"

// inprocDelivery reports whether `up` hands events to its functions and
// broker in process (the default).
func inprocDelivery() bool { return os.Getenv(EnvInprocDelivery) != "0" }

// inprocHandlers registers the listeners of this process whose requests
// may skip the socket (core/publish's registry), when in-process delivery
// is on.
var inprocHandlers localRegistry

type localRegistry struct{}

// Store registers handler h as serving addr (host:port).
func (localRegistry) Store(addr string, h http.Handler) {
	if inprocDelivery() {
		publish.RegisterLocal(addr, h)
	}
}

// StoreFunction registers the handler h of function fn as serving addr:
// as one taking delivered events without their HTTP encoding when fn says
// it reads them from the delivery (publish.EventReader).
func (r localRegistry) StoreFunction(addr string, fn Instance, h http.Handler) {
	if er, ok := fn.(publish.EventReader); ok && er.ReadsDeliveredEvents() && inprocDelivery() {
		publish.RegisterLocalEvents(addr, h)
		return
	}
	r.Store(addr, h)
}

// Delete unregisters addr: requests go to its socket again.
func (localRegistry) Delete(addr string) { publish.UnregisterLocal(addr) }

// deliveryClient is the broker's HTTP client in `up`: in process for the
// functions registered in inprocHandlers, else loopback TCP with as many
// idle connections as deliveries in flight, so connections are reused
// rather than dialled again (7% of the CPU in a profile of `dronetrack
// load` went to dialling when idle connections were capped at 256).
func deliveryClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 0 // no limit across hosts
	tr.MaxIdleConnsPerHost = maxInFlight()
	return &http.Client{Transport: publish.LocalTransport{Next: tr}}
}

// EnvBrokerInFlight overrides the local broker's deliveries in flight per
// Trigger (default 256), for load comparisons.
const EnvBrokerInFlight = "DRONETRACK_BROKER_INFLIGHT"

// defaultMaxInFlight bounds the deliveries a Trigger's subscriber works on
// at once. Deliveries process holds on purpose (a drone reporting faster
// than STATE_INTERVAL) are not counted, up to maxHeld of them
// (publish.Hold), so the bound is what the subscribers' work needs: beyond
// it deliveries only waited in the store's single writer, two goroutines
// each whose stacks the collector scanned (docs/performance.md, "Round 6:
// 20,000 reports/s at 10 per request").
const defaultMaxInFlight = 256

// maxHeld is how many deliveries per Trigger process may hold on purpose
// without a slot of maxInFlight's bound (core/broker Config.MaxHeld): at
// most 1,024 deliveries a Trigger in all, as before held ones were
// counted apart. Without this bound a backlog, in which most of process's
// deliveries are held, grew to tens of thousands of goroutines.
func maxHeld() int { return max(0, 1024-maxInFlight()) }

func maxInFlight() int {
	if n, err := strconv.Atoi(os.Getenv(EnvBrokerInFlight)); err == nil && n > 0 {
		return n
	}
	return defaultMaxInFlight
}

// EnvBrokerMinInFlight is the floor of the local broker's deliveries in
// flight per Trigger, which then adapt between it and EnvBrokerInFlight's
// bound by the Trigger's completion rate (core/broker limit.go). Unset or
// 0, the bound is fixed at EnvBrokerInFlight's. The adaptive bound (a floor
// of 64, say) costs less CPU per report under a backlog, but it reads a
// noisy completion rate and wanders below the bound, and process's
// deliveries wait in the store's group commit, where more of them make
// larger groups that share the commit's fsyncs and pages: with the bound
// fixed, up stored 17-20% more per second at 5,000/s one per request, and
// kept up longer (docs/performance.md, "Round 8: the broker's bound").
const EnvBrokerMinInFlight = "DRONETRACK_BROKER_MININFLIGHT"

func minInFlight() int {
	if v, ok := os.LookupEnv(EnvBrokerMinInFlight); ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			return n
		}
	}
	return 0
}

// EnvBrokerAckPending overrides the stored messages the local broker holds
// unacknowledged per Trigger (default 128), for load comparisons.
const EnvBrokerAckPending = "DRONETRACK_BROKER_ACKPENDING"

func maxAckPending() int {
	if n, err := strconv.Atoi(os.Getenv(EnvBrokerAckPending)); err == nil && n > 0 {
		return n
	}
	return 128
}

// EnvBrokerLinger overrides how long the local broker lets a published
// event wait for others to be stored with it in one message (a Go
// duration; core/broker's default when unset, "-1ns" for none), for load
// comparisons.
const EnvBrokerLinger = "DRONETRACK_BROKER_LINGER"

func batchLinger() time.Duration {
	d, _ := time.ParseDuration(os.Getenv(EnvBrokerLinger))
	return d
}
