package function

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dronetrack/dronetrack/core/flights/flightupdate"
	"github.com/dronetrack/dronetrack/core/logging"
	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/core/publish"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/telemetry"
	"github.com/dronetrack/dronetrack/core/tracing"
	"github.com/dronetrack/dronetrack/events"
)

// Options tune the handler; zero values take the defaults.
type Options struct {
	HistoryTTL    time.Duration // how long history points live (expireAt); 0: Config's default (HISTORY_TTL)
	StateInterval time.Duration // minimum spacing of a drone's state writes; 0: Config's default (STATE_INTERVAL)
	BatchMax      int           // most points per history write; default 500
	// BatchWait is how long a history write waits for more requests after
	// the first. 0 (default) batches only what queued during the previous
	// write: measured best with bbolt (see BenchmarkProcessReport).
	BatchWait time.Duration
	RecentIDs int // completed event ids remembered; default 100,000
	// StoreTimeout bounds each store call and how long a delivery waits for
	// the writes holding its reports; 0: Config's default (STORE_TIMEOUT). A delivery that runs out
	// answers 503 with Retry-After, so a hung store costs the broker one
	// timeout per attempt, not a delivery stuck until the broker gives up.
	// It must exceed StateInterval, which a state write may wait out first.
	StoreTimeout time.Duration
	// ReplayConcurrency is how many flights replays run at once; more wait
	// for a slot. 0: Config's default (REPLAY_CONCURRENCY).
	ReplayConcurrency int
	// ReplaySweep is how often the handler lists the flights replays owed
	// in the store for longer than it (left by a crash or a failure) and
	// runs them; all of them at start. 0: Config's default (REPLAY_SWEEP).
	ReplaySweep time.Duration
	Logger      *slog.Logger
	Now         func() time.Time
}

// Handler is process's HTTP handler: the subscriber of the Trigger on
// telemetry.received.
type Handler struct {
	opts    Options
	history *groupCommit // history writes, unless together
	// together: the store writes a batch's history, state and flights in
	// one transaction (store.DroneWriter), so history goes with the state
	// write instead of through history.
	together bool
	states   *coalescer
	flights  *flightKeeper
	recent   *recentIDs
	log      *slog.Logger
	mux      *http.ServeMux
	m        metrics
}

type metrics struct {
	events      *prometheus.CounterVec
	reports     prometheus.Counter
	stateWrites prometheus.Counter
	flushSize   prometheus.Histogram
	// flightReplays counts replays of history for late reports (one may
	// cover several batches of a drone); flightReplayFailures those that
	// failed (the replay stays owed and runs again).
	flightReplays, flightReplayFailures prometheus.Counter
}

