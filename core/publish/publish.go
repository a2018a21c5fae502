// Package publish sends CloudEvents to a sink (K_SINK: a Knative Broker or
// the one-machine broker) over HTTP in binary content mode: attributes in
// ce-* headers, the data as the body, so brokers and Triggers filter on
// headers without parsing the body.
package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// ErrUnavailable means the sink did not take the event: it could not be
// reached, timed out, or answered other than 2xx. The caller should not
// report success and should ask its client to retry later (ingest: 503).
var ErrUnavailable = errors.New("event sink unavailable")

// StatusError is the error for a sink that answered with a non-2xx status.
// It unwraps to ErrUnavailable.
type StatusError struct {
	Status int
	Body   string // the start of the sink's reply, for the log
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("sink answered %d", e.Status)
	}
	return fmt.Sprintf("sink answered %d: %s", e.Status, e.Body)
}

// Unwrap makes errors.Is(err, ErrUnavailable) hold.
func (e *StatusError) Unwrap() error { return ErrUnavailable }

// Timeout bounds one Publish with the default client. A drone waits for the
// reply; a broker that takes longer than this is treated as down, the drone
// gets 503 and retries, instead of requests piling up behind a slow broker.
const Timeout = 5 * time.Second

// NewClient returns an HTTP client with tight timeouts and enough idle
// connections per host for a busy ingest, which talks to a single sink
// (1024: as many as requests in flight, so connections are reused rather
// than closed and dialled again under load). A sink registered with
// RegisterLocal is called in process.
func NewClient() *http.Client {
	d := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   2 * time.Second,
		ResponseHeaderTimeout: 4 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	// A sink served by this process (RegisterLocal) is called directly.
	return &http.Client{Transport: LocalTransport{Next: t}, Timeout: Timeout}
}

// Publisher sends events to one sink. It is safe for concurrent use.
type Publisher struct {
	sink   string
	host   string // the sink's host:port, to find a local EventSink
	client *http.Client
}

// New returns a publisher for sinkURL (an absolute http or https URL). A nil
// client means NewClient().
func New(sinkURL string, client *http.Client) (*Publisher, error) {
	u, err := url.Parse(sinkURL)
	if err != nil {
		return nil, fmt.Errorf("sink URL %q: %w", sinkURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("sink URL %q: want an absolute http(s) URL", sinkURL)
	}
	if client == nil {
		client = NewClient()
	}
	return &Publisher{sink: sinkURL, host: u.Host, client: client}, nil
}

// Sink returns the URL events go to.
func (p *Publisher) Sink() string { return p.sink }

// Publish POSTs e in binary content mode and returns nil only when the sink
// answered 2xx. Any other answer or a transport error wraps ErrUnavailable;
// an invalid event is an error that does not (retrying will not help).
func (p *Publisher) Publish(ctx context.Context, e event.Event) error {
	if err := Validate(&e); err != nil {
		return fmt.Errorf("publish %s: invalid event: %w", e.ID(), err)
	}
	if s, ok := localSink(p.host); ok {
		// In process (RegisterLocal): the event itself, not an HTTP
		// message encoding it, bounded like a request of NewClient.
		ctx, cancel := context.WithTimeout(ctx, Timeout)
		defer cancel()
		if err := s.PublishEvent(ctx, e); err != nil {
			return fmt.Errorf("publish %s to local sink: %w: %w", e.ID(), ErrUnavailable, err)
		}
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.sink, nil)
	if err != nil {
		return fmt.Errorf("publish %s: %w", e.ID(), err)
	}
	// The context decides the encoding; binary is asked for explicitly so a
	// future default change in sdk-go cannot switch us to structured mode.
	wctx := binding.WithForceBinary(ctx)
	if err := cehttp.WriteRequest(wctx, binding.ToMessage(&e), req); err != nil {
		return fmt.Errorf("publish %s: encode: %w", e.ID(), err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("publish %s to sink: %w: %w", e.ID(), ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// Drain so the connection goes back to the pool.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return fmt.Errorf("publish %s: %w", e.ID(), &StatusError{Status: resp.StatusCode, Body: string(snippet)})
}
