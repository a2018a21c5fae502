package function

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/dronetrack/dronetrack/core/keys"
	"github.com/dronetrack/dronetrack/core/osmand"
	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/events"
)

// Paths of the other drone protocols ingest speaks. Both end in the same
// publish as PathTelemetry: one telemetry.received event per request.
const (
	// PathOsmAnd takes the OsmAnd protocol of Traccar Client and many
	// trackers: any method, query/form parameters or the JSON body.
	PathOsmAnd = "/v1/osmand"
	// PathEvents takes CloudEvents of type events.TypeTelemetryReport in
	// binary, structured or batched HTTP content mode.
	PathEvents = "/v1/events"
)

// MinDeviceIDLen is the shortest OsmAnd device id accepted as a credential
// when it is not a drone key. OsmAnd has no authentication: whoever knows a
// device id can report as that device, so the id must be long and random.
// Traccar Client's default (a 6-digit number) is guessable in seconds.
const MinDeviceIDLen = 20

// osmand serves PathOsmAnd.
//
// Device identity: the OsmAnd id is treated as the drone's key. A "dtk_…"
// id is a drone key as issued by `dronetrack drone add`; any other id is
// hashed exactly like a key (keys.Hash with the pepper) and looked up with
// store.DroneByKeyHash, so an operator registers a tracker by giving its
// drone a long random device id as its key. This fits the store without a
// second index, at a price: the id travels in the URL (proxies and access
// logs may record it) and a drone has one credential, so a drone reporting
// through OsmAnd cannot also hold a separate key. The key-based APIs
// (POST /v1/telemetry, /v1/events with Authorization: Bearer) remain the
// secure path.
//
// Replies: 200 with an empty body on success (Traccar Client treats any
// other status as failure and retries), 400 problem naming the bad
// parameters, 401 for an unknown or too short id, 503 to retry later.
// Fixes flagged valid=false are acknowledged but not published: they must
// not move the drone on the map.
func (h *Handler) osmand(w http.ResponseWriter, r *http.Request) int {
	if r.ContentLength > MaxBodyBytes {
		return tooLarge(w)
	}
	var body []byte
	buf := bodyPool.Get().(*[]byte)
	defer func() {
		if cap(*buf) <= 64<<10 {
			bodyPool.Put(buf)
		}
	}()
	if r.URL.RawQuery == "" { // Traccar reads the body only without a query
		b, err := readBody(r.Body, (*buf)[:0], r.ContentLength, MaxBodyBytes)
		*buf = b
		switch {
		case errors.Is(err, errTooLarge):
			return tooLarge(w)
		case err != nil:
			return fail(w, http.StatusBadRequest, "", "could not read the request body")
		}
		body = b
	}
	now := h.now()
	msg, bad := osmand.Parse(r.URL.RawQuery, r.Header.Get("Content-Type"), body, now)
	if len(bad) > 0 {
		return fail(w, http.StatusBadRequest, "Invalid OsmAnd request",
			fmt.Sprintf("%d problem(s) in the request; nothing was accepted", len(bad)), problem.WithErrors(bad))
	}
	if !keys.WellFormed(msg.DeviceID) && len(msg.DeviceID) < MinDeviceIDLen {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dronetrack", error="invalid_token"`) // 401 must name a scheme
		return fail(w, http.StatusUnauthorized, "",
			fmt.Sprintf("the device id is too short to be a credential: register a random id of at least %d characters as the drone's key", MinDeviceIDLen))
	}
	id, status := h.identify(w, r, msg.DeviceID)
	if status != 0 {
		return status
	}
	if bad := msg.Validate(now); len(bad) > 0 {
		return fail(w, http.StatusBadRequest, "Invalid telemetry",
			fmt.Sprintf("%d problem(s) in the request; nothing was accepted", len(bad)), problem.WithErrors(bad))
	}
	reps := make([]events.Report, 0, len(msg.Positions))
	for _, p := range msg.Positions {
		if p.Valid {
			reps = append(reps, p.Report)
		}
	}
	if len(reps) > 0 {
		if _, status := h.publishReports(r.Context(), w, id, reps, now); status != 0 {
			return status
		}
	}
	h.log.Debug("osmand accepted", "drone", id.DroneID, "tenant", id.TenantID, "reports", len(reps),
		"invalid_fixes", len(msg.Positions)-len(reps))
	w.WriteHeader(http.StatusOK)
	return http.StatusOK
}