// NewHandler builds the handler over a store. Close it to flush. Zero
// durations and counts that are settings take Config's defaults (DefaultConfig), so a
// handler built directly behaves as a started function.
func NewHandler(st Store, opts Options) *Handler {
	d := DefaultConfig()
	if opts.HistoryTTL == 0 {
		opts.HistoryTTL = d.HistoryTTL
	}
	if opts.StateInterval == 0 {
		opts.StateInterval = d.StateInterval
	}
	if opts.BatchMax == 0 {
		opts.BatchMax = 500
	}
	if opts.StoreTimeout == 0 {
		opts.StoreTimeout = d.StoreTimeout
	}
	if opts.RecentIDs == 0 {
		opts.RecentIDs = 100_000
	}
	if opts.ReplayConcurrency == 0 {
		opts.ReplayConcurrency = d.ReplayConcurrency
	}
	if opts.ReplaySweep == 0 {
		opts.ReplaySweep = d.ReplaySweep
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// The handler builds a logger per event (its ids) and rarely writes.
	h := &Handler{opts: opts, recent: newRecentIDs(opts.RecentIDs), log: logging.Deferred(opts.Logger), mux: http.NewServeMux()}
	reg := prometheus.NewRegistry()
	h.m = metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dronetrack_process_events_total",
			Help: "telemetry.received events handled, by outcome"}, []string{"outcome"}),
		reports: prometheus.NewCounter(prometheus.CounterOpts{Name: "dronetrack_process_reports_total",
			Help: "reports written to history"}),
		stateWrites: prometheus.NewCounter(prometheus.CounterOpts{Name: "dronetrack_process_state_writes_total",
			Help: "latest-state writes (after coalescing)"}),
		flushSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dronetrack_process_history_flush_points",
			Help: "history points per store write", Buckets: prometheus.ExponentialBuckets(1, 2, 10)}),
		flightReplays: prometheus.NewCounter(prometheus.CounterOpts{Name: "dronetrack_process_flight_replays_total",
			Help: "replays of a drone's history that rebuilt its flights over late, duplicate or out-of-order reports"}),
		flightReplayFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "dronetrack_process_flight_replay_failures_total",
			Help: "flights replays that failed (history read or flights write); each stays owed and runs again"}),
	}
	reg.MustRegister(h.m.events, h.m.reports, h.m.stateWrites, h.m.flushSize, h.m.flightReplays, h.m.flightReplayFailures,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))

	h.history = newGroupCommit(func(ctx context.Context, pts []store.TrackPoint) error {
		h.m.flushSize.Observe(float64(len(pts)))
		return st.AppendTrack(ctx, pts)
	}, opts.BatchMax, opts.BatchWait, opts.StoreTimeout)
	keeper := newFlightKeeper(st, opts.Now, opts.ReplayConcurrency, replayTimeouts*opts.StoreTimeout, opts.ReplaySweep,
		h.log, h.countReplay)
	h.flights = keeper
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dronetrack_process_flight_replays_owed",
		Help: "drones whose flights replay runs or waits for a slot in this replica"},
		func() float64 { return float64(keeper.owing()) }))
	dw, together := st.(store.DroneWriter)
	h.together = together
	h.states = newCoalescer(func(ctx context.Context, tenantID, droneID string, reports []events.Report, points []store.TrackPoint) (events.DroneState, bool, error) {
		h.m.stateWrites.Inc()
		now := h.opts.Now()
		fold := func(prev *events.DroneState) (events.DroneState, bool) { return telemetry.Fold(prev, reports, now) }
		if together {
			// History, state and flights in one transaction: one group-commit
			// call and one read of the drone per batch instead of three
			// calls and two reads. A late report's replay is owed in the
			// same write and paid apart (flightKeeper), reading the history
			// just committed.
			s, err := keeper.tenantSettings(ctx, tenantID)
			if err != nil {
				return events.DroneState{}, false, err
			}
			pass := flightupdate.NewPass(s, reports, now)
			h.m.flushSize.Observe(float64(len(points)))
			state, wrote, err := dw.WriteDrone(ctx, store.DroneWrite{TenantID: tenantID, DroneID: droneID,
				Points: points, State: fold, Flights: pass.Apply})
			if err != nil {
				return state, wrote, err
			}
			keeper.written(pass, tenantID, droneID)
			return state, wrote, nil
		}
		// A store that is no DroneWriter: the same coalesced batch then
		// updates the drone's flights. The two writes run one after the
		// other, not side by side: both read the drone's document in a
		// transaction, and on Firestore (whose emulator locks instead of
		// aborting) two concurrent transactions per drone under a backlog
		// held each other until the store timeout, so every redelivery
		// failed again (TestFaultFirestoreRestart dead-lettered them). A
		// failure of either fails the batch; the redelivery finds the
		// flights where the failed write left them.
		state, wrote, err := st.UpdateState(ctx, tenantID, droneID, fold)
		if err != nil {
			return state, wrote, err
		}
		return state, wrote, keeper.update(ctx, tenantID, droneID, reports)
	}, opts.StateInterval, opts.StoreTimeout)
	keeper.hold = h.states.exclusive
	keeper.start()

	h.mux.HandleFunc("POST /{$}", h.serveEvent)
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// replayTimeouts is how many STORE_TIMEOUTs a flights replay may take: it
// runs apart from the deliveries, until the store answers or this bound
// passes.
const replayTimeouts = 6

// countReplay counts a flights replay, done or failed.
func (h *Handler) countReplay(res flightupdate.Result, err error) {
	switch {
	case res.Replaying && err != nil:
		h.m.flightReplayFailures.Inc()
	case res.Replayed && err == nil:
		h.m.flightReplays.Inc()
	}
}

// Close writes what is pending (history batch, coalesced states) and ends
// the flights replays in progress (they stay owed in the store).
func (h *Handler) Close() {
	h.states.Close()
	h.history.Close()
	h.flights.close()
}

