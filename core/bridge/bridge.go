// Package bridge runs on a drone's companion computer or a ground station:
// it reads the autopilot's MAVLink 2 stream (UDP or serial, via gomavlib),
// converts positions to events.Report (see Converter for units and clocks),
// spools them on disk (Spool) and forwards them in batches to ingest's
// POST /v1/telemetry with the drone's key (Forwarder). While the link to
// ingest is down reports pile up in the spool and are resent in order when
// it returns; nothing is deleted before ingest acknowledged it, and a resent
// duplicate is harmless because the service deduplicates by (drone, ts).
package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gomavlib/v3"
	"github.com/bluenviron/gomavlib/v3/pkg/dialects/common"

	"github.com/dronetrack/dronetrack/events"
)

// Config configures a bridge. At least one of UDPAddr and SerialDevice is
// required, and IngestURL, Key and DataDir are.
type Config struct {
	// UDPAddr is the local address to receive MAVLink on, e.g. ":14550"
	// (autopilots and mavlink-router send there).
	UDPAddr string
	// SerialDevice and SerialBaud read a telemetry port, e.g. /dev/ttyAMA0 at 57600.
	SerialDevice string
	SerialBaud   int
	// SystemID follows one vehicle; 0 follows the first one seen.
	SystemID byte
	// RequestStreams asks ArduPilot to stream telemetry (it sends nothing on
	// a fresh serial link until asked); PX4 streams by itself.
	RequestStreams bool

	// IngestURL is ingest's base URL (https://ingest.example) or its full
	// telemetry URL; Key is the drone key.
	IngestURL string
	Key       string
	// DataDir holds the spool (bridge-spool.db).
	DataDir string

	BatchSize     int           // 0: 50
	FlushInterval time.Duration // 0: 1 s
	MinBackoff    time.Duration // 0: 250 ms
	MaxBackoff    time.Duration // 0: 10 s
	HTTPClient    *http.Client
	Logger        *slog.Logger
	Now           func() time.Time // nil: time.Now
}

// Stats are a bridge's counters.
type Stats struct {
	Positions int64 // reports spooled
	Dropped   int64 // positions that failed validation before spooling
	Sent      int64 // reports ingest acknowledged
	Rejected  int64 // reports ingest refused as invalid (kept in the spool's rejected bucket)
	Failures  int64 // failed send attempts (each retried)
}

// Bridge is a running bridge.
type Bridge struct {
	cfg   Config
	spool *Spool
	fwd   *Forwarder
	node  *gomavlib.Node
	log   *slog.Logger
	now   func() time.Time

	mu                  sync.Mutex
	positions, droppped int64
}

// TelemetryURL turns an ingest base URL into the telemetry endpoint URL.
func TelemetryURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("ingest URL %q: want http(s)://host[:port][/v1/telemetry]", base)
	}
	if !strings.HasSuffix(u.Path, TelemetryPath) {
		u.Path = strings.TrimSuffix(u.Path, "/") + TelemetryPath
	}
	return u.String(), nil
}