// cloudEvents serves PathEvents: a drone that speaks CloudEvents sends
// events of type events.TypeTelemetryReport whose data is one report or an
// array of reports, authenticated with its key like PathTelemetry. Every
// event of a batch is checked; any bad one rejects the request (400 naming
// "/<index>/<attribute>" for a batch, "/<attribute>" otherwise), so a client
// never has to guess which part was taken. The reports of all the events
// become one telemetry.received event.
func (h *Handler) cloudEvents(w http.ResponseWriter, r *http.Request) int {
	if r.Method != http.MethodPost {
		w.Header()["Allow"] = allowPost
		return fail(w, http.StatusMethodNotAllowed, "", r.Method+" is not allowed; use POST")
	}
	id, status := h.authenticate(w, r)
	if status != 0 {
		return status
	}
	if r.ContentLength > MaxBodyBytes {
		return tooLarge(w)
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	batch := cehttp.IsHTTPBatch(r.Header)
	var evs []event.Event
	var err error
	if batch {
		evs, err = cehttp.NewEventsFromHTTPRequest(r)
	} else {
		var e *event.Event
		if e, err = cehttp.NewEventFromHTTPRequest(r); err == nil {
			evs = []event.Event{*e}
		}
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(w)
		}
		return fail(w, http.StatusBadRequest, "Malformed CloudEvent", err.Error())
	}
	if len(evs) == 0 {
		return fail(w, http.StatusBadRequest, "", "empty batch: send at least one event")
	}

	now := h.now()
	var reps []events.Report
	var bad []events.FieldError
	for i := range evs {
		e := &evs[i]
		prefix := ""
		if batch {
			prefix = "/" + strconv.Itoa(i)
		}
		badAttr := func(attr, detail string) {
			bad = append(bad, events.FieldError{Field: attr, Pointer: prefix + "/" + attr, Detail: detail})
		}
		if err := e.Validate(); err != nil {
			badAttr("specversion", "not a valid CloudEvent: "+err.Error())
			continue
		}
		if e.Type() != events.TypeTelemetryReport {
			badAttr("type", fmt.Sprintf("%q: send %s", e.Type(), events.TypeTelemetryReport))
			continue
		}
		if ct := e.DataContentType(); ct != "" && !isJSON(ct) {
			badAttr("datacontenttype", fmt.Sprintf("%q: send application/json", ct))
			continue
		}
		left := MaxReports - len(reps)
		if left <= 0 {
			badAttr("data", fmt.Sprintf("too many reports: at most %d per request", MaxReports))
			break
		}
		got, errs, err := events.DecodeReports(e.Data(), now, left)
		if err != nil {
			badAttr("data", err.Error())
			continue
		}
		for _, fe := range errs {
			fe.Pointer = prefix + "/data" + fe.Pointer
			bad = append(bad, fe)
		}
		reps = append(reps, got...)
	}
	if len(bad) > 0 {
		return fail(w, http.StatusBadRequest, "Invalid telemetry",
			fmt.Sprintf("%d problem(s) in the request; nothing was accepted", len(bad)), problem.WithErrors(bad))
	}
	eventID, status := h.publishReports(continueEventTrace(r.Context(), evs[0]), w, id, reps, now)
	if status != 0 {
		return status
	}
	w.Header()["Content-Type"] = contentTypeJSON
	w.WriteHeader(http.StatusAccepted)
	_, _ = fmt.Fprintf(w, "{\"accepted\":%d,\"eventId\":%q}\n", len(reps), eventID)
	return http.StatusAccepted
}

// publishReports publishes reps as one telemetry.received event, exactly as
// PathTelemetry does (same deterministic event id, so a resent request
// deduplicates downstream). On failure it writes the reply (500 or 503)
// and returns its status.
func (h *Handler) publishReports(ctx context.Context, w http.ResponseWriter, id identity, reps []events.Report, now time.Time) (string, int) {
	events.TruncateTimes(reps)
	e, _, err := events.EncodeTelemetryReceived(events.TelemetryReceived{
		TenantID: id.TenantID, DroneID: id.DroneID, ReceivedAt: now.UTC(), Reports: reps,
	}, nil)
	if err != nil {
		h.log.Error("build telemetry event", "drone", id.DroneID, "tenant", id.TenantID, "err", err)
		return "", fail(w, http.StatusInternalServerError, "", "could not build the event")
	}
	tc := traceOf(ctx)
	tc.Inject(&e)
	start := time.Now()
	err = h.publisher.Publish(context.WithoutCancel(ctx), e)
	h.m.publishSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		h.log.With(tc.LogAttrs()...).Warn("publish failed; drone told to retry", "drone", id.DroneID, "tenant", id.TenantID,
			"event", e.ID(), "reports", len(reps), "err", err)
		return "", unavailable(w, "the event broker did not take the reports; nothing was accepted, resend later")
	}
	h.m.reports.Add(float64(len(reps)))
	return e.ID(), 0
}