// serveEvent handles one telemetry.received event. Status codes tell the
// broker what to do: 2xx done; 400 permanent (dead-letter, don't retry);
// 503 transient (retry with backoff).
func (h *Handler) serveEvent(w http.ResponseWriter, r *http.Request) {
	ev, err := publish.EventFromRequest(r) // in process: the broker's event itself
	if err != nil {
		h.reject(w, "", "not a CloudEvent: "+err.Error(), nil)
		return
	}
	// process's span is a child of ingest's (the event's traceparent); it
	// goes on the state.updated reply, which Knative does not copy it to.
	tc, _ := tracing.FromEvent(*ev)
	// A redelivery is processed again, not dropped: both writes are
	// idempotent, and its reply may be what was lost (a broker that could
	// not store the state.updated redelivers the telemetry, as Knative's
	// does). The counter shows how often the broker redelivers.
	if h.recent.Seen(ev.ID()) {
		h.m.events.WithLabelValues("duplicate").Inc()
	}
	data, err := events.Decode[events.TelemetryReceived](*ev, events.TypeTelemetryReceived)
	if err != nil {
		h.reject(w, ev.ID(), err.Error(), nil)
		return
	}
	if err := data.Validate(h.opts.Now()); err != nil {
		var ve events.ValidationError
		errors.As(err, &ve)
		h.reject(w, ev.ID(), "invalid telemetry event", ve)
		return
	}
	// The event's logger is built when a line is written: most events
	// write none, and With's attributes cost even when deferred.
	log := func() *slog.Logger {
		return h.log.With(append([]any{"event_id", ev.ID()}, tc.LogAttrs()...)...).
			With("tenant_id", data.TenantID, "drone_id", data.DroneID)
	}

	// History first, then the latest state; acknowledge only when both are
	// durable. Both writes are idempotent, so a redelivery after a crash
	// between them rewrites the same points and skips a state not newer.
	// A store that writes both in one transaction (together) takes the
	// points with the state write. One deadline covers both waits: past it
	// the answer is 503 whatever the store does later (a write that lands
	// late is repeated harmlessly by the redelivery).
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.StoreTimeout)
	defer cancel()
	points := make([]store.TrackPoint, len(data.Reports))
	for i, rep := range data.Reports {
		points[i] = store.TrackPoint{TenantID: data.TenantID, DroneID: data.DroneID, Report: rep,
			ExpireAt: rep.TS.Add(h.opts.HistoryTTL)}
	}
	var withState []store.TrackPoint
	if h.together {
		withState = points
	} else {
		if err := h.history.Append(ctx, points); err != nil {
			h.transient(w, log(), "write history", err)
			return
		}
		h.m.reports.Add(float64(len(points)))
	}
	st, wrote, err := h.states.Submit(ctx, data.TenantID, data.DroneID, data.Reports, withState)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// The drone was deleted after ingest accepted its reports. Retrying
		// can't help and would clog the trigger: acknowledge and move on.
		// Written apart from the state, its points were already written to
		// history (that write does not look the drone up) and expire with
		// the TTL; written together, they were not.
		log().Warn("reports for an unknown drone dropped from latest state")
		h.done(w, ev.ID(), "unknown_drone")
		return
	case err != nil:
		h.transient(w, log(), "write state", err)
		return
	}
	if h.together {
		h.m.reports.Add(float64(len(points)))
	}
	if !wrote && !announces(st, data.Reports) {
		// A late report: the newer state was announced by the event that
		// wrote it (or will be, by that event's redelivery).
		h.done(w, ev.ID(), "no_change")
		return
	}
	// Written now, or written before and this event's newest report is
	// the state: a redelivery after a crash between the state write and
	// the reply. Announce it (again); the reply's id is the drone and state
	// time, so consumers and a deduplicating broker see one event.
	reply, err := events.NewStateUpdated(events.StateUpdated{TenantID: data.TenantID, DroneID: data.DroneID, State: st})
	if err != nil {
		h.transient(w, log(), "build state event", err)
		return
	}
	tc.Inject(&reply)
	if h.log.Enabled(r.Context(), slog.LevelDebug) {
		log().Debug("state updated", "reply_id", reply.ID(), "reports", len(data.Reports))
	}
	h.recent.Add(ev.ID())
	h.m.events.WithLabelValues("state_updated").Inc()
	// The broker republishes the event in a 2xx reply: binary content mode,
	// or the event itself to a broker in this process.
	if err := publish.WriteReply(w, r, &reply, http.StatusOK); err != nil {
		log().Error("write reply event", "err", err)
	}
}

// announces reports whether st is the newest of reports: the state this
// event produces, whichever delivery of it wrote the state.
func announces(st events.DroneState, reports []events.Report) bool {
	var newest time.Time
	for _, r := range reports {
		if r.TS.After(newest) {
			newest = r.TS
		}
	}
	return !newest.IsZero() && st.TS.Equal(newest)
}

func (h *Handler) done(w http.ResponseWriter, id, outcome string) {
	h.recent.Add(id)
	h.m.events.WithLabelValues(outcome).Inc()
	w.WriteHeader(http.StatusAccepted)
}

func (h *Handler) reject(w http.ResponseWriter, id, detail string, fields events.ValidationError) {
	h.m.events.WithLabelValues("rejected").Inc()
	h.log.Warn("event rejected", "event_id", id, "detail", detail)
	opts := []problem.Option{}
	if len(fields) > 0 {
		opts = append(opts, problem.WithErrors(fields))
	}
	problem.Write(w, http.StatusBadRequest, "", detail, opts...)
}

func (h *Handler) transient(w http.ResponseWriter, log *slog.Logger, what string, err error) {
	h.m.events.WithLabelValues("retry").Inc()
	log.Error(what, "err", err)
	w.Header().Set("Retry-After", "1")
	problem.Write(w, http.StatusServiceUnavailable, "", what+" failed; retry")
}