// New opens the spool and the MAVLink endpoints. Run starts the work.
func New(cfg Config) (*Bridge, error) {
	if cfg.UDPAddr == "" && cfg.SerialDevice == "" {
		return nil, errors.New("bridge: set a UDP listen address or a serial device")
	}
	if cfg.Key == "" {
		return nil, errors.New("bridge: the drone key is required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("bridge: a data directory for the spool is required")
	}
	u, err := TelemetryURL(cfg.IngestURL)
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	b := &Bridge{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.spool, err = OpenSpool(cfg.DataDir); err != nil {
		return nil, err
	}
	b.fwd = &Forwarder{Spool: b.spool, URL: u, Key: cfg.Key, Client: cfg.HTTPClient, BatchSize: cfg.BatchSize,
		FlushInterval: cfg.FlushInterval, MinBackoff: cfg.MinBackoff, MaxBackoff: cfg.MaxBackoff, Log: b.log}
	b.fwd.init()

	var eps []gomavlib.EndpointConf
	if cfg.UDPAddr != "" {
		eps = append(eps, gomavlib.EndpointUDPServer{Address: cfg.UDPAddr})
	}
	if cfg.SerialDevice != "" {
		baud := cfg.SerialBaud
		if baud == 0 {
			baud = 57600
		}
		eps = append(eps, gomavlib.EndpointSerial{Device: cfg.SerialDevice, Baud: baud})
	}
	b.node = &gomavlib.Node{
		Endpoints:   eps,
		Dialect:     common.Dialect,
		OutVersion:  gomavlib.V2,
		OutSystemID: 254,
		// MAV_COMP_ID_ONBOARD_COMPUTER and MAV_TYPE_ONBOARD_CONTROLLER: we are
		// a companion, not a ground station that may command the vehicle.
		OutComponentID:      191,
		HeartbeatSystemType: int(common.MAV_TYPE_ONBOARD_CONTROLLER),
		StreamRequestEnable: cfg.RequestStreams,
	}
	if err := b.node.Initialize(); err != nil {
		b.spool.Close()
		return nil, fmt.Errorf("bridge: open MAVLink endpoints: %w", err)
	}
	return b, nil
}

// Stats returns the counters so far.
func (b *Bridge) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Stats{Positions: b.positions, Dropped: b.droppped, Sent: b.fwd.Sent.Load(),
		Rejected: b.fwd.Rejected.Load(), Failures: b.fwd.Failures.Load()}
}

// Pending is the number of reports in the spool not yet acknowledged.
func (b *Bridge) Pending() (int, error) { return b.spool.Len() }

// Run reads MAVLink and forwards until ctx ends, then closes the endpoints
// and the spool. Unsent reports stay in the spool for the next run.
func (b *Bridge) Run(ctx context.Context) error {
	fctx, stopFwd := context.WithCancel(context.Background())
	fwdDone := make(chan error, 1)
	go func() { fwdDone <- b.fwd.Run(fctx) }()

	var closeOnce sync.Once
	closeNode := func() { closeOnce.Do(b.node.Close) } // Close twice would panic
	stopWatch := make(chan struct{})
	defer close(stopWatch)
	go func() { // closing the node ends the Events channel
		select {
		case <-ctx.Done():
			closeNode()
		case <-stopWatch:
		}
	}()
	conv := &Converter{SystemID: b.cfg.SystemID}
	var runErr error
	events := b.node.Events()
	for evt := range events {
		reps := b.handle(conv, evt, nil)
		// Take whatever else is queued already, to commit it in one transaction.
	more:
		for len(reps) < 256 {
			select {
			case e, ok := <-events:
				if !ok {
					break more
				}
				reps = b.handle(conv, e, reps)
			default:
				break more
			}
		}
		if len(reps) == 0 {
			continue
		}
		if err := b.spool.Append(reps...); err != nil {
			// Without the spool nothing can be promised; stop loudly.
			runErr = fmt.Errorf("bridge: spool append: %w", err)
			go closeNode() // Close waits for the node, which waits for us to stop reading
			break
		}
		b.mu.Lock()
		b.positions += int64(len(reps))
		b.mu.Unlock()
		b.fwd.Added(len(reps))
	}
	for range events { // drain after an early stop so the node can finish
	}
	stopFwd()
	if err := <-fwdDone; err != nil && runErr == nil {
		runErr = err
	}
	if err := b.spool.Close(); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

func (b *Bridge) handle(conv *Converter, evt gomavlib.Event, reps []events.Report) []events.Report {
	switch e := evt.(type) {
	case *gomavlib.EventFrame:
		now := b.now()
		r, ok := conv.Handle(e.SystemID(), e.Message(), now)
		if !ok {
			return reps
		}
		if errs := r.Validate(now, ""); len(errs) > 0 {
			b.mu.Lock()
			b.droppped++
			b.mu.Unlock()
			b.log.Warn("position dropped: invalid", "system", e.SystemID(), "errors", events.ValidationError(errs).Error())
			return reps
		}
		return append(reps, r)
	case *gomavlib.EventChannelOpen:
		b.log.Info("MAVLink channel open", "channel", e.Channel.String())
	case *gomavlib.EventChannelClose:
		b.log.Info("MAVLink channel closed", "channel", e.Channel.String(), "err", e.Error)
	case *gomavlib.EventParseError:
		b.log.Debug("MAVLink parse error", "err", e.Error)
	}
	return reps
}
