package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// sseEvent is one Server-Sent Event: its id, type and data lines joined.
type sseEvent struct {
	id, event string
	data      []byte
}

// readEvents reads Server-Sent Events from r and calls fn for each one
// and retry with each retry field until r ends; comments are skipped.
func readEvents(r io.Reader, fn func(sseEvent), retry func(time.Duration)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var ev sseEvent
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: gather it whole.
			full := append([]byte(nil), line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				full = append(full, line...)
			}
			line = full
		}
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if ev.event != "" || len(ev.data) > 0 {
				if ev.event == "" {
					ev.event = "message"
				}
				fn(ev)
			}
			ev = sseEvent{id: ev.id}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "id":
			ev.id = string(value)
		case "event":
			ev.event = string(value)
		case "data":
			if ev.data != nil {
				ev.data = append(ev.data, '\n')
			}
			ev.data = append(ev.data, value...)
		case "retry":
			if ms, err := strconv.Atoi(string(value)); err == nil && ms >= 0 {
				retry(time.Duration(ms) * time.Millisecond)
			}
		}
	}
}

// streamer holds the map's live stream (GET /api/v1/stream) open as the
// logged-in user, the way the page's EventSource does, and tells the
// tracker when each drone's new state arrives. Like EventSource it waits
// the stream's retry time before reconnecting after a drop, so the time a
// browser misses while reconnecting is in the latency too.
type streamer struct {
	baseURL string
	client  *http.Client // shares the API client's session cookie, without its timeout
	api     *http.Client
	t       *tracker
	now     func() time.Time
	retry   time.Duration // what the server's retry field asks; read and written by run only
	// alsoStored counts a drone state the stream carries as stored too:
	// process replies state.updated only after the state (and, before
	// it, the history) is committed, and the stream is fed from that
	// event, so the event's arrival bounds the store write from above.
	alsoStored bool

	reconnects, resyncs atomic.Int64
}

func newStreamer(baseURL string, api *http.Client, t *tracker) *streamer {
	// Until the server says, the retry time is that of common browsers.
	return &streamer{baseURL: baseURL, client: &http.Client{Jar: api.Jar}, api: api, t: t, now: time.Now, retry: 3 * time.Second}
}

// handle applies one event: a drone's new state, or a resync, after which
// the fleet is read again as the page does.
func (s *streamer) handle(ctx context.Context, ev sseEvent) {
	switch ev.event {
	case "drone":
		at := s.now()
		_ = scanDrone(ev.data, func(d fleetState) {
			if len(d.ts) > 0 {
				s.seenTS(at, d)
			}
		})
	case "resync":
		s.resyncs.Add(1)
		s.refetch(ctx)
	}
}

// seenTS records a drone state the stream (or a resync's fleet read)
// carried.
func (s *streamer) seenTS(at time.Time, d fleetState) {
	i, ok := s.t.index[string(d.id)]
	if !ok {
		return
	}
	ts, err := parseTS(d.ts)
	if err != nil {
		return
	}
	if s.alsoStored {
		s.t.seenAt(s.t.list[i], ts, at, kindStored, kindStreamed)
	} else {
		s.t.seenAt(s.t.list[i], ts, at, kindStreamed)
	}
}

// refetch reads the fleet and counts the states it shows as streamed (the
// fleet list is fed by the same events, so they are stored too).
func (s *streamer) refetch(ctx context.Context) {
	var buf bytes.Buffer
	_ = readFleet(ctx, s.api, s.baseURL, nil, &buf, s.seenTS)
}

// connect opens the stream, resuming after lastID when there is one.
func (s *streamer) connect(ctx context.Context, lastID string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.baseURL+"/api/v1/stream", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("live stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("live stream: status %d", resp.StatusCode)
	}
	return resp, nil
}

// run reads resp's stream and, when the server drops it, reconnects with
// Last-Event-ID until ctx ends.
func (s *streamer) run(ctx context.Context, resp *http.Response) {
	lastID := ""
	for {
		_ = readEvents(resp.Body, func(ev sseEvent) {
			if ev.id != "" {
				lastID = ev.id
			}
			s.handle(ctx, ev)
		}, func(d time.Duration) { s.retry = d })
		resp.Body.Close()
		if ctx.Err() != nil {
			return
		}
		s.reconnects.Add(1)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(s.retry):
			}
			var err error
			if resp, err = s.connect(ctx, lastID); err == nil {
				break
			}
		}
		if lastID == "" {
			// Nothing to resume from: what passed meanwhile is only in the
			// fleet.
			s.refetch(ctx)
		}
	}
}
